"""After a crash the worker resumes or settles every unfinished job, adopts what the job
already made in Manila, and sends each terminal notification exactly once; an old
per-worker journal moves into the job store at the first start."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid

import pytest

from manila_protector import identity
from manila_protector import jobs
from manila_protector.plugins import job_tags
from manila_protector.worker import service as service_mod
from manila_protector.worker.store import api as store_api
from manila_protector.worker.store import schema as store_schema

OPTIONS = {"snapshot_name": "nightly", "description": "before the crash", "force": False}


def store_for(conf):
    """The job store a worker on ``conf`` uses (migrated, as the worker would)."""
    os.makedirs(conf.state_path, exist_ok=True)
    store = store_api.JobStore.from_conf(conf)
    store_schema.upgrade(store.database)
    return store


def left_behind(conf, ctxt, share_id, *, running, start_notified=True):
    """A protect job as a worker that crashed left it in the store."""
    store = store_for(conf)
    request = jobs.JobRequest.build(job_id=str(uuid.uuid4()), operation="protect",
                                    share_id=share_id, parameters=OPTIONS, max_bytes=10_000)
    store.accept(request, owner=conf.host, project_id=ctxt.project_id,
                 context=identity.Caller.from_context(ctxt).to_dict(),
                 auth_token=ctxt.auth_token, host=conf.host, request_id=None)
    if start_notified:
        store.mark_notified(request.job_id, terminal=False)
    if running:
        store.begin(request.job_id, conf.host)
    store.close()
    return request.job_id


def test_unfinished_jobs_are_resumed_at_start(fresh, ctxt):
    share = fresh.standin.create_share(ctxt.project_id, size=1)
    accepted = left_behind(fresh.conf, ctxt, share["id"], running=False, start_notified=False)
    other = fresh.standin.create_share(ctxt.project_id, size=1)
    running = left_behind(fresh.conf, ctxt, other["id"], running=True)
    fresh.make_worker()
    notes = fresh.notifications
    notes.wait_for(lambda _: notes.terminal(accepted) and notes.terminal(running))
    for job_id in (accepted, running):
        assert fresh.client.get_job(ctxt, job_id)["status"] == "succeeded"
        assert len(notes.terminal(job_id)) == 1
    # The job whose .start a crash kept from being sent gets it now; the other does not
    # get a second one.
    starts = [n["payload"]["job_id"] for n in notes.items
              if n["event_type"] == "manila_protector.protect.start"]
    assert starts.count(accepted) == 1
    assert starts.count(running) == 0


def test_resumed_protect_adopts_the_snapshot_made_before_the_crash(fresh, ctxt):
    share = fresh.standin.create_share(ctxt.project_id, size=1)
    job_id = left_behind(fresh.conf, ctxt, share["id"], running=True)
    made = fresh.standin.create_snapshot(share["id"], status="available", name="nightly",
                                         metadata={job_tags.KEY: job_id})
    fresh.make_worker()
    fresh.notifications.wait_for(lambda c: c.terminal(job_id))
    record = fresh.client.get_job(ctxt, job_id)
    assert record["status"] == "succeeded"
    assert record["result"]["snapshot_id"] == made["id"]
    assert [s["id"] for s in fresh.standin.snapshots(share_id=share["id"])] == [made["id"]]


def test_terminal_notification_left_unsent_is_sent_once_at_start(fresh, ctxt):
    share = fresh.standin.create_share(ctxt.project_id, size=1)
    job_id = left_behind(fresh.conf, ctxt, share["id"], running=True)
    store = store_for(fresh.conf)
    store.finish(job_id, fresh.conf.host,
                 error={"code": "operation_failed", "message": "m", "retryable": False,
                        "request_id": None, "details": {}})
    store.close()
    fresh.restart()
    fresh.notifications.wait_for(lambda c: c.terminal(job_id))
    fresh.restart()
    # A second restart finds nothing to send: still one .error.
    assert [n["event_type"] for n in fresh.notifications.terminal(job_id)] == [
        "manila_protector.protect.error"]


def test_finished_jobs_leave_no_token_on_disk(fresh, ctxt):
    share = fresh.standin.create_share(ctxt.project_id, size=1)
    fresh.make_worker()
    job_id = str(uuid.uuid4())
    fresh.client.protect(ctxt, job_id, share["id"], OPTIONS)
    store = store_for(fresh.conf)
    stored = store.load(job_id)
    assert stored.record.status == "succeeded"
    assert stored.auth_token is None
    assert ctxt.auth_token not in repr(stored.record.to_dict())
    assert ctxt.auth_token not in repr(stored.context)
    store.close()
    data = b""
    for name in os.listdir(fresh.conf.state_path):
        path = os.path.join(fresh.conf.state_path, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                data += f.read()
    assert job_id.encode() in data
    assert ctxt.auth_token.encode() not in data


def test_a_second_worker_on_the_same_state_path_is_refused(fresh):
    fresh.make_worker()
    second = service_mod.WorkerService(fresh.conf, transport=fresh.transport,
                                       notification_transport=fresh.transport)
    with pytest.raises(service_mod.ConfigurationError) as info:
        second.start()
    assert "in use by another worker" in str(info.value)


def test_an_old_journals_unfinished_job_moves_into_the_store_and_runs(fresh, ctxt):
    share = fresh.standin.create_share(ctxt.project_id, size=1)
    job_id = str(uuid.uuid4())
    request = jobs.JobRequest.build(job_id=job_id, operation="protect", share_id=share["id"],
                                    parameters=OPTIONS, max_bytes=10_000)
    os.makedirs(fresh.conf.state_path, exist_ok=True)
    journal = os.path.join(fresh.conf.state_path, "jobs.sqlite")
    db = sqlite3.connect(journal)
    db.executescript("""
        CREATE TABLE jobs (job_id TEXT PRIMARY KEY, operation TEXT, share_id TEXT,
            project_id TEXT, request TEXT, context TEXT, status TEXT, result TEXT,
            error TEXT, host TEXT, request_id TEXT, created_at TEXT, started_at TEXT,
            finished_at TEXT, finished_epoch REAL, start_notified INTEGER DEFAULT 0,
            end_notified INTEGER DEFAULT 0);
        CREATE TABLE job_tokens (job_id TEXT PRIMARY KEY, auth_token TEXT);""")
    db.execute("INSERT INTO jobs (job_id, operation, share_id, project_id, request, context, "
               "status, host, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (job_id, "protect", share["id"], ctxt.project_id, json.dumps(request.to_dict()),
                json.dumps({"project_id": ctxt.project_id, "roles": ["member"]}), "running",
                "old-host", jobs.utcnow()))
    db.execute("INSERT INTO job_tokens VALUES (?, ?)", (job_id, ctxt.auth_token))
    db.commit()
    db.close()

    fresh.make_worker()

    fresh.notifications.wait_for(lambda c: c.terminal(job_id))
    assert fresh.client.get_job(ctxt, job_id)["status"] == "succeeded"
    assert not os.path.exists(journal)  # and the token it kept in clear with it


def test_housekeeping_resending_while_jobs_finish_sends_each_end_once(fresh, ctxt):
    # The housekeeping's resend runs while the worker's own jobs finish: it must not
    # send a terminal notification that the job's run is sending (found by bench.fleet:
    # seven jobs of 240 had two .end from one live worker).
    worker = fresh.make_worker()
    shares = fresh.standin.create_shares(ctxt.project_id, 24, size=1)
    job_ids = [str(uuid.uuid4()) for _ in shares]
    notes = fresh.notifications
    done = threading.Event()
    resent = []

    def housekeeping() -> None:
        while not done.is_set():
            resent.append(worker.runner.resend_notifications())

    resender = threading.Thread(target=housekeeping)
    resender.start()
    try:
        for job_id, share_id in zip(job_ids, shares, strict=True):
            fresh.client.protect(ctxt, job_id, share_id, OPTIONS, cast=True)
        notes.wait_for(lambda _: all(notes.terminal(j) for j in job_ids))
    finally:
        done.set()
        resender.join()
    # Every job's .end is recorded as sent: a late duplicate would be a resend now.
    assert worker.runner.resend_notifications() == 0
    assert [len(notes.terminal(j)) for j in job_ids] == [1] * len(job_ids)
    assert sum(resent) == 0


def test_a_job_of_a_live_worker_left_unscheduled_is_resumed_by_its_housekeeping(fresh, ctxt):
    # What a run that stopped on a store error leaves (MariaDB answered "Too many
    # connections" to begin, in bench.fleet): the job is unfinished and this worker's,
    # and no thread of it holds the job.  Only a restart resumed it.
    fresh.conf.set_override("housekeeping_interval", 1, group="worker")
    fresh.make_worker()
    share = fresh.standin.create_share(ctxt.project_id, size=1)
    stranded = left_behind(fresh.conf, ctxt, share["id"], running=True)
    notes = fresh.notifications
    notes.wait_for(lambda _: notes.terminal(stranded), what="the stranded job's end")
    assert fresh.client.get_job(ctxt, stranded)["status"] == "succeeded"
    assert len(notes.terminal(stranded)) == 1
    assert len(fresh.standin.snapshots(share_id=share["id"])) == 1
