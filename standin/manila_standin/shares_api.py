"""Shares over HTTP: ``/shares``, its actions, export locations, and the JSON views.

The model and its rules: :mod:`manila_standin.shares`. Metadata routes:
:mod:`manila_standin.metadata`; the ``revert`` action: :mod:`manila_standin.revert`;
the access actions: :mod:`manila_standin.access_rules_api`.
"""

from __future__ import annotations

import typing

from manila_standin import errors
from manila_standin import listing
from manila_standin import params
from manila_standin import records
from manila_standin import render as render_mod
from manila_standin import routing
from manila_standin import shares

Answer = routing.Answer
SHARE = "/shares/{share_id}"
#: The filters a non-admin may use (Manila's ``_get_share_search_options``, plus paging).
USER_FILTERS = frozenset({
    "name", "display_name", "status", "share_server_id", "volume_type_id", "share_type_id",
    "share_type", "snapshot_id", "host", "share_network_id", "is_public", "metadata",
    "extra_specs", "sort_key", "sort_dir", "share_group_id", "share_group_snapshot_id",
    "export_location_id", "export_location_path", "name~", "description~", "description",
    "display_name~", "display_description~", "display_description", "limit", "offset",
    "is_soft_deleted", "with_count", "availability_zone", "source_backup_id",
})


def register(routes: routing.Routes) -> None:
    """Serve shares, their admin actions and their export locations."""
    routes.add("GET", "/shares", lambda r: list_shares(r, detail=False))
    routes.add("GET", "/shares/detail", lambda r: list_shares(r, detail=True))
    routes.add("POST", "/shares", create)
    records.register(routes, SHARE, lambda state: state.shares, "share", share_detail)
    routes.add("PUT", SHARE, update)
    routes.add("GET", SHARE + "/export_locations", list_export_locations, "2.9")
    routes.add("GET", SHARE + "/export_locations/{el_id}", show_export_location, "2.9")


# -- handlers ------------------------------------------------------------------------


def _detail(request: routing.ApiRequest, share: shares.Share) -> Answer:
    return 200, {"share": share_detail(request.render, share)}


def list_shares(request: routing.ApiRequest, detail: bool) -> Answer:
    """``GET /shares[/detail]`` with Manila's filters, sorting and paging."""
    opts = dict(request.query)
    if not request.ctx.is_admin:
        opts = {k: v for k, v in opts.items() if k in USER_FILTERS}
    query = shares.ShareQuery()
    listing.parse_paging(opts, query)
    cap = request.state.config.max_limit
    if cap is not None and (query.limit is None or query.limit > cap):
        query.limit = cap
    query.sort_key = opts.pop("sort_key", "created_at")
    query.sort_dir = opts.pop("sort_dir", "desc")
    with_count = listing.parse_with_count(opts, request.at_least(2, 42))
    if "all_tenants" in opts:
        query.all_tenants = params.query_bool("all_tenants", opts.pop("all_tenants"))
    query.is_public = params.query_bool("is_public", opts.pop("is_public", "false"))
    query.project_id = opts.pop("project_id", None)
    listing.parse_text_filters(opts, query, with_like=request.at_least(2, 36))
    query.status = opts.pop("status", None)
    query.snapshot_id = opts.pop("snapshot_id", None)
    query.share_network_id = opts.pop("share_network_id", None)
    query.host = opts.pop("host", None)
    if request.at_least(2, 97):
        query.availability_zone = opts.pop("availability_zone", None)
    type_ref = opts.pop("share_type_id", opts.pop("share_type", None))
    if type_ref is not None:
        found = request.state.types.find(type_ref)
        query.share_type_id = found.id if found is not None else type_ref
    if "metadata" in opts:
        query.metadata = params.literal_dict("metadata", opts.pop("metadata"))
    query.export_location_id = opts.pop("export_location_id", None)
    total, page = request.state.shares.list_visible(request.ctx, query)
    view = share_detail if detail else share_summary
    payload: dict[str, typing.Any] = {"shares": [view(request.render, s) for s in page]}
    if with_count and total:
        payload["count"] = total
    return 200, payload


def create(request: routing.ApiRequest) -> Answer:
    """``POST /shares`` (also from a snapshot)."""
    data = params.resource_body(request.json(), "share")
    if "share_type" in data and "volume_type" in data:
        raise errors.bad_request("Cannot specify both share_type and volume_type")
    name = data.get("name") or data.get("display_name")
    description = data.get("description") or data.get("display_description")
    params.check_lengths(name=name, description=description)
    if "size" not in data or "share_proto" not in data:
        raise errors.invalid_input("'size' and 'share_proto' are required")
    is_public = data.get("is_public", False)
    if not isinstance(is_public, bool):
        is_public = params.query_bool("is_public", str(is_public))
    share = request.state.shares.create(
        request.ctx,
        share_proto=data.get("share_proto"),
        size=data.get("size"),
        name=name,
        description=description,
        snapshot_id=data.get("snapshot_id"),
        share_network_id=data.get("share_network_id"),
        share_type=data.get("share_type", data.get("volume_type")),
        is_public=is_public,
        availability_zone=data.get("availability_zone"),
        metadata=data.get("metadata"),
        check_create_from_snapshot_support=request.at_least(2, 24),
    )
    return _detail(request, share)


