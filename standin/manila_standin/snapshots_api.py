"""Snapshots over HTTP: ``/snapshots``, its actions, and the JSON views.

The model and its rules: :mod:`manila_standin.snapshots`. Metadata routes
(2.73 and later): :mod:`manila_standin.metadata`.
"""

from __future__ import annotations

import typing

from manila_standin import errors
from manila_standin import listing
from manila_standin import params
from manila_standin import records
from manila_standin import render as render_mod
from manila_standin import routing
from manila_standin import snapshots

Answer = routing.Answer
SNAPSHOT = "/snapshots/{snapshot_id}"
#: The filters a non-admin may use (Manila's ``_get_snapshots_search_options``, plus paging).
USER_FILTERS = frozenset({
    "name", "display_name", "status", "share_id", "size", "name~", "description~",
    "description", "display_name~", "display_description~", "display_description",
    "metadata", "limit", "offset", "sort_key", "sort_dir", "with_count",
})


def register(routes: routing.Routes) -> None:
    """Serve snapshots and their admin actions."""
    routes.add("GET", "/snapshots", lambda r: list_snapshots(r, detail=False))
    routes.add("GET", "/snapshots/detail", lambda r: list_snapshots(r, detail=True))
    routes.add("POST", "/snapshots", create)
    records.register(routes, SNAPSHOT, lambda state: state.snapshots, "snapshot",
                     snapshot_detail)
    routes.add("PUT", SNAPSHOT, update)


# -- handlers ------------------------------------------------------------------------


def _detail(request: routing.ApiRequest, snapshot: snapshots.Snapshot, status: int = 200) -> Answer:
    return status, {"snapshot": snapshot_detail(request.render, snapshot)}


def list_snapshots(request: routing.ApiRequest, detail: bool) -> Answer:
    """``GET /snapshots[/detail]`` with Manila's filters, sorting and paging."""
    opts = dict(request.query)
    if not request.ctx.is_admin:
        opts = {k: v for k, v in opts.items() if k in USER_FILTERS}
    if not request.at_least(2, 36):
        for key in ("name~", "description~", "description"):
            opts.pop(key, None)
    query = snapshots.SnapshotQuery()
    listing.parse_paging(opts, query)
    with_count = listing.parse_with_count(opts, request.at_least(2, 79))
    for key, value in opts.items():
        if value == "" and key != "metadata":
            raise errors.invalid_input(f"Wrong '{key}' filter provided: ''")
    query.sort_key = opts.pop("sort_key", "created_at")
    query.sort_dir = opts.pop("sort_dir", "desc")
    query.all_tenants = bool(opts.pop("all_tenants", None))
    query.project_id = opts.pop("project_id", None)
    query.share_id = opts.pop("share_id", None)
    listing.parse_text_filters(opts, query, with_like=True)
    query.status = opts.pop("status", None)
    if "size" in opts:
        query.size = params.non_negative_int("size", opts.pop("size"))
    if "metadata" in opts:
        raw_metadata = opts.pop("metadata")
        if request.at_least(2, 73):
            query.metadata = params.literal_dict("metadata", raw_metadata)
    total, page = request.state.snapshots.list_visible(request.ctx, query)
    view = snapshot_detail if detail else snapshot_summary
    payload: dict[str, typing.Any] = {"snapshots": [view(request.render, s) for s in page]}
    if with_count:
        payload["count"] = total
    return 200, payload


def create(request: routing.ApiRequest) -> Answer:
    """``POST /snapshots`` (metadata from 2.73)."""
    data = params.resource_body(request.json(), "snapshot")
    share_id = data.get("share_id")
    if not isinstance(share_id, str) or not share_id:
        raise errors.unprocessable("Required parameter share_id not found.")
    metadata = data.get("metadata") if request.at_least(2, 73) else None
    if metadata is not None and not isinstance(metadata, dict):
        raise errors.bad_request("Malformed request body")
    snapshot = request.state.snapshots.create(
        request.ctx,
        share_id,
        name=data.get("name", data.get("display_name")),
        description=data.get("description", data.get("display_description")),
        metadata=metadata,
    )
    return _detail(request, snapshot, status=202)


def update(request: routing.ApiRequest, snapshot_id: str) -> Answer:
    """``PUT /snapshots/{id}``: name and description."""
    data = params.resource_body(request.json(), "snapshot")
    fields = params.display_fields(data)
    snapshot = request.state.snapshots.update(request.ctx, snapshot_id, fields)
    return _detail(request, snapshot)




# -- views ------------------------------------------------------------------------------


def snapshot_summary(
    render: render_mod.Render, snapshot: snapshots.Snapshot
) -> dict[str, typing.Any]:
    """``GET /snapshots`` entry."""
    return {
        "id": snapshot.id,
        "name": snapshot.name,
        "links": render.links("snapshots", snapshot.id),
    }


def snapshot_detail(
    render: render_mod.Render, snapshot: snapshots.Snapshot
) -> dict[str, typing.Any]:
    """``GET /snapshots/{id}`` / ``GET /snapshots/detail`` entry."""
    body: dict[str, typing.Any] = {
        "id": snapshot.id,
        "share_id": snapshot.share_id,
        "share_size": snapshot.share_size,
        "created_at": render_mod.isotime(snapshot.created_at),
        "status": snapshot.status,
        "name": snapshot.name,
        "description": snapshot.description,
        "size": snapshot.size,
        "share_proto": snapshot.share_proto,
        "links": render.links("snapshots", snapshot.id),
    }
    if render.at_least(2, 12) and render.ctx.is_admin:
        body["provider_location"] = None if snapshot.status == "creating" else snapshot.id
    if render.at_least(2, 17):
        body["user_id"] = snapshot.user_id
        body["project_id"] = snapshot.project_id
    if render.at_least(2, 73):
        body["metadata"] = dict(snapshot.metadata)
    return body
