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
import shutil
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
import redis

from manila_protector import exception
from manila_protector.rpc import api as rpc_api
from manila_protector.rpc import context as rpc_context
from manila_standin import server as standin_server
from manila_protector.worker import service as service_mod

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
    #: The broker the transports and the workers configured for it use.
    transport_url: str = TRANSPORT_URL


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
                "ctxt": ctxt.to_dict() if hasattr(ctxt, "to_dict") else ctxt,
                # When this process received it (time.monotonic()), for benchmarks.
                "received": time.monotonic()})
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

    def mark(self) -> int:
        """A place in the record: :meth:`since` gives what arrived after it."""
        return len(self.items)

    def since(self, mark: int) -> list[dict[str, typing.Any]]:
        return self.items[mark:]

    def for_job(self, job_id: str, *, progress: bool = False) -> list[dict[str, typing.Any]]:
        """The job's notifications; its ``.progress`` ones (best effort, rate-limited,
        see :meth:`progress`) only with ``progress=True``."""
        return [n for n in self.items
                if isinstance(n["payload"], dict) and n["payload"].get("job_id") == job_id
                and (progress or not n["event_type"].endswith(".progress"))]

    def progress(self, job_id: str) -> list[dict[str, typing.Any]]:
        """The job's ``.progress`` notifications, in the order they arrived."""
        return [n for n in self.for_job(job_id, progress=True)
                if n["event_type"].endswith(".progress")]

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
            except exception.WorkerUnavailable:
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


def _with_options(text: str, options: typing.Mapping[str, typing.Mapping[str, typing.Any]]
                  ) -> str:
    """Add ``{group: {name: value}}`` to an ini text: into the group's section, or as a new one."""
    lines = text.splitlines()
    for group, values in options.items():
        added = [f"{name} = {value}" for name, value in values.items()]
        header = f"[{group}]"
        if header not in lines:
            lines += ["", header, *added]
            continue
        end = lines.index(header) + 1
        while end < len(lines) and lines[end].strip() and not lines[end].startswith("["):
            end += 1
        lines[end:end] = added
    return "\n".join(lines) + "\n"


class Workers:
    """Writes worker configs and starts worker processes for one test."""

    def __init__(self, broker: Broker, names: Names, root: pathlib.Path,
                 ctxt: typing.Any) -> None:
        self._broker = broker
        self._names = names
        self._root = root
        self._ctxt = ctxt
        self._probe = rpc_api.ProtectorAPI(broker.transport, topic=names.topic,
                                           exchange=broker.control_exchange, timeout=2)
        self.started: list[WorkerProcess] = []

    def configure(
        self,
        standin: standin_server.ManilaStandIn,
        *,
        max_concurrent_jobs: int = 4,
        shutdown_timeout: float = 10,
        lock_wait: float = 60,
        lock_timeout: int | None = None,
        redis_url: str | None = None,
        options: typing.Mapping[str, typing.Mapping[str, typing.Any]] | None = None,
    ) -> WorkerConfig:
        """Write the config file of a new worker (a new host name and state_path; the
        test's workers share one job store, an SQLite file of the test's own).

        :param lock_timeout: TTL of a Redis lock (tooz's default is 30 s); a killed
            worker's lock is free again only after it.
        :param redis_url: the Redis of the locks (default: the machine's, ``REDIS_URL``).
        :param options: more options, ``{group: {name: value}}`` (added to the group's
            section, or as a new section), e.g. ``{"manila": {"timeout": 2}}``.
        """
        backend_url = ((redis_url or REDIS_URL)
                       + (f"?lock_timeout={lock_timeout}" if lock_timeout else ""))
        host = f"{self._names.topic}-w{len(self._names.hosts) + 1}"
        self._names.hosts.append(host)
        state_path = self._root / host / "state"
        path = self._root / host / "worker.conf"
        state_path.parent.mkdir(parents=True)
        (self._root / "store").mkdir(exist_ok=True)
        path.write_text(_with_options(f"""\
[DEFAULT]
transport_url = {self._broker.transport_url}
host = {host}
state_path = {state_path}
control_exchange = {self._broker.control_exchange}

[database]
connection = sqlite:///{self._root / "store" / "jobs.sqlite"}

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
""", options or {}))
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


# -- building blocks for the fault suite and the benchmark (no pytest needed) ---------------


