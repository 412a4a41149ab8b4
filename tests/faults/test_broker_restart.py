"""A RabbitMQ restart under load: the workers reconnect by themselves and no job the
broker accepted is lost.

The broker is a private RabbitMQ node (own ports, data and cookie) so that stopping
it disturbs nobody else on this machine.
"""

from __future__ import annotations

import concurrent.futures
import os
import pathlib
import threading
import time
import typing

import pytest

from manila_protector import exception
from manila_protector.rpc import api as rpc_api
from manila_standin import config as standin_config

from faults import harness
from faults import outcomes
from support import rabbit

# The full size (MANILA_PROTECTOR_FAULTS=full) outlasts the suite-wide 300 s timeout.
pytestmark = [pytest.mark.functional, pytest.mark.faults, pytest.mark.timeout(1800)]

#: Casts per second while the broker is up: the restart falls in the middle of them.
CAST_RATE = 10.0
#: Queue settings to run with, ``MANILA_PROTECTOR_FAULTS_QUEUES``: the worker's default
#: (durable), oslo.messaging's own (transient) or quorum queues; given to both sides.
QUEUES = {
    "durable": {},
    "transient": {"oslo_messaging_rabbit": {"amqp_durable_queues": False}},
    "quorum": {"oslo_messaging_rabbit": {"rabbit_quorum_queue": True}},
}
#: Casts sent the moment the broker accepts connections again.
BURST = 10


def queue_setting() -> str:
    name = os.environ.get("MANILA_PROTECTOR_FAULTS_QUEUES", "durable")
    if name not in QUEUES:
        raise pytest.UsageError(f"MANILA_PROTECTOR_FAULTS_QUEUES={name!r}: one of "
                                f"{sorted(QUEUES)}")
    return name


def queue_options() -> dict:
    return QUEUES[queue_setting()]


class Cluster(typing.NamedTuple):
    broker_node: rabbit.PrivateRabbit
    broker: rabbit.Broker
    names: rabbit.Names
    notifications: rabbit.Notifications
    workers: rabbit.Workers


@pytest.fixture
def cluster(tmp_path: pathlib.Path, redis_server, ctxt) -> typing.Iterator[Cluster]:
    """Worker processes, this process's transports and a notification listener, all on
    a private RabbitMQ node; torn down workers first, broker last."""
    reason = rabbit.PrivateRabbit.missing()
    if reason:
        harness.unavailable("a private RabbitMQ node", reason)
    node = rabbit.PrivateRabbit(tmp_path / "rabbitmq")
    node.start()
    broker = rabbit.open_broker(node.transport_url, overrides=queue_options())
    names = harness.new_names()
    listener = rabbit.NotificationListener(broker, names)
    found = rabbit.Workers(broker, names, tmp_path / "workers", ctxt)
    try:
        yield Cluster(node, broker, names, listener.start(), found)
    finally:
        found.stop_all()
        harness.print_logs(found)
        listener.stop()
        rabbit.close_broker(broker)
        node.close()


def test_rabbitmq_restart_under_load_loses_no_accepted_job(
        size, report, make_standin, redis_server, cluster, ctxt, project):
    standin = make_standin(standin_config.Delays(snapshot_create=0.3))
    share_ids = standin.create_shares(project, size.broker_jobs // 2, size=1)
    started = [cluster.workers.start(cluster.workers.configure(
        standin, redis_url=redis_server.url, max_concurrent_jobs=4, lock_wait=60,
        options=queue_options()))
        for _ in range(2)]
    pids = [w.popen.pid for w in started]
    client = rpc_api.ProtectorAPI(cluster.broker.transport, topic=cluster.names.topic,
                                  exchange=cluster.broker.control_exchange)
    collector = cluster.notifications.collector

    jobs = {outcomes.new_id(): share_ids[i % len(share_ids)]
            for i in range(size.broker_jobs)}
    paced = list(jobs.items())
    accepted: list[str] = []
    refused: dict[str, str] = {}
    pace = threading.Event()

    def send_all() -> None:
        began = time.monotonic()
        for index, (job_id, share_id) in enumerate(paced):
            # A steady pace while the broker is up; a cast blocks while it is down.
            pace.wait(max(0.0, began + index / CAST_RATE - time.monotonic()))
            try:
                client.protect(ctxt, job_id, share_id, outcomes.OPTIONS, cast=True)
            except Exception as exc:  # noqa: BLE001 - counted, not fatal
                refused[job_id] = f"{type(exc).__name__}: {exc}"
            else:
                accepted.append(job_id)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        sending = pool.submit(send_all)
        rabbit.wait_until(lambda: len(accepted) >= size.broker_jobs // 3, 60,
                          "a third of the casts")
        down = cluster.broker_node.restart()
        # A caller that reconnects before the workers do (they back off for seconds).
        for share_id in share_ids[:BURST]:
            job_id = outcomes.new_id()
            jobs[job_id] = share_id
            client.protect(ctxt, job_id, share_id, outcomes.OPTIONS, cast=True)
            accepted.append(job_id)
        sending.result(timeout=300)

    settled = True
    try:
        collector.wait_for(lambda c: c.finished_jobs() >= set(accepted), timeout=90,
                           what="a terminal notification of every accepted job")
    except AssertionError as exc:
        settled = False
        print(exc)
    started_jobs = {n["payload"]["job_id"] for n in collector.items
                    if n["event_type"].endswith(".start") and "job_id" in n["payload"]}
    found = outcomes.Outcomes.collect({j: jobs[j] for j in accepted}, collector, standin)
    lost = found.without_terminal()
    # Where did the lost ones go?  Ask the job store, through any worker.
    where: dict[str, str] = {}
    probe = rpc_api.ProtectorAPI(cluster.broker.transport, topic=cluster.names.topic,
                                 exchange=cluster.broker.control_exchange, timeout=10)
    for job_id in lost:
        where[job_id] = "unknown to every worker"
        for worker in started:
            try:
                record = probe.get_job(ctxt, job_id, server=worker.host)
            except exception.NotFound:
                continue
            where[job_id] = f"{record['status']} on {worker.host}"
    if where:
        print("lost jobs:", where)

    row = report(f"RabbitMQ restart ({len(jobs)} casts, 2 workers, {queue_setting()} queues)")
    row.add("broker unavailable (s)", round(down, 1))
    row.add("casts accepted by the broker", len(accepted))
    row.add("casts refused to the caller", len(refused))
    row.add("accepted jobs lost", len(lost), 0)
    row.add("jobs with .start that never ended", len(set(lost) & started_jobs), 0)
    row.add("lost jobs unknown to every worker",
            sum(1 for w in where.values() if w.startswith("unknown")))
    row.add("worker processes that exited", sum(not w.running for w in started), 0)
    row.add("jobs with two snapshots", len(found.jobs_with_two_snapshots()), 0)
    row.add("snapshots without a job", len(found.snapshots_without_job()), 0)
    row.add("jobs failed", len(found.failed()))
    row.add("jobs with a repeated terminal notification", len(found.repeated_terminal()))
    assert [w.popen.pid for w in started] == pids
    if refused:
        print("refused casts:", list(refused.values())[:3])
    row.check()
    assert settled
