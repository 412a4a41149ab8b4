"""Per-share exclusive locks for protection jobs, on a tooz coordinator.

No Manila share may be touched by two jobs at once, whichever worker process
or host runs them.  :class:`ShareLocks` gives each share one exclusive lock on
a tooz backend (``file://`` for a single host, ``redis://`` and the other
distributed drivers for several hosts).

This is the only module of the project that imports tooz.  Every tooz error
(and every backend call that outlives its deadline) leaves it as
:class:`~manila_protector.exception.LockUnavailable`; a lock held by someone
else leaves it as :class:`~manila_protector.exception.ShareBusy`.

Two properties callers rely on:

* :meth:`ShareLocks.hold` never runs its body without holding the lock.
* Every backend call runs under a deadline.  tooz's redis driver retries a
  dead server for about a minute per call, and ``coordinator.stop()`` can wait
  forever for a heartbeat thread stuck on a dead server; neither may freeze a
  worker.  (Network backends' calls run in a thread of their own, abandoned at
  the deadline; the ``file://`` driver's run inline, as its acquire keeps its
  own deadline and a local file cannot hang.)
"""

from __future__ import annotations

import collections.abc
import contextlib
import hashlib
import importlib.metadata
import logging
import os
import re
import threading
import time
import typing
import urllib.parse

import tooz
from tooz import coordination
from tooz import locking

from manila_protector import exception

LOG = logging.getLogger(__name__)

#: Every lock name starts with this, so the locks are easy to find in a lock
#: directory or a Redis keyspace.
LOCK_NAME_PREFIX = b"manila_protector.share."

#: Socket timeout (seconds) added to a ``redis://`` URL that sets none, so a
#: dead or hung Redis fails a call quickly instead of after tooz's 30 s default.
REDIS_SOCKET_TIMEOUT = 5.0

# Share ids that are used verbatim in lock names: Manila's lowercase UUIDs and
# other short, plain ids.  Anything else is hashed.
_PLAIN_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,79}")

# Query options whose values are secrets and must never be logged.
_SECRET_OPTION = re.compile(r"password|passwd|secret|token", re.IGNORECASE)

_T = typing.TypeVar("_T")


class _BackendTimeout(Exception):
    """A backend call did not return within its deadline (never leaves this module)."""


def _call_bounded(
    func: collections.abc.Callable[[], _T],
    timeout: float,
    *,
    what: str,
    on_late_result: collections.abc.Callable[[_T], None] | None = None,
) -> _T:
    """Run ``func`` in a daemon thread and wait at most ``timeout`` seconds.

    Returns what ``func`` returns or raises what it raises; raises
    :class:`_BackendTimeout` when the deadline passes first.  The call is then
    abandoned (Python threads cannot be cancelled); if it returns later,
    ``on_late_result`` receives its result so that nothing it obtained (a lock,
    a started coordinator) leaks.
    """
    state = threading.Lock()
    finished = threading.Event()
    outcome: list[tuple[bool, typing.Any]] = []
    abandoned = False

    def run() -> None:
        try:
            result: tuple[bool, typing.Any] = (True, func())
        except Exception as exc:  # noqa: BLE001 - handed to the waiting caller below
            result = (False, exc)
        with state:
            outcome.append(result)
            late = abandoned
        finished.set()
        if late and result[0] and on_late_result is not None:
            try:
                on_late_result(result[1])
            except Exception:  # noqa: BLE001 - nobody is left to raise to
                LOG.warning("Cleaning up after the late %s failed", what, exc_info=True)

    thread = threading.Thread(target=run, name=f"share-lock-{what}", daemon=True)
    thread.start()
    interrupted = True
    try:
        finished.wait(timeout)
        interrupted = False
    finally:
        with state:
            abandoned = not outcome
            done = outcome[0] if outcome else None
        if interrupted and done is not None and done[0] and on_late_result is not None:
            # The caller is leaving with an exception of its own (KeyboardInterrupt...):
            # what the call obtained has no taker either.
            try:
                on_late_result(done[1])
            except Exception:  # noqa: BLE001 - must not replace the caller's exception
                LOG.warning("Cleaning up after the interrupted %s failed", what, exc_info=True)
    if done is None:
        raise _BackendTimeout(f"{what} did not return within {timeout:g} s")
    ok, value = done
    if ok:
        return typing.cast(_T, value)
    raise value


