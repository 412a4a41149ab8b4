"""The Karbor tier: Karbor 1.6.0's own code drives our plugins.

Each scenario runs ``tests/karbor/driver.py`` with the Python of Karbor's virtualenv
(``tools/real_karbor.py install``, cached between runs): Karbor's ProtectionManager,
its taskflow flows, its provider and protectable registries and its file-system bank,
as karbor-protection runs them on checkpoint create, restore create, verification
create and checkpoint delete (no karbor-api, no Keystone).

The scenarios are a matrix:

* ``mode`` -- the provider file's ``[dispatch] mode``: ``direct`` (the plugin in
  Karbor's process calls Manila itself, ``[manila] endpoint_override`` in the
  provider file) or ``worker`` (each hook sends its job over the real RabbitMQ to a
  real ``manila-protector-worker`` process and waits for its end);
* ``backend`` -- the Manila acted on (``support.fixtures``: ``standin``, the stand-in
  served from this process, or ``manila23``, the session's real Manila 23).

The worker is one process for the whole tier (:func:`karbor_worker`), started the
first time a worker-mode scenario asks. It has **no** ``endpoint_override``: it finds
Manila in the service catalog of the request's context, which every caller here
carries in keystonemiddleware's v2 form, as Karbor's RequestContext does behind
keystonemiddleware -- so every worker-mode scenario also shows that the catalog
travels from Karbor through the bus to the worker. Its notifications are collected
for the tier (filter them by job id).

Where Karbor's virtualenv cannot be built for want of a package index, the tier fails
under ``CI`` (saying why) and is skipped elsewhere; an install that fails for any
other reason (our requirements conflicting with Karbor's pins, a module that does not
import there) fails everywhere. RabbitMQ and Redis (worker mode) and the real Manila
follow the same rule (``support.fixtures``).
"""

from __future__ import annotations

import collections
import dataclasses
import os
import pathlib
import time
import types
import typing
import uuid

import pytest

from support import fixtures
from support import karbor_flows
from support import manila_backends
from support import rabbit

MODES = ("direct", "worker")

_TIMES: dict[str, float] = {}
#: Seconds spent per ``(mode, backend)`` by the tests of the matrix (setup and
#: teardown included, the session's bring-ups of Karbor's venv and Manila 23 not).
_MATRIX_TIMES: dict[tuple[str, str], float] = collections.defaultdict(float)


def pytest_terminal_summary(terminalreporter: typing.Any) -> None:
    if "install" in _TIMES:
        terminalreporter.write_line(
            f"karbor tier: Karbor 1.6.0 virtualenv ready in {_TIMES['install']:.1f} s "
            f"(cached or not)")
    if "worker" in _TIMES:
        terminalreporter.write_line(
            f"karbor tier: the tier's worker process ready in {_TIMES['worker']:.1f} s")
    for (mode, backend), seconds in sorted(_MATRIX_TIMES.items()):
        terminalreporter.write_line(f"karbor tier: mode={mode} backend={backend}: "
                                    f"{seconds:.1f} s")
    if "tier_end" in _TIMES and "tier_start" in _TIMES:
        terminalreporter.write_line(
            f"karbor tier: {_TIMES['tier_end'] - _TIMES['tier_start']:.1f} s wall time")


def _unavailable(message: str) -> typing.NoReturn:
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def karbor_python() -> pathlib.Path:
    """Karbor's Python, with this checkout's plugins installed (tools/real_karbor.py)."""
    _TIMES.setdefault("tier_start", time.monotonic())
    began = time.monotonic()
    problem = None
    try:
        python = karbor_flows.install()
    except karbor_flows.Unavailable as exc:
        problem = exc
    if problem is not None:
        message = f"Karbor 1.6.0's virtualenv could not be built: {problem}"
        if problem.cannot_run:
            _unavailable(message)
        pytest.fail(message, pytrace=False)
    _TIMES["install"] = time.monotonic() - began
    return python


@pytest.fixture(autouse=True)
def _time_the_tier(request: pytest.FixtureRequest) -> typing.Iterator[None]:
    # The tier ends with its last test, whatever tiers the session runs after it.
    _TIMES.setdefault("tier_start", time.monotonic())
    began = time.monotonic()
    yield
    _TIMES["tier_end"] = time.monotonic()
    params = getattr(getattr(request.node, "callspec", None), "params", {})
    if "mode" in params and "backend" in params:
        _MATRIX_TIMES[(params["mode"], params["backend"])] += time.monotonic() - began


# -- the worker -----------------------------------------------------------------------------


