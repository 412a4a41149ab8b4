"""verify = the protect's snapshot still exists, belongs to its share and is available."""

from __future__ import annotations

from manila_protector import exception
from manila_protector import identity
from manila_protector import progress
from manila_protector.plugins import delivery as delivery_mod
from manila_protector.plugins import statuses
from manila_protector.plugins import values


class Verify(delivery_mod.Operation):
    """The verify operation."""

    def __call__(self, saved: values.SavedInfo, *,
                 caller: identity.Caller | None = None) -> values.VerifyResult:
        """Check that the snapshot exists, belongs to the share and is ``available``.

        :param caller: when given, the snapshot must be the caller's (or the caller an admin).
        :raises exception.NotFound: the snapshot is gone.
        :raises exception.NotAuthorized: the snapshot is another project's.
        :raises exception.InvalidStatus: the snapshot is not available.
        """
        deadline = self._delivery.deadline(self._timeout)
        self._delivery.phase(progress.CHECKING, f"snapshot {saved.snapshot_id}", deadline)
        snapshot = self._delivery.saved_snapshot(saved, caller, deadline)
        if snapshot["status"] != statuses.SNAPSHOT_AVAILABLE:
            raise exception.InvalidStatus(
                f"snapshot {saved.snapshot_id} is {snapshot['status']!r}, not 'available'",
                details={"snapshot_id": saved.snapshot_id, "status": snapshot["status"]},
            )
        return values.VerifyResult(snapshot_id=saved.snapshot_id, share_id=saved.share_id,
                                   status=snapshot["status"], size=snapshot.get("size"))
