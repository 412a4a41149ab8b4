"""delete = delete the protect's snapshot and wait until it is gone; already gone is success."""

from __future__ import annotations

from manila_protector import exception
from manila_protector import identity
from manila_protector import progress
from manila_protector.plugins import delivery as delivery_mod
from manila_protector.plugins import statuses
from manila_protector.plugins import values
from manila_protector.plugins import waiting


class Delete(delivery_mod.Operation):
    """The delete operation."""

    def __call__(self, saved: values.SavedInfo, *,
                 caller: identity.Caller | None = None) -> values.DeleteResult:
        """Delete the snapshot and wait until it is gone; already gone is success.

        :param caller: when given, the snapshot must be the caller's (or the caller an admin).
        :raises exception.InvalidRequest: the snapshot belongs to another share.
        :raises exception.NotAuthorized: the snapshot is another project's.
        :raises exception.NotFound: the snapshot is not there and the caller cannot see
            its share either (another project's snapshot is never "already gone").
        :raises exception.OperationFailed: Manila failed to delete it.
        :raises exception.DeadlineExceeded: the deadline passed.
        """
        delivery = self._delivery
        deadline = delivery.deadline(self._timeout)
        snapshot_id = saved.snapshot_id
        what = f"snapshot {snapshot_id}"
        gone = values.DeleteResult(snapshot_id, already_gone=True)
        delivery.phase(progress.CHECKING, what, deadline)
        try:
            snapshot = delivery.saved_snapshot(saved, caller, deadline)
        except exception.NotFound:
            self._check_share_visible(saved, caller, deadline)
            return gone
        polled = delivery.snapshot_status(snapshot_id)
        status = snapshot["status"]
        if status not in statuses.SNAPSHOT_DELETABLE | statuses.SNAPSHOT_DELETING:
            # Manila refuses to delete a snapshot being made or read: let it settle.
            status = delivery.wait(polled, statuses.SNAPSHOT_SETTLED, deadline, what)
        if status == statuses.GONE:
            return gone
        requested = status in statuses.SNAPSHOT_DELETABLE
        if requested:
            delivery.phase(progress.DELETION_REQUESTED, what, deadline)
            try:
                delivery.request_deletion(
                    f"deleting {what}", lambda: self._manila.delete_snapshot(snapshot_id),
                    polled, statuses.SNAPSHOT_DELETABLE, deadline)
            except exception.NotFound:
                return gone
        status = delivery.wait(polled, statuses.SNAPSHOT_GONE, deadline, what, changed=requested)
        if status != statuses.GONE:
            raise exception.OperationFailed(
                f"{what} could not be deleted: status {status!r}",
                details={"snapshot_id": snapshot_id, "status": status},
            )
        return values.DeleteResult(snapshot_id, already_gone=False)

    def _check_share_visible(self, saved: values.SavedInfo, caller: identity.Caller | None,
                             deadline: waiting.Deadline) -> None:
        """A snapshot Manila does not show counts as deleted only for one who sees its share.

        Manila answers 404 for another project's snapshot as for a deleted one: without
        this, project A "deleting" project B's snapshot would report success.

        :raises exception.NotFound: the caller cannot see the share.
        :raises exception.NotAuthorized: the share is another project's (a public one).
        """
        if caller is None or caller.is_admin:
            return
        try:
            share = self._delivery.read(lambda: self._manila.get_share(saved.share_id),
                                        deadline, f"reading share {saved.share_id}")
        except exception.NotFound:
            raise exception.NotFound(
                f"snapshot {saved.snapshot_id} not found, and its share {saved.share_id} is "
                "not one the caller can see: nothing shows it was deleted",
                details={"snapshot_id": saved.snapshot_id,
                         "share_id": saved.share_id}) from None
        caller.check(share.get("project_id"), f"share {saved.share_id}")
