"""The CLI's progress line, as an operator reads it, for records with and without the
``phase`` fields (workers of this release record a status only)."""

from __future__ import annotations

import datetime
import io

from manila_protector.cli import progress

NOW = datetime.datetime(2026, 1, 31, 22, 10, 0, tzinfo=datetime.UTC)


def test_a_record_with_a_phase_shows_it_with_its_age_elapsed_time_and_deadline():
    record = {"job_id": "j1", "operation": "protect", "status": "running",
              "phase": "waiting for Manila", "phase_started_at": "2026-01-31T22:08:30+00:00",
              "started_at": "2026-01-31T22:05:00+00:00",
              "deadline": "2026-02-01T02:05:00+00:00"}

    line = progress.describe(record, NOW)

    assert line == ("job j1  protect  waiting for Manila for 1:30  elapsed 5:00  "
                    "deadline 02:05:00Z (in 3:55:00)")


def test_a_record_without_a_phase_shows_its_status():
    record = {"job_id": "j2", "operation": "delete", "status": "succeeded",
              "started_at": "2026-01-31T22:09:00+00:00",
              "finished_at": "2026-01-31T22:09:02.5+00:00"}

    assert progress.describe(record, NOW) == "job j2  delete  succeeded  elapsed 0:02"


def test_following_a_finished_job_writes_one_line_and_reads_nothing_more():
    stream = io.StringIO()
    record = {"job_id": "j3", "operation": "verify", "status": "failed"}

    def never() -> dict:
        raise AssertionError("a finished job is not read again")

    assert progress.follow(never, record, stream) is record
    assert stream.getvalue() == "job j3  verify  failed\n"


def test_following_prints_a_line_per_change_of_status_when_not_on_a_terminal():
    stream = io.StringIO()
    states = iter([{"job_id": "j4", "operation": "protect", "status": "running"},
                   {"job_id": "j4", "operation": "protect", "status": "running"},
                   {"job_id": "j4", "operation": "protect", "status": "succeeded"}])

    final = progress.follow(lambda: next(states), {"job_id": "j4", "operation": "protect",
                                                   "status": "accepted"},
                            stream, interval=0.001)

    assert final["status"] == "succeeded"
    assert [line.split("  ")[2] for line in stream.getvalue().splitlines()] == [
        "accepted", "running", "succeeded"]
