"""Share snapshots: the model, its rules and its transitions.

A snapshot is created ``creating`` and becomes ``available`` (or ``error``)
after ``Delays.snapshot_create``; deletion goes ``deleting`` and the snapshot is
gone after ``Delays.snapshot_delete``. A snapshot is its creator's project's
alone (Manila looks snapshots up ``project_only``): no public snapshots. Every
mutation of a snapshot counts on its share in the conflict detector. HTTP
handlers and views: :mod:`manila_standin.snapshots_api`; metadata:
:mod:`manila_standin.metadata`.
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
from manila_standin import transitions

if typing.TYPE_CHECKING:
    from manila_standin import shares as shares_mod
    from manila_standin import state as state_mod

SNAPSHOT_DELETABLE = ("available", "error")
SORT_KEYS = frozenset({
    "id", "status", "size", "share_id", "user_id", "project_id", "progress", "name",
    "display_name", "created_at", "updated_at", "share_proto", "share_size",
    "display_description", "description",
})
#: Sort keys named differently on the record.
SORT_ATTRIBUTES = {
    "display_name": "name", "display_description": "description", "progress": "status",
}


@dataclasses.dataclass(eq=False)
class Snapshot:
    """A share snapshot as the stand-in stores it."""

    id: str
    share_id: str
    project_id: str
    user_id: str
    size: int
    share_size: int
    share_proto: str
    name: str | None
    description: str | None
    status: str
    metadata: dict[str, str]
    created_at: float
    updated_at: float | None = None
    transition: transitions.Transition | None = None


@dataclasses.dataclass
class SnapshotQuery(listing.ListQuery):
    """Parsed filters of a snapshot listing (already validated by the API layer)."""

    share_id: str | None = None
    size: int | None = None


class Snapshots(collection.Collection):
    """Every snapshot, by id, by share and by project; the :class:`Lifecycle` of snapshots."""

    def __init__(self, state: state_mod.StandInState) -> None:
        super().__init__(state)
        self.by_id: dict[str, Snapshot] = {}
        self._by_share: collection.Index = {}
        self._by_project: collection.Index = {}

    # -- lifecycle (transitions.Lifecycle) ------------------------------------

    def frozen(self, snapshot: Snapshot) -> bool:
        """Whether a fault keeps the snapshot's transition from completing."""
        faults = self.state.faults
        if snapshot.transition is not None and snapshot.transition.target is None:
            return faults.is_snapshot_stuck_deleting(snapshot.id)
        if snapshot.status == "restoring":
            return faults.is_share_stuck(snapshot.share_id)
        return False

    # -- records ---------------------------------------------------------------

    def new(
        self,
        share: shares_mod.Share,
        *,
        project_id: str,
        user_id: str,
        name: str | None,
        description: str | None,
        status: str,
        metadata: dict[str, str],
    ) -> Snapshot:
        """Store a new snapshot of ``share`` and charge its project's quota (no checks)."""
        snapshot = Snapshot(
            id=str(uuid.uuid4()),
            share_id=share.id,
            project_id=project_id,
            user_id=user_id,
            size=share.size,
            share_size=share.size,
            share_proto=share.share_proto,
            name=name,
            description=description,
            status=status,
            metadata=metadata,
            created_at=self.state.timeline.stamp(),
        )
        self.by_id[snapshot.id] = snapshot
        self._by_share.setdefault(share.id, {})[snapshot.id] = None
        self._by_project.setdefault(project_id, {})[snapshot.id] = None
        self.state.quotas.charge(project_id, snapshots=1, snapshot_gigabytes=snapshot.size)
        return snapshot

    def remove(self, snapshot: Snapshot) -> None:
        """Forget a snapshot that is gone; refund its quota."""
        self.by_id.pop(snapshot.id, None)
        collection.unindex(self._by_share, snapshot.share_id, snapshot.id)
        collection.unindex(self._by_project, snapshot.project_id, snapshot.id)
        self.state.quotas.charge(
            snapshot.project_id, snapshots=-1, snapshot_gigabytes=-snapshot.size
        )
        transitions.cancel(snapshot)

    def visible(
        self, ctx: identity.Context, snapshot_id: str, status: int = 404, message: str | None = None
    ) -> Snapshot:
        """Return a snapshot of the caller's project (any, for an admin), or raise.

        :param status: the error's status (404; 400 where Manila answers that).
        :param message: its text; webob's bare 404 explanation by default.
        """
        snapshot = self.by_id.get(snapshot_id)
        if snapshot is None or not ctx.owns(snapshot.project_id):
            raise errors.ApiError(status, message or errors.NOT_FOUND)
        return snapshot

    def count_of(self, share_id: str) -> int:
        """How many snapshots ``share_id`` has (any status)."""
        return len(self._by_share.get(share_id, {}))

    def latest(self, share_id: str) -> Snapshot | None:
        """Return the newest (by ``created_at``) snapshot of a share."""
        with self.state.lock:
            ids = self._by_share.get(share_id, {})
            return max((self.by_id[i] for i in ids), key=lambda s: s.created_at, default=None)

    # -- API operations ----------------------------------------------------------

    @collection.settled
    def create(
        self,
        ctx: identity.Context,
        share_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Snapshot:
        """Snapshot a share through the API rules (``POST /snapshots``).

        ``force`` is not a parameter: Manila's v2 API ignores it.

        :raises errors.ApiError: 404 unknown share; 422 no snapshot support;
            400 share not available; 413 over quota.
        """
        share = self.state.shares.visible(ctx, share_id, errors.NOT_FOUND_TRANSLATED)
        with self.state.mutation(ctx, "snapshot_create", share.id) as scope:
            if not share.snapshot_support:
                raise errors.unprocessable(
                    f"Snapshots cannot be created for share '{share.id}' since it does "
                    "not have that capability."
                )
            params.check_lengths(name=name, description=description)
            if metadata:
                params.check_metadata(metadata)
            self.state.shares.authorize(ctx, share, "create_snapshot")
            if share.status != "available":
                raise errors.invalid_share("Source share status must be available")
            quotas = self.state.quotas
            quotas.check(ctx.project_id, "snapshot_gigabytes", share.size,
                         "Requested snapshot exceeds allowed project/user or share type "
                         "gigabytes quota.")
            quotas.check(ctx.project_id, "snapshots", 1,
                         "Maximum number of snapshots allowed ({allowed}) exceeded.")
            snapshot = self.new(
                share,
                project_id=ctx.project_id,
                user_id=ctx.user_id,
                name=name,
                description=description,
                status="creating",
                metadata=params.strings(metadata),
            )
            faults = self.state.faults
            delay = self.state.config.delays.snapshot_create
            if faults.take_snapshot_stuck_creating(share.id):
                delay = transitions.INFINITY
            target = "error" if faults.take_snapshot_error(share.id) else "available"
            self.state.timeline.begin(self, snapshot, target, delay, scope, [share.id])
            return snapshot

    @collection.settled
    def delete(self, ctx: identity.Context, snapshot_id: str, force: bool = False) -> None:
        """Delete a snapshot (``DELETE /snapshots/{id}`` or ``force_delete``).

        :raises errors.ApiError: 404 unknown; 400 not available/error (unless forced).
        """
        snapshot = self.visible(ctx, snapshot_id)
        operation = "snapshot_force_delete" if force else "snapshot_delete"
        with self.state.mutation(ctx, operation, snapshot.share_id) as scope:
            if force:
                identity.require_admin(ctx)
            if not force and snapshot.status not in SNAPSHOT_DELETABLE:
                raise errors.bad_request(
                    "Invalid share snapshot: Share Snapshot status must be one of "
                    f"{SNAPSHOT_DELETABLE}."
                )
            transitions.cancel(snapshot)
            snapshot.status = "deleting"
            snapshot.updated_at = self.now()
            self.state.faults.take_stuck_deleting_next(snapshot.id)
            delay = self.state.config.delays.snapshot_delete
            self.state.timeline.begin(self, snapshot, None, delay, scope, [snapshot.share_id])

    @collection.settled
    def update(
        self, ctx: identity.Context, snapshot_id: str, fields: dict[str, typing.Any]
    ) -> Snapshot:
        """Rename or re-describe a snapshot (``PUT /snapshots/{id}``)."""
        snapshot = self.visible(ctx, snapshot_id)
        for key in ("name", "description"):
            if key in fields:
                params.check_lengths(**{key: fields[key]})
                setattr(snapshot, key, fields[key])
        snapshot.updated_at = self.now()
        return snapshot

    @collection.settled
    def list_visible(
        self, ctx: identity.Context, query: SnapshotQuery
    ) -> tuple[int, list[Snapshot]]:
        """Return (total matching, page) of snapshots visible to ``ctx``."""
        sort_key = {"name": "display_name", "description": "display_description"}.get(
            query.sort_key, query.sort_key
        )
        listing.check_sort(query, sort_key, SORT_KEYS)
        by_id = self.by_id
        everything = ctx.is_admin and query.all_tenants
        if query.share_id is not None:
            ids: typing.Iterable[str] = self._by_share.get(query.share_id, {})
        elif everything and query.project_id is None:
            ids = by_id
        else:
            project = query.project_id if everything else ctx.project_id
            ids = self._by_project.get(project or "", {})
        candidates = [by_id[i] for i in ids]
        if not everything:
            candidates = [s for s in candidates if s.project_id == ctx.project_id]
        elif query.project_id is not None:
            candidates = [s for s in candidates if s.project_id == query.project_id]
        matched = [
            s for s in candidates
            if listing.matches(s, query) and (query.size is None or s.size == query.size)
        ]
        return listing.sort_and_page(matched, query, sort_key, SORT_ATTRIBUTES)

    # -- direct helpers (no API rules, no conflicts) --------------------------------

    @collection.settled
    def direct_create(
        self,
        share_id: str,
        status: str = "available",
        name: str | None = None,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        project_id: str | None = None,
    ) -> Snapshot:
        """Create a snapshot of ``share_id`` directly in ``status``.

        :raises KeyError: if the share does not exist.
        """
        share = self.state.shares.by_id.get(share_id)
        if share is None:
            raise KeyError(share_id)
        return self.new(
            share,
            project_id=project_id or share.project_id,
            user_id=project_id or share.user_id,
            name=name,
            description=description,
            status=status,
            metadata=params.strings(metadata),
        )

    @collection.settled
    def set_status(self, snapshot_id: str, status: str) -> None:
        """Force a snapshot's status (cancels its pending transition).

        :raises KeyError: if the snapshot does not exist.
        """
        self.force_status(snapshot_id, status)

    @collection.settled
    def every(self, share_id: str | None = None) -> list[Snapshot]:
        """Return every snapshot (of one share), oldest first."""
        return self.members(self._by_share, share_id)
