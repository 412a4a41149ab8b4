"""Transitional statuses on the stand-in clock.

A resource in transition (a share ``creating``, a snapshot ``deleting``, a rule
``queued_to_apply``...) carries a :class:`Transition`: its target status and the
stand-in time it is due. The :class:`Timeline` keeps every pending transition in
one heap and completes what is due when asked (:meth:`Timeline.settle`); the
state asks before every request, so no background thread is needed and a
:class:`~manila_standin.clock.ManualClock` drives everything.

Each resource collection is the :class:`Lifecycle` of its records: it finds a
record by id, says whether a fault keeps it from completing, and applies a
completed transition (a new status, or the record's removal).
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import typing

from manila_standin import clock as clock_mod
from manila_standin import conflicts

INFINITY = math.inf


@dataclasses.dataclass(eq=False)
class Transition:
    """A pending status change of one resource.

    :param target: the status reached at ``ready_at``; None removes the resource.
    :param ops: the mutations kept open until it completes (conflict detector).
    :param frozen: a fault keeps it from ever completing.
    """

    target: str | None
    started_at: float
    ready_at: float
    seq: int
    ops: list[conflicts.OpenOp]
    frozen: bool = False


class Transitioning(typing.Protocol):
    """A record that may be in transition (share, snapshot, access rule)."""

    id: str
    transition: Transition | None


class Lifecycle(typing.Protocol):
    """What the timeline needs from the collection owning a record."""

    def lookup(self, resource_id: str) -> Transitioning | None:
        """Return the record, or None when it is gone."""
        ...

    def frozen(self, resource: typing.Any) -> bool:
        """Whether a fault keeps the record's due transition from completing."""
        ...

    def complete(self, resource: typing.Any, transition: Transition) -> None:
        """Apply ``transition`` (already detached from the record)."""
        ...


def cancel(resource: Transitioning) -> None:
    """Drop ``resource``'s pending transition and close its open operations."""
    if resource.transition is not None:
        for op in resource.transition.ops:
            op.closed = True
        resource.transition = None


class Timeline:
    """Every pending transition, ordered by due time. The caller holds the state lock.

    :param clock: the clock transitions are measured with.
    """

    def __init__(self, clock: clock_mod.Clock) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, Lifecycle, str]] = []
        self._seq = 0
        self._last_stamp = 0.0

    def now(self) -> float:
        """Return the current stand-in time."""
        return self._clock.now()

    def stamp(self) -> float:
        """Return a creation time, later than every one handed out before.

        Manila orders "the latest snapshot" by ``created_at``; strictly increasing
        creation times keep that order unambiguous.
        """
        now = self.now()
        if now <= self._last_stamp:
            now = self._last_stamp + 1e-6
        self._last_stamp = now
        return now

    def begin(
        self,
        owner: Lifecycle,
        resource: Transitioning,
        target: str | None,
        delay: float,
        mutation: conflicts.Mutation | None = None,
        share_ids: typing.Iterable[str] = (),
    ) -> Transition:
        """Put ``resource`` in transition to ``target``, due in ``delay`` seconds.

        :param owner: the collection that completes it.
        :param delay: stand-in seconds; ``INFINITY`` never completes.
        :param mutation: the operation that started it: it stays open on
            ``share_ids`` (conflict detector) until the transition completes.
        """
        now = self.now()
        ready_at = now + max(0.0, delay)
        self._seq += 1
        ops = mutation.open(ready_at, share_ids) if mutation is not None else []
        transition = Transition(target, now, ready_at, self._seq, ops)
        resource.transition = transition
        if not math.isinf(ready_at):
            heapq.heappush(self._heap, (ready_at, self._seq, owner, resource.id))
        return transition

    def settle(self) -> None:
        """Complete every transition whose time has come (or freeze it)."""
        now = self.now()
        while self._heap and self._heap[0][0] <= now:
            _, seq, owner, resource_id = heapq.heappop(self._heap)
            resource = owner.lookup(resource_id)
            if resource is None or resource.transition is None:
                continue
            transition = resource.transition
            if transition.seq != seq:
                continue  # replaced by a later transition
            if owner.frozen(resource):
                transition.frozen = True
                transition.ready_at = INFINITY
                for op in transition.ops:
                    op.ready_at = INFINITY
                continue
            resource.transition = None
            for op in transition.ops:
                op.closed = True
            owner.complete(resource, transition)
