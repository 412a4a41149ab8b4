"""Karbor 1.6.0's flows on our protection plugin, direct mode, the Manila stand-in.

Each test is what a Karbor user does (create a checkpoint, a restore, a verification,
delete the checkpoint) and checks what that user would see: Karbor's statuses, the
checkpoint's bank sections, and the shares and snapshots in Manila.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from support import karbor_flows
from support.karbor_flows import SHARE, share_resource

pytestmark = [pytest.mark.functional, pytest.mark.karbor]

#: Plan parameters for shares, as a user sets them in Karbor (the plugin's options).
PARAMETERS = {SHARE: {"snapshot_name": "nightly", "description": "karbor tier",
                      "force": False}}
RULES = [{"access_type": "ip", "access_to": "10.1.0.0/16", "access_level": "rw"},
         {"access_type": "ip", "access_to": "10.2.0.7", "access_level": "ro"}]
#: Seconds a test waits for a condition in Manila.
WAIT = 60.0


def _rules(manila, share_id):
    return sorted((r["access_type"], r["access_to"], r["access_level"])
                  for r in manila.access_rules(share_id))


def _wait_until(what, predicate, timeout=WAIT):
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        pause.wait(0.05)


def test_checkpoint_of_two_shares_restores_verifies_and_is_deleted(karbor, manila, caller):
    first = manila.create_share(caller.project_id, size=1, name="first", access_rules=RULES)
    second = manila.create_share(caller.project_id, size=2, name="second",
                                 access_rules=RULES[:1])
    checkpoint_id = str(uuid.uuid4())

    protected = karbor.protect(caller, [share_resource(first), share_resource(second)],
                               PARAMETERS, checkpoint_id=checkpoint_id)

    assert protected["flow_error"] is None
    assert protected["checkpoint"]["status"] == "available"
    for share in (first, second):
        [snapshot] = manila.snapshots(share_id=share["id"])
        assert (snapshot["status"], snapshot["name"]) == ("available", "nightly")
        section = protected["checkpoint"]["resources"][share["id"]]
        assert section["status"] == "available"
        assert section["metadata"]["snapshot_id"] == snapshot["id"]
        assert section["metadata"]["size"] == share["size"]

    restored = karbor.restore(caller, checkpoint_id, {SHARE: {"restore_name": "back"}})

    assert restored["flow_error"] is None
    assert restored["restore"]["status"] == "success"
    new_ids = restored["new_resources"]
    assert set(new_ids) == {first["id"], second["id"]}
    for share in (first, second):
        new_share = manila.share(new_ids[share["id"]])
        assert (new_share["status"], new_share["name"], new_share["size"]) == (
            "available", "back", share["size"])
        assert _rules(manila, new_share["id"]) == _rules(manila, share["id"])
    # Karbor's own share plugin, too, reports a restored share under its new id.
    assert restored["restore"]["resources_status"] == {
        f"{SHARE}#{new_id}": "available" for new_id in new_ids.values()}

    verified = karbor.verify(caller, checkpoint_id)

    assert verified["flow_error"] is None
    assert verified["verification"]["status"] == "success"
    assert verified["verification"]["resources_status"] == {
        f"{SHARE}#{share['id']}": "available" for share in (first, second)}

    deleted = karbor.delete(caller, checkpoint_id)

    assert deleted["flow_error"] is None
    assert deleted["checkpoint"]["status"] == "deleted"
    for share in (first, second):
        assert manila.snapshots(share_id=share["id"]) == []
        section = deleted["checkpoint"]["resources"][share["id"]]
        assert (section["status"], section["metadata"]) == ("deleted", None)
    # The restored shares are the user's now: deleting the checkpoint keeps them.
    assert all(manila.share(new_id) for new_id in new_ids.values())


def test_restore_leaves_access_rules_out_when_the_restore_says_false(karbor, manila, caller):
    share = manila.create_share(caller.project_id, access_rules=RULES)
    checkpoint_id = str(uuid.uuid4())
    karbor.protect(caller, [share_resource(share)], PARAMETERS, checkpoint_id=checkpoint_id)

    # Karbor keeps restore parameters as strings: the plugin gets "False".
    restored = karbor.restore(caller, checkpoint_id,
                              {SHARE: {"restore_access_rules": False}})

    assert restored["restore"]["status"] == "success"
    new_id = restored["new_resources"][share["id"]]
    assert manila.share(new_id)["status"] == "available"
    assert _rules(manila, new_id) == []


def test_protect_killed_mid_flow_then_run_again_makes_exactly_one_snapshot(
        karbor, manila, caller):
    share = manila.create_share(caller.project_id, access_rules=RULES)
    checkpoint_id = str(uuid.uuid4())
    args = karbor.protect_args([share_resource(share)], PARAMETERS, checkpoint_id)
    main_hook = f"protect_on_main_{SHARE}_{share['id']}"
    # The snapshot stays 'creating' until the test says otherwise.
    manila.config.delays.snapshot_create = 3600

    first = karbor.start("protect", *args, caller=caller)
    first.wait_for_event(lambda e: e.get("task") == main_hook and e["state"] == "RUNNING")
    _wait_until("the snapshot to be asked for", lambda: manila.snapshots(share_id=share["id"]))
    first.kill()

    again = karbor.start("protect", *args, caller=caller)
    again.wait_for_event(lambda e: e.get("task") == main_hook and e["state"] == "RUNNING")
    [snapshot] = manila.snapshots(share_id=share["id"])
    manila.set_snapshot_status(snapshot["id"], "available")
    result = again.result()

    assert result["checkpoint"]["status"] == "available"
    assert [s["id"] for s in manila.snapshots(share_id=share["id"])] == [snapshot["id"]]
    section = result["checkpoint"]["resources"][share["id"]]
    assert section["metadata"]["snapshot_id"] == snapshot["id"]


def test_verify_and_restore_of_a_snapshot_gone_bad_fail_naming_the_snapshot(
        karbor, manila, caller):
    share = manila.create_share(caller.project_id)
    checkpoint_id = str(uuid.uuid4())
    karbor.protect(caller, [share_resource(share)], PARAMETERS, checkpoint_id=checkpoint_id)
    [snapshot] = manila.snapshots(share_id=share["id"])
    manila.set_snapshot_status(snapshot["id"], "error")
    key = f"{SHARE}#{share['id']}"

    verified = karbor.verify(caller, checkpoint_id)
    restored = karbor.restore(caller, checkpoint_id)

    for outcome in (verified["verification"], restored["restore"]):
        assert outcome["status"] == "fail"
        assert outcome["resources_status"] == {key: "error"}
        assert snapshot["id"] in outcome["resources_reason"][key]
    assert restored["new_resources"] == {}
    assert [s["id"] for s in manila.shares(caller.project_id)] == [share["id"]]


def test_provider_file_options_reach_the_plugin(karbor, manila, caller):
    # Karbor builds the plugin with the provider file's own ConfigOpts.
    karbor.write_provider(manila={"max_api_version": "2.40"})
    share = manila.create_share(caller.project_id)

    protected = karbor.protect(caller, [share_resource(share)], PARAMETERS)

    assert protected["checkpoint"]["status"] == "available"
    asked = {r.microversion for r in manila.requests()
             if r.method == "POST" and r.route == "/snapshots"}
    assert asked == {"2.40"}


def test_protect_of_a_missing_share_ends_the_checkpoint_in_error_with_the_reason(
        karbor, manila, caller):
    missing = {"id": str(uuid.uuid4()), "name": "gone"}

    protected = karbor.protect(caller, [share_resource(missing)], PARAMETERS)

    assert protected["checkpoint"]["status"] == "error"
    assert protected["checkpoint"]["resources"][missing["id"]]["status"] == "error"
    # Karbor's own error for a resource that could not be protected, carrying ours.
    assert protected["flow_error"]["type"] == "karbor.exception.CreateResourceFailed"
    assert "not_found: " in protected["flow_error"]["message"]
    assert missing["id"] in protected["flow_error"]["message"]


def test_plan_without_share_parameters_protects_with_karbors_own_defaults(
        karbor, manila, caller):
    # Karbor's plans API accepts a plan without parameters (a finding of this tier: our
    # options schema requires all three); the hook fills in what Karbor's own share
    # plugin would: the snapshot named after the checkpoint, no force.
    share = manila.create_share(caller.project_id)
    checkpoint_id = str(uuid.uuid4())

    protected = karbor.protect(caller, [share_resource(share)], parameters={},
                               checkpoint_id=checkpoint_id)

    assert protected["api_error"] is None
    assert protected["checkpoint"]["status"] == "available", protected["flow_error"]
    [snapshot] = manila.snapshots(share_id=share["id"])
    assert snapshot["name"] == f"{checkpoint_id}@{share['id']}"


def _catalog_deployment(tmp_path, karbor_python):
    """A karbor-protection with no endpoint_override: Manila comes from the catalog."""
    return karbor_flows.Deployment(tmp_path / "karbor-catalog", karbor_python)


def test_protect_finds_manila_in_a_v3_service_catalog(tmp_path, karbor_python, manila, caller):
    catalog = ({"type": "sharev2", "name": "manilav2", "endpoints": [
        {"interface": "public", "region": "RegionOne", "region_id": "RegionOne",
         "url": manila.endpoint}]},)
    share = manila.create_share(caller.project_id)
    karbor = _catalog_deployment(tmp_path, karbor_python)
    token_caller = karbor_flows.Caller(user_id=caller.user_id, project_id=caller.project_id,
                                       service_catalog=catalog)

    protected = karbor.protect(token_caller, [share_resource(share)], PARAMETERS)

    assert protected["checkpoint"]["status"] == "available", protected["flow_error"]
    assert len(manila.snapshots(share_id=share["id"])) == 1


def test_protect_finds_manila_in_a_keystonemiddleware_v2_service_catalog(
        tmp_path, karbor_python, manila, caller):
    catalog = ({"type": "sharev2", "name": "manilav2", "endpoints": [
        {"region": "RegionOne", "publicURL": manila.endpoint,
         "internalURL": manila.endpoint, "adminURL": manila.endpoint}]},)
    share = manila.create_share(caller.project_id)
    karbor = _catalog_deployment(tmp_path, karbor_python)
    token_caller = karbor_flows.Caller(user_id=caller.user_id, project_id=caller.project_id,
                                       service_catalog=catalog)

    protected = karbor.protect(token_caller, [share_resource(share)], PARAMETERS)

    assert protected["checkpoint"]["status"] == "available", protected["flow_error"]
