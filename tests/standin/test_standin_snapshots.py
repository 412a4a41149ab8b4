"""Snapshots: creation rules, quotas, deletion, metadata (2.73)."""

from __future__ import annotations

import uuid

import pytest
from manilaclient import exceptions


def test_snapshot_is_creating_then_available_after_the_delay(standin, client, project_id, clock):
    standin.config.delays.snapshot_create = 60
    share = standin.create_share(project_id, size=4)
    snapshot = client.share_snapshots.create(share["id"], name="s", description="d")
    assert snapshot.status == "creating"
    clock.advance(59.5)
    assert client.share_snapshots.get(snapshot.id).status == "creating"
    assert client.shares.get(share["id"]).status == "available"  # the share stays available
    clock.advance(0.5)
    shown = client.share_snapshots.get(snapshot.id).to_dict()
    assert shown["status"] == "available"
    assert (shown["share_id"], shown["share_size"], shown["size"]) == (share["id"], 4, 4)
    assert (shown["name"], shown["description"], shown["share_proto"]) == ("s", "d", "NFS")
    assert shown["project_id"] == project_id and shown["user_id"] == "user1"
    assert shown["metadata"] == {} and shown["links"] and shown["created_at"]


def test_snapshot_of_unknown_share_is_not_found(client):
    with pytest.raises(exceptions.NotFound):
        client.share_snapshots.create(str(uuid.uuid4()))


def test_snapshot_of_a_type_without_snapshot_support_is_unprocessable(
    standin, client, project_id
):
    no_snaps = standin.add_share_type("nosnap", snapshot_support=False)
    share = standin.create_share(project_id, share_type=no_snaps)
    with pytest.raises(exceptions.UnprocessableEntity) as raised:
        client.share_snapshots.create(share["id"])
    assert "does not have that capability" in raised.value.message


@pytest.mark.parametrize("status", ["creating", "error", "reverting", "deleting"])
def test_snapshot_of_a_share_not_available_is_refused_even_forced(
    standin, client, project_id, status
):
    share = standin.create_share(project_id, status=status)
    with pytest.raises(exceptions.BadRequest) as raised:
        client.share_snapshots.create(share["id"], force=True)
    assert "Source share status must be available." in raised.value.message
    assert standin.snapshots(share["id"]) == []


def test_two_snapshots_back_to_back_are_both_accepted(standin, client, project_id):
    standin.config.delays.snapshot_create = 10
    share = standin.create_share(project_id)
    first = client.share_snapshots.create(share["id"])
    second = client.share_snapshots.create(share["id"])
    assert {first.status, second.status} == {"creating"}
    assert len(standin.snapshots(share["id"])) == 2


def test_snapshot_quota_count_and_gigabytes(standin, client, project_id):
    share = standin.create_share(project_id, size=10)
    standin.set_quota(project_id, snapshots=1)
    client.share_snapshots.create(share["id"])
    with pytest.raises(exceptions.RequestEntityTooLarge) as raised:
        client.share_snapshots.create(share["id"])
    assert raised.value.message == "Maximum number of snapshots allowed (1) exceeded."
    standin.set_quota(project_id, snapshots=10, snapshot_gigabytes=15)
    with pytest.raises(exceptions.RequestEntityTooLarge) as raised:
        client.share_snapshots.create(share["id"])
    assert "gigabytes quota" in raised.value.message
    assert raised.value.retry_after == 0


def test_default_snapshot_quota_is_50(standin, client, project_id):
    share = standin.create_share(project_id)
    for _ in range(50):
        standin.create_snapshot(share["id"])
    with pytest.raises(exceptions.RequestEntityTooLarge):
        client.share_snapshots.create(share["id"])


