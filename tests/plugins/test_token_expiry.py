"""A caller's token that would expire before a job could finish: the job stops in time
to delete what it made with that token (virtual time: no test waits 300 s)."""

from __future__ import annotations

import pytest

from manila_protector import exception
from manila_protector.plugins import values
from manila_standin import Delays, StandInConfig

#: values.Timeouts().cleanup: the time a failed job keeps to delete what it made.
CLEANUP = values.Timeouts().cleanup


@pytest.fixture
def standin_config():
    # A snapshot takes longer than the job may still act, but less than the cleanup time.
    return StandInConfig(delays=Delays(snapshot_create=120.0, snapshot_delete=5.0))


def test_a_job_stopped_by_its_token_deletes_its_snapshot_before_the_token_expires(
        runtime, manila, standin, share, vclock):
    protector = runtime.protector(manila, token_expires_in=CLEANUP + 60)
    began = vclock.now()
    standin.reset_requests()

    with pytest.raises(exception.TokenExpired) as info:
        protector.protect(share["id"], values.ProtectOptions(snapshot_name="nightly",
                                                             description="expiry"),
                          job_tag="job-1")

    assert info.value.details["cleaned_up"] is True
    assert standin.snapshots(share_id=share["id"]) == []
    deletes = [r for r in standin.requests() if r.method == "DELETE"]
    assert len(deletes) == 1
    # Sent after the job had to stop acting, before the token expired.
    assert began + 60 <= deletes[0].time < began + CLEANUP + 60


def test_a_token_too_close_to_expiry_sends_nothing(runtime, manila, standin, share):
    protector = runtime.protector(manila, token_expires_in=CLEANUP - 1)
    standin.reset_requests()

    with pytest.raises(exception.ProtectorError) as info:
        protector.protect(share["id"], values.ProtectOptions(snapshot_name="nightly",
                                                             description="expiry"))

    assert info.value.code == "token_expired"
    assert standin.count_requests(mutating=True) == 0
