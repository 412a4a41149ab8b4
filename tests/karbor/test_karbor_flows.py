"""Karbor 1.6.0's flows on our protection plugin: each mode, each Manila.

Each test is what a Karbor user does (create a checkpoint, a restore, a verification,
delete the checkpoint) and checks what that user would see: Karbor's statuses, the
checkpoint's bank sections, the shares and snapshots in Manila -- and in worker mode
what an operator sees of the worker: its ``.start``/``.end`` notifications per hook.
"""

from __future__ import annotations

import types
import uuid

import pytest

from manila_protector.plugins import dispatch

from support import karbor_flows
from support import rabbit
from support.karbor_flows import SHARE, share_resource

pytestmark = [pytest.mark.functional, pytest.mark.karbor]

#: Plan parameters for shares, as a user sets them in Karbor (the plugin's options).
PARAMETERS = {SHARE: {"snapshot_name": "nightly", "description": "karbor tier",
                      "force": False}}
RULES = (("ip", "10.1.0.0/16", "rw"), ("ip", "10.2.0.7", "ro"))
#: Seconds a test waits for a condition in Manila or for a notification.
WAIT = 60.0


def _rules(backend, share_id):
    return sorted((r["access_type"], r["access_to"], r["access_level"])
                  for r in backend.access_rules(share_id))


def _job_id(operation, owner_id, share_id):
    """The job id the hook derives from Karbor's checkpoint, restore or verification."""
    return dispatch.karbor_job_id(operation, types.SimpleNamespace(id=owner_id), share_id)


def _assert_worker_announced(karbor_worker, operation, owner_id, shares, request_id):
    """The worker sent ``.start`` then ``.end`` for the hook's job on each share, carrying
    the request id of Karbor's context."""
    job_ids = [_job_id(operation, owner_id, share["id"]) for share in shares]
    collector = karbor_worker.notifications.collector
    collector.wait_for(lambda c: all(c.terminal(j) for j in job_ids), WAIT,
                       f"the end of the {operation} jobs")
    for job_id in job_ids:
        assert collector.events(job_id) == [f"manila_protector.{operation}.start",
                                            f"manila_protector.{operation}.end"]
        [end] = collector.terminal(job_id)
        assert end["payload"]["request_id"] == request_id


def test_checkpoint_of_two_shares_restores_verifies_and_is_deleted(
        request, mode, karbor, backend, tenant, caller):
    first = backend.create_share(tenant, size=1, name="first", access_rules=RULES)
    second = backend.create_share(tenant, size=2, name="second", access_rules=RULES[:1])
    checkpoint_id = str(uuid.uuid4())
    steps = []

    def announced(operation, owner_id, run_caller):
        if mode == "worker":
            _assert_worker_announced(request.getfixturevalue("karbor_worker"), operation,
                                     owner_id, (first, second), run_caller.request_id)
            steps.append(operation)

    def step_caller():
        return karbor_flows.Caller(user_id=caller.user_id, project_id=caller.project_id,
                                   service_catalog=caller.service_catalog,
                                   request_id=f"req-{uuid.uuid4()}")

    protect_caller = step_caller()
    protected = karbor.protect(protect_caller, [share_resource(first), share_resource(second)],
                               PARAMETERS, checkpoint_id=checkpoint_id)

    assert protected["flow_error"] is None
    assert protected["checkpoint"]["status"] == "available"
    for share in (first, second):
        [snapshot] = backend.snapshots(share["id"])
        assert (snapshot["status"], snapshot["name"]) == ("available", "nightly")
        section = protected["checkpoint"]["resources"][share["id"]]
        assert section["status"] == "available"
        assert section["metadata"]["snapshot_id"] == snapshot["id"]
        assert section["metadata"]["size"] == share["size"]
    announced("protect", checkpoint_id, protect_caller)

    restore_caller = step_caller()
    restored = karbor.restore(restore_caller, checkpoint_id, {SHARE: {"restore_name": "back"}})

    assert restored["flow_error"] is None
    assert restored["restore"]["status"] == "success"
    new_ids = restored["new_resources"]
    assert set(new_ids) == {first["id"], second["id"]}
    for share in (first, second):
        new_share = backend.share(new_ids[share["id"]])
        assert (new_share["status"], new_share["name"], new_share["size"]) == (
            "available", "back", share["size"])
        assert new_share["project_id"] == tenant.id
        assert _rules(backend, new_share["id"]) == _rules(backend, share["id"])
    # Karbor's own share plugin, too, reports a restored share under its new id.
    assert restored["restore"]["resources_status"] == {
        f"{SHARE}#{new_id}": "available" for new_id in new_ids.values()}
    announced("restore", restored["restore"]["id"], restore_caller)

    verify_caller = step_caller()
    verified = karbor.verify(verify_caller, checkpoint_id)

    assert verified["flow_error"] is None
    assert verified["verification"]["status"] == "success"
    assert verified["verification"]["resources_status"] == {
        f"{SHARE}#{share['id']}": "available" for share in (first, second)}
    announced("verify", verified["verification"]["id"], verify_caller)

    delete_caller = step_caller()
    deleted = karbor.delete(delete_caller, checkpoint_id)

    assert deleted["flow_error"] is None
    assert deleted["checkpoint"]["status"] == "deleted"
    for share in (first, second):
        assert backend.snapshots(share["id"]) == []
        section = deleted["checkpoint"]["resources"][share["id"]]
        assert (section["status"], section["metadata"]) == ("deleted", None)
    # The restored shares are the user's now: deleting the checkpoint keeps them.
    assert all(backend.share(new_id) for new_id in new_ids.values())
    announced("delete", checkpoint_id, delete_caller)
    assert steps == ([] if mode == "direct" else ["protect", "restore", "verify", "delete"])


