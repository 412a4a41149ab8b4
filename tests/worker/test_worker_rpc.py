"""The worker over real oslo.messaging: protect -> restore -> delete by call and by cast,
idempotency, job conflicts, the share lock, bad input, tenants."""

from __future__ import annotations

import uuid

import pytest
from oslo_context import context as oslo_context
import oslo_messaging

from manila_protector import exception
from manila_protector.worker import locks as locks_mod

OPTIONS = {"snapshot_name": "nightly", "description": "rpc test", "force": False}


def new_id():
    return str(uuid.uuid4())


def events(collector, job_id):
    return [n["event_type"] for n in collector.for_job(job_id)]


def test_protect_restore_delete_by_call(worker, client, ctxt, share, standin, notifications):
    protect_id = new_id()
    protected = client.protect(ctxt, protect_id, share["id"], OPTIONS)
    assert protected["status"] == "succeeded"
    saved = protected["result"]
    assert standin.snapshot(saved["snapshot_id"])["status"] == "available"
    assert saved["access_rules"][0]["access_to"] == "10.1.0.0/16"

    restore_id = new_id()
    restored = client.restore(ctxt, restore_id, share["id"], saved, {"restore_name": "back"})
    assert restored["status"] == "succeeded"
    new_share = standin.share(restored["result"]["share_id"])
    assert new_share["name"] == "back" and new_share["status"] == "available"
    assert [r["access_to"] for r in standin.access_rules(new_share["id"])] == ["10.1.0.0/16"]

    delete_id = new_id()
    deleted = client.delete(ctxt, delete_id, share["id"], saved)
    assert deleted["status"] == "succeeded"
    assert standin.snapshot(saved["snapshot_id"]) is None

    job_ids = (protect_id, restore_id, delete_id)
    notifications.wait_for(lambda c: all(c.terminal(j) for j in job_ids))
    notes = [n for j in job_ids for n in notifications.for_job(j)]
    assert events(notifications, protect_id) == ["manila_protector.protect.start",
                                                  "manila_protector.protect.end"]
    end = notifications.terminal(protect_id)[0]
    assert end["payload"] == protected
    assert end["priority"] == "INFO"
    assert end["publisher_id"] == f"manila_protector.{worker.host}"
    assert all("alice:" not in repr(n) for n in notes)


def test_protect_restore_delete_by_cast(worker, client, ctxt, share, standin, notifications):
    protect_id = new_id()
    assert client.protect(ctxt, protect_id, share["id"], OPTIONS, cast=True) is None
    notifications.wait_for(lambda _: notifications.terminal(protect_id))
    saved = notifications.terminal(protect_id)[0]["payload"]["result"]
    restore_id, delete_id = new_id(), new_id()
    client.restore(ctxt, restore_id, share["id"], saved, {}, cast=True)
    notifications.wait_for(lambda _: notifications.terminal(restore_id))
    client.delete(ctxt, delete_id, share["id"], saved, cast=True)
    notifications.wait_for(lambda _: notifications.terminal(delete_id))
    for job_id, op in ((protect_id, "protect"), (restore_id, "restore"), (delete_id, "delete")):
        assert events(notifications, job_id) == [f"manila_protector.{op}.start",
                                                 f"manila_protector.{op}.end"]
        assert client.get_job(ctxt, job_id)["status"] == "succeeded"
    assert standin.snapshots(share_id=share["id"]) == []


def test_repeated_job_id_returns_the_same_job_and_makes_one_snapshot(
        worker, client, ctxt, share, standin, notifications):
    job_id = new_id()
    first = client.protect(ctxt, job_id, share["id"], OPTIONS)
    second = client.protect(ctxt, job_id, share["id"], OPTIONS)
    client.protect(ctxt, job_id, share["id"], OPTIONS, cast=True)
    assert client.get_job(ctxt, job_id) == first == second
    assert len(standin.snapshots(share_id=share["id"])) == 1
    assert events(notifications, job_id) == ["manila_protector.protect.start",
                                             "manila_protector.protect.end"]


