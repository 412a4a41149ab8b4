"""Calls that must return by a deadline, even when what they call does not.

tooz's redis driver retries a dead server for about a minute per call, and a
coordinator's ``stop()`` can wait forever for a heartbeat thread stuck on a
dead server; neither may freeze a worker.  :func:`call_bounded` runs such a
call in a thread of its own and abandons it at the deadline (Python threads
cannot be cancelled); whatever the call obtains after that (a lock, a started
coordinator) is handed to ``on_late_result`` so that it does not leak.
"""

from __future__ import annotations

import collections.abc
import logging
import threading
import typing

LOG = logging.getLogger(__name__)

_T = typing.TypeVar("_T")


class BackendTimeout(Exception):
    """A bounded call did not return within its deadline."""


class Call(typing.Protocol):
    """:func:`call_bounded`'s signature (:func:`call_inline` has the same)."""

    def __call__(self, func: collections.abc.Callable[[], _T], timeout: float, *, what: str,
                 on_late_result: collections.abc.Callable[[_T], None] | None = None) -> _T: ...


def call_bounded(
    func: collections.abc.Callable[[], _T],
    timeout: float,
    *,
    what: str,
    on_late_result: collections.abc.Callable[[_T], None] | None = None,
) -> _T:
    """Run ``func`` in a daemon thread and wait at most ``timeout`` seconds.

    :returns: what ``func`` returns (or raises what it raises).
    :raises BackendTimeout: the deadline passed first; if ``func`` returns
        later, ``on_late_result`` receives its result.
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

    thread = threading.Thread(target=run, name=f"bounded-{what}", daemon=True)
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
        raise BackendTimeout(f"{what} did not return within {timeout:g} s")
    ok, value = done
    if ok:
        return typing.cast(_T, value)
    raise value


def call_inline(
    func: collections.abc.Callable[[], _T],
    timeout: float,
    *,
    what: str,
    on_late_result: collections.abc.Callable[[_T], None] | None = None,
) -> _T:
    """:func:`call_bounded` for a call that keeps its own deadline: in this thread.

    For the ``file://`` lock driver: it works on a local file and its acquire
    honours its own deadline, so a thread per call would only add a thread
    start to every job.
    """
    return func()