def update(request: routing.ApiRequest, share_id: str) -> Answer:
    """``PUT /shares/{id}``: name, description, visibility."""
    data = params.resource_body(request.json(), "share")
    fields = params.display_fields(data)
    if "is_public" in data:
        fields["is_public"] = data["is_public"]
    share = request.state.shares.update(request.ctx, share_id, fields)
    return _detail(request, share)


def list_export_locations(request: routing.ApiRequest, share_id: str) -> Answer:
    """``GET /shares/{id}/export_locations`` (2.9 and later)."""
    share = request.state.shares.visible(request.ctx, share_id)
    locations = []
    if share.export_location_id is not None:
        locations.append(export_location(request.render, share))
    return 200, {"export_locations": locations}


def show_export_location(request: routing.ApiRequest, share_id: str, el_id: str) -> Answer:
    """``GET /shares/{id}/export_locations/{el_id}`` (2.9 and later)."""
    share = request.state.shares.visible(request.ctx, share_id)
    if share.export_location_id != el_id:
        raise errors.not_found(f"Export location {el_id} could not be found.")
    return 200, {"export_location": export_location(request.render, share, True)}


# -- views ------------------------------------------------------------------------------


def export_path(share: shares.Share, export_ip: str) -> str:
    """The export path of a share for its protocol."""
    name = "share_" + share.id.replace("-", "_")
    if share.share_proto == "CIFS":
        return f"\\\\{export_ip}\\{name}"
    return f"{export_ip}:/shares/{name}"


def share_summary(render: render_mod.Render, share: shares.Share) -> dict[str, typing.Any]:
    """``GET /shares`` entry."""
    return {"id": share.id, "name": share.name, "links": render.links("shares", share.id)}


def share_detail(render: render_mod.Render, share: shares.Share) -> dict[str, typing.Any]:
    """``GET /shares/{id}`` / ``GET /shares/detail`` entry."""
    state = render.state
    share_type = state.types.by_id.get(share.share_type_id)
    type_name = share_type.name if share_type is not None else None
    status = share.status
    if status == "creating_from_snapshot" and not render.at_least(2, 54):
        status = "creating"
    paths = []
    if share.export_location_id is not None:
        paths.append(export_path(share, state.config.export_ip))
    body: dict[str, typing.Any] = {
        "id": share.id,
        "size": share.size,
        "availability_zone": share.availability_zone,
        "created_at": render_mod.isotime(share.created_at),
        "status": status,
        "name": share.name,
        "description": share.description,
        "project_id": share.project_id,
        "snapshot_id": share.snapshot_id,
        "share_network_id": share.share_network_id,
        "share_proto": share.share_proto,
        "metadata": dict(share.metadata),
        "share_type": type_name,
        "volume_type": type_name,
        "links": render.links("shares", share.id),
        "is_public": share.is_public,
    }
    if not render.at_least(2, 9):
        body["export_location"] = paths[0] if paths else None
        body["export_locations"] = paths
    if render.at_least(2, 2):
        body["snapshot_support"] = share.snapshot_support
    if render.at_least(2, 5):
        body["task_state"] = share.task_state
    if render.at_least(2, 6):
        body["share_type"] = share.share_type_id
        body["share_type_name"] = type_name
    if render.at_least(2, 10):
        rules_status = state.rules.share_status(share)
        if rules_status == "syncing" and not render.at_least(2, 28):
            rules_status = "out_of_sync"
        body["access_rules_status"] = rules_status
    if render.at_least(2, 11):
        body["replication_type"] = None
        body["has_replicas"] = False
    if render.at_least(2, 16):
        body["user_id"] = share.user_id
    if render.at_least(2, 24):
        body["create_share_from_snapshot_support"] = share.create_share_from_snapshot_support
    if render.at_least(2, 27):
        body["revert_to_snapshot_support"] = share.revert_to_snapshot_support
    if render.at_least(2, 31):
        body["share_group_id"] = None
        body["source_share_group_snapshot_member_id"] = None
    if render.at_least(2, 32):
        body["mount_snapshot_support"] = share.mount_snapshot_support
    if render.at_least(2, 54):
        body["progress"] = "100%" if share.status == "available" else "0%"
    if render.at_least(2, 69):
        body["is_soft_deleted"] = False
        body["scheduled_to_be_deleted_at"] = None
    if render.at_least(2, 80):
        body["source_backup_id"] = None
    # No mount_point_name: Manila 23 accepts it on create (2.84) but never shows it.
    if render.at_least(2, 90):
        body["encryption_key_ref"] = None
    if render.ctx.is_admin:
        body["share_server_id"] = None
        body["host"] = share.host
    return body


def export_location(
    render: render_mod.Render, share: shares.Share, detail: bool = False
) -> dict[str, typing.Any]:
    """One export location of a share (``>= 2.9``)."""
    body: dict[str, typing.Any] = {
        "id": share.export_location_id,
        "path": export_path(share, render.state.config.export_ip),
    }
    if render.at_least(2, 14):
        body["preferred"] = True
    if render.ctx.is_admin:
        body["share_instance_id"] = share.id
        body["is_admin_only"] = False
    if render.at_least(2, 87):
        body["metadata"] = {}
    if detail:
        body["created_at"] = render_mod.isotime(share.export_location_created_at)
        body["updated_at"] = render_mod.isotime(share.export_location_created_at)
    return body
