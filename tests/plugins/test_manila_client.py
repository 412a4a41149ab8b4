"""The Manila client module against the stand-in: negotiation, error translation, contexts."""

from __future__ import annotations

import socket
import threading
import urllib.parse

import pytest
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from oslo_config import cfg

from manila_protector import exception
from manila_protector import identity
from manila_protector import opts
from manila_protector.plugins import client_factory
from manila_protector.plugins import manila_client
from manila_standin import ManilaStandIn, StandInConfig

#: A token distinctive enough to be spotted in any message that leaks it.
SECRET_TOKEN = "tok-S3cr3t-9f2c7a1e-do-not-leak"


def plain_session(auth, connections):
    return ks_session.Session(auth=auth, session=connections)


def version_requests(standin):
    return [r for r in standin.requests() if r.method == "GET" and r.path == "/"]


def list_requests(standin):
    return [r for r in standin.requests()
            if r.method == "GET" and r.route in ("/shares", "/shares/detail")]


def last_request(standin, method, route_prefix):
    matching = [r for r in standin.requests()
                if r.method == method and r.route.startswith(route_prefix)]
    return matching[-1]


def closed_port_endpoint():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v2"


def assert_token_absent(exc, token=SECRET_TOKEN):
    assert token not in str(exc)
    assert token not in repr(exc.to_dict())


def caller(token, service_catalog=None, is_admin=False):
    """The caller of a request (identity.Caller), as the runner builds it."""
    return identity.Caller(user_id="user", project_id=token.split(":")[-1] if token else None,
                           is_admin=is_admin, auth_token=token, service_catalog=service_catalog)


def catalog(url, interface="public", region="RegionOne", service_type="sharev2"):
    return [
        {"type": "identity", "name": "keystone",
         "endpoints": [{"interface": "public", "region": region, "url": "http://ks/v3"}]},
        {"type": service_type, "name": "manilav2",
         "endpoints": [{"interface": interface, "region": region, "region_id": region,
                        "url": url}]},
    ]


# -- microversion negotiation -------------------------------------------------------


def test_factory_negotiates_the_clients_newest_microversion(standin, manila, share):
    assert manila_client.CLIENT_MAX_VERSION.get_string() == "2.98"
    assert manila.version.get_string() == "2.98"
    manila.get_share(share["id"])
    assert last_request(standin, "GET", "/shares/").microversion == "2.98"
    assert manila.supports_access_rules_api
    assert manila.supports_revert
    assert manila.supports_snapshot_metadata


def test_configured_max_api_version_caps_the_negotiation(standin, project, share):
    factory = client_factory.ClientFactory(plain_session, max_version="2.72")
    manila = factory.for_token(f"user:{project}", standin.endpoint)
    manila.get_share(share["id"])
    assert manila.version.get_string() == "2.72"
    assert last_request(standin, "GET", "/shares/").microversion == "2.72"
    assert not manila.supports_snapshot_metadata


def test_an_older_manila_gets_its_own_newest_microversion(factory, manual_clock, project):
    with ManilaStandIn(StandInConfig(max_version="2.40"), clock=manual_clock) as old:
        share = old.create_share(project, access_rules=[("ip", "10.1.0.0/16", "rw")])
        manila = factory.for_token(f"user:{project}", old.endpoint)
        assert manila.version.get_string() == "2.40"
        assert not manila.supports_access_rules_api
        assert manila.supports_revert
        assert not manila.supports_snapshot_metadata
        rules = manila.list_access_rules(share["id"])
        assert [(r["access_type"], r["access_to"]) for r in rules] == [("ip", "10.1.0.0/16")]
        assert last_request(old, "POST", "/shares/").microversion == "2.40"


def test_negotiation_happens_once_per_endpoint(standin, factory, project, other_project):
    factory.for_token(f"user:{project}", standin.endpoint)
    factory.for_token(f"user:{other_project}", standin.endpoint)
    assert len(version_requests(standin)) == 1
    factory.forget(standin.endpoint)
    factory.for_token(f"user:{project}", standin.endpoint)
    assert len(version_requests(standin)) == 2


