"""Share and snapshot metadata behave alike, as in Manila (one ``MetadataController``).

Both are looked up as the caller may see them (404 ``"<Resource> not found."``
otherwise), a change is authorised on the owner's project, and a change is a
mutation of the share for the conflict detector.
"""

from __future__ import annotations

import dataclasses
import typing
import uuid

import pytest
from manilaclient import exceptions


@dataclasses.dataclass(frozen=True)
class Kind:
    """How a test reaches one kind of resource with metadata."""

    manager: str  # python-manilaclient's manager attribute
    collection: str  # the URL's collection
    operation: str  # the conflict detector's prefix
    not_found: str  # Manila's 404 text
    make: typing.Callable[[typing.Any, str], dict]  # (standin, project) -> the record

    def of(self, client: typing.Any) -> typing.Any:
        return getattr(client, self.manager)

    def share_id(self, record: dict) -> str:
        return record.get("share_id") or record["id"]


SHARE = Kind("shares", "shares", "share", "Share not found.",
             lambda standin, project: standin.create_share(project, metadata={"k": "v"}))
SNAPSHOT = Kind("share_snapshots", "snapshots", "snapshot", "Share_snapshot not found.",
                lambda standin, project: standin.create_snapshot(
                    standin.create_share(project)["id"], metadata={"k": "v"}))


@pytest.fixture(params=[SHARE, SNAPSHOT], ids=["share", "snapshot"])
def kind(request) -> Kind:
    return request.param


@pytest.fixture
def member(standin, make_client):
    """A (non-admin) member of a fresh project, and that project's id."""
    project = uuid.uuid4().hex
    standin.register_token("member-token", "alice", project, roles=["member", "reader"])
    return make_client("member-token"), project


def test_metadata_crud_works_alike_for_shares_and_snapshots(standin, client, project_id, kind):
    record = kind.make(standin, project_id)
    manager = kind.of(client)
    manager.set_metadata(record["id"], {"b": "2"})
    assert manager.get_metadata(record["id"]).to_dict() == {"k": "v", "b": "2"}
    manager.update_all_metadata(record["id"], {"c": "3"})
    assert manager.get_metadata(record["id"]).to_dict() == {"c": "3"}
    manager.delete_metadata(record["id"], ["c"])
    assert manager.get_metadata(record["id"]).to_dict() == {}
    with pytest.raises(exceptions.NotFound):
        manager.delete_metadata(record["id"], ["missing"])


def test_another_projects_metadata_is_not_found_for_reads_and_changes(standin, member, kind):
    client, _ = member
    theirs = kind.make(standin, uuid.uuid4().hex)
    manager = kind.of(client)
    for attempt in (
        lambda: manager.get_metadata(theirs["id"]),
        lambda: manager.set_metadata(theirs["id"], {"x": "y"}),
        lambda: manager.update_all_metadata(theirs["id"], {"x": "y"}),
        lambda: manager.delete_metadata(theirs["id"], ["k"]),
    ):
        with pytest.raises(exceptions.NotFound):
            attempt()
    shown = standin.share(theirs["id"]) if kind is SHARE else standin.snapshot(theirs["id"])
    assert shown["metadata"] == {"k": "v"}


def test_the_not_found_answer_names_the_resource_like_manila(standin, http, member, kind):
    theirs = kind.make(standin, uuid.uuid4().hex)
    for method, suffix, body in (
        ("GET", "", None),
        ("GET", "/k", None),
        ("POST", "", {"metadata": {"x": "y"}}),
        ("PUT", "/k", {"metadata": {"k": "w"}}),
        ("DELETE", "/k", None),
    ):
        answer = http(method, f"/v2/{kind.collection}/{theirs['id']}/metadata{suffix}",
                      token="member-token", version="2.73", json=body)
        assert answer.status_code == 404
        assert answer.json() == {"itemNotFound": {"code": 404, "message": kind.not_found}}


def test_an_admin_may_change_another_projects_metadata(standin, client, kind):
    theirs = kind.make(standin, uuid.uuid4().hex)
    kind.of(client).set_metadata(theirs["id"], {"by": "admin"})
    assert kind.of(client).get_metadata(theirs["id"]).to_dict() == {"k": "v", "by": "admin"}


def test_another_projects_public_share_metadata_is_readable_but_not_changeable(
    standin, member
):
    client, _ = member
    public = standin.create_share(uuid.uuid4().hex, is_public=True, metadata={"k": "v"})
    assert client.shares.get_metadata(public["id"]).to_dict() == {"k": "v"}
    for attempt in (
        lambda: client.shares.set_metadata(public["id"], {"x": "y"}),
        lambda: client.shares.update_all_metadata(public["id"], {"x": "y"}),
        lambda: client.shares.delete_metadata(public["id"], ["k"]),
    ):
        with pytest.raises(exceptions.Forbidden):
            attempt()
    assert standin.share(public["id"])["metadata"] == {"k": "v"}


def test_snapshots_of_another_projects_public_share_stay_that_projects(standin, member):
    client, _ = member
    public = standin.create_share(uuid.uuid4().hex, is_public=True)
    theirs = standin.create_snapshot(public["id"], metadata={"k": "v"})
    with pytest.raises(exceptions.NotFound):
        client.share_snapshots.set_metadata(theirs["id"], {"x": "y"})
    assert standin.snapshot(theirs["id"])["metadata"] == {"k": "v"}


def test_a_member_changes_its_own_projects_metadata(standin, member, kind):
    client, project = member
    mine = kind.make(standin, project)
    kind.of(client).set_metadata(mine["id"], {"x": "y"})
    assert kind.of(client).get_metadata(mine["id"]).to_dict() == {"k": "v", "x": "y"}


@pytest.mark.parametrize("change,action", [
    (lambda manager, rid: manager.set_metadata(rid, {"x": "y"}), "set"),
    (lambda manager, rid: manager.update_all_metadata(rid, {"x": "y"}), "replace"),
    (lambda manager, rid: manager.delete_metadata(rid, ["k"]), "delete"),
], ids=["set", "replace", "delete"])
def test_a_metadata_change_during_an_open_snapshot_create_is_recorded(
    standin, client, project_id, kind, change, action
):
    record = kind.make(standin, project_id)
    share_id = kind.share_id(record)
    standin.config.delays.snapshot_create = 10
    client.share_snapshots.create(share_id)
    change(kind.of(client), record["id"])
    (conflict,) = standin.conflicts()
    assert conflict.share_id == share_id
    assert (conflict.first_operation, conflict.second_operation) == (
        "snapshot_create", f"{kind.operation}_metadata_{action}")
    assert conflict.second_accepted


def test_a_refused_metadata_change_during_an_open_operation_is_recorded(
    standin, client, project_id, kind, http
):
    record = kind.make(standin, project_id)
    standin.config.delays.snapshot_create = 10
    client.share_snapshots.create(kind.share_id(record))
    answer = http("POST", f"/v2/{kind.collection}/{record['id']}/metadata", version="2.73",
                  json={"metadata": {"": "blank key"}})
    assert answer.status_code == 400
    (conflict,) = standin.conflicts()
    assert conflict.second_operation == f"{kind.operation}_metadata_set"
    assert conflict.second_status == 400 and not conflict.second_accepted


def test_metadata_changes_with_nothing_open_do_not_conflict(standin, client, project_id, kind):
    record = kind.make(standin, project_id)
    client.share_snapshots.create(kind.share_id(record))
    kind.of(client).set_metadata(record["id"], {"x": "y"})
    kind.of(client).delete_metadata(record["id"], ["x"])
    assert standin.conflicts() == []
