"""The protectable core (ShareCatalog) against the Manila stand-in, real python-manilaclient."""

from __future__ import annotations

import math

import pytest

from manila_protector import exception
from manila_protector import identity
from manila_protector.plugins import share_catalog
from manila_protector.plugins import statuses

#: Statuses in which a share is not offered for protection.
UNPROTECTABLE = sorted(statuses.SHARE_UNPROTECTABLE)


def who(project_id, is_admin=False):
    """The caller a request context names (admin-ness as the one rule decides it)."""
    return identity.Caller(user_id="u", project_id=project_id, is_admin=is_admin)


def list_requests(standin):
    return [r for r in standin.requests()
            if r.method == "GET" and r.route in ("/shares", "/shares/detail")]


def ids(summaries):
    return [s.id for s in summaries]


def member_client(standin, factory, project, name="member"):
    """A client acting with a keystone-validated, non-admin token of ``project``."""
    token = f"tok-{name}-{project}"
    standin.register_token(token, f"user-{name}", project, roles=["member", "reader"])
    return factory.for_token(token, standin.endpoint)


@pytest.fixture
def catalog(runtime, manila):
    return runtime.catalog(manila)


# -- list_shares ----------------------------------------------------------------------


def test_list_shares_leaves_out_another_projects_public_share(standin, catalog, project,
                                                              other_project):
    mine = standin.create_share(project, name="mine")
    standin.create_share(other_project, name="theirs-public", is_public=True)
    standin.reset_requests()

    listed = catalog.list_shares()

    assert ids(listed) == [mine["id"]]
    assert all(s.project_id == project for s in listed)
    # python-manilaclient would ask for is_public=True by default.
    assert all(r.query.get("is_public", "false").lower() in ("false", "0")
               for r in list_requests(standin))


def test_list_shares_includes_the_callers_own_public_share(standin, catalog, project):
    public = standin.create_share(project, is_public=True)
    assert ids(catalog.list_shares()) == [public["id"]]


def test_list_shares_leaves_out_shares_that_cannot_be_protected(standin, catalog, project):
    good = standin.create_shares(project, 2)
    busy = standin.create_share(project, status="creating")
    bad = {}
    for status in UNPROTECTABLE:
        share = standin.create_share(project, name=status)
        standin.set_share_status(share["id"], status)
        bad[share["id"]] = status

    listed = catalog.list_shares()

    assert set(ids(listed)) == set(good) | {busy["id"]}
    assert not set(ids(listed)) & set(bad)
    assert {s.status for s in listed} == {"available", "creating"}


def test_list_shares_is_paginated_and_returns_every_share_once(standin, catalog, project):
    created = standin.create_shares(project, 250, name="share-{i}")
    standin.reset_requests()

    listed = catalog.list_shares()

    assert sorted(ids(listed)) == sorted(created)
    assert len(set(ids(listed))) == 250
    pages = list_requests(standin)
    assert len(pages) == 3
    assert [r.query["limit"] for r in pages] == ["100", "100", "100"]
    assert [int(r.query.get("offset", "0")) for r in pages] == [0, 100, 200]


def test_a_manila_capping_pages_below_the_page_size_is_paged_through_to_the_end(
        standin, catalog, project):
    """Older Manila releases cap every list at osapi_max_limit, whatever limit asks."""
    standin.config.max_limit = 40
    created = standin.create_shares(project, 250, name="share-{i}")
    standin.reset_requests()

    listed = catalog.list_shares()

    assert sorted(ids(listed)) == sorted(created)
    offsets = [int(r.query.get("offset", "0")) for r in list_requests(standin)]
    assert offsets == [0, 40, 80, 120, 160, 200, 240]


def test_a_list_that_fits_in_one_page_takes_one_more_request_to_be_sure(
        standin, catalog, project):
    created = standin.create_shares(project, 30, name="share-{i}")
    standin.reset_requests()
    assert sorted(ids(catalog.list_shares())) == sorted(created)
    assert [int(r.query.get("offset", "0")) for r in list_requests(standin)] == [0, 30]


def test_list_shares_of_a_project_without_shares_is_empty(standin, catalog):
    standin.reset_requests()
    assert catalog.list_shares() == []
    assert len(list_requests(standin)) == 1


def test_catalog_refuses_a_page_size_below_one(manila):
    with pytest.raises(ValueError):
        share_catalog.ShareCatalog(manila, page_size=0)


# -- show_share -----------------------------------------------------------------------


def test_show_share_returns_the_summary_manila_shows(standin, catalog, share, project):
    shown = catalog.show_share(share["id"])
    assert shown == share_catalog.ShareSummary(
        id=share["id"], name="data", status="available", project_id=project, size=2,
        share_proto="NFS", availability_zone=share["availability_zone"])
    assert shown.to_dict()["id"] == share["id"]


@pytest.mark.parametrize("status", ["error", "deleting", "error_deleting", "manage_error",
                                    "extending_error", "reverting_error"])
def test_show_share_of_an_unprotectable_share_names_its_status(standin, catalog, project,
                                                               status):
    bad = standin.create_share(project)
    standin.set_share_status(bad["id"], status)
    with pytest.raises(exception.InvalidStatus) as info:
        catalog.show_share(bad["id"])
    assert repr(status) in str(info.value)
    assert info.value.details == {"share_id": bad["id"], "status": status}


