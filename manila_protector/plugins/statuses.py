"""Named sets of Manila share, snapshot and access-rule statuses, and the waits built on them.

Each set is named once and used everywhere; a status that is in none of the
sets a wait knows about is *unknown* and fails the wait instead of spinning.
Sources: Manila's API reference and ``manila/common/constants.py``.

A wait reads each status it sees through a :class:`StatusSets`: ``ready`` ends
it, ``failed`` ends it too (the caller says what failure means), ``pending``
goes on.  The sets every operation waits with are defined at the bottom.
"""

from __future__ import annotations

import dataclasses

#: The status a wait reports when the resource no longer exists (HTTP 404).
GONE = "<gone>"


@dataclasses.dataclass(frozen=True)
class StatusSets:
    """What a wait makes of each status it may see.

    :param ready: the wait ends successfully.
    :param pending: the wait goes on.
    :param failed: the wait ends; the caller decides what failure means.
    A status in none of them is unknown and fails the wait at once.
    ``GONE`` may appear in any of the sets.
    """

    ready: frozenset[str]
    pending: frozenset[str]
    failed: frozenset[str] = frozenset()


# -- shares -----------------------------------------------------------------

SHARE_AVAILABLE = "available"

#: A share in one of these will (normally) settle by itself; a wait goes on.
SHARE_TRANSITIONAL = frozenset({
    "creating",
    "creating_from_snapshot",
    "extending",
    "shrinking",
    "reverting",
    "migrating",
    "migrating_to",
    "server_migrating",
    "replication_change",
    "manage_starting",
    "backup_creating",
    "backup_restoring",
    "ensuring",
    "awaiting_transfer",
})

#: A share in one of these cannot be protected and will not become available by itself.
SHARE_UNPROTECTABLE = frozenset({
    "deleting",
    "deleted",
    "deferred_deleting",
    "error",
    "error_deleting",
    "error_deferred_deleting",
    "inactive",
    "manage_error",
    "manage_error_unmanage_starting",
    "unmanage_starting",
    "unmanage_error",
    "unmanaged",
    "extending_error",
    "shrinking_error",
    "shrinking_possible_data_loss_error",
    "reverting_error",
    "backup_restoring_error",
})

#: A share that is being made (from a snapshot, by a restore).
SHARE_CREATING = frozenset({"creating", "creating_from_snapshot"})

#: A share created by a restore that ends in one of these has failed.
SHARE_CREATE_FAILED = frozenset({"error", "error_deleting", "deleting", "deleted"})

#: A share being reverted to a snapshot.
SHARE_REVERTING = frozenset({"reverting"})

#: A revert that ends the share in one of these has failed.
SHARE_REVERT_FAILED = frozenset({"reverting_error", "error"})

#: Manila deletes a share (without ``force``) only from one of these statuses.
SHARE_DELETABLE = frozenset({"available", "error", "inactive"})

#: Statuses of a share that is being deleted.
SHARE_DELETING = frozenset({"deleting", "deferred_deleting"})

#: A share being deleted that ends in one of these was not deleted.
SHARE_DELETE_FAILED = frozenset({"error_deleting", "error_deferred_deleting"})

# -- snapshots --------------------------------------------------------------

SNAPSHOT_AVAILABLE = "available"

#: Statuses of a snapshot that is being made.
SNAPSHOT_CREATING = frozenset({"creating"})

#: Statuses of a snapshot that is busy but fine (a revert reads it).
SNAPSHOT_BUSY = frozenset({"restoring"})

#: A snapshot in one of these will not become available.
SNAPSHOT_FAILED = frozenset({
    "error",
    "error_deleting",
    "error_deferred_deleting",
    "deleting",
    "deferred_deleting",
    "manage_error",
    "unmanage_starting",
    "unmanage_error",
})

#: Statuses of a snapshot that is being deleted.
SNAPSHOT_DELETING = frozenset({"deleting", "deferred_deleting"})

#: A snapshot being deleted that ends in one of these was not deleted.
SNAPSHOT_DELETE_FAILED = frozenset({"error_deleting", "error_deferred_deleting"})

#: Manila deletes a snapshot only from one of these statuses.
SNAPSHOT_DELETABLE = frozenset({"available", "error"})

#: Another job's snapshot in one of these is a Manila operation in flight on its
#: share: a protect waits for it before making its own.
SNAPSHOT_IN_FLIGHT = SNAPSHOT_CREATING | SNAPSHOT_BUSY | SNAPSHOT_DELETING

# -- access rules -----------------------------------------------------------

ACCESS_RULE_ACTIVE = "active"
ACCESS_RULE_PENDING = frozenset({"new", "queued_to_apply", "applying"})
ACCESS_RULE_FAILED = frozenset({"error", "queued_to_deny", "denying"})

#: A share's ``access_rules_status`` while rules are being changed (older releases
#: said ``out_of_sync``/``updating``); Manila refuses a revert then.
SHARE_ACCESS_RULES_SYNCING = frozenset({"syncing", "out_of_sync", "updating",
                                        "updating_multiple", "queued_to_apply"})

#: A share's ``access_rules_status`` when a rule could not be applied.
SHARE_ACCESS_RULES_ERROR = "error"

# -- the waits --------------------------------------------------------------

#: A share to be protected: wait until it is available.
SHARE_READY = StatusSets(
    ready=frozenset({SHARE_AVAILABLE}),
    pending=SHARE_TRANSITIONAL,
    failed=SHARE_UNPROTECTABLE,
)

#: A share a restore made from a snapshot: wait until it is available.
NEW_SHARE_READY = StatusSets(
    ready=frozenset({SHARE_AVAILABLE}),
    pending=SHARE_CREATING,
    failed=SHARE_CREATE_FAILED | {GONE},
)

#: A share reverted in place: wait until the revert is over.
REVERT_DONE = StatusSets(
    ready=frozenset({SHARE_AVAILABLE}),
    pending=SHARE_REVERTING,
    failed=SHARE_REVERT_FAILED | {GONE},
)

#: A share about to be reverted: wait until its access rules are not changing.
SHARE_RULES_SETTLED = StatusSets(
    ready=frozenset({ACCESS_RULE_ACTIVE}),
    pending=SHARE_ACCESS_RULES_SYNCING,
    failed=frozenset({SHARE_ACCESS_RULES_ERROR}),
)

#: A share being deleted: wait until it is gone.
SHARE_GONE = StatusSets(
    ready=frozenset({GONE}),
    pending=SHARE_DELETING,
    failed=SHARE_DELETE_FAILED,
)

#: A snapshot being made: wait until it is available.
SNAPSHOT_READY = StatusSets(
    ready=frozenset({SNAPSHOT_AVAILABLE}),
    pending=SNAPSHOT_CREATING | SNAPSHOT_BUSY,
    failed=SNAPSHOT_FAILED | {GONE},
)

#: A snapshot about to be deleted: wait until Manila would accept the delete
#: (or it is already being deleted, or gone).
SNAPSHOT_SETTLED = StatusSets(
    ready=SNAPSHOT_DELETABLE | SNAPSHOT_DELETING | {GONE},
    pending=SNAPSHOT_CREATING | SNAPSHOT_BUSY,
    failed=SNAPSHOT_DELETE_FAILED,
)

#: A snapshot being deleted: wait until it is gone.
SNAPSHOT_GONE = StatusSets(
    ready=frozenset({GONE}),
    pending=SNAPSHOT_DELETING,
    failed=SNAPSHOT_DELETE_FAILED,
)
