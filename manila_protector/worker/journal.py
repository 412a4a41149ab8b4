"""The job journal: a local SQLite database (WAL) recording every job before it runs.

Each job is written when it is accepted and at every change of its status, so
a worker that crashes or is killed resumes or settles its unfinished jobs at
the next start, and a repeated ``job_id`` is answered from here.

Secrets: a job record never holds a token.  To resume a job after a crash
without service credentials, the caller's token is kept in a separate table
while the job is unfinished and deleted the moment it finishes; the database
file is created readable by the service user only (0600).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
import typing

from manila_protector import exception
from manila_protector import jobs

LOG = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    operation TEXT NOT NULL,
    share_id TEXT NOT NULL,
    project_id TEXT,
    request TEXT NOT NULL,
    context TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT,
    error TEXT,
    host TEXT,
    request_id TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    finished_epoch REAL,
    start_notified INTEGER NOT NULL DEFAULT 0,
    end_notified INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
CREATE TABLE IF NOT EXISTS job_tokens (
    job_id TEXT PRIMARY KEY REFERENCES jobs (job_id) ON DELETE CASCADE,
    auth_token TEXT NOT NULL
);
"""

_RECORD_COLUMNS = ("job_id, operation, share_id, project_id, status, result, error, "
                   "created_at, started_at, finished_at, host, request_id")
# Built from constants only; every value is a bound parameter.
_SELECT_RECORD = "SELECT " + _RECORD_COLUMNS + " FROM jobs WHERE job_id = ?"  # noqa: S608
_SELECT_UNNOTIFIED = ("SELECT " + _RECORD_COLUMNS + " FROM jobs "  # noqa: S608
                      "WHERE status IN (?, ?) AND end_notified = 0 ORDER BY finished_at")


class StoredJob(typing.NamedTuple):
    """Everything the runner needs to (re)run a job."""

    record: jobs.JobRecord
    request: jobs.JobRequest
    context: dict[str, typing.Any]
    auth_token: str | None


def _record(row: sqlite3.Row) -> jobs.JobRecord:
    return jobs.JobRecord(
        job_id=row["job_id"], operation=row["operation"], share_id=row["share_id"],
        project_id=row["project_id"], status=row["status"],
        result=json.loads(row["result"]) if row["result"] else None,
        error=json.loads(row["error"]) if row["error"] else None,
        created_at=row["created_at"], started_at=row["started_at"],
        finished_at=row["finished_at"], host=row["host"], request_id=row["request_id"],
    )


