"""Waiting for a Manila resource to reach a status: geometric backoff under a deadline.

Why geometric: a job should finish about as soon as Manila does without
hammering the API. Polling ``(g - 1)`` times the time already waited (at least
``t0``) after the previous poll began keeps the lateness -- the time between
Manila finishing and us noticing -- within ``max(t0, (g - 1) * T)`` for an
operation that takes ``T``, at the cost of about ``ln(T / t0) / ln(g)`` polls.
The default ``g = 1.25`` keeps the lateness within a quarter of the time
waited: a job ends by ``1.25 * T + t0``. Jitter only ever *shortens* an
interval, so it never breaks that bound.

A wait that follows a change (a snapshot requested, a share being made) also
learns: :class:`Expected` keeps, per kind of change, a time by which that
kind is done nine times in ten, and the wait adds one poll at that time (the
one that usually ends it) -- it only ever shortens an interval.  Its first poll
is then at half that time (at most ``max_interval``), not at once: a change is
never done at once, and the polls before are spared.

A long wait says so: an INFO line every :data:`LOG_EVERY` seconds of it (what
is waited for, the status Manila last showed, the time waited, the time left
to the deadline).  The sleeps between polls are cut at those moments, which
adds no poll: the line shows the last poll's status (at most ``max_interval``
old).  Each poll is also reported to an optional ``tick`` callback (the job's
progress observer).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
import typing

from manila_protector import exception
from manila_protector.plugins import observe
from manila_protector.plugins import statuses as statuses_mod

LOG = logging.getLogger(__name__)

_T = typing.TypeVar("_T")

#: Seconds between two INFO lines of one long wait (and before the first).
LOG_EVERY = 60.0

#: Seconds a wake-up may come early by (a clock's rounding).
_EPSILON = 1e-9

#: Hears each poll of a wait: (the status last seen, seconds waited, seconds left).
Tick = typing.Callable[[str | None, float, float], None]


class Clock(typing.Protocol):
    """A source of monotonic time that can also sleep (tests drive a virtual one)."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real monotonic clock; ``sleep`` returns early when ``interrupt`` is set."""

    def __init__(self, interrupt: threading.Event | None = None) -> None:
        self._interrupt = interrupt or threading.Event()

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._interrupt.wait(seconds)


@dataclasses.dataclass(frozen=True)
class WaitPolicy:
    """How often to poll.

    :param initial_interval: seconds before the second poll.
    :param backoff_factor: each interval is this many times the previous one.
    :param max_interval: intervals never grow past this.
    :param jitter: each interval is shortened by a random fraction up to this.
    :param first_delay: seconds before the first poll of a wait that follows a
        request changing the resource (0: at once).  Manila answers such a request
        with the resource in transition and never finishes at once, so a delay
        spares one GET per wait; an operation that is done at once then ends this
        much later.
    """

    initial_interval: float = 0.25
    backoff_factor: float = 1.25
    max_interval: float = 15.0
    jitter: float = 0.1
    first_delay: float = 0.0

    def __post_init__(self) -> None:
        if self.initial_interval <= 0:
            raise ValueError("initial_interval must be > 0")
        if self.backoff_factor < 1:
            raise ValueError("backoff_factor must be >= 1")
        if self.max_interval < self.initial_interval:
            raise ValueError("max_interval must be >= initial_interval")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if self.first_delay < 0:
            raise ValueError("first_delay must be >= 0")

    def next_interval(self, elapsed: float, rng: random.Random) -> float:
        """The sleep before the next poll, ``elapsed`` seconds into a wait.

        ``(backoff_factor - 1) * elapsed`` (at least ``initial_interval``, at most
        ``max_interval``), shortened by jitter.  Basing it on the time actually
        waited, not on a running product, keeps the lateness bound exact whatever
        the jitter and the requests themselves took.
        """
        base = max(self.initial_interval, (self.backoff_factor - 1.0) * elapsed)
        return min(base, self.max_interval) * (1.0 - self.jitter * rng.random())


