"""Worker processes on the real RabbitMQ with Redis locks: sharing a topic, crashing,
stopping, long calls and resent requests, observed through notifications and the
Manila stand-in."""

from __future__ import annotations

import collections
import concurrent.futures
import datetime
import signal
import threading
import time
import uuid

import pytest

from manila_protector.plugins import job_tags
from manila_standin import clock as clock_mod
from manila_standin import config as standin_config

pytestmark = pytest.mark.functional

OPTIONS = {"snapshot_name": "functional", "description": "functional tier", "force": False}
START = "manila_protector.protect.start"
END = "manila_protector.protect.end"
#: Seconds a worker may take beyond its shutdown_timeout to exit after SIGTERM
#: (stopping the RPC server, the lock backend and the transports).
SHUTDOWN_MARGIN = 20.0


def new_id() -> str:
    return str(uuid.uuid4())


def job_tag(snapshot: dict) -> str | None:
    return (snapshot.get("metadata") or {}).get(job_tags.KEY)


def snapshot_creates(standin) -> list:
    return [r for r in standin.requests() if r.method == "POST" and r.route == "/snapshots"]


def wait_for_creating_snapshot(standin, share_id: str, timeout: float = 30.0) -> dict:
    """Wait until the share has a snapshot in ``creating`` (its protect is mid-way)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        creating = [s for s in standin.snapshots(share_id) if s["status"] == "creating"]
        if creating:
            return creating[0]
        assert time.monotonic() < deadline, f"no snapshot of {share_id} became 'creating'"
        pause.wait(0.05)


def seconds_between(start: str, end: str) -> float:
    return (datetime.datetime.fromisoformat(end)
            - datetime.datetime.fromisoformat(start)).total_seconds()


def test_two_workers_share_one_topic_without_overlapping_mutations(
        make_standin, workers, notifications, make_client, ctxt, project):
    began = time.monotonic()
    standin = make_standin(standin_config.Delays(snapshot_create=0.2, snapshot_delete=0.1))
    share_ids = standin.create_shares(project, 20, size=1)
    first = workers.start(workers.configure(standin, max_concurrent_jobs=4, lock_wait=60))
    second = workers.start(workers.configure(standin, max_concurrent_jobs=4, lock_wait=60))
    client = make_client()
    collector = notifications.collector

    # Five jobs per share. RabbitMQ hands the casts to the two consumers in turn:
    # shifting the share order every round gives each share jobs on both workers.
    job_shares = {}
    for round_ in range(5):
        for index in range(20):
            job_id = new_id()
            job_shares[job_id] = share_ids[(index + round_) % 20]
            client.protect(ctxt, job_id, job_shares[job_id], OPTIONS, cast=True)

    collector.wait_for(lambda c: c.finished_jobs() >= set(job_shares),
                       timeout=150, what="a terminal notification of all 100 jobs")
    for worker in (first, second):
        assert worker.terminate(worker.config.shutdown_timeout + SHUTDOWN_MARGIN) == 0
    notifications.barrier()

    ends = {}
    for job_id, share_id in job_shares.items():
        terminal = collector.terminal(job_id)
        assert [n["event_type"] for n in terminal] == [END], terminal
        ends[job_id] = terminal[0]
        assert terminal[0]["payload"]["status"] == "succeeded"
        assert terminal[0]["payload"]["share_id"] == share_id
    assert collector.errors() == []
    assert ctxt.auth_token not in repr(collector.items)  # the token never travels in them

    # No two mutations of one share overlapped: the Redis lock serialised them.
    assert standin.conflicts() == []

    snapshots = standin.snapshots()
    tags = collections.Counter(job_tag(s) for s in snapshots)
    assert tags == collections.Counter(set(job_shares))
    for snapshot in snapshots:
        assert snapshot["share_id"] == job_shares[job_tag(snapshot)]
        assert snapshot["status"] == "available"
        assert ends[job_tag(snapshot)]["payload"]["result"]["snapshot_id"] == snapshot["id"]

    hosts = {n["payload"]["host"] for n in ends.values()}
    assert hosts == {first.host, second.host}
    share_hosts = collections.defaultdict(set)
    for job_id, end in ends.items():
        share_hosts[job_shares[job_id]].add(end["payload"]["host"])
    shared = [share_id for share_id, found in share_hosts.items() if len(found) == 2]
    assert shared, "no share had jobs on both workers: the lock was never contended"
    assert {n["publisher_id"] for n in ends.values()} == {
        f"manila_protector.{first.host}", f"manila_protector.{second.host}"}

    # The only mutating requests Manila saw are the jobs' snapshot creates, one each.
    mutating = [r for r in standin.requests() if r.mutating]
    assert [(r.method, r.route) for r in mutating] == [("POST", "/snapshots")] * 100
    assert {r.project_id for r in mutating} == {project}

    per_host = collections.Counter(n["payload"]["host"] for n in ends.values())
    print(f"\nfunctional tier, two workers: 100 protect jobs on 20 shares in "
          f"{time.monotonic() - began:.1f} s (jobs per host: {dict(per_host)}, "
          f"{len(shared)} shares protected by both workers)")


def test_killed_worker_resumes_its_protect_and_makes_one_snapshot(
        make_standin, workers, notifications, make_client, ctxt, project):
    standin = make_standin(standin_config.Delays(snapshot_create=3))
    share = standin.create_share(project, size=1)
    # A killed worker's Redis lock stays until its TTL: keep that short.
    config = workers.configure(standin, lock_wait=30, lock_timeout=5)
    worker = workers.start(config)
    client = make_client()
    collector = notifications.collector

    job_id = new_id()
    client.protect(ctxt, job_id, share["id"], OPTIONS, cast=True)
    collector.wait_for(lambda c: START in c.events(job_id), what="the .start notification")
    wait_for_creating_snapshot(standin, share["id"])
    assert worker.kill() == -signal.SIGKILL

    restarted = workers.start(config)  # same host, same state_path
    end = collector.wait_for(lambda c: c.terminal(job_id), what="the job's end")[0]
    assert end["event_type"] == END, end
    record = client.get_job(ctxt, job_id, server=config.host)
    assert record["status"] == "succeeded"
    assert record == end["payload"]

    snapshots = standin.snapshots(share["id"])
    assert [job_tag(s) for s in snapshots] == [job_id]
    assert snapshots[0]["id"] == record["result"]["snapshot_id"]
    assert snapshots[0]["status"] == "available"
    assert len(snapshot_creates(standin)) == 1  # the restarted worker adopted it

    assert restarted.terminate(config.shutdown_timeout + SHUTDOWN_MARGIN) == 0
    notifications.barrier()
    assert collector.events(job_id) == [START, END]
    assert collector.errors() == []


def test_sigterm_stops_the_worker_cleanly_and_exits_zero(
        make_standin, workers, notifications, make_client, ctxt, project):
    # The stand-in's clock only moves when the test says: the snapshot stays
    # 'creating' (the job stays running) until then.
    clock = clock_mod.ManualClock()
    standin = make_standin(standin_config.Delays(snapshot_create=60), clock=clock)
    share = standin.create_share(project, size=1)
    config = workers.configure(standin, shutdown_timeout=1, lock_wait=30, lock_timeout=5)
    client = make_client()
    collector = notifications.collector

    idle = workers.start(config)
    assert idle.terminate(config.shutdown_timeout + SHUTDOWN_MARGIN) == 0

    busy = workers.start(config)
    job_id = new_id()
    client.protect(ctxt, job_id, share["id"], OPTIONS, cast=True)
    collector.wait_for(lambda c: START in c.events(job_id), what="the .start notification")
    wait_for_creating_snapshot(standin, share["id"])
    assert busy.terminate(config.shutdown_timeout + SHUTDOWN_MARGIN) == 0
    notifications.barrier()
    assert collector.terminal(job_id) == []  # left in the journal, not failed
    assert [s["status"] for s in standin.snapshots(share["id"])] == ["creating"]

    restarted = workers.start(config)
    clock.advance(61)
    end = collector.wait_for(lambda c: c.terminal(job_id), what="the job's end")[0]
    assert end["event_type"] == END, end
    record = client.get_job(ctxt, job_id, server=config.host)
    assert record["status"] == "succeeded"
    snapshots = standin.snapshots(share["id"])
    assert [(job_tag(s), s["status"]) for s in snapshots] == [(job_id, "available")]
    assert len(snapshot_creates(standin)) == 1

    assert restarted.terminate(config.shutdown_timeout + SHUTDOWN_MARGIN) == 0
    notifications.barrier()
    assert collector.events(job_id) == [START, END]
    assert collector.errors() == []


def test_call_gets_the_final_record_while_heartbeats_keep_it_alive(
        make_standin, workers, notifications, make_client, ctxt, project):
    standin = make_standin(standin_config.Delays(snapshot_create=5))
    share = standin.create_share(project, size=1)
    config = workers.configure(standin)
    workers.start(config)
    client = make_client(timeout=2)  # the heartbeat window, well below the job's length

    job_id = new_id()
    record = client.protect(ctxt, job_id, share["id"], OPTIONS)

    assert record["status"] == "succeeded"
    assert record["host"] == config.host
    # Manila took 5 s for the snapshot, so the call outlived its 2 s window.
    assert seconds_between(record["started_at"], record["finished_at"]) > 2
    snapshot = standin.snapshot(record["result"]["snapshot_id"])
    assert snapshot["status"] == "available"
    assert job_tag(snapshot) == job_id
    assert client.get_job(ctxt, job_id, server=config.host) == record
    end = notifications.collector.wait_for(lambda c: c.terminal(job_id))[0]
    assert end["event_type"] == END
    assert end["payload"] == record


def test_a_resent_request_is_answered_without_a_second_snapshot(
        make_standin, workers, notifications, make_client, ctxt, project):
    standin = make_standin(standin_config.Delays(snapshot_create=2))
    share = standin.create_share(project, size=1)
    config = workers.configure(standin)
    worker = workers.start(config)
    client = make_client()
    collector = notifications.collector

    job_id = new_id()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(client.protect, ctxt, job_id, share["id"], OPTIONS)
        wait_for_creating_snapshot(standin, share["id"])
        # The caller heard nothing yet and sends the same request again.
        second = client.protect(ctxt, job_id, share["id"], OPTIONS)
        first_record = first.result(timeout=60)

    assert first_record["status"] == "succeeded"
    assert second == first_record
    assert client.get_job(ctxt, job_id, server=config.host) == first_record
    snapshots = standin.snapshots(share["id"])
    assert [job_tag(s) for s in snapshots] == [job_id]
    assert len(snapshot_creates(standin)) == 1

    assert worker.terminate(config.shutdown_timeout + SHUTDOWN_MARGIN) == 0
    notifications.barrier()
    assert collector.events(job_id) == [START, END]
    assert collector.terminal(job_id)[0]["payload"] == first_record
    assert collector.errors() == []
