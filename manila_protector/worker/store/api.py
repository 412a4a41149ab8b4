"""The shared job store: every job of the fleet, claimed once, run by one worker at a time.

It replaces each worker's own SQLite journal (``worker/journal.py``) with one
database for every worker (``[database] connection``: MariaDB/Galera or
PostgreSQL for a fleet, an SQLite file under ``state_path`` on a single host).
The journal's guarantees carry over, now across the fleet:

- **Recorded before it runs**: :meth:`JobStore.accept` commits the job before
  the caller is answered; every change of status is one committed transaction
  (see :mod:`.engine` for the isolation and retry rules).
- **Claimed once**: ``job_id`` is the primary key.  Of any number of concurrent
  accepts of one ``job_id``, by any workers, exactly one returns
  ``created=True``; the others get the existing record, or
  :class:`exception.JobConflict` when it is another operation or share.
- **One owner**: ``owner`` names the worker (group member id) that runs the job.
  :meth:`~JobStore.begin` and :meth:`~JobStore.finish` act only for the current
  owner (a fencing check in the same transaction): a worker whose jobs were
  adopted while it was presumed dead gets :class:`exception.NotOwner` and must
  let the job go.  :meth:`~JobStore.adopt` moves a dead worker's jobs (all, or
  a chunk of the oldest) in one transaction of locking reads, so of several
  adopters each job goes to exactly one.
- **Terminal notification exactly once**: :meth:`~JobStore.finish` records the
  outcome once (a second finish returns the first outcome);
  :meth:`~JobStore.mark_notified` records that the notification went out;
  :meth:`~JobStore.unnotified` lists what a crash left unsent, and adopting a
  dead worker's jobs moves its unsent notifications too.
- **Tokens**: the caller's token of an unfinished job is kept Fernet-encrypted
  (:mod:`.tokens`) in its own table, never in ``jobs`` nor in a record, a message
  or a log line, and deleted in the transaction that finishes the job.
- **Progress**: an unfinished job's record carries its phase
  (:mod:`manila_protector.progress`): ``queued`` from :meth:`~JobStore.accept`,
  then whatever its owner records with :meth:`~JobStore.set_phase` (fenced like
  :meth:`~JobStore.finish`); :meth:`~JobStore.finish` clears it.  Every worker
  reads it with :meth:`~JobStore.get` and :meth:`~JobStore.list_jobs`.
- **Bounded answers**: :meth:`~JobStore.list_jobs` returns at most
  :data:`MAX_PAGE` records per call, newest first, paged stably by
  ``(created_at, job_id)``.

The store does not decide identity: callers pass the project whose jobs may be
seen (or None for an administrator), decided once where the request entered.

Why this module is over the house's ~500 lines: it is the store's one public
surface, and each method is one transaction whose fencing and exactly-once
rules are written beside it; splitting them would scatter the invariants above.
The parts that stand alone already live apart (:mod:`.engine`, :mod:`.listing`,
:mod:`.tokens`, :mod:`.models`).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import typing

import sqlalchemy as sa

from manila_protector import exception
from manila_protector import jobs
from manila_protector import progress
from manila_protector.worker.store import engine as engine_mod
from manila_protector.worker.store import listing
from manila_protector.worker.store import models
from manila_protector.worker.store import schema
from manila_protector.worker.store import tokens as tokens_mod

LOG = logging.getLogger(__name__)

#: The most records one :meth:`JobStore.list_jobs` call returns.
MAX_PAGE = listing.MAX_PAGE
#: Jobs forgotten per transaction by :meth:`JobStore.purge`.
PURGE_BATCH = 1000
#: The key file generated for an SQLite store without configured keys (under state_path).
KEY_FILE = "token.key"
UNFINISHED = frozenset({jobs.ACCEPTED, jobs.RUNNING})

_JOBS = models.jobs
_TOKENS = models.job_tokens
# The ids of a dead worker's jobs are moved in chunks of this many (bound parameters).
_ADOPT_CHUNK = 500


@dataclasses.dataclass(frozen=True)
class Leftover:
    """A snapshot or share a failed job made and could not delete."""

    job_id: str
    share_id: str
    kind: str  # "snapshot" or "share"
    resource_id: str


def _leftover(error: dict[str, typing.Any] | None) -> tuple[str | None, str | None]:
    """What a failed job's error says it left behind (``details.cleaned_up`` false)."""
    details = (error or {}).get("details") or {}
    if details.get("cleaned_up") is not False:
        return None, None
    for kind in ("snapshot", "share"):
        resource_id = details.get(f"{kind}_id")
        if isinstance(resource_id, str) and len(resource_id) <= 36:
            return kind, resource_id
    return None, None


