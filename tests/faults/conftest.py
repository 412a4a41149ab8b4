"""Fault injection against real RabbitMQ, real Redis, the Manila stand-in and separate
worker processes (marker ``functional``).

Two sizes: the CI size by default (the whole directory in a few minutes on two
cores) and the issue's full size with ``MANILA_PROTECTOR_FAULTS=full``.  Each test
records its counts with the ``report`` fixture *before* asserting the targets; at
the end of the session the table of every count is printed.

Resources: the machine's RabbitMQ on 127.0.0.1:5672 (an exchange and topics of our
own), a private ``redis-server`` per test (the machine's Redis is shared with other
users), and, for the broker-restart test, a private RabbitMQ node.  Missing ones skip
the tests, and fail them under ``CI``.
"""

from __future__ import annotations

import pathlib
import socket
import typing
import uuid

import pytest

from manila_protector.rpc import api as rpc_api
from manila_standin import config as standin_config
from manila_standin import server as standin_server

from faults import harness
from support import rabbit


def pytest_configure(config: typing.Any) -> None:
    config.addinivalue_line("markers", "faults: fault injection (tests/faults)")


def pytest_terminal_summary(terminalreporter: typing.Any) -> None:
    lines = harness.table()
    if lines:
        terminalreporter.write_line("")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture
def report() -> typing.Callable[[str], harness.Report]:
    """``report(scenario)``: a :class:`harness.Report` whose counts join the table."""
    return harness.Report


@pytest.fixture(scope="session")
def size() -> harness.Size:
    return harness.chosen_size()


@pytest.fixture(scope="session")
def broker() -> typing.Iterator[rabbit.Broker]:
    """This process's transports on the machine's RabbitMQ, on an exchange of its own."""
    try:
        socket.create_connection((rabbit.RABBIT_HOST, rabbit.RABBIT_PORT), timeout=3).close()
    except OSError as exc:
        harness.unavailable(f"RabbitMQ on {rabbit.RABBIT_HOST}:{rabbit.RABBIT_PORT}",
                            f"{type(exc).__name__}: {exc}")
    opened = rabbit.open_broker()
    yield opened
    rabbit.close_broker(opened)


@pytest.fixture
def names(broker: rabbit.Broker) -> typing.Iterator[rabbit.Names]:
    found = harness.new_names()
    yield found
    rabbit.delete_from_broker(found.queues(), [f"{found.topic}_fanout"])


@pytest.fixture
def notifications(broker: rabbit.Broker,
                  names: rabbit.Names) -> typing.Iterator[rabbit.Notifications]:
    listener = rabbit.NotificationListener(broker, names)
    yield listener.start()
    listener.stop()


@pytest.fixture
def redis_server(tmp_path: pathlib.Path) -> typing.Iterator[rabbit.PrivateRedis]:
    """A private redis-server for this test's locks (nothing kept across a restart)."""
    reason = rabbit.PrivateRedis.missing()
    if reason:
        harness.unavailable("a private Redis", reason)
    server = rabbit.PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.close()


@pytest.fixture
def make_standin() -> typing.Iterator[typing.Callable[..., standin_server.ManilaStandIn]]:
    """``make_standin(delays, latency=0, seed=0)``: a started stand-in, stopped afterwards."""
    started: list[standin_server.ManilaStandIn] = []

    def make(delays: standin_config.Delays | None = None, *, latency: float = 0.0,
             seed: int = 0) -> standin_server.ManilaStandIn:
        config = standin_config.StandInConfig(
            delays=delays or standin_config.Delays(), latency=latency, seed=seed,
            quotas=standin_config.Quotas(shares=-1, gigabytes=-1, snapshots=-1,
                                         snapshot_gigabytes=-1))
        standin = standin_server.ManilaStandIn(config).start()
        started.append(standin)
        return standin

    yield make
    for standin in started:
        standin.stop()


@pytest.fixture
def project() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def ctxt(project: str) -> typing.Any:
    return harness.member_context(project)


@pytest.fixture
def make_client(broker: rabbit.Broker,
                names: rabbit.Names) -> typing.Callable[..., rpc_api.ProtectorAPI]:
    """``make_client(timeout=30)``: a ProtectorAPI on this test's topic."""

    def make(timeout: float = 30.0) -> rpc_api.ProtectorAPI:
        return rpc_api.ProtectorAPI(broker.transport, topic=names.topic,
                                    exchange=broker.control_exchange, timeout=timeout)

    return make


@pytest.fixture
def workers(broker: rabbit.Broker, names: rabbit.Names, notifications: rabbit.Notifications,
            tmp_path: pathlib.Path, ctxt: typing.Any) -> typing.Iterator[rabbit.Workers]:
    """Starts worker processes; stops them afterwards and prints their logs' tails."""
    found = rabbit.Workers(broker, names, tmp_path / "workers", ctxt)
    yield found
    found.stop_all()
    harness.print_logs(found)
