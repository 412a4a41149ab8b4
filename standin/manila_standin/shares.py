"""Shares: the model, its rules and its transitions.

A share is created ``creating`` (``creating_from_snapshot`` from a snapshot, see
``StandInConfig.share_from_snapshot_status``) and becomes ``available`` (or
``error``) after ``Delays.share_create``; deletion goes ``deleting`` and the
share is gone after ``Delays.share_delete``. A share that was never scheduled
(no host) is dropped at once. The checks follow Manila 23's share controller
and ``manila.share.api.API`` in order and wording. HTTP handlers and views:
:mod:`manila_standin.shares_api`; metadata: :mod:`manila_standin.metadata`;
revert: :mod:`manila_standin.revert`.

(A little over 500 lines: Manila's rules for creating a share, from nothing or
from a snapshot, read best as one method with its three helpers.)
"""

from __future__ import annotations

import dataclasses
import typing
import uuid

from manila_standin import collection
from manila_standin import errors
from manila_standin import identity
from manila_standin import listing
from manila_standin import params
from manila_standin import share_types
from manila_standin import transitions

if typing.TYPE_CHECKING:
    from manila_standin import state as state_mod

SHARE_DELETABLE = ("available", "error", "inactive")
SORT_KEYS = frozenset({
    "id", "status", "size", "host", "share_proto", "availability_zone",
    "availability_zone_id", "user_id", "project_id", "created_at", "updated_at",
    "display_name", "name", "share_type_id", "share_type", "share_network_id",
    "share_network", "snapshot_id", "snapshot", "is_public", "display_description",
})
#: Sort keys named differently on the record.
SORT_ATTRIBUTES = {
    "name": "name", "display_name": "name", "display_description": "description",
    "share_type": "share_type_id", "share_network": "share_network_id",
    "snapshot": "snapshot_id", "availability_zone_id": "availability_zone",
}


@dataclasses.dataclass(eq=False)
class Share:
    """A share as the stand-in stores it."""

    id: str
    project_id: str
    user_id: str
    size: int
    share_proto: str
    name: str | None
    description: str | None
    status: str
    share_type_id: str
    share_network_id: str | None
    availability_zone: str
    metadata: dict[str, str]
    is_public: bool
    snapshot_id: str | None
    created_at: float
    host: str | None
    snapshot_support: bool
    create_share_from_snapshot_support: bool
    revert_to_snapshot_support: bool
    mount_snapshot_support: bool
    updated_at: float | None = None
    task_state: str | None = None
    export_location_id: str | None = None
    export_location_created_at: float | None = None
    transition: transitions.Transition | None = None
    #: Until when ``access_rules_status`` stays ``syncing`` after its rules settled.
    access_synced_at: float = 0.0

    def ensure_export(self, now: float) -> None:
        """Give a scheduled share its export location (once)."""
        if self.export_location_id is None and self.host:
            self.export_location_id = str(uuid.uuid4())
            self.export_location_created_at = now


@dataclasses.dataclass
class ShareQuery(listing.ListQuery):
    """Parsed filters of a share listing (already validated by the API layer)."""

    is_public: bool = False
    snapshot_id: str | None = None
    share_network_id: str | None = None
    share_type_id: str | None = None
    host: str | None = None
    availability_zone: str | None = None
    export_location_id: str | None = None
    export_location_path: str | None = None


def _matches(share: Share, q: ShareQuery) -> bool:
    return listing.matches(share, q) and all(
        wanted is None or have == wanted
        for have, wanted in (
            (share.snapshot_id, q.snapshot_id),
            (share.share_network_id, q.share_network_id),
            (share.share_type_id, q.share_type_id),
            (share.host, q.host),
            (share.availability_zone, q.availability_zone),
            (share.export_location_id, q.export_location_id),
        )
    )