def test_job_id_reused_for_another_operation_is_refused(worker, client, ctxt, share, standin):
    job_id = new_id()
    saved = client.protect(ctxt, job_id, share["id"], OPTIONS)["result"]
    before = standin.count_requests(mutating=True)
    with pytest.raises(exception.JobConflict) as info:
        client.delete(ctxt, job_id, share["id"], saved)
    assert info.value.code == "job_conflict"
    assert standin.count_requests(mutating=True) == before
    assert standin.snapshot(saved["snapshot_id"])["status"] == "available"


def test_share_locked_by_another_job_fails_busy_after_lock_wait(worker, client, ctxt, share,
                                                                 standin, conf):
    other = locks_mod.ShareLocks(
        "file://" + conf.coordination.lock_path, "intruder", lock_wait=1,
        backend_timeout=conf.coordination.backend_timeout)
    other.start()
    try:
        with other.hold(share["id"]):
            before = standin.count_requests(mutating=True)
            record = client.protect(ctxt, new_id(), share["id"], OPTIONS)
    finally:
        other.stop()
    assert record["status"] == "failed"
    assert record["error"]["code"] == "share_busy"
    assert record["error"]["retryable"] is True
    assert standin.count_requests(mutating=True) == before


def test_jobs_on_other_shares_are_not_blocked_by_a_locked_share(worker, client, ctxt, standin,
                                                                 project, conf):
    locked = standin.create_share(project, size=1)
    free = standin.create_share(project, size=1)
    other = locks_mod.ShareLocks(
        "file://" + conf.coordination.lock_path, "intruder", lock_wait=1,
        backend_timeout=conf.coordination.backend_timeout)
    other.start()
    try:
        with other.hold(locked["id"]):
            record = client.protect(ctxt, new_id(), free["id"], OPTIONS)
    finally:
        other.stop()
    assert record["status"] == "succeeded"


BAD_CALLS = [
    ("protect", {"job_id": "not-a-uuid", "share_id": "s", "parameters": OPTIONS}, "job_id"),
    ("protect", {"job_id": 42, "share_id": "s", "parameters": OPTIONS}, "job_id"),
    ("protect", {"share_id": "s", "parameters": OPTIONS}, "job_id"),
    ("protect", {"job_id": "J", "parameters": OPTIONS}, "share_id"),
    ("protect", {"job_id": "J", "share_id": "S", "parameters": "force"}, "parameters"),
    ("protect", {"job_id": "J", "share_id": "S", "parameters": {**OPTIONS, "force": "perhaps"}},
     "parameters.force"),
    ("protect", {"job_id": "J", "share_id": "S", "parameters": {"force": False}},
     "parameters.snapshot_name"),
    ("protect", {"job_id": "J", "share_id": "S", "parameters": OPTIONS, "colour": "red"},
     "colour"),
    ("protect", {"job_id": "J", "share_id": "S",
                 "parameters": {**OPTIONS, "description": "x" * 300_000}}, "parameters"),
    ("restore", {"job_id": "J", "share_id": "S", "parameters": {}}, "saved_info"),
    ("restore", {"job_id": "J", "share_id": "S", "saved_info": {"share_id": "S"},
                 "parameters": {}}, "saved_info.snapshot_id"),
    ("delete", {"job_id": "J", "share_id": "S",
                "saved_info": {"snapshot_id": "x", "share_id": "T", "size": 1,
                               "share_proto": "NFS"}}, "saved_info.share_id"),
    ("protect", {"job_id": "J", "share_id": "S", "parameters": OPTIONS, "wait": "yes"}, "wait"),
]


def _fill(kwargs, share_id):
    out = dict(kwargs)
    if out.get("job_id") == "J":
        out["job_id"] = new_id()
    if out.get("share_id") == "S":
        out["share_id"] = share_id
    if isinstance(out.get("saved_info"), dict) and out["saved_info"].get("share_id") == "S":
        out["saved_info"] = {**out["saved_info"], "share_id": share_id}
    return out


