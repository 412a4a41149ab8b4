"""Version negotiation, headers, authentication and project isolation."""

from __future__ import annotations

import uuid

import pytest
from manilaclient import api_versions
from manilaclient import client as manila_client
from manilaclient import exceptions

from manila_standin import ManilaStandIn, StandInConfig


def test_client_negotiates_2_98_against_server_max_2_99(standin, client):
    assert client.api_version.get_string() == "2.98"
    assert standin.requests()[-1].status == 300  # discover_version read the root document


def test_versions_document_names_current_v2_with_min_and_max(http):
    answer = http("GET", "/", token=None)
    assert answer.status_code == 300
    current = [v for v in answer.json()["versions"] if v["status"] == "CURRENT"]
    assert [(v["id"], v["min_version"], v["version"]) for v in current] == [
        ("v2.0", "2.0", "2.99")
    ]


def test_v2_root_lists_only_the_v2_version(http):
    answer = http("GET", "/v2/", version="2.40")
    assert answer.status_code == 200
    assert [v["id"] for v in answer.json()["versions"]] == ["v2.0"]


def test_configured_max_version_is_announced_and_negotiated(clock, project_id):
    with ManilaStandIn(StandInConfig(max_version="2.60"), clock=clock) as small:
        probe = manila_client.Client(
            api_versions.MAX_VERSION,
            input_auth_token=f"u:{project_id}",
            service_catalog_url=small.endpoint,
        )
        wanted = api_versions.APIVersion(api_versions.MAX_VERSION)
        assert api_versions.discover_version(probe, wanted).get_string() == "2.60"


def test_version_above_server_max_is_answered_406(http):
    answer = http("GET", "/v2/shares", version="2.100")
    assert answer.status_code == 406
    assert answer.json()["computeFault"]["code"] == 406


def test_client_above_server_max_gets_not_acceptable(clock, project_id):
    with ManilaStandIn(StandInConfig(max_version="2.60"), clock=clock) as small:
        too_new = manila_client.Client(
            "2.70", input_auth_token=f"u:{project_id}", service_catalog_url=small.endpoint
        )
        with pytest.raises(exceptions.NotAcceptable) as raised:
            too_new.shares.list()
    assert "not supported by the API" in raised.value.message


def test_malformed_version_is_a_bad_request(http):
    answer = http("GET", "/v2/shares", version="two")
    assert answer.status_code == 400
    assert "badRequest" in answer.json()


def test_every_v2_answer_carries_version_vary_and_request_id(http):
    for path in ("/v2/shares", f"/v2/shares/{uuid.uuid4()}"):
        answer = http("GET", path, version="2.73")
        assert answer.headers["X-OpenStack-Manila-API-Version"] == "2.73"
        assert answer.headers["OpenStack-API-Version"] == "shared-file-system 2.73"
        assert "Vary" in answer.headers
        assert answer.headers["x-openstack-request-id"].startswith("req-")


def test_version_is_also_read_from_openstack_api_version_header(http):
    answer = http(
        "GET", "/v2/shares", headers={"OpenStack-API-Version": "shared-file-system 2.45"}
    )
    assert answer.headers["X-OpenStack-Manila-API-Version"] == "2.45"


def test_absent_version_means_2_0_with_pre_2_9_share_fields(standin, http, project_id):
    share = standin.create_share(project_id)
    answer = http("GET", f"/v2/shares/{share['id']}", token=f"u:{project_id}")
    assert answer.headers["X-OpenStack-Manila-API-Version"] == "2.0"
    body = answer.json()["share"]
    assert body["share_type"] == "default"  # the type name before 2.6
    assert body["export_locations"] and "user_id" not in body


def test_missing_or_empty_token_is_unauthorized(http):
    for token in (None, ""):
        answer = http("GET", "/v2/shares", token=token)
        assert answer.status_code == 401
        assert answer.json()["unauthorized"]["code"] == 401


def test_revoked_token_makes_the_client_raise_unauthorized(standin, make_client, project_id):
    token = f"user1:{project_id}"
    client = make_client(token)
    standin.revoke_token(token)
    with pytest.raises(exceptions.Unauthorized):
        client.shares.list()


def test_project_id_in_url_is_served_and_must_match_the_token(standin, http, project_id):
    share = standin.create_share(project_id)
    own = http("GET", f"/v2/{project_id}/shares", token=f"u:{project_id}", version="2.60")
    assert [s["id"] for s in own.json()["shares"]] == [share["id"]]
    assert own.json()["shares"][0]["links"][0]["href"].startswith(
        f"{standin.base_url}/v2/{project_id}/shares/"
    )
    other = http("GET", f"/v2/{uuid.uuid4().hex}/shares", token=f"u:{project_id}")
    assert other.status_code == 400
    assert other.json()["badRequest"]["message"] == "Malformed request url"