@dataclasses.dataclass(frozen=True)
class StoredJob:
    """Everything a worker needs to (re)run a job: its record, request, context and token."""

    record: jobs.JobRecord
    request: jobs.JobRequest
    #: The request context without its secrets.
    context: dict[str, typing.Any]
    #: The caller's token (decrypted), None if the job has none (or it was undecryptable).
    auth_token: str | None = dataclasses.field(default=None, repr=False)
    owner: str | None = None
    #: Whether its ``.start`` was recorded as sent (:meth:`JobStore.mark_notified`).
    start_notified: bool = False


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def _iso(value: datetime.datetime | None) -> str | None:
    """A stored (naive UTC) time as job records show it (what :func:`jobs.utcnow` gives)."""
    if value is None:
        return None
    return value.replace(tzinfo=datetime.UTC).isoformat(timespec="microseconds")


def _loads(text: str | None) -> typing.Any:
    return json.loads(text) if text else None


def _record(row: sa.Row[typing.Any]) -> jobs.JobRecord:
    return jobs.JobRecord(
        job_id=row.job_id, operation=row.operation, share_id=row.share_id,
        project_id=row.project_id, status=row.status, result=_loads(row.result),
        error=_loads(row.error), created_at=_iso(row.created_at),
        started_at=_iso(row.started_at), finished_at=_iso(row.finished_at), host=row.host,
        request_id=row.request_id, phase=row.phase, phase_detail=row.phase_detail,
        phase_started_at=_iso(row.phase_started_at), deadline=_iso(row.deadline))


def _not_found(job_id: str) -> exception.NotFound:
    return exception.NotFound(f"job {job_id} not found", details={"job_id": job_id})