def _call_inline(
    func: collections.abc.Callable[[], _T],
    timeout: float,
    *,
    what: str,
    on_late_result: collections.abc.Callable[[_T], None] | None = None,
) -> _T:
    """:func:`_call_bounded` for a backend that cannot hang: the call, in this thread.

    The ``file://`` driver works on a local file; its acquire honours its own
    deadline, and a thread per call would only add a thread start to every job.
    """
    return func()


#: Drivers whose calls run inline (see :func:`_call_inline`); every other one is bounded.
_INLINE_DRIVERS = frozenset({"file"})


def mask_url(url: str) -> str:
    """Return ``url`` with its userinfo and secret query options replaced by ``***``.

    ``redis://:secret@host:6379?sentinel_password=x`` becomes
    ``redis://***@host:6379?sentinel_password=***``.  Use it for anything that
    is logged or put in an exception.
    """
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = parts.query
    if query:
        masked = []
        for item in query.split("&"):
            key, sep, _value = item.partition("=")
            masked.append(f"{key}{sep}***" if sep and _SECRET_OPTION.search(key) else item)
        query = "&".join(masked)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query))


def _url_secrets(url: str) -> tuple[str, ...]:
    """The secret strings a URL carries, raw and percent-decoded, longest first."""
    parts = urllib.parse.urlsplit(url)
    found: set[str] = set()
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        found.add(userinfo)
        found.update(userinfo.split(":"))
    for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if _SECRET_OPTION.search(key):
            found.add(value)
    decoded = {urllib.parse.unquote(item) for item in found}
    return tuple(sorted((s for s in found | decoded if s), key=len, reverse=True))


