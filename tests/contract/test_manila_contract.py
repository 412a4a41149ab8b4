"""The contract: what the worker does to a Manila, on the stand-in and on Manila 23 alike.

Each scenario runs through a worker process on RabbitMQ with the caller's context and
checks what Manila shows afterwards. A scenario that passes on one backend and fails on
the other is a bug in the stand-in (or in our reading of Manila).
"""

from __future__ import annotations

import signal
import uuid

import pytest
from oslo_context import context as oslo_context

from manila_protector import exception
from manila_protector.plugins import job_tags
from manila_protector.plugins import resources

from support import manila_backends

pytestmark = [pytest.mark.contract, pytest.mark.functional]

OPTIONS = {"snapshot_name": "contract", "description": "contract tier", "force": False}
RULES = (("ip", "10.0.0.0/24", "rw"), ("ip", "192.0.2.7", "ro"))
TAG = job_tags.KEY
PROTECT_START = "manila_protector.protect.start"
PROTECT_END = "manila_protector.protect.end"
#: Seconds a worker may take to exit after SIGTERM (its shutdown_timeout is 10 s).
STOP_WITHIN = 30.0


def new_id() -> str:
    return str(uuid.uuid4())


def caller(project: manila_backends.Project, token: str | None = None,
           roles: tuple[str, ...] = manila_backends.MEMBER_ROLES) -> oslo_context.RequestContext:
    """The context a caller sends: by default the project's noauth token, as a member."""
    return oslo_context.RequestContext(auth_token=token or project.token,
                                       user_id=project.user_id, project_id=project.id,
                                       roles=list(roles))


def rule_keys(rules) -> list[tuple[str, str, str]]:
    return sorted((r["access_type"], r["access_to"], r["access_level"]) for r in rules)


def succeeded(record: dict) -> dict:
    assert record["status"] == "succeeded", record["error"]
    return record["result"]


def failed(record: dict, code: str) -> dict:
    assert record["status"] == "failed", record["result"]
    assert record["error"]["code"] == code, record["error"]
    return record["error"]


def protected(client, ctxt, share_id: str) -> dict:
    """Protect ``share_id``; returns the saved info."""
    return succeeded(client.protect(ctxt, new_id(), share_id, OPTIONS))


# -- protect --------------------------------------------------------------------------------


def test_protect_leaves_an_available_snapshot_tagged_with_the_job(
        backend, workers, client, notifications):
    project = backend.new_project()
    share = backend.create_share(project, metadata={"owner": "contract"}, access_rules=RULES)
    workers.start()
    job_id = new_id()

    record = client.protect(caller(project), job_id, share["id"], OPTIONS)

    saved = succeeded(record)
    snapshot = backend.snapshot(saved["snapshot_id"])
    assert snapshot["status"] == "available"
    assert snapshot["share_id"] == share["id"]
    assert snapshot["project_id"] == project.id
    assert snapshot["metadata"] == {TAG: job_id}
    assert (snapshot["name"], snapshot["description"]) == ("contract", "contract tier")
    assert [s["id"] for s in backend.snapshots(share["id"])] == [snapshot["id"]]
    # The saved info is Manila's view of the share and the snapshot.
    assert saved["share_id"] == share["id"]
    assert saved["size"] == snapshot["size"] == share["size"]
    assert saved["share_proto"] == share["share_proto"] == snapshot["share_proto"]
    assert saved["share_type"] == share["share_type"]
    assert saved["availability_zone"] == share["availability_zone"]
    assert saved["share_network_id"] == share["share_network_id"]
    assert saved["metadata"] == share["metadata"] == {"owner": "contract"}
    assert saved["snapshot_name"] == snapshot["name"]
    assert saved["created_at"] == snapshot["created_at"]
    assert saved["job_tag"] == job_id
    assert rule_keys(saved["access_rules"]) == rule_keys(backend.access_rules(share["id"]))
    assert rule_keys(saved["access_rules"]) == sorted(RULES)
    end = notifications.collector.wait_for(lambda c: c.terminal(job_id))[0]
    assert end["event_type"] == PROTECT_END
    assert end["payload"] == record


