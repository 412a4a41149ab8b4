"""Both plugins driven exactly as Karbor 1.6.0 drives them (see karbor-contract.md).

The plugins are loaded through their entry points with stevedore, the protection
plugin is built from a provider file's own ConfigOpts, every hook is called as
``hook(checkpoint, resource, context, parameters, **kwargs)`` with Karbor's extra
arguments and Karbor's string-valued parameters, and Manila is found through the
context's service catalog -- against the Manila stand-in, with real python-manilaclient.
"""

from __future__ import annotations

import inspect
import json
import socket

import pytest
from oslo_config import cfg
from stevedore import driver
from stevedore import extension

from manila_protector import exception
from manila_protector.plugins import resources

from support import karbor_shapes as karbor


#: What Karbor hands a protect hook: plan parameters are stored as strings.
PROTECT_PARAMETERS = {"snapshot_name": "nightly", "description": "d", "force": "False"}

#: The spec's schemas, typed from manila-share-protection-plugins.rst.
SPEC_OPTIONS_SCHEMA = {
    "title": "Share Protection Options",
    "type": "object",
    "properties": {
        "snapshot_name": {
            "type": "string",
            "title": "Snapshot Name",
            "description": "The name of the snapshot."
        },
        "description": {
            "type": "string",
            "title": "Description",
            "description": "The description of the share snapshot."
        },
        "force": {
            "type": "boolean",
            "title": "Force",
            "description": "Optional flag to indicate whether to snapshot a share even if "
                           "it's busy.",
            "default": False
        }
    },
    "required": ["snapshot_name", "description", "force"]
}
SPEC_RESTORE_SCHEMA = {
    "title": "Share Protection Restore",
    "type": "object",
    "properties": {
        "share_id": {
            "type": "string",
            "title": "Share ID",
            "description": "The target share ID to restore to."
        },
        "restore_name": {
            "type": "string",
            "title": "Restore Name",
            "description": "The name of the restored share.",
            "default": None
        },
        "restore_description": {
            "type": "string",
            "title": "Restore Description",
            "description": "The description of the restored share.",
            "default": None
        }
    }
}

# -- fixtures ----------------------------------------------------------------------------


def karbor_context(standin, project, is_admin=False):
    return karbor.KarborContext(
        user_id="karbor-user", project_id=project, project_name="demo",
        roles=["member", "reader"], is_admin=is_admin, auth_token=f"user:{project}",
        service_catalog=karbor.sharev2_catalog(standin.endpoint))


@pytest.fixture
def context(standin, project):
    return karbor_context(standin, project)


@pytest.fixture
def provider_config(tmp_path):
    # The stand-in finishes at once; a short first poll interval keeps the real-time
    # waits of a plugin built as Karbor builds it (no clock to inject) short.
    return karbor.karbor_provider_config(
        karbor.write_provider_file(tmp_path, ["poll_initial_interval = 0.01"]))


@pytest.fixture
def plugin(provider_config):
    return karbor.load_protection_plugin(provider_config)


@pytest.fixture
def resource(share):
    return resources.Resource(karbor.SHARE_TYPE, share["id"], share["name"])


def protect(plugin, checkpoint, resource, context, parameters=None):
    karbor.run_hooks(plugin.get_protect_operation(resource), checkpoint, resource, context,
              PROTECT_PARAMETERS if parameters is None else parameters,
              operation_log=karbor.OperationLog())


def restore(plugin, checkpoint, resource, context, parameters=None, karbor_restore=None):
    karbor_restore = karbor_restore or karbor.Restore()
    new_resources: dict[str, str] = {}
    karbor.run_hooks(plugin.get_restore_operation(resource), checkpoint, resource, context,
              {} if parameters is None else parameters, restore=karbor_restore,
              new_resources=new_resources, operation_log=karbor.OperationLog())
    return karbor_restore, new_resources


def verify(plugin, checkpoint, resource, context):
    karbor_verify = karbor.Verify()
    karbor.run_hooks(plugin.get_verify_operation(resource), checkpoint, resource, context, {},
              verify=karbor_verify, new_resources={}, operation_log=karbor.OperationLog())
    return karbor_verify


def delete(plugin, checkpoint, resource, context):
    karbor.run_hooks(plugin.get_delete_operation(resource), checkpoint, resource, context, {},
              operation_log=karbor.OperationLog())


