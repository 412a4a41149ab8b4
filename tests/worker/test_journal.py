"""The job journal: durable, idempotent, secret-free records."""

import os
import sqlite3
import stat
import subprocess
import sys
import uuid

import pytest

from manila_protector import exception
from manila_protector import jobs
from manila_protector.worker import journal as journal_mod

TOKEN = "gAAAAA-secret-token-value"


SHARE = "3f1c2a9e-5b7d-4c1e-9a0b-1234567890ab"


def request(op="protect", share=SHARE, job_id=None):
    saved = {"snapshot_id": "s", "share_id": share, "size": 1, "share_proto": "NFS"}
    return jobs.JobRequest.build(
        job_id=job_id or str(uuid.uuid4()), operation=op, share_id=share,
        parameters={"snapshot_name": "n", "description": "d", "force": False},
        saved_info=saved if op in jobs.NEEDS_SAVED_INFO else None, max_bytes=10_000)


@pytest.fixture
def journal(tmp_path):
    j = journal_mod.Journal(str(tmp_path / "state" / "journal.sqlite"))
    yield j
    j.close()


def accept(journal, req, token=TOKEN):
    return journal.accept(req, project_id="p1", context={"project_id": "p1"},
                          auth_token=token, host="h1", request_id="req-1")


def test_accept_records_a_new_job_once(journal):
    req = request()
    record, created = accept(journal, req)
    again, created_again = accept(journal, req)
    assert created and not created_again
    assert record == again
    assert record.status == jobs.ACCEPTED
    assert record.project_id == "p1"
    assert journal.unfinished() == [req.job_id]


def test_same_job_id_for_another_operation_or_share_is_a_conflict(journal):
    req = request()
    accept(journal, req)
    with pytest.raises(exception.JobConflict):
        accept(journal, request(op="delete", job_id=req.job_id))
    with pytest.raises(exception.JobConflict) as info:
        accept(journal, request(share=str(uuid.uuid4()), job_id=req.job_id))
    assert info.value.details["share_id"] == SHARE


def test_status_changes_and_finish_happen_once(journal):
    req = request()
    accept(journal, req)
    running = journal.start(req.job_id)
    assert running.status == jobs.RUNNING and running.started_at
    done = journal.finish(req.job_id, result={"snapshot_id": "s1"})
    assert done.status == jobs.SUCCEEDED and done.result == {"snapshot_id": "s1"}
    # A second finish (e.g. a racing resume) changes nothing.
    again = journal.finish(req.job_id, error={"code": "x"})
    assert again == done
    assert journal.unfinished() == []


def test_begin_loads_the_job_marks_it_running_and_its_start_sent(journal):
    req = request()
    accept(journal, req)
    assert not journal.start_notified(req.job_id)
    stored = journal.begin(req.job_id)
    assert stored.record.status == jobs.RUNNING and stored.record.started_at
    assert stored.request == req
    assert stored.auth_token == TOKEN
    assert journal.start_notified(req.job_id)
    # Resumed after a restart: still running, started_at kept.
    assert journal.begin(req.job_id).record.started_at == stored.record.started_at
    journal.finish(req.job_id, result={})
    finished = journal.begin(req.job_id)
    assert finished.record.status == jobs.SUCCEEDED and finished.auth_token is None


def test_token_is_kept_apart_and_forgotten_when_the_job_finishes(journal, tmp_path):
    req = request()
    accept(journal, req)
    assert journal.load(req.job_id).auth_token == TOKEN
    assert TOKEN not in repr(journal.get(req.job_id).to_dict())
    journal.finish(req.job_id, result={})
    assert journal.load(req.job_id).auth_token is None
    db = sqlite3.connect(journal.path)
    dump = "\n".join(db.iterdump())
    assert TOKEN not in dump


def test_context_with_a_token_is_refused(journal):
    with pytest.raises(ValueError):
        journal.accept(request(), project_id="p", context={"auth_token": TOKEN},
                       auth_token=None, host="h", request_id=None)


def test_journal_file_is_private(journal):
    mode = stat.S_IMODE(os.stat(journal.path).st_mode)
    assert mode & 0o077 == 0


def test_unnotified_lists_finished_jobs_until_marked(journal):
    req = request()
    accept(journal, req)
    journal.finish(req.job_id, error={"code": "operation_failed"})
    assert [r.job_id for r in journal.unnotified()] == [req.job_id]
    journal.mark_notified(req.job_id, terminal=True)
    assert journal.unnotified() == []


def test_purge_forgets_only_old_notified_jobs(journal):
    old, fresh = request(), request()
    for r in (old, fresh):
        accept(journal, r)
        journal.finish(r.job_id, result={})
    journal.mark_notified(old.job_id, terminal=True)
    assert journal.purge(older_than=-1) == 1
    with pytest.raises(exception.NotFound):
        journal.get(old.job_id)
    assert journal.get(fresh.job_id).finished


def test_a_killed_writer_loses_no_committed_job(tmp_path):
    path = str(tmp_path / "j.sqlite")
    job_id = str(uuid.uuid4())
    code = f"""
import os, signal
from manila_protector import jobs
from manila_protector.worker import journal
j = journal.Journal({path!r})
req = jobs.JobRequest.build(job_id={job_id!r}, operation="protect",
    share_id="3f1c2a9e-5b7d-4c1e-9a0b-1234567890ab",
    parameters={{}}, max_bytes=1000)
j.accept(req, project_id="p", context={{}}, auth_token=None, host="h", request_id=None)
j.start(req.job_id)
os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -9
    j = journal_mod.Journal(path)
    try:
        assert j.unfinished() == [job_id]
        assert j.get(job_id).status == jobs.RUNNING
    finally:
        j.close()


def test_a_resend_refreshes_the_token_only_from_the_same_project(journal):
    req = request()
    accept(journal, req)
    journal.accept(req, project_id="p1", context={}, auth_token="fresh-token", host="h1",
                   request_id=None)
    assert journal.load(req.job_id).auth_token == "fresh-token"
    journal.accept(req, project_id="intruder", context={}, auth_token="intruder-token",
                   host="h1", request_id=None)
    assert journal.load(req.job_id).auth_token == "fresh-token"
