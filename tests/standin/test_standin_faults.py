"""Fault injection: transport faults before any state change, outcome faults."""

from __future__ import annotations

import pytest
from keystoneauth1 import exceptions as ks_exceptions
from manilaclient import exceptions

from manila_standin import ManilaStandIn, StandInConfig


@pytest.fixture
def share(standin, project_id):
    return standin.create_share(project_id)


def test_injected_503_happens_before_any_state_change(standin, client, share, project_id):
    standin.faults.fail_next(1, status=503)
    with pytest.raises(exceptions.ServiceUnavailable):
        client.share_snapshots.create(share["id"])
    assert standin.snapshots(share["id"]) == []
    assert standin.quota_usage(project_id)["snapshots"] == 0
    assert standin.requests()[-1].injected is True
    assert client.share_snapshots.create(share["id"]).status == "creating"


def test_injected_500_on_delete_leaves_the_share(standin, client, share):
    standin.faults.fail_next(1, status=500)
    with pytest.raises(exceptions.InternalServerError):
        client.shares.delete(share["id"])
    assert standin.share(share["id"])["status"] == "available"


def test_fail_next_can_target_method_and_path(standin, client, share):
    standin.faults.fail_next(2, status=503, method="GET", path=r"/snapshots")
    snapshot = client.share_snapshots.create(share["id"])  # POST is not targeted
    assert client.shares.get(share["id"]).id == share["id"]  # other path
    for _ in range(2):
        with pytest.raises(exceptions.ServiceUnavailable):
            client.share_snapshots.get(snapshot.id)
    assert client.share_snapshots.get(snapshot.id).status == "available"


def test_error_rate_one_fails_every_request_with_500_or_503(standin, client, share):
    standin.faults.error_rate = 1.0
    statuses = set()
    for _ in range(20):
        with pytest.raises(exceptions.HttpServerError) as raised:
            client.shares.get(share["id"])
        statuses.add(raised.value.http_status)
    assert statuses <= {500, 503} and statuses
    standin.faults.error_rate = 0.0
    assert client.shares.get(share["id"]).status == "available"


def test_latency_is_applied_without_changing_answers(standin, client, share):
    standin.faults.latency = 0.05
    assert client.shares.get(share["id"]).status == "available"
    assert standin.faults.latency == 0.05


def test_error_rate_is_validated():
    standin = ManilaStandIn(StandInConfig())
    with pytest.raises(ValueError):
        standin.faults.error_rate = 1.5


def test_seeded_error_rate_is_reproducible(clock, project_id):
    outcomes = []
    for _ in range(2):
        with ManilaStandIn(StandInConfig(error_rate=0.5, seed=7), clock=clock) as standin:
            standin.faults.error_rate = 0.5
            for _ in range(30):
                standin.api.handle("GET", "/", {}, b"")
            outcomes.append([r.status for r in standin.requests()])
    assert outcomes[0] == outcomes[1]
    assert set(outcomes[0]) == {300, 500, 503}


def test_slow_answer_exceeds_the_client_timeout_but_the_operation_happened(
    standin, make_client, share, project_id
):
    client = make_client(f"user1:{project_id}", timeout=0.3)
    standin.faults.slow_next(1, delay=1.0, method="POST", path=r"/snapshots$")
    with pytest.raises(ks_exceptions.ConnectTimeout):
        client.share_snapshots.create(share["id"])
    (snapshot,) = standin.snapshots(share["id"])
    assert snapshot["status"] == "available"


def test_snapshot_error_makes_the_next_snapshot_end_in_error(standin, client, share):
    standin.faults.snapshot_error(share["id"])
    failed = client.share_snapshots.create(share["id"])
    assert client.share_snapshots.get(failed.id).status == "error"
    fine = client.share_snapshots.create(share["id"])
    assert client.share_snapshots.get(fine.id).status == "available"


def test_share_error_from_snapshot(standin, client, share):
    snapshot = standin.create_snapshot(share["id"])
    standin.faults.share_error_from_snapshot(snapshot["id"])
    child = client.shares.create("NFS", 1, snapshot_id=snapshot["id"])
    assert client.shares.get(child.id).status == "error"


def test_next_created_share_stays_creating(standin, client, clock):
    standin.config.delays.share_create = 1
    standin.faults.share_stuck("next_created")
    stuck = client.shares.create("NFS", 1)
    normal = client.shares.create("NFS", 1)
    clock.advance(3600)
    assert client.shares.get(stuck.id).status == "creating"
    assert client.shares.get(normal.id).status == "available"


def test_stuck_share_never_finishes_deleting(standin, client, share, clock):
    standin.faults.share_stuck(share["id"])
    client.shares.delete(share["id"])
    clock.advance(3600)
    assert client.shares.get(share["id"]).status == "deleting"


def test_snapshot_stuck_deleting(standin, client, share, clock):
    snapshot = standin.create_snapshot(share["id"])
    standin.faults.snapshot_stuck_deleting(snapshot["id"])
    client.share_snapshots.delete(snapshot["id"])
    clock.advance(3600)
    assert client.share_snapshots.get(snapshot["id"]).status == "deleting"


def test_next_snapshot_deleted_stays_deleting(standin, client, share, clock):
    first = standin.create_snapshot(share["id"])
    second = standin.create_snapshot(share["id"])
    standin.faults.snapshot_stuck_deleting()
    client.share_snapshots.delete(first["id"])
    client.share_snapshots.delete(second["id"])
    clock.advance(60)
    assert client.share_snapshots.get(first["id"]).status == "deleting"
    assert standin.snapshot(second["id"]) is None


def test_revert_error_ends_in_reverting_error(standin, client, share):
    snapshot = standin.create_snapshot(share["id"])
    standin.faults.revert_error(share["id"])
    client.shares.revert_to_snapshot(share["id"], snapshot["id"])
    assert client.shares.get(share["id"]).status == "reverting_error"
    assert client.share_snapshots.get(snapshot["id"]).status == "available"


def test_clear_drops_pending_faults(standin, client, share):
    standin.faults.fail_next(5)
    standin.faults.snapshot_error(share["id"])
    standin.faults.clear()
    snapshot = client.share_snapshots.create(share["id"])
    assert client.share_snapshots.get(snapshot.id).status == "available"
