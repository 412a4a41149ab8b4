"""The conflict detector: overlapping mutations of one share are recorded."""

from __future__ import annotations

import concurrent.futures

import pytest
from manilaclient import exceptions


@pytest.fixture
def share(standin, project_id):
    return standin.create_share(project_id)


def test_two_overlapping_snapshot_creates_are_accepted_and_recorded(
    standin, client, share, clock
):
    standin.config.delays.snapshot_create = 10
    first = client.share_snapshots.create(share["id"])
    clock.advance(4)
    client.share_snapshots.create(share["id"])
    (conflict,) = standin.conflicts()
    assert conflict.share_id == share["id"]
    assert (conflict.first_operation, conflict.second_operation) == (
        "snapshot_create", "snapshot_create"
    )
    assert conflict.second_at - conflict.first_started_at == pytest.approx(4)
    assert conflict.first_ready_at - conflict.first_started_at == pytest.approx(10)
    assert conflict.second_accepted and conflict.second_status == 202
    assert conflict.first_request_id == standin.requests()[-2].request_id
    assert client.share_snapshots.get(first.id).status == "creating"


def test_sequential_operations_do_not_conflict(standin, client, share, clock):
    standin.config.delays.snapshot_create = 10
    standin.config.delays.snapshot_delete = 10
    snapshot = client.share_snapshots.create(share["id"])
    clock.advance(10)
    client.share_snapshots.delete(snapshot.id)
    clock.advance(10)
    client.share_snapshots.create(share["id"])
    assert standin.conflicts() == []


def test_zero_delay_operations_back_to_back_do_not_conflict(standin, client, share):
    snapshot = client.share_snapshots.create(share["id"])
    client.shares.set_metadata(share["id"], {"a": "b"})
    client.shares.revert_to_snapshot(share["id"], snapshot.id)
    client.share_snapshots.delete(snapshot.id)
    assert standin.conflicts() == []


def test_a_rejected_operation_during_an_open_one_is_recorded_as_refused(
    standin, client, share
):
    standin.config.delays.snapshot_create = 10
    client.share_snapshots.create(share["id"])
    with pytest.raises(exceptions.Forbidden):
        client.shares.delete(share["id"])
    (conflict,) = standin.conflicts()
    assert conflict.second_operation == "share_delete"
    assert conflict.second_status == 403 and not conflict.second_accepted


def test_share_from_snapshot_counts_on_the_parent_and_the_new_share(
    standin, client, share, clock
):
    standin.config.delays.share_create = 10
    snapshot = standin.create_snapshot(share["id"])
    child = client.shares.create("NFS", 1, snapshot_id=snapshot["id"])
    client.shares.set_metadata(share["id"], {"k": "v"})
    client.shares.set_metadata(child.id, {"k": "v"})
    recorded = {(c.share_id, c.first_operation, c.second_operation) for c in standin.conflicts()}
    assert recorded == {
        (share["id"], "share_create_from_snapshot", "share_metadata_set"),
        (child.id, "share_create_from_snapshot", "share_metadata_set"),
    }


def test_access_change_during_a_revert_is_recorded(standin, client, share):
    standin.config.delays.revert = 10
    snapshot = standin.create_snapshot(share["id"])
    client.shares.revert_to_snapshot(share["id"], snapshot["id"])
    client.shares.allow(share["id"], "ip", "10.0.0.1", "rw")
    (conflict,) = standin.conflicts()
    assert (conflict.first_operation, conflict.second_operation) == ("revert", "access_allow")


def test_snapshot_delete_counts_on_the_parent_share(standin, client, share):
    standin.config.delays.snapshot_delete = 10
    first = standin.create_snapshot(share["id"])
    second = standin.create_snapshot(share["id"])
    client.share_snapshots.delete(first["id"])
    client.share_snapshots.delete(second["id"])
    (conflict,) = standin.conflicts()
    assert conflict.share_id == share["id"]
    assert conflict.second_operation == "snapshot_delete"


def test_stuck_operation_stays_open(standin, client, share, clock):
    standin.faults.share_stuck(share["id"])
    snapshot = standin.create_snapshot(share["id"])
    client.shares.revert_to_snapshot(share["id"], snapshot["id"])
    clock.advance(86400)
    with pytest.raises(exceptions.BadRequest):
        client.share_snapshots.create(share["id"])
    (conflict,) = standin.conflicts()
    assert conflict.first_ready_at is None


def test_reads_never_conflict_and_faults_do_not_open_operations(standin, client, share):
    standin.config.delays.snapshot_create = 10
    standin.faults.fail_next(1)
    with pytest.raises(exceptions.ServiceUnavailable):
        client.share_snapshots.create(share["id"])
    client.share_snapshots.create(share["id"])
    client.shares.get(share["id"])
    client.share_snapshots.list()
    assert standin.conflicts() == []
    standin.reset_conflicts()


def test_concurrent_snapshot_creates_are_all_accepted_and_every_overlap_recorded(
    standin, make_client, share, project_id
):
    standin.config.delays.snapshot_create = 10
    clients = [make_client(f"user{i}:{project_id}", version="2.98") for i in range(8)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        created = list(pool.map(lambda c: c.share_snapshots.create(share["id"]), clients))
    assert {s.status for s in created} == {"creating"}
    assert len(standin.snapshots(share["id"])) == 8
    assert len(standin.conflicts()) == 8 * 7 // 2
