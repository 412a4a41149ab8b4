"""Run Karbor 1.6.0's own protection-service code on our plugins, the way
karbor-protection does; executed by the Python of Karbor's virtualenv
(``tools/real_karbor.py install``), so it imports only what is there.

What runs is Karbor's: ``ProtectionManager`` (``karbor.services.protection.manager``)
with its ``ProviderRegistry`` reading ``--provider-dir`` (our provider file), its
``ProtectableRegistry`` loading every ``karbor.protectables`` entry point, its
``Worker`` building the taskflow flows (``flows/protect.py`` ... ``flows/delete.py``),
the bank plugin the provider file names (``karbor-fs-bank-plugin`` in the tests), and
Karbor's objects (``Plan``, ``Restore``, ``Verification``, ``OperationLog``) in Karbor's
database (``--database``, SQLite by default, migrated by Karbor's own migrations).
What karbor-api would do before its RPC call (store the Plan, Restore or
Verification; build the checkpoint's properties) is done here the same way, and the
request context and objects pass through Karbor's RPC serializers, as they would on
the bus. Nothing of Keystone or karbor-api runs.

Two differences from karbor-protection, both at one seam each:

* ``ProtectionManager._spawn`` runs the flow in the foreground (karbor-protection
  spawns a green thread and returns), so that this process can report the outcome.
* ``protect`` takes the checkpoint id from the caller (``--checkpoint-id``): Karbor's
  ``CheckpointCollection.create`` picks a random one. When the checkpoint already
  exists in the bank (a run killed mid-flow), its flow is built and run again on it,
  as karbor-protection would if it ran the same checkpoint again.

Commands (``--help`` on each)::

    driver.py protect      --provider-dir D --provider-id P --resources JSON ...
    driver.py restore      --provider-dir D --provider-id P --checkpoint-id C ...
    driver.py verify       --provider-dir D --provider-id P --checkpoint-id C ...
    driver.py delete       --provider-dir D --provider-id P --checkpoint-id C ...
    driver.py protectables {types,list,show,dependents} --provider-dir D ...

Every command takes the request context as JSON (``--context``: user_id, project_id,
project_name, roles, is_admin, auth_token, request_id, service_catalog) and
``--config-file`` (repeatable; Karbor's own options, e.g. ``[manila]`` for the
protectable plugin, which Karbor hands its global configuration).

Output: JSON lines on stdout. While a flow runs, one line per task state change,
``{"event": "task", "task": NAME, "state": STATE}`` (a hook's task is named
``<operation>_<hook>_<type>_<id>``, e.g. ``protect_on_main_OS::Manila::Share_<id>``);
last, ``{"result": {...}}``. Logs go to stderr (or ``--log-file``). Exit status: 0
the command ran (the result says whether Karbor's flow succeeded), 1 the driver
itself failed, 2 bad arguments.
"""

import warnings

# "Eventlet is deprecated": Karbor is what it is.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
# sqlalchemy-migrate imports pkg_resources.
warnings.filterwarnings("ignore", message=r"pkg_resources is deprecated")

# Like karbor-protection (karbor/cmd/protection.py): green threads everywhere.
import eventlet  # noqa: E402

eventlet.monkey_patch()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402

PROTECTABLES = "karbor.protectables"

#: The file descriptor the JSON lines go to (stdout, kept apart from any logging).
_OUT = sys.stdout


def emit(obj):
    """Write one JSON line to stdout and flush it (a test reads it while we run)."""
    _OUT.write(json.dumps(obj, sort_keys=True, default=str) + "\n")
    _OUT.flush()


def _json_arg(text):
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from exc


