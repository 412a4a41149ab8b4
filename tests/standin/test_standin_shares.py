"""Shares: creation, creation from snapshots, deletion, metadata, quotas, errors."""

from __future__ import annotations

import uuid

import pytest
from manilaclient import exceptions


def test_share_is_creating_then_available_after_the_delay(standin, client, clock):
    standin.config.delays.share_create = 30
    share = client.shares.create("NFS", 1, name="data")
    assert share.status == "creating"
    clock.advance(29)
    assert client.shares.get(share.id).status == "creating"
    clock.advance(1)
    assert client.shares.get(share.id).status == "available"


def test_share_answer_has_manila_fields(standin, client, project_id):
    share = client.shares.create(
        "NFS", 2, name="data", description="d", metadata={"k": "v"}
    )
    shown = client.shares.get(share.id).to_dict()
    assert shown["share_type"] == standin.default_share_type_id
    assert shown["share_type_name"] == "default"
    assert shown["project_id"] == project_id
    assert shown["user_id"] == "user1"
    assert shown["metadata"] == {"k": "v"}
    assert shown["availability_zone"] == "nova"
    assert shown["snapshot_support"] is True
    assert shown["create_share_from_snapshot_support"] is True
    assert shown["revert_to_snapshot_support"] is True
    assert shown["access_rules_status"] == "active"
    assert shown["is_public"] is False and shown["size"] == 2
    assert "export_locations" not in shown  # moved to its own API at 2.9
    locations = client.share_export_locations.list(share.id)
    assert len(locations) == 1 and locations[0].path.endswith(share.id.replace("-", "_"))


def test_zero_delays_answer_creating_and_show_available_next(client):
    share = client.shares.create("NFS", 1)
    assert share.status == "creating"
    assert client.shares.get(share.id).status == "available"


def test_share_from_snapshot_is_creating_from_snapshot_then_available(
    standin, client, make_client, project_id, clock
):
    standin.config.delays.share_create = 10
    parent = standin.create_share(project_id, size=3)
    snapshot = client.share_snapshots.create(parent["id"])
    child = client.shares.create("NFS", None, snapshot_id=snapshot.id)
    assert child.status == "creating_from_snapshot"
    old = make_client(f"user1:{project_id}", version="2.53")
    assert old.shares.get(child.id).status == "creating"
    clock.advance(10)
    shown = client.shares.get(child.id)
    assert (shown.status, shown.size, shown.snapshot_id) == ("available", 3, snapshot.id)


def test_share_from_snapshot_with_size_zero_takes_the_snapshot_size(standin, client, project_id):
    parent = standin.create_share(project_id, size=5)
    snapshot = standin.create_snapshot(parent["id"])
    child = client.shares.create("NFS", 0, snapshot_id=snapshot["id"])
    assert child.size == 5


def test_share_from_snapshot_smaller_than_snapshot_is_rejected(standin, client, project_id):
    parent = standin.create_share(project_id, size=5)
    snapshot = standin.create_snapshot(parent["id"])
    with pytest.raises(exceptions.BadRequest) as raised:
        client.shares.create("NFS", 4, snapshot_id=snapshot["id"])
    assert "must be equal or greater than snapshot size" in raised.value.message


def test_share_from_snapshot_inherits_the_parent_share_network(standin, client, project_id):
    network = standin.add_share_network(project_id)
    parent = standin.create_share(project_id, share_network_id=network)
    snapshot = standin.create_snapshot(parent["id"])
    child = client.shares.create("NFS", 1, snapshot_id=snapshot["id"])
    assert child.share_network_id == network
    other = standin.add_share_network(project_id)
    with pytest.raises(exceptions.BadRequest) as raised:
        client.shares.create("NFS", 1, snapshot_id=snapshot["id"], share_network=other)
    assert "Share network ID should be the same" in raised.value.message


