"""The protection core against the Manila stand-in over HTTP with real python-manilaclient."""

from __future__ import annotations

import math
import random

import pytest

from manila_protector import exception
from manila_protector import identity
from manila_protector.plugins import job_tags
from manila_protector.plugins import share_protector
from manila_protector.plugins import values
from manila_protector.plugins import waiting

OPTIONS = values.ProtectOptions(snapshot_name="nightly", description="before upgrade",
                                         force=False)
NEW = values.RestoreOptions()


def mutations(standin):
    return standin.count_requests(mutating=True)


def rule_keys(rules):
    return sorted((r["access_type"], r["access_to"], r["access_level"]) for r in rules)


# -- protect ------------------------------------------------------------------------


def test_protect_saves_everything_a_restore_needs(standin, protector, share):
    saved = protector.protect(share["id"], OPTIONS, job_tag="job-1")
    snap = standin.snapshot(saved.snapshot_id)
    assert snap["status"] == "available"
    assert snap["share_id"] == share["id"]
    assert snap["name"] == "nightly"
    assert snap["metadata"] == {job_tags.KEY: "job-1"}
    assert saved.share_id == share["id"]
    assert saved.size == 2
    assert saved.share_proto == "NFS"
    assert saved.share_type == share["share_type"]
    assert saved.share_network_id == share["share_network_id"]
    assert saved.availability_zone == share["availability_zone"]
    assert dict(saved.metadata) == {"owner": "team-a"}
    assert rule_keys(r.to_dict() for r in saved.access_rules) == rule_keys(
        standin.access_rules(share["id"]))
    assert len(saved.access_rules) == 2
    assert saved.snapshot_name == "nightly"
    assert saved.job_tag == "job-1"
    assert saved.created_at == snap["created_at"]


def test_protect_waits_for_a_share_still_being_created(standin, protector, manila, vclock):
    standin.config.delays.share_create = 30
    creating = manila._client.shares.create("NFS", 1)  # through the API: a real transition
    assert creating.status == "creating"
    saved = protector.protect(creating.id, OPTIONS)
    assert standin.snapshot(saved.snapshot_id)["status"] == "available"
    assert 30 <= vclock.slept <= 30 * 1.25 + 0.25


@pytest.mark.parametrize("seconds", [0.2, 2, 10, 60])
def test_protect_finishes_soon_after_manila_does(standin, protector, share, vclock, seconds):
    standin.config.delays.snapshot_create = seconds
    standin.reset_requests()
    protector.protect(share["id"], OPTIONS)
    assert seconds <= vclock.slept <= 1.25 * seconds + 0.25
    polls = standin.count_requests(method="GET", path_prefix="/v2/snapshots/")
    assert polls <= 5 * math.log(seconds / 0.25 if seconds > 0.25 else 1) + 3 + 1


@pytest.mark.parametrize("seconds", [0.2, 2, 10, 60])
def test_a_first_poll_delay_meets_the_poll_bound_with_no_immediate_poll(
        standin, manila, share, vclock, seconds):
    policy = waiting.WaitPolicy(first_delay=0.25)
    delayed = share_protector.ShareProtector(manila, waiting.Waiter(policy, vclock,
                                                                    random.Random(1)))
    standin.config.delays.snapshot_create = seconds
    standin.reset_requests()
    saved = delayed.protect(share["id"], OPTIONS, job_tag="job-delayed")
    assert seconds <= vclock.slept <= 1.25 * seconds + 0.25
    polls = [r for r in standin.requests()
             if r.method == "GET" and r.route == f"/snapshots/{saved.snapshot_id}"]
    assert len(polls) <= 5 * math.log(seconds / 0.25) + 3


def test_snapshot_ending_in_error_is_deleted_and_the_protect_fails(standin, protector, share):
    standin.faults.snapshot_error(share["id"])
    with pytest.raises(exception.OperationFailed) as info:
        protector.protect(share["id"], OPTIONS)
    assert "'error'" in str(info.value)
    assert standin.snapshots(share_id=share["id"]) == []


def test_share_that_never_becomes_available_hits_the_deadline(standin, runtime, manila,
                                                              project):
    stuck = standin.create_share(project, size=1, status="creating")
    standin.faults.share_stuck(stuck["id"])
    fast = share_protector.ShareProtector(
        manila, waiting.Waiter(runtime.settings.wait_policy, runtime.clock),
        values.Timeouts(protect=120))
    before = mutations(standin)
    with pytest.raises(exception.DeadlineExceeded) as info:
        fast.protect(stuck["id"], OPTIONS)
    assert info.value.retryable
    assert "'creating'" in str(info.value)
    assert mutations(standin) == before


@pytest.mark.parametrize("status", ["error", "deleting", "extending_error", "reverting_error",
                                    "manage_error", "unmanage_error"])
