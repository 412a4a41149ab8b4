"""What the RPC client and the worker's endpoint agree on: names, version, exchange.

Both sides import this module; neither imports the other (the client that
Karbor and the CLI load imports nothing of the server side).
"""

from __future__ import annotations

#: The RPC namespace of the protector's endpoint.
NAMESPACE = "manila_protector"
#: The RPC API version the endpoint serves (see ``doc/rpc.rst``): 1.1 adds
#: ``list_jobs``, 1.2 adds ``ping``; 1.0 and 1.1 callers are served as before.
VERSION = "1.2"
#: The version a method needs, where it is newer than 1.0 (the client sends the
#: oldest that works, so older workers still serve everything else).
METHOD_VERSIONS = {"list_jobs": "1.1", "ping": "1.2"}
BASE_VERSION = "1.0"
#: The topic the workers listen on by default (``[worker] topic``).
DEFAULT_TOPIC = "manila_protector"
#: The workers' exchange: their own, apart from OpenStack services' ``openstack``
#: (the worker's ``control_exchange`` default).
CONTROL_EXCHANGE = "manila_protector"
#: Modules whose exceptions a caller's transport rebuilds as the original types.
ALLOWED_REMOTE_EXMODS = ["manila_protector.exception"]

#: oslo.messaging options whose defaults differ for the workers, and must be the
#: same for everyone on their exchange: (group, name) -> value.  Durable queues and
#: exchanges, so that a RabbitMQ restart loses no accepted request and no unread
#: notification; a caller or consumer declaring them otherwise is refused by
#: RabbitMQ (``PRECONDITION_FAILED - inequivalent arg 'durable'``).
MESSAGING_DEFAULTS: dict[tuple[str, str], object] = {
    ("DEFAULT", "control_exchange"): CONTROL_EXCHANGE,
    ("oslo_messaging_rabbit", "amqp_durable_queues"): True,
}
