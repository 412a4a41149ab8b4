"""Reverting a share to its latest snapshot (the ``revert`` share action, 2.27+).

The share goes ``reverting`` and the snapshot ``restoring``; both are back to
``available`` after ``Delays.revert`` (the share ``reverting_error`` when a fault
says so). Manila only reverts to the share's most recent snapshot, and only
while both are ``available`` and the share's access rules are not changing.
"""

from __future__ import annotations

import typing

from manila_standin import errors
from manila_standin import identity
from manila_standin import routing
from manila_standin import shares_api

if typing.TYPE_CHECKING:
    from manila_standin import state as state_mod


def register(routes: routing.Routes) -> None:
    """Serve the ``revert`` action of shares."""
    routes.action(shares_api.SHARE, "revert", _revert_action, "2.27")


def _revert_action(
    request: routing.ApiRequest, share_id: str, name: str, payload: typing.Any
) -> routing.Answer:
    if not isinstance(payload, dict):
        raise errors.bad_request("Malformed request body")
    revert(request.state, request.ctx, share_id, payload.get("snapshot_id"))
    return 202, None


def revert(
    state: state_mod.StandInState, ctx: identity.Context, share_id: str, snapshot_id: typing.Any
) -> None:
    """Revert a share to a snapshot.

    :raises errors.ApiError: 404 unknown share; 400 unknown snapshot, no
        revert support or snapshot of another share; 409 share/snapshot
        not available, snapshot not the latest, access rules changing.
    """
    with state.lock:
        state.settle()
        share = state.shares.visible(ctx, share_id, errors.NOT_FOUND_TRANSLATED)
        with state.mutation(ctx, "revert", share.id) as scope:
            if not isinstance(snapshot_id, str) or not snapshot_id:
                raise errors.bad_request("Invalid revert request: snapshot_id is required.")
            snapshot = state.snapshots.visible(
                ctx, snapshot_id, status=400,
                message=f"Snapshot {snapshot_id} could not be found.")
            state.shares.authorize(ctx, share, "revert_to_snapshot")
            if not share.revert_to_snapshot_support:
                raise errors.bad_request(
                    f"Share {share.id} may not be reverted to snapshot {snapshot_id}, "
                    "because the share does not have that capability."
                )
            if snapshot.share_id != share.id:
                raise errors.bad_request(
                    f"Snapshot {snapshot_id} is not associated with share {share.id}."
                )
            if share.status != "available":
                raise errors.conflict(
                    f"Share {share.id} is in '{share.status}' state, but it must be in "
                    "'available' state to be reverted to a snapshot."
                )
            if snapshot.status != "available":
                raise errors.conflict(
                    f"Snapshot {snapshot_id} is in '{snapshot.status}' state, but it must "
                    "be in 'available' state to be restored."
                )
            latest = state.snapshots.latest(share.id)
            if latest is not None and latest.id != snapshot.id:
                raise errors.conflict(
                    f"Snapshot {snapshot_id} may not be restored because it is not the "
                    f"most recent snapshot of share {share.id}. Currently the latest "
                    f"snapshot is {latest.id}."
                )
            if state.rules.share_status(share) != "active":
                raise errors.conflict(
                    f"Snapshot {snapshot_id} belongs to a share {share.id} which has "
                    "access rules that are not active."
                )
            now = state.now()
            share.status = "reverting"
            share.updated_at = now
            snapshot.status = "restoring"
            snapshot.updated_at = now
            failing = state.faults.take_revert_error(share.id)
            delay = state.config.delays.revert
            state.timeline.begin(state.shares, share,
                                 "reverting_error" if failing else "available", delay,
                                 scope, [share.id])
            state.timeline.begin(state.snapshots, snapshot, "available", delay)
