"""Access rules over HTTP: the share actions, ``/share-access-rules`` (2.45+), the views.

The model and its rules: :mod:`manila_standin.access_rules`.
"""

from __future__ import annotations

import typing

from manila_standin import access_rules
from manila_standin import errors
from manila_standin import params
from manila_standin import render as render_mod
from manila_standin import routing
from manila_standin import shares_api

Answer = routing.Answer
RULE = "/share-access-rules/{access_id}"


def register(routes: routing.Routes) -> None:
    """Serve the access actions of shares and the access rule resource."""
    share = shares_api.SHARE
    routes.action(share, "os-allow_access", allow, "2.0", "2.6")
    routes.action(share, "allow_access", allow, "2.7")
    routes.action(share, "os-deny_access", deny, "2.0", "2.6")
    routes.action(share, "deny_access", deny, "2.7")
    routes.action(share, "os-access_list", legacy_list, "2.0", "2.6")
    routes.action(share, "access_list", legacy_list, "2.7", "2.44")
    routes.add("GET", "/share-access-rules", list_rules, "2.45")
    routes.add("GET", RULE, show, "2.45")
    routes.add("PUT", RULE + "/metadata", set_metadata, "2.45")
    routes.add("DELETE", RULE + "/metadata/{key}", delete_metadata, "2.45")


# -- handlers ------------------------------------------------------------------------


def allow(request: routing.ApiRequest, share_id: str, name: str, payload: typing.Any) -> Answer:
    """The ``allow_access`` action: a new rule, ``queued_to_apply``."""
    if not isinstance(payload, dict):
        raise errors.bad_request("Malformed request body")
    for required in ("access_type", "access_to"):
        if required not in payload:
            raise errors.bad_request(f"Required parameter {required} not found.")
    metadata = payload.get("metadata") if request.at_least(2, 45) else None
    rule = request.state.rules.allow(
        request.ctx,
        share_id,
        payload.get("access_type"),
        payload.get("access_to"),
        payload.get("access_level"),
        metadata,
        enable_ceph=request.at_least(2, 13),
        enable_ipv6=request.at_least(2, 38),
        allow_on_error_state=request.at_least(2, 74),
    )
    return 200, {"access": access_detail(request.render, rule)}


def deny(request: routing.ApiRequest, share_id: str, name: str, payload: typing.Any) -> Answer:
    """The ``deny_access`` action."""
    if not isinstance(payload, dict) or "access_id" not in payload:
        raise errors.bad_request("Malformed request body")
    request.state.rules.deny(
        request.ctx, share_id, payload["access_id"],
        allow_on_error_state=request.at_least(2, 74),
    )
    return 202, None


def legacy_list(
    request: routing.ApiRequest, share_id: str, name: str, payload: typing.Any
) -> Answer:
    """The ``access_list`` action (before 2.45)."""
    share = request.state.shares.visible(request.ctx, share_id)
    rules = request.state.rules.of_share(share.id)
    return 200, {"access_list": [access_summary(request.render, r) for r in rules]}


def list_rules(request: routing.ApiRequest) -> Answer:
    """``GET /share-access-rules?share_id=...`` (optionally by metadata)."""
    opts = dict(request.query)
    share_id = opts.pop("share_id", None)
    if share_id is None:
        raise errors.bad_request("The field 'share_id' has to be specified.")
    wanted: dict[str, typing.Any] = {}
    if "metadata" in opts:
        wanted = params.literal_dict("metadata", opts.pop("metadata"))
    try:
        share = request.state.shares.visible(request.ctx, share_id)
    except errors.ApiError:
        raise errors.bad_request(f"Share {share_id} not found.") from None
    rules = [
        r for r in request.state.rules.of_share(share.id)
        if all(r.metadata.get(k) == str(v) for k, v in wanted.items())
    ]
    return 200, {"access_list": [access_summary(request.render, r) for r in rules]}


def show(request: routing.ApiRequest, access_id: str) -> Answer:
    """``GET /share-access-rules/{id}``."""
    rule = request.state.rules.visible(request.ctx, access_id)
    return 200, {"access": access_detail(request.render, rule)}


def set_metadata(request: routing.ApiRequest, access_id: str) -> Answer:
    """``PUT /share-access-rules/{id}/metadata``: merge."""
    metadata = params.metadata_body(request.json())
    return 200, {"metadata": request.state.rules.set_metadata(request.ctx, access_id, metadata)}


def delete_metadata(request: routing.ApiRequest, access_id: str, key: str) -> Answer:
    """``DELETE /share-access-rules/{id}/metadata/{key}``."""
    request.state.rules.delete_metadata(request.ctx, access_id, key)
    return 200, None


# -- views ------------------------------------------------------------------------------


def _rule_common(
    render: render_mod.Render, rule: access_rules.AccessRule
) -> dict[str, typing.Any]:
    rules = render.state.rules
    body: dict[str, typing.Any] = {
        "id": rule.id,
        "access_level": rule.access_level,
        "access_to": rule.access_to,
        "access_type": rule.access_type,
        "state": rules.shown_state(rule),
    }
    if render.at_least(2, 21):
        body["access_key"] = rule.access_key
    if not render.at_least(2, 28):
        # Before 2.28 a rule shows its share's aggregate rules status.
        share = render.state.shares.by_id.get(rule.share_id)
        if share is not None:
            status = rules.share_status(share)
            body["state"] = "new" if status == "syncing" else status
    if render.at_least(2, 33):
        body["created_at"] = render_mod.isotime(rule.created_at)
        body["updated_at"] = render_mod.isotime(rule.updated_at)
    if render.at_least(2, 45):
        body["metadata"] = dict(rule.metadata)
    return body


def access_summary(
    render: render_mod.Render, rule: access_rules.AccessRule
) -> dict[str, typing.Any]:
    """An entry of an access rule list (no ``share_id``, as in Manila)."""
    return _rule_common(render, rule)


def access_detail(
    render: render_mod.Render, rule: access_rules.AccessRule
) -> dict[str, typing.Any]:
    """A single access rule (``allow_access`` answer, ``GET /share-access-rules/{id}``)."""
    body = _rule_common(render, rule)
    body["share_id"] = rule.share_id
    return body