def test_restore_leaves_access_rules_out_when_the_restore_says_false(
        karbor, backend, tenant, caller):
    share = backend.create_share(tenant, access_rules=RULES)
    checkpoint_id = str(uuid.uuid4())
    karbor.protect(caller, [share_resource(share)], PARAMETERS, checkpoint_id=checkpoint_id)

    # Karbor keeps restore parameters as strings: the plugin gets "False".
    restored = karbor.restore(caller, checkpoint_id,
                              {SHARE: {"restore_access_rules": False}})

    assert restored["restore"]["status"] == "success", restored["restore"]
    new_id = restored["new_resources"][share["id"]]
    assert backend.share(new_id)["status"] == "available"
    assert _rules(backend, new_id) == []


def test_protect_killed_mid_flow_then_run_again_makes_exactly_one_snapshot(
        karbor, backend, tenant, caller):
    # A snapshot of this type takes seconds: the kill comes while it is being made.
    share = backend.create_share(tenant, share_type=backend.share_types.slow_snapshots,
                                 access_rules=RULES)
    checkpoint_id = str(uuid.uuid4())
    args = karbor.protect_args([share_resource(share)], PARAMETERS, checkpoint_id)
    main_hook = f"protect_on_main_{SHARE}_{share['id']}"

    first = karbor.start("protect", *args, caller=caller)
    first.wait_for_event(lambda e: e.get("task") == main_hook and e["state"] == "RUNNING")
    rabbit.wait_until(lambda: backend.snapshots(share["id"]), WAIT,
                      "the snapshot to be asked for")
    first.kill()

    result = karbor.start("protect", *args, caller=caller).result()

    assert result["checkpoint"]["status"] == "available", result["flow_error"]
    [snapshot] = backend.snapshots(share["id"])
    assert snapshot["status"] == "available"
    section = result["checkpoint"]["resources"][share["id"]]
    assert section["metadata"]["snapshot_id"] == snapshot["id"]


def test_verify_and_restore_of_a_snapshot_gone_bad_fail_naming_the_snapshot(
        karbor, backend, tenant, caller):
    share = backend.create_share(tenant)
    checkpoint_id = str(uuid.uuid4())
    karbor.protect(caller, [share_resource(share)], PARAMETERS, checkpoint_id=checkpoint_id)
    [snapshot] = backend.snapshots(share["id"])
    backend.put_snapshot_in_error(snapshot["id"])
    key = f"{SHARE}#{share['id']}"

    verified = karbor.verify(caller, checkpoint_id)
    restored = karbor.restore(caller, checkpoint_id)

    for outcome in (verified["verification"], restored["restore"]):
        assert outcome["status"] == "fail"
        assert outcome["resources_status"] == {key: "error"}
        assert snapshot["id"] in outcome["resources_reason"][key]
    assert restored["new_resources"] == {}
    assert [s["id"] for s in backend.shares(tenant.id)] == [share["id"]]


def test_protect_of_a_missing_share_ends_the_checkpoint_in_error_with_the_reason(
        karbor, caller):
    missing = {"id": str(uuid.uuid4()), "name": "gone"}

    protected = karbor.protect(caller, [share_resource(missing)], PARAMETERS)

    assert protected["checkpoint"]["status"] == "error"
    assert protected["checkpoint"]["resources"][missing["id"]]["status"] == "error"
    # Karbor's own error for a resource that could not be protected, carrying ours.
    assert protected["flow_error"]["type"] == "karbor.exception.CreateResourceFailed"
    assert "not_found: " in protected["flow_error"]["message"]
    assert missing["id"] in protected["flow_error"]["message"]