@dataclasses.dataclass
class KarborWorker:
    """The tier's worker process and what a provider file needs to reach it."""

    broker: rabbit.Broker
    names: rabbit.Names
    process: rabbit.WorkerProcess
    notifications: rabbit.Notifications

    def dispatch_section(self) -> dict[str, str]:
        """The provider file's ``[dispatch]`` for ``mode = worker`` on this worker."""
        return {"mode": "worker", "transport_url": self.broker.transport_url,
                "topic": self.names.topic, "exchange": self.broker.control_exchange,
                "call_monitor_timeout": "30", "call_timeout": "600"}


@pytest.fixture(scope="session")
def karbor_worker(broker: rabbit.Broker, redis_answers: None,
                  tmp_path_factory: pytest.TempPathFactory) -> typing.Iterator[KarborWorker]:
    """One ``manila-protector-worker`` process for the tier's worker-mode scenarios, on
    the real RabbitMQ (the session's exchange, a topic of its own) with Redis locks and
    no ``[manila] endpoint_override``; a notification listener on its topic."""
    began = time.monotonic()
    suffix = uuid.uuid4().hex[:12]
    names = rabbit.Names(topic=f"mp-k-{suffix}", notification_topic=f"mp-k-n-{suffix}")
    listener = rabbit.NotificationListener(broker, names)
    notifications = listener.start()
    workers = rabbit.Workers(broker, names, tmp_path_factory.mktemp("karbor-worker"),
                             fixtures.member_context("probe"))
    try:
        # No endpoint: Manila comes from each request's service catalog.
        process = workers.start(workers.configure(types.SimpleNamespace(endpoint="")))
        _TIMES["worker"] = time.monotonic() - began
        yield KarborWorker(broker, names, process, notifications)
    finally:
        workers.stop_all()
        listener.stop()
        rabbit.delete_from_broker(names.queues(), [f"{names.topic}_fanout"])


# -- Karbor ---------------------------------------------------------------------------------


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """The provider file's ``[dispatch] mode`` (ids ``direct`` and ``worker``)."""
    return request.param


@pytest.fixture
def deploy(request: pytest.FixtureRequest, tmp_path: pathlib.Path,
           karbor_python: pathlib.Path) -> typing.Iterator[typing.Callable[..., typing.Any]]:
    """``deploy(mode, manila_endpoint=None)``: a karbor-protection's files (providers.d,
    karbor.conf, database, bank); ``manila_endpoint`` is written as ``[manila]
    endpoint_override`` (None: the plugins use the request's catalog). The logs' tails
    are printed afterwards (shown when the test failed)."""
    made: list[karbor_flows.Deployment] = []
    worker: list[KarborWorker] = []

    def make(mode: str = "direct", manila_endpoint: str | None = None
             ) -> karbor_flows.Deployment:
        dispatch = None
        if mode == "worker":
            worker[:] = [request.getfixturevalue("karbor_worker")]
            dispatch = worker[0].dispatch_section()
        deployment = karbor_flows.Deployment(tmp_path / f"karbor-{len(made) + 1}",
                                             karbor_python, manila_endpoint=manila_endpoint,
                                             dispatch=dispatch)
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        for log in sorted(deployment.logs.glob("*.log")):
            print(f"---- {log}\n" + "\n".join(log.read_text(errors="replace")
                                              .splitlines()[-40:]))
    for found in worker:
        print(f"---- tail of the worker's log {found.process.config.log_path}\n"
              f"{found.process.log_tail(40)}")


@pytest.fixture
def karbor(deploy: typing.Callable[..., karbor_flows.Deployment], mode: str,
           backend: manila_backends.Backend) -> karbor_flows.Deployment:
    """The scenario's karbor-protection, in ``mode``, on ``backend``: in direct mode the
    provider file's ``[manila] endpoint_override`` is the backend's API."""
    return deploy(mode, backend.endpoint if mode == "direct" else None)


@pytest.fixture
def tenant(backend: manila_backends.Backend) -> manila_backends.Project:
    """A fresh project on the backend (its shares are deleted afterwards)."""
    return backend.new_project()


@pytest.fixture
def caller(tenant: manila_backends.Project,
           backend: manila_backends.Backend) -> karbor_flows.Caller:
    """A member of ``tenant`` as karbor-api hands it over: the noauth token, and a
    keystonemiddleware (v2-form) catalog with the backend's Manila."""
    return karbor_flows.Caller(user_id=tenant.user_id, project_id=tenant.id,
                               service_catalog=karbor_flows.v2_catalog(backend.endpoint))
