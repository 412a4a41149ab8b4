"""Per-share exclusive locks for protection jobs, and the workers' membership, on tooz.

No Manila share may be touched by two jobs at once, whichever worker process
or host runs them.  :class:`ShareLocks` gives each share one exclusive lock on
a tooz backend (``file://`` for a single host, ``redis://`` and the other
distributed drivers for several hosts).  On the same coordinator each worker
is a member of its topic's group (kept alive by the coordinator's heartbeat),
so the fleet sees which workers are alive (:meth:`ShareLocks.join`,
:meth:`ShareLocks.members`).

This is the only module of the project that imports tooz, and
:meth:`ShareLocks._translate` the one place its errors are translated: every
tooz error (and every backend call that outlives its deadline) leaves as
:class:`~manila_protector.exception.LockUnavailable`; a lock held by someone
else leaves as :class:`~manila_protector.exception.ShareBusy`.

Two properties callers rely on:

* :meth:`ShareLocks.hold` never runs its body without holding the lock.
* Every backend call runs under a deadline (:mod:`bounded`): network backends'
  calls run in a thread of their own, abandoned at the deadline; the
  ``file://`` driver's run inline, as its acquire keeps its own deadline and a
  local file cannot hang.
"""

from __future__ import annotations

import collections.abc
import contextlib
import hashlib
import logging
import re
import threading
import time
import typing
import urllib.parse

import tooz
from tooz import coordination
from tooz import locking

from manila_protector import exception
from manila_protector.worker import backend_url as backend_url_mod
from manila_protector.worker import bounded

LOG = logging.getLogger(__name__)

#: Every lock name starts with this, so the locks are easy to find in a lock
#: directory or a Redis keyspace.
LOCK_NAME_PREFIX = b"manila_protector.share."

# Share ids that are used verbatim in lock names: Manila's lowercase UUIDs and
# other short, plain ids.  Anything else is hashed.
_PLAIN_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,79}")

#: Drivers whose calls run inline (see :func:`bounded.call_inline`); every other one is bounded.
_INLINE_DRIVERS = frozenset({"file"})


class HeldLock:
    """A share's lock while :meth:`ShareLocks.hold` holds it.

    A long job calls :meth:`ensure` before each mutating step: with TTL-based
    backends (redis, etcd, memcached) a lock whose heartbeats failed may have
    expired and been taken by another worker, and a lock found lost stops the job.
    """

    def __init__(self, locks: ShareLocks, share_id: str, name: bytes,
                 lock: locking.Lock) -> None:
        self._locks = locks
        self._share_id = share_id
        self._name = name
        self._lock = lock
        self._released = False

    @property
    def share_id(self) -> str:
        """The id of the locked share."""
        return self._share_id

    @property
    def name(self) -> bytes:
        """The lock's name on the backend (see :meth:`ShareLocks.lock_name`)."""
        return self._name

    def still_owned(self) -> bool:
        """Tell whether this worker still owns the lock.

        :returns: True while the backend confirms ownership, and for drivers
            that cannot tell (tooz raises ``NotImplemented``; their locks live
            as long as the holder's session).  False once released, when the
            lock expired or passed to another holder, and when the backend
            cannot be asked within the deadline: a caller must not mutate the
            share on an unproven lock.
        """
        if self._released:
            return False
        locks = self._locks
        try:
            with locks._translate("could not confirm the lock", self._share_id):
                try:
                    return bool(locks._call(self._lock.is_still_owner, locks.backend_timeout,
                                            what="is_still_owner"))
                except tooz.NotImplemented:
                    return True
        except exception.LockUnavailable as exc:
            LOG.warning("Treating the lock of share %s as lost: %s", self._share_id, exc)
        return False

    def ensure(self, what: str) -> None:
        """Prove that the lock is still ours before ``what`` (a mutating request).

        A lock found lost -- expired after failed heartbeats, or forgotten by a
        Redis that restarted without persistence -- is not taken back: another job
        may have held the share meanwhile, and mutual exclusion would be a claim
        nobody checked.  The job stops before the request instead (retryable; what
        it made is cleaned up and the job can be sent again).  The protection core
        calls this before every request that changes the share.

        :raises LockUnavailable: the lock is not provably ours (``details.lost``).
        """
        if self.still_owned():
            return
        locks = self._locks
        if self._released:
            raise exception.LockUnavailable(
                f"the lock of share {self._share_id} was released; refusing {what}",
                details={"share_id": self._share_id, "backend": locks.backend})
        LOG.warning("Lost the lock of share %s on %s before %s; stopping the job",
                    self._share_id, locks.backend, what)
        raise exception.LockUnavailable(
            f"lost the lock of share {self._share_id} on {locks.backend} (it expired, or the "
            f"backend forgot it); refusing {what}: another job may have held the share",
            details={"share_id": self._share_id, "backend": locks.backend, "lost": True})

    def _release(self) -> None:
        """Release the lock; never raises (it runs while a job's error may be propagating)."""
        self._released = True
        locks = self._locks
        try:
            with locks._translate("could not release the lock", self._share_id):
                released = locks._call(self._lock.release, locks.backend_timeout,
                                       what="release")
        except exception.LockUnavailable as exc:
            LOG.warning("%s; lock may have been lost or may stay held until it expires", exc)
            return
        except Exception as exc:  # noqa: BLE001 - must not mask the body's exception
            LOG.warning("Releasing the lock of share %s on %s failed (%s); lock may have been "
                        "lost", self._share_id, locks.backend, type(exc).__name__)
            return
        if not released:
            LOG.warning(
                "The lock of share %s on %s was no longer held at release; "
                "lock may have been lost", self._share_id, locks.backend,
            )
        else:
            LOG.debug("Released the lock of share %s", self._share_id)


