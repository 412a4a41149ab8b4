"""A worker in-process: real oslo.messaging (in-memory transports), real tooz (file://),
the Manila stand-in over HTTP, notifications captured by a real notification listener."""

from __future__ import annotations

import uuid

import pytest
from oslo_config import cfg
from oslo_context import context as oslo_context
import oslo_messaging
from oslo_messaging import conffixture

from manila_protector.rpc import api as rpc_api
from manila_protector.rpc import context as rpc_context
from manila_standin import ManilaStandIn, StandInConfig
from manila_protector.worker import service as service_mod

from support import rabbit

TRANSPORTS = ["kombu+memory:////", "fake://"]


@pytest.fixture(params=TRANSPORTS)
def transport_url(request):
    return request.param


@pytest.fixture
def standin():
    with ManilaStandIn(StandInConfig()) as running:
        yield running


@pytest.fixture
def conf(tmp_path, standin, transport_url):
    conf = cfg.ConfigOpts()
    service_mod.prepare_conf(conf)
    conf([], project="manila-protector-test")
    fixture = conffixture.ConfFixture(conf, transport_url=transport_url)
    fixture.setUp()
    suffix = uuid.uuid4().hex[:8]
    conf.set_override("control_exchange", f"mp-test-{suffix}")
    conf.set_override("host", f"worker-{suffix}")
    conf.set_override("state_path", str(tmp_path / "state"))
    conf.set_override("topic", f"manila_protector_{suffix}", group="worker")
    conf.set_override("max_concurrent_jobs", 4, group="worker")
    conf.set_override("shutdown_timeout", 10, group="worker")
    conf.set_override("lock_wait", 0.5, group="coordination")
    conf.set_override("endpoint_override", standin.endpoint, group="manila")
    conf.set_override("driver", ["messagingv2"], group="oslo_messaging_notifications")
    conf.set_override("topics", [f"notifications_{suffix}"], group="oslo_messaging_notifications")
    yield conf
    fixture.cleanUp()


@pytest.fixture
def transport(conf):
    transport = rpc_api.get_transport(conf)
    yield transport
    transport.cleanup()


@pytest.fixture
def notifications(conf, transport):
    collector = rabbit.Collector()
    targets = [oslo_messaging.Target(topic=t) for t in conf.oslo_messaging_notifications.topics]
    listener = oslo_messaging.get_notification_listener(
        transport, targets, [collector], serializer=rpc_context.RequestContextSerializer())
    listener.start()
    yield collector
    listener.stop()
    listener.wait()


@pytest.fixture
def make_worker(conf, transport, notifications):
    workers = []

    def make():
        worker = service_mod.WorkerService(conf, transport=transport,
                                           notification_transport=transport)
        worker.start()
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.stop()


@pytest.fixture
def worker(make_worker):
    return make_worker()


@pytest.fixture
def worker_restart(conf, transport):
    """Start a worker on the state path and stop it again (a restart's start half)."""
    def restart():
        worker = service_mod.WorkerService(conf, transport=transport,
                                           notification_transport=transport)
        worker.start()
        worker.stop()
    return restart


@pytest.fixture
def client(conf, transport):
    return rpc_api.ProtectorAPI(transport, topic=conf.worker.topic,
                                exchange=conf.control_exchange, timeout=30)


@pytest.fixture
def project():
    return uuid.uuid4().hex


@pytest.fixture
def ctxt(project):
    return oslo_context.RequestContext(auth_token=f"alice:{project}", user_id="alice",
                                       project_id=project, roles=["member", "reader"])


@pytest.fixture
def share(standin, project):
    return standin.create_share(project, size=1, access_rules=[
        {"access_type": "ip", "access_to": "10.1.0.0/16", "access_level": "rw"}])