def rule_keys(rules):
    return sorted((r["access_type"], r["access_to"], r["access_level"]) for r in rules)


def mutations(standin):
    return standin.count_requests(mutating=True)


# -- loading -----------------------------------------------------------------------------


def test_protectable_plugin_is_found_through_its_entry_point():
    manager = extension.ExtensionManager(namespace="karbor.protectables", invoke_on_load=True)
    assert "share" in manager.names()
    plugin = manager["share"].obj
    assert plugin.get_resource_type() == karbor.SHARE_TYPE
    assert tuple(plugin.get_parent_resource_types()) == (karbor.PROJECT_TYPE,)


def test_provider_file_is_enabled_and_names_the_plugin(provider_config):
    assert provider_config.provider.enabled is True
    assert provider_config.provider.plugin == ["manila-share-protection-plugin"]
    assert provider_config.provider.bank


def test_protection_plugin_loads_through_its_entry_point_as_karbor_builds_it(provider_config):
    plugin_class = driver.DriverManager("karbor.protections",
                                        "manila-share-protection-plugin").driver
    assert inspect.isclass(plugin_class)
    types = plugin_class.get_supported_resources_types()
    assert types == [karbor.SHARE_TYPE]
    schemas = {
        "options": plugin_class.get_options_schema(karbor.SHARE_TYPE),
        "restore": plugin_class.get_restore_schema(karbor.SHARE_TYPE),
        "saved_info": plugin_class.get_saved_info_schema(karbor.SHARE_TYPE),
        "verify": plugin_class.get_verify_schema(karbor.SHARE_TYPE),
    }
    # Karbor's API hands these out as JSON.
    assert json.loads(json.dumps(schemas)) == schemas
    plugin = plugin_class(provider_config)
    assert plugin.get_supported_resources_types() == [karbor.SHARE_TYPE]


def test_loading_the_plugin_needs_no_manila(tmp_path, context, resource, share):
    # Karbor loads providers at start-up; Manila may not be reachable then.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/v2"
    provider_config = karbor.karbor_provider_config(
        karbor.write_provider_file(tmp_path, [f"endpoint_override = {closed}"]))

    plugin = karbor.load_protection_plugin(provider_config)

    assert plugin.get_supported_resources_types() == [karbor.SHARE_TYPE]
    checkpoint = karbor.Checkpoint()
    with pytest.raises(exception.ManilaUnavailable) as info:
        protect(plugin, checkpoint, resource, context)
    assert info.value.retryable
    assert checkpoint.get_resource_bank_section(share["id"]).get_object("status") == "error"


