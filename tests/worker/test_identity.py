"""Who may ask the worker, without Keystone (the bus is trusted): strict contexts,
a token always, service credentials never in a caller's place, replies without
tracebacks, logs nobody can forge."""

from __future__ import annotations

import logging
import uuid

import pytest
from keystoneauth1 import loading as ks_loading
from oslo_context import context as oslo_context

from manila_protector import exception

OPTIONS = {"snapshot_name": "nightly", "description": "identity", "force": False}


def new_id():
    return str(uuid.uuid4())


@pytest.mark.parametrize("claims", [{"is_admin": True}, {"roles": ["admin"]}])
def test_an_admin_claim_without_a_token_never_gets_the_service_credentials(fresh, project,
                                                                          claims):
    conf, standin, client = fresh.conf, fresh.standin, fresh.client
    share = standin.create_share(project, size=1)
    conf.set_override("auth_type", "admin_token", group="manila")
    conf.register_opts(ks_loading.get_auth_plugin_conf_options("admin_token"), group="manila")
    conf.set_override("endpoint", standin.endpoint, group="manila")
    conf.set_override("token", "svc:service-project", group="manila")
    fresh.make_worker()
    intruder = oslo_context.RequestContext(project_id=uuid.uuid4().hex, user_id="eve",
                                           **claims)
    standin.reset_requests()

    with pytest.raises(exception.NotAuthorized):
        client.protect(intruder, new_id(), share["id"], OPTIONS)
    with pytest.raises(exception.NotAuthorized):
        client.list_resources(intruder)

    assert standin.count_requests() == 0
    assert standin.snapshots(share_id=share["id"]) == []


@pytest.mark.parametrize(("claims", "field"), [
    ({"roles": "badminton"}, "context.roles"),
    ({"roles": ["member", 7]}, "context.roles"),
    ({"is_admin": "false"}, "context.is_admin"),
    ({"user_id": 42}, "context.user_id"),
    ({"project_id": "a b"}, "context.project_id"),
    ({"roles": ["member"] * 100}, "context.roles"),
])
def test_a_context_of_the_wrong_shape_is_refused_typed(worker, client, project, share, standin,
                                                       claims, field):
    values = {"auth_token": f"alice:{project}", "user_id": "alice", "project_id": project,
              "roles": ["member", "reader"], **claims}
    standin.reset_requests()
    with pytest.raises(exception.InvalidRequest) as info:
        client._client.call(values, "protect", job_id=new_id(), share_id=share["id"],
                            parameters=OPTIONS, wait=True)
    assert info.value.details["field"] == field
    assert standin.count_requests() == 0


def test_a_context_too_large_is_refused(worker, client, ctxt, share, standin, conf):
    ctxt.service_catalog = [{"type": "x", "endpoints": [],
                             "name": "y" * conf.worker.max_context_bytes}]
    with pytest.raises(exception.InvalidRequest) as info:
        client.protect(ctxt, new_id(), share["id"], OPTIONS)
    assert info.value.details == {"field": "context", "rule": "max_bytes"}
    assert standin.count_requests(mutating=True) == 0


def test_every_method_wants_a_token(worker, client, ctxt, project, share):
    record = client.protect(ctxt, new_id(), share["id"], OPTIONS)
    anonymous = oslo_context.RequestContext(project_id=project, user_id="alice",
                                            roles=["member"])
    with pytest.raises(exception.NotAuthorized):
        client.get_job(anonymous, record["job_id"])
    with pytest.raises(exception.NotAuthorized):
        client.show_resource(anonymous, share["id"])


def test_a_refusal_reaches_the_caller_typed_and_without_the_workers_traceback(
        worker, client, ctxt, share):
    with pytest.raises(exception.InvalidRequest) as info:
        client.protect(ctxt, "not-a-uuid", share["id"], OPTIONS)
    shown = str(info.value)
    assert "Traceback" not in shown and ".py" not in shown
    assert info.value.details == {"field": "job_id", "rule": "uuid"}


def test_a_job_id_with_a_newline_cannot_forge_a_log_line(worker, client, ctxt, share, caplog):
    caplog.set_level(logging.INFO, logger="manila_protector")
    with pytest.raises(exception.InvalidRequest):
        client.protect(ctxt, "x\nCRITICAL forged entry", share["id"], OPTIONS)
    lines = [line for record in caplog.records for line in record.getMessage().splitlines()]
    assert not any(line.startswith("CRITICAL forged") for line in lines)
    assert any("forged entry" in line for line in lines)  # it was logged, escaped


def test_deleting_another_projects_snapshot_is_not_found_and_the_snapshot_stays(
        worker, client, ctxt, share, standin):
    protected = client.protect(ctxt, new_id(), share["id"], OPTIONS)
    saved = protected["result"]
    other = uuid.uuid4().hex
    intruder = oslo_context.RequestContext(auth_token=f"eve:{other}", user_id="eve",
                                           project_id=other, roles=["member", "reader"])
    standin.reset_requests()

    record = client.delete(intruder, new_id(), share["id"], saved)

    assert record["status"] == "failed"
    assert record["error"]["code"] in ("not_found", "not_authorized")
    assert standin.snapshot(saved["snapshot_id"])["status"] == "available"
    assert standin.count_requests(mutating=True) == 0
