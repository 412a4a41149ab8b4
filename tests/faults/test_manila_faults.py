"""Manila answering about one request in five with 500/503 or after the client's timeout.

Every job still ends with exactly one terminal notification, succeeded or failed
with a documented error code and a message; no job makes two snapshots or two
shares; the worker keeps running.
"""

from __future__ import annotations

import collections

import pytest

from manila_standin import config as standin_config

from faults import outcomes

# The full size (MANILA_PROTECTOR_FAULTS=full) outlasts the suite-wide 300 s timeout.
pytestmark = [pytest.mark.functional, pytest.mark.faults, pytest.mark.timeout(1800)]

#: ``[manila] timeout``: seconds the worker waits for one HTTP answer.
CLIENT_TIMEOUT = 2
#: Slow answers come this late: past the client's timeout.
SLOW_DELAY = 3.0
#: 500/503 for 10 % of requests (before Manila acts); of the others, 11.2 % are
#: answered after SLOW_DELAY (after Manila acted): 0.1 + 0.9 * 0.112 = 20 % faulty.
ERROR_RATE = 0.1
SLOW_RATE = 0.112
RESTORE = {"restore_name": "faults", "restore_access_rules": False}


def terminal_counts(found: outcomes.Outcomes, report_row, operation: str) -> None:
    codes = found.failure_codes()
    report_row.add(f"{operation}: jobs", len(found.jobs))
    report_row.add(f"{operation}: succeeded", len(found.succeeded()))
    report_row.add(f"{operation}: failed (" + ", ".join(
        f"{code} {n}" for code, n in sorted(codes.items())) + ")", len(found.failed()))
    report_row.add(f"{operation}: jobs without exactly one terminal notification",
                   len(found.without_terminal()) + len(found.repeated_terminal()), 0)
    report_row.add(f"{operation}: failures without a documented code and message",
                   len(found.unclear_failures()), 0)


def tagged_shares(standin, job_ids) -> collections.Counter:
    wanted = set(job_ids)
    return collections.Counter(
        tag for tag in map(outcomes.job_tag, standin.shares()) if tag in wanted)


def test_manila_faults_end_every_job_once_with_a_clear_outcome_and_no_duplicate(
        size, report, make_standin, redis_server, workers, notifications, make_client, ctxt,
        project):
    standin = make_standin(standin_config.Delays(snapshot_create=0.5, share_create=0.5),
                           seed=size.manila_jobs)
    share_ids = standin.create_shares(project, size.manila_jobs, size=1)
    config = workers.configure(standin, redis_url=redis_server.url, max_concurrent_jobs=8,
                               options={"manila": {"timeout": CLIENT_TIMEOUT}})
    worker = workers.start(config)
    client = make_client()
    collector = notifications.collector
    standin.faults.error_rate = ERROR_RATE
    standin.faults.slow_rate = SLOW_RATE
    standin.faults.slow_delay = SLOW_DELAY

    # Protect every share, then restore half of what was protected into new shares and
    # delete the other half's snapshots.
    protects = {outcomes.new_id(): share_id for share_id in share_ids}
    for job_id, share_id in protects.items():
        client.protect(ctxt, job_id, share_id, outcomes.OPTIONS, cast=True)
    collector.wait_for(lambda c: c.finished_jobs() >= set(protects), timeout=300,
                       what="the end of every protect")
    protected = outcomes.Outcomes.collect(protects, collector, standin)
    restores: dict[str, str] = {}
    deletes: dict[str, str] = {}
    for index, job_id in enumerate(protected.succeeded()):
        saved = protected.final(job_id)["result"]
        again = outcomes.new_id()
        if index % 2:
            restores[again] = saved["share_id"]
            client.restore(ctxt, again, saved["share_id"], saved, RESTORE, cast=True)
        else:
            deletes[again] = saved["share_id"]
            client.delete(ctxt, again, saved["share_id"], saved, cast=True)
    collector.wait_for(lambda c: c.finished_jobs() >= set(restores) | set(deletes),
                       timeout=300, what="the end of every restore and delete")
    faulty = standin.count_requests(), sum(1 for r in standin.requests() if r.injected)
    standin.faults.clear()

    # The worker still runs and still works.
    assert worker.running
    last = outcomes.new_id()
    record = client.protect(ctxt, last, share_ids[0], outcomes.OPTIONS)
    assert record["status"] == "succeeded", record
    assert worker.terminate(config.shutdown_timeout + 20) == 0
    notifications.barrier()

    protected = outcomes.Outcomes.collect(protects, collector, standin)
    restored = outcomes.Outcomes.collect(restores, collector, standin)
    deleted = outcomes.Outcomes.collect(deletes, collector, standin)
    row = report(f"Manila faults (~20 % of requests 500/503 or > {CLIENT_TIMEOUT} s)")
    row.add("requests answered 500/503 (of all)", f"{faulty[1]}/{faulty[0]}")
    terminal_counts(protected, row, "protect")
    row.add("protect: jobs with two snapshots", len(protected.jobs_with_two_snapshots()), 0)
    row.add("protect: snapshots left by failed jobs",
            sum(1 for s in protected.snapshots if outcomes.job_tag(s) in
                set(protected.failed())), 0)
    terminal_counts(restored, row, "restore")
    shares_made = tagged_shares(standin, restores)
    row.add("restore: jobs with two shares", sum(1 for n in shares_made.values() if n > 1), 0)
    row.add("restore: shares left by failed jobs",
            sum(n for tag, n in shares_made.items() if tag in set(restored.failed())), 0)
    terminal_counts(deleted, row, "delete")
    row.add("worker exited", int(not worker.running and worker.popen.returncode != 0), 0)
    row.check()


