"""Karbor 1.6.0's protectable registry on our protectable plugin, the Manila stand-in.

The calls are ProtectionManager's, as karbor-api makes them for ``karbor
protectable-list/-show`` and a project's dependents (what a plan of the project
protects). Karbor ships its own ``share`` protectable for ``OS::Manila::Share``; its
registry keeps the last plugin loaded for a type, and that is Karbor's, so every
test but the first registers ours again after loading (``--register-our-protectable``).
"""

from __future__ import annotations

import uuid

import pytest

from support.karbor_flows import SHARE

pytestmark = [pytest.mark.functional, pytest.mark.karbor]

OUR_PLUGIN = "manila_protector.plugins.protectable:ShareProtectablePlugin"


@pytest.mark.xfail(strict=True, reason="Karbor loads every karbor.protectables entry "
                   "point and keeps the last per resource type: its own 'share' plugin "
                   "comes after ours and serves OS::Manila::Share")
def test_karbors_registry_serves_shares_with_our_protectable(karbor, caller):
    listed = karbor.protectables(caller, "types", register_our_protectable=False)

    assert listed["plugin"] == OUR_PLUGIN


def test_registry_lists_the_callers_shares_and_no_other_projects(karbor, manila, caller):
    ours = [manila.create_share(caller.project_id, name=f"mine-{i}") for i in range(2)]
    manila.create_share(uuid.uuid4().hex, name="theirs")

    listed = karbor.protectables(caller, "list")

    assert listed["error"] is None
    assert listed["plugin"] == OUR_PLUGIN
    assert sorted((r["id"], r["name"]) for r in listed["resources"]) == sorted(
        (s["id"], s["name"]) for s in ours)


def test_registry_shows_a_share_with_its_status_size_and_protocol(karbor, manila, caller):
    share = manila.create_share(caller.project_id, size=3, share_proto="CIFS", name="shown")

    shown = karbor.protectables(caller, "show", "--id", share["id"])

    assert shown["error"] is None
    assert shown["resource"]["type"] == SHARE
    assert (shown["resource"]["id"], shown["resource"]["name"]) == (share["id"], "shown")
    assert shown["resource"]["extra_info"] == {
        "status": "available", "size": 3, "share_proto": "CIFS",
        "availability_zone": share["availability_zone"]}


def test_registry_answers_not_found_for_a_missing_share(karbor, manila, caller):
    missing = str(uuid.uuid4())

    shown = karbor.protectables(caller, "show", "--id", missing)

    assert shown["error"]["type"] == "karbor.exception.ProtectableResourceNotFound"
    assert missing in shown["error"]["message"]


def test_registry_finds_a_projects_shares_as_its_dependents(karbor, manila, caller):
    ours = [manila.create_share(caller.project_id, name=f"dep-{i}") for i in range(3)]
    manila.create_share(uuid.uuid4().hex, name="elsewhere")

    found = karbor.protectables(caller, "dependents", "--parent-id", caller.project_id)

    assert found["error"] is None
    # Karbor's other plugins (Nova, Cinder, ...) fail without Keystone and are skipped.
    shares = [r for r in found["resources"] if r["type"] == SHARE]
    assert sorted(r["id"] for r in shares) == sorted(s["id"] for s in ours)
