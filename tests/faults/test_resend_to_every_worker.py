"""The same job sent to every worker of a fleet at once -- by name to each worker and to the
topic, from several callers -- runs once: one ``.start``, one terminal notification, one
revert request.

A revert in place is the job that must never run twice (a second revert undoes what was
written after the first).  The workers share one job store on MariaDB and their locks
on a private Redis.
"""

from __future__ import annotations

import collections
import concurrent.futures

import pytest

from manila_standin import config as standin_config

from faults import outcomes

pytestmark = [pytest.mark.functional, pytest.mark.faults, pytest.mark.timeout(1800)]

WORKERS = 3
#: Copies of each job sent to the topic (besides one to each worker by name).
TOPIC_COPIES = 3
START = "manila_protector.restore.start"


def test_a_revert_sent_to_every_worker_at_once_runs_once(
        size, report, make_standin, redis_server, workers, notifications, make_client, ctxt,
        project, fleet_store):
    standin = make_standin(standin_config.Delays(revert=1.0), latency=0.02)
    fleet = [workers.start(workers.configure(standin, redis_url=redis_server.url,
                                             max_concurrent_jobs=8,
                                             options=fleet_store.worker_options()))
             for _ in range(WORKERS)]
    client = make_client()
    jobs: dict[str, str] = {}
    sends = []
    for share_id in standin.create_shares(project, size.resend_trials, size=1):
        snapshot = standin.create_snapshot(share_id)
        job_id = outcomes.new_id()
        jobs[job_id] = share_id
        saved = outcomes.saved_info(standin, share_id, snapshot)
        kwargs = {"job_id": job_id, "share_id": share_id, "saved_info": saved,
                  "parameters": {"share_id": share_id}}
        for worker in fleet:
            sends.append((client._client.prepare(server=worker.host), kwargs))
        sends += [(client._client, kwargs)] * TOPIC_COPIES

    # Every copy of every job at once, from as many callers.
    with concurrent.futures.ThreadPoolExecutor(16) as callers:
        list(callers.map(lambda send: send[0].cast(ctxt, "restore", **send[1]), sends))

    collector = notifications.collector
    collector.wait_for(lambda c: c.finished_jobs() >= set(jobs), timeout=180,
                       what="a terminal notification of every job")
    for worker in fleet:
        assert worker.terminate(worker.config.shutdown_timeout + 20) == 0
    notifications.barrier()

    found = outcomes.Outcomes.collect(jobs, collector, standin)
    posts = outcomes.revert_requests(standin)
    starts = collections.Counter(n["payload"]["job_id"] for n in collector.items
                                 if n["event_type"] == START)
    view = fleet_store.open()
    try:
        records = {job_id: view.get(job_id) for job_id in jobs}
    finally:
        view.close()
    row = report(f"same revert sent {WORKERS + TOPIC_COPIES}x at once to {WORKERS} workers "
                 f"({len(jobs)} jobs, store on MariaDB)")
    row.add("jobs with more than one .start", sum(1 for j in jobs if starts[j] > 1), 0)
    row.add("jobs without exactly one terminal notification", sum(
        1 for j in jobs if len(found.terminal[j]) != 1), 0)
    row.add("jobs with more than one revert request", sum(
        1 for j in jobs if posts[jobs[j]] > 1), 0)
    row.add("jobs without their revert request", sum(1 for j in jobs if posts[jobs[j]] != 1), 0)
    row.add("jobs failed", len(found.failed()), 0)
    row.add("jobs whose record disagrees with their notification", sum(
        1 for j in jobs if found.final(j) is None
        or records[j].status != found.final(j)["status"]
        or records[j].host != found.final(j)["host"]), 0)
    row.add("workers that ran jobs", len({r.host for r in records.values()}))
    if found.failed():
        print("failures:", dict(found.failure_codes()),
              [found.final(j)["error"]["message"] for j in found.failed()][:3])
    row.check()