def wait_until(predicate: typing.Callable[[], typing.Any], timeout: float, what: str,
               interval: float = 0.05) -> typing.Any:
    """Poll ``predicate`` until it is truthy (returns its value) or ``timeout`` passes.

    :raises AssertionError: not within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        pause.wait(interval)


def open_broker(
    transport_url: str = TRANSPORT_URL,
    exchange: str | None = None,
    overrides: typing.Mapping[str, typing.Mapping[str, typing.Any]] | None = None,
) -> Broker:
    """This process's transports on ``transport_url``, on an exchange of its own.

    The configuration is the worker's (``service.prepare_conf``), so the queue
    settings agree with the workers' unless ``overrides`` (``{group: {name: value}}``,
    also to be given to :meth:`Workers.configure`) change them on both sides.
    """
    exchange = exchange or f"mp-ft-{uuid.uuid4().hex[:12]}"
    conf = cfg.ConfigOpts()
    service_mod.prepare_conf(conf)
    conf([], project="manila-protector-functional", default_config_files=[])
    conf.set_override("transport_url", transport_url)
    conf.set_override("control_exchange", exchange)
    for group, values in (overrides or {}).items():
        for name, value in values.items():
            conf.set_override(name, value, group=group)
    transport = rpc_api.get_transport(conf, transport_url)
    notification_transport = oslo_messaging.get_notification_transport(conf, transport_url)
    return Broker(exchange, conf, transport, notification_transport, transport_url)


def close_broker(broker: Broker) -> None:
    """Close the transports; on the machine's broker, delete the exchange too."""
    broker.transport.cleanup()
    broker.notification_transport.cleanup()
    if broker.transport_url == TRANSPORT_URL:
        delete_from_broker([], [broker.control_exchange])


class NotificationListener:
    """Listens to ``names.notification_topic`` (a :class:`Collector`) and sends barriers.

    ``start()`` returns the :class:`Notifications`; call ``stop()`` afterwards.
    """

    def __init__(self, broker: Broker, names: Names) -> None:
        self.collector = Collector()
        serializer = rpc_context.RequestContextSerializer()
        self._listener = oslo_messaging.get_notification_listener(
            broker.notification_transport,
            [oslo_messaging.Target(topic=names.notification_topic)],
            [self.collector], serializer=serializer)
        notifier = oslo_messaging.Notifier(
            broker.notification_transport, publisher_id="functional_tests",
            driver="messagingv2", topics=[names.notification_topic], serializer=serializer)
        self.notifications = Notifications(self.collector, notifier)

    def start(self) -> Notifications:
        self._listener.start()
        return self.notifications

    def stop(self) -> None:
        self._listener.stop()
        self._listener.wait()


def _tool(name: str, *directories: str) -> str | None:
    for directory in directories:
        path = os.path.join(directory, name)
        if os.access(path, os.X_OK):
            return path
    return shutil.which(name)


