"""What the RPC client and the worker's endpoint agree on: names, version, exchange.

Both sides import this module; neither imports the other (the client that
Karbor and the CLI load imports nothing of the server side).
"""

from __future__ import annotations

#: The RPC namespace of the protector's endpoint.
NAMESPACE = "manila_protector"
#: The RPC API version the endpoint serves (see ``doc/rpc.rst``).
VERSION = "1.0"
#: The topic the workers listen on by default (``[worker] topic``).
DEFAULT_TOPIC = "manila_protector"
#: The workers' exchange: their own, apart from OpenStack services' ``openstack``
#: (the worker's ``control_exchange`` default).
CONTROL_EXCHANGE = "manila_protector"
#: Modules whose exceptions a caller's transport rebuilds as the original types.
ALLOWED_REMOTE_EXMODS = ["manila_protector.exception"]
