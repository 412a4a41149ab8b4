"""Share and snapshot listings: project scope, filters, sorting, pagination, counts."""

from __future__ import annotations

import uuid

import pytest
from manilaclient import exceptions


def _page_through(client, page_size, **search):
    found, offset = [], 0
    while True:
        opts = {"is_public": False, **search, "limit": page_size, "offset": offset}
        page = client.shares.list(
            detailed=False, search_opts=opts, sort_key="created_at", sort_dir="asc"
        )
        found.extend(s.id for s in page)
        if len(page) < page_size:
            return found
        offset += page_size


def test_paging_a_project_returns_exactly_its_shares_among_many(standin, make_client):
    target = uuid.uuid4().hex
    others = [uuid.uuid4().hex for _ in range(9)]
    expected = []
    for _ in range(4):  # interleave creation so the project's shares are scattered
        expected += standin.create_shares(target, 500, name="t-{i}")
        for other in others:
            standin.create_shares(other, 500)
    assert len(standin.state.shares_by_id) == 20_000
    client = make_client(f"u:{target}")
    assert _page_through(client, 500) == expected


def test_admin_pages_another_project_with_all_tenants(standin, make_client):
    target, admin_project = uuid.uuid4().hex, uuid.uuid4().hex
    expected = []
    for _ in range(3):
        expected += standin.create_shares(target, 7)
        standin.create_shares(admin_project, 5)
    admin = make_client(f"admin:{admin_project}")
    assert _page_through(admin, 4, all_tenants=1, project_id=target) == expected


def test_default_order_is_newest_first(standin, client, project_id):
    ids = standin.create_shares(project_id, 3)
    assert [s.id for s in client.shares.list()] == ids[::-1]


@pytest.mark.parametrize(
    ("sort_key", "sort_dir", "expected"),
    [
        ("name", "asc", ["a", "b", "c"]),
        ("name", "desc", ["c", "b", "a"]),
        ("size", "asc", ["b", "c", "a"]),
        ("created_at", "asc", ["c", "a", "b"]),
    ],
)
def test_sorting_by_key_and_direction(standin, client, project_id, sort_key, sort_dir, expected):
    standin.create_share(project_id, name="c", size=2)
    standin.create_share(project_id, name="a", size=3)
    standin.create_share(project_id, name="b", size=1)
    listed = client.shares.list(sort_key=sort_key, sort_dir=sort_dir)
    assert [s.name for s in listed] == expected


def test_with_count_returns_the_total_before_paging(standin, client, project_id):
    standin.create_shares(project_id, 7)
    shares, count = client.shares.list(search_opts={"with_count": True, "limit": 2})
    assert (len(shares), count) == (2, 7)


def test_status_name_and_snapshot_filters(standin, client, project_id):
    parent = standin.create_share(project_id, name="parent")
    standin.create_share(project_id, name="broken", status="error")
    snapshot = standin.create_snapshot(parent["id"])
    child = client.shares.create("NFS", 1, snapshot_id=snapshot["id"], name="child")
    by_status = client.shares.list(search_opts={"status": "error"})
    assert [s.name for s in by_status] == ["broken"]
    by_name = client.shares.list(search_opts={"name": "parent"})
    assert [s.id for s in by_name] == [parent["id"]]
    by_snapshot = client.shares.list(search_opts={"snapshot_id": snapshot["id"]})
    assert [s.id for s in by_snapshot] == [child.id]


def test_share_network_filter(standin, client, project_id):
    network = standin.add_share_network(project_id)
    on_network = standin.create_share(project_id, share_network_id=network)
    standin.create_share(project_id)
    listed = client.shares.list(search_opts={"share_network_id": network})
    assert [s.id for s in listed] == [on_network["id"]]


def test_bad_sort_key_and_limit_are_bad_requests(http):
    assert http("GET", "/v2/shares?sort_key=nonsense", version="2.98").status_code == 400
    assert http("GET", "/v2/shares?limit=-1", version="2.98").status_code == 400
    assert http("GET", "/v2/shares?limit=abc", version="2.98").status_code == 400


def test_snapshot_list_filters_by_share_status_and_name(standin, client, project_id):
    first = standin.create_share(project_id)
    second = standin.create_share(project_id)
    wanted = standin.create_snapshot(first["id"], name="keep")
    standin.create_snapshot(first["id"], name="other", status="error")
    standin.create_snapshot(second["id"], name="keep")
    by_share = client.share_snapshots.list(search_opts={"share_id": first["id"]})
    assert len(by_share) == 2
    narrowed = client.share_snapshots.list(
        search_opts={"share_id": first["id"], "status": "available", "name": "keep"}
    )
    assert [s.id for s in narrowed] == [wanted["id"]]


def test_snapshot_list_filters_by_metadata_at_2_73(standin, client, project_id):
    share = standin.create_share(project_id)
    tagged = client.share_snapshots.create(share["id"], metadata={"job": "j1"})
    client.share_snapshots.create(share["id"], metadata={"job": "j2"})
    found = client.share_snapshots.list(search_opts={"metadata": {"job": "j1"}})
    assert [s.id for s in found] == [tagged.id]


def test_snapshot_list_pages_and_sorts(standin, client, project_id):
    share = standin.create_share(project_id)
    ids = [standin.create_snapshot(share["id"], name=f"s{i}")["id"] for i in range(5)]
    first = client.share_snapshots.list(search_opts={"limit": 2}, sort_dir="asc")
    rest = client.share_snapshots.list(search_opts={"limit": 10, "offset": 2}, sort_dir="asc")
    assert [s.id for s in first + rest] == ids
    by_name = client.share_snapshots.list(sort_key="name", sort_dir="desc")
    assert [s.id for s in by_name] == ids[::-1]


def test_snapshot_lists_are_per_project_unless_all_tenants(standin, make_client):
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    one = standin.create_snapshot(standin.create_share(first)["id"])
    two = standin.create_snapshot(standin.create_share(second)["id"])
    client = make_client(f"u:{first}")
    assert [s.id for s in client.share_snapshots.list()] == [one["id"]]
    everything = client.share_snapshots.list(search_opts={"all_tenants": 1})
    assert {s.id for s in everything} == {one["id"], two["id"]}
    only_second = client.share_snapshots.list(
        search_opts={"all_tenants": 1, "project_id": second}
    )
    assert [s.id for s in only_second] == [two["id"]]


def test_snapshot_sort_key_is_validated_by_the_server(http):
    answer = http("GET", "/v2/snapshots?sort_key=bogus", version="2.98")
    assert answer.status_code == 400


def test_summary_listing_has_ids_names_and_links_only(standin, client, project_id):
    standin.create_share(project_id, name="x")
    (summary,) = client.shares.list(detailed=False)
    assert set(summary.to_dict()) == {"id", "name", "links"}


def test_with_count_is_ignored_before_2_42(standin, make_client, project_id):
    standin.create_shares(project_id, 2)
    old = make_client(f"u:{project_id}", version="2.41")
    listed = old.shares.list(search_opts={"with_count": True})
    assert isinstance(listed, list) and len(listed) == 2


def test_invalid_is_public_value_is_a_bad_request(client):
    with pytest.raises(exceptions.BadRequest):
        client.shares.list(search_opts={"is_public": "maybe"})
