"""Share types and availability zones over HTTP, and the share type view.

The model: :mod:`manila_standin.share_types`. Manila answers share types under
both ``share_type`` and the older ``volume_type`` key.
"""

from __future__ import annotations

import typing
import uuid

from manila_standin import errors
from manila_standin import identity
from manila_standin import params
from manila_standin import render as render_mod
from manila_standin import routing
from manila_standin import share_types

Answer = routing.Answer


def register(routes: routing.Routes) -> None:
    """Serve share types and availability zones."""
    routes.add("GET", "/types", list_types)
    routes.add("POST", "/types", create)
    routes.add("GET", "/types/default", show_default)
    routes.add("GET", "/types/{type_id}", show)
    routes.add("GET", "/types/{type_id}/extra_specs", extra_specs)
    routes.add("GET", "/availability-zones", availability_zones, "2.7")
    routes.add("GET", "/os-availability-zone", availability_zones, "2.0", "2.6")


def _shown(render: render_mod.Render, found: share_types.ShareType) -> Answer:
    shown = share_type(render, found)
    return 200, {"share_type": shown, "volume_type": shown}


def _existing(request: routing.ApiRequest, type_id: str) -> share_types.ShareType:
    found = request.state.types.by_id.get(type_id)
    if found is None:
        raise errors.not_found(f"Share type {type_id} could not be found.")
    return found


# -- handlers ------------------------------------------------------------------------


def list_types(request: routing.ApiRequest) -> Answer:
    """``GET /types``."""
    listed = [share_type(request.render, t) for t in request.state.types.by_id.values()]
    return 200, {"share_types": listed, "volume_types": listed}


def create(request: routing.ApiRequest) -> Answer:
    """``POST /types`` (admin only, as Manila's policy)."""
    identity.require_admin(request.ctx)
    body = request.json()
    spec = body.get("share_type", body.get("volume_type")) if isinstance(body, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"]:
        raise errors.bad_request("Malformed request body")
    specs = spec.get("extra_specs") or {}
    if not isinstance(specs, dict):
        raise errors.bad_request("Malformed request body")
    if "driver_handles_share_servers" not in specs:
        raise errors.bad_request(
            "Invalid extra_spec: Required extra specs missing: driver_handles_share_servers.")
    is_public = spec.get("share_type_access:is_public",
                         spec.get("os-share-type-access:is_public", True))
    try:
        created = request.state.types.create(
            spec["name"], specs,
            is_public=(is_public if isinstance(is_public, bool)
                       else params.query_bool("is_public", str(is_public))),
            description=spec.get("description"))
    except ValueError:
        raise errors.conflict(f"Share Type {spec['name']} already exists.") from None
    return _shown(request.render, created)


def show_default(request: routing.ApiRequest) -> Answer:
    """``GET /types/default``."""
    default = request.state.types.default
    if default is None:
        raise errors.not_found("Default share type not found.")
    return _shown(request.render, default)


def show(request: routing.ApiRequest, type_id: str) -> Answer:
    """``GET /types/{id}``."""
    return _shown(request.render, _existing(request, type_id))


def extra_specs(request: routing.ApiRequest, type_id: str) -> Answer:
    """``GET /types/{id}/extra_specs``."""
    return 200, {"extra_specs": dict(_existing(request, type_id).extra_specs)}


def availability_zones(request: routing.ApiRequest) -> Answer:
    """``GET /availability-zones`` (``/os-availability-zone`` before 2.7)."""
    zones = [
        {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"manila-standin-az:{name}")),
            "name": name,
            "created_at": "2015-08-27T11:33:21.000000",
            "updated_at": None,
        }
        for name in request.state.config.availability_zones
    ]
    return 200, {"availability_zones": zones}


# -- view -------------------------------------------------------------------------------


def share_type(render: render_mod.Render, found: share_types.ShareType) -> dict[str, typing.Any]:
    """A share type."""
    body: dict[str, typing.Any] = {
        "id": found.id,
        "name": found.name,
        "extra_specs": dict(found.extra_specs),
        "required_extra_specs": {
            "driver_handles_share_servers": found.extra_specs.get(
                "driver_handles_share_servers", "False"
            )
        },
    }
    if render.at_least(2, 7):
        body["share_type_access:is_public"] = found.is_public
    else:
        body["os-share-type-access:is_public"] = found.is_public
    if render.at_least(2, 41):
        body["description"] = found.description
    if render.at_least(2, 46):
        body["is_default"] = found.id == render.state.types.default_id
    return body
