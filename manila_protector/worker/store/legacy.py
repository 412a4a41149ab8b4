"""Upgrading from the per-worker SQLite journal: its unfinished work moves into the store.

Releases before the shared job store kept each worker's jobs in
``$state_path/jobs.sqlite``.  At its first start with the store, a worker moves
the jobs that journal still had work for -- unfinished ones, and finished ones
whose terminal notification was never recorded as sent -- into the store as its
own, then deletes the journal (and its write-ahead log), so that the tokens it
held in clear are gone from disk.  Finished, announced jobs are not moved: the
journal kept them only to answer a repeated ``job_id``.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3

from manila_protector import exception
from manila_protector import jobs
from manila_protector.worker.store import api as store_api

LOG = logging.getLogger(__name__)

#: The journal's file name under state_path.
JOURNAL_FILE = "jobs.sqlite"


def import_journal(state_path: str, store: store_api.JobStore, owner: str) -> int:
    """Move an old journal's pending work into ``store`` (as ``owner``'s) and delete it.

    :returns: the number of jobs moved (0 where there is no journal).
    """
    path = os.path.join(state_path, JOURNAL_FILE)
    if not os.path.exists(path):
        return 0
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        rows = db.execute(
            "SELECT j.*, t.auth_token FROM jobs j LEFT JOIN job_tokens t USING (job_id) "
            "WHERE j.status IN (?, ?) OR j.end_notified = 0 ORDER BY j.created_at",
            (jobs.ACCEPTED, jobs.RUNNING)).fetchall()
    except sqlite3.DatabaseError as exc:
        db.close()
        LOG.warning("the old journal %s cannot be read (%s); left where it is", path, exc)
        return 0
    db.close()
    moved = 0
    for row in rows:
        request = jobs.JobRequest(**json.loads(row["request"]))
        try:
            store.accept(request, owner=owner, project_id=row["project_id"],
                         context=json.loads(row["context"]), auth_token=row["auth_token"],
                         host=row["host"] or owner, request_id=row["request_id"])
            if row["status"] in jobs.TERMINAL:
                store.begin(request.job_id, owner)
                outcome = ({"error": json.loads(row["error"])} if row["error"]
                           else {"result": json.loads(row["result"] or "null")})
                store.finish(request.job_id, owner, **outcome)
        except exception.JobConflict:
            continue  # the store knows this job already
        moved += 1
    for suffix in ("", "-wal", "-shm"):
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            pass
    LOG.info("moved %d job(s) of the old journal %s into the job store, and deleted it",
             moved, path)
    return moved
