"""After a crash the worker resumes or settles every unfinished job, adopts what the job
already made in Manila, and sends each terminal notification exactly once."""

from __future__ import annotations

import os
import uuid

import pytest

from manila_protector import identity
from manila_protector import jobs
from manila_protector.plugins import job_tags
from manila_protector.worker import journal as journal_mod
from manila_protector.worker import service as service_mod

OPTIONS = {"snapshot_name": "nightly", "description": "before the crash", "force": False}


def journal_for(conf):
    os.makedirs(conf.state_path, exist_ok=True)
    return journal_mod.Journal(os.path.join(conf.state_path, "jobs.sqlite"))


def left_behind(conf, ctxt, share_id, *, running, start_notified=True):
    """A protect job as a crashed worker left it in its journal."""
    journal = journal_for(conf)
    request = jobs.JobRequest.build(job_id=str(uuid.uuid4()), operation="protect",
                                    share_id=share_id, parameters=OPTIONS, max_bytes=10_000)
    journal.accept(request, project_id=ctxt.project_id,
                   context=identity.Caller.from_context(ctxt).to_dict(),
                   auth_token=ctxt.auth_token,
                   host=conf.host, request_id=None)
    if start_notified:
        journal.mark_notified(request.job_id, terminal=False)
    if running:
        journal.start(request.job_id)
    journal.close()
    return request.job_id


def test_unfinished_jobs_are_resumed_at_start(conf, ctxt, share, standin, make_worker,
                                              notifications, client):
    accepted = left_behind(conf, ctxt, share["id"], running=False, start_notified=False)
    other = standin.create_share(ctxt.project_id, size=1)
    running = left_behind(conf, ctxt, other["id"], running=True)
    make_worker()
    notifications.wait_for(lambda _: notifications.terminal(accepted)
                           and notifications.terminal(running))
    for job_id in (accepted, running):
        assert client.get_job(ctxt, job_id)["status"] == "succeeded"
        assert len(notifications.terminal(job_id)) == 1
    # The job whose .start a crash kept from being sent gets it now; the other does not
    # get a second one.
    starts = [n["payload"]["job_id"] for n in notifications.items
              if n["event_type"] == "manila_protector.protect.start"]
    assert starts.count(accepted) == 1
    assert starts.count(running) == 0


def test_resumed_protect_adopts_the_snapshot_made_before_the_crash(
        conf, ctxt, share, standin, make_worker, notifications, client):
    job_id = left_behind(conf, ctxt, share["id"], running=True)
    made = standin.create_snapshot(share["id"], status="available", name="nightly",
                                   metadata={job_tags.KEY: job_id})
    make_worker()
    notifications.wait_for(lambda _: notifications.terminal(job_id))
    record = client.get_job(ctxt, job_id)
    assert record["status"] == "succeeded"
    assert record["result"]["snapshot_id"] == made["id"]
    assert [s["id"] for s in standin.snapshots(share_id=share["id"])] == [made["id"]]


def test_terminal_notification_left_unsent_is_sent_once_at_start(
        conf, ctxt, share, make_worker, notifications, worker_restart):
    job_id = left_behind(conf, ctxt, share["id"], running=True)
    journal = journal_for(conf)
    journal.finish(job_id, error={"code": "operation_failed", "message": "m",
                                  "retryable": False, "request_id": None, "details": {}})
    journal.close()
    worker_restart()
    notifications.wait_for(lambda _: notifications.terminal(job_id))
    worker_restart()
    # A second restart finds nothing to send: still one .error.
    assert [n["event_type"] for n in notifications.terminal(job_id)] == [
        "manila_protector.protect.error"]


def test_finished_jobs_leave_no_token_on_disk(conf, ctxt, share, worker, client):
    job_id = str(uuid.uuid4())
    client.protect(ctxt, job_id, share["id"], OPTIONS)
    journal = journal_for(conf)
    stored = journal.load(job_id)
    assert stored.record.status == "succeeded"
    assert stored.auth_token is None
    assert ctxt.auth_token not in repr(stored.record.to_dict())
    assert ctxt.auth_token not in repr(stored.context)
    journal.checkpoint()
    journal.close()
    data = b""
    for name in os.listdir(conf.state_path):
        if name.startswith("jobs.sqlite"):
            with open(os.path.join(conf.state_path, name), "rb") as f:
                data += f.read()
    assert job_id.encode() in data
    assert ctxt.auth_token.encode() not in data


def test_a_second_worker_on_the_same_state_path_is_refused(conf, transport, worker):
    second = service_mod.WorkerService(conf, transport=transport,
                                       notification_transport=transport)
    with pytest.raises(RuntimeError) as info:
        second.start()
    assert "in use by another worker" in str(info.value)
