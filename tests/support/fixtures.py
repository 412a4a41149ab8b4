"""The fixtures every tier shares, written once (loaded by tests/conftest.py).

* ``project``, ``ctxt``: a fresh project and a member's request context in it
  (a noauth token ``alice:<project>``, which the stand-in and noauth Manila accept).
* ``broker``, ``names``, ``notifications``, ``make_client``, ``workers``: this
  process's transports on the machine's RabbitMQ (an exchange of the session's
  own), a topic and notification topic per test, a notification listener, RPC
  clients and worker processes on that topic.
* ``redis_answers``: the machine's Redis answers.
* ``make_standin``: Manila stand-ins started for a test and stopped after it.
* ``fleet_store``: a migrated job-store database of the test's own on the machine's
  MariaDB, and the token key its workers share (dropped afterwards).
* ``real_manila_name``, ``real_manila_env``, ``keystone_manila_env``,
  ``policy_gateway``: the session's real Manila 23 (and Keystone 30), brought up
  once for every tier that asks (tools/real_manila.py).
* ``backend``: the Manila of a scenario that runs on both, parametrized with the ids
  ``standin`` and ``manila23`` (``support.manila_backends``; the contract and Karbor
  tiers).

A prerequisite that is missing skips the test, and fails it under ``CI``
(:func:`unavailable`).
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
from manila_standin import config as standin_config
from manila_standin import server as standin_server

from support import databases
from support import manila_backends
from support import rabbit
from support import real_manila

#: Instance names of the real Manila that the sessions of one machine take in turn.
INSTANCE_NAMES = ("pytest", "pytest-2", "pytest-3")
#: Wall times of the session's bring-ups, for the tiers' summaries.
BRING_UP_TIMES: dict[str, float] = {}


def unavailable(message: str) -> typing.NoReturn:
    """Skip the test for a missing prerequisite; under ``CI`` fail it instead."""
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


# -- identities ---------------------------------------------------------------------------


def member_context(project: str, user: str = "alice") -> oslo_context.RequestContext:
    """A member's context with a noauth token (``user:project``) the stand-in accepts."""
    return oslo_context.RequestContext(auth_token=f"{user}:{project}", user_id=user,
                                       project_id=project, roles=["member", "reader"])


@pytest.fixture
def project() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def ctxt(project: str) -> oslo_context.RequestContext:
    return member_context(project)


# -- RabbitMQ and Redis -------------------------------------------------------------------


@pytest.fixture(scope="session")
def rabbitmq_answers() -> None:
    try:
        socket.create_connection((rabbit.RABBIT_HOST, rabbit.RABBIT_PORT), timeout=3).close()
    except OSError as exc:
        unavailable(f"RabbitMQ on {rabbit.RABBIT_HOST}:{rabbit.RABBIT_PORT} is not "
                    f"available: {type(exc).__name__}: {exc}")