def _tail(path: pathlib.Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


class PrivateRabbit:
    """A RabbitMQ node of its own on loopback, which a test may stop and restart.

    Own node name, AMQP and distribution ports, data directory and Erlang cookie
    (``HOME`` under ``root``), so stopping it disturbs no other user of the
    machine's broker.  Like a real broker it keeps its durable queues and their
    persistent messages across :meth:`restart`.

    :param root: a directory of its own (data, logs, cookie).
    """

    #: The server scripts of the Debian package (``/usr/sbin`` wraps them in ``su``).
    BIN_DIRS = ("/usr/lib/rabbitmq/bin",)
    START_TIMEOUT = 120.0
    STOP_TIMEOUT = 60.0

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self.port = standin_server.free_port()
        self.dist_port = standin_server.free_port()
        self.node = f"mp{uuid.uuid4().hex[:8]}@localhost"
        self._popen: subprocess.Popen[bytes] | None = None
        self._log: typing.BinaryIO | None = None
        self.log_path = root / "server.log"

    @classmethod
    def missing(cls) -> str | None:
        """Why a private node cannot run here (None: it can)."""
        for name in ("rabbitmq-server", "rabbitmqctl"):
            if _tool(name, *cls.BIN_DIRS) is None:
                return f"{name} is not installed"
        return None

    @property
    def transport_url(self) -> str:
        return f"rabbit://guest:guest@127.0.0.1:{self.port}/"

    @property
    def kombu_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def _env(self) -> dict[str, str]:
        home = self.root / "home"
        for directory in (home, self.root / "mnesia", self.root / "log"):
            directory.mkdir(parents=True, exist_ok=True)
        (self.root / "rabbitmq-env.conf").touch()
        (self.root / "enabled_plugins").write_text("[].\n")
        (self.root / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            "disk_free_limit.absolute = 50MB\n")
        return dict(
            os.environ,
            HOME=str(home),
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_CONF_ENV_FILE=str(self.root / "rabbitmq-env.conf"),
            RABBITMQ_CONFIG_FILE=str(self.root / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.root / "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=str(self.root / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.root / "log"),
            RABBITMQ_PID_FILE=str(self.root / "rabbitmq.pid"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the node and wait until it accepts AMQP connections."""
        server = _tool("rabbitmq-server", *self.BIN_DIRS)
        assert server is not None, "rabbitmq-server is not installed"
        self.root.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # closed in stop()
        self._popen = subprocess.Popen(
            [server], env=self._env(), stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, cwd=self.root, start_new_session=True)

        def accepts() -> bool:
            if not self.running:
                raise AssertionError(f"RabbitMQ node {self.node} exited:\n"
                                     f"{_tail(self.log_path)}")
            try:
                with kombu.Connection(self.kombu_url, connect_timeout=2) as conn:
                    conn.connect()
                return True
            except Exception:  # noqa: BLE001 - not up yet
                return False

        wait_until(accepts, timeout, f"RabbitMQ node {self.node} on port {self.port}",
                   interval=0.2)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the node as an operator would (``rabbitmqctl stop``); kill it if that fails."""
        popen, self._popen = self._popen, None
        if popen is None:
            return
        ctl = _tool("rabbitmqctl", *self.BIN_DIRS)
        if popen.poll() is None and ctl is not None:
            subprocess.run([ctl, "-n", self.node, "stop"], env=self._env(), timeout=timeout,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(popen.pid, signal.SIGKILL)
            popen.wait(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> float:
        """Stop and start again; returns the seconds the broker was unavailable."""
        began = time.monotonic()
        self.stop()
        self.start()
        return time.monotonic() - began

    def close(self) -> None:
        """Teardown: stop if running; never raises."""
        try:
            self.stop()
        except Exception as exc:  # noqa: BLE001 - teardown must go on
            print(f"could not stop RabbitMQ node {self.node}: {exc}")


class PrivateRedis:
    """A ``redis-server`` of its own on loopback, which a test may restart.

    Without ``appendonly`` it keeps nothing across a restart (``--save ''``), like a
    cache-configured Redis: every lock key is gone.

    :param root: its working directory.
    :param appendonly: keep an append-only file, fsynced at every write.
    """

    START_TIMEOUT = 30.0

    def __init__(self, root: pathlib.Path, *, appendonly: bool = False) -> None:
        self.root = root
        self.port = standin_server.free_port()
        self.appendonly = appendonly
        self._popen: subprocess.Popen[bytes] | None = None
        self.log_path = root / "redis.log"

    @staticmethod
    def missing() -> str | None:
        """Why a private Redis cannot run here (None: it can)."""
        return None if shutil.which("redis-server") else "redis-server is not installed"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start it and wait until it answers PING."""
        self.root.mkdir(parents=True, exist_ok=True)
        args = [shutil.which("redis-server") or "redis-server", "--port", str(self.port),
                "--bind", "127.0.0.1", "--save", "", "--daemonize", "no",
                "--dir", str(self.root), "--logfile", str(self.log_path)]
        args += (["--appendonly", "yes", "--appendfsync", "always"] if self.appendonly
                 else ["--appendonly", "no"])
        self._popen = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1,
                             socket_connect_timeout=1)

        def answers() -> bool:
            if not self.running:
                raise AssertionError(f"redis-server exited:\n{_tail(self.log_path)}")
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        try:
            wait_until(answers, timeout, f"redis-server on port {self.port}", interval=0.02)
        finally:
            client.close()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        """Stop it with ``sig`` (SIGTERM: a service restart; SIGKILL: a crash)."""
        popen, self._popen = self._popen, None
        if popen is None:
            return
        if popen.poll() is None:
            popen.send_signal(sig)
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(timeout)

    def restart(self, sig: int = signal.SIGTERM) -> float:
        """Stop and start again on the same port; returns the seconds it was away."""
        began = time.monotonic()
        self.stop(sig)
        self.start()
        return time.monotonic() - began

    def close(self) -> None:
        self.stop(signal.SIGKILL)
