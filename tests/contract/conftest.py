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

import pathlib
import time
import typing

import pytest
from oslo_context import context as oslo_context

from manila_protector.rpc import api as rpc_api

from support import attacks
from support import fixtures
from support import manila_backends
from support import rabbit

_TIMES: dict[str, float] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "contract: the contract tier (one suite, the stand-in and a real Manila 23)")
    config.addinivalue_line(
        "markers", "real_manila: needs the real Manila 23 (tools/real_manila.py; MariaDB)")


def pytest_terminal_summary(terminalreporter: typing.Any) -> None:
    up = fixtures.BRING_UP_TIMES
    if "manila" in up:
        terminalreporter.write_line(
            f"real Manila 23 up in {up['manila']:.1f} s (install cached or not, setup, start)")
    if "keystone" in up:
        terminalreporter.write_line(
            f"real Keystone 30 + Manila's keystone pipeline up in {up['keystone']:.1f} s "
            "(installs cached or not, setup, start)")
    for key, seconds in sorted(_TIMES.items()):
        if key.startswith("module "):
            terminalreporter.write_line(f"contract tier: {key[7:]} {seconds:.1f} s wall time")
    if "tier_end" in _TIMES:
        terminalreporter.write_line(
            f"contract tier: {_TIMES['tier_end'] - _TIMES['tier_start']:.1f} s wall time")
    lines = attacks.table()
    if lines:
        terminalreporter.write_line("")
        terminalreporter.write_line("issue 11's attacks (tests/contract/test_keystone_attacks.py)")
        for line in lines:
            terminalreporter.write_line(line)


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


@pytest.fixture
def client(broker: rabbit.Broker, names: rabbit.Names) -> rpc_api.ProtectorAPI:
    """The RPC client on this test's topic (``call`` waits for the final record)."""
    return rpc_api.ProtectorAPI(broker.transport, topic=names.topic,
                                exchange=broker.control_exchange, timeout=30)


# -- the worker (the backend fixture is support.fixtures') ------------------------------


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
