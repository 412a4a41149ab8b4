"""The conflict detector: overlapping mutations of one share, recorded.

Real Manila accepts a second snapshot, an access change or a revert on a share
while an earlier operation on it is still running; the product promises never to
do that. The stand-in makes the promise checkable: a mutation is *open* from its
acceptance until the resource it changes leaves its transitional status, and a
mutating request on a share that arrives while another mutation of that share is
open is recorded as a :class:`Conflict`, whatever its answer.

Every mutating operation of the model runs inside :meth:`ConflictDetector.mutation`,
keyed by the share it changes (a snapshot's or a rule's parent share). The caller
holds the state lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import typing

from manila_standin import clock as clock_mod
from manila_standin import errors
from manila_standin import identity

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Conflict:
    """Two mutations of one share that overlapped in time.

    :param share_id: the share both operations mutate.
    :param first_operation: the operation that was still open.
    :param first_request_id: its request id (None for direct helpers).
    :param first_started_at: stand-in time it was accepted.
    :param first_ready_at: stand-in time it is due to complete (None: never).
    :param second_operation: the operation that arrived meanwhile.
    :param second_request_id: its request id.
    :param second_at: stand-in time it arrived.
    :param second_status: the HTTP status it was answered with.
    """

    share_id: str
    first_operation: str
    first_request_id: str | None
    first_started_at: float
    first_ready_at: float | None
    second_operation: str
    second_request_id: str | None
    second_at: float
    second_status: int

    @property
    def second_accepted(self) -> bool:
        """Whether Manila accepted the second operation (2xx answer)."""
        return self.second_status < 400


@dataclasses.dataclass(eq=False)
class OpenOp:
    """A mutation accepted and not yet completed."""

    operation: str
    request_id: str | None
    started_at: float
    ready_at: float
    closed: bool = False


class Mutation:
    """One mutating operation in progress: its answer and what it keeps open.

    :attr status: the HTTP status it will answer with (202 unless changed);
        an :class:`errors.ApiError` raised inside the operation overrides it.
    """

    def __init__(
        self, detector: ConflictDetector, ctx: identity.Context | None, operation: str
    ) -> None:
        self._detector = detector
        self._ctx = ctx
        self.operation = operation
        self.status = 202

    def open(self, ready_at: float, share_ids: typing.Iterable[str]) -> list[OpenOp]:
        """Keep this operation open on ``share_ids`` until ``ready_at``.

        :returns: the open operation, for the transition that will close it
            (:meth:`~manila_standin.transitions.Timeline.begin` calls this).
        """
        op = OpenOp(
            self.operation,
            self._ctx.request_id if self._ctx else None,
            self._detector.now(),
            ready_at,
        )
        for share_id in share_ids:
            self._detector.register(share_id, op)
        return [op]


class ConflictDetector:
    """Open operations per share and the conflicts seen so far.

    :param clock: stand-in time, for arrival and start times.
    """

    def __init__(self, clock: clock_mod.Clock) -> None:
        self._clock = clock
        self._open_ops: dict[str, list[OpenOp]] = {}
        self._conflicts: list[Conflict] = []

    def now(self) -> float:
        """Return the current stand-in time."""
        return self._clock.now()

    def register(self, share_id: str, op: OpenOp) -> None:
        """Count ``op`` as open on ``share_id`` until it is closed."""
        self._open_ops.setdefault(share_id, []).append(op)

    def _live_ops(self, share_id: str) -> list[OpenOp]:
        ops = self._open_ops.get(share_id)
        if not ops:
            return []
        live = [op for op in ops if not op.closed]
        if live:
            self._open_ops[share_id] = live
        else:
            del self._open_ops[share_id]
        return live

    @contextlib.contextmanager
    def mutation(
        self, ctx: identity.Context | None, operation: str, share_id: str | None
    ) -> typing.Iterator[Mutation]:
        """Run one mutating operation on ``share_id``; record what it overlaps.

        Every operation open on the share when this one arrives is recorded as a
        :class:`Conflict` with this one's answer, accepted or refused.

        :param share_id: the share mutated; None for an operation on no existing
            share (a new share not made from a snapshot).
        """
        earlier = list(self._live_ops(share_id)) if share_id else []
        arrived = self.now()
        scope = Mutation(self, ctx, operation)
        status = 500
        try:
            yield scope
            status = scope.status
        except errors.ApiError as exc:
            status = exc.status
            raise
        finally:
            for op in earlier:
                assert share_id is not None
                conflict = Conflict(
                    share_id=share_id,
                    first_operation=op.operation,
                    first_request_id=op.request_id,
                    first_started_at=op.started_at,
                    first_ready_at=None if math.isinf(op.ready_at) else op.ready_at,
                    second_operation=operation,
                    second_request_id=ctx.request_id if ctx else None,
                    second_at=arrived,
                    second_status=status,
                )
                LOG.debug("conflict recorded: %s", conflict)
                self._conflicts.append(conflict)

    def conflicts(self) -> list[Conflict]:
        """Return a copy of the recorded conflicts."""
        return list(self._conflicts)

    def reset(self) -> None:
        """Forget the recorded conflicts (open operations stay open)."""
        self._conflicts.clear()