class Shares(collection.Collection):
    """Every share, by id, by project and the public ones; the :class:`Lifecycle` of shares."""

    def __init__(self, state: state_mod.StandInState) -> None:
        super().__init__(state)
        self.by_id: dict[str, Share] = {}
        self._by_project: collection.Index = {}
        self._public: dict[str, None] = {}

    # -- lifecycle (transitions.Lifecycle) ------------------------------------

    def frozen(self, share: Share) -> bool:
        """Whether a fault keeps the share's transitions from completing."""
        return self.state.faults.is_share_stuck(share.id)

    def complete(self, share: Share, transition: transitions.Transition) -> None:
        """Reach the transition's status (exported once available), or remove the share."""
        super().complete(share, transition)
        if transition.target == "available":
            share.ensure_export(transition.ready_at)

    # -- records ---------------------------------------------------------------

    def new(
        self,
        *,
        project_id: str,
        user_id: str,
        size: int,
        share_proto: str,
        name: str | None,
        description: str | None,
        status: str,
        share_type: share_types.ShareType,
        share_network_id: str | None,
        availability_zone: str,
        metadata: dict[str, str],
        is_public: bool,
        snapshot_id: str | None,
        host: str | None,
    ) -> Share:
        """Store a new share and charge its project's quota (no checks)."""
        share = Share(
            id=str(uuid.uuid4()),
            project_id=project_id,
            user_id=user_id,
            size=size,
            share_proto=share_proto,
            name=name,
            description=description,
            status=status,
            share_type_id=share_type.id,
            share_network_id=share_network_id,
            availability_zone=availability_zone,
            metadata=metadata,
            is_public=is_public,
            snapshot_id=snapshot_id,
            created_at=self.state.timeline.stamp(),
            host=host,
            snapshot_support=share_type.flag("snapshot_support"),
            create_share_from_snapshot_support=share_type.flag(
                "create_share_from_snapshot_support"
            ),
            revert_to_snapshot_support=share_type.flag("revert_to_snapshot_support"),
            mount_snapshot_support=share_type.flag("mount_snapshot_support"),
        )
        self.by_id[share.id] = share
        self._by_project.setdefault(project_id, {})[share.id] = None
        self._set_public(share, is_public)
        self.state.quotas.charge(project_id, shares=1, gigabytes=size)
        return share

    def _set_public(self, share: Share, is_public: bool) -> None:
        share.is_public = is_public
        if is_public:
            self._public[share.id] = None
        else:
            self._public.pop(share.id, None)

    def remove(self, share: Share) -> None:
        """Forget a share that is gone, with its rules; refund its quota."""
        self.by_id.pop(share.id, None)
        collection.unindex(self._by_project, share.project_id, share.id)
        self._public.pop(share.id, None)
        self.state.rules.remove_all(share.id)
        self.state.quotas.charge(share.project_id, shares=-1, gigabytes=-share.size)
        transitions.cancel(share)

    def visible(self, ctx: identity.Context, share_id: str, message: str | None = None) -> Share:
        """Return a share the caller may see (its own, or public), or raise 404.

        :param message: the 404's text; Manila 23 answers a bare 404 (webob's
            default explanation) unless the controller words it.
        """
        share = self.by_id.get(share_id)
        if share is None or not (ctx.owns(share.project_id) or share.is_public):
            raise errors.not_found(message or errors.NOT_FOUND)
        return share

    @staticmethod
    def authorize(ctx: identity.Context, share: Share, action: str) -> None:
        """Refuse a change of another project's (public) share: Manila's policy, 403."""
        identity.authorize(ctx, share.project_id, f"share:{action}")

    # -- API operations ----------------------------------------------------------

    @collection.settled
    def create(
        self,
        ctx: identity.Context,
        *,
        share_proto: typing.Any,
        size: typing.Any,
        name: str | None = None,
        description: str | None = None,
        snapshot_id: str | None = None,
        share_network_id: str | None = None,
        share_type: str | None = None,
        is_public: bool = False,
        availability_zone: str | None = None,
        metadata: dict[str, str] | None = None,
        check_create_from_snapshot_support: bool = True,
    ) -> Share:
        """Create a share through the API rules (Manila ``POST /shares``).

        The order of the checks follows Manila's share controller and
        ``manila.share.api.API.create``.

        :raises errors.ApiError: 400/404/413 as Manila answers them.
        """
        config = self.state.config
        if availability_zone and availability_zone not in config.availability_zones:
            raise errors.not_found(f"Availability zone {availability_zone} could not be found.")
        snapshot = self.state.snapshots.visible(
            ctx, snapshot_id,
            message=f"ShareSnapshotNotFound: Snapshot {snapshot_id} could not be found.",
        ) if snapshot_id else None
        parent = self.by_id[snapshot.share_id] if snapshot is not None else None
        operation = "share_create_from_snapshot" if snapshot else "share_create"
        with self.state.mutation(ctx, operation, parent.id if parent else None) as scope:
            scope.status = 200
            if parent is not None:
                share_network_id = self._parent_network(parent, share_network_id)
                if check_create_from_snapshot_support and not (
                    parent.create_share_from_snapshot_support
                ):
                    raise errors.bad_request(
                        f"A new share may not be created from snapshot '{snapshot_id}', "
                        "because the snapshot's parent share does not have that capability."
                    )
            if share_network_id:
                self.state.networks.check(ctx, share_network_id)
            chosen: share_types.ShareType | None = None
            if share_type:
                chosen = self.state.types.find(share_type)
                if chosen is None:
                    raise errors.not_found("Share type not found.")
            elif snapshot is None:
                chosen = self.state.types.default
            if (
                chosen is not None
                and snapshot is None
                and not share_network_id
                and chosen.flag("driver_handles_share_servers")
            ):
                raise errors.bad_request(
                    "Share network must be set when the driver_handles_share_servers is true."
                )
            params.check_metadata(metadata)
            if snapshot is not None:
                if snapshot.status != "available":
                    raise errors.bad_request("Invalid share snapshot: status must be 'available'.")
                if not size:
                    size = snapshot.size
            if isinstance(size, bool) or not params.is_int_like(size) or int(size) <= 0:
                raise errors.invalid_input(
                    f"Share size '{size}' must be an integer and greater than 0"
                )
            size = int(size)
            if snapshot is not None and size < snapshot.size:
                raise errors.invalid_input(
                    f"Share size '{size}' must be equal or greater than snapshot size"
                )
            if parent is not None:
                availability_zone = self._parent_zone(parent, availability_zone)
                chosen = self._parent_type(parent, chosen)
            protocols = [p.upper() for p in config.share_protocols]
            if not isinstance(share_proto, str) or share_proto.upper() not in protocols:
                raise errors.invalid_input(
                    f"Invalid share protocol provided: {share_proto}. It is either "
                    "disabled or unsupported. Available protocols: "
                    f"{list(config.share_protocols)}"
                )
            if chosen is None:
                raise errors.bad_request("No share type given and no default share type.")
            quotas = self.state.quotas
            quotas.check(ctx.project_id, "gigabytes", size,
                         "Requested share exceeds allowed project/user or share type "
                         "gigabytes quota.")
            quotas.check(ctx.project_id, "shares", 1,
                         "Maximum number of shares allowed ({allowed}) exceeded.")
            faults = self.state.faults
            host: str | None = config.backend_host
            if snapshot is not None:
                failing = faults.take_share_error_from_snapshot(snapshot.id)
                status = config.share_from_snapshot_status
            else:
                failing = faults.take_share_create_error()
                if failing:
                    host = None
                status = "creating"
            share = self.new(
                project_id=ctx.project_id,
                user_id=ctx.user_id,
                size=size,
                share_proto=share_proto.upper(),
                name=name,
                description=description,
                status=status,
                share_type=chosen,
                share_network_id=share_network_id,
                availability_zone=availability_zone or config.availability_zones[0],
                metadata=params.strings(metadata),
                is_public=bool(is_public),
                snapshot_id=snapshot.id if snapshot is not None else None,
                host=host,
            )
            delay = config.delays.share_create
            if faults.take_stuck_next_created(share.id):
                delay = transitions.INFINITY
            share_ids = [share.id] + ([parent.id] if parent is not None else [])
            self.state.timeline.begin(self, share, "error" if failing else "available",
                                      delay, scope, share_ids)
            return share

    @staticmethod
    def _parent_network(parent: Share, share_network_id: str | None) -> str | None:
        if share_network_id:
            if share_network_id != parent.share_network_id:
                raise errors.bad_request(
                    "Share network ID should be the same as snapshot's parent share's or empty"
                )
            return share_network_id
        return parent.share_network_id or share_network_id

    @staticmethod
    def _parent_zone(parent: Share, availability_zone: str | None) -> str:
        if availability_zone is None:
            return parent.availability_zone
        if availability_zone != parent.availability_zone:
            raise errors.invalid_input(
                "The specified availability zone must be the same as the parent "
                "share when creating from snapshot."
            )
        return availability_zone

    def _parent_type(
        self, parent: Share, chosen: share_types.ShareType | None
    ) -> share_types.ShareType:
        if chosen is None:
            return self.state.types.by_id[parent.share_type_id]
        if chosen.id != parent.share_type_id:
            raise errors.invalid_input(
                "Invalid share type specified: the requested share type must "
                "match the type of the source share. If a share type is not "
                "specified when requesting a new share from a snapshot, the share "
                "type of the source share will be applied to the new share."
            )
        return chosen

    @collection.settled
    def update(self, ctx: identity.Context, share_id: str, fields: dict[str, typing.Any]) -> Share:
        """Change a share's name, description or visibility (``PUT /shares/{id}``)."""
        share = self.visible(ctx, share_id)
        with self.state.mutation(ctx, "share_update", share.id) as scope:
            scope.status = 200
            self.authorize(ctx, share, "update")
            for key in ("name", "description"):
                if key in fields:
                    params.check_lengths(**{key: fields[key]})
                    setattr(share, key, fields[key])
            if "is_public" in fields:
                self._set_public(share, params.body_bool("is_public", fields["is_public"]))
            share.updated_at = self.now()
            return share

    @collection.settled
    def delete(self, ctx: identity.Context, share_id: str, force: bool = False) -> None:
        """Delete a share (``DELETE /shares/{id}`` or the ``force_delete`` action).

        :raises errors.ApiError: 404 unknown; 403 wrong status or dependent
            snapshots (400 for snapshots when forced, as Manila does).
        """
        share = self.visible(ctx, share_id)
        operation = "share_force_delete" if force else "share_delete"
        with self.state.mutation(ctx, operation, share.id) as scope:
            if force:
                identity.require_admin(ctx)
            self.authorize(ctx, share, "delete")
            if not force and share.status not in SHARE_DELETABLE:
                raise errors.invalid_share(
                    f"Share status must be one of {SHARE_DELETABLE}", status=403
                )
            dependent = self.state.snapshots.count_of(share.id)
            if dependent:
                raise errors.invalid_share(
                    f"Share still has {dependent} dependent snapshots",
                    status=400 if force else 403,
                )
            transitions.cancel(share)
            if not share.host:
                # Never scheduled: Manila drops it at once.
                self.remove(share)
                return
            share.status = "deleting"
            share.updated_at = self.now()
            delay = self.state.config.delays.share_delete
            self.state.timeline.begin(self, share, None, delay, scope, [share.id])

    @collection.settled
    def list_visible(self, ctx: identity.Context, query: ShareQuery) -> tuple[int, list[Share]]:
        """Return (total matching, page) of shares visible to ``ctx``."""
        listing.check_sort(query, query.sort_key, SORT_KEYS)
        matched = [s for s in self._candidates(ctx, query) if _matches(s, query)]
        return listing.sort_and_page(matched, query, query.sort_key, SORT_ATTRIBUTES)

    def _candidates(self, ctx: identity.Context, query: ShareQuery) -> list[Share]:
        by_id = self.by_id
        if ctx.is_admin and query.all_tenants:
            if query.project_id is not None:
                ids: typing.Iterable[str] = self._by_project.get(query.project_id, {})
            else:
                ids = by_id
            return [by_id[i] for i in ids]
        own = self._by_project.get(ctx.project_id, {})
        shares = [by_id[i] for i in own]
        if query.is_public:
            shares.extend(
                by_id[i] for i in self._public if by_id[i].project_id != ctx.project_id
            )
        if query.project_id is not None:
            shares = [s for s in shares if s.project_id == query.project_id]
        return shares

    # -- direct helpers (no API rules, no conflicts) --------------------------------

    @collection.settled
    def direct_create(
        self,
        project_id: str,
        size: int = 1,
        share_proto: str = "NFS",
        name: str | None = None,
        status: str = "available",
        share_type: str | None = None,
        share_network_id: str | None = None,
        metadata: dict[str, str] | None = None,
        is_public: bool = False,
        access_rules: typing.Iterable[typing.Any] | None = None,
        user_id: str | None = None,
        description: str | None = None,
        availability_zone: str | None = None,
    ) -> Share:
        """Create a share directly in ``status`` (no transition, no quota check).

        :raises ValueError: for an unknown share type.
        """
        chosen = self.state.types.find(share_type) if share_type else self.state.types.default
        if chosen is None:
            raise ValueError(f"unknown share type {share_type!r}")
        share = self.new(
            project_id=project_id,
            user_id=user_id or project_id,
            size=int(size),
            share_proto=share_proto.upper(),
            name=name,
            description=description,
            status=status,
            share_type=chosen,
            share_network_id=share_network_id,
            availability_zone=availability_zone or self.state.config.availability_zones[0],
            metadata=params.strings(metadata),
            is_public=is_public,
            snapshot_id=None,
            host=self.state.config.backend_host,
        )
        if status == "available":
            share.ensure_export(share.created_at)
        for spec in access_rules or ():
            self.state.rules.direct_create(share, spec)
        return share

    @collection.settled
    def set_status(self, share_id: str, status: str) -> None:
        """Force a share's status (cancels its pending transition).

        :raises KeyError: if the share does not exist.
        """
        share = self.force_status(share_id, status)
        if status == "available":
            if not share.host:
                share.host = self.state.config.backend_host
            share.ensure_export(self.now())

    @collection.settled
    def every(self, project_id: str | None = None) -> list[Share]:
        """Return every share (of one project), oldest first."""
        return self.members(self._by_project, project_id)