def test_show_share_of_a_missing_share_raises_not_found(standin, catalog):
    with pytest.raises(exception.NotFound) as info:
        catalog.show_share("5c8a7c1e-0000-4000-8000-000000000000")
    assert info.value.request_id == list(standin.requests())[-1].request_id


def test_show_share_of_another_projects_share_is_not_found_for_a_member(
        standin, factory, runtime, project, other_project):
    theirs = standin.create_share(other_project, name="theirs")
    catalog = runtime.catalog(member_client(standin, factory, project))
    with pytest.raises(exception.NotFound):
        catalog.show_share(theirs["id"])


def test_show_share_of_another_projects_public_share_is_not_found_for_its_caller(
        standin, factory, runtime, project, other_project):
    public = standin.create_share(other_project, name="theirs", is_public=True)
    catalog = runtime.catalog(member_client(standin, factory, project))
    with pytest.raises(exception.NotFound) as info:
        catalog.show_share(public["id"], caller=who(project))
    assert project in str(info.value)


def test_show_share_of_another_projects_share_works_for_an_admin(standin, catalog, project,
                                                                 other_project):
    theirs = standin.create_share(other_project, name="theirs")
    shown = catalog.show_share(theirs["id"], caller=who(project, True))
    assert shown.project_id == other_project


# -- list_project_shares ------------------------------------------------------------


def test_admin_lists_exactly_that_projects_shares_filtered_by_manila(
        standin, catalog, project, other_project):
    theirs = standin.create_shares(other_project, 3)
    broken = standin.create_share(other_project)
    standin.set_share_status(broken["id"], "error")
    standin.create_shares(project, 2)
    standin.create_share(uuid_like("third"), is_public=True)
    standin.reset_requests()

    listed = catalog.list_project_shares(other_project, caller=who(project, True))

    assert sorted(ids(listed)) == sorted(theirs)
    assert {s.project_id for s in listed} == {other_project}
    requests = list_requests(standin)
    # One page, and the empty one that proves it was the last.
    assert [int(r.query.get("offset", "0")) for r in requests] == [0, 4]
    for request in requests:
        assert request.query["project_id"] == other_project
        assert request.query["all_tenants"].lower() in ("1", "true")


def test_member_lists_the_shares_of_its_own_project(standin, factory, runtime, project,
                                                    other_project):
    mine = standin.create_shares(project, 3)
    standin.create_shares(other_project, 2)
    catalog = runtime.catalog(member_client(standin, factory, project))

    listed = catalog.list_project_shares(project, caller=who(project, False))

    assert sorted(ids(listed)) == sorted(mine)


def test_member_asking_for_another_project_is_refused_without_a_request(
        standin, factory, runtime, project, other_project):
    standin.create_shares(other_project, 2)
    catalog = runtime.catalog(member_client(standin, factory, project))
    standin.reset_requests()

    with pytest.raises(exception.NotAuthorized) as info:
        catalog.list_project_shares(other_project, caller=who(project, False))

    assert other_project in str(info.value)
    assert standin.count_requests() == 0


def test_project_listing_costs_requests_in_proportion_to_the_project_not_to_manila(
        standin, catalog, project):
    mine = standin.create_shares(project, 2000)
    for index in range(9):
        standin.create_shares(uuid_like(f"crowd{index}"), 2000, is_public=index % 2 == 0)
    assert len(standin.state.shares_by_id) == 20_000
    standin.reset_requests()

    listed = catalog.list_project_shares(project, caller=who("admin-project", True))

    assert len(listed) == 2000
    assert len(set(ids(listed))) == 2000
    assert set(ids(listed)) == set(mine)
    assert {s.project_id for s in listed} == {project}
    pages = len(list_requests(standin))
    assert math.ceil(2000 / 100) <= pages <= math.ceil(2000 / 100) + 1


# -- two projects -------------------------------------------------------------------


def test_two_projects_never_see_each_others_shares(standin, factory, runtime, project,
                                                   other_project):
    a_ids = standin.create_shares(project, 4)
    b_ids = standin.create_shares(other_project, 3, is_public=True)
    catalog_a = runtime.catalog(member_client(standin, factory, project, "a"))
    catalog_b = runtime.catalog(member_client(standin, factory, other_project, "b"))

    assert sorted(ids(catalog_a.list_shares())) == sorted(a_ids)
    assert sorted(ids(catalog_b.list_shares())) == sorted(b_ids)
    assert sorted(ids(catalog_a.list_project_shares(
        project, caller=who(project, False)))) == sorted(a_ids)
    assert sorted(ids(catalog_b.list_project_shares(
        other_project, caller=who(other_project, False)))) == sorted(b_ids)
    with pytest.raises(exception.NotAuthorized):
        catalog_a.list_project_shares(other_project, caller=who(project, False))
    with pytest.raises(exception.NotFound):
        catalog_a.show_share(b_ids[0], caller=who(project))
    with pytest.raises(exception.NotFound):
        catalog_b.show_share(a_ids[0])
    assert catalog_a.show_share(a_ids[0]).project_id == project


def uuid_like(seed: str) -> str:
    """A project id made of hex digits, distinct per seed."""
    return seed.encode().hex().ljust(32, "0")[:32]
