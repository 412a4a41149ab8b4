"""kill -9 of a worker process at a random moment of its jobs, then a restart with the
same host and state_path: every job still ends exactly once, with one snapshot."""

from __future__ import annotations

import collections
import os
import random
import signal
import threading

import pytest

from manila_standin import config as standin_config

from faults import outcomes

# The full size (MANILA_PROTECTOR_FAULTS=full) outlasts the suite-wide 300 s timeout.
pytestmark = [pytest.mark.functional, pytest.mark.faults, pytest.mark.timeout(1800)]

START = "manila_protector.protect.start"
#: Jobs cast in each trial (on shares of their own), before the kill.
JOBS_PER_TRIAL = 3
#: The stand-in makes a snapshot in this long: with the requests around it a protect
#: job lasts about 1.3 s (longer in a fresh process, and for a resumed job that waits
#: for the lock its killed predecessor held); the kill falls uniformly within this
#: window after the first job of the trial announced ``.start``.
SNAPSHOT_SECONDS = 1.0
KILL_WINDOW = 1.6
#: Redis TTL of a lock: a killed worker's locks are free again after it.
LOCK_TIMEOUT = 3


PHASES = ("before their snapshot request", "while Manila made the snapshot",
          "after the snapshot, before .end", "after .end arrived")


def phase(job_id: str, made: dict[str | None, str], ended: set[str]) -> str:
    """Where a job was when its worker was killed (as Manila and the listener saw it)."""
    if job_id in ended:
        return PHASES[3]
    if job_id not in made:
        return PHASES[0]
    return PHASES[1] if made[job_id] == "creating" else PHASES[2]


def test_kill_9_at_a_random_moment_loses_and_duplicates_nothing(
        size, report, make_standin, redis_server, workers, notifications, make_client, ctxt,
        project):
    seed = int(os.environ.get("MANILA_PROTECTOR_FAULTS_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"kill -9: seed {seed} (MANILA_PROTECTOR_FAULTS_SEED to replay)")
    standin = make_standin(standin_config.Delays(snapshot_create=SNAPSHOT_SECONDS),
                           latency=0.02)
    config = workers.configure(standin, redis_url=redis_server.url, lock_timeout=LOCK_TIMEOUT,
                               lock_wait=60, max_concurrent_jobs=8)
    worker = workers.start(config)
    client = make_client()
    collector = notifications.collector
    pause = threading.Event()

    jobs: dict[str, str] = {}
    resent: list[str] = []
    moments: collections.Counter[str] = collections.Counter()
    for _trial in range(size.kill_trials):
        trial_jobs = []
        for share_id in standin.create_shares(project, JOBS_PER_TRIAL, size=1):
            job_id = outcomes.new_id()
            jobs[job_id] = share_id
            trial_jobs.append(job_id)
            client.protect(ctxt, job_id, share_id, outcomes.OPTIONS, cast=True)
        collector.wait_for(lambda c, first=trial_jobs[0]: START in c.events(first),
                           what="the trial's first .start")
        # The fault's timing is the point of the test: a random moment of the jobs.
        pause.wait(rng.uniform(0, KILL_WINDOW))
        assert worker.kill() == -signal.SIGKILL
        ended = collector.finished_jobs()
        made = {outcomes.job_tag(s): s["status"] for s in standin.snapshots()}
        for job_id in trial_jobs:
            moments[phase(job_id, made, ended)] += 1
        worker = workers.start(config)  # same host, same state_path
        # RabbitMQ acknowledges a request when the worker receives it: one received
        # but not yet recorded dies with the process.  The caller's rule for a cast
        # (doc/rpc.rst): a job whose .start never came is sent again, same job_id --
        # answered from the store if it was recorded after all.
        notifications.barrier()
        for job_id in trial_jobs:
            if START not in collector.events(job_id):
                resent.append(job_id)
                client.protect(ctxt, job_id, jobs[job_id], outcomes.OPTIONS, cast=True)

    # Jobs resumed by the last start may wait LOCK_TIMEOUT for a lock the killed
    # process held, then run for about a second and a half.
    collector.wait_for(lambda c: c.finished_jobs() >= set(jobs), timeout=120,
                       what="a terminal notification of every job")
    assert worker.terminate(config.shutdown_timeout + 20) == 0
    notifications.barrier()

    found = outcomes.Outcomes.collect(jobs, collector, standin)
    row = report(f"kill -9 ({size.kill_trials} trials, {len(jobs)} jobs)")
    row.add("jobs without a terminal notification", len(found.without_terminal()), 0)
    row.add("snapshots without a job", len(found.snapshots_without_job()), 0)
    row.add("jobs with two snapshots", len(found.jobs_with_two_snapshots()), 0)
    row.add("shares left in error", len(found.shares_in_error()), 0)
    row.add("jobs failed", len(found.failed()), 0)
    row.add("succeeded jobs without their snapshot",
            len(found.succeeded_without_their_snapshot()), 0)
    row.add("overlapping mutations (stand-in)", len(standin.conflicts()), 0)
    row.add("jobs with a repeated terminal notification", len(found.repeated_terminal()))
    row.add("jobs without .start after the kill, sent again by the caller", len(resent))
    row.add("jobs with contradicting terminal notifications",
            len(found.contradicting_terminal()), 0)
    for name in PHASES:
        row.add(f"trial jobs killed {name}", moments[name])
    if found.failed():
        print("failures:", dict(found.failure_codes()),
              [found.final(j)["error"]["message"] for j in found.failed()][:5])
    row.check()
