"""Clocks that drive the stand-in's status transitions.

Every transition (``creating`` -> ``available`` and so on) is due at a point in
*stand-in time*. The stand-in asks its clock for the current stand-in time on
every request and completes what is due, so no background thread is needed.

``RealClock`` follows the wall clock, optionally faster (``time_scale``);
``ManualClock`` only moves when a test calls :meth:`ManualClock.advance`.
"""

from __future__ import annotations

import threading
import time
import typing


@typing.runtime_checkable
class Clock(typing.Protocol):
    """What the stand-in needs from a clock: stand-in seconds since the epoch."""

    def now(self) -> float:
        """Return the current stand-in time (seconds since the epoch)."""
        ...

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` stand-in seconds."""
        ...


class RealClock:
    """Wall-clock time, running ``time_scale`` stand-in seconds per real second.

    :param time_scale: stand-in seconds per real second (``60`` makes a 60 s
        delay pass in one real second). Must be positive.
    :param start: stand-in time at construction; the wall clock when omitted.
    """

    def __init__(self, time_scale: float = 1.0, start: float | None = None) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self._lock = threading.Lock()
        self._time_scale = float(time_scale)
        self._origin_real = time.monotonic()
        self._origin = time.time() if start is None else float(start)
        self._offset = 0.0

    @property
    def time_scale(self) -> float:
        """Stand-in seconds per real second."""
        return self._time_scale

    def now(self) -> float:
        """Return the current stand-in time."""
        with self._lock:
            elapsed = time.monotonic() - self._origin_real
            return self._origin + elapsed * self._time_scale + self._offset

    def advance(self, seconds: float) -> None:
        """Jump ``seconds`` stand-in seconds ahead (on top of the running clock).

        :raises ValueError: if ``seconds`` is negative.
        """
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._offset += float(seconds)


class ManualClock:
    """A clock that stands still until :meth:`advance` is called.

    :param start: the initial stand-in time; the wall clock when omitted.
    """

    def __init__(self, start: float | None = None) -> None:
        self._lock = threading.Lock()
        self._now = time.time() if start is None else float(start)

    def now(self) -> float:
        """Return the current stand-in time."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``.

        :raises ValueError: if ``seconds`` is negative.
        """
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._now += float(seconds)
