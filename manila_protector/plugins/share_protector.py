"""The protection core: protect (snapshot), restore (new share or revert), delete, verify.

Explicit signatures and frozen dataclasses (:mod:`values`); no Karbor, RPC, lock
or journal here.  Karbor's hooks (``protection.py``) and the worker both call
:class:`ShareProtector`; each operation lives in its own module (``protect``,
``restore``, ``delete``, ``verify``), the rules they share for sending requests
(retried reads, the guard, lost answers, cleanup) in ``delivery``, and how a
resource names the job that made it in ``job_tags``.
"""

from __future__ import annotations

from manila_protector import progress as progress_mod
from manila_protector.plugins import delete as delete_mod
from manila_protector.plugins import delivery as delivery_mod
from manila_protector.plugins import manila_client
from manila_protector.plugins import protect as protect_mod
from manila_protector.plugins import restore as restore_mod
from manila_protector.plugins import sweep as sweep_mod
from manila_protector.plugins import values
from manila_protector.plugins import verify as verify_mod
from manila_protector.plugins import waiting


class ShareProtector:
    """Protects, restores, deletes and verifies share snapshots.

    :param manila: the client acting for the caller.
    :param waiter: how to poll.
    :param timeouts: each operation's deadline (default: :class:`values.Timeouts`).
    :param guard: called with a description before every mutating request; it
        raises (e.g. :class:`exception.LockUnavailable`) to stop the request,
        which then fails as :class:`exception.GuardRefused`.
    :param token_expires_in: seconds the caller's token has left, where that bounds
        the job (see :class:`delivery_mod.Delivery`).
    :param progress: hears each operation's phases and polls (see
        :mod:`manila_protector.progress`); nobody by default.
    """

    def __init__(
        self,
        manila: manila_client.ManilaClient,
        waiter: waiting.Waiter,
        timeouts: values.Timeouts | None = None,
        guard: delivery_mod.Guard | None = None,
        token_expires_in: float | None = None,
        progress: progress_mod.Observer = progress_mod.SILENT,
    ) -> None:
        timeouts = timeouts or values.Timeouts()
        delivery = delivery_mod.Delivery(manila, waiter, timeouts.cleanup, guard,
                                         token_expires_in, progress)
        #: protect(share_id, options, *, job_tag=None, caller=None) -> SavedInfo
        self.protect = protect_mod.Protect(delivery, timeouts.protect)
        #: restore(saved, options, *, job_tag=None, caller=None) -> RestoreResult
        self.restore = restore_mod.Restore(delivery, timeouts.restore)
        #: delete(saved, *, caller=None) -> DeleteResult
        self.delete = delete_mod.Delete(delivery, timeouts.delete)
        #: verify(saved, *, caller=None) -> VerifyResult
        self.verify = verify_mod.Verify(delivery, timeouts.verify)
        #: sweep(kind, resource_id, job_tag) -> bool: delete what a failed job left
        self.sweep = sweep_mod.Sweep(delivery, timeouts.cleanup)
