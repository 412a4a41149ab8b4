"""Getting requests to Manila and back, when answers may be lost.

An operation (protect, restore, delete, verify) sends its requests through a
:class:`Delivery`, which holds the rules every operation shares:

* **Reads** are retried after a 5xx, a timeout or a broken connection until the
  operation's deadline (:meth:`Delivery.read`; waits retry their polls the same way).
* **Mutations** first pass the *guard* (:meth:`Delivery.mutate`): the worker's
  guard proves that it still holds the share's lock.  A refusal is a
  :class:`~manila_protector.exception.GuardRefused`: the request was not sent,
  so nothing may have happened in Manila, and it is never sent again.
* **A lost answer** (a retryable error from a mutation that was sent) does not
  prove that Manila did nothing.  A create is sent again only after a lookup by
  the job's tag found nothing it made (:meth:`Delivery.create`); a delete is
  sent again only while the resource is still deletable
  (:meth:`Delivery.request_deletion`); each at most :data:`REQUEST_ATTEMPTS` times.
* **Cleanup**: what a failed job made is deleted within the cleanup deadline
  (:meth:`Delivery.discard_snapshot`, :meth:`Delivery.discard_share`), and what
  cannot be deleted is named in the job's error (``details.cleaned_up`` false).
* **Progress**: every wait is the phase ``waiting_for_manila`` (unless the
  operation names another), cleanup is ``cleaning_up``; each poll is reported
  too.  All of it goes to the :class:`~manila_protector.progress.Observer` the
  delivery is handed (:data:`~manila_protector.progress.SILENT` by default).
"""

from __future__ import annotations

import logging
import typing

from manila_protector import exception
from manila_protector import identity
from manila_protector import progress as progress_mod
from manila_protector.plugins import manila_client
from manila_protector.plugins import statuses
from manila_protector.plugins import values
from manila_protector.plugins import waiting

LOG = logging.getLogger(__name__)

_T = typing.TypeVar("_T")

#: Sends of one create or delete request whose answers were lost (5xx, timeout).
REQUEST_ATTEMPTS = 3

Resource = dict[str, typing.Any]
Guard = typing.Callable[[str], None]


class Polled:
    """A wait's status function that keeps what it last read.

    The wait's final read is the resource in its final state; keeping it spares
    the GET that would otherwise follow every wait.
    """

    def __init__(self, get: typing.Callable[[], Resource]) -> None:
        self._get = get
        self.last: Resource = {}

    def __call__(self) -> str:
        try:
            self.last = self._get()
        except exception.NotFound:
            self.last = {}
            return statuses.GONE
        return self.last["status"]


def answer_lost(exc: exception.ProtectorError) -> bool:
    """Whether a failed mutating request may have been carried out all the same."""
    return exc.retryable and not isinstance(exc, exception.GuardRefused)


def left_behind(exc: exception.ProtectorError, key: str, resource_id: str,
                cleaned_up: bool) -> None:
    """Record in a failure what the job made (``details[key]``) and whether it was deleted."""
    exc.details.setdefault(key, resource_id)
    exc.details["cleaned_up"] = cleaned_up


