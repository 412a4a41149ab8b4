"""A Redis restart (or FLUSHALL) under load: no two mutations of one share overlap.

Two worker processes share one private ``redis-server`` for their per-share locks;
every share has several jobs, cast so that both workers hold jobs of each share and
wait for each other's locks.  Redis restarts at the worst moment: while one job of a
share is making its snapshot and a job of the other worker waits for that share's lock.

Run three times: a Redis that keeps nothing (``--save ''``, no append-only file, as a
cache is often set up), one with an append-only file fsynced at every write, and a
Redis that stays up but loses every key (``FLUSHALL``: an operator's or another
tenant's mistake) -- each lock is lost while its job runs.
"""

from __future__ import annotations

import collections
import signal
import time

import pytest
import redis

from manila_standin import config as standin_config

from faults import outcomes
from support import rabbit

# The full size (MANILA_PROTECTOR_FAULTS=full) outlasts the suite-wide 300 s timeout.
pytestmark = [pytest.mark.functional, pytest.mark.faults, pytest.mark.timeout(1800)]

JOBS_PER_SHARE = 5
#: A protect holds its share's lock a little longer than this (the stand-in's snapshot).
SNAPSHOT_SECONDS = 2.0
START = "manila_protector.protect.start"

#: A Redis that keeps nothing forgets every lock when it restarts: a job of the other
#: worker waiting for the share's lock takes it at once, while the holder's snapshot is
#: still being made.  The lock alone cannot prevent the overlap; the protect's look at the
#: share's snapshots in flight does, and the holder takes its lock back (or stops) before
#: its next mutating request.
FORGETFUL = "none"
#: Not a restart: every key (locks, group membership) is deleted while Redis stays up.
FLUSHALL = "flushall"


def holder_and_waiter(standin, collector, jobs: dict[str, str]) -> str | None:
    """A share whose snapshot one job is making while another worker's job waits for it."""
    hosts = {n["payload"]["job_id"]: n["payload"]["host"] for n in collector.items
             if n["event_type"] == START}
    finished = collector.finished_jobs()
    snapshots = standin.snapshots()
    tagged = {outcomes.job_tag(s) for s in snapshots}
    for snapshot in snapshots:
        holder = outcomes.job_tag(snapshot)
        if snapshot["status"] != "creating" or holder not in hosts:
            continue
        for job_id, share_id in jobs.items():
            if (share_id == snapshot["share_id"] and job_id in hosts
                    and hosts[job_id] != hosts[holder] and job_id not in finished
                    and job_id not in tagged):
                return share_id
    return None


@pytest.mark.parametrize("persistence", [FORGETFUL, "appendonly", FLUSHALL])
def test_redis_restart_under_load_lets_no_two_mutations_of_a_share_overlap(
        persistence, tmp_path, size, report, make_standin, workers, notifications,
        make_client, ctxt, project):
    redis_server = rabbit.PrivateRedis(tmp_path / "redis", appendonly=persistence == "appendonly")
    redis_server.start()
    try:
        run(persistence, redis_server, size, report, make_standin, workers, notifications,
            make_client, ctxt, project)
    finally:
        redis_server.close()


def run(persistence, redis_server, size, report, make_standin, workers, notifications,
        make_client, ctxt, project):
    standin = make_standin(standin_config.Delays(snapshot_create=SNAPSHOT_SECONDS))
    share_ids = standin.create_shares(project, size.redis_shares, size=1)
    # Enough slots that every accepted job is running or waiting for its share's lock.
    slots = size.redis_shares * JOBS_PER_SHARE
    started = [workers.start(workers.configure(standin, redis_url=redis_server.url,
                                               max_concurrent_jobs=slots, lock_wait=120))
               for _ in range(2)]
    client = make_client()
    collector = notifications.collector

    # RabbitMQ hands the casts to the two workers in turn: shifting the share order
    # every round gives each share jobs on both workers, waiting for each other.
    jobs: dict[str, str] = {}
    for round_ in range(JOBS_PER_SHARE):
        for index in range(len(share_ids)):
            job_id = outcomes.new_id()
            jobs[job_id] = share_ids[(index + round_) % len(share_ids)]
            client.protect(ctxt, job_id, jobs[job_id], outcomes.OPTIONS, cast=True)

    restarts = []
    for number in range(2 if size.name == "ci" else 4):
        rabbit.wait_until(lambda: holder_and_waiter(standin, collector, jobs), 120,
                          "a share with a snapshot being made and a waiter on the other "
                          "worker", interval=0.02)
        if persistence == FLUSHALL:
            began = time.monotonic()
            flush = redis.Redis(host="127.0.0.1", port=redis_server.port, socket_timeout=5)
            try:
                flush.flushall()
            finally:
                flush.close()
            restarts.append(time.monotonic() - began)
        else:
            restarts.append(redis_server.restart((signal.SIGTERM, signal.SIGKILL)[number % 2]))

    collector.wait_for(lambda c: c.finished_jobs() >= set(jobs), timeout=240,
                       what="a terminal notification of every job")
    for worker in started:
        assert worker.terminate(worker.config.shutdown_timeout + 20) == 0
    notifications.barrier()

    found = outcomes.Outcomes.collect(jobs, collector, standin)
    codes = found.failure_codes()
    conflicts = standin.conflicts()
    failed = set(found.failed())
    what = ("Redis FLUSHALL" if persistence == FLUSHALL
            else f"Redis restart, persistence {persistence}")
    row = report(f"{what} ({len(restarts)}x, {len(jobs)} jobs on {len(share_ids)} shares, "
                 "2 workers)")
    row.add("overlapping mutations of one share", len(conflicts), 0)
    row.add("jobs without a terminal notification", len(found.without_terminal()), 0)
    row.add("jobs failed lock_unavailable (retryable)", codes["lock_unavailable"])
    row.add("jobs failed otherwise", sum(codes.values()) - codes["lock_unavailable"], 0)
    row.add("failed jobs that left a snapshot",
            sum(1 for s in found.snapshots if outcomes.job_tag(s) in failed), 0)
    row.add("jobs with two snapshots", len(found.jobs_with_two_snapshots()), 0)
    row.add("Redis unavailable or flushing (s, longest)", round(max(restarts), 2))
    if conflicts:
        by_share = collections.Counter(c.share_id for c in conflicts)
        print(f"conflicts on {len(by_share)} share(s), e.g. {conflicts[0]}")
    if codes:
        print("failures:", dict(codes),
              [found.final(j)["error"]["message"] for j in sorted(failed)][:3])
    row.check()
