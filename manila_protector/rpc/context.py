"""Request contexts over RPC: an oslo.context ``RequestContext`` travels with every message."""

from __future__ import annotations

import typing

from oslo_context import context as oslo_context
import oslo_messaging

class RequestContextSerializer(oslo_messaging.Serializer):
    """Serialises the request context as a dict and rebuilds a ``RequestContext``.

    Pass the same serializer to the RPC client, the RPC server, the notifier and
    notification listeners.
    """

    def __init__(self, base: oslo_messaging.Serializer | None = None) -> None:
        self._base = base or oslo_messaging.NoOpSerializer()

    def serialize_entity(self, ctxt: typing.Any, entity: typing.Any) -> typing.Any:
        return self._base.serialize_entity(ctxt, entity)

    def deserialize_entity(self, ctxt: typing.Any, entity: typing.Any) -> typing.Any:
        return self._base.deserialize_entity(ctxt, entity)

    def serialize_context(self, ctxt: typing.Any) -> dict[str, typing.Any]:
        if isinstance(ctxt, dict):
            return ctxt
        return ctxt.to_dict()

    def deserialize_context(self, ctxt: typing.Any) -> oslo_context.RequestContext:
        if isinstance(ctxt, oslo_context.RequestContext):
            return ctxt
        if not isinstance(ctxt, dict):
            # A malformed context is an anonymous one: it is refused later, typed.
            return oslo_context.RequestContext()
        try:
            return oslo_context.RequestContext.from_dict(ctxt)
        except (TypeError, ValueError, AttributeError):
            return oslo_context.RequestContext()
