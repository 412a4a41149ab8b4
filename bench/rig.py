"""A worker wired in-process, the way ``manila_protector.demo`` does it.

Real oslo.messaging (an in-memory transport, or RabbitMQ where asked), the
real job store on its single-host default (an SQLite file under the state
directory, oslo.db and alembic), tooz ``file://`` locks, and the Manila
stand-in over HTTP.  Also: quieting the libraries' start-up chatter and
finding out whether RabbitMQ answers.
"""

from __future__ import annotations

import logging
import os
import socket
import typing
import uuid

import kombu
from oslo_config import cfg
from oslo_context import context as oslo_context
import oslo_messaging

from manila_protector.rpc import api as rpc_api
from manila_standin import server as standin_server
from manila_protector.worker import service as service_mod

MEMORY_URL = "kombu+memory:////"
RABBIT_HOST, RABBIT_PORT = "127.0.0.1", 5672
RABBIT_URL = f"rabbit://guest:guest@{RABBIT_HOST}:{RABBIT_PORT}/"

#: The access rule every benchmark share carries (restore re-applies it).
RULES = [{"access_type": "ip", "access_to": "10.0.0.0/24", "access_level": "rw"}]

PROTECT_PARAMETERS = {"snapshot_name": "bench", "description": "benchmark", "force": False}


def quiet() -> None:
    """Only warnings from our code; none of kombu's per-connection notices."""
    logging.basicConfig(level=logging.ERROR, format="(log) %(levelname)s %(name)s: %(message)s")
    for noisy in ("kombu", "oslo.messaging", "oslo_messaging", "amqp", "tooz", "keystoneauth",
                  "manila_protector"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def rabbit_answers(timeout: float = 2.0) -> bool:
    """Whether something accepts connections on RabbitMQ's port on 127.0.0.1."""
    try:
        socket.create_connection((RABBIT_HOST, RABBIT_PORT), timeout=timeout).close()
    except OSError:
        return False
    return True


def transport_name(url: str) -> str:
    return "in-memory (kombu+memory)" if url.startswith("kombu+memory") else "RabbitMQ (local)"


def unlimited_project(standin: standin_server.ManilaStandIn) -> str:
    """A new project whose quotas never stop a benchmark."""
    project = uuid.uuid4().hex
    standin.set_quota(project, snapshots=-1, shares=-1, gigabytes=-1, snapshot_gigabytes=-1)
    return project


def member_context(project: str) -> oslo_context.RequestContext:
    """A project member's request context (a noauth token the stand-in accepts)."""
    return oslo_context.RequestContext(auth_token=f"bench:{project}", user_id="bench",
                                       project_id=project, roles=["member", "reader"])


class WorkerRig:
    """One worker in this process, and an RPC client for it.

    :param standin: the Manila the worker talks to.
    :param state_path: the worker's state directory (the job store's SQLite file, locks).
    :param transport_url: ``kombu+memory:////`` (default) or a RabbitMQ URL.
    :param overrides: ``{(group, option): value}`` set on the configuration.
    """

    def __init__(self, standin: standin_server.ManilaStandIn, state_path: str,
                 transport_url: str = MEMORY_URL,
                 overrides: dict[tuple[str | None, str], typing.Any] | None = None) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.transport_url = transport_url
        self.notification_topic = f"bench_notifications_{suffix}"
        conf = cfg.ConfigOpts()
        service_mod.prepare_conf(conf)
        conf([], project="manila-protector-bench")
        settings: dict[tuple[str | None, str], typing.Any] = {
            (None, "transport_url"): transport_url,
            (None, "control_exchange"): f"bench_{suffix}",
            (None, "host"): f"bench-worker-{suffix}",
            (None, "state_path"): state_path,
            ("worker", "topic"): f"bench_{suffix}",
            ("manila", "endpoint_override"): standin.endpoint,
            ("oslo_messaging_notifications", "driver"): ["messagingv2"],
            ("oslo_messaging_notifications", "topics"): [self.notification_topic],
            # Queues this run declares on a real broker go away with their consumers.
            ("oslo_messaging_rabbit", "amqp_auto_delete"): True,
        }
        settings.update(overrides or {})
        for (group, name), value in settings.items():
            conf.set_override(name, value, group=group)
        self.conf = conf
        self.transport = rpc_api.get_transport(conf)
        self.notification_transport = oslo_messaging.get_notification_transport(conf)
        self.service = service_mod.WorkerService(
            conf, transport=self.transport, notification_transport=self.notification_transport)
        self.client = rpc_api.ProtectorAPI(self.transport, topic=conf.worker.topic,
                                           exchange=conf.control_exchange, timeout=60)

    def __enter__(self) -> WorkerRig:
        self.service.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.service.stop()
        self.transport.cleanup()
        self.notification_transport.cleanup()
        if not self.transport_url.startswith("kombu+memory"):
            _drop_notification_queues(self.transport_url, self.notification_topic)


def _drop_notification_queues(url: str, topic: str) -> None:
    """Notification queues outlive the run on a real broker (nobody consumes them)."""
    amqp_url = "amqp" + url[len("rabbit"):] + ("/" if url.endswith("/") else "")
    try:
        with kombu.Connection(amqp_url, connect_timeout=5) as conn:
            for priority in ("info", "error"):
                with conn.channel() as channel:
                    channel.queue_delete(f"{topic}.{priority}")
    except Exception as exc:  # noqa: BLE001 - cleanup is best effort
        print(f"(could not delete the notification queues: {type(exc).__name__}: {exc})")


def state_dir(root: str, name: str) -> str:
    path = os.path.join(root, name)
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path