def test_protect_of_an_unprotectable_share_fails_typed_without_mutation(
        standin, protector, project, status):
    bad = standin.create_share(project, size=1)
    standin.set_share_status(bad["id"], status)
    before = mutations(standin)
    with pytest.raises(exception.InvalidStatus) as info:
        protector.protect(bad["id"], OPTIONS)
    assert status in str(info.value)
    assert mutations(standin) == before


def test_protect_with_the_same_job_tag_adopts_the_first_snapshot(standin, protector, share):
    first = protector.protect(share["id"], OPTIONS, job_tag="job-x")
    second = protector.protect(share["id"], OPTIONS, job_tag="job-x")
    assert first.snapshot_id == second.snapshot_id
    assert len(standin.snapshots(share_id=share["id"])) == 1


def test_protect_below_2_73_tags_the_description(standin, factory, runtime, project, share):
    old = factory.__class__(factory._session_loader, max_version="2.72")
    manila = old.for_token(f"user:{project}", standin.endpoint)
    protector = runtime.protector(manila)
    first = protector.protect(share["id"], OPTIONS, job_tag="job-old")
    assert "[manila_protector_job=job-old]" in standin.snapshot(first.snapshot_id)["description"]
    again = protector.protect(share["id"], OPTIONS, job_tag="job-old")
    assert again.snapshot_id == first.snapshot_id


def test_transient_503_bursts_are_retried(standin, protector, share):
    standin.config.delays.snapshot_create = 5
    standin.faults.fail_next(3, status=503, method="GET", path=r"^/v2/snapshots/")
    saved = protector.protect(share["id"], OPTIONS)
    assert standin.snapshot(saved.snapshot_id)["status"] == "available"


def test_protect_of_another_projects_share_is_refused(standin, protector, other_project):
    theirs = standin.create_share(other_project, size=1)
    before = mutations(standin)
    with pytest.raises(exception.NotAuthorized):
        protector.protect(theirs["id"], OPTIONS,
                          caller=identity.Caller(user_id="u", project_id="someone-else"))
    assert mutations(standin) == before


def test_protect_of_a_missing_share_is_not_found(protector, standin):
    with pytest.raises(exception.NotFound):
        protector.protect("4a1b7c6e-0000-4000-8000-000000000000", OPTIONS)
    assert mutations(standin) == 0


def test_protect_over_snapshot_quota_is_typed(standin, protector, share, project):
    standin.set_quota(project, snapshots=0)
    with pytest.raises(exception.QuotaExceeded):
        protector.protect(share["id"], OPTIONS)


def test_share_type_without_snapshot_support_is_unsupported(standin, protector, project):
    no_snap = standin.add_share_type("no-snapshots", snapshot_support=False)
    share = standin.create_share(project, size=1, share_type=no_snap)
    with pytest.raises(exception.Unsupported):
        protector.protect(share["id"], OPTIONS)
    assert standin.snapshots(share_id=share["id"]) == []


# -- restore ------------------------------------------------------------------------


def test_restore_creates_a_share_with_the_original_rules_and_metadata(standin, protector, share):
    saved = protector.protect(share["id"], OPTIONS)
    result = protector.restore(saved, values.RestoreOptions(name="restored",
                                                                     description="from nightly"))
    new = standin.share(result.share_id)
    assert result.mode == "new_share"
    assert new["status"] == "available"
    assert new["snapshot_id"] == saved.snapshot_id
    assert new["name"] == "restored"
    assert new["description"] == "from nightly"
    assert (new["share_proto"], new["size"], new["share_type"]) == ("NFS", 2, share["share_type"])
    assert new["metadata"]["owner"] == "team-a"
    rules = standin.access_rules(result.share_id)
    assert rule_keys(rules) == rule_keys(standin.access_rules(share["id"]))
    assert all(r["state"] == "active" for r in rules)


def test_restore_without_access_rules_when_asked(standin, protector, share):
    saved = protector.protect(share["id"], OPTIONS)
    result = protector.restore(saved, values.RestoreOptions(restore_access_rules=False))
    assert standin.access_rules(result.share_id) == []


def test_restored_share_ending_in_error_is_deleted(standin, protector, share):
    saved = protector.protect(share["id"], OPTIONS)
    standin.faults.share_error_from_snapshot(saved.snapshot_id)
    before = {s["id"] for s in standin.shares()}
    with pytest.raises(exception.OperationFailed) as info:
        protector.restore(saved, NEW)
    assert "'error'" in str(info.value)
    assert {s["id"] for s in standin.shares()} == before


def test_restore_with_the_same_job_tag_adopts_the_first_share(standin, protector, share):
    saved = protector.protect(share["id"], OPTIONS)
    first = protector.restore(saved, NEW, job_tag="r-1")
    second = protector.restore(saved, NEW, job_tag="r-1")
    assert first.share_id == second.share_id
    assert sum(1 for s in standin.shares() if s.get("snapshot_id") == saved.snapshot_id) == 1


