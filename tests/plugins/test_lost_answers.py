"""Manila answers lost or refused: the core adopts what Manila made, retries what is safe
to retry, and a job that fails anyway leaves nothing behind.

"Lost" answers are the stand-in's ``slow_next``: the request takes effect and the answer
arrives after the client's timeout (0.5 s here), as when a proxy or the network drops it.
"""

from __future__ import annotations

import random

import pytest
from keystoneauth1 import session as ks_session

from manila_protector import exception
from manila_protector.plugins import client_factory
from manila_protector.plugins import delivery
from manila_protector.plugins import job_tags
from manila_protector.plugins import share_protector
from manila_protector.plugins import values
from manila_protector.plugins import waiting

OPTIONS = values.ProtectOptions(snapshot_name="nightly", description="", force=False)
NEW = values.RestoreOptions()
#: Seconds the client waits for an answer; a lost answer comes LATE seconds late.
CLIENT_TIMEOUT = 0.5
LATE = 1.5
JOB = job_tags.KEY
SNAPSHOTS = r"/snapshots$"
SHARES = r"/shares$"


@pytest.fixture
def impatient(standin, project):
    """A client that gives up on an answer after CLIENT_TIMEOUT seconds."""
    factory = client_factory.ClientFactory(
        lambda auth, connections: ks_session.Session(auth=auth, session=connections,
                                                     timeout=CLIENT_TIMEOUT))
    return factory.for_token(f"user:{project}", standin.endpoint)


def make_protector(runtime, manila, guard=None, **timeouts):
    return share_protector.ShareProtector(
        manila, waiting.Waiter(runtime.settings.wait_policy, runtime.clock, random.Random(3)),
        values.Timeouts(**{"protect": 600, "restore": 600, "delete": 600,
                                    **timeouts}),
        guard=guard)


@pytest.fixture
def protector(runtime, impatient):
    return make_protector(runtime, impatient)


def posts(standin, route):
    return [r for r in standin.requests() if r.method == "POST" and r.route == route]


def tagged_shares(standin, tag):
    return [s for s in standin.shares()
            if (s.get("metadata") or {}).get(job_tags.KEY) == tag]


# -- protect ------------------------------------------------------------------------------


def test_a_snapshot_whose_create_answer_was_lost_is_adopted_not_made_twice(
        standin, protector, share):
    standin.faults.slow_next(1, LATE, method="POST", path=SNAPSHOTS)
    saved = protector.protect(share["id"], OPTIONS, job_tag="job-lost")
    snapshots = standin.snapshots(share["id"])
    assert [s["id"] for s in snapshots] == [saved.snapshot_id]
    assert snapshots[0]["status"] == "available"
    assert len(posts(standin, "/snapshots")) == 1


def test_a_snapshot_create_refused_with_503_is_sent_again(standin, protector, share):
    standin.faults.fail_next(1, 503, method="POST", path=SNAPSHOTS)
    saved = protector.protect(share["id"], OPTIONS, job_tag="job-503")
    assert [s["id"] for s in standin.snapshots(share["id"])] == [saved.snapshot_id]
    assert [r.status for r in posts(standin, "/snapshots")] == [503, 202]


def test_a_snapshot_create_refused_every_time_fails_typed_and_makes_nothing(
        standin, protector, share):
    standin.faults.fail_next(delivery.REQUEST_ATTEMPTS, 500, method="POST",
                             path=SNAPSHOTS)
    with pytest.raises(exception.ManilaUnavailable) as info:
        protector.protect(share["id"], OPTIONS, job_tag="job-500")
    assert info.value.retryable
    assert standin.snapshots(share["id"]) == []
    assert len(posts(standin, "/snapshots")) == delivery.REQUEST_ATTEMPTS


def test_reads_are_retried_after_503(standin, protector, share):
    standin.faults.fail_next(2, 503, method="GET", path=r"/share-access-rules$")
    standin.faults.fail_next(1, 503, method="GET", path=r"/shares/[^/]+$")
    saved = protector.protect(share["id"], OPTIONS, job_tag="job-reads")
    assert len(saved.access_rules) == 2
    assert [s["id"] for s in standin.snapshots(share["id"])] == [saved.snapshot_id]


def test_a_protect_failing_after_its_snapshot_exists_deletes_it(standin, protector, share):
    standin.faults.fail_next(1, 403, method="GET", path=r"/share-access-rules$")
    with pytest.raises(exception.NotAuthorized) as info:
        protector.protect(share["id"], OPTIONS, job_tag="job-403")
    assert standin.snapshots(share["id"]) == []
    assert info.value.details["cleaned_up"] is True
    assert info.value.details["snapshot_id"]


def test_a_snapshot_that_cannot_be_deleted_is_named_in_the_error(
        standin, runtime, impatient, share):
    standin.faults.snapshot_stuck_creating(share["id"])
    fast = make_protector(runtime, impatient, protect=60, cleanup=30)
    with pytest.raises(exception.DeadlineExceeded) as info:
        fast.protect(share["id"], OPTIONS, job_tag="job-stuck")
    [left] = standin.snapshots(share["id"])
    assert info.value.details == {**info.value.details, "snapshot_id": left["id"],
                                  "cleaned_up": False}


def test_a_protect_waits_for_another_jobs_snapshot_in_flight_on_the_share(
        standin, protector, share, manila, vclock):
    """What a lock backend that forgot its locks would let happen: two jobs at once."""
    standin.config.delays.snapshot_create = 20
    other = manila.create_snapshot(share_id=share["id"], force=False, name="other job's",
                                   description="", metadata={JOB: "job-before"})
    assert other["status"] == "creating"
    saved = protector.protect(share["id"], OPTIONS, job_tag="job-after")
    assert standin.snapshot(other["id"])["status"] == "available"
    assert saved.snapshot_id != other["id"]
    assert vclock.slept >= 40
    assert standin.conflicts() == []


