"""Karbor 1.6.0's protectable registry on our protectable plugin: each mode, each Manila.

The calls are ProtectionManager's, as karbor-api makes them for ``karbor
protectable-list/-show`` and a project's dependents (what a plan of the project
protects). The protectable plugin runs in Karbor's process in both dispatch modes
(``[dispatch]`` routes the protection plugin's jobs only); in worker mode the
deployment has no ``endpoint_override``, so Manila comes from the caller's catalog.

Karbor ships its own ``share`` protectable for ``OS::Manila::Share``; its registry
keeps the last plugin loaded for a type, in the order the entry points are found
(see ``doc/usage.rst``, "Karbor's own share protectable"), so every test but the first
registers ours again after loading (``--register-our-protectable``), as the documented
deployment (Karbor's ``share`` entry point removed) would have it.
"""

from __future__ import annotations

import uuid

import pytest

from support import karbor_flows
from support.karbor_flows import SHARE

pytestmark = [pytest.mark.functional, pytest.mark.karbor]

OUR_PLUGIN = "manila_protector.plugins.protectable:ShareProtectablePlugin"
KARBORS_PLUGIN = "karbor.services.protection.protectable_plugins.share:ShareProtectablePlugin"


def test_karbors_registry_serves_shares_with_whichever_share_plugin_it_found_last(
        deploy):
    # The evidence for the documented limitation: with both distributions installed,
    # Karbor's registry serves OS::Manila::Share with the plugin of the distribution
    # found last; here ours comes first on sys.path (the checkout), so Karbor's wins.
    caller = karbor_flows.Caller(user_id="alice", project_id=uuid.uuid4().hex)

    listed = deploy().protectables(caller, "types", register_our_protectable=False)

    assert SHARE in listed["types"]
    assert listed["plugin"] == KARBORS_PLUGIN


def test_registry_lists_the_callers_shares_and_no_other_projects(
        karbor, backend, tenant, caller):
    ours = [backend.create_share(tenant, name=f"mine-{i}") for i in range(2)]
    backend.create_share(backend.new_project(), name="theirs")

    listed = karbor.protectables(caller, "list")

    assert listed["error"] is None
    assert listed["plugin"] == OUR_PLUGIN
    assert sorted((r["id"], r["name"]) for r in listed["resources"]) == sorted(
        (s["id"], s["name"]) for s in ours)


def test_registry_shows_a_share_with_its_status_size_and_protocol(
        karbor, backend, tenant, caller):
    share = backend.create_share(tenant, size=3, share_proto="CIFS", name="shown")

    shown = karbor.protectables(caller, "show", "--id", share["id"])

    assert shown["error"] is None
    assert shown["resource"]["type"] == SHARE
    assert (shown["resource"]["id"], shown["resource"]["name"]) == (share["id"], "shown")
    assert shown["resource"]["extra_info"] == {
        "status": "available", "size": 3, "share_proto": "CIFS",
        "availability_zone": share["availability_zone"]}


def test_registry_answers_not_found_for_a_missing_share(karbor, caller):
    missing = str(uuid.uuid4())

    shown = karbor.protectables(caller, "show", "--id", missing)

    assert shown["error"]["type"] == "karbor.exception.ProtectableResourceNotFound"
    assert missing in shown["error"]["message"]


def test_registry_finds_a_projects_shares_as_its_dependents(karbor, backend, tenant, caller):
    ours = [backend.create_share(tenant, name=f"dep-{i}") for i in range(3)]
    backend.create_share(backend.new_project(), name="elsewhere")

    found = karbor.protectables(caller, "dependents", "--parent-id", tenant.id)

    assert found["error"] is None
    # Karbor's other plugins (Nova, Cinder, ...) fail without Keystone and are skipped.
    shares = [r for r in found["resources"] if r["type"] == SHARE]
    assert sorted(r["id"] for r in shares) == sorted(s["id"] for s in ours)
