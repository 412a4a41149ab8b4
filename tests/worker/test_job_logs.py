"""Logs that follow a job: every line a job's thread writes carries the caller's request id
and the job id, as oslo.log formats it in the worker's log file."""

from __future__ import annotations

import logging
import re
import typing
import uuid

import pytest
from oslo_context import context as oslo_context
from oslo_log import formatters

OPTIONS = {"snapshot_name": "nightly", "description": "log test", "force": False}
_JOB_TAG = re.compile(r"\[job ([0-9a-f-]{36})\]")


class Lines(logging.Handler):
    """The worker's log lines as its log file shows them (oslo.log's ContextFormatter)."""

    def __init__(self, conf: typing.Any) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(formatters.ContextFormatter(config=conf))
        self.lines: list[tuple[str, str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.threadName, record.name, self.format(record)))


@pytest.fixture
def log_lines(fresh) -> typing.Iterator[Lines]:
    handler = Lines(fresh.conf)
    logger = logging.getLogger("manila_protector")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def caller(project: str, request_id: str) -> oslo_context.RequestContext:
    return oslo_context.RequestContext(
        auth_token=f"alice:{project}", user_id="alice", project_id=project,
        roles=["member"], request_id=request_id, overwrite=False)


def test_every_line_of_concurrent_jobs_carries_its_own_request_id_and_job_id(
        fresh, log_lines, project):
    # Two job threads, two rounds: the second round's jobs run in threads that
    # ran the first round's (where a request id used to leak from one job to the next).
    fresh.conf.set_override("max_concurrent_jobs", 2, group="worker")
    fresh.make_worker()
    requests: dict[str, str] = {}
    for _round in range(2):
        batch = []
        for _ in range(2):
            share = fresh.standin.create_share(project, size=1)
            job_id, request_id = str(uuid.uuid4()), f"req-{uuid.uuid4()}"
            requests[job_id] = request_id
            batch.append(job_id)
            fresh.client.protect(caller(project, request_id), job_id, share["id"], OPTIONS,
                                 cast=True)
        fresh.notifications.wait_for(lambda c, ids=batch: all(c.terminal(j) for j in ids))
        for job_id in batch:
            assert fresh.notifications.terminal(job_id)[0]["payload"]["status"] == "succeeded"

    # Lines of job threads; those naming a job of no worker of this test come from
    # threads an earlier test's worker left running (a job still running at its stop).
    job_lines = [(name, line) for thread, name, line in log_lines.lines
                 if thread.startswith("job-")
                 and not (_JOB_TAG.search(line)
                          and _JOB_TAG.search(line).group(1) not in requests)]
    assert job_lines
    for name, line in job_lines:
        owners = [job_id for job_id in requests if f"[job {job_id}]" in line]
        assert len(owners) == 1, line
        [owner] = owners
        assert requests[owner] in line, line
        assert not [r for j, r in requests.items() if j != owner and r in line], line
    for job_id, request_id in requests.items():
        mine = [(name, line) for name, line in job_lines if f"[job {job_id}]" in line]
        # The core's lines and the plugin's alike.
        assert any(name.startswith("manila_protector.plugins.") and "snapshot" in line
                   for name, line in mine)
        assert any(name == "manila_protector.worker.runner" and "succeeded" in line
                   for name, line in mine)
    # The caller's request id is also on the lines of its RPC request (the accept).
    for job_id, request_id in requests.items():
        assert any(request_id in line and "accepted" in line
                   for _, _, line in log_lines.lines)