LOST_ANSWERS = {
    # fault: (operation, the stand-in fault to script)
    "snapshot request answered after the timeout": (
        "protect", lambda f: f.slow_next(1, SLOW_DELAY, method="POST", path=r"/snapshots$")),
    "access rules unreadable once the snapshot exists": (
        "protect", lambda f: f.fail_next(1, 503, method="GET",
                                         path=r"/share-access-rules$")),
    "share request answered after the timeout": (
        "restore", lambda f: f.slow_next(1, SLOW_DELAY, method="POST", path=r"/shares$")),
}

#: Faults that outlast the job: protect_timeout = restore_timeout = DEADLINE.
DEADLINE = 6
FAILURES = {
    "access rules unreadable until the deadline": (
        "protect", lambda f: f.fail_next(10_000, 503, method="GET",
                                         path=r"/share-access-rules$")),
    "access rules of the new share refused every time": (
        "restore", lambda f: f.fail_next(10_000, 503, method="POST", path=r"/action$")),
}


RULES = [{"access_type": "ip", "access_to": "10.0.0.0/24", "access_level": "rw"}]


def run_one(fault, make_standin, workers, redis_server, make_client, ctxt, project):
    """One job under one scripted fault: its record, its operation and what it made
    (tagged with its id).

    The share has an access rule and a restore re-applies it.
    """
    operation, script = fault
    standin = make_standin(standin_config.Delays(snapshot_create=0.2, share_create=0.2))
    share = standin.create_share(project, size=1, access_rules=RULES)
    config = workers.configure(standin, redis_url=redis_server.url, options={"manila": {
        "timeout": CLIENT_TIMEOUT, "protect_timeout": DEADLINE, "restore_timeout": DEADLINE}})
    workers.start(config)
    client = make_client()
    saved = None
    if operation == "restore":
        saved = client.protect(ctxt, outcomes.new_id(), share["id"], outcomes.OPTIONS)["result"]
    script(standin.faults)
    job_id = outcomes.new_id()
    if operation == "protect":
        record = client.protect(ctxt, job_id, share["id"], outcomes.OPTIONS)
        made = [s for s in standin.snapshots(share["id"]) if outcomes.job_tag(s) == job_id]
    else:
        record = client.restore(ctxt, job_id, share["id"], saved, {"restore_name": "faults"})
        made = [s for s in standin.shares() if outcomes.job_tag(s) == job_id]
    standin.faults.clear()
    return record, operation, made


@pytest.mark.parametrize("fault", sorted(LOST_ANSWERS))
def test_a_job_whose_answer_manila_lost_adopts_what_manila_made(
        fault, make_standin, redis_server, workers, notifications, make_client, ctxt,
        project):
    record, operation, made = run_one(LOST_ANSWERS[fault], make_standin, workers, redis_server,
                                      make_client, ctxt, project)
    assert record["status"] == "succeeded", record
    key = "snapshot_id" if operation == "protect" else "share_id"
    assert [m["id"] for m in made] == [record["result"][key]]
    assert made[0]["status"] == "available"


@pytest.mark.parametrize("fault", sorted(FAILURES))
def test_a_job_failed_by_manila_leaves_nothing_behind(
        fault, make_standin, redis_server, workers, notifications, make_client, ctxt,
        project):
    record, operation, made = run_one(FAILURES[fault], make_standin, workers, redis_server,
                                      make_client, ctxt, project)
    assert record["status"] == "failed", record
    assert record["error"]["code"] == "manila_unavailable"
    assert record["error"]["retryable"] is True
    assert record["error"]["details"]["cleaned_up"] is True
    assert made == [], f"the failed {operation} left {[m['id'] for m in made]} behind"