class ShareLocks:
    """Per-share exclusive locks on a tooz coordinator.

    One instance serves a whole worker process: call :meth:`start` once, then
    any number of threads may call :meth:`hold` concurrently; jobs on different
    shares never wait for each other.  Call :meth:`stop` at shutdown.

    tooz locks are **not re-entrant**.  A second :meth:`hold` of a share that is
    already held -- by another process, another instance, another thread, or
    even the same thread -- waits ``lock_wait`` seconds and raises
    :class:`~manila_protector.exception.ShareBusy`, exactly as it would for a
    job in another worker.

    The backend URL may carry driver options, e.g.
    ``redis://:password@127.0.0.1:6379?lock_timeout=30&socket_timeout=5``
    (``lock_timeout`` is the TTL of a redis lock; the coordinator's heartbeat
    thread renews held locks every ``lock_timeout / 2`` seconds).  A redis URL
    without a socket timeout gets ``socket_timeout`` and
    ``socket_connect_timeout`` of ``min(5, backend_timeout)`` seconds.  The URL's
    userinfo and password options never appear in logs or exceptions.

    :param backend_url: tooz backend URL (``file:///var/lib/manila-protector/locks``...).
    :param member_id: this worker's id on the backend (unique per process).
    :param lock_wait: seconds :meth:`hold` waits for a busy share (0: no wait).
    :param backend_timeout: seconds any single backend call may take beyond
        ``lock_wait`` before the backend is declared unavailable.
    :raises ValueError: for a URL scheme tooz has no driver for, or bad numbers.
    """

    def __init__(
        self,
        backend_url: str,
        member_id: str,
        *,
        lock_wait: float,
        backend_timeout: float,
    ) -> None:
        if not member_id:
            raise ValueError("member_id must not be empty")
        if lock_wait < 0:
            raise ValueError(f"lock_wait must be >= 0, not {lock_wait}")
        if backend_timeout <= 0:
            raise ValueError(f"backend_timeout must be > 0, not {backend_timeout}")
        self._backend = backend_url_mod.mask_url(backend_url)
        self._secrets = backend_url_mod.secrets_of(backend_url)
        self._url = backend_url_mod.with_driver_defaults(backend_url, backend_timeout)
        self._member_id = member_id.encode("utf-8")
        scheme = backend_url_mod.scheme(backend_url)
        query = urllib.parse.urlsplit(backend_url).query
        # NOTE: tooz runs group calls on a futurist thread pool by default, whose
        # shutdown waits out an idle thread's one-second poll: every stop of an idle
        # worker paid that second. Our calls are already bounded in threads of their
        # own (bounded.py), so they run inline; a URL that names an executor wins.
        self._options: dict[str, str] = (
            {} if "executor" in dict(urllib.parse.parse_qsl(query)) else
            {"executor": "synchronous"})
        try:
            # tooz itself says whether it has the driver; building a coordinator connects nothing.
            coordination.get_coordinator(self._url, self._member_id, **self._options)
        except (RuntimeError, ImportError, tooz.ToozError) as exc:  # stevedore: NoMatches
            raise ValueError(
                f"lock backend {self._backend}: tooz has no driver {scheme!r} "
                f"({backend_url_mod.redact(str(exc), self._secrets)})") from None
        self._call: bounded.Call = (bounded.call_inline if scheme in _INLINE_DRIVERS
                                    else bounded.call_bounded)
        self.lock_wait = float(lock_wait)
        self.backend_timeout = float(backend_timeout)
        self._state = threading.Lock()
        self._coordinator: coordination.CoordinationDriver | None = None

    def __repr__(self) -> str:
        return f"<ShareLocks backend={self._backend} started={self._coordinator is not None}>"

    @property
    def backend(self) -> str:
        """The backend URL with its secrets masked (safe to log)."""
        return self._backend

    @contextlib.contextmanager
    def _translate(self, doing: str, share_id: str | None = None) -> typing.Iterator[None]:
        """Re-raise tooz's errors, and calls past their deadline, as ``LockUnavailable``.

        The one translation point of this module (tooz's own drivers do the same
        with theirs): messages name the masked backend, never its secrets.
        """
        where = f" for share {share_id}" if share_id is not None else ""
        details: dict[str, typing.Any] = {"backend": self._backend}
        if share_id is not None:
            details["share_id"] = share_id
        try:
            yield
        except bounded.BackendTimeout as exc:
            raise exception.LockUnavailable(
                f"lock backend {self._backend} did not answer{where}: {exc}",
                details=details) from exc
        except (tooz.ToozError, OSError, ImportError) as exc:
            reason = backend_url_mod.redact(str(exc), self._secrets) or type(exc).__name__
            raise exception.LockUnavailable(
                f"lock backend {self._backend} {doing}{where}: {reason}",
                details=details) from exc

    def start(self) -> None:
        """Connect to the backend and start the heartbeat thread.

        Does nothing when already started.

        :raises LockUnavailable: the backend cannot be reached or did not
            answer within ``backend_timeout``; :meth:`start` may be retried.
        """
        with self._state:
            if self._coordinator is not None:
                return
            with self._translate("cannot be set up"):
                coord = coordination.get_coordinator(self._url, self._member_id,
                                                     **self._options)

            def late_start(_result: None) -> None:
                LOG.warning("Lock backend %s started after its deadline; stopping it",
                            self._backend)
                coord.stop()

            with self._translate("cannot be reached"):
                self._call(lambda: coord.start(start_heart=True), self.backend_timeout,
                           what="start", on_late_result=late_start)
            self._coordinator = coord
        LOG.info("Share locks started on %s", self._backend)

    def _started(self) -> coordination.CoordinationDriver:
        coord = self._coordinator
        if coord is None:
            raise exception.LockUnavailable(f"share locks on {self._backend} are not started",
                                            details={"backend": self._backend})
        return coord

    def join(self, group: str, capabilities: dict[str, typing.Any]) -> None:
        """Be a member of ``group`` with ``capabilities`` while this coordinator beats.

        Joining again (a restart within the backend's membership timeout) is fine.

        :raises LockUnavailable: the backend failed or did not answer in time.
        """
        coord = self._started()

        def join() -> None:
            try:
                coord.join_group_create(group.encode("utf-8"), capabilities)
            except coordination.MemberAlreadyExist:
                try:
                    coord.update_capabilities(group.encode("utf-8"), capabilities).get()
                except tooz.NotImplemented:
                    # NOTE: the file driver cannot update a member: this host's own
                    # membership left by a process that did not stop (killed, or refused
                    # to start) is replaced, or the worker could never start again.
                    coord.leave_group(group.encode("utf-8")).get()
                    coord.join_group_create(group.encode("utf-8"), capabilities)

        with self._translate(f"could not join group {group}"):
            self._call(join, self.backend_timeout, what="join")

    def members(self, group: str) -> dict[str, dict[str, typing.Any]]:
        """The live members of ``group`` and their capabilities (empty: no group yet).

        :raises LockUnavailable: the backend failed or did not answer in time.
        """
        coord = self._started()

        def read() -> dict[bytes, typing.Any]:
            try:
                return coord.get_members_with_capabilities(group.encode("utf-8")).get()
            except coordination.GroupNotCreated:
                return {}

        with self._translate(f"could not read group {group}"):
            found = self._call(read, self.backend_timeout, what="members")
        return {member.decode("utf-8", "replace"): dict(capabilities or {})
                for member, capabilities in found.items()}

    def stop(self) -> None:
        """Disconnect from the backend; best effort, returns within ``backend_timeout``.

        Call it once no job holds a lock any more.  Locks still held are
        released by the driver where it can (redis); a backend that does not
        answer is abandoned and its locks expire by their TTL.  Never raises.
        """
        with self._state:
            coord, self._coordinator = self._coordinator, None
        if coord is None:
            return
        try:
            with self._translate("could not stop"):
                self._call(coord.stop, self.backend_timeout, what="stop")
        except exception.LockUnavailable as exc:
            LOG.warning("%s; abandoning it", exc)
        except Exception as exc:  # noqa: BLE001 - shutdown is best effort
            LOG.warning("Stopping lock backend %s failed: %s", self._backend,
                        backend_url_mod.redact(str(exc), self._secrets))
        else:
            LOG.info("Share locks stopped on %s", self._backend)

    @contextlib.contextmanager
    def hold(self, share_id: str) -> collections.abc.Iterator[HeldLock]:
        """Hold the share's exclusive lock for the duration of the ``with`` block.

        Waits at most ``lock_wait`` seconds for the lock (the redis driver
        polls every 0.1 s and gives up when its next poll would fall after the
        deadline, so it may stop up to 0.1 s early).  The body never runs
        without the lock.  On exit the lock is released; a failed release is
        logged ("lock may have been lost") and never replaces an exception
        raised by the body.

        :param share_id: the Manila share id.
        :returns: a context manager yielding the :class:`HeldLock`.
        :raises ShareBusy: another holder kept the lock for ``lock_wait`` seconds.
        :raises LockUnavailable: not started, or the backend failed or did not
            answer within ``lock_wait + backend_timeout`` seconds.
        """
        name = self.lock_name(share_id)
        coord = self._coordinator
        if coord is None:
            raise exception.LockUnavailable(
                f"share locks on {self._backend} are not started",
                details={"share_id": share_id, "backend": self._backend},
            )
        with self._translate("cannot create a lock", share_id):
            lock = coord.get_lock(name)

        def release_late(acquired: bool) -> None:
            # The acquire we gave up on succeeded after all: give the lock back
            # at once, otherwise the heartbeat would keep it alive for ever.
            if acquired:
                LOG.warning("Lock of share %s acquired after its deadline; releasing it",
                            share_id)
                lock.release()

        began = time.monotonic()
        # NOTE: a redis SET that reached the server before the connection broke
        # leaves a key no one heartbeats; it expires after lock_timeout.
        with self._translate("failed to acquire a lock", share_id):
            acquired = self._call(
                lambda: lock.acquire(blocking=self.lock_wait),
                self.lock_wait + self.backend_timeout,
                what="acquire",
                on_late_result=release_late,
            )
        waited = time.monotonic() - began
        if not acquired:
            raise exception.ShareBusy(
                f"share {share_id} is busy: another job holds its lock "
                f"(waited {waited:.1f} s)",
                details={"share_id": share_id, "waited": round(waited, 3)},
            )
        LOG.debug("Acquired the lock of share %s after %.3f s", share_id, waited)
        held = HeldLock(self, share_id, name, lock)
        try:
            yield held
        finally:
            held._release()

    @staticmethod
    def lock_name(share_id: str) -> bytes:
        """The backend lock name of a share: bytes, deterministic, safe for every driver.

        Plain ids (Manila's UUIDs) appear verbatim, lowercased -- Manila
        treats its UUIDs case-insensitively, so ``ABC`` and ``abc`` are one share
        and one lock.  Any other id (path separators, dots, spaces, non-ASCII,
        more than 80 characters) is replaced by its SHA-256, so the name never
        contains ``/`` or ``..`` and stays short enough for a file name.

        :param share_id: the Manila share id.
        :returns: e.g. ``b"manila_protector.share.3f1c...-..."`` or
            ``b"manila_protector.share.sha256.<64 hex digits>"``.
        :raises ValueError: for an empty or non-string id.
        """
        if not isinstance(share_id, str) or not share_id:
            raise ValueError(f"a share id must be a non-empty string, not {share_id!r}")
        key = share_id.lower()
        if _PLAIN_ID.fullmatch(key):
            return LOCK_NAME_PREFIX + key.encode("ascii")
        # The "." in "sha256." cannot occur in a plain id, so the two forms never collide.
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return LOCK_NAME_PREFIX + b"sha256." + digest.encode("ascii")
