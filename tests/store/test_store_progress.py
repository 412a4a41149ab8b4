"""A running job's phase in the store, on every backend: recorded by its owner, read by all."""

from __future__ import annotations

import datetime
import uuid

import pytest

from manila_protector import exception
from manila_protector import progress

from support import store_child


def accept_and_begin(store, owner="worker-a"):
    job = store_child.request()
    store.accept(job, owner=owner, project_id="project-1", context={}, auth_token="t",
                 host="host-a", request_id="req-1")
    store.begin(job.job_id, owner)
    return job.job_id


def test_an_accepted_job_is_queued_since_it_was_created(store):
    record, _ = store.accept(store_child.request(), owner="worker-a", project_id="p",
                             context={}, auth_token=None, host="h", request_id=None)
    assert (record.phase, record.phase_detail, record.deadline) == (progress.QUEUED, None,
                                                                   None)
    assert record.phase_started_at == record.created_at


def test_the_owners_phase_is_what_every_other_worker_reads(store, make_store):
    job_id = accept_and_begin(store)
    deadline = datetime.datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.UTC)
    store.set_phase(job_id, "worker-a", progress.WAITING_FOR_MANILA,
                    detail="snapshot 1234 of share 5678", deadline=deadline)
    recorded = store.get(job_id)
    assert recorded.phase == progress.WAITING_FOR_MANILA
    assert recorded.phase_detail == "snapshot 1234 of share 5678"
    assert recorded.deadline == "2031-05-06T07:08:09.123456+00:00"
    assert recorded.phase_started_at >= recorded.started_at
    other = make_store()
    assert other.get(job_id) == recorded
    [listed] = other.list_jobs(project_id=None)
    assert listed == recorded


def test_a_new_phase_replaces_the_last_and_an_unbounded_one_has_no_deadline(store):
    job_id = accept_and_begin(store)
    store.set_phase(job_id, "worker-a", progress.WAITING_FOR_LOCK, detail="share s",
                    deadline=datetime.datetime.now(datetime.UTC))
    store.set_phase(job_id, "worker-a", progress.CHECKING)
    record = store.get(job_id)
    assert (record.phase, record.phase_detail, record.deadline) == (progress.CHECKING, None,
                                                                   None)


def test_only_the_owner_records_a_phase(store):
    job_id = accept_and_begin(store)
    with pytest.raises(exception.NotOwner):
        store.set_phase(job_id, "worker-b", progress.CHECKING)
    assert store.get(job_id).phase == progress.QUEUED
    with pytest.raises(exception.NotFound):
        store.set_phase(str(uuid.uuid4()), "worker-a", progress.CHECKING)


def test_a_finished_job_has_no_phase_and_takes_none(store):
    job_id = accept_and_begin(store)
    store.set_phase(job_id, "worker-a", progress.CLEANING_UP, detail="snapshot x",
                    deadline=datetime.datetime.now(datetime.UTC))
    finished = store.finish(job_id, "worker-a", result={"ok": True})
    assert (finished.phase, finished.phase_detail, finished.phase_started_at,
            finished.deadline) == (None, None, None, None)
    with pytest.raises(exception.NotOwner):
        store.set_phase(job_id, "worker-a", progress.CHECKING)
    assert store.get(job_id) == finished


def test_a_long_detail_is_cut_and_an_unknown_phase_refused(store):
    job_id = accept_and_begin(store)
    store.set_phase(job_id, "worker-a", progress.CHECKING, detail="x" * 1000)
    assert store.get(job_id).phase_detail == "x" * progress.MAX_DETAIL
    with pytest.raises(ValueError, match="unknown phase"):
        store.set_phase(job_id, "worker-a", "sleeping")