def parse_args(argv):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--provider-dir", required=True,
                        help="Karbor's providers.d: the provider files it loads")
    common.add_argument("--database", required=True,
                        help="Karbor's database URL (oslo.db), e.g. sqlite:////tmp/k.sqlite")
    common.add_argument("--config-file", action="append", default=[],
                        help="a karbor.conf to read as well (repeatable)")
    common.add_argument("--transport-url", default=None,
                        help="Karbor's [DEFAULT] transport_url")
    common.add_argument("--context", type=_json_arg, required=True,
                        help="the request context as JSON")
    common.add_argument("--register-our-protectable", action="store_true",
                        help="after Karbor's registry loaded every karbor.protectables "
                             "plugin, register ours again, so that it serves "
                             "OS::Manila::Share (Karbor's own 'share' plugin, loaded "
                             "after ours, takes the type otherwise)")
    common.add_argument("--log-file", default=None)
    common.add_argument("--debug", action="store_true")

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    protect = commands.add_parser("protect", parents=[common],
                                  help="checkpoint create: the protect flow")
    protect.add_argument("--provider-id", required=True)
    protect.add_argument("--checkpoint-id", required=True,
                         help="the checkpoint's id; an existing one's flow runs again")
    protect.add_argument("--resources", type=_json_arg, required=True,
                         help='the plan\'s resources: [{"id", "type", "name"}, ...]')
    protect.add_argument("--parameters", type=_json_arg, default={},
                         help="the plan's parameters: {type or type#id: {...}}")
    protect.add_argument("--plan-name", default="manila-protector plan")

    for name, helptext in (("restore", "restore create: the restore flow"),
                           ("verify", "verification create: the verify flow")):
        sub = commands.add_parser(name, parents=[common], help=helptext)
        sub.add_argument("--provider-id", required=True)
        sub.add_argument("--checkpoint-id", required=True)
        sub.add_argument(f"--{name}-id", dest="object_id", default=None,
                         help=f"the {name}'s id; an existing one is run again")
        sub.add_argument("--parameters", type=_json_arg, default={},
                         help="parameters: {type or type#id: {...}}")
        if name == "restore":
            sub.add_argument("--restore-target", default=None)

    delete = commands.add_parser("delete", parents=[common],
                                 help="checkpoint delete: the delete flow")
    delete.add_argument("--provider-id", required=True)
    delete.add_argument("--checkpoint-id", required=True)

    protectables = commands.add_parser("protectables", parents=[common],
                                       help="Karbor's protectable registry")
    protectables.add_argument("action", choices=("types", "list", "show", "dependents"))
    protectables.add_argument("--type", default="OS::Manila::Share")
    protectables.add_argument("--id", default=None, help="show: the resource's id")
    protectables.add_argument("--parent-type", default="OS::Keystone::Project")
    protectables.add_argument("--parent-id", default=None,
                              help="dependents: the parent's id (default: the context's "
                                   "project)")
    protectables.add_argument("--parent-name", default=None)
    protectables.add_argument("--parameters", type=_json_arg, default=None)
    return parser.parse_args(argv)


# -- Karbor's process, as karbor-protection sets it up -------------------------------


def configure(args):
    """Karbor's global configuration, objects and logging (karbor/cmd/protection.py)."""
    from oslo_config import cfg
    from oslo_log import log as logging
    from oslo_messaging import opts as messaging_opts

    from karbor import i18n
    i18n.enable_lazy()
    from karbor import objects
    from karbor.common import config  # noqa: F401 - registers Karbor's options
    from karbor.services.protection import manager  # noqa: F401 - and the service's
    from karbor.services.protection import provider  # noqa: F401
    from karbor import rpc
    from karbor import version

    objects.register_all()
    conf = cfg.CONF
    logging.register_options(conf)
    argv = []
    for path in args.config_file:
        argv += ["--config-file", path]
    conf(argv, project="karbor", version=version.version_string(), default_config_files=[])
    conf.set_override("provider_config_dir", os.path.abspath(args.provider_dir))
    conf.set_override("connection", args.database, group="database")
    # oslo.messaging registers its options when a transport is built (rpc.init
    # below); register them now so that --transport-url can be set before that.
    for group, options in messaging_opts.list_opts():
        conf.register_opts(options, group=group)
    if args.transport_url:
        conf.set_override("transport_url", args.transport_url)
    if args.log_file:
        conf.set_override("log_file", args.log_file)
    else:
        conf.set_override("use_stderr", True)
    conf.set_override("debug", args.debug)
    logging.setup(conf, "karbor")
    # karbor-protection's Service does this before it builds the manager.
    rpc.init(conf)
    return conf