class Deadline:
    """A point in time an operation must finish by.

    :param clock: the clock it is measured on.
    :param seconds: the operation's own time.
    :param cutoff: an earlier limit from outside the operation (a clock time:
        e.g. the caller's token expiring), or None.
    :param cutoff_error: builds the error a wait ends with when the cutoff, not
        the operation's own time, ran out.
    """

    def __init__(self, clock: Clock, seconds: float, *, cutoff: float | None = None,
                 cutoff_error: typing.Callable[[str], exception.ProtectorError] | None = None
                 ) -> None:
        self.clock = clock
        self.seconds = seconds
        self.started_at = clock.now()
        self.expires_at = self.started_at + seconds
        self._cutoff = cutoff if cutoff is not None and cutoff < self.expires_at else None
        self._cutoff_error = cutoff_error

    def remaining(self) -> float:
        end = self.expires_at if self._cutoff is None else self._cutoff
        return end - self.clock.now()

    def elapsed(self) -> float:
        return self.clock.now() - self.started_at

    def cut_off(self) -> bool:
        """Whether the cutoff (not the operation's own time) is what ran out."""
        return self._cutoff is not None and self.clock.now() >= self._cutoff

    def expired(self, message: str, details: dict[str, typing.Any]) -> exception.ProtectorError:
        """The error of a wait that ran out of time: the cutoff's, or ``DeadlineExceeded``."""
        if self.cut_off() and self._cutoff_error is not None:
            error = self._cutoff_error(message)
            error.details.update(details)
            return error
        return exception.DeadlineExceeded(
            f"{message} after {self.elapsed():.1f}s (deadline {self.seconds:g}s)",
            details=details)


class Expected:
    """What each kind of change usually takes, learnt from the waits that followed one.

    Per kind (a wait's :class:`statuses.StatusSets`), the time from the request to
    the point by which the change is done in :data:`QUANTILE` of the waits: each wait
    moves it down a little when the change was done by then and up more when it was
    not (stochastic quantile tracking, a step of :data:`STEP` of the value), and
    halves it when a change was done by half of it.  The first wait of a kind sets it
    to the middle of its last two polls.  Thread-safe: a worker's jobs share one.
    """

    #: The share of waits whose change is done by the expected time.
    QUANTILE = 0.9
    #: How far one wait moves the expected time (a fraction of it).
    STEP = 0.1

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._at: dict[typing.Hashable, float] = {}

    def at(self, kind: typing.Hashable) -> float | None:
        """Seconds after the request by which ``kind`` is usually done (None: not known yet)."""
        with self._lock:
            return self._at.get(kind)

    def first(self, kind: typing.Hashable, pending_at: float, done_at: float) -> None:
        """A wait with nothing learnt yet ended: last seen pending, then done, at these times."""
        with self._lock:
            self._at.setdefault(kind, max((pending_at + done_at) / 2, 1e-3))

    def learn(self, kind: typing.Hashable, done_by_then: bool,
              done_at: float | None = None) -> None:
        """Whether the change was done at the expected time (the first poll from then on);
        ``done_at``: it was seen done that early.  One done by half the expected time
        halves it: changes that got much faster are followed at once."""
        with self._lock:
            at = self._at.get(kind)
            if at is None:
                return
            if done_at is not None and done_at <= at / 2:
                self._at[kind] = max(at / 2, 1e-3)
                return
            step = -(1 - self.QUANTILE) if done_by_then else self.QUANTILE
            self._at[kind] = max(at * (1 + self.STEP * step), 1e-3)


