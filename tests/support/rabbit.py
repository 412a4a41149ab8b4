"""Worker processes on the real RabbitMQ and Redis, driven from a test (or benchmark) process.

The Manila stand-in serves HTTP from the driving process; every worker is its own
``python -m manila_protector.worker.service`` process with a config file written
here; the driving process talks to them over RabbitMQ (RPC and a notification
listener). Used by the functional tests, the fault-injection suite and the
scale-out benchmark.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
import typing
import uuid

import kombu
from oslo_config import cfg
from oslo_context import context as oslo_context
import oslo_messaging

from manila_protector import exception
from manila_protector.rpc import api as rpc_api
from manila_protector.standin import server as standin_server

RABBIT_HOST, RABBIT_PORT = "127.0.0.1", 5672


REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


TRANSPORT_URL = f"rabbit://guest:guest@{RABBIT_HOST}:{RABBIT_PORT}/"


KOMBU_URL = f"amqp://guest:guest@{RABBIT_HOST}:{RABBIT_PORT}//"


REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}"


#: Seconds a worker process may take from exec to consuming its queues.
READY_TIMEOUT = 60.0


#: Seconds between SIGTERM and SIGKILL when a test's teardown stops a worker.
TEARDOWN_KILL_AFTER = 20.0


#: Default wait for a notification condition.
NOTIFY_TIMEOUT = 60.0


def delete_from_broker(queues: typing.Iterable[str], exchanges: typing.Iterable[str]) -> None:
    """Best effort: remove what the tests declared (queues outlive their consumers)."""
    try:
        with kombu.Connection(KOMBU_URL, connect_timeout=5) as conn:
            for name in queues:
                with conn.channel() as channel:
                    channel.queue_delete(name)
            for name in exchanges:
                with conn.channel() as channel:
                    channel.exchange_delete(name)
    except Exception as exc:  # noqa: BLE001 - cleanup must not fail a test
        print(f"could not clean up the broker: {type(exc).__name__}: {exc}")


@dataclasses.dataclass
class Broker:
    """This process's view of the session's exchange on RabbitMQ."""

    control_exchange: str
    conf: cfg.ConfigOpts
    transport: typing.Any
    notification_transport: typing.Any


@dataclasses.dataclass
class Names:
    """One test's topics on the session's exchange, and the worker hosts it made."""

    topic: str
    notification_topic: str
    hosts: list[str] = dataclasses.field(default_factory=list)

    def queues(self) -> list[str]:
        # oslo.messaging's rabbit driver: a shared topic queue, one per server,
        # one per notification topic and priority (fanout queues expire by TTL).
        return ([self.topic] + [f"{self.topic}.{host}" for host in self.hosts]
                + [f"{self.notification_topic}.{p}" for p in ("info", "error")])


BARRIER_EVENT = "functional_tests.barrier"


class Collector:
    """A notification endpoint recording every notification, with waits."""

    def __init__(self) -> None:
        self._items: list[dict[str, typing.Any]] = []
        self._cond = threading.Condition()

    def _record(self, priority: str, ctxt: typing.Any, publisher_id: str, event_type: str,
                payload: typing.Any) -> None:
        with self._cond:
            self._items.append({
                "priority": priority, "publisher_id": publisher_id, "event_type": event_type,
                "payload": payload,
                "ctxt": ctxt.to_dict() if hasattr(ctxt, "to_dict") else ctxt})
            self._cond.notify_all()

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        self._record("INFO", ctxt, publisher_id, event_type, payload)

    def error(self, ctxt, publisher_id, event_type, payload, metadata):
        self._record("ERROR", ctxt, publisher_id, event_type, payload)

    @property
    def items(self) -> list[dict[str, typing.Any]]:
        with self._cond:
            return [n for n in self._items if n["event_type"] != BARRIER_EVENT]

    def wait_for(self, predicate: typing.Callable[[Collector], typing.Any],
                 timeout: float = NOTIFY_TIMEOUT, what: str = "notifications") -> typing.Any:
        """Wait until ``predicate(self)`` is truthy; return its value.

        :raises AssertionError: not within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate(self)
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(n["event_type"], n["payload"].get("job_id")) for n in self.items]
                    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; "
                                         f"{len(seen)} notification(s): {seen[-20:]!r}")
                self._cond.wait(remaining)

    def for_job(self, job_id: str) -> list[dict[str, typing.Any]]:
        return [n for n in self.items
                if isinstance(n["payload"], dict) and n["payload"].get("job_id") == job_id]

    def events(self, job_id: str) -> list[str]:
        return [n["event_type"] for n in self.for_job(job_id)]

    def terminal(self, job_id: str) -> list[dict[str, typing.Any]]:
        return [n for n in self.for_job(job_id)
                if n["event_type"].endswith((".end", ".error"))]

    def errors(self) -> list[dict[str, typing.Any]]:
        return [n for n in self.items
                if n["priority"] == "ERROR" or n["event_type"].endswith(".error")]

    def finished_jobs(self) -> set[str]:
        """Ids of the jobs a terminal notification arrived for."""
        return {n["payload"].get("job_id") for n in self.items
                if n["event_type"].endswith((".end", ".error"))
                and isinstance(n["payload"], dict)}

    def barrier_arrived(self, token: str) -> bool:
        """Whether the barrier ``token`` arrived on both priorities."""
        with self._cond:
            return sorted(n["priority"] for n in self._items
                          if n["event_type"] == BARRIER_EVENT
                          and n["payload"].get("barrier") == token) == ["ERROR", "INFO"]


