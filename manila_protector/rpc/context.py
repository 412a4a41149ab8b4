"""Request contexts over RPC: the caller's whole context travels with every message.

oslo.context's ``RequestContext`` carries no service catalog, yet the worker
needs the caller's to find Manila: :class:`RequestContext` adds it (the same
attribute Karbor's and Nova's contexts have), and the serializer keeps it.
"""

from __future__ import annotations

import typing

from oslo_context import context as oslo_context
import oslo_messaging


class RequestContext(oslo_context.RequestContext):
    """oslo.context's request context with the caller's ``service_catalog``.

    :param service_catalog: the catalog as the caller holds it (keystonemiddleware's
        v2 form, or a token's v3 form); None where there is none.
    """

    def __init__(self, *args: typing.Any, service_catalog: typing.Any = None,
                 **kwargs: typing.Any) -> None:
        super().__init__(*args, **kwargs)
        self.service_catalog = service_catalog

    def to_dict(self) -> dict[str, typing.Any]:
        values = super().to_dict()
        values["service_catalog"] = self.service_catalog
        return values

    @classmethod
    def from_dict(cls, values: dict[str, typing.Any],
                  **kwargs: typing.Any) -> RequestContext:
        # oslo.context reads the ids from 'user' and 'tenant'/'project' alone; a sender
        # may name them user_id and project_id (newer oslo.context, Karbor): take
        # whichever is there, as sent, so that their shape is checked later.
        for key, legacy in (("user_id", "user"), ("project_id", "tenant")):
            if key in values:
                kwargs.setdefault(key, values[key])
            elif legacy in values:
                kwargs.setdefault(key, values[legacy])
        kwargs.setdefault("service_catalog", values.get("service_catalog"))
        return super().from_dict(values, **kwargs)


class RequestContextSerializer(oslo_messaging.Serializer):
    """Serialises the request context as a dict and rebuilds a :class:`RequestContext`.

    Any context with ``to_dict()`` is accepted (oslo.context's, Karbor's); its
    ``service_catalog`` attribute travels even where its ``to_dict`` leaves it out.
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
        values = dict(ctxt.to_dict())
        # oslo.context < 4 (Karbor's environment) names these 'user' and 'tenant' only,
        # and a context's to_dict may leave its catalog out.
        for key in ("user_id", "project_id", "service_catalog"):
            if values.get(key) is None and getattr(ctxt, key, None) is not None:
                values[key] = getattr(ctxt, key)
        return values

    def deserialize_context(self, ctxt: typing.Any) -> oslo_context.RequestContext:
        if isinstance(ctxt, oslo_context.RequestContext):
            return ctxt
        if not isinstance(ctxt, dict):
            return _malformed(f"a {type(ctxt).__name__}, not an object")
        try:
            return RequestContext.from_dict(ctxt)
        except (TypeError, ValueError, AttributeError) as exc:
            return _malformed(type(exc).__name__)


def _malformed(reason: str) -> RequestContext:
    """A context that could not be read: anonymous, and marked, so that it is refused
    typed (``invalid_request``) where the request enters."""
    context = RequestContext()
    context.malformed = reason
    return context