def _row(conn: sa.Connection, job_id: str, *, lock: bool = False) -> sa.Row[typing.Any]:
    query = sa.select(_JOBS).where(_JOBS.c.job_id == job_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise _not_found(job_id)
    return row


def _put_token(conn: sa.Connection, job_id: str, ciphertext: str) -> None:
    # The job's row is locked (or SQLite is serialized): no concurrent insert.
    updated = conn.execute(sa.update(_TOKENS).where(_TOKENS.c.job_id == job_id)
                           .values(token=ciphertext))
    if not updated.rowcount:
        conn.execute(sa.insert(_TOKENS).values(job_id=job_id, token=ciphertext))


def _drop_token(conn: sa.Connection, job_id: str) -> None:
    conn.execute(sa.delete(_TOKENS).where(_TOKENS.c.job_id == job_id))


class JobStore:
    """The shared job store (thread-safe; every method is one transaction, but
    :meth:`purge`, which takes one per batch).

    :param database: the database (:class:`.engine.Database`).
    :param cipher: encrypts and decrypts the callers' tokens.
    """

    def __init__(self, database: engine_mod.Database, cipher: tokens_mod.TokenCipher) -> None:
        self._db = database
        self._cipher = cipher

    @classmethod
    def from_conf(cls, conf: typing.Any) -> JobStore:
        """The store of a parsed configuration (``[database]``, ``[worker] token_keys``).

        Without ``token_keys`` an SQLite store uses (or generates) the key file
        ``token.key`` beside the database file (so that every worker of the host
        sharing that file shares the key); a shared database refuses to start
        without them.

        :raises ValueError: a key is not a Fernet key, or a shared store has none.
        """
        url = conf.database.connection
        keys = list(conf.worker.token_keys or [])
        if keys:
            cipher = tokens_mod.TokenCipher(keys)
        elif engine_mod.is_sqlite(url):
            cipher = tokens_mod.TokenCipher.from_key_file(
                os.path.join(engine_mod.sqlite_directory(url) or conf.state_path, KEY_FILE))
        else:
            raise ValueError("[worker] token_keys must be set, the same on every worker, "
                             "when [database] connection is a shared database")
        return cls(engine_mod.Database(url, engine_mod.facade_options(conf.database)), cipher)

    @classmethod
    def from_url(cls, url: str, *, token_keys: typing.Sequence[str | bytes] | None = None,
                 key_file: str | None = None, **options: typing.Any) -> JobStore:
        """A store on ``url`` with the given keys (or the key file); for tools and tests.

        :param options: enginefacade settings (``max_pool_size``, ``max_retries``...).
        """
        if token_keys:
            cipher = tokens_mod.TokenCipher(token_keys)
        elif key_file:
            cipher = tokens_mod.TokenCipher.from_key_file(key_file)
        else:
            raise ValueError("token_keys or key_file is needed")
        return cls(engine_mod.Database(url, options), cipher)

    @property
    def database(self) -> engine_mod.Database:
        """The database (for ``db sync`` and the schema check)."""
        return self._db

    def check_schema(self) -> str:
        """Refuse a database whose schema is not this release's (call it at start).

        :returns: the schema revision.
        :raises exception.StoreSchemaOutdated: naming ``manila-protector-manage db sync``.
        :raises exception.StoreUnavailable: the database cannot be reached.
        """
        return schema.check_current(self._db)

    def close(self) -> None:
        """Close the pooled connections."""
        self._db.dispose()

    # -- writing --------------------------------------------------------------------

    def accept(
        self,
        request: jobs.JobRequest,
        *,
        owner: str,
        project_id: str | None,
        context: dict[str, typing.Any],
        auth_token: str | None,
        host: str | None,
        request_id: str | None,
    ) -> tuple[jobs.JobRecord, bool]:
        """Record a new job owned by ``owner``, or return the existing job with this ``job_id``.

        A resend of an unfinished job by its own project replaces the stored token
        with the new one (the resumed job will need a fresh one).

        :param owner: the worker member id that will run the job.
        :param context: the request context *without* its secrets (stored as JSON).
        :param auth_token: kept encrypted while the job is unfinished.
        :returns: ``(record, created)``; ``created`` is True for exactly one caller.
        :raises exception.JobConflict: the job id is known for another operation or share.
        :raises ValueError: the context carries a secret, or no owner is given.
        """
        if any(context.get(key) for key in jobs.SECRET_CONTEXT_KEYS):
            raise ValueError("the job store's context must not carry a token")
        if not owner:
            raise ValueError("a job needs an owner")
        request_json = json.dumps(request.to_dict())
        context_json = json.dumps(context, default=str)
        ciphertext = self._cipher.encrypt(auth_token) if auth_token else None

        def body(conn: sa.Connection) -> tuple[jobs.JobRecord, bool]:
            now = _now()
            # Inserted first: a locking read of an absent key deadlocks concurrent
            # accepts on MariaDB (see engine.insert_new).
            if engine_mod.insert_new(conn, sa.insert(_JOBS).values(
                    job_id=request.job_id, operation=request.operation,
                    share_id=request.share_id, project_id=project_id, owner=owner,
                    status=jobs.ACCEPTED, request=request_json, context=context_json,
                    host=host, request_id=request_id, created_at=now, start_notified=False,
                    end_notified=False, phase=progress.QUEUED, phase_started_at=now)):
                if ciphertext:
                    conn.execute(sa.insert(_TOKENS).values(job_id=request.job_id,
                                                           token=ciphertext))
                return _record(_row(conn, request.job_id)), True
            existing = _record(_row(conn, request.job_id, lock=True))
            if not request.same_job_as(existing.operation, existing.share_id):
                raise exception.JobConflict(
                    f"job {request.job_id} is a {existing.operation} of share "
                    f"{existing.share_id}; it cannot be reused for a {request.operation} "
                    f"of share {request.share_id}",
                    details={"job_id": request.job_id, "operation": existing.operation,
                             "share_id": existing.share_id})
            if ciphertext and not existing.finished and existing.project_id == project_id:
                _put_token(conn, request.job_id, ciphertext)
            return existing, False

        return self._db.transaction(f"accepting job {request.job_id}", body)

    def begin(self, job_id: str, owner: str) -> StoredJob:
        """Load a job to run it and, unless it is finished, mark it running (again).

        One transaction.  A finished job is returned as it is, whoever owns it.
        (That its ``.start`` went out is recorded apart, by :meth:`mark_notified`,
        once the broker confirmed it.)

        :raises exception.NotOwner: the job is unfinished and ``owner`` no longer owns it.
        :raises exception.NotFound: no such job.
        """
        def body(conn: sa.Connection) -> tuple[sa.Row[typing.Any], str | None]:
            row = _row(conn, job_id, lock=True)
            if row.status in UNFINISHED:
                self._fence(row, owner, "begin")
                conn.execute(sa.update(_JOBS).where(_JOBS.c.job_id == job_id).values(
                    status=jobs.RUNNING,
                    started_at=sa.func.coalesce(_JOBS.c.started_at, _now())))
                row = _row(conn, job_id)
            return row, self._token(conn, job_id)

        return self._stored(*self._db.transaction(f"beginning job {job_id}", body))

    def finish(
        self,
        job_id: str,
        owner: str,
        *,
        result: dict[str, typing.Any] | None = None,
        error: dict[str, typing.Any] | None = None,
    ) -> jobs.JobRecord:
        """Record a job's outcome (once: a finished job keeps its first) and delete its token.

        :param error: the failure (:meth:`exception.ProtectorError.to_dict`); None: success.
        :raises exception.NotOwner: the job is unfinished and ``owner`` no longer owns it
            (nothing is changed: the new owner finishes it).
        :raises exception.NotFound: no such job.
        """
        status = jobs.FAILED if error is not None else jobs.SUCCEEDED

        kind, leftover = _leftover(error)

        def body(conn: sa.Connection) -> jobs.JobRecord:
            row = _row(conn, job_id, lock=True)
            if row.status in UNFINISHED:
                self._fence(row, owner, "finish")
                conn.execute(sa.update(_JOBS).where(_JOBS.c.job_id == job_id).values(
                    status=status,
                    result=json.dumps(result) if result is not None else None,
                    error=json.dumps(error) if error is not None else None,
                    finished_at=_now(), phase=None, phase_detail=None, phase_started_at=None,
                    deadline=None,
                    leftover_kind=kind, leftover_id=leftover))
                row = _row(conn, job_id)
            _drop_token(conn, job_id)
            return _record(row)

        return self._db.transaction(f"finishing job {job_id}", body)

    def set_phase(self, job_id: str, owner: str, phase: str, *, detail: str | None = None,
                  deadline: datetime.datetime | None = None) -> None:
        """Record the phase a running job entered (now), what it is about and its deadline.

        One fenced UPDATE, like :meth:`finish`: only the owner of an unfinished job
        records its phase.  (A job records several phases; reading its record back
        each time cost a protect a quarter of its worker's CPU time in
        ``bench.fleet``: whoever needs the record reads it with :meth:`get`.)

        :param phase: one of :data:`manila_protector.progress.PHASES`.
        :param detail: what the phase is about; cut to ``progress.MAX_DETAIL`` characters.
        :param deadline: when the stage must end by (aware, or naive UTC); None: unbounded.
        :raises exception.NotOwner: the job is finished, or another worker's now.
        :raises exception.NotFound: no such job.
        :raises ValueError: an unknown phase.
        """
        if phase not in progress.PHASES:
            raise ValueError(f"unknown phase {phase!r}")
        if deadline is not None and deadline.tzinfo is not None:
            deadline = deadline.astimezone(datetime.UTC).replace(tzinfo=None)
        detail = detail[:progress.MAX_DETAIL] if detail else None

        def body(conn: sa.Connection) -> None:
            done = conn.execute(sa.update(_JOBS).where(
                _JOBS.c.job_id == job_id, _JOBS.c.owner == owner,
                _JOBS.c.status.in_(sorted(UNFINISHED))).values(
                phase=phase, phase_detail=detail, phase_started_at=_now(),
                deadline=deadline))
            if done.rowcount:
                return
            row = _row(conn, job_id)  # not recorded: say why
            if row.status not in UNFINISHED:
                raise exception.NotOwner(
                    f"job {job_id} is {row.status}; its phase is no longer recorded",
                    details={"job_id": job_id, "owner": row.owner})
            self._fence(row, owner, "record the phase of")

        self._db.transaction(f"recording job {job_id}'s phase", body)

    def leftovers(self, limit: int = 100) -> list[Leftover]:
        """What failed jobs made and could not delete (oldest first), for the sweeper."""
        return self._db.transaction("listing leftovers", lambda conn: [
            Leftover(job_id=row.job_id, share_id=row.share_id, kind=row.leftover_kind,
                     resource_id=row.leftover_id)
            for row in conn.execute(
                sa.select(_JOBS.c.job_id, _JOBS.c.share_id, _JOBS.c.leftover_kind,
                          _JOBS.c.leftover_id)
                .where(_JOBS.c.leftover_id.is_not(None))
                .order_by(_JOBS.c.finished_at, _JOBS.c.job_id).limit(limit))])

    def swept(self, job_id: str) -> None:
        """Record that what the job left is gone (its error keeps naming it)."""
        self._db.transaction(f"recording job {job_id}'s leftover swept", lambda conn:
                             conn.execute(sa.update(_JOBS).where(_JOBS.c.job_id == job_id)
                                          .values(leftover_kind=None, leftover_id=None)))

    def mark_notified(self, job_id: str, *, terminal: bool) -> None:
        """Record that the job's ``.start`` (or terminal) notification was sent.

        :raises exception.NotFound: no such job.
        """
        column = "end_notified" if terminal else "start_notified"

        def body(conn: sa.Connection) -> None:
            done = conn.execute(sa.update(_JOBS).where(_JOBS.c.job_id == job_id)
                                .values({column: True}))
            if not done.rowcount:
                raise _not_found(job_id)

        self._db.transaction(f"marking job {job_id} notified", body)

    def adopt(self, dead_owner: str, new_owner: str, *, limit: int | None = None) -> list[str]:
        """Move the jobs of a worker gone for good to ``new_owner``, atomically.

        Moves its oldest unfinished jobs, at most ``limit`` of them (their records
        then name ``new_owner`` as ``host``), and all its finished jobs whose
        terminal notification was not recorded as sent (the new owner finds those
        with :meth:`unnotified`).  Of several workers adopting the same dead one at
        once, each job goes to exactly one of them: so a fleet spreads a dead
        worker's jobs by each live worker adopting a chunk at a time.

        :param limit: the most unfinished jobs to move (None: all of them).
        :returns: the ids of the unfinished jobs moved (oldest first): the jobs to resume.
        :raises ValueError: ``dead_owner`` is ``new_owner``, or ``limit`` is below 1.
        """
        if dead_owner == new_owner:
            raise ValueError("a worker cannot adopt its own jobs")
        if limit is not None and limit < 1:
            raise ValueError(f"adopt at least one job, not {limit}")

        def body(conn: sa.Connection) -> list[str]:
            unfinished = [row.job_id for row in conn.execute(
                sa.select(_JOBS.c.job_id)
                .where(_JOBS.c.owner == dead_owner, _JOBS.c.status.in_(sorted(UNFINISHED)))
                .order_by(_JOBS.c.created_at, _JOBS.c.job_id).limit(limit).with_for_update())]
            unsent = [row.job_id for row in conn.execute(
                sa.select(_JOBS.c.job_id)
                .where(_JOBS.c.owner == dead_owner, _JOBS.c.status.in_(sorted(jobs.TERMINAL)),
                       _JOBS.c.end_notified.is_(False))
                .order_by(_JOBS.c.created_at, _JOBS.c.job_id).with_for_update())]
            # An unfinished job runs on the new owner: its record names it (``host``);
            # a finished one keeps the host that ran it.
            for ids, values in ((unfinished, {"owner": new_owner, "host": new_owner}),
                                (unsent, {"owner": new_owner})):
                for start in range(0, len(ids), _ADOPT_CHUNK):
                    conn.execute(sa.update(_JOBS).where(
                        _JOBS.c.job_id.in_(ids[start:start + _ADOPT_CHUNK]),
                        _JOBS.c.owner == dead_owner).values(**values))
            return unfinished

        moved = self._db.transaction(f"adopting the jobs of {dead_owner}", body)
        if moved:
            LOG.info("worker %s adopted %d unfinished job(s) of %s", new_owner, len(moved),
                     dead_owner)
        return moved

    def steal(self, thief: str, *, limit: int, keep: int) -> list[str]:
        """Move jobs waiting on the busiest other worker to ``thief``, atomically.

        Only jobs no worker has begun (``accepted``): the owner that finds one
        gone when it comes to run it leaves it (``begin`` is fenced on the owner).
        The busiest owner is the one with the most such jobs; it keeps ``keep`` of
        them, and never fewer than the thief will then hold: at most half the
        difference moves, oldest first, at most ``limit``.  Of several thieves at
        once, each job goes to exactly one.

        :returns: the ids moved (oldest first): the jobs to schedule on ``thief``.
        :raises ValueError: ``limit`` below 1 or ``keep`` below 0.
        """
        if limit < 1 or keep < 0:
            raise ValueError(f"steal at least one job keeping none or more, not {limit}/{keep}")

        def body(conn: sa.Connection) -> list[str]:
            waiting = dict(conn.execute(
                sa.select(_JOBS.c.owner, sa.func.count())
                .where(_JOBS.c.status == jobs.ACCEPTED).group_by(_JOBS.c.owner)).all())
            mine = int(waiting.pop(thief, 0))
            if not waiting:
                return []
            victim, count = max(waiting.items(), key=lambda item: (item[1], item[0]))
            share = min(limit, int(count) - keep, (int(count) - mine) // 2)
            if share < 1:
                return []
            ids = [row.job_id for row in conn.execute(
                sa.select(_JOBS.c.job_id)
                .where(_JOBS.c.owner == victim, _JOBS.c.status == jobs.ACCEPTED)
                .order_by(_JOBS.c.created_at, _JOBS.c.job_id).limit(share).with_for_update())]
            if ids:
                conn.execute(sa.update(_JOBS).where(
                    _JOBS.c.job_id.in_(ids), _JOBS.c.owner == victim,
                    _JOBS.c.status == jobs.ACCEPTED).values(owner=thief, host=thief))
            return ids

        moved = self._db.transaction(f"taking over jobs waiting elsewhere for {thief}", body)
        if moved:
            LOG.info("worker %s took over %d job(s) waiting on a busier worker", thief,
                     len(moved))
        return moved

    def purge(self, older_than: float) -> int:
        """Forget finished, notified jobs that finished more than ``older_than`` seconds ago.

        Housekeeping, in transactions of at most :data:`PURGE_BATCH` jobs each (a
        Galera write set stays small; SQLite's write lock is held briefly), so a
        failure part way leaves only fewer jobs forgotten.

        :returns: the number of jobs forgotten.
        """
        cutoff = _now() - datetime.timedelta(seconds=older_than)
        expired = sa.and_(_JOBS.c.finished_at.is_not(None), _JOBS.c.finished_at < cutoff,
                          _JOBS.c.end_notified.is_(True))

        def body(conn: sa.Connection) -> int:
            ids = conn.execute(sa.select(_JOBS.c.job_id).where(expired)
                               .order_by(_JOBS.c.finished_at).limit(PURGE_BATCH)
                               ).scalars().all()
            if not ids:
                return 0
            conn.execute(sa.delete(_TOKENS).where(_TOKENS.c.job_id.in_(ids)))
            return int(conn.execute(sa.delete(_JOBS).where(_JOBS.c.job_id.in_(ids),
                                                            expired)).rowcount)

        purged = 0
        while True:
            batch = self._db.transaction("purging finished jobs", body)
            purged += batch
            if batch < PURGE_BATCH:
                return purged

    # -- reading --------------------------------------------------------------------

    def get(self, job_id: str) -> jobs.JobRecord:
        """A job's record (the caller decides whether the asker may see it).

        :raises exception.NotFound: no such job (or purged).
        """
        return self._db.transaction(f"reading job {job_id}",
                                    lambda conn: _record(_row(conn, job_id)))

    def load(self, job_id: str) -> StoredJob:
        """Everything needed to run a job, changing nothing.

        :raises exception.NotFound: no such job.
        """
        def body(conn: sa.Connection) -> tuple[sa.Row[typing.Any], str | None]:
            return _row(conn, job_id), self._token(conn, job_id)

        return self._stored(*self._db.transaction(f"loading job {job_id}", body))

    def end_notified(self, job_id: str) -> bool:
        """Whether the job's terminal notification was recorded as sent.

        :raises exception.NotFound: no such job.
        """
        return self._db.transaction(
            f"reading job {job_id}", lambda conn: bool(_row(conn, job_id).end_notified))

    def unfinished(self, owner: str) -> list[str]:
        """Ids of the jobs ``owner`` has accepted or is running (oldest first)."""
        return self._db.transaction("listing unfinished jobs", lambda conn: [
            row.job_id for row in conn.execute(
                sa.select(_JOBS.c.job_id)
                .where(_JOBS.c.owner == owner, _JOBS.c.status.in_(sorted(UNFINISHED)))
                .order_by(_JOBS.c.created_at, _JOBS.c.job_id))])

    def unnotified(self, owner: str) -> list[jobs.JobRecord]:
        """``owner``'s finished jobs whose terminal notification was not recorded as sent."""
        return self._db.transaction("listing unnotified jobs", lambda conn: [
            _record(row) for row in conn.execute(
                sa.select(_JOBS)
                .where(_JOBS.c.owner == owner, _JOBS.c.status.in_(sorted(jobs.TERMINAL)),
                       _JOBS.c.end_notified.is_(False))
                .order_by(_JOBS.c.finished_at, _JOBS.c.job_id))])

    def owners(self) -> set[str]:
        """Every owner with work left: unfinished jobs or unsent terminal notifications.

        (A worker comparing these with the live group members finds whom to adopt.)
        """
        return self._db.transaction("listing owners", lambda conn: {
            row.owner for row in conn.execute(
                sa.select(_JOBS.c.owner).where(self._has_work()).distinct())})

    def counts(self, owner: str | None = None) -> dict[str, int]:
        """Jobs per status, of one owner or of all (for logs and health checks)."""
        query = sa.select(_JOBS.c.status, sa.func.count()).group_by(_JOBS.c.status)
        if owner is not None:
            query = query.where(_JOBS.c.owner == owner)
        return self._db.transaction("counting jobs", lambda conn: {
            row[0]: int(row[1]) for row in conn.execute(query)})

    def list_jobs(
        self,
        *,
        project_id: str | None,
        status: str | None = None,
        operation: str | None = None,
        share_id: str | None = None,
        since: datetime.datetime | None = None,
        limit: int = MAX_PAGE,
        marker: str | None = None,
    ) -> list[jobs.JobRecord]:
        """Jobs, newest first, in pages: pass the last one's ``job_id`` as the next ``marker``.

        :param project_id: whose jobs; None means every project's (an administrator:
            the caller decides that, once). Required: no default can widen a listing.
        :param since: jobs created at or after this time (naive means UTC).
        :param limit: at most this many (1..:data:`MAX_PAGE`).
        :param marker: the last job of the previous page.
        :raises exception.InvalidRequest: a filter or the limit is out of range.
        :raises exception.NotFound: the marker is no job the caller can see.
        """
        filters = listing.Filters.build(
            project_id=project_id, status=status, operation=operation, share_id=share_id,
            since=since, limit=limit, marker=marker)
        return self._db.transaction("listing jobs", lambda conn: [
            _record(row) for row in listing.page(conn, filters)])

    # -- helpers ----------------------------------------------------------------------

    @staticmethod
    def _has_work() -> sa.ColumnElement[bool]:
        """Rows a worker still has to act on: unfinished, or their end not notified."""
        return sa.or_(_JOBS.c.status.in_(sorted(UNFINISHED)),
                      sa.and_(_JOBS.c.status.in_(sorted(jobs.TERMINAL)),
                              _JOBS.c.end_notified.is_(False)))

    @staticmethod
    def _fence(row: sa.Row[typing.Any], owner: str, what: str) -> None:
        if row.owner != owner:
            raise exception.NotOwner(
                f"job {row.job_id} belongs to worker {row.owner} now; worker {owner} "
                f"may not {what} it", details={"job_id": row.job_id, "owner": row.owner})

    @staticmethod
    def _token(conn: sa.Connection, job_id: str) -> str | None:
        return conn.execute(sa.select(_TOKENS.c.token)
                            .where(_TOKENS.c.job_id == job_id)).scalar_one_or_none()

    def _stored(self, row: sa.Row[typing.Any], ciphertext: str | None) -> StoredJob:
        token = None
        if ciphertext is not None:
            token = self._cipher.decrypt(ciphertext)
            if token is None:
                LOG.warning("job %s (share %s): its stored token cannot be decrypted with the "
                            "configured keys ([worker] token_keys); it runs without it",
                            row.job_id, row.share_id)
        return StoredJob(
            record=_record(row), request=jobs.JobRequest(**json.loads(row.request)),
            context=json.loads(row.context), auth_token=token, owner=row.owner,
            start_notified=bool(row.start_notified))
