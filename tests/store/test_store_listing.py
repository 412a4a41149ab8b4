"""list_jobs: filters, stable paging newest first, and what a project may see."""

from __future__ import annotations

import datetime
import uuid

import pytest
import sqlalchemy as sa

from manila_protector import exception
from manila_protector import jobs
from manila_protector.worker.store import models

SHARE_0 = "00000000-0000-4000-8000-000000000000"
SHARE_1 = "00000000-0000-4000-8000-000000000001"


def _request(operation: str, share_id: str) -> jobs.JobRequest:
    saved = {"share_id": share_id} if operation in jobs.NEEDS_SAVED_INFO else None
    return jobs.JobRequest.build(job_id=str(uuid.uuid4()), operation=operation,
                                 share_id=share_id, parameters={}, saved_info=saved,
                                 max_bytes=1 << 20)


@pytest.fixture
def fleet(store):
    """Twelve jobs of project-1 and five of project-2, in several operations and states."""
    made = []
    for index in range(17):
        project = "project-1" if index < 12 else "project-2"
        operation = ("protect", "restore", "delete", "verify")[index % 4]
        job = _request(operation, f"00000000-0000-4000-8000-{index % 3:012d}")
        record, _ = store.accept(job, owner="worker-a", project_id=project, context={},
                                 auth_token="t", host="h", request_id=None)
        if index % 5 == 0:
            record = store.finish(job.job_id, "worker-a", result={})
        made.append(record)
    return made


def newest_first(records):
    return sorted(records, key=lambda r: (r.created_at, r.job_id), reverse=True)


def ids(records):
    return [r.job_id for r in records]


def test_a_project_lists_only_its_own_jobs_newest_first(store, fleet):
    own = [r for r in fleet if r.project_id == "project-1"]
    assert ids(store.list_jobs(project_id="project-1")) == ids(newest_first(own))


def test_an_administrator_lists_every_project(store, fleet):
    assert ids(store.list_jobs(project_id=None)) == ids(newest_first(fleet))


@pytest.mark.parametrize("limit", [1, 3, 5, 12])
def test_paging_with_the_marker_visits_every_job_once(store, fleet, limit):
    seen, marker = [], None
    while True:
        page = store.list_jobs(project_id="project-1", limit=limit, marker=marker)
        assert len(page) <= limit
        if not page:
            break
        seen.extend(page)
        marker = page[-1].job_id
    own = [r for r in fleet if r.project_id == "project-1"]
    assert ids(seen) == ids(newest_first(own))


def test_filters_combine(store, fleet):
    found = store.list_jobs(project_id="project-1", status="succeeded", share_id=SHARE_0)
    expected = [r for r in fleet if r.project_id == "project-1" and r.status == "succeeded"
                and r.share_id == SHARE_0]
    assert expected and ids(found) == ids(newest_first(expected))
    restores = store.list_jobs(project_id=None, operation="restore", status="accepted")
    assert ids(restores) == ids(newest_first(
        [r for r in fleet if r.operation == "restore" and r.status == "accepted"]))


def test_since_keeps_jobs_created_at_or_after_it(store, fleet):
    ordered = sorted(fleet, key=lambda r: (r.created_at, r.job_id))
    pivot = ordered[7]
    since = datetime.datetime.fromisoformat(pivot.created_at)
    expected = [r for r in fleet if r.created_at >= pivot.created_at]
    assert ids(store.list_jobs(project_id=None, since=since)) == ids(newest_first(expected))
    naive = since.astimezone(datetime.UTC).replace(tzinfo=None)
    assert ids(store.list_jobs(project_id=None, since=naive)) == ids(newest_first(expected))


def test_a_marker_of_another_projects_job_is_not_found(store, fleet):
    foreign = next(r for r in fleet if r.project_id == "project-2")
    with pytest.raises(exception.NotFound):
        store.list_jobs(project_id="project-1", marker=foreign.job_id)
    older = [r for r in fleet if (r.created_at, r.job_id) < (foreign.created_at,
                                                            foreign.job_id)]
    assert ids(store.list_jobs(project_id=None, marker=foreign.job_id)) == ids(
        newest_first(older))


def test_an_unknown_marker_is_not_found(store, fleet):
    with pytest.raises(exception.NotFound):
        store.list_jobs(project_id=None, marker=str(uuid.uuid4()))


@pytest.mark.parametrize("arguments", [
    {"limit": 0}, {"limit": 1001}, {"limit": "5"}, {"limit": True}, {"status": "done"},
    {"operation": "backup"}, {"share_id": "../x"}, {"marker": "not-a-uuid"},
    {"since": "yesterday"},
])
def test_out_of_range_arguments_are_invalid(store, arguments):
    with pytest.raises(exception.InvalidRequest):
        store.list_jobs(project_id="project-1", **arguments)


def test_a_page_never_exceeds_the_bound(store):
    for _ in range(3):
        store.accept(_request("protect", SHARE_1), owner="w", project_id="p", context={},
                     auth_token=None, host="h", request_id=None)
    assert len(store.list_jobs(project_id="p", limit=1000)) == 3


def test_jobs_created_in_the_same_microsecond_page_by_job_id(store):
    share = SHARE_1
    made = [store.accept(_request("protect", share), owner="w", project_id="p",
                         context={}, auth_token=None, host="h", request_id=None)[0]
            for _ in range(7)]
    same = datetime.datetime(2030, 1, 2, 3, 4, 5, 678901)
    with store.database.engine().begin() as conn:
        conn.execute(sa.update(models.jobs).values(created_at=same))
    seen, marker = [], None
    while page := store.list_jobs(project_id="p", limit=2, marker=marker):
        seen.extend(page)
        marker = page[-1].job_id
    assert ids(seen) == sorted(ids(made), reverse=True)
    assert {r.created_at for r in seen} == {"2030-01-02T03:04:05.678901+00:00"}
