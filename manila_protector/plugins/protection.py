"""Karbor's protection plugin for ``OS::Manila::Share`` -- a thin adapter.

Karbor builds it as ``ManilaShareProtectionPlugin(provider_config)`` (the
provider file's ConfigOpts: its ``[manila]`` section configures Manila access
and waits, its ``[dispatch]`` section where the jobs run) and calls every hook
as ``hook(checkpoint, resource, context, parameters, **kwargs)``.  Each hook
unpacks what Karbor passes once, and hands the job to the dispatch mode
(:mod:`~manila_protector.plugins.dispatch`): the core in this process, or a
protection worker over the bus.

The checkpoint's bank section for the share holds ``status`` and ``metadata``
(the saved info), as Karbor's own plugins keep them.  A hook that fails raises
Karbor's own error for the operation (``CreateResourceFailed``...) carrying
our error's code and message.
"""

from __future__ import annotations

import logging
import typing

from oslo_config import cfg

from manila_protector import exception
from manila_protector import identity
from manila_protector import opts
from manila_protector.plugins import dispatch as dispatch_mod
from manila_protector.plugins import karbor_errors
from manila_protector.plugins import resources
from manila_protector.plugins import runtime as plugin_runtime
from manila_protector.plugins import schemas
from manila_protector.plugins import share_protector
from manila_protector.plugins import values

LOG = logging.getLogger(__name__)

# Karbor's resource status values in a checkpoint's bank section.
STATUS_PROTECTING = "protecting"
STATUS_AVAILABLE = "available"
STATUS_ERROR = "error"
STATUS_DELETING = "deleting"
STATUS_DELETED = "deleted"
STATUS_RESTORING = "restoring"


class Operation:
    """Karbor's operation interface; the hooks a subclass does not need do nothing."""

    def on_prepare_begin(self, checkpoint: typing.Any, resource: typing.Any, context: typing.Any,
                         parameters: typing.Any, **kwargs: typing.Any) -> None:
        """Runs before any child resource's hooks (nothing to do for a share)."""

    def on_prepare_finish(self, checkpoint: typing.Any, resource: typing.Any,
                          context: typing.Any, parameters: typing.Any,
                          **kwargs: typing.Any) -> None:
        """Runs after all children's prepare hooks (nothing to do for a share)."""

    def on_main(self, checkpoint: typing.Any, resource: typing.Any, context: typing.Any,
                parameters: typing.Any, **kwargs: typing.Any) -> None:
        """The work (overridden)."""

    def on_complete(self, checkpoint: typing.Any, resource: typing.Any, context: typing.Any,
                    parameters: typing.Any, **kwargs: typing.Any) -> None:
        """Runs after all dependants' hooks (nothing to do for a share)."""


def _log_failure(what: str, exc: BaseException) -> None:
    if isinstance(exc, exception.ProtectorError):
        LOG.error("%s failed: %s", what, exc)
    else:
        # Not one of ours (the bank, a bug): keep the traceback.
        LOG.exception("%s failed unexpectedly", what)


class _PluginOperation(Operation):
    """An operation of :class:`ManilaShareProtectionPlugin` (it builds the core per context)."""

    def __init__(self, plugin: ManilaShareProtectionPlugin) -> None:
        self._plugin = plugin


def _protect_parameters(parameters: typing.Any, checkpoint: typing.Any,
                        resource: typing.Any) -> typing.Any:
    """The plan's parameters, with Karbor's own plugin's defaults for what a plan leaves out.

    Karbor accepts a plan without parameters; its own share plugin then names the
    snapshot itself and forces nothing.  The options schema (the spec's) requires
    all three, so the hook fills them in the same way before validating.
    """
    if parameters is not None and not isinstance(parameters, dict):
        return parameters  # refused by the schema, naming the field
    defaults = {"snapshot_name": f"{getattr(checkpoint, 'id', 'checkpoint')}@{resource.id}",
                "description": "", "force": False}
    return {**defaults, **(parameters or {})}


