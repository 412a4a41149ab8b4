"""Reverting a share to its snapshot (>= 2.27)."""

from __future__ import annotations

import uuid

import pytest
from manilaclient import exceptions


@pytest.fixture
def share(standin, project_id):
    return standin.create_share(project_id)


def test_revert_to_latest_goes_reverting_and_restoring_then_available(
    standin, client, share, clock
):
    standin.config.delays.revert = 8
    standin.create_snapshot(share["id"])
    latest = standin.create_snapshot(share["id"])
    client.shares.revert_to_snapshot(share["id"], latest["id"])
    assert client.shares.get(share["id"]).status == "reverting"
    assert client.share_snapshots.get(latest["id"]).status == "restoring"
    clock.advance(8)
    assert client.shares.get(share["id"]).status == "available"
    assert client.share_snapshots.get(latest["id"]).status == "available"


def test_revert_to_a_snapshot_that_is_not_the_latest_conflicts(standin, client, share):
    older = standin.create_snapshot(share["id"])
    newer = standin.create_snapshot(share["id"])
    with pytest.raises(exceptions.Conflict) as raised:
        client.shares.revert_to_snapshot(share["id"], older["id"])
    assert (
        f"Snapshot {older['id']} may not be restored because it is not the most recent "
        f"snapshot of share {share['id']}." in raised.value.message
    )
    assert newer["id"] in raised.value.message
    assert standin.share(share["id"])["status"] == "available"


def test_revert_conflict_answers_a_conflicting_request_fault(standin, http, share):
    older = standin.create_snapshot(share["id"])
    standin.create_snapshot(share["id"])
    answer = http(
        "POST", f"/v2/shares/{share['id']}/action", version="2.98",
        json={"revert": {"snapshot_id": older["id"]}},
    )
    assert answer.status_code == 409
    assert "is not the most recent snapshot of share" in (
        answer.json()["conflictingRequest"]["message"]
    )


def test_a_newer_snapshot_still_creating_makes_the_older_not_latest(
    standin, client, share
):
    older = standin.create_snapshot(share["id"])
    standin.create_snapshot(share["id"], status="creating")
    with pytest.raises(exceptions.Conflict):
        client.shares.revert_to_snapshot(share["id"], older["id"])


@pytest.mark.parametrize("status", ["creating", "error"])
def test_revert_to_a_snapshot_not_available_conflicts(standin, client, share, status):
    snapshot = standin.create_snapshot(share["id"], status=status)
    with pytest.raises(exceptions.Conflict) as raised:
        client.shares.revert_to_snapshot(share["id"], snapshot["id"])
    assert f"is in '{status}' state" in raised.value.message


def test_revert_of_a_share_not_available_conflicts(standin, client, share):
    snapshot = standin.create_snapshot(share["id"])
    standin.set_share_status(share["id"], "error")
    with pytest.raises(exceptions.Conflict):
        client.shares.revert_to_snapshot(share["id"], snapshot["id"])


def test_revert_to_another_shares_snapshot_is_a_bad_request(standin, client, share, project_id):
    other = standin.create_share(project_id)
    foreign = standin.create_snapshot(other["id"])
    with pytest.raises(exceptions.BadRequest) as raised:
        client.shares.revert_to_snapshot(share["id"], foreign["id"])
    assert "is not associated with share" in raised.value.message


def test_revert_without_the_capability_is_a_bad_request(standin, client, project_id):
    no_revert = standin.add_share_type("norevert", revert_to_snapshot_support=False)
    share = standin.create_share(project_id, share_type=no_revert)
    snapshot = standin.create_snapshot(share["id"])
    with pytest.raises(exceptions.BadRequest) as raised:
        client.shares.revert_to_snapshot(share["id"], snapshot["id"])
    assert "does not have that capability" in raised.value.message


def test_revert_to_unknown_snapshot_is_a_bad_request(client, share):
    with pytest.raises(exceptions.BadRequest):
        client.shares.revert_to_snapshot(share["id"], str(uuid.uuid4()))


def test_revert_while_access_rules_change_conflicts(standin, client, share):
    standin.config.delays.access_apply = 5
    snapshot = standin.create_snapshot(share["id"])
    client.shares.allow(share["id"], "ip", "10.0.0.0/24", "rw")
    with pytest.raises(exceptions.Conflict) as raised:
        client.shares.revert_to_snapshot(share["id"], snapshot["id"])
    assert "access rules that are not active" in raised.value.message


def test_revert_action_is_not_found_below_2_27(standin, http, share):
    snapshot = standin.create_snapshot(share["id"])
    answer = http(
        "POST", f"/v2/shares/{share['id']}/action", version="2.26",
        json={"revert": {"snapshot_id": snapshot["id"]}},
    )
    assert answer.status_code == 404
    assert standin.share(share["id"])["status"] == "available"


def test_share_being_reverted_cannot_be_snapshotted(standin, client, share):
    standin.config.delays.revert = 5
    snapshot = standin.create_snapshot(share["id"])
    client.shares.revert_to_snapshot(share["id"], snapshot["id"])
    with pytest.raises(exceptions.BadRequest):
        client.share_snapshots.create(share["id"])


def test_share_from_a_restoring_snapshot_is_refused(standin, client, share):
    standin.config.delays.revert = 5
    snapshot = standin.create_snapshot(share["id"])
    client.shares.revert_to_snapshot(share["id"], snapshot["id"])
    with pytest.raises(exceptions.BadRequest):
        client.shares.create("NFS", 1, snapshot_id=snapshot["id"])
