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
import typing

import pytest


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


