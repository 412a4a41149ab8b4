"""A running job's progress as a user sees it: its phase in get_job and list_jobs, and
``.progress`` notifications between ``.start`` and the terminal one, rate-limited."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import pathlib
import textwrap
import uuid

import jsonschema
import pytest

from manila_protector import exception
from manila_protector import identity
from manila_protector import jobs
from manila_protector import progress
from manila_protector.worker import progress as worker_progress
from manila_protector.worker.store import api as store_api
from manila_protector.worker.store import schema
from manila_standin import Delays, ManilaStandIn, ManualClock, StandInConfig

from support import rabbit
from support import store_child

OPTIONS = {"snapshot_name": "nightly", "description": "progress test", "force": False}
ROOT = pathlib.Path(__file__).resolve().parents[2]
#: Stand-in seconds a snapshot takes: it stays 'creating' until the test moves time on.
SNAPSHOT_TIME = 600.0


def documented_record_schema() -> dict:
    """The job record's JSON schema as doc/notifications.rst gives it."""
    text = (ROOT / "doc" / "notifications.rst").read_text()
    block = text.split("JSON schema (draft 7)::", 1)[1]
    lines = []
    for line in block.splitlines()[1:]:
        if line and not line.startswith("    "):
            break
        lines.append(line)
    return json.loads(textwrap.dedent("\n".join(lines)))


@pytest.fixture
def slow_manila(fresh):
    """A stand-in whose snapshots stay 'creating' until its clock is moved on; the worker
    polls it at least every half second."""
    clock = ManualClock(start=1_800_000_000.0)
    standin = ManilaStandIn(StandInConfig(delays=Delays(snapshot_create=SNAPSHOT_TIME)),
                            clock=clock).start()
    fresh.conf.set_override("endpoint_override", standin.endpoint, group="manila")
    fresh.conf.set_override("poll_max_interval", 0.5, group="manila")
    yield standin, clock
    standin.stop()


def protect_and_wait_for_manila(fresh, standin, ctxt, project):
    share = standin.create_share(project, size=1)
    job_id = str(uuid.uuid4())
    fresh.client.protect(ctxt, job_id, share["id"], OPTIONS, cast=True)

    def waiting_for_manila() -> bool:
        try:
            return fresh.client.get_job(ctxt, job_id)["phase"] == progress.WAITING_FOR_MANILA
        except exception.NotFound:
            return False  # the cast is not taken yet

    rabbit.wait_until(waiting_for_manila, 30, "the job to wait for Manila")
    return job_id, share


def test_a_job_waiting_for_manila_shows_its_phase_and_deadline_and_announces_each_phase(
        fresh, slow_manila, ctxt, project):
    standin, clock = slow_manila
    fresh.conf.set_override("progress_interval", 0, group="worker")
    fresh.make_worker()
    job_id, share = protect_and_wait_for_manila(fresh, standin, ctxt, project)

    running = fresh.client.get_job(ctxt, job_id)
    [snapshot] = standin.snapshots(share_id=share["id"])
    assert running["status"] == "running"
    assert running["phase_detail"] == f"snapshot {snapshot['id']} of share {share['id']}"
    started = datetime.datetime.fromisoformat(running["phase_started_at"])
    deadline = datetime.datetime.fromisoformat(running["deadline"])
    protect_timeout = fresh.conf.manila.protect_timeout
    assert started < deadline <= started + datetime.timedelta(seconds=protect_timeout)
    # list_jobs shows the same, from the same store every worker reads.
    [listed] = [r for r in fresh.client.list_jobs(ctxt, filters={"status": "running"})
                if r["job_id"] == job_id]
    assert listed == running
    fresh.notifications.wait_for(
        lambda c: [n for n in c.progress(job_id)
                   if n["payload"]["phase"] == progress.WAITING_FOR_MANILA],
        what="the .progress of waiting_for_manila")

    clock.advance(SNAPSHOT_TIME)
    fresh.notifications.wait_for(lambda c: c.terminal(job_id), what="the job's end")
    finished = fresh.client.get_job(ctxt, job_id)
    assert finished["status"] == "succeeded"
    assert (finished["phase"], finished["phase_detail"], finished["deadline"]) == (
        None, None, None)

    notes = fresh.notifications.for_job(job_id, progress=True)
    assert [n["event_type"] for n in notes] == (
        ["manila_protector.protect.start"] + ["manila_protector.protect.progress"] * 4
        + ["manila_protector.protect.end"])
    assert [n["payload"]["phase"] for n in notes] == [
        progress.QUEUED, progress.WAITING_FOR_LOCK, progress.CHECKING,
        progress.SNAPSHOT_REQUESTED, progress.WAITING_FOR_MANILA, None]
    record_schema = documented_record_schema()
    for note in notes:
        jsonschema.validate(note["payload"], record_schema)
        assert note["priority"] == "INFO"
        assert "alice:" not in repr(note)
    assert all(n["payload"]["status"] == "running" for n in notes[1:-1])


def test_phases_within_the_interval_are_held_back_and_the_end_is_not(fresh, slow_manila,
                                                                     ctxt, project):
    standin, clock = slow_manila
    fresh.conf.set_override("progress_interval", 3600, group="worker")
    fresh.make_worker()
    job_id, _ = protect_and_wait_for_manila(fresh, standin, ctxt, project)
    clock.advance(SNAPSHOT_TIME)
    fresh.notifications.wait_for(lambda c: c.terminal(job_id), what="the job's end")
    # Every phase came within the hour after the job began to run: held back, and
    # the job ended before the hour was up.  The store had each of them at once (the
    # test saw waiting_for_manila through get_job).
    assert [(n["event_type"], n["payload"]["phase"])
            for n in fresh.notifications.for_job(job_id, progress=True)] == [
        ("manila_protector.protect.start", progress.QUEUED),
        ("manila_protector.protect.end", None)]


