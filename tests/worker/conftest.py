"""A worker in-process: real oslo.messaging (in-memory transports), real tooz (file://),
the real job store (SQLite), the Manila stand-in over HTTP, notifications captured by a
real notification listener.

Most tests share one worker per module and transport (``worker``, ``client``,
``standin``, ``notifications``, ``conf`` -- read only): stopping an oslo.messaging
server and listener costs a second each, which per test was most of this tier's
time.  Each test works in a project of its own, and starts once the shared worker
is idle.  A test that needs a worker of its own (a restart, another configuration)
uses ``fresh``.
"""

from __future__ import annotations

import dataclasses
import pathlib
import typing
import uuid

import pytest
from oslo_config import cfg
import oslo_messaging
from oslo_messaging import conffixture

from manila_protector.rpc import api as rpc_api
from manila_protector.rpc import context as rpc_context
from manila_protector.worker import service as service_mod
from manila_standin import ManilaStandIn, StandInConfig

from support import rabbit

TRANSPORTS = ["kombu+memory:////", "fake://"]
#: Seconds a test waits for the shared worker to finish what earlier tests left running.
IDLE_TIMEOUT = 60.0


@dataclasses.dataclass
class Env:
    """A worker's surroundings: configuration, Manila, transport, notifications, client."""

    conf: cfg.ConfigOpts
    standin: ManilaStandIn
    transport: typing.Any
    notifications: rabbit.Collector
    client: rpc_api.ProtectorAPI
    workers: list[service_mod.WorkerService] = dataclasses.field(default_factory=list)
    _closers: list[typing.Callable[[], None]] = dataclasses.field(default_factory=list)

    def make_worker(self) -> service_mod.WorkerService:
        """Start a worker on this configuration (stopped when the environment closes)."""
        worker = service_mod.WorkerService(self.conf, transport=self.transport,
                                           notification_transport=self.transport)
        worker.start()
        self.workers.append(worker)
        return worker

    def restart(self) -> None:
        """Start a worker on the state path and stop it again (a restart's start half)."""
        worker = service_mod.WorkerService(self.conf, transport=self.transport,
                                           notification_transport=self.transport)
        worker.start()
        worker.stop()

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        for close in reversed(self._closers):
            close()


def open_env(root: pathlib.Path, transport_url: str) -> Env:
    """A configuration, a stand-in, a transport and a listener under ``root``."""
    standin = ManilaStandIn(StandInConfig()).start()
    conf = cfg.ConfigOpts()
    service_mod.prepare_conf(conf)
    conf([], project="manila-protector-test")
    fixture = conffixture.ConfFixture(conf, transport_url=transport_url)
    fixture.setUp()
    suffix = uuid.uuid4().hex[:8]
    conf.set_override("control_exchange", f"mp-test-{suffix}")
    conf.set_override("host", f"worker-{suffix}")
    conf.set_override("state_path", str(root / "state"))
    conf.set_override("lock_path", str(root.parent / "locks"), group="coordination")
    conf.set_override("topic", f"manila_protector_{suffix}", group="worker")
    conf.set_override("max_concurrent_jobs", 4, group="worker")
    conf.set_override("shutdown_timeout", 10, group="worker")
    conf.set_override("lock_wait", 0.5, group="coordination")
    conf.set_override("endpoint_override", standin.endpoint, group="manila")
    conf.set_override("topics", [f"notifications_{suffix}"], group="oslo_messaging_notifications")
    transport = rpc_api.get_transport(conf)
    collector = rabbit.Collector()
    listener = oslo_messaging.get_notification_listener(
        transport, [oslo_messaging.Target(topic=f"notifications_{suffix}")], [collector],
        serializer=rpc_context.RequestContextSerializer())
    listener.start()
    client = rpc_api.ProtectorAPI(transport, topic=conf.worker.topic,
                                  exchange=conf.control_exchange, timeout=30)
    env = Env(conf, standin, transport, collector, client)

    def stop_listener() -> None:
        listener.stop()
        listener.wait()

    env._closers.extend([standin.stop, fixture.cleanUp, transport.cleanup, stop_listener])
    return env


@pytest.fixture(scope="module", params=TRANSPORTS)
def transport_url(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, transport_url: str) -> typing.Iterator[Env]:
    """One worker for the module's tests that do not need their own."""
    env = open_env(tmp_path_factory.mktemp("shared") / "env", transport_url)
    env.make_worker()
    yield env
    env.close()


@pytest.fixture
def fresh(tmp_path: pathlib.Path, transport_url: str) -> typing.Iterator[Env]:
    """An environment of the test's own: start its worker(s) with ``fresh.make_worker()``."""
    env = open_env(tmp_path / "env", transport_url)
    yield env
    env.close()


def _wait_until_idle(worker: service_mod.WorkerService) -> None:
    assert worker.runner is not None
    rabbit.wait_until(lambda: worker.runner.load == {"running": 0, "queued": 0},
                      IDLE_TIMEOUT, "the shared worker to finish earlier tests' jobs")


@pytest.fixture(autouse=True)
def _shared_worker_idle(request: pytest.FixtureRequest) -> None:
    """A test on the shared worker starts once earlier tests' jobs are done, with the
    stand-in's request log empty."""
    if "shared" in request.fixturenames:
        env = request.getfixturevalue("shared")
        _wait_until_idle(env.workers[0])
        env.standin.reset_requests()


@pytest.fixture
def worker(shared: Env) -> service_mod.WorkerService:
    [running] = shared.workers
    return running


@pytest.fixture
def conf(shared: Env) -> cfg.ConfigOpts:
    """The shared worker's configuration: read it, never change it (use ``fresh``)."""
    return shared.conf


@pytest.fixture
def standin(shared: Env) -> ManilaStandIn:
    return shared.standin


@pytest.fixture
def transport(shared: Env) -> typing.Any:
    return shared.transport


@pytest.fixture
def notifications(shared: Env) -> rabbit.Collector:
    return shared.notifications


@pytest.fixture
def client(shared: Env) -> rpc_api.ProtectorAPI:
    return shared.client


@pytest.fixture
def share(standin: ManilaStandIn, project: str) -> dict[str, typing.Any]:
    return standin.create_share(project, size=1, access_rules=[
        {"access_type": "ip", "access_to": "10.1.0.0/16", "access_level": "rw"}])