class Notifications:
    """The collector, and a barrier: once a marker sent now has arrived on both
    priorities, every notification the workers published before it has too
    (each topic-and-priority queue is FIFO)."""

    def __init__(self, collector: Collector, notifier: oslo_messaging.Notifier) -> None:
        self.collector = collector
        self._notifier = notifier

    def barrier(self, timeout: float = NOTIFY_TIMEOUT) -> None:
        token = uuid.uuid4().hex
        ctxt = oslo_context.RequestContext()
        self._notifier.info(ctxt, BARRIER_EVENT, {"barrier": token})
        self._notifier.error(ctxt, BARRIER_EVENT, {"barrier": token})
        self.collector.wait_for(lambda c: c.barrier_arrived(token), timeout,
                                "the notification barrier")


@dataclasses.dataclass(frozen=True)
class WorkerConfig:
    """One worker's config file and the places it names."""

    host: str
    path: pathlib.Path
    state_path: pathlib.Path
    log_path: pathlib.Path
    shutdown_timeout: float


class WorkerProcess:
    """A running ``python -m manila_protector.worker.service``."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self._log = open(config.log_path, "ab")  # closed in wait()
        self._log.write(f"==== starting worker {config.host}\n".encode())
        self._log.flush()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "manila_protector.worker.service",
             "--config-file", str(config.path)],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.config.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, client: rpc_api.ProtectorAPI, ctxt: typing.Any,
                   timeout: float = READY_TIMEOUT) -> None:
        """Wait until the worker answers on its own queue (it is then consuming).

        Asks its server for a job that does not exist: ``NotFound`` means the
        request reached the runner.
        """
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise AssertionError(f"worker {self.host} exited with {self.popen.returncode} "
                                     f"before it was ready:\n{self.log_tail()}")
            try:
                client.get_job(ctxt, str(uuid.uuid4()), server=self.host)
            except exception.NotFound:
                return
            except oslo_messaging.MessagingTimeout:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"worker {self.host} not ready after {timeout:g} s:\n"
                                     f"{self.log_tail()}")

    def kill(self) -> int:
        """SIGKILL, as a crash would; returns the exit status."""
        self.popen.send_signal(signal.SIGKILL)
        return self.wait(TEARDOWN_KILL_AFTER)

    def terminate(self, timeout: float) -> int:
        """SIGTERM; returns the exit status.

        :raises AssertionError: it did not exit within ``timeout`` (it is then killed).
        """
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"worker {self.host} did not exit within {timeout:g} s of "
                                 f"SIGTERM:\n{self.log_tail()}") from None

    def wait(self, timeout: float) -> int:
        code = self.popen.wait(timeout)
        self._log.close()
        return code

    def stop_quietly(self) -> None:
        """Teardown: SIGTERM, then SIGKILL after a deadline."""
        if not self.running:
            self.wait(1)
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.wait(TEARDOWN_KILL_AFTER)
        except subprocess.TimeoutExpired:
            self.kill()


class Workers:
    """Writes worker configs and starts worker processes for one test."""

    def __init__(self, broker: Broker, names: Names, root: pathlib.Path,
                 ctxt: typing.Any) -> None:
        self._broker = broker
        self._names = names
        self._root = root
        self._ctxt = ctxt
        self._probe = rpc_api.ProtectorAPI(broker.transport, topic=names.topic, timeout=2)
        self.started: list[WorkerProcess] = []

    def configure(
        self,
        standin: standin_server.ManilaStandIn,
        *,
        max_concurrent_jobs: int = 4,
        shutdown_timeout: float = 10,
        lock_wait: float = 60,
        lock_timeout: int | None = None,
    ) -> WorkerConfig:
        """Write the config file of a new worker (a new host name and state_path).

        :param lock_timeout: TTL of a Redis lock (tooz's default is 30 s); a killed
            worker's lock is free again only after it.
        """
        backend_url = REDIS_URL + (f"?lock_timeout={lock_timeout}" if lock_timeout else "")
        host = f"{self._names.topic}-w{len(self._names.hosts) + 1}"
        self._names.hosts.append(host)
        state_path = self._root / host / "state"
        path = self._root / host / "worker.conf"
        state_path.parent.mkdir(parents=True)
        path.write_text(f"""\
[DEFAULT]
transport_url = {TRANSPORT_URL}
host = {host}
state_path = {state_path}
control_exchange = {self._broker.control_exchange}

[worker]
topic = {self._names.topic}
max_concurrent_jobs = {max_concurrent_jobs}
shutdown_timeout = {shutdown_timeout:g}

[coordination]
backend_url = {backend_url}
lock_wait = {lock_wait:g}

[manila]
endpoint_override = {standin.endpoint}
# Notice quickly when the stand-in finished a transition.
poll_max_interval = 0.5

[oslo_messaging_notifications]
driver = messagingv2
topics = {self._names.notification_topic}
""")
        return WorkerConfig(host=host, path=path, state_path=state_path,
                            log_path=self._root / host / "worker.log",
                            shutdown_timeout=shutdown_timeout)

    def start(self, config: WorkerConfig) -> WorkerProcess:
        """Start a worker with ``config`` and wait until it consumes its queues."""
        worker = WorkerProcess(config)
        self.started.append(worker)
        worker.wait_ready(self._probe, self._ctxt)
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop_quietly()
