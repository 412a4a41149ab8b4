"""The broker itself, where oslo.messaging offers nothing: is it reachable, and removing
a queue a consumer of ours declared.

Both speak AMQP with kombu (oslo.messaging's rabbit driver's own library) to the
hosts of ``transport_url``; for any other driver nothing is checked.
"""

from __future__ import annotations

import typing

import kombu
from oslo_config import cfg
import oslo_messaging

from manila_protector import exception

#: Seconds to wait for the broker's answer.
CONNECT_TIMEOUT = 3.0


def _kombu_urls(conf: cfg.ConfigOpts, url: str | None) -> list[str]:
    """kombu URLs of the RabbitMQ hosts of ``url`` (default: ``transport_url``); empty
    for other drivers."""
    parsed = oslo_messaging.TransportURL.parse(conf, url or conf.transport_url)
    if parsed.transport not in ("rabbit", "amqp", "kombu"):
        return []
    vhost = parsed.virtual_host or ""
    urls = []
    for host in parsed.hosts:
        credentials = ""
        if host.username:
            credentials = host.username + (f":{host.password}" if host.password else "") + "@"
        urls.append(f"amqp://{credentials}{host.hostname}:{host.port or 5672}/{vhost}")
    return urls


def _connection(conf: cfg.ConfigOpts, url: str | None) -> kombu.Connection | None:
    urls = _kombu_urls(conf, url)
    if not urls:
        return None
    ssl = bool(getattr(conf.oslo_messaging_rabbit, "ssl", False))
    return kombu.Connection(";".join(urls), connect_timeout=CONNECT_TIMEOUT, ssl=ssl,
                            failover_strategy="round-robin")


def check_reachable(conf: cfg.ConfigOpts, url: str | None = None) -> None:
    """Open and close one AMQP connection to the broker.

    :raises exception.WorkerUnavailable: no host of the broker answered (the message
        names no password).
    """
    connection = _connection(conf, url)
    if connection is None:
        return
    try:
        with connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:  # noqa: BLE001 - kombu raises its transport's own errors
        raise exception.WorkerUnavailable(
            f"the message broker is unreachable: {type(exc).__name__}") from None


def delete_queue(conf: cfg.ConfigOpts, name: str, url: str | None = None) -> bool:
    """Delete the queue ``name`` (best effort).

    :returns: whether it is gone (False: the broker did not answer).
    """
    connection = _connection(conf, url)
    if connection is None:
        return True
    try:
        with connection:
            connection.ensure_connection(max_retries=1)
            with connection.channel() as channel:
                channel.queue_delete(name)
    except Exception:  # noqa: BLE001 - best effort, the caller says what is left
        return False
    return True


def describe(conf: cfg.ConfigOpts) -> dict[str, typing.Any]:
    """What a consumer must declare alike: the exchange and the queues' durability."""
    return {"exchange": conf.control_exchange,
            "durable": bool(conf.oslo_messaging_rabbit.amqp_durable_queues)}
