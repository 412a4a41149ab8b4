"""Workers as separate processes on the real RabbitMQ and the real Redis.

The Manila stand-in serves HTTP from this process; every worker is its own
``python -m manila_protector.worker.service`` process with a config file written
here; this process talks to them over RabbitMQ (RPC and a notification listener).

Isolation: the session uses its own ``control_exchange`` and every test its own
worker topic and notification topic (uuid suffixes), so runs never collide with
each other or with other services on the broker.  The queues and the exchange a
test declared are deleted again afterwards.
"""

from __future__ import annotations

import time
import typing

import pytest


_TIER_TIMES: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter: typing.Any) -> None:
    if "end" in _TIER_TIMES:
        terminalreporter.write_line(
            f"functional tier (RabbitMQ, Redis, worker processes): "
            f"{_TIER_TIMES['end'] - _TIER_TIMES['start']:.1f} s wall time")


@pytest.fixture(scope="session", autouse=True)
def _rabbitmq_and_redis_answer(rabbitmq_answers: None, redis_answers: None
                               ) -> typing.Iterator[None]:
    """Skip the tier where RabbitMQ or Redis is missing (fail under CI); time the tier."""
    _TIER_TIMES["start"] = time.monotonic()
    yield
    _TIER_TIMES["end"] = time.monotonic()