def test_share_from_snapshot_keeps_the_parent_type_and_refuses_another(
    standin, client, project_id
):
    gold = standin.add_share_type("gold")
    parent = standin.create_share(project_id, share_type=gold)
    snapshot = standin.create_snapshot(parent["id"])
    child = client.shares.create("NFS", 1, snapshot_id=snapshot["id"])
    assert child.share_type == gold
    with pytest.raises(exceptions.BadRequest) as raised:
        client.shares.create("NFS", 1, snapshot_id=snapshot["id"], share_type="default")
    assert "must match the type of the source share" in raised.value.message


def test_share_from_snapshot_needs_the_parent_capability(standin, client, project_id):
    plain = standin.add_share_type("plain", create_share_from_snapshot_support=False)
    parent = standin.create_share(project_id, share_type=plain)
    snapshot = standin.create_snapshot(parent["id"])
    with pytest.raises(exceptions.BadRequest) as raised:
        client.shares.create("NFS", 1, snapshot_id=snapshot["id"])
    assert "does not have that capability" in raised.value.message


@pytest.mark.parametrize("status", ["creating", "restoring", "error"])
def test_share_from_a_snapshot_not_available_is_rejected(standin, client, project_id, status):
    parent = standin.create_share(project_id)
    snapshot = standin.create_snapshot(parent["id"], status=status)
    with pytest.raises(exceptions.BadRequest) as raised:
        client.shares.create("NFS", 1, snapshot_id=snapshot["id"])
    assert "status must be 'available'" in raised.value.message


def test_share_from_unknown_snapshot_is_not_found(client):
    with pytest.raises(exceptions.NotFound):
        client.shares.create("NFS", 1, snapshot_id=str(uuid.uuid4()))


def test_unknown_share_type_is_not_found(client):
    with pytest.raises(exceptions.NotFound) as raised:
        client.shares.create("NFS", 1, share_type="no-such-type")
    assert raised.value.message == "Share type not found."


def test_unknown_protocol_and_bad_size_are_bad_requests(client):
    with pytest.raises(exceptions.BadRequest):
        client.shares.create("NFSX", 1)
    with pytest.raises(exceptions.BadRequest):
        client.shares.create("NFS", -1)


def test_share_delete_goes_deleting_then_not_found(standin, client, project_id, clock):
    standin.config.delays.share_delete = 5
    share = standin.create_share(project_id)
    client.shares.delete(share["id"])
    assert client.shares.get(share["id"]).status == "deleting"
    clock.advance(5)
    with pytest.raises(exceptions.NotFound):
        client.shares.get(share["id"])
    assert standin.quota_usage(project_id)["shares"] == 0


def test_share_with_snapshots_cannot_be_deleted(standin, client, project_id):
    share = standin.create_share(project_id)
    standin.create_snapshot(share["id"])
    standin.create_snapshot(share["id"], status="creating")
    with pytest.raises(exceptions.Forbidden) as raised:
        client.shares.delete(share["id"])
    assert "Share still has 2 dependent snapshots." in raised.value.message
    with pytest.raises(exceptions.BadRequest):
        client.shares.force_delete(share["id"])


def test_share_in_transition_cannot_be_deleted(standin, client, project_id):
    share = standin.create_share(project_id, status="creating")
    with pytest.raises(exceptions.Forbidden) as raised:
        client.shares.delete(share["id"])
    assert "Share status must be one of" in raised.value.message
    client.shares.force_delete(share["id"])
    with pytest.raises(exceptions.NotFound):
        client.shares.get(share["id"])


def test_share_that_never_got_a_host_is_gone_at_once(standin, client):
    standin.faults.share_create_error()
    share = client.shares.create("NFS", 1)
    assert client.shares.get(share.id).status == "error"
    client.shares.delete(share.id)
    with pytest.raises(exceptions.NotFound):
        client.shares.get(share.id)


def test_unknown_share_answers_item_not_found(client, http):
    with pytest.raises(exceptions.NotFound):
        client.shares.get(str(uuid.uuid4()))
    with pytest.raises(exceptions.NotFound):
        client.shares.delete(str(uuid.uuid4()))
    answer = http("GET", f"/v2/shares/{uuid.uuid4()}", version="2.98")
    assert answer.json()["itemNotFound"]["code"] == 404