def test_token_path_client_talks_to_the_standin(standin, project_id):
    share = standin.create_share(project_id, name="via-token")
    probe = manila_client.Client(
        api_versions.MAX_VERSION,
        input_auth_token=f"u:{project_id}",
        service_catalog_url=standin.endpoint,
    )
    version = api_versions.discover_version(
        probe, api_versions.APIVersion(api_versions.MAX_VERSION)
    )
    client = manila_client.Client(
        version, input_auth_token=f"u:{project_id}", service_catalog_url=standin.endpoint
    )
    assert version.get_string() == "2.98"
    assert [s.name for s in client.shares.list()] == ["via-token"]
    assert client.shares.get(share["id"]).status == "available"


def test_noauth_lists_are_per_project(standin, make_client):
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    one = standin.create_share(first)
    two = standin.create_share(second)
    assert [s.id for s in make_client(f"u:{first}").shares.list()] == [one["id"]]
    assert [s.id for s in make_client(f"u:{second}").shares.list()] == [two["id"]]


def test_noauth_admin_may_list_all_tenants_and_filter_by_project(standin, make_client):
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    one = standin.create_share(first)
    two = standin.create_share(second)
    admin = make_client(f"u:{first}")
    everything = admin.shares.list(search_opts={"all_tenants": 1})
    assert {s.id for s in everything} == {one["id"], two["id"]}
    filtered = admin.shares.list(search_opts={"all_tenants": 1, "project_id": second})
    assert [s.id for s in filtered] == [two["id"]]


def test_member_token_gets_404_for_another_projects_share(standin, make_client):
    mine, theirs = uuid.uuid4().hex, uuid.uuid4().hex
    standin.register_token("member-token", "alice", mine, roles=["member", "reader"])
    own = standin.create_share(mine)
    foreign = standin.create_share(theirs)
    foreign_snapshot = standin.create_snapshot(foreign["id"])
    client = make_client("member-token")
    assert client.shares.get(own["id"]).id == own["id"]
    with pytest.raises(exceptions.NotFound):
        client.shares.get(foreign["id"])
    with pytest.raises(exceptions.NotFound):
        client.shares.delete(foreign["id"])
    with pytest.raises(exceptions.NotFound):
        client.share_snapshots.create(foreign["id"])
    with pytest.raises(exceptions.NotFound):
        client.share_snapshots.get(foreign_snapshot["id"])
    with pytest.raises(exceptions.NotFound):
        client.shares.create("NFS", 1, snapshot_id=foreign_snapshot["id"])
    with pytest.raises(exceptions.NotFound):
        client.shares.revert_to_snapshot(foreign["id"], foreign_snapshot["id"])
    assert standin.share(foreign["id"])["status"] == "available"


def test_member_token_ignores_all_tenants(standin, make_client):
    mine, theirs = uuid.uuid4().hex, uuid.uuid4().hex
    standin.register_token("member-token", "alice", mine, roles=["member"])
    own = standin.create_share(mine)
    standin.create_share(theirs)
    listed = make_client("member-token").shares.list(search_opts={"all_tenants": 1})
    assert [s.id for s in listed] == [own["id"]]


def test_registered_admin_token_sees_other_projects(standin, make_client):
    standin.register_token("admin-token", "root", uuid.uuid4().hex, roles=["admin"])
    foreign = standin.create_share(uuid.uuid4().hex)
    assert make_client("admin-token").shares.get(foreign["id"]).id == foreign["id"]


def test_default_client_listing_includes_other_projects_public_shares(standin, make_client):
    mine, theirs = uuid.uuid4().hex, uuid.uuid4().hex
    own = standin.create_share(mine)
    public = standin.create_share(theirs, is_public=True)
    standin.create_share(theirs, is_public=False)
    client = make_client(f"u:{mine}")
    assert {s.id for s in client.shares.list()} == {own["id"], public["id"]}
    assert [s.id for s in client.shares.list(search_opts={"is_public": False})] == [own["id"]]


def test_member_may_read_but_not_delete_another_projects_public_share(standin, make_client):
    mine = uuid.uuid4().hex
    standin.register_token("member-token", "alice", mine, roles=["member"])
    public = standin.create_share(uuid.uuid4().hex, is_public=True)
    client = make_client("member-token")
    assert client.shares.get(public["id"]).is_public is True
    with pytest.raises(exceptions.Forbidden):
        client.shares.delete(public["id"])
