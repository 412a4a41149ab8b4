"""Fault injection for the Manila stand-in.

Two families of faults:

* transport faults decided per HTTP request before anything is looked at
  (latency, random or scripted 500/503 answers, slow answers). A 5xx injected
  here is answered before the request reaches the model: nothing changes.
* outcome faults consulted by the model when an operation is accepted or
  completes (a snapshot ending in ``error``, a share stuck in ``creating``...).

Everything is guarded by one lock and may be changed while the stand-in runs.
"""

from __future__ import annotations

import dataclasses
import random
import re
import threading

NEXT_CREATED = "next_created"
NEXT = "next"


@dataclasses.dataclass(frozen=True)
class TransportDecision:
    """What the transport faults decided for one request.

    :param status: an injected 5xx status, or None to process the request.
    :param delay_before: real seconds to wait before processing.
    :param delay_after: real seconds to hold the answer back after processing.
    """

    status: int | None
    delay_before: float
    delay_after: float


@dataclasses.dataclass
class _ScriptedRule:
    remaining: int
    method: str | None
    path: re.Pattern[str] | None
    status: int = 503
    delay: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method.upper():
            return False
        return self.path is None or self.path.search(path) is not None


class Faults:
    """Runtime-changeable fault injection (thread-safe).

    :param latency: real seconds added before every answer.
    :param error_rate: share (0..1) of requests answered 500 or 503.
    :param slow_rate: share (0..1) of requests answered after ``slow_delay``.
    :param slow_delay: real seconds a slow answer is held back.
    :param seed: seed of the random generator behind the rates.
    """

    error_statuses: tuple[int, ...] = (500, 503)

    def __init__(
        self,
        latency: float = 0.0,
        error_rate: float = 0.0,
        slow_rate: float = 0.0,
        slow_delay: float = 0.0,
        seed: int = 0,
    ) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._latency = 0.0
        self._error_rate = 0.0
        self._slow_rate = 0.0
        self._slow_delay = 0.0
        self.latency = latency
        self.error_rate = error_rate
        self.slow_rate = slow_rate
        self.slow_delay = slow_delay
        self._fail_rules: list[_ScriptedRule] = []
        self._slow_rules: list[_ScriptedRule] = []
        self._snapshot_error_shares: dict[str, int] = {}
        self._share_error_snapshots: dict[str, int] = {}
        self._share_create_errors = 0
        self._stuck_shares: set[str] = set()
        self._stuck_next_created = 0
        self._stuck_deleting_snapshots: set[str] = set()
        self._stuck_deleting_next = 0
        self._stuck_creating_snapshot_shares: dict[str, int] = {}
        self._revert_error_shares: dict[str, int] = {}

    # -- transport faults -------------------------------------------------

    @property
    def latency(self) -> float:
        """Real seconds added before every answer."""
        with self._lock:
            return self._latency

    @latency.setter
    def latency(self, value: float) -> None:
        if value < 0:
            raise ValueError("latency must not be negative")
        with self._lock:
            self._latency = float(value)

    @property
    def error_rate(self) -> float:
        """Share (0..1) of requests answered 500 or 503."""
        with self._lock:
            return self._error_rate

    @error_rate.setter
    def error_rate(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError("error_rate must be within [0, 1]")
        with self._lock:
            self._error_rate = float(value)

    @property
    def slow_rate(self) -> float:
        """Share (0..1) of requests answered only after :attr:`slow_delay`."""
        with self._lock:
            return self._slow_rate

    @slow_rate.setter
    def slow_rate(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError("slow_rate must be within [0, 1]")
        with self._lock:
            self._slow_rate = float(value)

    @property
    def slow_delay(self) -> float:
        """Real seconds a slow answer is held back."""
        with self._lock:
            return self._slow_delay

    @slow_delay.setter
    def slow_delay(self, value: float) -> None:
        if value < 0:
            raise ValueError("slow_delay must not be negative")
        with self._lock:
            self._slow_delay = float(value)

    def seed(self, seed: int) -> None:
        """Re-seed the random generator behind the rates."""
        with self._lock:
            self._random.seed(seed)

    def fail_next(
        self, n: int = 1, status: int = 503, method: str | None = None, path: str | None = None
    ) -> None:
        """Answer the next ``n`` matching requests with ``status``.

        The request is refused before it reaches the model, so nothing changes.

        :param n: how many requests to fail.
        :param status: the HTTP status to answer (any code, usually 500/503).
        :param method: only requests with this method (e.g. ``"GET"``).
        :param path: only requests whose path matches this regular expression
            (``re.search`` on the path without query string).
        """
        if n < 1:
            raise ValueError("n must be at least 1")
        rule = _ScriptedRule(n, method.upper() if method else None, _compile(path), status)
        with self._lock:
            self._fail_rules.append(rule)

    def slow_next(
        self, n: int, delay: float, method: str | None = None, path: str | None = None
    ) -> None:
        """Hold back the answer to the next ``n`` matching requests by ``delay`` s.

        The request is processed first (its effect happens) and answered late,
        like a server whose answer is lost to a client timeout.
        """
        if n < 1:
            raise ValueError("n must be at least 1")
        rule = _ScriptedRule(
            n, method.upper() if method else None, _compile(path), delay=float(delay)
        )
        with self._lock:
            self._slow_rules.append(rule)

    def decide(self, method: str, path: str) -> TransportDecision:
        """Decide the transport faults of one request (consumes scripted rules)."""
        with self._lock:
            status = _take(self._fail_rules, method, path)
            injected = status.status if status is not None else None
            if injected is None and self._error_rate > 0:
                if self._random.random() < self._error_rate:
                    injected = self._random.choice(self.error_statuses)
            delay_after = 0.0
            slow = _take(self._slow_rules, method, path)
            if slow is not None:
                delay_after = slow.delay
            elif self._slow_rate > 0 and self._random.random() < self._slow_rate:
                delay_after = self._slow_delay
            return TransportDecision(injected, self._latency, delay_after)

    # -- outcome faults ---------------------------------------------------

    def snapshot_error(self, share_id: str, count: int = 1) -> None:
        """The next ``count`` snapshots of ``share_id`` end in ``error``."""
        with self._lock:
            self._snapshot_error_shares[share_id] = (
                self._snapshot_error_shares.get(share_id, 0) + count
            )

    def snapshot_stuck_creating(self, share_id: str, count: int = 1) -> None:
        """The next ``count`` snapshots of ``share_id`` stay ``creating`` forever."""
        with self._lock:
            self._stuck_creating_snapshot_shares[share_id] = (
                self._stuck_creating_snapshot_shares.get(share_id, 0) + count
            )

    def share_error_from_snapshot(self, snapshot_id: str, count: int = 1) -> None:
        """The next ``count`` shares created from ``snapshot_id`` end in ``error``."""
        with self._lock:
            self._share_error_snapshots[snapshot_id] = (
                self._share_error_snapshots.get(snapshot_id, 0) + count
            )

    def share_create_error(self, count: int = 1) -> None:
        """The next ``count`` shares created (not from a snapshot) end in ``error``.

        Like Manila when no backend fits: the share never gets a host.
        """
        with self._lock:
            self._share_create_errors += count

    def share_stuck(self, share_id: str = NEXT_CREATED) -> None:
        """Freeze a share's transitions.

        :param share_id: a share id: its current and later transitions never
            complete (e.g. it stays ``creating``/``deleting``/``reverting``);
            ``"next_created"``: the next share created through the API stays
            ``creating`` forever.
        """
        with self._lock:
            if share_id == NEXT_CREATED:
                self._stuck_next_created += 1
            else:
                self._stuck_shares.add(share_id)

    def snapshot_stuck_deleting(self, snapshot_id: str = NEXT) -> None:
        """A snapshot stays ``deleting`` forever once deleted.

        :param snapshot_id: a snapshot id, or ``"next"`` for the next snapshot
            whose deletion is accepted.
        """
        with self._lock:
            if snapshot_id == NEXT:
                self._stuck_deleting_next += 1
            else:
                self._stuck_deleting_snapshots.add(snapshot_id)

    def revert_error(self, share_id: str, count: int = 1) -> None:
        """The next ``count`` reverts of ``share_id`` end in ``reverting_error``."""
        with self._lock:
            self._revert_error_shares[share_id] = (
                self._revert_error_shares.get(share_id, 0) + count
            )

    def clear(self) -> None:
        """Drop every pending scripted and outcome fault and zero the rates."""
        with self._lock:
            self._latency = 0.0
            self._error_rate = 0.0
            self._slow_rate = 0.0
            self._slow_delay = 0.0
            self._fail_rules.clear()
            self._slow_rules.clear()
            self._snapshot_error_shares.clear()
            self._share_error_snapshots.clear()
            self._share_create_errors = 0
            self._stuck_shares.clear()
            self._stuck_next_created = 0
            self._stuck_deleting_snapshots.clear()
            self._stuck_deleting_next = 0
            self._stuck_creating_snapshot_shares.clear()
            self._revert_error_shares.clear()

    # -- used by the model ------------------------------------------------

    def take_snapshot_error(self, share_id: str) -> bool:
        """Consume a pending "snapshot ends in error" for ``share_id``."""
        with self._lock:
            return _take_count(self._snapshot_error_shares, share_id)

    def take_snapshot_stuck_creating(self, share_id: str) -> bool:
        """Consume a pending "snapshot stays creating" for ``share_id``."""
        with self._lock:
            return _take_count(self._stuck_creating_snapshot_shares, share_id)

    def take_share_error_from_snapshot(self, snapshot_id: str) -> bool:
        """Consume a pending "share from this snapshot ends in error"."""
        with self._lock:
            return _take_count(self._share_error_snapshots, snapshot_id)

    def take_share_create_error(self) -> bool:
        """Consume a pending "next created share ends in error"."""
        with self._lock:
            if self._share_create_errors > 0:
                self._share_create_errors -= 1
                return True
            return False

    def take_stuck_next_created(self, share_id: str) -> bool:
        """Consume a pending "next created share is stuck"; marks ``share_id``."""
        with self._lock:
            if self._stuck_next_created > 0:
                self._stuck_next_created -= 1
                self._stuck_shares.add(share_id)
                return True
            return False

    def is_share_stuck(self, share_id: str) -> bool:
        """Whether the transitions of ``share_id`` are frozen."""
        with self._lock:
            return share_id in self._stuck_shares

    def take_stuck_deleting_next(self, snapshot_id: str) -> None:
        """Mark ``snapshot_id`` stuck in deleting if a "next" fault is pending."""
        with self._lock:
            if self._stuck_deleting_next > 0:
                self._stuck_deleting_next -= 1
                self._stuck_deleting_snapshots.add(snapshot_id)

    def is_snapshot_stuck_deleting(self, snapshot_id: str) -> bool:
        """Whether the deletion of ``snapshot_id`` never completes."""
        with self._lock:
            return snapshot_id in self._stuck_deleting_snapshots

    def take_revert_error(self, share_id: str) -> bool:
        """Consume a pending "revert ends in reverting_error" for ``share_id``."""
        with self._lock:
            return _take_count(self._revert_error_shares, share_id)


def _compile(pattern: str | None) -> re.Pattern[str] | None:
    return re.compile(pattern) if pattern is not None else None


def _take(rules: list[_ScriptedRule], method: str, path: str) -> _ScriptedRule | None:
    for rule in rules:
        if rule.matches(method, path):
            rule.remaining -= 1
            if rule.remaining <= 0:
                rules.remove(rule)
            return rule
    return None


def _take_count(counts: dict[str, int], key: str) -> bool:
    left = counts.get(key, 0)
    if left <= 0:
        return False
    if left == 1:
        del counts[key]
    else:
        counts[key] = left - 1
    return True
