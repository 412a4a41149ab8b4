"""What an operator reads in a worker's log: each job's lines under its own caller.

oslo.log writes the request id, user and project of the thread's current request
context on every line. A worker runs many callers' jobs on a few threads, so a job's
lines must carry that job's caller -- not whichever request that thread served last.
(Found by the Karbor tier, where one worker serves many projects' checkpoints in turn.)
"""

from __future__ import annotations

import uuid

import pytest
from oslo_context import context as oslo_context

pytestmark = pytest.mark.functional

OPTIONS = {"snapshot_name": "logs", "description": "", "force": False}


def test_each_jobs_log_lines_carry_its_own_callers_request_user_and_project(
        make_standin, workers, make_client):
    standin = make_standin()
    # One job thread: the jobs follow each other on it.
    config = workers.configure(standin, max_concurrent_jobs=1)
    workers.start(config)
    client = make_client()
    done = []
    for user in ("alice", "bob", "carol"):
        project = uuid.uuid4().hex
        share = standin.create_share(project, size=1)
        ctxt = oslo_context.RequestContext(
            auth_token=f"{user}:{project}", user_id=user, project_id=project,
            roles=["member", "reader"], request_id=f"req-{uuid.uuid4()}")
        record = client.protect(ctxt, str(uuid.uuid4()), share["id"], OPTIONS)
        assert record["status"] == "succeeded", record["error"]
        done.append((ctxt, share["id"], record["result"]["snapshot_id"]))

    log = config.log_path.read_text(errors="replace").splitlines()
    for ctxt, share_id, snapshot_id in done:
        lines = [line for line in log if share_id in line]
        # accepted, the snapshot requested, succeeded
        assert [line for line in lines if snapshot_id in line], lines
        assert len(lines) >= 3, lines
        identity = f"{ctxt.request_id} {ctxt.user_id} {ctxt.project_id} "
        assert [line for line in lines if identity not in line] == []
