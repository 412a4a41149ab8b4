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
from manila_standin import clock as clock_mod
from manila_standin import config as standin_config
from manila_standin import server as standin_server

from support import rabbit



def _unavailable(what: str, exc: BaseException) -> None:
    message = f"{what} is not available: {type(exc).__name__}: {exc}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


_TIER_TIMES: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter: typing.Any) -> None:
    if "end" in _TIER_TIMES:
        terminalreporter.write_line(
            f"functional tier (RabbitMQ, Redis, worker processes): "
            f"{_TIER_TIMES['end'] - _TIER_TIMES['start']:.1f} s wall time")


@pytest.fixture(scope="session", autouse=True)
def _rabbitmq_and_redis_answer() -> typing.Iterator[None]:
    """Skip the tier where RabbitMQ or Redis is missing (fail under CI); time the tier."""
    try:
        socket.create_connection((rabbit.RABBIT_HOST, rabbit.RABBIT_PORT), timeout=3).close()
    except OSError as exc:
        _unavailable(f"RabbitMQ on {rabbit.RABBIT_HOST}:{rabbit.RABBIT_PORT}", exc)
    client = redis.Redis(host=rabbit.REDIS_HOST, port=rabbit.REDIS_PORT, socket_timeout=3,
                         socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        _unavailable(f"Redis on {rabbit.REDIS_HOST}:{rabbit.REDIS_PORT}", exc)
    finally:
        client.close()
    _TIER_TIMES["start"] = time.monotonic()
    yield
    _TIER_TIMES["end"] = time.monotonic()


@pytest.fixture(scope="session")
def broker(_rabbitmq_and_redis_answer: None) -> typing.Iterator[rabbit.Broker]:
    opened = rabbit.open_broker(exchange=f"mp-ft-{uuid.uuid4().hex[:12]}")
    yield opened
    rabbit.close_broker(opened)


@pytest.fixture
def names(broker: rabbit.Broker) -> typing.Iterator[rabbit.Names]:
    suffix = uuid.uuid4().hex[:12]
    found = rabbit.Names(topic=f"mp-ft-{suffix}", notification_topic=f"mp-ft-notify-{suffix}")
    yield found
    rabbit.delete_from_broker(found.queues(), [f"{found.topic}_fanout"])


@pytest.fixture
def notifications(broker: rabbit.Broker,
                  names: rabbit.Names) -> typing.Iterator[rabbit.Notifications]:
    listener = rabbit.NotificationListener(broker, names)
    yield listener.start()
    listener.stop()


@pytest.fixture
def make_standin() -> typing.Iterator[typing.Callable[..., standin_server.ManilaStandIn]]:
    """``make_standin(delays, clock=None)``: a started stand-in, stopped after the test."""
    started: list[standin_server.ManilaStandIn] = []

    def make(delays: standin_config.Delays | None = None,
             clock: clock_mod.Clock | None = None) -> standin_server.ManilaStandIn:
        config = standin_config.StandInConfig(
            delays=delays or standin_config.Delays(),
            quotas=standin_config.Quotas(shares=-1, gigabytes=-1, snapshots=-1,
                                         snapshot_gigabytes=-1))
        standin = standin_server.ManilaStandIn(config, clock=clock).start()
        started.append(standin)
        return standin

    yield make
    for standin in started:
        standin.stop()


@pytest.fixture
def project() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def ctxt(project: str) -> oslo_context.RequestContext:
    return oslo_context.RequestContext(auth_token=f"alice:{project}", user_id="alice",
                                       project_id=project, roles=["member", "reader"])


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
    """Starts worker processes; stops them after the test and prints their logs' tails
    (shown by pytest when the test failed)."""
    found = rabbit.Workers(broker, names, tmp_path / "workers", ctxt)
    yield found
    found.stop_all()
    seen = set()
    for worker in found.started:
        if worker.host in seen:
            continue
        seen.add(worker.host)
        print(f"---- tail of {worker.config.log_path}")
        print(worker.log_tail())
