"""The core reports each operation's phases, in order, with their deadlines (virtual time)."""

from __future__ import annotations

import pytest

from manila_protector import exception
from manila_protector import progress
from manila_protector.plugins import values

OPTIONS = values.ProtectOptions(snapshot_name="nightly", description="progress", force=False)


class Heard:
    """An observer that keeps what it hears."""

    def __init__(self) -> None:
        self.phases: list[tuple[str, str | None, float | None]] = []
        self.polls: list[tuple[str | None, float, float]] = []

    def phase(self, phase, *, detail=None, remaining=None):
        self.phases.append((phase, detail, remaining))

    def waiting(self, *, status, elapsed, remaining):
        self.polls.append((status, elapsed, remaining))

    @property
    def names(self) -> list[str]:
        return [phase for phase, _, _ in self.phases]


@pytest.fixture
def heard():
    return Heard()


@pytest.fixture
def observed(runtime, manila, heard):
    return runtime.protector(manila, progress=heard)


def test_a_protect_goes_checking_requested_waiting_with_its_deadline(standin, observed, heard,
                                                                      share, vclock):
    standin.config.delays.snapshot_create = 90
    saved = observed.protect(share["id"], OPTIONS, job_tag="job-1")
    assert heard.names == [progress.CHECKING, progress.SNAPSHOT_REQUESTED,
                           progress.WAITING_FOR_MANILA]
    assert heard.phases[0][1] == f"share {share['id']}"
    assert heard.phases[2][1] == f"snapshot {saved.snapshot_id} of share {share['id']}"
    # The protect deadline is 600 s (conftest); it counts down from the start.
    assert heard.phases[0][2] == 600
    assert all(remaining <= 600 for _, _, remaining in heard.phases)
    # Manila's status was heard at every poll of the 90 s wait.
    assert heard.polls and {status for status, _, _ in heard.polls} == {"creating"}
    assert heard.polls[-1][1] >= 60
    assert all(p in progress.PHASES for p in heard.names)


def test_a_failed_protect_reports_cleaning_up(standin, observed, heard, share):
    standin.faults.snapshot_error(share["id"])
    with pytest.raises(exception.OperationFailed):
        observed.protect(share["id"], OPTIONS)
    assert heard.names[-1] == progress.CLEANING_UP
    assert heard.phases[-1][1].startswith("snapshot ")
    assert heard.phases[-1][2] <= values.Timeouts().cleanup


def test_a_restore_into_a_new_share_reports_the_rules_it_applies(standin, runtime, manila,
                                                                  observed, heard, share):
    saved = runtime.protector(manila).protect(share["id"], OPTIONS)
    result = observed.restore(saved, values.RestoreOptions())
    assert heard.names == [progress.CHECKING, progress.SHARE_REQUESTED,
                           progress.WAITING_FOR_MANILA, progress.APPLYING_ACCESS_RULES]
    assert heard.phases[3][1] == f"share {result.share_id}"


def test_a_revert_reports_reverting(standin, runtime, manila, observed, heard, share):
    saved = runtime.protector(manila).protect(share["id"], OPTIONS)
    observed.restore(saved, values.RestoreOptions(target_share_id=share["id"]))
    assert heard.names[0] == progress.CHECKING
    assert progress.REVERTING in heard.names
    assert heard.names[-1] == progress.REVERTING


def test_a_delete_reports_its_request_and_the_wait(standin, runtime, manila, observed, heard,
                                                   share):
    saved = runtime.protector(manila).protect(share["id"], OPTIONS)
    standin.config.delays.snapshot_delete = 20
    observed.delete(saved)
    assert heard.names == [progress.CHECKING, progress.DELETION_REQUESTED,
                           progress.WAITING_FOR_MANILA]

