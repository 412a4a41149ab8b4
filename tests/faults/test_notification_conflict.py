"""A notification queue declared otherwise while jobs run: no notification is recorded as sent
that was not.

What a default-configured OpenStack service does when it (re)starts beside the worker: it
declares the notification queue non-durable.  Here, while protect jobs make their
snapshots, the worker's ``<topic>.info`` queue is deleted and declared again
non-durable.  A send through a connection that declares the queue then fails
``PRECONDITION_FAILED``; one through a connection that declared it before still reaches
the exchange: the test closes the worker's connections (as a broker failover would) so
that its sends declare the queue afresh.  A witness queue of the test's own, bound to the
same exchange and routing key, sees every notification the broker really took.  Counted
against the job store's record of what was sent; then the conflicting queue is removed
(the operator's fix) and the housekeeping must send what was not sent.
"""

from __future__ import annotations

import collections
import json
import re
import subprocess
import uuid

import kombu
import pytest

from manila_standin import config as standin_config

from faults import outcomes
from support import rabbit

pytestmark = [pytest.mark.functional, pytest.mark.faults, pytest.mark.timeout(900)]

JOBS = 16
#: The snapshots are made when the test says so (after the conflict and the resets).
SNAPSHOT_SECONDS = 3600.0
WAIT = 120.0


class Witness:
    """A queue of the test's own bound to the notifications' exchange and routing keys."""

    def __init__(self, exchange: str, topic: str) -> None:
        self.name = f"{topic}-witness"
        self._connection = kombu.Connection(rabbit.KOMBU_URL)
        exchange_ = kombu.Exchange(exchange, "topic", durable=True, auto_delete=False)
        self._queues = [
            kombu.Queue(self.name, exchange=exchange_, routing_key=f"{topic}.{priority}",
                        durable=False, auto_delete=False)(self._connection.channel())
            for priority in ("info", "error")]
        for queue in self._queues:
            queue.declare()
        self.events: collections.defaultdict[str, list[str]] = collections.defaultdict(list)

    def drain(self) -> None:
        """Read what arrived so far."""
        for queue in self._queues[:1]:  # both bindings lead to the one queue
            while (message := queue.get(no_ack=True)) is not None:
                body = message.payload
                inner = json.loads(body["oslo.message"]) if "oslo.message" in body else body
                payload = inner.get("payload") or {}
                if isinstance(payload, dict) and payload.get("job_id"):
                    self.events[payload["job_id"]].append(inner["event_type"])

    def terminal(self, job_id: str) -> int:
        return sum(1 for e in self.events[job_id] if e.endswith((".end", ".error")))

    def close(self) -> None:
        self._connection.release()


def declare_otherwise(exchange: str, topic: str) -> None:
    """Delete ``<topic>.info`` and declare it again non-durable (oslo.messaging's default)."""
    with kombu.Connection(rabbit.KOMBU_URL) as connection:
        channel = connection.channel()
        channel.queue_delete(f"{topic}.info")
        kombu.Queue(f"{topic}.info", exchange=kombu.Exchange(exchange, "topic", durable=True),
                    routing_key=f"{topic}.info", durable=False, auto_delete=False)(
            channel).declare()


def close_connections_of(pid: int) -> int:
    """Close the process's RabbitMQ connections (``rabbitmqctl close_connection``), as a
    broker failover would; returns how many.  Its reconnected connections declare their
    queues afresh."""
    listed = subprocess.run(["rabbitmqctl", "list_connections", "-q", "pid",
                             "client_properties"], capture_output=True, text=True, timeout=60,
                            check=True).stdout
    closed = 0
    for line in listed.splitlines():
        connection, _, properties = line.partition("\t")
        if f':{pid}:' in properties:
            subprocess.run(["rabbitmqctl", "close_connection", connection, "fault injection"],
                           capture_output=True, timeout=60, check=True)
            closed += 1
    return closed


def test_a_notification_queue_declared_otherwise_mid_run_loses_no_recorded_notification(
        report, make_standin, workers, make_client, ctxt, project, fleet_store, broker):
    topic = f"mp-fault-nc-{uuid.uuid4().hex[:10]}"
    standin = make_standin(standin_config.Delays(snapshot_create=SNAPSHOT_SECONDS), latency=0.02)
    options = fleet_store.worker_options()
    options["worker"]["housekeeping_interval"] = 1
    options["oslo_messaging_notifications"] = {"topics": topic}
    config = workers.configure(standin, max_concurrent_jobs=JOBS, options=options)
    worker = workers.start(config)
    witness = Witness(broker.control_exchange, topic)
    view = fleet_store.open()
    try:
        run(report, standin, worker, witness, view, make_client(), ctxt, project, broker,
            topic)
    finally:
        view.close()
        witness.close()
        rabbit.delete_from_broker([f"{topic}.info", f"{topic}.error", witness.name], [])


def run(report, standin, worker, witness, view, client, ctxt, project, broker, topic):
    jobs: dict[str, str] = {}
    for share_id in standin.create_shares(project, JOBS, size=1):
        job_id = outcomes.new_id()
        jobs[job_id] = share_id
        client.protect(ctxt, job_id, share_id, outcomes.OPTIONS, cast=True)
    # Every job is making its snapshot: their .end go out after the conflict.
    rabbit.wait_until(lambda: len(standin.snapshots()) >= JOBS, WAIT, "every job's snapshot")
    declare_otherwise(broker.control_exchange, topic)
    # Connections that declared the queue before publish to the exchange without
    # declaring it again; new ones (after a reset) declare it, and are refused.
    closed = close_connections_of(worker.popen.pid)
    assert not any(view.get(j).finished for j in jobs)
    for snapshot in standin.snapshots():
        standin.set_snapshot_status(snapshot["id"], "available")

    def refused(job_id: str, log: str) -> bool:
        return bool(re.search(rf"job {job_id}: terminal notification not sent", log))

    def settled() -> bool:
        log = worker.log_tail(100000)
        return all(view.get(j).finished and (view.end_notified(j) or refused(j, log))
                   for j in jobs)

    rabbit.wait_until(settled, WAIT, "every job's end sent or refused", interval=0.2)
    witness.drain()
    log = worker.log_tail(100000)
    recorded_unsent = [j for j in jobs if view.end_notified(j) and not witness.terminal(j)]
    refused_jobs = [j for j in jobs if refused(j, log)]

    # The operator removes the queue declared otherwise: the housekeeping sends the rest.
    rabbit.delete_from_broker([f"{topic}.info"], [])
    rabbit.wait_until(lambda: all(view.end_notified(j) for j in jobs), WAIT,
                      "every job's end recorded as sent", interval=0.2)
    witness.drain()
    row = report(f"notification queue declared otherwise mid-run ({JOBS} jobs)")
    row.add("notifications recorded as sent but not taken by the broker", len(recorded_unsent),
            0)
    row.add("terminal notifications refused during the conflict (sent again later)",
            len(refused_jobs))
    row.add("jobs whose .end never arrived after the fix",
            sum(1 for j in jobs if not witness.terminal(j)), 0)
    row.add("jobs with a repeated terminal notification",
            sum(1 for j in jobs if witness.terminal(j) > 1))
    row.add("worker connections closed after the conflict", closed)
    row.add("jobs failed", sum(1 for j in jobs if view.get(j).status == "failed"), 0)
    assert worker.running, "a conflict after start must not stop the worker"
    row.check()