def _with_driver_defaults(url: str, backend_timeout: float) -> str:
    """Add the driver options we rely on to ``url`` when it does not set them.

    For ``redis://`` the driver honours ``socket_timeout`` and
    ``socket_connect_timeout`` (``CLIENT_FLOAT_ARGS`` in
    ``tooz/drivers/redis.py``); without them the socket timeout falls back to
    the driver's ``timeout`` option, 30 s by default.  ``timeout`` is left alone
    because it is also the default lock TTL (``lock_timeout``).
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "redis":
        return url
    present = {key for key, _ in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)}
    default = min(REDIS_SOCKET_TIMEOUT, backend_timeout)
    extra = []
    if not present & {"socket_timeout", "timeout"}:
        extra.append(f"socket_timeout={default:g}")
    if "socket_connect_timeout" not in present:
        extra.append(f"socket_connect_timeout={default:g}")
    query = "&".join(item for item in (parts.query, *extra) if item)
    return urllib.parse.urlunsplit(parts._replace(query=query))


class HeldLock:
    """A share's lock while :meth:`ShareLocks.hold` holds it.

    A long job calls :meth:`still_owned` before each mutating step: with
    TTL-based backends (redis, etcd, memcached) a lock whose heartbeats failed
    may have expired and been taken by another worker.
    """

    def __init__(
        self,
        share_id: str,
        name: bytes,
        lock: locking.Lock,
        backend: str,
        backend_timeout: float,
        lock_wait: float = 0.0,
        call: typing.Callable[..., typing.Any] = _call_bounded,
    ) -> None:
        self._call = call
        self._share_id = share_id
        self._name = name
        self._lock = lock
        self._backend = backend
        self._backend_timeout = backend_timeout
        self._lock_wait = lock_wait
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
        try:
            return bool(
                self._call(
                    self._lock.is_still_owner, self._backend_timeout, what="is_still_owner"
                )
            )
        except tooz.NotImplemented:
            return True
        except _BackendTimeout:
            LOG.warning(
                "Lock backend %s did not confirm the lock of share %s within %g s; "
                "treating the lock as lost", self._backend, self._share_id,
                self._backend_timeout,
            )
        except (tooz.ToozError, OSError) as exc:
            LOG.warning(
                "Lock backend %s could not confirm the lock of share %s (%s); "
                "treating the lock as lost", self._backend, self._share_id,
                type(exc).__name__,
            )
        return False

    def ensure(self, what: str) -> None:
        """Prove that the lock is still ours before ``what`` (a mutating request).

        A lock found lost -- expired after failed heartbeats, or forgotten by a
        Redis that restarted without persistence -- is taken back when it is
        free (waiting up to ``lock_wait`` for another holder to finish), so the
        job goes on only while it holds the lock again.  The protection core
        calls this before every request that changes the share.

        :raises LockUnavailable: the lock is lost and could not be taken back.
        """
        if self.still_owned():
            return
        if self._released:
            raise exception.LockUnavailable(
                f"the lock of share {self._share_id} was released; refusing {what}",
                details={"share_id": self._share_id, "backend": self._backend})
        LOG.warning("Lost the lock of share %s on %s; taking it back before %s",
                    self._share_id, self._backend, what)

        def release_late(acquired: bool) -> None:
            if acquired:
                self._lock.release()

        try:
            acquired = self._call(
                lambda: self._lock.acquire(blocking=self._lock_wait),
                self._lock_wait + self._backend_timeout, what="reacquire",
                on_late_result=release_late)
        except (_BackendTimeout, tooz.ToozError, OSError) as exc:
            raise exception.LockUnavailable(
                f"lost the lock of share {self._share_id} and {self._backend} could not give "
                f"it back ({type(exc).__name__}); refusing {what}",
                details={"share_id": self._share_id, "backend": self._backend}) from exc
        if not acquired:
            raise exception.LockUnavailable(
                f"lost the lock of share {self._share_id} and another job holds it now; "
                f"refusing {what}",
                details={"share_id": self._share_id, "backend": self._backend})
        LOG.warning("Took the lock of share %s back on %s", self._share_id, self._backend)

    def _release(self) -> None:
        """Release the lock; never raises (it runs while a job's error may be propagating)."""
        self._released = True
        try:
            released = self._call(self._lock.release, self._backend_timeout, what="release")
        except _BackendTimeout:
            LOG.warning(
                "Releasing the lock of share %s on %s did not return within %g s; "
                "lock may have been lost or may stay held until it expires",
                self._share_id, self._backend, self._backend_timeout,
            )
            return
        except Exception as exc:  # noqa: BLE001 - must not mask the body's exception
            LOG.warning(
                "Releasing the lock of share %s on %s failed (%s); lock may have been lost",
                self._share_id, self._backend, type(exc).__name__,
            )
            return
        if not released:
            LOG.warning(
                "The lock of share %s on %s was no longer held at release; "
                "lock may have been lost", self._share_id, self._backend,
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

    :param backend_url: tooz backend URL, e.g. :meth:`default_backend_url`.
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
        backend_timeout: float = 20.0,
    ) -> None:
        self._backend = mask_url(backend_url)
        scheme = urllib.parse.urlsplit(backend_url).scheme
        drivers = {ep.name for ep in importlib.metadata.entry_points(group="tooz.backends")}
        if scheme not in drivers:
            raise ValueError(
                f"lock backend {self._backend}: tooz has no driver {scheme!r} "
                f"(known: {', '.join(sorted(drivers))})"
            )
        if not member_id:
            raise ValueError("member_id must not be empty")
        if lock_wait < 0:
            raise ValueError(f"lock_wait must be >= 0, not {lock_wait}")
        if backend_timeout <= 0:
            raise ValueError(f"backend_timeout must be > 0, not {backend_timeout}")
        self._url = _with_driver_defaults(backend_url, backend_timeout)
        self._call = _call_inline if scheme in _INLINE_DRIVERS else _call_bounded
        self._secrets = _url_secrets(backend_url)
        self._member_id = member_id.encode("utf-8")
        self._lock_wait = float(lock_wait)
        self._backend_timeout = float(backend_timeout)
        self._state = threading.Lock()
        self._coordinator: coordination.CoordinationDriver | None = None

    def __repr__(self) -> str:
        return f"<ShareLocks backend={self._backend} started={self._coordinator is not None}>"

    @property
    def backend(self) -> str:
        """The backend URL with its secrets masked (safe to log)."""
        return self._backend

    def start(self) -> None:
        """Connect to the backend and start the heartbeat thread.

        Does nothing when already started.

        :raises LockUnavailable: the backend cannot be reached or did not
            answer within ``backend_timeout``; :meth:`start` may be retried.
        """
        with self._state:
            if self._coordinator is not None:
                return
            try:
                coord = coordination.get_coordinator(self._url, self._member_id)
            except (tooz.ToozError, OSError, ImportError) as exc:
                raise self._unavailable("cannot be set up", exc) from exc

            def late_start(_result: None) -> None:
                LOG.warning("Lock backend %s started after its deadline; stopping it",
                            self._backend)
                coord.stop()

            try:
                self._call(
                    lambda: coord.start(start_heart=True),
                    self._backend_timeout,
                    what="start",
                    on_late_result=late_start,
                )
            except _BackendTimeout as exc:
                raise self._timed_out(exc) from exc
            except (tooz.ToozError, OSError) as exc:
                raise self._unavailable("cannot be reached", exc) from exc
            self._coordinator = coord
        LOG.info("Share locks started on %s", self._backend)

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
            self._call(coord.stop, self._backend_timeout, what="stop")
        except _BackendTimeout:
            LOG.warning("Lock backend %s did not stop within %g s; abandoning it",
                        self._backend, self._backend_timeout)
        except Exception as exc:  # noqa: BLE001 - shutdown is best effort
            LOG.warning("Stopping lock backend %s failed: %s", self._backend,
                        self._redact(str(exc)))
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
        try:
            lock = coord.get_lock(name)
        except (tooz.ToozError, OSError) as exc:
            raise self._unavailable("cannot create a lock", exc, share_id) from exc

        def release_late(acquired: bool) -> None:
            # The acquire we gave up on succeeded after all: give the lock back
            # at once, otherwise the heartbeat would keep it alive for ever.
            if acquired:
                LOG.warning("Lock of share %s acquired after its deadline; releasing it",
                            share_id)
                lock.release()

        began = time.monotonic()
        try:
            acquired = self._call(
                lambda: lock.acquire(blocking=self._lock_wait),
                self._lock_wait + self._backend_timeout,
                what="acquire",
                on_late_result=release_late,
            )
        except _BackendTimeout as exc:
            raise self._timed_out(exc, share_id) from exc
        except (tooz.ToozError, OSError) as exc:
            # NOTE: a redis SET that reached the server before the connection
            # broke leaves a key no one heartbeats; it expires after lock_timeout.
            raise self._unavailable("failed to acquire a lock", exc, share_id) from exc
        waited = time.monotonic() - began
        if not acquired:
            raise exception.ShareBusy(
                f"share {share_id} is busy: another job holds its lock "
                f"(waited {waited:.1f} s)",
                details={"share_id": share_id, "waited": round(waited, 3)},
            )
        LOG.debug("Acquired the lock of share %s after %.3f s", share_id, waited)
        held = HeldLock(share_id, name, lock, self._backend, self._backend_timeout,
                        self._lock_wait, self._call)
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

    @staticmethod
    def default_backend_url(state_path: str) -> str:
        """The single-host backend: ``file://<state_path>/locks``, directory created.

        :param state_path: the worker's state directory (made absolute).
        :returns: the ``file://`` URL.
        :raises ValueError: if the path contains ``?`` or ``#`` (a URL cannot
            carry them, tooz does not unquote the path).
        :raises OSError: if the directory cannot be created.
        """
        path = os.path.join(os.path.abspath(state_path), "locks")
        if "?" in path or "#" in path:
            raise ValueError(f"lock directory {path!r} cannot be written as a file:// URL")
        os.makedirs(path, exist_ok=True)
        return "file://" + path

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _unavailable(
        self, doing: str, exc: BaseException, share_id: str | None = None
    ) -> exception.LockUnavailable:
        reason = self._redact(str(exc)) or type(exc).__name__
        where = f" for share {share_id}" if share_id is not None else ""
        return exception.LockUnavailable(
            f"lock backend {self._backend} {doing}{where}: {reason}",
            details=self._details(share_id),
        )

    def _timed_out(
        self, exc: _BackendTimeout, share_id: str | None = None
    ) -> exception.LockUnavailable:
        where = f" for share {share_id}" if share_id is not None else ""
        return exception.LockUnavailable(
            f"lock backend {self._backend} did not answer{where}: {exc}",
            details=self._details(share_id),
        )

    def _details(self, share_id: str | None) -> dict[str, typing.Any]:
        details: dict[str, typing.Any] = {"backend": self._backend}
        if share_id is not None:
            details["share_id"] = share_id
        return details