def ensure_schema():
    """Karbor's database at the newest version (``karbor-manage db sync``)."""
    from karbor.db import migration

    migration.db_sync()


def make_context(values):
    """The request context karbor-api builds from keystonemiddleware's headers."""
    from karbor import context

    known = ("user_id", "project_id", "project_name", "roles", "is_admin", "auth_token",
             "request_id", "service_catalog", "auth_token_info")
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise SystemExit(f"--context: unknown keys {unknown}")
    return context.RequestContext(
        user_id=values.get("user_id"), project_id=values.get("project_id"),
        project_name=values.get("project_name"), roles=values.get("roles") or [],
        is_admin=bool(values.get("is_admin", False)), auth_token=values.get("auth_token"),
        request_id=values.get("request_id"), service_catalog=values.get("service_catalog"),
        auth_token_info=values.get("auth_token_info"))


class Bus:
    """What an RPC call from karbor-api does to the context and the objects: Karbor's
    serializers, JSON on the wire, and back."""

    def __init__(self):
        from karbor.objects import base as objects_base
        from karbor import rpc

        self._serializer = rpc.RequestContextSerializer(objects_base.KarborObjectSerializer())

    def context(self, ctxt):
        wire = json.loads(json.dumps(self._serializer.serialize_context(ctxt)))
        return self._serializer.deserialize_context(wire)

    def entity(self, ctxt, entity):
        wire = json.loads(json.dumps(self._serializer.serialize_entity(ctxt, entity)))
        return self._serializer.deserialize_entity(ctxt, wire)