# -- error translation --------------------------------------------------------------


def client_connections(port):
    """Established TCP connections from this host to ``port`` (Linux /proc)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if fields[3] == "01" and int(fields[2].rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


def test_jobs_of_one_thread_reuse_its_connection_whatever_their_token(
        standin, factory, project, other_project, share):
    port = urllib.parse.urlsplit(standin.endpoint).port
    before = client_connections(port)
    assert factory.for_token(f"user:{project}", standin.endpoint).get_share(share["id"])
    assert factory.for_token(f"user:{project}", standin.endpoint).get_share(share["id"])
    # Another project's token over the same connection still acts as that project.
    factory.for_token(f"user:{other_project}", standin.endpoint).list_snapshots(share["id"])
    assert client_connections(port) - before == 1
    assert [r.project_id for r in standin.requests()][-3:] == [project, project, other_project]
    seen_from_another_thread = []

    def another_thread():
        factory.for_token(f"user:{project}", standin.endpoint).get_share(share["id"])
        seen_from_another_thread.append(client_connections(port) - before)

    thread = threading.Thread(target=another_thread)
    thread.start()
    thread.join(30)
    assert seen_from_another_thread == [2]


def test_revoked_token_is_not_authorized_and_never_shown(standin, factory, project, share):
    standin.register_token(SECRET_TOKEN, "u", project, roles=["member"])
    manila = factory.for_token(SECRET_TOKEN, standin.endpoint)
    standin.revoke_token(SECRET_TOKEN)
    with pytest.raises(exception.NotAuthorized) as info:
        manila.get_share(share["id"])
    answered = last_request(standin, "GET", "/shares/")
    assert answered.status == 401
    assert info.value.request_id == answered.request_id
    assert not info.value.retryable
    assert_token_absent(info.value)


def test_empty_token_is_refused_before_any_request(standin, factory):
    with pytest.raises(exception.NotAuthorized):
        factory.for_token("", standin.endpoint)
    assert standin.count_requests() == 0


def test_missing_share_is_not_found_with_manilas_request_id(standin, manila):
    with pytest.raises(exception.NotFound) as info:
        manila.get_share("0e1f2a3b-0000-4000-8000-000000000000")
    answered = last_request(standin, "GET", "/shares/")
    assert answered.status == 404
    assert info.value.request_id == answered.request_id
    assert info.value.to_dict()["code"] == "not_found"


def test_revert_to_an_older_snapshot_is_a_conflict(standin, manila, share):
    older = standin.create_snapshot(share["id"], name="older")
    standin.create_snapshot(share["id"], name="newer")
    with pytest.raises(exception.Conflict) as info:
        manila.revert_share(share["id"], older["id"])
    answered = last_request(standin, "POST", "/shares/")
    assert answered.status == 409
    assert info.value.request_id == answered.request_id
    assert standin.share(share["id"])["status"] == "available"


def test_snapshot_over_quota_is_quota_exceeded(standin, manila, share, project):
    standin.set_quota(project, snapshots=0)
    with pytest.raises(exception.QuotaExceeded) as info:
        manila.create_snapshot(share_id=share["id"], force=False, name="n", description="d",
                               metadata=None)
    answered = last_request(standin, "POST", "/snapshots")
    assert answered.status == 413
    assert info.value.request_id == answered.request_id
    assert not info.value.retryable
    assert standin.snapshots(share_id=share["id"]) == []


def test_snapshot_of_a_share_type_without_snapshots_is_unsupported(standin, manila, project):
    no_snap = standin.add_share_type("no-snapshots", snapshot_support=False)
    share = standin.create_share(project, share_type=no_snap)
    with pytest.raises(exception.Unsupported) as info:
        manila.create_snapshot(share_id=share["id"], force=False, name="n", description="d",
                               metadata=None)
    answered = last_request(standin, "POST", "/snapshots")
    assert answered.status == 422
    assert info.value.request_id == answered.request_id


@pytest.mark.parametrize(("status", "error", "retryable"), [
    (400, exception.InvalidRequest, False),
    (401, exception.NotAuthorized, False),
    (403, exception.NotAuthorized, False),
    (404, exception.NotFound, False),
    (409, exception.Conflict, False),
    (413, exception.QuotaExceeded, False),
    (422, exception.Unsupported, False),
    (500, exception.ManilaUnavailable, True),
    (503, exception.ManilaUnavailable, True),
])
def test_each_manila_error_status_becomes_one_typed_error(standin, factory, project, share,
                                                          status, error, retryable):
    standin.register_token(SECRET_TOKEN, "u", project, roles=["member"])
    manila = factory.for_token(SECRET_TOKEN, standin.endpoint)
    standin.faults.fail_next(1, status, method="GET", path="/shares/")
    standin.reset_requests()

    with pytest.raises(error) as info:
        manila.get_share(share["id"])

    (answered,) = standin.requests()  # no retry behind the caller's back
    assert answered.status == status
    assert type(info.value) is error
    assert info.value.retryable is retryable
    assert info.value.request_id == answered.request_id
    assert f"HTTP {status}" in str(info.value)
    assert_token_absent(info.value)
    # The fault was one request: the next one works.
    assert manila.get_share(share["id"])["id"] == share["id"]


def test_unreachable_manila_is_unavailable_and_retryable(factory):
    with pytest.raises(exception.ManilaUnavailable) as info:
        factory.for_token(SECRET_TOKEN, closed_port_endpoint())
    assert info.value.retryable
    assert info.value.request_id is None
    assert_token_absent(info.value)


# -- contexts, catalogs, configuration -------------------------------------------------


def test_context_with_a_token_uses_it_against_the_endpoint_override(standin, project,
                                                                    other_project):
    mine = standin.create_share(project)
    standin.create_share(other_project)
    factory = client_factory.ClientFactory(plain_session,
                                          endpoint_override=standin.endpoint)
    manila = factory.for_caller(caller(f"user:{project}", None, False))
    assert [s["id"] for s in manila.list_shares({}, 10)] == [mine["id"]]
    assert {r.project_id for r in list_requests(standin)} == {project}


def test_context_with_a_token_finds_manila_in_its_service_catalog(standin, factory, project):
    mine = standin.create_share(project)
    manila = factory.for_caller(caller(f"user:{project}", catalog(standin.endpoint), False))
    assert manila.get_share(mine["id"])["project_id"] == project


@pytest.mark.parametrize("is_admin", [False, True])
def test_a_caller_without_a_token_is_refused_even_with_service_credentials(standin, is_admin):
    # Service credentials never stand in for a caller, whatever the context claims.
    service = token_endpoint.Token(standin.endpoint, "svc:service-project")
    factory = client_factory.ClientFactory(plain_session,
                                          endpoint_override=standin.endpoint,
                                          service_auth=service)
    with pytest.raises(exception.NotAuthorized):
        factory.for_caller(caller(None, None, is_admin))
    assert standin.count_requests() == 0


def test_the_service_credentials_serve_only_the_services_own_work(standin, project):
    theirs = standin.create_share(project)
    service = token_endpoint.Token(standin.endpoint, "svc:service-project")
    factory = client_factory.ClientFactory(plain_session,
                                          endpoint_override=standin.endpoint,
                                          service_auth=service)
    manila = factory.for_service()
    assert manila.get_share(theirs["id"])["id"] == theirs["id"]
    assert last_request(standin, "GET", "/shares/").project_id == "service-project"


def test_without_service_credentials_the_services_own_work_is_refused(standin, factory):
    with pytest.raises(exception.NotAuthorized):
        factory.for_service()
    assert standin.count_requests() == 0


def test_endpoint_is_found_in_a_karbor_style_catalog(factory):
    url = "http://manila.example.org:8786/v2"
    assert factory.endpoint_from_catalog(catalog(url)) == url


def test_endpoint_lookup_honours_interface_and_region(standin):
    entries = [{"type": "sharev2", "endpoints": [
        {"interface": "public", "region": "RegionOne", "url": "http://public/v2"},
        {"interface": "internal", "region": "RegionOne", "url": "http://internal-one/v2"},
        {"interface": "internal", "region": "RegionTwo", "url": "http://internal-two/v2"},
    ]}]
    internal_two = client_factory.ClientFactory(plain_session, interface="internal",
                                               region_name="RegionTwo")
    assert internal_two.endpoint_from_catalog(entries) == "http://internal-two/v2"
    public = client_factory.ClientFactory(plain_session)
    assert public.endpoint_from_catalog(entries) == "http://public/v2"


def v2_catalog(public, internal="http://internal/v2", admin="http://admin/v2",
               region="RegionOne", service_type="sharev2"):
    """A catalog as keystonemiddleware hands it to a service (X-Service-Catalog, v2 form)."""
    return [
        {"type": "identity", "name": "keystone",
         "endpoints": [{"region": region, "publicURL": "http://ks/v3",
                        "internalURL": "http://ks/v3", "adminURL": "http://ks/v3"}]},
        {"type": service_type, "name": "manilav2",
         "endpoints": [{"region": region, "publicURL": public, "internalURL": internal,
                        "adminURL": admin}]},
    ]


def test_context_with_a_keystonemiddleware_catalog_finds_manila(standin, factory, project):
    mine = standin.create_share(project)
    manila = factory.for_caller(caller(f"user:{project}", v2_catalog(standin.endpoint), False))
    assert manila.get_share(mine["id"])["project_id"] == project


@pytest.mark.parametrize(("interface", "expected"), [
    ("public", "http://public/v2"), ("publicURL", "http://public/v2"),
    ("internal", "http://internal/v2"), ("internalURL", "http://internal/v2"),
    ("admin", "http://admin/v2"), (("internal", "public"), "http://internal/v2"),
])
@pytest.mark.parametrize("form", ["v2", "v3"])
def test_both_catalog_forms_honour_the_configured_interface(interface, expected, form):
    if form == "v2":
        entries = v2_catalog("http://public/v2")
    else:
        entries = [{"type": "sharev2", "endpoints": [
            {"interface": name, "region": "RegionOne", "region_id": "RegionOne",
             "url": f"http://{name}/v2"} for name in ("public", "internal", "admin")]}]
    factory = client_factory.ClientFactory(plain_session, interface=interface)
    assert factory.endpoint_from_catalog(entries) == expected


def test_a_keystonemiddleware_catalog_honours_the_region():
    entries = v2_catalog("http://one/v2", region="RegionOne")
    entries[1]["endpoints"].append({"region": "RegionTwo", "publicURL": "http://two/v2",
                                    "internalURL": "http://two-i/v2",
                                    "adminURL": "http://two-a/v2"})
    two = client_factory.ClientFactory(plain_session, region_name="RegionTwo")
    assert two.endpoint_from_catalog(entries) == "http://two/v2"
    three = client_factory.ClientFactory(plain_session, region_name="RegionThree")
    with pytest.raises(exception.Unsupported) as info:
        three.endpoint_from_catalog(entries)
    assert "RegionThree" in str(info.value) and "endpoint_override" in str(info.value)


def test_reading_a_catalog_leaves_the_callers_catalog_as_it_was():
    entries = v2_catalog("http://public/v2")
    before = repr(entries)
    client_factory.ClientFactory(plain_session).endpoint_from_catalog(entries)
    assert repr(entries) == before


def test_the_interface_options_are_read_in_order_of_preference():
    conf = cfg.ConfigOpts()
    opts.register_manila_opts(conf)
    conf([])
    entries = v2_catalog("http://public/v2")
    assert client_factory.ClientFactory.from_conf(conf).endpoint_from_catalog(
        entries) == "http://public/v2"
    conf.set_override("interface", "internalURL", group="manila")
    assert client_factory.ClientFactory.from_conf(conf).endpoint_from_catalog(
        entries) == "http://internal/v2"
    conf.set_override("valid_interfaces", ["admin", "public"], group="manila")
    assert client_factory.ClientFactory.from_conf(conf).endpoint_from_catalog(
        entries) == "http://admin/v2"


@pytest.mark.parametrize("entries", [
    None,
    [],
    catalog("http://manila-v1/v1", service_type="share"),
    catalog("http://manila/v2", interface="admin"),
    v2_catalog("http://manila-v1/v1", service_type="share"),
])
def test_catalog_without_a_sharev2_endpoint_is_unsupported(factory, entries):
    with pytest.raises(exception.Unsupported) as info:
        factory.endpoint_from_catalog(entries)
    assert "endpoint_override" in str(info.value)


def test_context_whose_catalog_lacks_manila_is_unsupported_without_a_request(standin,
                                                                            factory):
    with pytest.raises(exception.Unsupported):
        factory.for_caller(caller("user:p", catalog("x", "admin"), False))
    assert standin.count_requests() == 0


def test_factory_from_conf_reaches_the_configured_endpoint(standin, project):
    mine = standin.create_share(project)
    conf = cfg.ConfigOpts()
    opts.register_manila_opts(conf)
    conf.set_override("endpoint_override", standin.endpoint, "manila")
    conf.set_override("max_api_version", "2.60", "manila")

    factory = client_factory.ClientFactory.from_conf(conf)
    manila = factory.for_caller(caller(f"user:{project}", None, False))

    assert not factory.sends_service_tokens
    assert manila.version.get_string() == "2.60"
    assert manila.get_share(mine["id"])["id"] == mine["id"]
    assert last_request(standin, "GET", "/shares/").microversion == "2.60"


@pytest.mark.parametrize("auth_type", ["no-such-plugin", "password"])
def test_factory_from_conf_with_unusable_service_credentials_is_not_authorized(auth_type):
    conf = cfg.ConfigOpts()
    opts.register_manila_opts(conf)
    conf.set_override("auth_type", auth_type, "manila")
    with pytest.raises(exception.NotAuthorized) as info:
        client_factory.ClientFactory.from_conf(conf)
    assert not info.value.retryable
    assert "[manila]" in str(info.value)


# -- listing ------------------------------------------------------------------------


def test_list_shares_stops_on_a_short_page(standin, manila, project):
    created = standin.create_shares(project, 5)
    standin.reset_requests()
    listed = [s["id"] for s in manila.list_shares({}, 2)]
    assert listed == created
    pages = list_requests(standin)
    assert [r.query["limit"] for r in pages] == ["2", "2", "2"]
    assert [int(r.query.get("offset", "0")) for r in pages] == [0, 2, 4]


def test_list_shares_of_an_exact_multiple_costs_one_extra_empty_page(standin, manila,
                                                                     project):
    created = standin.create_shares(project, 4)
    standin.reset_requests()
    assert [s["id"] for s in manila.list_shares({}, 2)] == created
    assert len(list_requests(standin)) == 3


def test_find_shares_by_metadata_never_returns_a_share_without_it(standin, manila, project,
                                                                  other_project):
    tagged = standin.create_share(project, metadata={"job": "j-1", "other": "x"})
    standin.create_share(project, metadata={"job": "j-2"})
    standin.create_share(project, metadata={"other": "x"})
    standin.create_share(project)
    standin.create_share(other_project, metadata={"job": "j-1"}, is_public=True)

    found = manila.find_shares_by_metadata({"job": "j-1"})

    assert [s["id"] for s in found] == [tagged["id"]]
    assert manila.find_shares_by_metadata({"job": "j-3"}) == []
    assert manila.find_shares_by_metadata({"job": "j-1", "other": "y"}) == []