def test_a_persons_snapshot_in_flight_does_not_hold_a_protect_up(
        standin, protector, share, manila, vclock):
    standin.config.delays.snapshot_create = 20
    theirs = manila.create_snapshot(share_id=share["id"], force=False, name="by hand",
                                    description="", metadata=None)
    saved = protector.protect(share["id"], OPTIONS, job_tag="job-now")
    assert standin.snapshot(theirs["id"])["status"] == "available"
    assert saved.snapshot_id != theirs["id"]
    assert vclock.slept <= 20 * 1.25 + 0.25


# -- restore ------------------------------------------------------------------------------


def test_a_share_whose_create_answer_was_lost_is_adopted_not_made_twice(
        standin, protector, share):
    saved = protector.protect(share["id"], OPTIONS, job_tag="job-p")
    standin.faults.slow_next(1, LATE, method="POST", path=SHARES)
    result = protector.restore(saved, NEW, job_tag="job-r")
    assert [s["id"] for s in tagged_shares(standin, "job-r")] == [result.share_id]
    assert standin.share(result.share_id)["status"] == "available"
    assert len(standin.access_rules(result.share_id)) == 2


def test_a_restore_failing_after_its_share_exists_deletes_it(standin, protector, share):
    saved = protector.protect(share["id"], OPTIONS, job_tag="job-p")
    standin.faults.fail_next(delivery.REQUEST_ATTEMPTS, 500, method="POST",
                             path=r"/action$")
    with pytest.raises(exception.ManilaUnavailable) as info:
        protector.restore(saved, NEW, job_tag="job-r")
    assert tagged_shares(standin, "job-r") == []
    assert info.value.details["cleaned_up"] is True


def test_an_access_rule_whose_answer_was_lost_is_not_added_twice(standin, protector, share):
    saved = protector.protect(share["id"], OPTIONS, job_tag="job-p")
    standin.faults.slow_next(1, LATE, method="POST", path=r"/action$")
    result = protector.restore(saved, NEW, job_tag="job-r")
    rules = standin.access_rules(result.share_id)
    assert sorted(r["access_to"] for r in rules) == ["10.0.0.0/24", "192.168.7.9"]
    assert {r["state"] for r in rules} == {"active"}


# -- delete -------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["lost", "refused"])
def test_a_delete_whose_answer_was_lost_or_refused_still_deletes(
        standin, protector, share, fault):
    saved = protector.protect(share["id"], OPTIONS, job_tag="job-p")
    if fault == "lost":
        standin.faults.slow_next(1, LATE, method="DELETE")
    else:
        standin.faults.fail_next(1, 503, method="DELETE")
    result = protector.delete(saved)
    assert result.already_gone is False
    assert standin.snapshots(share["id"]) == []


# -- the guard ----------------------------------------------------------------------------


def test_the_guard_runs_before_every_mutation_and_can_stop_it(
        standin, runtime, impatient, share):
    asked = []

    def guard(what):
        asked.append(what)

    saved = make_protector(runtime, impatient, guard=guard).protect(share["id"], OPTIONS,
                                                                     job_tag="job-g")
    assert asked == [f"snapshot of share {share['id']}"]

    refused = []

    def lost(what):
        refused.append(what)
        raise exception.LockUnavailable(f"lock lost before {what}")

    before = standin.count_requests(mutating=True)
    with pytest.raises(exception.GuardRefused) as info:
        make_protector(runtime, impatient, guard=lost).restore(saved, NEW, job_tag="job-r")
    # The job reports the guard's reason: its code, its retryability, the request refused.
    assert info.value.to_dict()["code"] == exception.LockUnavailable.code
    assert info.value.retryable
    assert info.value.details["refused_before"] == f"share from snapshot {saved.snapshot_id}"
    with pytest.raises(exception.GuardRefused):
        make_protector(runtime, impatient, guard=lost).delete(saved)
    # A refusal is final: asked once per operation, nothing sent, nothing retried.
    assert len(refused) == 2
    assert standin.count_requests(mutating=True) == before


def test_below_snapshot_metadata_another_jobs_snapshot_is_known_by_its_description(
        standin, runtime, project, share, vclock):
    factory = client_factory.ClientFactory(
        lambda auth, connections: ks_session.Session(auth=auth, session=connections),
        max_version="2.72")
    old = factory.for_token(f"user:{project}", standin.endpoint)
    assert not old.supports_snapshot_metadata
    standin.config.delays.snapshot_create = 20
    first = make_protector(runtime, old)
    other = old.create_snapshot(
        share_id=share["id"], force=False, name="other job's", metadata=None,
        description=job_tags.tagged_description("nightly", "job-before"))
    saved = first.protect(share["id"], OPTIONS, job_tag="job-after")
    assert standin.snapshot(other["id"])["status"] == "available"
    assert standin.snapshot(saved.snapshot_id)["description"].endswith(
        "[manila_protector_job=job-after]")
    assert vclock.slept >= 40


def test_a_second_snapshot_of_the_same_job_is_deleted_and_the_first_kept(
        standin, protector, share, manila):
    """Two requests of one job both carried out (the first one's answer lost)."""
    made = [manila.create_snapshot(share_id=share["id"], force=False, name=f"try {n}",
                                   description="", metadata={JOB: "job-twice"})["id"]
            for n in (1, 2)]
    protector.protect._discard_duplicates(share["id"], "job-twice", keep=made[0])
    assert [s["id"] for s in standin.snapshots(share["id"])] == [made[0]]