class Protection:
    """Karbor's ProtectionManager, its flows run in the foreground."""

    def __init__(self, register_our_protectable=False):
        from karbor.services.protection import manager

        self.manager = manager.ProtectionManager()
        if register_our_protectable:
            self._register_our_protectable()
        self.engines = []
        self.flow_errors = []
        self.manager._spawn = self._run_in_foreground

    def _register_our_protectable(self):
        from stevedore import extension

        # The same entry points, loaded as ProtectableRegistry.load_plugins loads them.
        ours = [ext for ext in extension.ExtensionManager(namespace=PROTECTABLES,
                                                          invoke_on_load=True)
                if ext.entry_point.value.startswith("manila_protector.")]
        if not ours:
            raise RuntimeError(f"no {PROTECTABLES} entry point of manila_protector")
        for ext in ours:
            self.manager.protectable_registry.register_plugin(ext.obj)

    def _run_in_foreground(self, func, flow_engine, *args, **kwargs):
        self.engines.append(flow_engine)
        flow_engine.atom_notifier.register("*", _report_task)
        try:
            func(flow_engine, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - karbor-protection only logs it
            self.flow_errors.append(_error(exc))

    def provider(self, provider_id):
        return self.manager.provider_registry.show_provider(provider_id)

    def flow_output(self, name):
        if not self.engines:
            return None
        try:
            return self.manager.worker.flow_outputs(self.engines[-1], target=name)
        except Exception:  # noqa: BLE001 - the flow never got that far
            return None


def _report_task(state, details):
    emit({"event": "task", "task": details.get("task_name"), "state": state})


def _error(exc):
    from oslo_messaging.rpc import dispatcher

    if isinstance(exc, dispatcher.ExpectedException):
        # What the RPC server sends the caller: the exception the manager raised.
        exc = exc.exc_info[1]
    return {"type": f"{type(exc).__module__}.{type(exc).__name__}",
            "message": str(exc),
            "traceback": traceback.format_exception(type(exc), exc, exc.__traceback__)}


def _graph_resources(checkpoint):
    """Every resource of a checkpoint's resource graph, parents first."""
    found = []

    def walk(nodes):
        for node in nodes:
            if node.value not in found:
                found.append(node.value)
            walk(node.child_nodes)

    walk(checkpoint.resource_graph or ())
    return found


def _bank_object(section, key):
    from karbor import exception

    try:
        return section.get_object(key)
    except exception.BankGetObjectFailed:
        return None


def checkpoint_report(provider, checkpoint_id):
    """A checkpoint as the bank now holds it, with each resource's section."""
    from karbor import exception

    try:
        checkpoint = provider.get_checkpoint_collection().get(checkpoint_id)
    except exception.CheckpointNotFound:
        return {"id": checkpoint_id, "status": None, "resources": {}}
    resources = {}
    for resource in _graph_resources(checkpoint):
        section = checkpoint.get_resource_bank_section(resource.id)
        resources[resource.id] = {
            "type": resource.type, "name": resource.name,
            "status": _bank_object(section, "status"),
            "metadata": _bank_object(section, "metadata"),
            "objects": sorted(section.list_objects()),
        }
    return {"id": checkpoint.id, "status": checkpoint.status,
            "project_id": checkpoint.project_id,
            "protection_plan": checkpoint.protection_plan,
            "resources": resources}


# -- the operations ---------------------------------------------------------------------


def create_plan(ctxt, protection, args):
    """POST /v1/{project}/plans: Karbor's own checks, then the Plan object."""
    import types

    from oslo_serialization import jsonutils

    from karbor.api.v1 import plans
    from karbor.common import constants
    from karbor import objects

    body = {"name": args.plan_name, "provider_id": args.provider_id,
            "resources": json.loads(json.dumps(args.resources)),
            "parameters": args.parameters}
    # The controller asks the protection service for the provider's schemas over
    # RPC; ProtectionManager.show_provider is what answers there.
    controller = types.SimpleNamespace(protection_api=protection.manager)
    plans.PlansController.validate_plan_resources(controller, body)
    plans.PlansController.validate_plan_parameters(controller, ctxt, body)
    for resource in body["resources"]:
        if resource.get("extra_info") is not None:
            resource["extra_info"] = jsonutils.dumps(resource["extra_info"])
    plan = objects.Plan(context=ctxt, name=body["name"], description="",
                        provider_id=args.provider_id, project_id=ctxt.project_id,
                        status=constants.PLAN_STATUS_SUSPENDED,
                        resources=body["resources"], parameters=body["parameters"])
    plan.create()
    return plan


def protect(args, ctxt, bus, protection):
    """checkpoint create (karbor-api: the plan exists; protection: ``protect``)."""
    from oslo_serialization import jsonutils

    from karbor.common import constants
    from karbor import exception
    from karbor import objects
    from karbor.services.protection import checkpoint as checkpoint_mod

    provider = protection.provider(args.provider_id)
    collection = provider.get_checkpoint_collection()
    try:
        existing = collection.get(args.checkpoint_id)
    except exception.CheckpointNotFound:
        existing = None
    if existing is not None:
        plan = objects.Plan.get_by_id(ctxt, existing.protection_plan["id"])
    else:
        try:
            plan = create_plan(ctxt, protection, args)
        except Exception as exc:  # noqa: BLE001 - the plans API answers 400
            return {"operation": "protect", "api_error": _error(exc), "rpc_error": None,
                    "flow_error": None, "checkpoint": None}

    # The checkpoints API: the checkpoint's properties, then the RPC call.
    checkpoint_properties = {
        "project_id": ctxt.project_id,
        "status": constants.CHECKPOINT_STATUS_PROTECTING,
        "provider_id": args.provider_id,
        "protection_plan": {"id": plan.get("id"), "name": plan.get("name"),
                            "resources": plan.get("resources")},
        "extra_info": jsonutils.dumps({"created_by": constants.MANUAL}),
    }
    remote_ctxt = bus.context(ctxt)
    remote_plan = bus.entity(remote_ctxt, plan)

    # Karbor's collection picks a random id; this one takes the caller's, and hands
    # back the checkpoint when it is already in the bank.
    def create(plan, checkpoint_properties=None, context=None):
        if existing is not None:
            return collection.get(args.checkpoint_id, context=context)
        return checkpoint_mod.Checkpoint.create_in_section(
            collection._checkpoints_section, collection._indices_section,
            collection._bank_lease, collection._bank.get_owner_id(), plan,
            checkpoint_id=args.checkpoint_id, checkpoint_properties=checkpoint_properties,
            context=context)

    collection.create = create
    error = None
    try:
        protection.manager.protect(remote_ctxt, remote_plan, checkpoint_properties)
    except Exception as exc:  # noqa: BLE001 - what karbor-api's call would raise
        error = _error(exc)
    return {"operation": "protect", "plan_id": plan.get("id"), "api_error": None,
            "rpc_error": error,
            "flow_error": protection.flow_errors[-1] if protection.flow_errors else None,
            "checkpoint": checkpoint_report(provider, args.checkpoint_id)}


def _stored(ctxt, cls, object_id, properties):
    """The API's new object; with ``object_id``, that one (again, or created with it)."""
    from karbor import db
    from karbor import exception

    if object_id is None:
        obj = cls(context=ctxt, **properties)
        obj.create()
        return obj
    not_found = (exception.RestoreNotFound, exception.VerificationNotFound)
    try:
        obj = cls.get_by_id(ctxt, object_id)
    except not_found:
        values = dict(properties, id=object_id)
        for key in cls.json_fields:
            if values.get(key):
                values[key] = json.dumps(values[key])
        create = db.restore_create if cls.__name__ == "Restore" else db.verification_create
        create(ctxt, values)
        return cls.get_by_id(ctxt, object_id)
    obj.status = properties["status"]
    obj.save()
    return obj


def restore(args, ctxt, bus, protection):
    """restore create (karbor-api: a Restore object; protection: ``restore``)."""
    from karbor.common import constants
    from karbor import objects

    obj = _stored(ctxt, objects.Restore, args.object_id, {
        "project_id": ctxt.project_id, "provider_id": args.provider_id,
        "checkpoint_id": args.checkpoint_id, "restore_target": args.restore_target,
        "parameters": args.parameters, "status": constants.RESTORE_STATUS_IN_PROGRESS})
    remote_ctxt = bus.context(ctxt)
    error = None
    try:
        protection.manager.restore(remote_ctxt, bus.entity(remote_ctxt, obj), None)
    except Exception as exc:  # noqa: BLE001 - karbor-api then marks the restore failed
        error = _error(exc)
        obj = objects.Restore.get_by_id(ctxt, obj.id)
        obj.update({"status": constants.RESTORE_STATUS_FAILURE})
        obj.save()
    stored = objects.Restore.get_by_id(ctxt, obj.id)
    return {"operation": "restore", "rpc_error": error,
            "flow_error": protection.flow_errors[-1] if protection.flow_errors else None,
            "restore": _object_report(stored),
            "new_resources": protection.flow_output("new_resources"),
            "checkpoint": checkpoint_report(protection.provider(args.provider_id),
                                            args.checkpoint_id)}


def verify(args, ctxt, bus, protection):
    """verification create (karbor-api: a Verification; protection: ``verification``)."""
    from karbor.common import constants
    from karbor import objects

    obj = _stored(ctxt, objects.Verification, args.object_id, {
        "project_id": ctxt.project_id, "provider_id": args.provider_id,
        "checkpoint_id": args.checkpoint_id, "parameters": args.parameters,
        "status": constants.VERIFICATION_STATUS_IN_PROGRESS})
    remote_ctxt = bus.context(ctxt)
    error = None
    try:
        protection.manager.verification(remote_ctxt, bus.entity(remote_ctxt, obj))
    except Exception as exc:  # noqa: BLE001 - karbor-api then marks it failed
        error = _error(exc)
        obj = objects.Verification.get_by_id(ctxt, obj.id)
        obj.update({"status": constants.VERIFICATION_STATUS_FAILURE})
        obj.save()
    stored = objects.Verification.get_by_id(ctxt, obj.id)
    return {"operation": "verify", "rpc_error": error,
            "flow_error": protection.flow_errors[-1] if protection.flow_errors else None,
            "verification": _object_report(stored),
            "checkpoint": checkpoint_report(protection.provider(args.provider_id),
                                            args.checkpoint_id)}


def delete(args, ctxt, bus, protection):
    """checkpoint delete (protection: ``delete``)."""
    provider = protection.provider(args.provider_id)
    before = checkpoint_report(provider, args.checkpoint_id)
    remote_ctxt = bus.context(ctxt)
    error = None
    try:
        protection.manager.delete(remote_ctxt, args.provider_id, args.checkpoint_id)
    except Exception as exc:  # noqa: BLE001 - what karbor-api's call would raise
        error = _error(exc)
    after = checkpoint_report(provider, args.checkpoint_id)
    # The checkpoint's graph is what tells which resources it had; keep the list.
    for resource_id, entry in before["resources"].items():
        after["resources"].setdefault(resource_id, dict(entry, status=None, metadata=None))
    return {"operation": "delete", "rpc_error": error,
            "flow_error": protection.flow_errors[-1] if protection.flow_errors else None,
            "checkpoint": after}


def _object_report(obj):
    return {"id": obj.id, "status": obj.status, "checkpoint_id": obj.checkpoint_id,
            "parameters": obj.parameters,
            "resources_status": obj.resources_status or {},
            "resources_reason": obj.resources_reason or {}}


def protectables(args, ctxt, bus, protection):
    """karbor-api's protectables calls, answered by ProtectionManager's registry."""
    manager = protection.manager
    remote_ctxt = bus.context(ctxt)
    plugin = manager.protectable_registry.get_protectable_resource_plugin(args.type)
    result = {"operation": "protectables", "action": args.action, "type": args.type,
              "plugin": f"{type(plugin).__module__}:{type(plugin).__name__}"
              if plugin is not None else None,
              "error": None}
    try:
        if args.action == "types":
            result["types"] = sorted(manager.list_protectable_types(remote_ctxt))
            result["show"] = manager.show_protectable_type(remote_ctxt, args.type)
        elif args.action == "list":
            result["resources"] = manager.list_protectable_instances(
                remote_ctxt, protectable_type=args.type, parameters=args.parameters)
        elif args.action == "show":
            result["resource"] = manager.show_protectable_instance(
                remote_ctxt, args.type, args.id, parameters=args.parameters)
        else:
            result["resources"] = manager.list_protectable_dependents(
                remote_ctxt, args.parent_id or ctxt.project_id, args.parent_type,
                args.parent_name)
    except Exception as exc:  # noqa: BLE001 - what karbor-api's call would raise
        result["error"] = _error(exc)
    return result


COMMANDS = {"protect": protect, "restore": restore, "verify": verify, "delete": delete,
            "protectables": protectables}


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        configure(args)
        ensure_schema()
        ctxt = make_context(args.context)
        protection = Protection(args.register_our_protectable)
        result = COMMANDS[args.command](args, ctxt, Bus(), protection)
    except Exception as exc:  # noqa: BLE001 - the driver failed: say how, exit 1
        emit({"result": None, "driver_error": _error(exc)})
        return 1
    import manila_protector

    result["manila_protector"] = os.path.dirname(manila_protector.__file__)
    emit({"result": result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
