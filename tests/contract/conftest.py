"""The contract tier: one suite, two Manilas (the stand-in and a real Manila 23).

Every scenario runs through a worker process on the real RabbitMQ (Redis locks), with
the caller's context, once per backend: ``backend`` is parametrized with the ids
``standin`` and ``manila23`` (``-k standin`` runs only the stand-in side). The real
Manila is brought up once per session by ``tools/real_manila.py`` (the install is
cached) and stopped at the end (set ``MANILA_PROTECTOR_REAL_MANILA_KEEP=1`` to keep it
running between local runs). Where it cannot start: under ``CI`` the tier fails, with
the reason and the tail of the relevant log; elsewhere a machine without a prerequisite
(MariaDB, RabbitMQ, a package index) skips it with the reason.

``keystone_manila_env`` brings up the same instance with a real Keystone 30 and an API
on Manila's unmodified keystone pipeline (``tools/real_manila.py up --keystone``; see
``support.keystone``), under the same rules.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import socket
import time
import typing
import uuid

import pytest
import redis
from oslo_context import context as oslo_context

from manila_protector.rpc import api as rpc_api

from support import manila_backends
from support import rabbit
from support import real_manila

#: Instance names the sessions of one machine take in turn (each holds its name's lock).
INSTANCE_NAMES = ("pytest", "pytest-2", "pytest-3")

_TIMES: dict[str, float] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "contract: the contract tier (one suite, the stand-in and a real Manila 23)")
    config.addinivalue_line(
        "markers", "real_manila: needs the real Manila 23 (tools/real_manila.py; MariaDB)")


def pytest_terminal_summary(terminalreporter: typing.Any) -> None:
    if "up" in _TIMES:
        terminalreporter.write_line(
            f"contract tier: real Manila 23 up in {_TIMES['up']:.1f} s "
            f"(install cached or not, setup, start)")
    if "keystone_up" in _TIMES:
        terminalreporter.write_line(
            f"contract tier: real Keystone 30 + Manila's keystone pipeline up in "
            f"{_TIMES['keystone_up']:.1f} s (installs cached or not, setup, start)")
    for key, seconds in sorted(_TIMES.items()):
        if key.startswith("module "):
            terminalreporter.write_line(f"contract tier: {key[7:]} {seconds:.1f} s wall time")
    if "tier_end" in _TIMES:
        terminalreporter.write_line(
            f"contract tier: {_TIMES['tier_end'] - _TIMES['tier_start']:.1f} s wall time")


def _unavailable(message: str) -> typing.NoReturn:
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session", autouse=True)
def _time_the_tier() -> typing.Iterator[None]:
    _TIMES["tier_start"] = time.monotonic()
    yield
    _TIMES["tier_end"] = time.monotonic()


@pytest.fixture(scope="module")
def module_wall_time(request: pytest.FixtureRequest) -> typing.Iterator[None]:
    """Reports the wall time of the module that uses it (its fixtures included, the
    session's bring-up not)."""
    began = time.monotonic()
    yield
    _TIMES[f"module {request.module.__name__}"] = time.monotonic() - began


@pytest.fixture(scope="session")
def rabbitmq_and_redis() -> None:
    """Skip where RabbitMQ or Redis is missing (fail under CI)."""
    try:
        socket.create_connection((rabbit.RABBIT_HOST, rabbit.RABBIT_PORT), timeout=3).close()
    except OSError as exc:
        _unavailable(f"RabbitMQ on {rabbit.RABBIT_HOST}:{rabbit.RABBIT_PORT} is not "
                     f"available: {exc}")
    client = redis.Redis(host=rabbit.REDIS_HOST, port=rabbit.REDIS_PORT, socket_timeout=3,
                         socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        _unavailable(f"Redis on {rabbit.REDIS_HOST}:{rabbit.REDIS_PORT} is not available: {exc}")
    finally:
        client.close()


@pytest.fixture(scope="session")
def broker(rabbitmq_and_redis: None) -> typing.Iterator[rabbit.Broker]:
    opened = rabbit.open_broker(exchange=f"mp-ct-{uuid.uuid4().hex[:12]}")
    yield opened
    rabbit.close_broker(opened)


@pytest.fixture
def names(broker: rabbit.Broker) -> typing.Iterator[rabbit.Names]:
    suffix = uuid.uuid4().hex[:12]
    found = rabbit.Names(topic=f"mp-ct-{suffix}", notification_topic=f"mp-ct-notify-{suffix}")
    yield found
    rabbit.delete_from_broker(found.queues(), [f"{found.topic}_fanout"])


@pytest.fixture
def notifications(broker: rabbit.Broker,
                  names: rabbit.Names) -> typing.Iterator[rabbit.Notifications]:
    listener = rabbit.NotificationListener(broker, names)
    yield listener.start()
    listener.stop()


@pytest.fixture
def client(broker: rabbit.Broker, names: rabbit.Names) -> rpc_api.ProtectorAPI:
    """The RPC client on this test's topic (``call`` waits for the final record)."""
    return rpc_api.ProtectorAPI(broker.transport, topic=names.topic,
                                exchange=broker.control_exchange, timeout=30)


# -- the real Manila ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def real_manila_name() -> typing.Iterator[str]:
    """The session's instance name (held with a lock); the instance -- Keystone too, if
    it was brought up -- is stopped at the end of the session."""
    with contextlib.ExitStack() as stack:
        problem = None
        try:
            name = stack.enter_context(
                real_manila.instance_lock(real_manila.cache_base() / "locks", INSTANCE_NAMES))
        except real_manila.Unavailable as exc:
            problem = exc
        if problem is not None:
            _unavailable(f"the real Manila 23 could not be brought up: {problem}")
        yield name
        if not os.environ.get("MANILA_PROTECTOR_REAL_MANILA_KEEP"):
            print(real_manila.stop(name))


def _bring_up(name: str, keystone: bool, what: str) -> dict[str, typing.Any]:
    began = time.monotonic()
    try:
        env = real_manila.bring_up(name, keystone=keystone)
    except real_manila.Unavailable as exc:
        message = f"{what} could not be brought up: {exc}"
        if exc.cannot_run:
            _unavailable(message)
        pytest.fail(message, pytrace=False)
    _TIMES["keystone_up" if keystone else "up"] = time.monotonic() - began
    return env


@pytest.fixture(scope="session")
def real_manila_env(real_manila_name: str) -> dict[str, typing.Any]:
    """A real Manila 23 for the session (see the module docstring)."""
    return _bring_up(real_manila_name, False, "the real Manila 23")


@pytest.fixture(scope="session")
def keystone_manila_env(real_manila_name: str) -> dict[str, typing.Any]:
    """The session's real Manila 23 with a real Keystone 30 and an API on Manila's
    unmodified keystone pipeline (``tools/real_manila.py up --keystone``): the env has
    ``keystone`` (see ``support.keystone``) and ``keystone_api``."""
    return _bring_up(real_manila_name, True, "the real Keystone 30 with Manila 23")


@pytest.fixture(scope="session")
def policy_gateway(real_manila_env: dict[str, typing.Any]
                   ) -> typing.Iterator[real_manila.TrustedHeaderGateway]:
    gateway = real_manila.TrustedHeaderGateway(real_manila_env["policy_base_url"]).start()
    yield gateway
    gateway.stop()


# -- the backend and the worker --------------------------------------------------------------


@pytest.fixture(params=[pytest.param("standin"),
                        pytest.param("manila23", marks=pytest.mark.real_manila)])
def backend(request: pytest.FixtureRequest) -> typing.Iterator[manila_backends.Backend]:
    """The Manila of this run of the scenario (ids ``standin`` and ``manila23``)."""
    if request.param == "standin":
        found: manila_backends.Backend = manila_backends.StandInBackend()
    else:
        found = manila_backends.RealManilaBackend(request.getfixturevalue("real_manila_env"),
                                                  request.getfixturevalue("policy_gateway"))
    yield found
    found.cleanup()


class _Endpoint:
    """What ``rabbit.Workers.configure`` reads of a Manila: its endpoint."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint


class BackendWorkers:
    """Worker processes of one test, acting on the test's backend.

    :param endpoint: (of each method) the Manila API the worker uses; default the
        backend's noauth endpoint (``backend.policy_endpoint`` for policy scenarios).
    """

    def __init__(self, workers: rabbit.Workers, backend: manila_backends.Backend) -> None:
        self._workers = workers
        self._backend = backend

    @property
    def started(self) -> list[rabbit.WorkerProcess]:
        return self._workers.started

    def configure(self, endpoint: str | None = None,
                  **configure_args: typing.Any) -> rabbit.WorkerConfig:
        """Write a new worker's config (``rabbit.Workers.configure`` arguments)."""
        return self._workers.configure(_Endpoint(endpoint or self._backend.endpoint),
                                       **configure_args)

    def start(self, config: rabbit.WorkerConfig | None = None, endpoint: str | None = None,
              **configure_args: typing.Any) -> rabbit.WorkerProcess:
        """Start a worker (a new one, or again with ``config``); it consumes when returned."""
        return self._workers.start(config or self.configure(endpoint, **configure_args))

    def stop_all(self) -> None:
        self._workers.stop_all()


@pytest.fixture
def workers(broker: rabbit.Broker, names: rabbit.Names, notifications: rabbit.Notifications,
            tmp_path: pathlib.Path,
            backend: manila_backends.Backend) -> typing.Iterator[BackendWorkers]:
    """Worker processes for this test's backend; stopped before the backend is cleaned
    up, their logs' tails printed (shown when the test failed)."""
    probe_ctxt = oslo_context.RequestContext(auth_token="probe:probe", project_id="probe")
    found = BackendWorkers(rabbit.Workers(broker, names, tmp_path / "workers", probe_ctxt),
                           backend)
    yield found
    found.stop_all()
    for worker in {w.host: w for w in found.started}.values():
        print(f"---- tail of {worker.config.log_path}")
        print(worker.log_tail())