def test_every_hook_accepts_karbors_extra_arguments(plugin, resource):
    operations = [plugin.get_protect_operation(resource), plugin.get_restore_operation(resource),
                  plugin.get_verify_operation(resource), plugin.get_delete_operation(resource)]
    for operation in operations:
        for name in karbor.HOOKS:
            parameters = inspect.signature(getattr(operation, name)).parameters.values()
            kinds = [p.kind for p in parameters]
            assert inspect.Parameter.VAR_KEYWORD in kinds, (operation, name)
            positional = [p.name for p in parameters
                          if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
            assert positional == ["checkpoint", "resource", "context", "parameters"]


def test_options_schema_is_the_specs(plugin):
    schema = plugin.get_options_schema(karbor.SHARE_TYPE)
    assert schema["title"] == SPEC_OPTIONS_SCHEMA["title"]
    assert schema["type"] == SPEC_OPTIONS_SCHEMA["type"]
    assert schema["properties"] == SPEC_OPTIONS_SCHEMA["properties"]
    assert schema["required"] == SPEC_OPTIONS_SCHEMA["required"]


def test_restore_schema_holds_the_specs_properties(plugin):
    schema = plugin.get_restore_schema(karbor.SHARE_TYPE)
    assert schema["title"] == SPEC_RESTORE_SCHEMA["title"]
    assert schema["type"] == SPEC_RESTORE_SCHEMA["type"]
    spec_properties = SPEC_RESTORE_SCHEMA["properties"]
    assert {k: schema["properties"][k] for k in spec_properties} == spec_properties
    # The one documented addition; nothing is required, as in the spec.
    assert set(schema["properties"]) - set(spec_properties) == {"restore_access_rules"}
    assert not schema.get("required")


def test_schemas_handed_out_cannot_change_the_plugins_own(plugin, context, resource,
                                                          standin):
    handed_out = plugin.get_options_schema(karbor.SHARE_TYPE)
    handed_out["required"].clear()
    handed_out["properties"]["force"]["type"] = "string"
    assert (plugin.get_options_schema(karbor.SHARE_TYPE)["required"]
            == SPEC_OPTIONS_SCHEMA["required"])
    before = mutations(standin)
    with pytest.raises(exception.InvalidRequest):
        protect(plugin, karbor.Checkpoint(), resource, context,
                {"snapshot_name": "n", "description": "", "force": "perhaps"})
    assert mutations(standin) == before


def test_a_plan_without_parameters_protects_with_karbors_own_defaults(
        standin, plugin, context, resource, share):
    # Karbor accepts a plan without parameters; its own share plugin names the snapshot
    # itself and forces nothing, and so does ours.
    checkpoint = karbor.Checkpoint()
    protect(plugin, checkpoint, resource, context, {})
    [snapshot] = standin.snapshots(share_id=share["id"])
    assert snapshot["name"] == f"{checkpoint.id}@{share['id']}"
    assert snapshot["description"] == ""
    saved = checkpoint.get_resource_bank_section(share["id"]).get_object("metadata")
    assert saved["snapshot_id"] == snapshot["id"]


def test_unsupported_resource_type_is_refused_by_the_schema_calls(plugin):
    with pytest.raises(exception.InvalidRequest):
        plugin.get_options_schema("OS::Cinder::Volume")


# -- protectable -------------------------------------------------------------------------


@pytest.fixture
def protectable():
    manager = extension.ExtensionManager(namespace="karbor.protectables", invoke_on_load=True)
    return manager["share"].obj


def test_protectable_lists_shows_and_finds_the_callers_shares(standin, protectable, context,
                                                              project, other_project):
    mine = standin.create_share(project, name="mine", size=3)
    broken = standin.create_share(project, name="broken")
    standin.set_share_status(broken["id"], "error")
    standin.create_share(other_project, name="theirs", is_public=True)
    instance = protectable.instance(context, cfg.ConfigOpts())

    listed = instance.list_resources(context)
    shown = instance.show_resource(context, mine["id"])
    dependents = instance.get_dependent_resources(
        context, resources.Resource(karbor.PROJECT_TYPE, project, "demo"))

    expected = resources.Resource(karbor.SHARE_TYPE, mine["id"], "mine")
    assert listed == [expected]
    assert shown == expected
    assert dependents == [expected]
    assert shown.type == karbor.SHARE_TYPE
    assert shown.extra_info["size"] == 3
    assert {r.project_id for r in standin.requests() if r.route != "/"} == {project}


def test_protectable_instance_without_conf_finds_manila_in_the_catalog(standin, protectable,
                                                                       context, project):
    # Karbor's registry may call instance(context) alone and keep that instance.
    mine = standin.create_share(project, name="mine")
    assert [r.id for r in protectable.instance(context).list_resources(context)] == [mine["id"]]


def test_one_protectable_instance_answers_each_caller_for_its_own_project(
        standin, protectable, project, other_project):
    mine = standin.create_shares(project, 2)
    theirs = standin.create_shares(other_project, 3)
    context_a = karbor_context(standin, project)
    context_b = karbor_context(standin, other_project)
    instance = protectable.instance(context_a, cfg.ConfigOpts())

    assert sorted(r.id for r in instance.list_resources(context_b)) == sorted(theirs)
    assert sorted(r.id for r in instance.list_resources(context_a)) == sorted(mine)
    assert sorted(r.id for r in instance.get_dependent_resources(
        context_b, resources.Resource(karbor.PROJECT_TYPE, other_project, "b"))) == sorted(theirs)


def test_protectable_refuses_another_projects_shares_to_a_member(standin, protectable,
                                                                 factory, project,
                                                                 other_project):
    theirs = standin.create_share(other_project, name="theirs", is_public=True)
    token = f"tok-member-{project}"
    standin.register_token(token, "karbor-user", project, roles=["member", "reader"])
    context = karbor_context(standin, project)
    context.auth_token = token
    instance = protectable.instance(context, cfg.ConfigOpts())

    assert instance.list_resources(context) == []
    with pytest.raises(exception.NotFound):
        instance.show_resource(context, theirs["id"])
    standin.reset_requests()
    with pytest.raises(exception.NotAuthorized):
        instance.get_dependent_resources(
            context, resources.Resource(karbor.PROJECT_TYPE, other_project, "other"))
    assert standin.count_requests() == 0


def test_protectable_gives_an_admin_the_dependents_of_any_project(standin, protectable,
                                                                  project, other_project):
    theirs = standin.create_shares(other_project, 3)
    standin.create_shares(project, 2)
    admin = karbor_context(standin, project, is_admin=True)
    instance = protectable.instance(admin, cfg.ConfigOpts())
    found = instance.get_dependent_resources(
        admin, resources.Resource(karbor.PROJECT_TYPE, other_project, "other"))
    assert sorted(r.id for r in found) == sorted(theirs)


def test_protectable_show_of_an_unprotectable_share_names_its_status(standin, protectable,
                                                                     context, project):
    bad = standin.create_share(project)
    standin.set_share_status(bad["id"], "extending_error")
    with pytest.raises(exception.InvalidStatus) as info:
        protectable.instance(context).show_resource(context, bad["id"])
    assert "extending_error" in str(info.value)


# -- protect / restore / verify / delete ---------------------------------------------------


def test_protect_keeps_available_status_and_saved_info_in_the_bank(standin, plugin, context,
                                                                   resource, share):
    checkpoint = karbor.Checkpoint()
    protect(plugin, checkpoint, resource, context)

    section = checkpoint.get_resource_bank_section(share["id"])
    assert section.get_object("status") == "available"
    saved = section.get_object("metadata")
    snapshot = standin.snapshot(saved["snapshot_id"])
    assert snapshot["status"] == "available"
    assert snapshot["share_id"] == share["id"]
    assert snapshot["name"] == "nightly"
    assert snapshot["description"] == "d"
    assert saved["share_id"] == share["id"]
    assert saved["size"] == snapshot["share_size"] == 2
    assert saved["share_proto"] == "NFS"
    assert saved["snapshot_name"] == "nightly"
    assert saved["created_at"] == snapshot["created_at"]
    assert saved["metadata"] == {"owner": "team-a"}
    assert rule_keys(saved["access_rules"]) == rule_keys(standin.access_rules(share["id"]))
    assert plugin.get_saved_info(checkpoint, resource) == saved
    assert len(standin.snapshots(share_id=share["id"])) == 1


def test_protect_hook_run_twice_for_one_checkpoint_makes_one_snapshot(standin, plugin,
                                                                      context, resource,
                                                                      share):
    checkpoint = karbor.Checkpoint()
    protect(plugin, checkpoint, resource, context)
    protect(plugin, checkpoint, resource, context)
    assert len(standin.snapshots(share_id=share["id"])) == 1
    protect(plugin, karbor.Checkpoint(), resource, context)
    assert len(standin.snapshots(share_id=share["id"])) == 2


def test_restore_makes_a_new_available_share_with_the_original_access(standin, plugin,
                                                                      context, resource,
                                                                      share):
    checkpoint = karbor.Checkpoint()
    protect(plugin, checkpoint, resource, context)
    saved = checkpoint.get_resource_bank_section(share["id"]).get_object("metadata")

    karbor_restore, new_resources = restore(plugin, checkpoint, resource, context)

    new_id = new_resources[share["id"]]
    assert new_id != share["id"]
    assert [call[:4] for call in karbor_restore.calls] == [
        ("update", karbor.SHARE_TYPE, new_id, "available"), ("save",)]
    restored = standin.share(new_id)
    assert restored["status"] == "available"
    assert restored["name"] == f"{checkpoint.id}@{share['id']}"
    assert restored["snapshot_id"] == saved["snapshot_id"]
    assert restored["size"] == 2
    assert restored["project_id"] == share["project_id"]
    assert restored["metadata"]["owner"] == "team-a"
    assert rule_keys(standin.access_rules(new_id)) == rule_keys(
        standin.access_rules(share["id"]))
    assert {r["state"] for r in standin.access_rules(new_id)} == {"active"}


def test_restore_takes_name_and_description_and_string_booleans(standin, plugin, context,
                                                                resource, share):
    checkpoint = karbor.Checkpoint()
    protect(plugin, checkpoint, resource, context)
    parameters = {"restore_name": "recovered", "restore_description": "after the fire",
                  "restore_access_rules": "False"}

    _, new_resources = restore(plugin, checkpoint, resource, context, parameters)

    restored = standin.share(new_resources[share["id"]])
    assert restored["name"] == "recovered"
    assert restored["description"] == "after the fire"
    assert standin.access_rules(restored["id"]) == []


def test_two_restores_of_one_checkpoint_make_two_shares(standin, plugin, context, resource,
                                                        share, project):
    checkpoint = karbor.Checkpoint()
    protect(plugin, checkpoint, resource, context)

    _, first = restore(plugin, checkpoint, resource, context)
    _, second = restore(plugin, checkpoint, resource, context)

    assert first[share["id"]] != second[share["id"]]
    assert standin.share(first[share["id"]])["status"] == "available"
    assert standin.share(second[share["id"]])["status"] == "available"
    assert len(standin.shares(project)) == 3


def test_restore_hook_run_twice_for_one_restore_makes_one_share(standin, plugin, context,
                                                                resource, share, project):
    checkpoint = karbor.Checkpoint()
    protect(plugin, checkpoint, resource, context)
    karbor_restore = karbor.Restore()
    _, first = restore(plugin, checkpoint, resource, context, karbor_restore=karbor_restore)
    _, again = restore(plugin, checkpoint, resource, context, karbor_restore=karbor_restore)
    assert first == again
    assert len(standin.shares(project)) == 2


def test_restore_into_the_original_share_reverts_it(standin, plugin, context, resource,
                                                    share):
    checkpoint = karbor.Checkpoint()
    protect(plugin, checkpoint, resource, context)

    karbor_restore, new_resources = restore(plugin, checkpoint, resource, context,
                                            {"share_id": share["id"]})

    assert new_resources == {share["id"]: share["id"]}
    assert [call[:4] for call in karbor_restore.calls] == [
        ("update", karbor.SHARE_TYPE, share["id"], "available"), ("save",)]
    assert standin.share(share["id"])["status"] == "available"
    reverts = [r for r in standin.requests()
               if r.method == "POST" and r.route == f"/shares/{share['id']}/action"]
    assert [r.status for r in reverts] == [202]
    assert [s["id"] for s in standin.shares(share["project_id"])] == [share["id"]]


def test_verify_reports_the_snapshot_available(standin, plugin, context, resource, share):
    checkpoint = karbor.Checkpoint()
    protect(plugin, checkpoint, resource, context)
    before = mutations(standin)

    karbor_verify = verify(plugin, checkpoint, resource, context)

    assert karbor_verify.calls == [(karbor.SHARE_TYPE, share["id"], "available", None)]
    assert mutations(standin) == before


def test_verify_of_a_snapshot_gone_bad_reports_error(standin, plugin, context, resource,
                                                     share):
    checkpoint = karbor.Checkpoint()
    protect(plugin, checkpoint, resource, context)
    saved = checkpoint.get_resource_bank_section(share["id"]).get_object("metadata")
    standin.set_snapshot_status(saved["snapshot_id"], "error")
    karbor_verify = karbor.Verify()

    with pytest.raises(exception.InvalidStatus):
        karbor.run_hooks(plugin.get_verify_operation(resource), checkpoint, resource, context, {},
                  verify=karbor_verify, new_resources={}, operation_log=karbor.OperationLog())

    ((kind, resource_id, status, reason),) = karbor_verify.calls
    assert (kind, resource_id, status) == (karbor.SHARE_TYPE, share["id"], "error")
    assert "'error'" in reason


def test_delete_removes_the_snapshot_and_the_saved_info(standin, plugin, context, resource,
                                                        share):
    checkpoint = karbor.Checkpoint()
    protect(plugin, checkpoint, resource, context)
    section = checkpoint.get_resource_bank_section(share["id"])
    snapshot_id = section.get_object("metadata")["snapshot_id"]

    delete(plugin, checkpoint, resource, context)

    assert section.get_object("status") == "deleted"
    assert not section.has("metadata")
    assert standin.snapshot(snapshot_id) is None
    assert standin.share(share["id"])["status"] == "available"


def test_delete_of_an_already_deleted_snapshot_succeeds(standin, plugin, context, resource,
                                                        share):
    checkpoint = karbor.Checkpoint()
    protect(plugin, checkpoint, resource, context)
    section = checkpoint.get_resource_bank_section(share["id"])
    saved = section.get_object("metadata")
    delete(plugin, checkpoint, resource, context)
    section.update_object("metadata", saved)  # Karbor retries a delete that it saw fail

    delete(plugin, checkpoint, resource, context)

    assert section.get_object("status") == "deleted"


# -- failures ----------------------------------------------------------------------------


def test_failing_protect_leaves_error_in_the_bank_and_names_the_status(standin, plugin,
                                                                       context, resource,
                                                                       share):
    standin.faults.snapshot_error(share["id"])
    checkpoint = karbor.Checkpoint()

    with pytest.raises(exception.OperationFailed) as info:
        protect(plugin, checkpoint, resource, context)

    assert "'error'" in str(info.value)
    section = checkpoint.get_resource_bank_section(share["id"])
    assert section.get_object("status") == "error"
    assert not section.has("metadata")
    assert standin.snapshots(share_id=share["id"]) == []


def test_protect_of_a_share_in_error_leaves_error_in_the_bank(standin, plugin, context,
                                                              resource, share):
    standin.set_share_status(share["id"], "error")
    checkpoint = karbor.Checkpoint()
    with pytest.raises(exception.InvalidStatus) as info:
        protect(plugin, checkpoint, resource, context)
    assert "'error'" in str(info.value)
    assert checkpoint.get_resource_bank_section(share["id"]).get_object("status") == "error"


def test_failing_restore_reports_error_through_the_restore_object(standin, plugin, context,
                                                                  resource, share, project):
    checkpoint = karbor.Checkpoint()
    protect(plugin, checkpoint, resource, context)
    saved = checkpoint.get_resource_bank_section(share["id"]).get_object("metadata")
    standin.faults.share_error_from_snapshot(saved["snapshot_id"])
    karbor_restore = karbor.Restore()

    with pytest.raises(exception.OperationFailed) as info:
        restore(plugin, checkpoint, resource, context, karbor_restore=karbor_restore)

    assert "'error'" in str(info.value)
    (update, save) = karbor_restore.calls
    assert update[:4] == ("update", karbor.SHARE_TYPE, share["id"], "error")
    assert "'error'" in update[4]
    assert save == ("save",)
    assert [s["id"] for s in standin.shares(project)] == [share["id"]]


def test_restore_of_a_checkpoint_whose_protect_failed_reports_error(standin, plugin, context,
                                                                    resource, share):
    standin.faults.snapshot_error(share["id"])
    checkpoint = karbor.Checkpoint()
    with pytest.raises(exception.OperationFailed):
        protect(plugin, checkpoint, resource, context)
    karbor_restore = karbor.Restore()
    before = mutations(standin)

    with pytest.raises(karbor.BankGetObjectFailed):  # the bank's own error reaches Karbor
        restore(plugin, checkpoint, resource, context, karbor_restore=karbor_restore)

    assert [call[:4] for call in karbor_restore.calls] == [
        ("update", karbor.SHARE_TYPE, share["id"], "error"), ("save",)]
    assert mutations(standin) == before


def test_delete_of_a_checkpoint_whose_protect_failed_leaves_error_not_deleting(
        standin, plugin, context, resource, share):
    standin.faults.snapshot_error(share["id"])
    checkpoint = karbor.Checkpoint()
    with pytest.raises(exception.OperationFailed):
        protect(plugin, checkpoint, resource, context)

    with pytest.raises(karbor.BankGetObjectFailed):  # the bank's own error reaches Karbor
        delete(plugin, checkpoint, resource, context)

    assert checkpoint.get_resource_bank_section(share["id"]).get_object("status") == "error"


def test_plugin_takes_its_manila_options_from_the_provider_file(standin, tmp_path, context,
                                                                resource, share):
    provider_config = karbor.karbor_provider_config(
        karbor.write_provider_file(tmp_path, ["max_api_version = 2.72", "list_page_size = 7"]))
    plugin = karbor.load_protection_plugin(provider_config)
    checkpoint = karbor.Checkpoint()

    protect(plugin, checkpoint, resource, context)

    snapshot_id = checkpoint.get_resource_bank_section(share["id"]).get_object(
        "metadata")["snapshot_id"]
    created = [r for r in standin.requests() if r.method == "POST" and r.route == "/snapshots"]
    assert [r.microversion for r in created] == ["2.72"]
    # Below 2.73 a snapshot has no metadata: the retry tag goes into the description.
    assert standin.snapshot(snapshot_id)["description"].startswith("d [manila_protector_job=")


def test_plugin_without_a_manila_endpoint_fails_the_protect_with_error(standin, plugin,
                                                                       context, resource,
                                                                       share):
    context.service_catalog = [e for e in context.service_catalog if e["type"] != "sharev2"]
    checkpoint = karbor.Checkpoint()
    with pytest.raises(exception.Unsupported) as info:
        protect(plugin, checkpoint, resource, context)
    assert "sharev2" in str(info.value)
    assert checkpoint.get_resource_bank_section(share["id"]).get_object("status") == "error"
    assert standin.count_requests() == 0


# -- schema violations: refused before Manila is touched -------------------------------------


@pytest.mark.parametrize("parameters", [
    {"snapshot_name": "nightly", "description": "d", "force": "maybe"},
    {"snapshot_name": 42},
    {"snapshot_name": "nightly", "description": "d", "force": "False", "colour": "red"},
    ["snapshot_name", "nightly"],
    "snapshot_name=nightly",
])
def test_bad_protect_parameters_are_refused_without_mutation(standin, plugin, context,
                                                             resource, share, parameters):
    checkpoint = karbor.Checkpoint()
    before = mutations(standin)

    with pytest.raises(exception.InvalidRequest) as info:
        protect(plugin, checkpoint, resource, context, parameters)

    assert info.value.details["field"].startswith("parameters")
    assert mutations(standin) == before
    assert standin.snapshots(share_id=share["id"]) == []
    assert checkpoint.get_resource_bank_section(share["id"]).get_object("status") == "error"


@pytest.mark.parametrize("parameters", [
    {"restore_nmae": "typo"},
    {"restore_access_rules": "perhaps"},
    ["restore_name", "x"],
])
def test_bad_restore_parameters_are_refused_without_mutation(standin, plugin, context,
                                                             resource, share, parameters):
    checkpoint = karbor.Checkpoint()
    protect(plugin, checkpoint, resource, context)
    karbor_restore = karbor.Restore()
    before = mutations(standin)

    with pytest.raises(exception.InvalidRequest):
        restore(plugin, checkpoint, resource, context, parameters,
                karbor_restore=karbor_restore)

    assert mutations(standin) == before
    assert [call[:4] for call in karbor_restore.calls] == [
        ("update", karbor.SHARE_TYPE, share["id"], "error"), ("save",)]


CORRUPTIONS = {
    "not_an_object": lambda saved: "snapshot-123",
    "snapshot_id_not_a_string": lambda saved: {**saved, "snapshot_id": 5},
    "size_missing": lambda saved: {k: v for k, v in saved.items() if k != "size"},
    "bad_access_level": lambda saved: {**saved, "access_rules": [
        {"access_type": "ip", "access_to": "10.0.0.1", "access_level": "admin"}]},
}


@pytest.mark.parametrize("operation", ["restore", "verify", "delete"])
@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupt_saved_info_is_refused_without_mutation(standin, plugin, context, resource,
                                                        share, operation, corruption):
    checkpoint = karbor.Checkpoint()
    protect(plugin, checkpoint, resource, context)
    section = checkpoint.get_resource_bank_section(share["id"])
    snapshot_id = section.get_object("metadata")["snapshot_id"]
    section.update_object("metadata", CORRUPTIONS[corruption](section.get_object("metadata")))
    before = mutations(standin)

    with pytest.raises(exception.InvalidRequest) as info:
        if operation == "restore":
            restore(plugin, checkpoint, resource, context)
        elif operation == "verify":
            verify(plugin, checkpoint, resource, context)
        else:
            delete(plugin, checkpoint, resource, context)

    assert info.value.details["field"].startswith("saved_info")
    assert mutations(standin) == before
    assert standin.snapshot(snapshot_id)["status"] == "available"
    if operation == "delete":
        assert section.get_object("status") == "error"


def test_verify_with_parameters_is_refused(standin, plugin, context, resource, share):
    checkpoint = karbor.Checkpoint()
    protect(plugin, checkpoint, resource, context)
    karbor_verify = karbor.Verify()
    with pytest.raises(exception.InvalidRequest):
        karbor.run_hooks(plugin.get_verify_operation(resource), checkpoint, resource, context,
                  {"deep": "True"}, verify=karbor_verify, new_resources={},
                  operation_log=karbor.OperationLog())
    assert [call[:3] for call in karbor_verify.calls] == [(karbor.SHARE_TYPE, share["id"], "error")]