class ProtectOperation(_PluginOperation):
    """protect = snapshot the share; the saved info goes into the bank section."""

    def on_main(self, checkpoint: typing.Any, resource: typing.Any, context: typing.Any,
                parameters: typing.Any, **kwargs: typing.Any) -> None:
        section = checkpoint.get_resource_bank_section(resource.id)
        section.update_object("status", STATUS_PROTECTING)
        try:
            options = values.ProtectOptions.from_parameters(
                _protect_parameters(parameters, checkpoint, resource))
            saved = self._plugin.dispatch.protect(
                context, resource.id, options,
                dispatch_mod.karbor_job_id("protect", checkpoint, resource.id))
        except Exception as exc:
            # Whatever failed, the bank must not keep saying 'protecting'.
            _log_failure(f"protect of share {resource.id}", exc)
            section.update_object("status", STATUS_ERROR)
            translated = karbor_errors.for_hook("protect", resource.id, exc)
            if translated is exc:
                raise
            raise translated from exc
        section.update_object("metadata", saved.to_dict())
        section.update_object("status", STATUS_AVAILABLE)
        LOG.info("share %s protected as snapshot %s", resource.id, saved.snapshot_id)


class RestoreOperation(_PluginOperation):
    """restore = a new share from the snapshot (or a revert when share_id names the share)."""

    def on_main(self, checkpoint: typing.Any, resource: typing.Any, context: typing.Any,
                parameters: typing.Any, **kwargs: typing.Any) -> None:
        restore = kwargs.get("restore")
        section = checkpoint.get_resource_bank_section(resource.id)
        try:
            saved = values.SavedInfo.from_dict(section.get_object("metadata"))
            options = values.RestoreOptions.from_parameters(parameters)
            if options.name is None and not options.target_share_id:
                # Karbor's own naming of a restored share: <checkpoint>@<share>.
                options = values.RestoreOptions(
                    target_share_id=None,
                    name=f"{getattr(checkpoint, 'id', 'checkpoint')}@{resource.id}",
                    description=options.description,
                    restore_access_rules=options.restore_access_rules,
                )
            result = self._plugin.dispatch.restore(
                context, saved, options,
                dispatch_mod.karbor_job_id("restore", restore, resource.id))
        except Exception as exc:
            # Whatever failed (bad saved info, a bank error), Karbor's user sees it here.
            _log_failure(f"restore of share {resource.id}", exc)
            if restore is not None:
                restore.update_resource_status(resources.SHARE_RESOURCE_TYPE, resource.id,
                                               STATUS_ERROR, karbor_errors.reason(exc))
                restore.save()
            translated = karbor_errors.for_hook("restore", resource.id, exc)
            if translated is exc:
                raise
            raise translated from exc
        if restore is not None:
            restore.update_resource_status(resources.SHARE_RESOURCE_TYPE, result.share_id,
                                           result.status)
            restore.save()
        new_resources = kwargs.get("new_resources")
        if isinstance(new_resources, dict):
            new_resources[resource.id] = result.share_id
        LOG.info("share %s restored as share %s (%s)", resource.id, result.share_id,
                 result.mode)


class VerifyOperation(_PluginOperation):
    """verify = the snapshot exists and is available."""

    def on_main(self, checkpoint: typing.Any, resource: typing.Any, context: typing.Any,
                parameters: typing.Any, **kwargs: typing.Any) -> None:
        verify = kwargs.get("verify")
        section = checkpoint.get_resource_bank_section(resource.id)
        try:
            schemas.validate(schemas.VERIFY_SCHEMA, parameters, "parameters")
            saved = values.SavedInfo.from_dict(section.get_object("metadata"))
            result = self._plugin.dispatch.verify(
                context, saved, dispatch_mod.karbor_job_id("verify", verify, resource.id))
        except Exception as exc:
            _log_failure(f"verify of share {resource.id}", exc)
            if verify is not None:
                verify.update_resource_status(resources.SHARE_RESOURCE_TYPE, resource.id,
                                              STATUS_ERROR, karbor_errors.reason(exc))
            translated = karbor_errors.for_hook("verify", resource.id, exc)
            if translated is exc:
                raise
            raise translated from exc
        if verify is not None:
            verify.update_resource_status(resources.SHARE_RESOURCE_TYPE, resource.id,
                                          result.status)


class DeleteOperation(_PluginOperation):
    """delete = delete the snapshot; already gone is success."""

    def on_main(self, checkpoint: typing.Any, resource: typing.Any, context: typing.Any,
                parameters: typing.Any, **kwargs: typing.Any) -> None:
        section = checkpoint.get_resource_bank_section(resource.id)
        section.update_object("status", STATUS_DELETING)
        try:
            saved = values.SavedInfo.from_dict(section.get_object("metadata"))
            self._plugin.dispatch.delete(
                context, saved, dispatch_mod.karbor_job_id("delete", checkpoint, resource.id))
        except Exception as exc:
            # Whatever failed, the bank must not keep saying 'deleting'.
            _log_failure(f"delete of share {resource.id}'s snapshot", exc)
            section.update_object("status", STATUS_ERROR)
            translated = karbor_errors.for_hook("delete", resource.id, exc)
            if translated is exc:
                raise
            raise translated from exc
        section.delete_object("metadata")
        section.update_object("status", STATUS_DELETED)


