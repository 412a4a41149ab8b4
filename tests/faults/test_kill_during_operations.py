"""kill -9 of a worker process in the middle of a restore, a revert in place or a delete, then
a restart with the same host: a revert is sent at most once, a restore makes one share, a
delete completes.

Each trial casts a few jobs (each on a share of its own, with a snapshot made directly in
the stand-in), waits for the trial's first ``.start`` and kills the worker at a random
moment of the jobs' Manila transition (the stand-in makes each one last a second), then
starts it again on the same host and state path.  Counted from the stand-in's request log
and resources and from the notifications.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import threading
import typing

import pytest

from manila_protector.plugins import job_tags
from manila_standin import config as standin_config

from faults import outcomes

pytestmark = [pytest.mark.functional, pytest.mark.faults, pytest.mark.timeout(1800)]

JOBS_PER_TRIAL = 3
#: Each operation's Manila transition lasts this long in the stand-in.
TRANSITION_SECONDS = 1.0
#: The kill falls uniformly within this window after the trial's first ``.start``.
KILL_WINDOW = 1.6
LOCK_TIMEOUT = 3

DELAYS = {
    "restore": standin_config.Delays(share_create=TRANSITION_SECONDS),
    "revert": standin_config.Delays(revert=TRANSITION_SECONDS),
    "delete": standin_config.Delays(snapshot_delete=TRANSITION_SECONDS),
}


def send(client, ctxt, operation: str, job_id: str, share_id: str,
         saved: dict[str, typing.Any]) -> None:
    if operation == "delete":
        client.delete(ctxt, job_id, share_id, saved, cast=True)
    elif operation == "revert":
        client.restore(ctxt, job_id, share_id, saved, {"share_id": share_id}, cast=True)
    else:
        client.restore(ctxt, job_id, share_id, saved, {"restore_name": "after-kill"},
                       cast=True)


def restored_shares(standin) -> collections.Counter[str]:
    """Shares tagged with a job (a restore's new share), per job."""
    return collections.Counter(
        (s.get("metadata") or {}).get(job_tags.KEY) for s in standin.shares()
        if (s.get("metadata") or {}).get(job_tags.KEY))


@pytest.mark.parametrize("operation", ["restore", "revert", "delete"])
def test_kill_9_during_an_operation_never_repeats_its_mutation(
        operation, size, report, make_standin, redis_server, workers, notifications,
        make_client, ctxt, project):
    seed = int(os.environ.get("MANILA_PROTECTOR_FAULTS_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"kill -9 during {operation}: seed {seed} (MANILA_PROTECTOR_FAULTS_SEED to replay)")
    standin = make_standin(DELAYS[operation], latency=0.02)
    config = workers.configure(standin, redis_url=redis_server.url, lock_timeout=LOCK_TIMEOUT,
                               lock_wait=60, max_concurrent_jobs=8)
    worker = workers.start(config)
    client = make_client()
    collector = notifications.collector
    pause = threading.Event()
    start_event = f"manila_protector.{'delete' if operation == 'delete' else 'restore'}.start"

    jobs: dict[str, str] = {}
    snapshots: dict[str, str] = {}
    saved: dict[str, dict[str, typing.Any]] = {}
    resent = 0
    for _trial in range(size.operation_kill_trials):
        trial_jobs = []
        for share_id in standin.create_shares(project, JOBS_PER_TRIAL, size=1):
            snapshot = standin.create_snapshot(share_id)
            job_id = outcomes.new_id()
            jobs[job_id], snapshots[job_id] = share_id, snapshot["id"]
            saved[job_id] = outcomes.saved_info(standin, share_id, snapshot)
            trial_jobs.append(job_id)
            send(client, ctxt, operation, job_id, share_id, saved[job_id])
        collector.wait_for(lambda c, first=trial_jobs[0]: start_event in c.events(first),
                           what="the trial's first .start")
        # The fault's timing is the point of the test: a random moment of the jobs.
        pause.wait(rng.uniform(0, KILL_WINDOW))
        assert worker.kill() == -signal.SIGKILL
        worker = workers.start(config)  # same host, same state_path
        # RabbitMQ acknowledges a request when the worker receives it: one the killed
        # worker received but had not recorded is gone.  A caller resends a job whose
        # .start never came with the same job_id (doc/rpc.rst), as here.
        notifications.barrier()
        for job_id in trial_jobs:
            if start_event not in collector.events(job_id):
                resent += 1
                send(client, ctxt, operation, job_id, jobs[job_id], saved[job_id])

    collector.wait_for(lambda c: c.finished_jobs() >= set(jobs), timeout=180,
                       what="a terminal notification of every job")
    assert worker.terminate(config.shutdown_timeout + 20) == 0
    notifications.barrier()

    found = outcomes.Outcomes.collect(jobs, collector, standin)
    row = report(f"kill -9 during {operation} ({size.operation_kill_trials} trials, "
                 f"{len(jobs)} jobs)")
    row.add("jobs without a terminal notification", len(found.without_terminal()), 0)
    row.add("jobs with contradicting terminal notifications",
            len(found.contradicting_terminal()), 0)
    row.add("jobs with a repeated terminal notification", len(found.repeated_terminal()))
    row.add("jobs resent (no .start: received by the killed worker, not recorded)", resent)
    conflicts = standin.conflicts()
    # A revert job marks its revert sent in the share's metadata while Manila reverts
    # (plugins/restore.py): the stand-in records that overlap too; it is the job's own.
    own_marks = [c for c in conflicts if c.first_operation == "revert"
                 and c.second_operation.startswith("share_metadata")]
    row.add("overlapping mutations (stand-in), the revert's own mark excepted",
            len(conflicts) - len(own_marks), 0)
    if operation == "revert":
        row.add("revert marks written while the share reverts (the job's own)",
                len(own_marks))
    failed = found.failed()
    if operation == "revert":
        posts = outcomes.revert_requests(standin)
        row.add("jobs with more than one revert request", sum(
            1 for j in jobs if posts[jobs[j]] > 1), 0)
        row.add("jobs with exactly one revert request", sum(
            1 for j in jobs if posts[jobs[j]] == 1))
        row.add("succeeded jobs without exactly one revert request", sum(
            1 for j in found.succeeded() if posts[jobs[j]] != 1), 0)
        # Killed between recording the intent and marking the revert sent: the job
        # cannot tell whether Manila took it, and fails rather than send it again.
        row.add("jobs failed: revert unknown (killed between intent and mark)", sum(
            1 for j in failed if (found.final(j)["error"].get("details") or {}).get("revert")
            == "unknown"))
        row.add("jobs failed otherwise", sum(
            1 for j in failed if (found.final(j)["error"].get("details") or {}).get("revert")
            != "unknown"), 0)
        row.add("shares not available", len(found.shares_in_error()), 0)
    elif operation == "restore":
        made = restored_shares(standin)
        row.add("jobs with a second restored share", sum(1 for j in jobs if made[j] > 1), 0)
        row.add("succeeded jobs without their restored share", sum(
            1 for j in found.succeeded()
            if made[j] != 1 or (found.final(j).get("result") or {}).get("share_id") is None
            or standin.share(found.final(j)["result"]["share_id"])["status"] != "available"),
            0)
        row.add("failed jobs that left a share", sum(1 for j in failed if made[j]), 0)
        row.add("jobs failed", len(failed), 0)
    else:
        row.add("deletes not completed (snapshot still there)", sum(
            1 for j in jobs if standin.snapshot(snapshots[j]) is not None), 0)
        row.add("jobs failed", len(failed), 0)
    if failed:
        print("failures:", dict(found.failure_codes()),
              [found.final(j)["error"]["message"] for j in failed][:3])
    row.check()