def test_plan_without_share_parameters_protects_with_karbors_own_defaults(
        karbor, backend, tenant, caller):
    # Karbor's plans API accepts a plan without parameters (a finding of this tier: our
    # options schema requires all three); the hook fills in what Karbor's own share
    # plugin would: the snapshot named after the checkpoint, no force.
    share = backend.create_share(tenant)
    checkpoint_id = str(uuid.uuid4())

    protected = karbor.protect(caller, [share_resource(share)], parameters={},
                               checkpoint_id=checkpoint_id)

    assert protected["api_error"] is None
    assert protected["checkpoint"]["status"] == "available", protected["flow_error"]
    [snapshot] = backend.snapshots(share["id"])
    assert snapshot["name"] == f"{checkpoint_id}@{share['id']}"


def test_protect_and_restore_find_manila_in_a_keystonemiddleware_catalog_without_an_endpoint(
        deploy, mode, backend, tenant):
    # No [manila] endpoint_override anywhere (provider file, karbor.conf, the worker's):
    # Manila comes from the v2-form catalog of Karbor's RequestContext.
    karbor = deploy(mode, manila_endpoint=None)
    share = backend.create_share(tenant, access_rules=RULES[:1])
    token_caller = karbor_flows.Caller(user_id=tenant.user_id, project_id=tenant.id,
                                       service_catalog=karbor_flows.v2_catalog(backend.endpoint))
    checkpoint_id = str(uuid.uuid4())

    protected = karbor.protect(token_caller, [share_resource(share)], PARAMETERS,
                               checkpoint_id=checkpoint_id)
    restored = karbor.restore(token_caller, checkpoint_id)

    assert protected["checkpoint"]["status"] == "available", protected["flow_error"]
    assert len(backend.snapshots(share["id"])) == 1
    assert restored["restore"]["status"] == "success", restored["restore"]
    new_id = restored["new_resources"][share["id"]]
    assert _rules(backend, new_id) == _rules(backend, share["id"])


def test_protect_finds_manila_in_a_tokens_v3_catalog_without_an_endpoint(
        deploy, mode, make_standin):
    manila = make_standin()
    karbor = deploy(mode, manila_endpoint=None)
    project = uuid.uuid4().hex
    share = manila.create_share(project)
    token_caller = karbor_flows.Caller(user_id="alice", project_id=project,
                                       service_catalog=karbor_flows.v3_catalog(manila.endpoint))

    protected = karbor.protect(token_caller, [share_resource(share)], PARAMETERS)

    assert protected["checkpoint"]["status"] == "available", protected["flow_error"]
    assert len(manila.snapshots(share_id=share["id"])) == 1


def test_provider_file_options_reach_the_plugin(deploy, make_standin):
    # Karbor builds the plugin with the provider file's own ConfigOpts (direct mode: in
    # worker mode the worker's own [manila] applies). The stand-in records requests.
    manila = make_standin()
    karbor = deploy("direct", manila.endpoint)
    karbor.write_provider(manila={"max_api_version": "2.40"})
    project = uuid.uuid4().hex
    share = manila.create_share(project)
    caller = karbor_flows.Caller(user_id="alice", project_id=project)

    protected = karbor.protect(caller, [share_resource(share)], PARAMETERS)

    assert protected["checkpoint"]["status"] == "available"
    asked = {r.microversion for r in manila.requests()
             if r.method == "POST" and r.route == "/snapshots"}
    assert asked == {"2.40"}


def test_a_job_longer_than_the_call_monitor_timeout_is_kept_alive_by_heartbeats(
        deploy, make_standin, karbor_worker):
    # Worker mode: the worker's heartbeats reach the call that Karbor's own
    # oslo.messaging (14.6, under eventlet) makes, so a snapshot that takes well over
    # call_monitor_timeout does not fail the hook.
    manila = make_standin()
    manila.config.delays.snapshot_create = 8.0
    karbor = deploy("worker")
    karbor.dispatch["call_monitor_timeout"] = "3"
    karbor.write_provider()
    project = uuid.uuid4().hex
    share = manila.create_share(project)
    caller = karbor_flows.Caller(user_id="alice", project_id=project,
                                 service_catalog=karbor_flows.v2_catalog(manila.endpoint))

    protected = karbor.protect(caller, [share_resource(share)], PARAMETERS)

    assert protected["checkpoint"]["status"] == "available", protected["flow_error"]
    [snapshot] = manila.snapshots(share_id=share["id"])
    assert snapshot["status"] == "available"