def test_snapshot_delete_goes_deleting_then_not_found(standin, client, project_id, clock):
    standin.config.delays.snapshot_delete = 3
    share = standin.create_share(project_id)
    snapshot = standin.create_snapshot(share["id"])
    client.share_snapshots.delete(snapshot["id"])
    assert client.share_snapshots.get(snapshot["id"]).status == "deleting"
    with pytest.raises(exceptions.BadRequest) as raised:
        client.share_snapshots.delete(snapshot["id"])
    assert "status must be one of ('available', 'error')" in raised.value.message
    clock.advance(3)
    with pytest.raises(exceptions.NotFound):
        client.share_snapshots.get(snapshot["id"])
    with pytest.raises(exceptions.NotFound):
        client.share_snapshots.delete(snapshot["id"])
    assert standin.quota_usage(project_id)["snapshots"] == 0


def test_snapshot_in_creating_cannot_be_deleted_but_error_can(standin, client, project_id):
    share = standin.create_share(project_id)
    creating = standin.create_snapshot(share["id"], status="creating")
    failed = standin.create_snapshot(share["id"], status="error")
    with pytest.raises(exceptions.BadRequest):
        client.share_snapshots.delete(creating["id"])
    client.share_snapshots.delete(failed["id"])
    assert standin.snapshot(failed["id"]) is None


def test_force_delete_ignores_the_status(standin, client, project_id):
    share = standin.create_share(project_id)
    creating = standin.create_snapshot(share["id"], status="creating")
    client.share_snapshots.force_delete(creating["id"])
    assert standin.snapshot(creating["id"]) is None


def test_deleting_the_snapshot_a_share_came_from_leaves_the_share(standin, client, project_id):
    parent = standin.create_share(project_id)
    snapshot = standin.create_snapshot(parent["id"])
    child = client.shares.create("NFS", 1, snapshot_id=snapshot["id"])
    client.share_snapshots.delete(snapshot["id"])
    assert client.shares.get(child.id).status == "available"


def test_snapshot_metadata_at_create_and_crud(standin, client, project_id):
    share = standin.create_share(project_id)
    snapshot = client.share_snapshots.create(share["id"], metadata={"job": "j"})
    assert client.share_snapshots.get(snapshot.id).metadata == {"job": "j"}
    client.share_snapshots.set_metadata(snapshot.id, {"plan": "p"})
    assert client.share_snapshots.get_metadata(snapshot.id).to_dict() == {
        "job": "j", "plan": "p"
    }
    client.share_snapshots.update_all_metadata(snapshot.id, {"only": "this"})
    assert client.share_snapshots.get_metadata(snapshot.id).to_dict() == {"only": "this"}
    client.share_snapshots.delete_metadata(snapshot.id, ["only"])
    assert client.share_snapshots.get(snapshot.id).metadata == {}


def test_snapshot_metadata_is_not_found_below_2_73(standin, make_client, project_id):
    snapshot = standin.create_snapshot(standin.create_share(project_id)["id"])
    old = make_client(f"user1:{project_id}", version="2.72")
    with pytest.raises(exceptions.NotFound):
        old.share_snapshots.get_metadata(snapshot["id"])
    with pytest.raises(exceptions.NotFound):
        old.share_snapshots.set_metadata(snapshot["id"], {"a": "b"})
    assert "metadata" not in old.share_snapshots.get(snapshot["id"]).to_dict()


def test_snapshot_metadata_sent_below_2_73_is_ignored(standin, http, project_id):
    share = standin.create_share(project_id)
    answer = http(
        "POST", "/v2/snapshots", token=f"u:{project_id}", version="2.72",
        json={"snapshot": {"share_id": share["id"], "metadata": {"a": "b"}}},
    )
    assert answer.status_code == 202
    assert standin.snapshot(answer.json()["snapshot"]["id"])["metadata"] == {}


def test_snapshot_rename(standin, client, project_id):
    snapshot = standin.create_snapshot(standin.create_share(project_id)["id"], name="a")
    client.share_snapshots.update(snapshot["id"], display_name="b")
    assert client.share_snapshots.get(snapshot["id"]).name == "b"