class Delivery:
    """Sends an operation's requests to one Manila, under one guard.

    :param manila: the client acting for the caller.
    :param waiter: how to poll and back off.
    :param cleanup_timeout: seconds a failed job may spend deleting what it made.
    :param guard: called with a description before every mutating request; it
        raises a :class:`~manila_protector.exception.ProtectorError` to stop it.
    :param token_expires_in: seconds until the caller's token expires, where that
        bounds the job (None: it does not -- no expiry known, or service tokens
        ride along).  The operation then stops acting ``cleanup_timeout`` seconds
        before, so that what it made can still be deleted with the token; a wait
        or a request cut short fails :class:`~manila_protector.exception.TokenExpired`.
    :param progress: hears the operation's phases and polls.
    """

    def __init__(self, manila: manila_client.ManilaClient, waiter: waiting.Waiter,
                 cleanup_timeout: float, guard: Guard | None = None,
                 token_expires_in: float | None = None,
                 progress: progress_mod.Observer = progress_mod.SILENT) -> None:
        self.manila = manila
        self.progress = progress
        self._waiter = waiter
        self._cleanup_timeout = cleanup_timeout
        self._guard = guard
        self._token_expires_at = (None if token_expires_in is None
                                  else waiter.clock.now() + token_expires_in)

    def _token_expired(self, message: str) -> exception.TokenExpired:
        return exception.TokenExpired(
            f"{message}: the caller's token expires too soon to go on and still clean up "
            "(send the job again with a fresh token, or configure [service_user])")

    @property
    def _stop_acting_at(self) -> float | None:
        if self._token_expires_at is None:
            return None
        return self._token_expires_at - self._cleanup_timeout

    # -- deadlines and waits --------------------------------------------------------------

    def deadline(self, seconds: float) -> waiting.Deadline:
        """A deadline ``seconds`` from now on the waiter's clock (cut off before the token
        expires, where it bounds the job)."""
        return waiting.Deadline(self._waiter.clock, seconds, cutoff=self._stop_acting_at,
                                cutoff_error=self._token_expired)

    def cleanup_deadline(self) -> waiting.Deadline:
        """The time a failed job has to delete what it made (the token must still be valid)."""
        return waiting.Deadline(self._waiter.clock, self._cleanup_timeout,
                                cutoff=self._token_expires_at,
                                cutoff_error=self._token_expired)

    def share_status(self, share_id: str) -> Polled:
        return Polled(lambda: self.manila.get_share(share_id))

    def snapshot_status(self, snapshot_id: str) -> Polled:
        return Polled(lambda: self.manila.get_snapshot(snapshot_id))

    def phase(self, phase: str, detail: str, deadline: waiting.Deadline) -> None:
        """Report that the operation entered ``phase`` (about ``detail``, until ``deadline``)."""
        self.progress.phase(phase, detail=detail, remaining=max(deadline.remaining(), 0.0))

    def _tick(self, status: str | None, elapsed: float, remaining: float) -> None:
        self.progress.waiting(status=status, elapsed=elapsed, remaining=remaining)

    def now(self) -> float:
        """The waits' clock time (what :meth:`wait`'s ``since`` takes)."""
        return self._waiter.clock.now()

    def wait(self, fetch: typing.Callable[[], str], sets: statuses.StatusSets,
             deadline: waiting.Deadline, what: str, *, changed: bool = False,
             phase: str | None = progress_mod.WAITING_FOR_MANILA,
             since: float | None = None) -> str:
        """See :meth:`waiting.Waiter.wait`; the wait is ``phase`` (None: the current one)."""
        if phase is not None:
            self.phase(phase, what, deadline)
        return self._waiter.wait(fetch, sets, deadline, what, changed=changed, tick=self._tick,
                                 since=since)

    def until(self, probe: typing.Callable[[], _T | None], deadline: waiting.Deadline,
              what: str, *, changed: bool = False,
              pending: typing.Callable[[], str | None] = lambda: None,
              phase: str | None = progress_mod.WAITING_FOR_MANILA) -> _T:
        """See :meth:`waiting.Waiter.until`; the wait is ``phase`` (None: the current one)."""
        if phase is not None:
            self.phase(phase, what, deadline)
        return self._waiter.until(probe, deadline, what, changed=changed, pending=pending,
                                  tick=self._tick)

    # -- requests -------------------------------------------------------------------------

    def read(self, call: typing.Callable[[], _T], deadline: waiting.Deadline, what: str) -> _T:
        """An idempotent request, retried after retryable errors until the deadline."""
        return self._waiter.retry(call, deadline, what)

    def mutate(self, what: str, call: typing.Callable[[], _T], *, cleanup: bool = False) -> _T:
        """A mutating request, sent only once the guard allows it.

        :param cleanup: the request deletes what a failed job made: it may be sent
            until the caller's token expires (the time kept for it), not only until
            the job had to stop acting.
        :raises exception.GuardRefused: the guard refused, or the caller's token
            expires too soon; nothing was sent.
        """
        stop = self._token_expires_at if cleanup else self._stop_acting_at
        if stop is not None and self._waiter.clock.now() >= stop:
            raise exception.GuardRefused.before(what, self._token_expired(what))
        if self._guard is not None:
            try:
                self._guard(what)
            except exception.ProtectorError as exc:
                raise exception.GuardRefused.before(what, exc) from exc
        return call()

    def _resend(self, attempt: typing.Callable[[], _T], deadline: waiting.Deadline,
                what: str) -> _T:
        """Run ``attempt`` again after lost answers, at most REQUEST_ATTEMPTS times."""
        return self._waiter.retry(attempt, deadline, what, attempts=REQUEST_ATTEMPTS,
                                  retry_if=answer_lost)

    def resend(self, attempt: typing.Callable[[], None], deadline: waiting.Deadline,
               what: str) -> None:
        """Run ``attempt`` -- which checks what Manila already did -- again after lost answers."""
        self._resend(attempt, deadline, what)

    def create(
        self,
        what: str,
        create: typing.Callable[[], Resource],
        find: typing.Callable[[], Resource | None] | None,
        deadline: waiting.Deadline,
    ) -> tuple[Resource, bool]:
        """Send a create request; after a lost answer, adopt what it made or send it again.

        A 5xx or a timeout does not prove that Manila did nothing: before each
        new attempt ``find`` (a tag lookup) looks for what an earlier one made.
        Without ``find`` the first error is raised.

        :returns: the resource, and whether an answer was lost on the way (another
            attempt might still surface later: the caller removes duplicates).
        """
        if find is None:
            return self.mutate(what, create), False
        lost = False

        def attempt() -> Resource:
            nonlocal lost
            if lost:
                found = find()
                if found is not None:
                    LOG.info("%s: an earlier request's answer was lost but Manila made %s; "
                             "adopting it", what, found["id"])
                    return found
            try:
                return self.mutate(what, create)
            except exception.ProtectorError as exc:
                lost = lost or answer_lost(exc)
                raise

        try:
            return self._resend(attempt, deadline, what), lost
        except exception.ProtectorError:
            if not lost:
                raise
            # The last answer was lost too: one more look, so that nothing made is missed.
            try:
                found = self.read(find, self.cleanup_deadline(), f"looking for the {what}")
            except exception.ProtectorError:
                found = None
            if found is None:
                raise
            LOG.info("%s: adopting %s, made by a request whose answer was lost", what,
                     found["id"])
            return found, True

    def request_deletion(
        self,
        what: str,
        delete: typing.Callable[[], None],
        status: typing.Callable[[], str],
        deletable: frozenset[str],
        deadline: waiting.Deadline,
        *,
        cleanup: bool = False,
    ) -> None:
        """Send a delete request; after a lost answer, send it again only if Manila did not act.

        :param cleanup: see :meth:`mutate`.

        :raises exception.NotFound: the resource is gone.
        :raises exception.ProtectorError: the request failed ``REQUEST_ATTEMPTS``
            times, or for good.
        """
        lost = False

        def attempt() -> None:
            nonlocal lost
            if lost and status() not in deletable:
                return  # deleting, or gone: an earlier request was carried out
            try:
                self.mutate(what, delete, cleanup=cleanup)
            except exception.ProtectorError as exc:
                lost = lost or answer_lost(exc)
                raise

        self._resend(attempt, deadline, what)

    # -- the saved snapshot ---------------------------------------------------------------

    def saved_snapshot(self, saved: values.SavedInfo, caller: identity.Caller | None,
                       deadline: waiting.Deadline) -> Resource:
        """The saved snapshot, checked to be the saved share's and the caller's.

        :raises exception.NotFound: the snapshot is gone.
        :raises exception.InvalidRequest: it belongs to another share.
        :raises exception.NotAuthorized: it is another project's.
        """
        snapshot = self.read(lambda: self.manila.get_snapshot(saved.snapshot_id), deadline,
                             f"reading snapshot {saved.snapshot_id}")
        if snapshot["share_id"] != saved.share_id:
            raise exception.InvalidRequest(
                f"snapshot {saved.snapshot_id} belongs to share {snapshot['share_id']}, "
                f"not {saved.share_id}",
                details={"field": "saved_info.share_id", "rule": "snapshot_owner"},
            )
        if caller is not None:
            caller.check(snapshot.get("project_id"), f"snapshot {saved.snapshot_id}")
        return snapshot

    # -- cleanup --------------------------------------------------------------------------

    def discard_snapshot(self, snapshot_id: str) -> bool:
        """Delete a snapshot a failed job made (see :meth:`_discard`).

        :returns: whether the snapshot is gone.
        """
        # Manila deletes a snapshot only once it is available or in error.
        return self._discard(
            f"snapshot {snapshot_id} of a failed job", self.snapshot_status(snapshot_id),
            statuses.SNAPSHOT_SETTLED, statuses.SNAPSHOT_DELETABLE,
            lambda: self.manila.delete_snapshot(snapshot_id), statuses.SNAPSHOT_GONE)

    def discard_share(self, share_id: str) -> bool:
        """Delete a share a failed restore made (see :meth:`_discard`).

        :returns: whether the share is gone.
        """
        # Manila deletes a share only once it is no longer being created.
        return self._discard(
            f"share {share_id} of a failed restore", self.share_status(share_id),
            statuses.NEW_SHARE_READY, statuses.SHARE_DELETABLE,
            lambda: self.manila.delete_share(share_id), statuses.SHARE_GONE)

    def _discard(
        self,
        what: str,
        polled: Polled,
        settled: statuses.StatusSets,
        deletable: frozenset[str],
        delete: typing.Callable[[], None],
        gone: statuses.StatusSets,
    ) -> bool:
        """Delete what a failed job made, within the cleanup deadline; never raises.

        Waits for the resource to settle (``settled``), asks for its deletion when
        its status is in ``deletable``, then waits until it is gone.

        :returns: whether the resource is gone.
        """
        deadline = self.cleanup_deadline()
        self.phase(progress_mod.CLEANING_UP, what, deadline)
        try:
            status = self.wait(polled, settled, deadline, what, phase=None)
            if status in deletable:
                try:
                    self.request_deletion(f"deleting {what}", delete, polled, deletable,
                                          deadline, cleanup=True)
                except exception.NotFound:
                    status = statuses.GONE
            if status != statuses.GONE:
                status = self.wait(polled, gone, deadline, what, changed=True, phase=None)
        except exception.ProtectorError as exc:
            LOG.warning("could not delete %s: %s", what, exc)
            return False
        if status != statuses.GONE:
            LOG.warning("could not delete %s: it is %r", what, status)
            return False
        LOG.info("deleted %s", what)
        return True


class Operation:
    """An operation of the core (protect, restore, delete, verify) sending through ``delivery``.

    :param delivery: the requests' rules and the client acting for the caller.
    :param timeout: the operation's deadline in seconds (every wait of one run shares it).
    """

    def __init__(self, delivery: Delivery, timeout: float) -> None:
        self._delivery = delivery
        self._manila = delivery.manila
        self._timeout = timeout