class Waiter:
    """Polls a status function until it reaches a terminal status or a deadline passes."""

    def __init__(
        self,
        policy: WaitPolicy,
        clock: Clock,
        rng: random.Random | None = None,
        observer: observe.Observer = observe.NOTHING,
        expected: Expected | None = None,
    ) -> None:
        self.policy = policy
        self.clock = clock
        self._rng = rng or random.Random()
        self._observer = observer
        self._expected = expected

    def until(
        self,
        probe: typing.Callable[[], _T | None],
        deadline: Deadline,
        what: str,
        *,
        changed: bool = False,
        pending: typing.Callable[[], str | None] = lambda: None,
        tick: Tick | None = None,
        kind: typing.Hashable | None = None,
        since: float | None = None,
    ) -> _T:
        """Poll ``probe`` until it returns something other than None.

        :param probe: returns the outcome, or None while the wait goes on.  It may
            raise a retryable :class:`exception.ProtectorError` (a 5xx, a
            connection error): the wait retries it until the deadline.
        :param deadline: when to give up.
        :param what: how messages name what is waited for ("snapshot 123").
        :param changed: the caller has just asked Manila to change the resource: the
            first poll waits the policy's ``first_delay``.
        :param pending: what was last seen while waiting (for the deadline's message
            and the wait's INFO lines).
        :param tick: called after each poll that did not end the wait.
        :param kind: with ``changed``, what kind of change is waited for: the wait
            polls when such a change is usually done (see :class:`Expected`) and
            teaches the waiter's :class:`Expected` how long this one took.
        :param since: the clock time the change was requested (default: now); work
            done in between (another read) counts as waiting.
        :returns: the probe's first outcome that is not None.
        :raises exception.DeadlineExceeded: the deadline passed first.
        """
        polls = [0]
        outcome = "error"
        learning = None
        if changed and kind is not None and self._expected is not None:
            learning = _Learning(self._expected, kind)
        try:
            found = self._until(probe, deadline, what, changed, pending, polls, tick,
                                learning, self.clock.now() if since is None else since)
            outcome = "done"
            return found
        except exception.DeadlineExceeded:
            outcome = "deadline"
            raise
        finally:
            self._observer.wait_finished(polls[0], outcome)

    def _until(self, probe: typing.Callable[[], _T | None], deadline: Deadline, what: str,
               changed: bool, pending: typing.Callable[[], str | None],
               counted: list[int], tick: Tick | None, learning: _Learning | None,
               started: float) -> _T:
        next_line = started + LOG_EVERY
        last_error: exception.ProtectorError | None = None
        polls = 0

        def last_seen() -> str:
            if last_error is not None:
                return f"Manila unreachable ({last_error.code})"
            return f"last seen {pending()!r}"

        first = self.policy.first_delay if changed else 0.0
        if learning is not None and learning.at is not None:
            first = max(first, min(learning.at / 2, self.policy.max_interval))
        pause = min(started + first - self.clock.now(), deadline.remaining())
        if pause > 0:
            # (At most max_interval: a wait's first INFO line may come that much late.)
            self.clock.sleep(pause)
        while True:
            polls += 1
            counted[0] = polls
            polled_at = self.clock.now()
            try:
                outcome = probe()
                last_error = None
            except exception.ProtectorError as exc:
                if not exc.retryable:
                    raise
                last_error = exc
                LOG.debug("%s: transient error while polling: %s", what, exc)
            else:
                if learning is not None:
                    learning.polled(polled_at - started, done=outcome is not None)
                if outcome is not None:
                    LOG.debug("%s: done after %d poll(s), %.2fs", what, polls,
                              deadline.elapsed())
                    return outcome
            remaining = deadline.remaining()
            if remaining <= 0:
                seen = pending()
                state = (f"still {seen!r}" if last_error is None
                         else f"unreachable ({last_error})")
                raise deadline.expired(f"{what} {state}", {"status": seen, "polls": polls})
            if tick is not None:
                tick(pending(), self.clock.now() - started, remaining)
            now = self.clock.now()
            interval = self.policy.next_interval(now - started, self._rng)
            # Counted from the poll's start (Manila's answer took part of it), but at
            # least half of it a pause: a slow answer is not followed at once by another.
            wake = max(polled_at + interval, now + interval / 2)
            if learning is not None and learning.aim(now - started, wake - started):
                # The time such a change is usually done comes first: poll then.
                wake = started + typing.cast(float, learning.at)
            wake = min(wake, now + remaining)
            while True:
                now = self.clock.now()
                if now >= next_line:
                    LOG.info("%s: still waiting after %.0fs, %s; deadline in %.0fs",
                             what, now - started, last_seen(), deadline.remaining())
                    next_line += LOG_EVERY * max(1, (now - next_line) // LOG_EVERY + 1)
                if now >= wake - _EPSILON:
                    break
                self.clock.sleep(min(wake, next_line) - now)

    def wait(
        self,
        fetch: typing.Callable[[], str],
        statuses: statuses_mod.StatusSets,
        deadline: Deadline,
        what: str,
        *,
        changed: bool = False,
        tick: Tick | None = None,
        since: float | None = None,
    ) -> str:
        """Poll ``fetch`` until its status is in ``statuses.ready`` or ``statuses.failed``.

        :param fetch: returns the current status, or ``statuses.GONE`` when the
            resource is gone; it may raise a retryable error (see :meth:`until`).
        :param statuses: how to read each status.
        :param deadline: when to give up.
        :param what: how messages name the resource ("snapshot 123").
        :param changed: see :meth:`until`; a wait after a change learns how long
            changes to ``statuses`` take (the sets are the kind of change).
        :param tick: see :meth:`until`.
        :param since: see :meth:`until`.
        :returns: the terminal status (from ``ready`` or ``failed``).
        :raises exception.DeadlineExceeded: the deadline passed first.
        :raises exception.OperationFailed: an unknown status was seen.
        """
        seen: list[str | None] = [None]

        def terminal() -> str | None:
            status = seen[0] = fetch()
            if status in statuses.ready or status in statuses.failed:
                return status
            if status not in statuses.pending:
                raise exception.OperationFailed(
                    f"{what} has unexpected status {status!r}",
                    details={"status": status, "unknown_status": True},
                )
            return None

        return self.until(terminal, deadline, what, changed=changed, pending=lambda: seen[0],
                          tick=tick, kind=statuses, since=since)

    def retry(
        self,
        call: typing.Callable[[], _T],
        deadline: Deadline,
        what: str,
        *,
        attempts: int | None = None,
        retry_if: typing.Callable[[exception.ProtectorError], bool] | None = None,
    ) -> _T:
        """Run ``call``, again after each retryable error, with this waiter's backoff.

        For idempotent requests (reads, and lookups after a failed create): a 5xx,
        a timeout or a broken connection is retried until the deadline passes or
        ``attempts`` calls were made; the last error is raised then.  ``retry_if``
        narrows which retryable errors are retried.

        :raises exception.ProtectorError: a non-retryable error at once, a retryable
            one when the deadline or the attempts ran out.
        """
        started = self.clock.now()
        tries = 0
        while True:
            tries += 1
            try:
                return call()
            except exception.ProtectorError as exc:
                remaining = deadline.remaining()
                if exc.retryable and remaining <= 0 and deadline.cut_off():
                    raise deadline.expired(f"{what} failed ({exc.code})", {}) from exc
                if (not exc.retryable or remaining <= 0
                        or (attempts is not None and tries >= attempts)
                        or (retry_if is not None and not retry_if(exc))):
                    raise
                LOG.info("%s failed (%s, attempt %d); retrying", what, exc.code, tries)
            interval = self.policy.next_interval(self.clock.now() - started, self._rng)
            self.clock.sleep(min(interval, remaining))


class _Learning:
    """One wait's part in :class:`Expected`: where it aims its extra poll, what it saw."""

    def __init__(self, expected: Expected, kind: typing.Hashable) -> None:
        self._expected = expected
        self._kind = kind
        #: Seconds after the request the change is usually done by (None: not known).
        self.at = expected.at(kind)
        self._pending_at = 0.0
        self._aimed = False
        self._told = False

    def aim(self, now: float, wake: float) -> bool:
        """Whether the next poll, due at ``wake``, should come earlier: at :attr:`at`."""
        if self.at is None or self._told or self._aimed or not now < self.at < wake:
            return False
        self._aimed = True
        return True

    def polled(self, elapsed: float, *, done: bool) -> None:
        """A poll ``elapsed`` seconds after the request found the change ``done`` or not."""
        if self.at is None:
            if done:
                self._expected.first(self._kind, self._pending_at, elapsed)
            else:
                self._pending_at = elapsed
            return
        # The first poll at or after the expected time says whether the change was
        # done by then; one done earlier says it too.
        if not self._told and (done or self._aimed or elapsed >= self.at):
            self._told = True
            self._expected.learn(self._kind, done_by_then=done,
                                 done_at=elapsed if done else None)