class ManilaShareProtectionPlugin:
    """Protection plugin for Manila shares (Karbor's ``ProtectionPlugin`` contract).

    :param config: the provider file's ConfigOpts (Karbor passes it); the plugin
        registers its ``[manila]`` and ``[dispatch]`` options there. None uses an
        empty configuration.
    :param runtime: the plugin runtime for direct mode (default: from ``[manila]``,
        built on first use).
    """

    _SUPPORT_RESOURCE_TYPES = (resources.SHARE_RESOURCE_TYPE,)

    def __init__(self, config: cfg.ConfigOpts | None = None,
                 runtime: plugin_runtime.PluginRuntime | None = None) -> None:
        self._config = config if config is not None else cfg.ConfigOpts()
        opts.register_manila_opts(self._config)
        opts.register_dispatch_opts(self._config)
        self._runtime = runtime
        self._direct = dispatch_mod.Direct(lambda: self.runtime)
        self._worker: dispatch_mod.ToWorker | None = None

    @property
    def dispatch(self) -> dispatch_mod.Dispatch:
        """Where the hooks' jobs run (``[dispatch] mode``)."""
        if self._config.dispatch.mode != opts.DISPATCH_WORKER:
            return self._direct
        if self._worker is None:
            self._worker = dispatch_mod.ToWorker(self._config)
        return self._worker

    @property
    def runtime(self) -> plugin_runtime.PluginRuntime:
        # Built on first use: Karbor instantiates plugins while loading providers,
        # and loading must not need Manila to be reachable.
        if self._runtime is None:
            self._runtime = plugin_runtime.PluginRuntime.from_conf(self._config)
        return self._runtime

    def protector(self, context: typing.Any) -> share_protector.ShareProtector:
        """The core acting for ``context`` in this process (whatever the dispatch mode).

        :raises exception.InvalidRequest: the context is malformed.
        """
        return self._direct.protector(identity.Caller.from_context(context))

    @classmethod
    def get_supported_resources_types(cls) -> list[str]:
        return list(cls._SUPPORT_RESOURCE_TYPES)

    @classmethod
    def _check(cls, resource_type: str) -> None:
        if resource_type not in cls._SUPPORT_RESOURCE_TYPES:
            raise exception.InvalidRequest(f"unsupported resource type {resource_type!r}")

    @classmethod
    def get_options_schema(cls, resource_type: str) -> dict:
        cls._check(resource_type)
        return schemas.schema_copy(schemas.OPTIONS_SCHEMA)

    @classmethod
    def get_restore_schema(cls, resource_type: str) -> dict:
        cls._check(resource_type)
        return schemas.schema_copy(schemas.RESTORE_SCHEMA)

    @classmethod
    def get_verify_schema(cls, resource_type: str) -> dict:
        cls._check(resource_type)
        return schemas.schema_copy(schemas.VERIFY_SCHEMA)

    @classmethod
    def get_saved_info_schema(cls, resource_type: str) -> dict:
        cls._check(resource_type)
        return schemas.schema_copy(schemas.SAVED_INFO_SCHEMA)

    @classmethod
    def get_saved_info(cls, metadata_store: typing.Any, resource: typing.Any) -> dict:
        """The saved info kept for ``resource`` in a checkpoint (or its bank section)."""
        section = metadata_store
        if hasattr(metadata_store, "get_resource_bank_section"):
            section = metadata_store.get_resource_bank_section(resource.id)
        return section.get_object("metadata")

    def get_protect_operation(self, resource: typing.Any) -> ProtectOperation:
        return ProtectOperation(self)

    def get_restore_operation(self, resource: typing.Any) -> RestoreOperation:
        return RestoreOperation(self)

    def get_verify_operation(self, resource: typing.Any) -> VerifyOperation:
        return VerifyOperation(self)

    def get_delete_operation(self, resource: typing.Any) -> DeleteOperation:
        return DeleteOperation(self)