# -- restore ----------------------------------------------------------------------------------


def test_restore_into_a_new_share_reapplies_the_original_access_rules(
        backend, workers, client):
    project = backend.new_project()
    share = backend.create_share(project, metadata={"owner": "contract"}, access_rules=RULES)
    workers.start()
    ctxt = caller(project)
    saved = protected(client, ctxt, share["id"])
    job_id = new_id()

    result = succeeded(client.restore(ctxt, job_id, share["id"], saved,
                                      {"restore_name": "restored"}))

    assert result["mode"] == "new_share"
    restored = backend.share(result["share_id"])
    assert restored["id"] != share["id"]
    assert restored["status"] == result["status"] == "available"
    assert restored["project_id"] == project.id
    assert restored["snapshot_id"] == saved["snapshot_id"]
    assert restored["name"] == "restored"
    for field in ("share_proto", "size", "share_type", "availability_zone"):
        assert restored[field] == share[field], field
    assert restored["metadata"] == {"owner": "contract", TAG: job_id}
    rules = backend.access_rules(restored["id"])
    assert rule_keys(rules) == rule_keys(backend.access_rules(share["id"])) == sorted(RULES)
    assert {r["state"] for r in rules} == {"active"}
    assert rule_keys(result["access_rules"]) == sorted(RULES)
    # The original is untouched.
    assert backend.share(share["id"])["status"] == "available"
    assert {s["id"] for s in backend.shares(project.id)} == {share["id"], restored["id"]}


def test_revert_in_place_to_the_latest_snapshot(backend, workers, client):
    project = backend.new_project()
    share = backend.create_share(project, access_rules=RULES)
    workers.start()
    ctxt = caller(project)
    protected(client, ctxt, share["id"])
    latest = protected(client, ctxt, share["id"])

    result = succeeded(client.restore(ctxt, new_id(), share["id"], latest,
                                      {"share_id": share["id"]}))

    assert result["mode"] == "revert"
    assert result["share_id"] == share["id"]
    after = backend.share(share["id"])
    assert after["status"] == result["status"] == "available"
    assert after["size"] == share["size"]
    assert {s["status"] for s in backend.snapshots(share["id"])} == {"available"}
    assert [s["id"] for s in backend.shares(project.id)] == [share["id"]]
    assert rule_keys(backend.access_rules(share["id"])) == sorted(RULES)


def test_revert_to_a_snapshot_that_is_not_the_latest_is_refused_and_changes_nothing(
        backend, workers, client):
    project = backend.new_project()
    share = backend.create_share(project)
    workers.start()
    ctxt = caller(project)
    older = protected(client, ctxt, share["id"])
    latest = protected(client, ctxt, share["id"])
    before = {s["id"]: s["status"] for s in backend.snapshots(share["id"])}

    error = failed(client.restore(ctxt, new_id(), share["id"], older,
                                  {"share_id": share["id"]}), "conflict")

    assert latest["snapshot_id"] in error["message"]
    assert "latest" in error["message"]
    assert backend.share(share["id"])["status"] == "available"
    assert {s["id"]: s["status"] for s in backend.snapshots(share["id"])} == before
    assert set(before.values()) == {"available"}
    assert [s["id"] for s in backend.shares(project.id)] == [share["id"]]


# -- delete -----------------------------------------------------------------------------------


def test_delete_removes_the_snapshot_and_deleting_again_succeeds(backend, workers, client):
    project = backend.new_project()
    share = backend.create_share(project)
    workers.start()
    ctxt = caller(project)
    saved = protected(client, ctxt, share["id"])

    first = succeeded(client.delete(ctxt, new_id(), share["id"], saved))
    assert first == {"snapshot_id": saved["snapshot_id"], "already_gone": False}
    assert backend.snapshot(saved["snapshot_id"]) is None
    assert backend.snapshots(share["id"]) == []

    again = succeeded(client.delete(ctxt, new_id(), share["id"], saved))
    assert again == {"snapshot_id": saved["snapshot_id"], "already_gone": True}
    assert backend.share(share["id"])["status"] == "available"