class StepClock:
    """Monotonic time the test moves."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t


def test_a_held_back_phase_goes_out_at_the_first_poll_after_the_interval(tmp_path):
    store = store_api.JobStore.from_url(f"sqlite:///{tmp_path}/jobs.sqlite",
                                        key_file=str(tmp_path / "token.key"))
    schema.upgrade(store.database)
    job = store_child.request()
    store.accept(job, owner="w", project_id="p", context={}, auth_token=None, host="h",
                 request_id=None)
    store.begin(job.job_id, "w")
    sent = []
    clock = StepClock()
    now = datetime.datetime(2031, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    observer = worker_progress.JobProgress(job_id=job.job_id, owner="w", store=store,
                                           announce=sent.append, clock=clock, interval=5,
                                           wall=lambda: now)

    def phases():
        return [record.phase for record in sent]

    # The job's .start announced it: nothing within the first interval of its run.
    observer.phase(progress.WAITING_FOR_LOCK, detail="share s", remaining=30)
    assert phases() == []
    clock.t = 1
    observer.phase(progress.CHECKING, detail="share s", remaining=600)
    clock.t = 2
    observer.phase(progress.SNAPSHOT_REQUESTED, detail="share s", remaining=599)
    assert store.get(job.job_id).phase == progress.SNAPSHOT_REQUESTED  # recorded at once
    clock.t = 4.9
    observer.waiting(status="creating", elapsed=1, remaining=598)
    assert phases() == []
    clock.t = 5
    observer.waiting(status="creating", elapsed=2, remaining=597)
    # Only the latest held-back phase is sent; the lock wait and checking never are.
    assert phases() == [progress.SNAPSHOT_REQUESTED]
    clock.t = 20
    observer.phase(progress.SNAPSHOT_REQUESTED, detail="share s", remaining=580)
    assert len(sent) == 1  # the same phase again is no change
    observer.phase(progress.WAITING_FOR_MANILA, detail="snapshot x", remaining=580)
    assert phases()[-1] == progress.WAITING_FOR_MANILA
    assert sent[-1].deadline == (now + datetime.timedelta(seconds=580)).isoformat(
        timespec="microseconds")
    assert sent[-1].phase_detail == "snapshot x"
    store.close()


def test_the_documented_schema_names_every_field_of_a_record_and_every_phase():
    documented = documented_record_schema()
    fields = {field.name for field in dataclasses.fields(jobs.JobRecord)}
    assert set(documented["properties"]) == fields
    assert set(documented["required"]) == fields
    assert set(documented["properties"]["phase"]["enum"]) == set(progress.PHASES) | {None}


def test_a_job_resumed_after_a_restart_is_queued_not_what_it_was_doing(fresh, slow_manila,
                                                                      ctxt, project):
    standin, clock = slow_manila
    fresh.conf.set_override("max_concurrent_jobs", 1, group="worker")
    os.makedirs(fresh.conf.state_path, exist_ok=True)
    store = store_api.JobStore.from_conf(fresh.conf)
    schema.upgrade(store.database)
    left = []
    for _ in range(2):
        share = standin.create_share(project, size=1)
        request = jobs.JobRequest.build(job_id=str(uuid.uuid4()), operation="protect",
                                        share_id=share["id"], parameters=OPTIONS,
                                        max_bytes=10_000)
        store.accept(request, owner=fresh.conf.host, project_id=project,
                     context=identity.Caller.from_context(ctxt).to_dict(),
                     auth_token=ctxt.auth_token, host=fresh.conf.host, request_id=None)
        store.mark_notified(request.job_id, terminal=False)
        store.begin(request.job_id, fresh.conf.host)
        # What the job was doing when its worker died.
        store.set_phase(request.job_id, fresh.conf.host, progress.WAITING_FOR_MANILA,
                        detail="snapshot gone-with-the-worker",
                        deadline=datetime.datetime.now(datetime.UTC))
        left.append(request.job_id)
    store.close()
    first, second = left
    fresh.make_worker()
    # One job thread: the first resumed job holds it, waiting for its snapshot.
    rabbit.wait_until(
        lambda: fresh.client.get_job(ctxt, first)["phase_detail"] != (
            "snapshot gone-with-the-worker")
        and fresh.client.get_job(ctxt, first)["phase"] == progress.WAITING_FOR_MANILA,
        30, "the first resumed job to wait for its new snapshot")
    waiting = fresh.client.get_job(ctxt, second)
    assert (waiting["status"], waiting["phase"], waiting["phase_detail"],
            waiting["deadline"]) == ("running", progress.QUEUED, None, None)
    clock.advance(SNAPSHOT_TIME)
    rabbit.wait_until(lambda: fresh.client.get_job(ctxt, first)["status"] == "succeeded",
                      30, "the first job to end")
    rabbit.wait_until(
        lambda: fresh.client.get_job(ctxt, second)["phase"] == progress.WAITING_FOR_MANILA,
        30, "the second job to wait for its snapshot")
    clock.advance(SNAPSHOT_TIME)
    fresh.notifications.wait_for(lambda c: c.terminal(first) and c.terminal(second))
    assert fresh.client.get_job(ctxt, second)["status"] == "succeeded"