class Journal:
    """The worker's durable job journal.

    :param path: the SQLite file (created 0600 with its directory 0700).
    """

    def __init__(self, path: str) -> None:
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if not os.path.exists(path):
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                   timeout=30.0)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a job the caller was told about survives a power cut, not only a crash.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        # Overwrite deleted content (a finished job's token) instead of leaving it in free pages.
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self.checkpoint()
        with self._lock:
            self._db.close()

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database and truncate it.

        Old page images (which may hold a token of a job that has since finished)
        live on in the WAL until a checkpoint; the worker checkpoints at purge and
        at shutdown.
        """
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @contextlib.contextmanager
    def _transaction(self) -> typing.Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- writing --------------------------------------------------------------------

    def accept(
        self,
        request: jobs.JobRequest,
        *,
        project_id: str | None,
        context: dict[str, typing.Any],
        auth_token: str | None,
        host: str,
        request_id: str | None,
    ) -> tuple[jobs.JobRecord, bool]:
        """Record a new job, or return the existing one with this ``job_id``.

        :param context: the request context *without* its token (it is stored as is).
        :param auth_token: kept apart while the job is unfinished (to resume after a crash).
        :returns: ``(record, created)``.
        :raises exception.JobConflict: the job id is known for another operation or share.
        """
        if "auth_token" in context and context["auth_token"]:
            raise ValueError("the journal's context must not carry a token")
        with self._transaction() as db:
            row = db.execute(_SELECT_RECORD, (request.job_id,)).fetchone()
            if row is not None:
                existing = _record(row)
                if not request.same_job_as(existing.operation, existing.share_id):
                    raise exception.JobConflict(
                        f"job {request.job_id} is a {existing.operation} of share "
                        f"{existing.share_id}; it cannot be reused for a {request.operation} "
                        f"of share {request.share_id}",
                        details={"job_id": request.job_id, "operation": existing.operation,
                                 "share_id": existing.share_id},
                    )
                if auth_token and not existing.finished and existing.project_id == project_id:
                    # A resend brings a fresh token: the resumed job will need it.
                    db.execute("INSERT OR REPLACE INTO job_tokens (job_id, auth_token) "
                               "VALUES (?, ?)", (request.job_id, auth_token))
                return existing, False
            record = jobs.JobRecord(
                job_id=request.job_id, operation=request.operation, share_id=request.share_id,
                project_id=project_id, status=jobs.ACCEPTED, created_at=jobs.utcnow(),
                host=host, request_id=request_id,
            )
            db.execute(
                "INSERT INTO jobs (job_id, operation, share_id, project_id, request, context, "
                "status, host, request_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (record.job_id, record.operation, record.share_id, project_id,
                 json.dumps(request.to_dict()), json.dumps(context), record.status, host,
                 request_id, record.created_at),
            )
            if auth_token:
                db.execute("INSERT INTO job_tokens (job_id, auth_token) VALUES (?, ?)",
                           (record.job_id, auth_token))
            return record, True

    def start(self, job_id: str) -> jobs.JobRecord:
        """Mark a job running (again, when it is resumed)."""
        with self._transaction() as db:
            db.execute("UPDATE jobs SET status = ?, started_at = COALESCE(started_at, ?) "
                       "WHERE job_id = ? AND status IN (?, ?)",
                       (jobs.RUNNING, jobs.utcnow(), job_id, jobs.ACCEPTED, jobs.RUNNING))
            return self._get(db, job_id)

    def begin(self, job_id: str) -> StoredJob:
        """Load a job to run it and, unless it is finished, mark it running.

        One transaction: it also records that the job's ``.start`` was sent (the
        runner sends it before a job can begin), so a job costs no separate
        commit for that mark.
        """
        with self._transaction() as db:
            db.execute("UPDATE jobs SET status = ?, started_at = COALESCE(started_at, ?), "
                       "start_notified = 1 WHERE job_id = ? AND status IN (?, ?)",
                       (jobs.RUNNING, jobs.utcnow(), job_id, jobs.ACCEPTED, jobs.RUNNING))
            return self._stored(db, job_id)

    def finish(
        self,
        job_id: str,
        *,
        result: dict[str, typing.Any] | None = None,
        error: dict[str, typing.Any] | None = None,
    ) -> jobs.JobRecord:
        """Record a job's outcome (once) and forget its token."""
        status = jobs.FAILED if error is not None else jobs.SUCCEEDED
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET status = ?, result = ?, error = ?, finished_at = ?, "
                "finished_epoch = ? WHERE job_id = ? AND status NOT IN (?, ?)",
                (status, json.dumps(result) if result is not None else None,
                 json.dumps(error) if error is not None else None, jobs.utcnow(), time.time(),
                 job_id, jobs.SUCCEEDED, jobs.FAILED),
            )
            db.execute("DELETE FROM job_tokens WHERE job_id = ?", (job_id,))
            return self._get(db, job_id)

    def mark_notified(self, job_id: str, *, terminal: bool) -> None:
        """Record that the job's ``.start`` (or terminal) notification was sent."""
        column = "end_notified" if terminal else "start_notified"
        with self._transaction() as db:
            db.execute(f"UPDATE jobs SET {column} = 1 WHERE job_id = ?", (job_id,))  # noqa: S608

    def purge(self, older_than: float) -> int:
        """Forget finished jobs that finished more than ``older_than`` seconds ago."""
        with self._transaction() as db:
            cur = db.execute(
                "DELETE FROM jobs WHERE finished_epoch IS NOT NULL AND finished_epoch < ? "
                "AND end_notified = 1", (time.time() - older_than,))
            purged = cur.rowcount
        self.checkpoint()
        return purged

    # -- reading --------------------------------------------------------------------

    @staticmethod
    def _get(db: sqlite3.Connection, job_id: str) -> jobs.JobRecord:
        row = db.execute(_SELECT_RECORD, (job_id,)).fetchone()
        if row is None:
            raise exception.NotFound(f"job {job_id} not found", details={"job_id": job_id})
        return _record(row)

    def get(self, job_id: str) -> jobs.JobRecord:
        """A job's record.

        :raises exception.NotFound: no such job (or purged).
        """
        with self._lock:
            return self._get(self._db, job_id)

    def load(self, job_id: str) -> StoredJob:
        """Everything needed to (re)run a job."""
        with self._lock:
            return self._stored(self._db, job_id)

    @classmethod
    def _stored(cls, db: sqlite3.Connection, job_id: str) -> StoredJob:
        record = cls._get(db, job_id)
        row = db.execute(
            "SELECT request, context FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        token_row = db.execute(
            "SELECT auth_token FROM job_tokens WHERE job_id = ?", (job_id,)).fetchone()
        return StoredJob(record, jobs.JobRequest(**json.loads(row["request"])),
                         json.loads(row["context"]),
                         token_row["auth_token"] if token_row else None)

    def unfinished(self) -> list[str]:
        """Ids of jobs accepted or running (oldest first)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT job_id FROM jobs WHERE status IN (?, ?) ORDER BY created_at",
                (jobs.ACCEPTED, jobs.RUNNING)).fetchall()
        return [r["job_id"] for r in rows]

    def unnotified(self) -> list[jobs.JobRecord]:
        """Finished jobs whose terminal notification was not recorded as sent."""
        with self._lock:
            rows = self._db.execute(_SELECT_UNNOTIFIED,
                                    (jobs.SUCCEEDED, jobs.FAILED)).fetchall()
        return [_record(r) for r in rows]

    def start_notified(self, job_id: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT start_notified FROM jobs WHERE job_id = ?",
                                   (job_id,)).fetchone()
        return bool(row and row["start_notified"])

    def counts(self) -> dict[str, int]:
        """Jobs per status (for logs and health checks)."""
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) AS jobs FROM jobs GROUP BY status")
            return {row["status"]: row["jobs"] for row in rows}
