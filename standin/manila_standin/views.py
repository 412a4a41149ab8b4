"""JSON views of the stand-in's resources, shaped per microversion like Manila's.

Each function returns the dict Manila's view builder would return for the
requested microversion (fields appear at the version Manila added them).
Callers hold the state lock while rendering live records.
"""

from __future__ import annotations

import dataclasses
import datetime
import typing

from manila_standin import state as state_mod

Version = tuple[int, int]


@dataclasses.dataclass(frozen=True)
class Render:
    """What a view needs besides the record.

    :param state: the model (for share types, rule states).
    :param ctx: the caller (admins see ``host``, ``share_server_id``...).
    :param version: the request microversion.
    :param link_base: URL prefix of resource links, e.g. ``http://h:p/v2``.
    :param bookmark_base: URL prefix of bookmark links, e.g. ``http://h:p``.
    """

    state: state_mod.StandInState
    ctx: state_mod.Context
    version: Version
    link_base: str
    bookmark_base: str

    def at_least(self, major: int, minor: int) -> bool:
        """Whether the request microversion is >= ``major.minor``."""
        return self.version >= (major, minor)


def isotime(value: float | None) -> str | None:
    """Format a stand-in time like Manila (``2024-01-31T12:00:00.000000``)."""
    if value is None:
        return None
    # timezone.utc, not datetime.UTC: the stand-in runs on Python 3.10 as well.
    moment = datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc)  # noqa: UP017
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")


def _links(render: Render, collection: str, resource_id: str) -> list[dict[str, str]]:
    return [
        {"rel": "self", "href": f"{render.link_base}/{collection}/{resource_id}"},
        {"rel": "bookmark", "href": f"{render.bookmark_base}/{collection}/{resource_id}"},
    ]


def export_path(share: state_mod.Share, export_ip: str) -> str:
    """The export path of a share for its protocol."""
    name = "share_" + share.id.replace("-", "_")
    if share.share_proto == "CIFS":
        return f"\\\\{export_ip}\\{name}"
    return f"{export_ip}:/shares/{name}"


def share_summary(render: Render, share: state_mod.Share) -> dict[str, typing.Any]:
    """``GET /shares`` entry."""
    return {"id": share.id, "name": share.name, "links": _links(render, "shares", share.id)}


def share_detail(render: Render, share: state_mod.Share) -> dict[str, typing.Any]:
    """``GET /shares/{id}`` / ``GET /shares/detail`` entry."""
    state = render.state
    share_type = state.share_types.get(share.share_type_id)
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
        "created_at": isotime(share.created_at),
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
        "links": _links(render, "shares", share.id),
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
        rules_status = state.share_access_rules_status(share)
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
    render: Render, share: state_mod.Share, detail: bool = False
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
        body["created_at"] = isotime(share.export_location_created_at)
        body["updated_at"] = isotime(share.export_location_created_at)
    return body


def snapshot_summary(render: Render, snapshot: state_mod.Snapshot) -> dict[str, typing.Any]:
    """``GET /snapshots`` entry."""
    return {
        "id": snapshot.id,
        "name": snapshot.name,
        "links": _links(render, "snapshots", snapshot.id),
    }


def snapshot_detail(render: Render, snapshot: state_mod.Snapshot) -> dict[str, typing.Any]:
    """``GET /snapshots/{id}`` / ``GET /snapshots/detail`` entry."""
    body: dict[str, typing.Any] = {
        "id": snapshot.id,
        "share_id": snapshot.share_id,
        "share_size": snapshot.share_size,
        "created_at": isotime(snapshot.created_at),
        "status": snapshot.status,
        "name": snapshot.name,
        "description": snapshot.description,
        "size": snapshot.size,
        "share_proto": snapshot.share_proto,
        "links": _links(render, "snapshots", snapshot.id),
    }
    if render.at_least(2, 12) and render.ctx.is_admin:
        body["provider_location"] = None if snapshot.status == "creating" else snapshot.id
    if render.at_least(2, 17):
        body["user_id"] = snapshot.user_id
        body["project_id"] = snapshot.project_id
    if render.at_least(2, 73):
        body["metadata"] = dict(snapshot.metadata)
    return body


def _rule_common(render: Render, rule: state_mod.AccessRule) -> dict[str, typing.Any]:
    body: dict[str, typing.Any] = {
        "id": rule.id,
        "access_level": rule.access_level,
        "access_to": rule.access_to,
        "access_type": rule.access_type,
        "state": render.state.rule_state(rule),
    }
    if render.at_least(2, 21):
        body["access_key"] = rule.access_key
    if not render.at_least(2, 28):
        # Before 2.28 a rule shows its share's aggregate rules status.
        share = render.state.shares_by_id.get(rule.share_id)
        if share is not None:
            status = render.state.share_access_rules_status(share)
            body["state"] = "new" if status == "syncing" else status
    if render.at_least(2, 33):
        body["created_at"] = isotime(rule.created_at)
        body["updated_at"] = isotime(rule.updated_at)
    if render.at_least(2, 45):
        body["metadata"] = dict(rule.metadata)
    return body


def access_summary(render: Render, rule: state_mod.AccessRule) -> dict[str, typing.Any]:
    """An entry of an access rule list (no ``share_id``, as in Manila)."""
    return _rule_common(render, rule)


def access_detail(render: Render, rule: state_mod.AccessRule) -> dict[str, typing.Any]:
    """A single access rule (``allow_access`` answer, ``GET /share-access-rules/{id}``)."""
    body = _rule_common(render, rule)
    body["share_id"] = rule.share_id
    return body


def share_type(render: Render, share_type_: state_mod.ShareType) -> dict[str, typing.Any]:
    """A share type."""
    body: dict[str, typing.Any] = {
        "id": share_type_.id,
        "name": share_type_.name,
        "extra_specs": dict(share_type_.extra_specs),
        "required_extra_specs": {
            "driver_handles_share_servers": share_type_.extra_specs.get(
                "driver_handles_share_servers", "False"
            )
        },
    }
    if render.at_least(2, 7):
        body["share_type_access:is_public"] = share_type_.is_public
    else:
        body["os-share-type-access:is_public"] = share_type_.is_public
    if render.at_least(2, 41):
        body["description"] = share_type_.description
    if render.at_least(2, 46):
        body["is_default"] = share_type_.id == render.state.default_share_type_id
    return body


def versions(
    base_url: str, min_version: str, max_version: str, which: str
) -> dict[str, typing.Any]:
    """The versions document (``which``: ``all`` for ``/``, ``v2`` for ``/v2/``)."""
    v1 = {
        "id": "v1.0",
        "status": "DEPRECATED",
        "version": "",
        "min_version": "",
        "updated": "2015-08-27T11:33:21Z",
        "links": [
            {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"},
            {"rel": "self", "href": f"{base_url}/v1/"},
        ],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.share+json;version=1"}
        ],
    }
    v2 = {
        "id": "v2.0",
        "status": "CURRENT",
        "version": max_version,
        "min_version": min_version,
        "updated": "2015-08-27T11:33:21Z",
        "links": [
            {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"},
            {"rel": "self", "href": f"{base_url}/v2/"},
        ],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.share+json;version=1"}
        ],
    }
    return {"versions": [v1, v2] if which == "all" else [v2]}
