"""The fault suite's sizes, its table of counts and small helpers (``faults.harness``).

Kept out of ``conftest.py`` so that the tests import one module instance of it.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import time
import typing
import uuid

import pytest
from oslo_context import context as oslo_context

from support import rabbit


@dataclasses.dataclass(frozen=True)
class Size:
    """How much each fault test does."""

    name: str
    kill_trials: int
    broker_jobs: int
    redis_shares: int
    manila_jobs: int
    bad_payloads: int
    #: Trials of kill -9 during a restore, a revert, a delete (each); of a job resent
    #: to every worker at once.
    operation_kill_trials: int
    resend_trials: int


SIZES = {
    "ci": Size("ci", kill_trials=10, broker_jobs=120, redis_shares=12, manila_jobs=60,
               bad_payloads=1000, operation_kill_trials=5, resend_trials=5),
    "full": Size("full", kill_trials=50, broker_jobs=400, redis_shares=40, manila_jobs=200,
                 bad_payloads=10000, operation_kill_trials=50, resend_trials=50),
}


def chosen_size() -> Size:
    """``MANILA_PROTECTOR_FAULTS`` = ``ci`` (default) or ``full`` (the issue's sizes)."""
    name = os.environ.get("MANILA_PROTECTOR_FAULTS", "ci").strip().lower() or "ci"
    if name not in SIZES:
        raise pytest.UsageError(f"MANILA_PROTECTOR_FAULTS={name!r}: use one of {sorted(SIZES)}")
    return SIZES[name]


# -- the table of counts --------------------------------------------------------------------


@dataclasses.dataclass
class Row:
    """One count of one scenario; ``target`` None: informational."""

    scenario: str
    count: str
    value: typing.Any
    target: typing.Any = None

    @property
    def met(self) -> str:
        if self.target is None:
            return ""
        return "ok" if self.value == self.target else "MISSED"


ROWS: list[Row] = []
STARTED = time.time()


class Report:
    """One scenario's counts: ``add`` them all, then ``check()`` asserts the targets."""

    def __init__(self, scenario: str) -> None:
        self.scenario = scenario
        self.rows: list[Row] = []

    def add(self, count: str, value: typing.Any, target: typing.Any = None) -> None:
        row = Row(self.scenario, count, value, target)
        self.rows.append(row)
        ROWS.append(row)
        shown = "" if target is None else f" (target {target})"
        print(f"{self.scenario}: {count} = {value}{shown}")

    def missed(self) -> list[Row]:
        return [r for r in self.rows if r.target is not None and r.value != r.target]

    def check(self) -> None:
        """:raises AssertionError: naming every count that missed its target."""
        missed = self.missed()
        assert not missed, "targets missed: " + "; ".join(
            f"{r.count} = {r.value} (target {r.target})" for r in missed)


def table() -> list[str]:
    """The counts recorded so far as a Markdown table, with a heading line."""
    if not ROWS:
        return []
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"fault injection, size {chosen_size().name} ({when}; {platform.node()}, "
             f"{os.cpu_count()} CPUs, Python {platform.python_version()}; "
             f"{time.time() - STARTED:.0f} s)", ""]
    width = max(len(r.count) for r in ROWS)
    swidth = max(len(r.scenario) for r in ROWS)
    vwidth = max([5] + [len(str(r.value)) for r in ROWS])
    lines.append(f"| {'scenario':<{swidth}} | {'count':<{width}} | {'value':>{vwidth}} | "
                 f"target | met    |")
    lines.append(f"|{'-' * (swidth + 2)}|{'-' * (width + 2)}|{'-' * (vwidth + 2)}|"
                 f"--------|--------|")
    for row in ROWS:
        target = "" if row.target is None else str(row.target)
        lines.append(f"| {row.scenario:<{swidth}} | {row.count:<{width}} | "
                     f"{row.value!s:>{vwidth}} | {target:>6} | {row.met:<6} |")
    return lines


# -- helpers --------------------------------------------------------------------------------


def unavailable(what: str, reason: str) -> None:
    """Skip the test (fail it under ``CI``): ``what`` is missing."""
    message = f"{what} is not available: {reason}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def new_names() -> rabbit.Names:
    """A topic and a notification topic of their own."""
    suffix = uuid.uuid4().hex[:12]
    return rabbit.Names(topic=f"mp-fault-{suffix}", notification_topic=f"mp-fault-n-{suffix}")


def member_context(project: str, user: str = "alice") -> oslo_context.RequestContext:
    """A member's context with a noauth token (``user:project``) the stand-in accepts."""
    return oslo_context.RequestContext(auth_token=f"{user}:{project}", user_id=user,
                                       project_id=project, roles=["member", "reader"])


def print_logs(workers: rabbit.Workers) -> None:
    """Print the tail of each worker's log (pytest shows it when the test failed)."""
    seen = set()
    for worker in workers.started:
        if worker.host not in seen:
            seen.add(worker.host)
            print(f"---- tail of {worker.config.log_path}")
            print(worker.log_tail())
