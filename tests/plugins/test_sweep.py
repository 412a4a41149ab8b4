"""What a failed job could not delete is swept later -- only while it carries the job's tag."""

from __future__ import annotations

import pytest

from manila_protector import exception
from manila_protector.plugins import job_tags
from manila_protector.plugins import values

OPTIONS = values.ProtectOptions(snapshot_name="nightly", description="", force=False)


def test_a_snapshot_a_failed_job_could_not_delete_is_swept_later(standin, protector, share):
    standin.faults.snapshot_error(share["id"])
    standin.faults.fail_next(100, 503, method="DELETE")
    with pytest.raises(exception.OperationFailed) as info:
        protector.protect(share["id"], OPTIONS, job_tag="job-left")
    details = info.value.details
    assert details["cleaned_up"] is False
    left = details["snapshot_id"]
    assert standin.snapshot(left) is not None

    standin.faults.clear()
    assert protector.sweep("snapshot", left, "job-left") is True
    assert standin.snapshot(left) is None


def test_a_resource_without_the_jobs_tag_is_left_alone(standin, protector, share, manila):
    theirs = manila.create_snapshot(share_id=share["id"], force=False, name="a person's",
                                    description="", metadata={job_tags.KEY: "someone-else"})
    assert protector.sweep("snapshot", theirs["id"], "job-left") is True
    assert standin.snapshot(theirs["id"]) is not None


def test_sweeping_what_is_already_gone_is_done(protector, share):
    assert protector.sweep("share", "8a0e7f4c-8a0e-4f4c-8a0e-7f4c8a0e7f4c", "job-x") is True