def test_revert_to_the_latest_snapshot_restores_in_place(standin, protector, share):
    saved = protector.protect(share["id"], OPTIONS)
    result = protector.restore(saved, values.RestoreOptions(target_share_id=share["id"]))
    assert result.mode == "revert"
    assert result.share_id == share["id"]
    assert standin.share(share["id"])["status"] == "available"
    revert_calls = [r for r in standin.requests()
                    if r.method == "POST" and r.path.endswith("/action")]
    assert len(revert_calls) == 1


def test_revert_to_an_older_snapshot_says_why_and_changes_nothing(standin, protector, share,
                                                                  manual_clock):
    older = protector.protect(share["id"], OPTIONS)
    manual_clock.advance(10)
    newer = protector.protect(share["id"], OPTIONS)
    before = mutations(standin)
    with pytest.raises(exception.Conflict) as info:
        protector.restore(older, values.RestoreOptions(target_share_id=share["id"]))
    assert "latest snapshot" in str(info.value)
    assert newer.snapshot_id in str(info.value)
    assert mutations(standin) == before


def test_restore_into_a_different_share_is_refused_before_any_request(standin, protector,
                                                                      share, project):
    saved = protector.protect(share["id"], OPTIONS)
    other = standin.create_share(project, size=2)
    standin.reset_requests()
    with pytest.raises(exception.InvalidRequest) as info:
        protector.restore(saved, values.RestoreOptions(target_share_id=other["id"]))
    assert other["id"] in str(info.value)
    assert standin.requests() == []


def test_revert_needs_microversion_2_27(standin, factory, runtime, project, share, protector):
    saved = protector.protect(share["id"], OPTIONS)
    old = factory.__class__(factory._session_loader, max_version="2.26")
    manila = old.for_token(f"user:{project}", standin.endpoint)
    before = mutations(standin)
    with pytest.raises(exception.Unsupported) as info:
        runtime.protector(manila).restore(
            saved, values.RestoreOptions(target_share_id=share["id"]))
    assert "2.27" in str(info.value)
    assert mutations(standin) == before


def test_restore_with_legacy_access_api_below_2_45(standin, factory, runtime, project, share):
    old = factory.__class__(factory._session_loader, max_version="2.44")
    manila = old.for_token(f"user:{project}", standin.endpoint)
    protector = runtime.protector(manila)
    saved = protector.protect(share["id"], OPTIONS)
    assert len(saved.access_rules) == 2
    result = protector.restore(saved, NEW)
    assert rule_keys(standin.access_rules(result.share_id)) == rule_keys(
        standin.access_rules(share["id"]))


def test_restore_from_a_forged_saved_info_is_refused(standin, protector, share, project):
    saved = protector.protect(share["id"], OPTIONS)
    other = standin.create_share(project, size=2)
    forged = values.SavedInfo.from_dict({**saved.to_dict(), "share_id": other["id"]})
    before = mutations(standin)
    with pytest.raises(exception.InvalidRequest):
        protector.restore(forged, NEW)
    assert mutations(standin) == before


# -- delete and verify --------------------------------------------------------------


def test_delete_removes_the_snapshot_and_again_is_success(standin, protector, share):
    saved = protector.protect(share["id"], OPTIONS)
    first = protector.delete(saved)
    assert first.already_gone is False
    assert standin.snapshot(saved.snapshot_id) is None
    again = protector.delete(saved)
    assert again.already_gone is True


def test_delete_waits_for_a_slow_deletion(standin, protector, share, vclock):
    saved = protector.protect(share["id"], OPTIONS)
    standin.config.delays.snapshot_delete = 20
    slept_before = vclock.slept
    protector.delete(saved)
    assert 20 <= vclock.slept - slept_before <= 20 * 1.25 + 0.25


def test_delete_when_the_snapshot_vanishes_mid_way_is_success(standin, protector, share):
    saved = protector.protect(share["id"], OPTIONS)
    standin.faults.fail_next(1, status=404, method="DELETE")
    assert protector.delete(saved).already_gone is True


def test_verify_reports_an_available_snapshot(protector, share):
    saved = protector.protect(share["id"], OPTIONS)
    result = protector.verify(saved)
    assert (result.snapshot_id, result.status) == (saved.snapshot_id, "available")


def test_verify_of_a_deleted_snapshot_is_not_found(protector, share):
    saved = protector.protect(share["id"], OPTIONS)
    protector.delete(saved)
    with pytest.raises(exception.NotFound):
        protector.verify(saved)


def test_revert_waits_for_access_rules_to_finish_syncing(standin, protector, share, manila,
                                                         standin_config):
    saved = protector.protect(share["id"], OPTIONS)
    standin_config.delays.access_apply = 5
    standin_config.delays.access_status_lag = 2
    manila._client.shares.allow(share["id"], "ip", "172.16.0.9", "ro")
    assert standin.share(share["id"])["access_rules_status"] == "syncing"
    result = protector.restore(saved, values.RestoreOptions(target_share_id=share["id"]))
    assert result.mode == "revert"
    assert standin.share(share["id"])["status"] == "available"
    refused = [r for r in standin.requests() if r.method == "POST" and r.status == 409]
    assert refused == []