def test_share_metadata_merge_replace_and_delete(standin, client, project_id):
    share = standin.create_share(project_id, metadata={"a": "1"})
    client.shares.set_metadata(share["id"], {"b": "2"})
    assert client.shares.get_metadata(share["id"]).to_dict() == {"a": "1", "b": "2"}
    client.shares.update_all_metadata(share["id"], {"c": "3"})
    assert client.shares.get_metadata(share["id"]).to_dict() == {"c": "3"}
    client.shares.delete_metadata(share["id"], ["c"])
    assert client.shares.get(share["id"]).metadata == {}
    with pytest.raises(exceptions.NotFound):
        client.shares.delete_metadata(share["id"], ["missing"])


def test_share_list_filters_by_metadata(standin, client, project_id):
    tagged = standin.create_share(project_id, metadata={"backup_of": "x"})
    standin.create_share(project_id, metadata={"backup_of": "y"})
    found = client.shares.list(search_opts={"is_public": False, "metadata": {"backup_of": "x"}})
    assert [s.id for s in found] == [tagged["id"]]


def test_share_quota_is_enforced_with_413_and_retry_after(standin, client, project_id):
    standin.set_quota(project_id, shares=1, gigabytes=10)
    client.shares.create("NFS", 1)
    with pytest.raises(exceptions.RequestEntityTooLarge) as raised:
        client.shares.create("NFS", 1)
    assert raised.value.message == "Maximum number of shares allowed (1) exceeded."
    assert raised.value.retry_after == 0
    standin.set_quota(project_id, shares=5)
    with pytest.raises(exceptions.RequestEntityTooLarge) as raised:
        client.shares.create("NFS", 10)
    assert "gigabytes quota" in raised.value.message


def test_default_share_quota_is_50(standin, client, project_id):
    standin.create_shares(project_id, 50)
    with pytest.raises(exceptions.RequestEntityTooLarge):
        client.shares.create("NFS", 1)


def test_quota_fault_body_is_over_limit(standin, http, project_id):
    standin.set_quota(project_id, shares=0)
    answer = http(
        "POST", "/v2/shares", token=f"u:{project_id}", version="2.98",
        json={"share": {"share_proto": "NFS", "size": 1}},
    )
    assert answer.status_code == 413
    assert answer.headers["Retry-After"] == "0"
    assert answer.json()["overLimit"]["retryAfter"] == "0"


def test_malformed_json_is_a_bad_request(http):
    answer = http(
        "POST", "/v2/shares", version="2.98", data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert answer.json()["badRequest"]["message"] == "Malformed request body"


def test_share_body_without_share_key_is_unprocessable(http):
    answer = http("POST", "/v2/shares", version="2.98", json={"volume": {}})
    assert answer.status_code == 422


def test_share_update_renames(standin, client, project_id):
    share = standin.create_share(project_id, name="old")
    client.shares.update(share["id"], display_name="new")
    assert client.shares.get(share["id"]).name == "new"


def test_share_types_list_show_and_default(standin, client):
    gold = standin.add_share_type("gold", revert_to_snapshot_support=False)
    names = {t.name for t in client.share_types.list()}
    assert names == {"default", "gold"}
    shown = client.share_types.get(gold)
    assert shown.extra_specs["revert_to_snapshot_support"] == "False"
    assert client.share_types.get().name == "default"
    default = client.share_types.get(standin.default_share_type_id)
    assert default.extra_specs["driver_handles_share_servers"] == "False"
    assert default.is_default is True


def test_availability_zones_default_to_nova(client):
    assert [z.name for z in client.availability_zones.list()] == ["nova"]


def test_unknown_availability_zone_is_not_found(client):
    with pytest.raises(exceptions.NotFound):
        client.shares.create("NFS", 1, availability_zone="mars")


def test_unknown_share_network_is_not_found(client):
    with pytest.raises(exceptions.NotFound):
        client.shares.create("NFS", 1, share_network=str(uuid.uuid4()))