# -- idempotency and crashes ----------------------------------------------------------------


def test_the_same_job_id_twice_makes_one_snapshot(backend, workers, client, notifications):
    project = backend.new_project()
    share = backend.create_share(project)
    worker = workers.start()
    ctxt = caller(project)
    job_id = new_id()

    first = client.protect(ctxt, job_id, share["id"], OPTIONS)
    second = client.protect(ctxt, job_id, share["id"], OPTIONS)

    assert second == first
    saved = succeeded(first)
    snapshots = backend.snapshots(share["id"])
    assert [(s["id"], s["metadata"].get(TAG)) for s in snapshots] == [
        (saved["snapshot_id"], job_id)]
    assert worker.terminate(STOP_WITHIN) == 0
    notifications.barrier()
    assert notifications.collector.events(job_id) == [PROTECT_START, PROTECT_END]


def test_a_worker_killed_mid_protect_resumes_with_one_snapshot_and_one_end(
        backend, workers, client, notifications):
    project = backend.new_project()
    share = backend.create_share(project, share_type=backend.share_types.slow_snapshots)
    # A killed worker's Redis lock stays until its TTL: keep it short.
    config = workers.configure(lock_wait=60, lock_timeout=5)
    worker = workers.start(config)
    collector = notifications.collector
    job_id = new_id()

    client.protect(caller(project), job_id, share["id"], OPTIONS, cast=True)
    collector.wait_for(lambda c: PROTECT_START in c.events(job_id), what="the .start")
    creating = backend._wait(
        "a snapshot being made", lambda: [s for s in backend.snapshots(share["id"])
                                          if s["status"] == "creating"])
    assert worker.kill() == -signal.SIGKILL

    restarted = workers.start(config)  # same host, same journal
    end = collector.wait_for(lambda c: c.terminal(job_id), what="the job's end",
                             timeout=60 + backend.slow_snapshot_seconds)[0]

    assert end["event_type"] == PROTECT_END, end
    saved = succeeded(end["payload"])
    snapshots = backend.snapshots(share["id"])
    assert [(s["id"], s["status"], s["metadata"].get(TAG)) for s in snapshots] == [
        (creating[0]["id"], "available", job_id)]
    assert saved["snapshot_id"] == creating[0]["id"]
    assert restarted.terminate(STOP_WITHIN) == 0
    notifications.barrier()
    assert collector.events(job_id) == [PROTECT_START, PROTECT_END]


# -- typed failures ---------------------------------------------------------------------------


def test_protect_of_a_share_in_error_fails_typed_and_leaves_nothing(backend, workers, client):
    project = backend.new_project()
    share = backend.create_share(project)
    backend.put_share_in_error(share["id"])
    workers.start()

    error = failed(client.protect(caller(project), new_id(), share["id"], OPTIONS),
                   "invalid_status")

    assert error["details"] == {"share_id": share["id"], "status": "error"}
    assert backend.snapshots(share["id"]) == []
    assert backend.share(share["id"])["status"] == "error"


def test_protect_of_a_share_type_without_snapshots_fails_typed_and_leaves_nothing(
        backend, workers, client):
    project = backend.new_project()
    share = backend.create_share(project, share_type=backend.share_types.no_snapshots)
    assert share["snapshot_support"] is False
    workers.start()

    error = failed(client.protect(caller(project), new_id(), share["id"], OPTIONS),
                   "unsupported")

    assert "capability" in error["message"]
    assert backend.snapshots(share["id"]) == []
    assert backend.share(share["id"])["status"] == "available"


# -- listing -----------------------------------------------------------------------------------