@pytest.mark.parametrize("method,kwargs,field", BAD_CALLS)
def test_bad_input_by_call_is_a_typed_error_and_no_manila_mutation(
        worker, client, ctxt, share, standin, method, kwargs, field):
    standin.reset_requests()
    with pytest.raises(exception.InvalidRequest) as info:
        client._client.call(ctxt, method, **_fill(kwargs, share["id"]))
    assert info.value.details["field"] == field
    assert standin.count_requests() == 0
    # The worker keeps running.
    assert client.protect(ctxt, new_id(), share["id"], OPTIONS)["status"] == "succeeded"


@pytest.mark.parametrize("method,kwargs,field", BAD_CALLS[:6])
def test_bad_input_by_cast_is_an_error_notification(worker, client, ctxt, share, standin,
                                                    notifications, method, kwargs, field):
    standin.reset_requests()
    sent = _fill(kwargs, share["id"])
    mark = notifications.mark()
    client._client.cast(ctxt, method, **sent)
    notifications.wait_for(lambda c: any(
        n["event_type"] == f"manila_protector.{method}.error" for n in c.since(mark)))
    error = [n for n in notifications.since(mark) if n["event_type"].endswith(".error")][0]
    assert error["priority"] == "ERROR"
    assert error["payload"]["status"] == "failed"
    assert error["payload"]["error"]["code"] == "invalid_request"
    assert error["payload"]["error"]["details"]["field"] == field
    assert standin.count_requests() == 0


def test_unknown_method_and_version_are_typed_by_the_dispatcher(worker, client, ctxt):
    with pytest.raises((oslo_messaging.NoSuchMethod, oslo_messaging.RemoteError)):
        client._client.call(ctxt, "explode")
    future = client._client.prepare(version="2.0")
    with pytest.raises((oslo_messaging.UnsupportedVersion, oslo_messaging.RemoteError)):
        future.call(ctxt, "get_job", job_id=new_id())


def test_request_without_a_token_is_refused(worker, client, project, share, standin):
    anonymous = oslo_context.RequestContext(project_id=project, user_id="bob")
    with pytest.raises(exception.NotAuthorized):
        client.protect(anonymous, new_id(), share["id"], OPTIONS)
    assert standin.count_requests(mutating=True) == 0


def test_another_projects_share_is_refused(worker, client, share, standin):
    intruder_project = uuid.uuid4().hex
    intruder = oslo_context.RequestContext(auth_token=f"eve:{intruder_project}",
                                           user_id="eve", project_id=intruder_project,
                                           roles=["member"])
    record = client.protect(intruder, new_id(), share["id"], OPTIONS)
    assert record["status"] == "failed"
    assert record["error"]["code"] == "not_authorized"
    assert standin.count_requests(mutating=True) == 0


def test_get_job_of_another_project_is_not_found(worker, client, ctxt, share):
    job_id = new_id()
    client.protect(ctxt, job_id, share["id"], OPTIONS)
    stranger = oslo_context.RequestContext(auth_token="x:y", project_id="y")
    with pytest.raises(exception.NotFound):
        client.get_job(stranger, job_id)
    with pytest.raises(exception.NotFound):
        client.get_job(ctxt, new_id())


def test_protectable_methods_list_and_show(worker, client, ctxt, share, standin, project):
    standin.create_share(uuid.uuid4().hex, size=1, is_public=True)
    listed = client.list_resources(ctxt)
    assert [s["id"] for s in listed] == [share["id"]]
    assert client.show_resource(ctxt, share["id"])["id"] == share["id"]
    deps = client.list_dependent_resources(ctxt, "OS::Keystone::Project", project)
    assert [s["id"] for s in deps] == [share["id"]]
    with pytest.raises(exception.InvalidRequest):
        client.list_dependent_resources(ctxt, "OS::Nova::Server", project)
