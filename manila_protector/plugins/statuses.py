"""Named sets of Manila share and snapshot statuses.

Each set is named once and used everywhere; a status that is in none of the
sets a wait knows about is *unknown* and fails the wait instead of spinning.
Sources: Manila's API reference and ``manila/common/constants.py``.
"""

from __future__ import annotations

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

#: A share created by a restore that ends in one of these has failed.
SHARE_CREATE_FAILED = frozenset({"error", "error_deleting", "deleting", "deleted"})

#: Manila deletes a share (without ``force``) only from one of these statuses.
SHARE_DELETABLE = frozenset({"available", "error", "inactive"})

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

# -- access rules -----------------------------------------------------------

ACCESS_RULE_ACTIVE = "active"
ACCESS_RULE_PENDING = frozenset({"new", "queued_to_apply", "applying"})
ACCESS_RULE_FAILED = frozenset({"error", "queued_to_deny", "denying"})

#: A share's ``access_rules_status`` while rules are being changed (older releases
#: said ``out_of_sync``/``updating``); Manila refuses a revert then.
SHARE_ACCESS_RULES_SYNCING = frozenset({"syncing", "out_of_sync", "updating",
                                        "updating_multiple", "queued_to_apply"})
