"""Karbor's protectable plugin for ``OS::Manila::Share`` -- a thin adapter.

Loaded by Karbor from the ``karbor.protectables`` entry point ``share`` with no
arguments, then specialised per request with ``instance(context, conf)``.  The
work is done by :class:`~manila_protector.plugins.share_catalog.ShareCatalog`.
"""

from __future__ import annotations

import logging
import typing

from oslo_config import cfg

from manila_protector import exception
from manila_protector import identity
from manila_protector import opts
from manila_protector.plugins import karbor_errors
from manila_protector.plugins import resources
from manila_protector.plugins import runtime as plugin_runtime
from manila_protector.plugins import share_catalog

LOG = logging.getLogger(__name__)

def _to_resource(share: share_catalog.ShareSummary) -> typing.Any:
    return resources.Resource(
        type=resources.SHARE_RESOURCE_TYPE,
        id=share.id,
        name=share.name,
        extra_info={
            "status": share.status,
            "size": share.size,
            "share_proto": share.share_proto,
            "availability_zone": share.availability_zone,
        },
    )


class ShareProtectablePlugin:
    """Protectable plugin for Manila shares; parent type: the project.

    :param context: Karbor's request context (None for the loaded template).
    :param conf: a ConfigOpts whose ``[manila]`` section configures Manila access;
        Karbor passes its global configuration.
    """

    _SUPPORT_RESOURCE_TYPE = resources.SHARE_RESOURCE_TYPE

    def __init__(self, context: typing.Any = None, conf: cfg.ConfigOpts | None = None) -> None:
        self._context = context
        self._conf = conf
        self._runtime: plugin_runtime.PluginRuntime | None = None

    def instance(self, context: typing.Any = None, conf: cfg.ConfigOpts | None = None
                 ) -> ShareProtectablePlugin:
        """A copy for one request, as Karbor's registry asks for."""
        return self.__class__(context, conf if conf is not None else self._conf)

    def _catalog(self, caller: identity.Caller) -> share_catalog.ShareCatalog:
        if self._runtime is None:
            conf = self._conf if self._conf is not None else cfg.ConfigOpts()
            opts.register_manila_opts(conf)
            self._runtime = plugin_runtime.PluginRuntime.from_conf(conf)
        runtime = self._runtime
        return runtime.catalog(runtime.client(caller))

    def _caller(self, context: typing.Any) -> identity.Caller:
        return identity.Caller.from_context(context or self._context)

    def get_resource_type(self) -> str:
        return self._SUPPORT_RESOURCE_TYPE

    def get_parent_resource_types(self) -> tuple[str, ...]:
        return (resources.PROJECT_RESOURCE_TYPE,)

    def list_resources(self, context: typing.Any, parameters: typing.Any = None) -> list:
        """The caller's protectable shares."""
        try:
            return [_to_resource(s) for s in self._catalog(self._caller(context)).list_shares()]
        except exception.ProtectorError as exc:
            raise karbor_errors.for_protectable(exc, None) from exc

    def show_resource(self, context: typing.Any, resource_id: str,
                      parameters: typing.Any = None) -> typing.Any:
        """One share; a share that cannot be protected raises a typed error naming its status."""
        try:
            caller = self._caller(context)
            return _to_resource(self._catalog(caller).show_share(resource_id, caller=caller))
        except exception.ProtectorError as exc:
            raise karbor_errors.for_protectable(exc, resource_id) from exc

    def get_dependent_resources(self, context: typing.Any, parent_resource: typing.Any) -> list:
        """The protectable shares of the parent project (filtered by Manila)."""
        try:
            caller = self._caller(context)
            shares = self._catalog(caller).list_project_shares(parent_resource.id,
                                                               caller=caller)
        except exception.ProtectorError as exc:
            raise karbor_errors.for_protectable(exc, parent_resource.id) from exc
        return [_to_resource(s) for s in shares]