def test_dependents_of_a_project_and_listing_show_only_that_projects_shares(
        backend, workers, client):
    mine, theirs = backend.new_project(), backend.new_project("bob")
    my_shares = [backend.create_share(mine)["id"] for _ in range(2)]
    broken = backend.create_share(mine)["id"]
    backend.put_share_in_error(broken)
    their_share = backend.create_share(theirs)["id"]
    workers.start()
    ctxt = caller(mine)

    listed = client.list_resources(ctxt)
    dependents = client.list_dependent_resources(ctxt, resources.PROJECT_RESOURCE_TYPE, mine.id)

    assert sorted(s["id"] for s in listed) == sorted(my_shares)
    assert sorted(s["id"] for s in dependents) == sorted(my_shares)
    assert {s["project_id"] for s in dependents} == {mine.id}
    with pytest.raises(exception.NotAuthorized):
        client.list_dependent_resources(ctxt, resources.PROJECT_RESOURCE_TYPE, theirs.id)
    admin = caller(backend.new_project("root"), roles=manila_backends.ADMIN_ROLES)
    assert [s["id"] for s in client.list_dependent_resources(
        admin, resources.PROJECT_RESOURCE_TYPE, theirs.id)] == [their_share]


# -- tenant isolation under Manila's policy -------------------------------------------------------


def test_a_member_cannot_protect_restore_from_or_delete_another_projects_share(
        backend, workers, client):
    owner, intruder = backend.new_project("bob"), backend.new_project("mallory")
    share = backend.create_share(owner, access_rules=RULES)
    workers.start(endpoint=backend.policy_endpoint)
    owner_ctxt = caller(owner, backend.policy_token(owner.id, "bob",
                                                    manila_backends.MEMBER_ROLES))
    intruder_ctxt = caller(intruder, backend.policy_token(intruder.id, "mallory",
                                                          manila_backends.MEMBER_ROLES))
    saved = protected(client, owner_ctxt, share["id"])  # the owner may, under the policy

    failed(client.protect(intruder_ctxt, new_id(), share["id"], OPTIONS), "not_found")
    failed(client.restore(intruder_ctxt, new_id(), share["id"], saved, {}), "not_found")
    failed(client.restore(intruder_ctxt, new_id(), share["id"], saved,
                          {"share_id": share["id"]}), "not_found")
    # Manila answers 404 for another project's snapshot, exactly as for a deleted one; the
    # intruder cannot see the share either, so nothing shows the snapshot is gone: not_found,
    # never a "deleted" that leaves the owner's snapshot in place.
    refused = failed(client.delete(intruder_ctxt, new_id(), share["id"], saved), "not_found")
    assert saved["snapshot_id"] in refused["message"]

    assert [(s["id"], s["status"]) for s in backend.snapshots(share["id"])] == [
        (saved["snapshot_id"], "available")]
    assert backend.shares(intruder.id) == []
    assert [s["id"] for s in backend.shares(owner.id)] == [share["id"]]
    assert client.list_resources(intruder_ctxt) == []
    assert [s["id"] for s in client.list_resources(owner_ctxt)] == [share["id"]]


def test_an_admin_can_protect_restore_from_and_delete_another_projects_share(
        backend, workers, client):
    owner, operator = backend.new_project("bob"), backend.new_project("root")
    share = backend.create_share(owner, access_rules=RULES)
    workers.start(endpoint=backend.policy_endpoint)
    admin = caller(operator, backend.policy_token(operator.id, "root",
                                                  manila_backends.ADMIN_ROLES),
                   roles=manila_backends.ADMIN_ROLES)
    job_id = new_id()

    saved = succeeded(client.protect(admin, job_id, share["id"], OPTIONS))
    snapshot = backend.snapshot(saved["snapshot_id"])
    assert snapshot["status"] == "available"
    assert snapshot["share_id"] == share["id"]
    assert snapshot["metadata"] == {TAG: job_id}
    # Manila gives a snapshot the project of whoever made it.
    assert snapshot["project_id"] == operator.id

    restored = succeeded(client.restore(admin, new_id(), share["id"], saved, {}))
    new_share = backend.share(restored["share_id"])
    assert new_share["status"] == "available"
    assert new_share["project_id"] == operator.id
    assert rule_keys(backend.access_rules(new_share["id"])) == sorted(RULES)

    deleted = succeeded(client.delete(admin, new_id(), share["id"], saved))
    assert deleted == {"snapshot_id": saved["snapshot_id"], "already_gone": False}
    assert backend.snapshots(share["id"]) == []
    assert backend.share(share["id"])["status"] == "available"