@pytest.fixture(scope="session")
def redis_answers() -> None:
    client = redis.Redis(host=rabbit.REDIS_HOST, port=rabbit.REDIS_PORT, socket_timeout=3,
                         socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable(f"Redis on {rabbit.REDIS_HOST}:{rabbit.REDIS_PORT} is not available: "
                    f"{type(exc).__name__}: {exc}")
    finally:
        client.close()


@pytest.fixture(scope="session")
def broker(rabbitmq_answers: None) -> typing.Iterator[rabbit.Broker]:
    """This process's transports on the machine's RabbitMQ, on an exchange of its own."""
    opened = rabbit.open_broker(exchange=f"mp-t-{uuid.uuid4().hex[:12]}")
    yield opened
    rabbit.close_broker(opened)


@pytest.fixture
def names(broker: rabbit.Broker) -> typing.Iterator[rabbit.Names]:
    """A worker topic and a notification topic of the test's own (deleted afterwards)."""
    suffix = uuid.uuid4().hex[:12]
    found = rabbit.Names(topic=f"mp-t-{suffix}", notification_topic=f"mp-t-n-{suffix}")
    yield found
    rabbit.delete_from_broker(found.queues(), [f"{found.topic}_fanout"])


@pytest.fixture
def notifications(broker: rabbit.Broker,
                  names: rabbit.Names) -> typing.Iterator[rabbit.Notifications]:
    listener = rabbit.NotificationListener(broker, names)
    yield listener.start()
    listener.stop()


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
    """Starts worker processes; stops them afterwards and prints their logs' tails
    (shown by pytest when the test failed)."""
    found = rabbit.Workers(broker, names, tmp_path / "workers", ctxt)
    yield found
    found.stop_all()
    for worker in {w.host: w for w in found.started}.values():
        print(f"---- tail of {worker.config.log_path}")
        print(worker.log_tail())


@pytest.fixture
def fleet_store() -> typing.Iterator[databases.SharedStore]:
    """A job store shared by a fleet: a database of the test's own on MariaDB."""
    reason = databases.SharedStore.missing()
    if reason:
        unavailable(f"MariaDB is not available: {reason}")
    store = databases.SharedStore.create()
    yield store
    store.drop()


# -- the Manila stand-in -------------------------------------------------------------------


@pytest.fixture
def make_standin() -> typing.Iterator[typing.Callable[..., standin_server.ManilaStandIn]]:
    """``make_standin(delays=None, *, latency=0, seed=0, clock=None)``: a started stand-in
    without quotas, stopped after the test."""
    started: list[standin_server.ManilaStandIn] = []

    def make(delays: standin_config.Delays | None = None, *, latency: float = 0.0,
             seed: int = 0, clock: typing.Any = None) -> standin_server.ManilaStandIn:
        config = standin_config.StandInConfig(
            delays=delays or standin_config.Delays(), latency=latency, seed=seed,
            quotas=standin_config.Quotas(shares=-1, gigabytes=-1, snapshots=-1,
                                         snapshot_gigabytes=-1))
        standin = standin_server.ManilaStandIn(config, clock=clock).start()
        started.append(standin)
        return standin

    yield make
    for standin in started:
        standin.stop()


# -- the real Manila (and Keystone) ------------------------------------------------------------


@pytest.fixture(scope="session")
def real_manila_name() -> typing.Iterator[str]:
    """The session's instance name (held with a lock); the instance -- Keystone too, if
    it was brought up -- is stopped at the end of the session (unless
    ``MANILA_PROTECTOR_REAL_MANILA_KEEP`` is set)."""
    with contextlib.ExitStack() as stack:
        problem = None
        try:
            name = stack.enter_context(
                real_manila.instance_lock(real_manila.cache_base() / "locks", INSTANCE_NAMES))
        except real_manila.Unavailable as exc:
            problem = exc
        if problem is not None:
            unavailable(f"the real Manila 23 could not be brought up: {problem}")
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
            unavailable(message)
        pytest.fail(message, pytrace=False)
    BRING_UP_TIMES["keystone" if keystone else "manila"] = time.monotonic() - began
    return env


@pytest.fixture(scope="session")
def real_manila_env(real_manila_name: str) -> dict[str, typing.Any]:
    """A real Manila 23 for the session (tools/real_manila.py; the install is cached)."""
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


# -- one scenario, two Manilas ------------------------------------------------------------------


@pytest.fixture(params=[pytest.param("standin"),
                        pytest.param("manila23", marks=pytest.mark.real_manila)])
def backend(request: pytest.FixtureRequest) -> typing.Iterator[manila_backends.Backend]:
    """The Manila of this run of the scenario (ids ``standin`` and ``manila23``): a fresh
    stand-in, or the session's real Manila 23 with what the test made deleted afterwards."""
    if request.param == "standin":
        found: manila_backends.Backend = manila_backends.StandInBackend()
    else:
        found = manila_backends.RealManilaBackend(request.getfixturevalue("real_manila_env"),
                                                  request.getfixturevalue("policy_gateway"))
    yield found
    found.cleanup()
