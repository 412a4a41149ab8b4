"""A revert in place is sent at most once, whoever runs the job again: its intent is
recorded in the share's metadata under the lock, and a resumed or resent job that
finds it never sends the revert again."""

from __future__ import annotations

import pytest

from manila_protector import exception
from manila_protector.plugins import job_tags
from manila_protector.plugins import values

OPTIONS = values.ProtectOptions(snapshot_name="nightly", description="", force=False)


def reverts(standin):
    return [r for r in standin.requests() if r.method == "POST" and r.path.endswith("/action")]


def test_the_same_revert_job_run_twice_sends_one_revert(standin, protector, share):
    saved = protector.protect(share["id"], OPTIONS)
    back = values.RestoreOptions(target_share_id=share["id"])

    first = protector.restore(saved, back, job_tag="revert-1")
    again = protector.restore(saved, back, job_tag="revert-1")

    assert (first.mode, again.mode) == ("revert", "revert")
    assert again.status == "available"
    assert len(reverts(standin)) == 1
    assert standin.share(share["id"])["metadata"][job_tags.REVERT_KEY] == "revert-1 sent"


def test_a_slow_revert_resumed_ends_succeeded_when_it_completes(
        standin, protector, share, manila, standin_config, vclock):
    saved = protector.protect(share["id"], OPTIONS)
    # A first run recorded its intent, sent a slow revert, marked it, and died mid-wait.
    standin_config.delays.revert = 120
    manila.set_share_metadata(share["id"], job_tags.revert_intent("revert-4", sent=False))
    manila.revert_share(share["id"], saved.snapshot_id)
    manila.set_share_metadata(share["id"], job_tags.revert_intent("revert-4", sent=True))
    assert standin.share(share["id"])["status"] == "reverting"
    assert standin.snapshot(saved.snapshot_id)["status"] == "restoring"
    before = len(reverts(standin))

    result = protector.restore(saved, values.RestoreOptions(target_share_id=share["id"]),
                               job_tag="revert-4")

    assert (result.mode, result.status) == ("revert", "available")
    assert len(reverts(standin)) == before  # waited for it; never sent again
    assert vclock.slept >= 120


def test_a_refused_revert_leaves_no_intent_behind(standin, protector, share, manila):
    saved = protector.protect(share["id"], OPTIONS)
    protector.protect(share["id"], OPTIONS)  # now the saved snapshot is not the latest
    with pytest.raises(exception.Conflict):
        protector.restore(saved, values.RestoreOptions(target_share_id=share["id"]),
                          job_tag="revert-5")
    assert job_tags.REVERT_KEY not in (standin.share(share["id"])["metadata"] or {})


def test_an_intent_without_the_sent_mark_fails_without_a_second_revert(standin, protector,
                                                                       share, manila):
    saved = protector.protect(share["id"], OPTIONS)
    manila.set_share_metadata(share["id"], job_tags.revert_intent("revert-2", sent=False))
    before = len(reverts(standin))

    with pytest.raises(exception.OperationFailed) as info:
        protector.restore(saved, values.RestoreOptions(target_share_id=share["id"]),
                          job_tag="revert-2")

    assert info.value.details == {"share_id": share["id"], "revert": "unknown"}
    assert len(reverts(standin)) == before
    # Another job (a new id) may revert it.
    protector.restore(saved, values.RestoreOptions(target_share_id=share["id"]),
                      job_tag="revert-3")
    assert len(reverts(standin)) == before + 1


def test_a_revert_manila_refused_forgets_its_intent_and_may_run_again(standin, protector,
                                                                      share):
    saved = protector.protect(share["id"], OPTIONS)
    back = values.RestoreOptions(target_share_id=share["id"])
    standin.faults.fail_next(1, 409, method="POST", path=r"/shares/[^/]+/action$")
    with pytest.raises(exception.Conflict):
        protector.restore(saved, back, job_tag="revert-6")
    assert job_tags.REVERT_KEY not in (standin.share(share["id"])["metadata"] or {})

    assert protector.restore(saved, back, job_tag="revert-6").status == "available"


def test_a_revert_whose_answer_was_lost_is_never_sent_again(standin, protector, share):
    saved = protector.protect(share["id"], OPTIONS)
    back = values.RestoreOptions(target_share_id=share["id"])
    standin.faults.fail_next(1, 503, method="POST", path=r"/shares/[^/]+/action$")
    with pytest.raises(exception.ManilaUnavailable):
        protector.restore(saved, back, job_tag="revert-7")
    # A 5xx may hide that Manila acted: the intent stays, and the job refuses to guess.
    with pytest.raises(exception.OperationFailed):
        protector.restore(saved, back, job_tag="revert-7")
    assert len(reverts(standin)) == 1
