"""The Manila API the worker relies on, asked directly: the same answers from the stand-in
and from Manila 23 (states, refusals, policy). A difference here is a stand-in bug."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from manilaclient import exceptions as manila_exc

from support import manila_backends

pytestmark = [pytest.mark.contract, pytest.mark.functional]


def observed(read, until, timeout: float = 30.0) -> list:
    """The distinct values ``read()`` returns (polled every 20 ms) until ``until(value)``."""
    seen: list = []
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        try:
            value = read()
        except manila_exc.NotFound:
            value = "gone"
        if not seen or seen[-1] != value:
            seen.append(value)
        if until(value):
            return seen
        assert time.monotonic() < deadline, f"still changing after {timeout:g} s: {seen}"
        pause.wait(0.02)


def distinct(values) -> list:
    """``values`` without consecutive repeats."""
    found: list = []
    for value in values:
        if not found or found[-1] != value:
            found.append(value)
    return found


def refusal(call) -> tuple[int, str]:
    with pytest.raises(manila_exc.ClientException) as raised:
        call()
    return raised.value.http_status, raised.value.message


def snapshot_made(backend, manila, share_id: str, **kwargs) -> str:
    snapshot = manila.share_snapshots.create(share_id, **kwargs)
    assert snapshot.status == "creating"
    backend.wait_snapshot(snapshot.id, {"available"})
    return snapshot.id


def test_shares_and_snapshots_pass_through_creating_and_deleting(backend):
    project = backend.new_project()
    manila = backend.client(project.token)

    share = manila.shares.create("NFS", 1, share_type=backend.share_types.snapshots)
    assert share.status == "creating"
    assert observed(lambda: manila.shares.get(share.id).status,
                    lambda s: s != "creating") == ["creating", "available"]
    snapshot = manila.share_snapshots.create(share.id, metadata={"job": "x"})
    assert (snapshot.status, snapshot.metadata) == ("creating", {"job": "x"})
    assert observed(lambda: manila.share_snapshots.get(snapshot.id).status,
                    lambda s: s != "creating") == ["creating", "available"]
    child = manila.shares.create("NFS", 0, snapshot_id=snapshot.id)
    assert (child.status, child.size) == ("creating", 1)
    assert observed(lambda: manila.shares.get(child.id).status,
                    lambda s: s != "creating") == ["creating", "available"]
    assert manila.shares.get(child.id).share_type == share.share_type

    manila.share_snapshots.delete(snapshot.id)  # a share made from it does not hold it
    assert observed(lambda: manila.share_snapshots.get(snapshot.id).status,
                    lambda s: s == "gone") == ["deleting", "gone"]
    manila.shares.delete(child.id)
    assert observed(lambda: manila.shares.get(child.id).status,
                    lambda s: s == "gone") == ["deleting", "gone"]


def test_revert_passes_through_reverting_and_restoring(backend):
    project = backend.new_project()
    manila = backend.client(project.token)
    share = backend.create_share(project)
    snapshot_id = snapshot_made(backend, manila, share["id"])

    manila.shares.revert_to_snapshot(share["id"], snapshot_id)

    states = observed(lambda: (manila.shares.get(share["id"]).status,
                               manila.share_snapshots.get(snapshot_id).status),
                      lambda s: s == ("available", "available"))
    # Two reads, not one: each sequence on its own.
    assert distinct(share for share, _ in states) == ["reverting", "available"]
    assert distinct(snapshot for _, snapshot in states) == ["restoring", "available"]


def test_access_rules_queue_then_apply_while_the_share_syncs(backend):
    project = backend.new_project()
    manila = backend.client(project.token)
    share = backend.create_share(project)

    rule = manila.shares.allow(share["id"], "ip", "10.0.0.0/24", "rw")

    assert rule["state"] == "queued_to_apply"
    states = observed(lambda: (manila.shares.get(share["id"]).access_rules_status,
                               [r.state for r in manila.share_access_rules.access_list(
                                   share["id"])]),
                      lambda s: s == ("active", ["active"]))
    seen = distinct(rules[0] for _, rules in states)  # the queue may be left before a poll
    order = ["queued_to_apply", "applying", "active"]
    assert seen == order[order.index(seen[0]):], seen
    # The share is read first: it syncs while its rule is not active (and, on Manila 23,
    # a moment after: too short to assert).
    assert all(status == "syncing" for status, rules in states if rules != ["active"])
    assert refusal(lambda: manila.shares.allow(share["id"], "ip", "10.0.0.0/24", "rw"))[0] == 400


def test_manila_refuses_what_the_worker_must_expect(backend):
    project = backend.new_project()
    manila = backend.client(project.token)
    share = backend.create_share(project)
    older = snapshot_made(backend, manila, share["id"])
    latest = snapshot_made(backend, manila, share["id"])
    broken = backend.create_share(project)
    backend.put_share_in_error(broken["id"])
    plain = backend.create_share(project, share_type=backend.share_types.no_snapshots)
    slow = backend.create_share(project, share_type=backend.share_types.slow_snapshots)
    making = manila.share_snapshots.create(slow["id"]).id
    missing = str(uuid.uuid4())

    code, message = refusal(lambda: manila.shares.revert_to_snapshot(share["id"], older))
    assert code == 409 and "not the most recent snapshot" in message
    code, message = refusal(lambda: manila.shares.revert_to_snapshot(slow["id"], making))
    assert code == 409 and "'creating' state" in message
    code, message = refusal(lambda: manila.share_snapshots.create(broken["id"], force=True))
    assert (code, message) == (400, "Invalid share: Source share status must be available.")
    code, message = refusal(lambda: manila.share_snapshots.create(plain["id"]))
    assert code == 422 and "does not have that capability" in message
    code, message = refusal(lambda: manila.shares.delete(share["id"]))
    assert code == 403 and "dependent snapshots" in message
    assert refusal(lambda: manila.shares.delete(slow["id"]))[0] == 403
    code, message = refusal(lambda: manila.share_snapshots.delete(making))
    assert code == 400 and "status must be one of" in message
    assert refusal(lambda: manila.shares.create(
        "NFS", 1, snapshot_id=latest, share_type=backend.share_types.slow_snapshots))[0] == 400
    assert refusal(lambda: manila.shares.get(missing)) == (404, "The resource could not be found.")
    assert refusal(lambda: manila.share_snapshots.get(missing)) == (
        404, "The resource could not be found.")
    assert refusal(lambda: manila.share_snapshots.delete(missing)) == (
        404, "The resource could not be found.")
    assert refusal(lambda: manila.shares.revert_to_snapshot(share["id"], missing)) == (
        400, f"Snapshot {missing} could not be found.")
    assert refusal(lambda: manila.share_snapshots.create(missing)) == (
        404, "NotFound: Resource could not be found.")
    assert refusal(lambda: manila.shares.create("NFS", 1, snapshot_id=missing)) == (
        404, f"ShareSnapshotNotFound: Snapshot {missing} could not be found.")
    backend.wait_snapshot(making, {"available"}, timeout=30 + backend.slow_snapshot_seconds)


def test_policy_hides_other_projects_and_keeps_admin_actions_for_admins(backend):
    owner, stranger, operator = (backend.new_project("bob"), backend.new_project("mallory"),
                                 backend.new_project("root"))
    share = backend.create_share(owner)
    snapshot_id = snapshot_made(backend, backend.client(owner.token), share["id"])
    member = manila_backends._client(backend.policy_endpoint, backend.policy_token(
        stranger.id, "mallory", ("member",)))  # keystone implies reader from member
    own = backend.create_share(stranger)
    admin = manila_backends._client(backend.policy_endpoint, backend.policy_token(
        operator.id, "root", ("admin",)))

    not_found = (404, "The resource could not be found.")
    assert refusal(lambda: member.shares.get(share["id"])) == not_found
    assert refusal(lambda: member.shares.delete(share["id"])) == not_found
    assert refusal(lambda: member.share_snapshots.get(snapshot_id)) == not_found
    assert refusal(lambda: member.share_snapshots.delete(snapshot_id)) == not_found
    assert refusal(lambda: member.share_snapshots.create(share["id"]))[0] == 404
    assert refusal(lambda: member.shares.revert_to_snapshot(share["id"], snapshot_id))[0] == 404
    assert refusal(lambda: member.shares.create("NFS", 1, snapshot_id=snapshot_id))[0] == 404
    assert refusal(lambda: member.shares.allow(share["id"], "ip", "10.0.0.1", "rw")) == (
        404, "NotFound: Resource could not be found.")
    assert refusal(lambda: member.shares.revert_to_snapshot(own["id"], snapshot_id)) == (
        400, f"Snapshot {snapshot_id} could not be found.")
    assert [s.id for s in member.shares.list(search_opts={"all_tenants": 1})] == [own["id"]]
    denied = (403, "Access was denied to this resource.")
    assert refusal(lambda: member.shares.reset_state(own["id"], "error")) == denied
    assert refusal(lambda: member.shares.force_delete(own["id"])) == denied
    assert refusal(lambda: member.share_types.create(f"t-{uuid.uuid4().hex[:8]}", False)) == denied

    made = admin.share_snapshots.create(share["id"])
    assert made.project_id == operator.id  # a snapshot is its maker's, not the share's owner's
    backend.wait_snapshot(made.id, {"available"})
    assert admin.shares.get(share["id"]).project_id == owner.id
    taken = backend.share_types.snapshots  # an admin passes the policy; the name is taken
    assert refusal(lambda: admin.share_types.create(taken, False)) == (
        409, f"Share Type {taken} already exists.")
