"""Project A's context against project B's share: nothing succeeds, nothing changes.

B protects its share (by call) to get real saved info; A then tries to protect B's
share, restore B's snapshot (into a new share, and in place), delete and verify it,
read B's job, reuse B's job id, and look at B's share and project.
"""

from __future__ import annotations

import typing
import uuid

import pytest

from manila_protector import exception

from faults import harness
from faults import outcomes

# The full size (MANILA_PROTECTOR_FAULTS=full) outlasts the suite-wide 300 s timeout.
pytestmark = [pytest.mark.functional, pytest.mark.faults, pytest.mark.timeout(1800)]

REFUSED = frozenset({"not_authorized", "not_found"})


def attempt(action: typing.Callable[[], typing.Any]) -> tuple[str, str]:
    """Run one of A's attempts: ``("succeeded"|"refused"|"other", detail)``."""
    try:
        result = action()
    except exception.ProtectorError as error:
        return ("refused" if error.code in REFUSED else "other"), f"{error.code}: {error}"
    if isinstance(result, dict) and result.get("status") == "failed":
        code = result["error"]["code"]
        return ("refused" if code in REFUSED else "other"), f"{code}: {result['error']}"
    return "succeeded", repr(result)[:300]


def test_a_project_cannot_protect_restore_or_delete_another_projects_share(
        report, make_standin, redis_server, workers, notifications, make_client, project):
    standin = make_standin()
    project_a, project_b = project, uuid.uuid4().hex
    ctxt_a = harness.member_context(project_a, user="mallory")
    ctxt_b = harness.member_context(project_b, user="bob")
    own_share_a = standin.create_share(project_a, size=1)
    share_b = standin.create_share(project_b, size=1, access_rules=[("ip", "10.0.0.0/24")])
    config = workers.configure(standin, redis_url=redis_server.url)
    worker = workers.start(config)
    client = make_client()

    job_b = outcomes.new_id()
    protected = client.protect(ctxt_b, job_b, share_b["id"], outcomes.OPTIONS)
    assert protected["status"] == "succeeded", protected
    saved_b = protected["result"]
    before = {"share": standin.share(share_b["id"]), "snapshots": standin.snapshots(),
              "shares": [s["id"] for s in standin.shares()]}
    mutating_before = standin.count_requests(mutating=True)

    attempts = {
        "protect B's share": lambda: client.protect(
            ctxt_a, outcomes.new_id(), share_b["id"], outcomes.OPTIONS),
        "restore B's snapshot into a new share": lambda: client.restore(
            ctxt_a, outcomes.new_id(), share_b["id"], saved_b, {"restore_name": "stolen"}),
        "revert B's share to B's snapshot": lambda: client.restore(
            ctxt_a, outcomes.new_id(), share_b["id"], saved_b, {"share_id": share_b["id"]}),
        "delete B's snapshot": lambda: client.delete(
            ctxt_a, outcomes.new_id(), share_b["id"], saved_b),
        "verify B's snapshot": lambda: client.verify(
            ctxt_a, outcomes.new_id(), share_b["id"], saved_b),
        "read B's job": lambda: client.get_job(ctxt_a, job_b, server=config.host),
        "protect B's share under B's job id": lambda: client.protect(
            ctxt_a, job_b, share_b["id"], outcomes.OPTIONS),
        "show B's share": lambda: client.show_resource(ctxt_a, share_b["id"]),
        "list B's project": lambda: client.list_dependent_resources(
            ctxt_a, "OS::Keystone::Project", project_b),
    }
    # A's own share under B's job id: refused, without telling A about B's job.
    attempts["protect A's own share under B's job id"] = lambda: client.protect(
        ctxt_a, job_b, own_share_a["id"], outcomes.OPTIONS)
    results = {name: attempt(action) for name, action in attempts.items()}
    reuse = results["protect A's own share under B's job id"]
    mutating_by_a = [r for r in standin.requests() if r.mutating and r.project_id == project_a]
    after = {"share": standin.share(share_b["id"]), "snapshots": standin.snapshots(),
             "shares": [s["id"] for s in standin.shares()]}
    assert worker.terminate(config.shutdown_timeout + 20) == 0

    row = report("tenants (A's context against B's share)")
    row.add("A's attempts", len(results))
    row.add("A's attempts that succeeded",
            sum(1 for kind, _ in results.values() if kind == "succeeded"), 0)
    row.add("A's attempts refused otherwise than not_authorized/not_found",
            sum(1 for kind, _ in results.values() if kind == "other"), 0)
    row.add("mutating requests by A that reached Manila", len(mutating_by_a), 0)
    row.add("mutating requests after B's protect", standin.count_requests(mutating=True)
            - mutating_before, 0)
    row.add("B's share, snapshots or the share list changed", int(before != after), 0)
    row.add("B's share id told to A when A reused B's job id",
            int(share_b["id"] in reuse[1]), 0)
    for name, (kind, detail) in results.items():
        print(f"{name}: {kind} ({detail[:160]})")
    row.check()
