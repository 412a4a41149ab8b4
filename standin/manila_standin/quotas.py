"""Per-project quotas: limits (``StandInConfig.quotas`` unless overridden) and usage.

Shares and snapshots charge their project when created (while still
``creating``) and refund it when they are gone. The stand-in serves no quota
API; tests set limits with :meth:`Quotas.set` and read usage with
:meth:`Quotas.usage`.
"""

from __future__ import annotations

import dataclasses
import typing

from manila_standin import collection
from manila_standin import errors

if typing.TYPE_CHECKING:
    from manila_standin import state as state_mod

RESOURCES = frozenset({"shares", "gigabytes", "snapshots", "snapshot_gigabytes"})


class Quotas(collection.Collection):
    """Quota limits and usage of every project."""

    def __init__(self, state: state_mod.StandInState) -> None:
        super().__init__(state)
        self._limits: dict[str, dict[str, int]] = {}
        self._usage: dict[str, dict[str, int]] = {}

    def set(self, project_id: str, **limits: int | None) -> None:
        """Override quota limits of ``project_id`` (``shares``, ``gigabytes``,
        ``snapshots``, ``snapshot_gigabytes``; ``-1`` means unlimited, None keeps one).

        :raises ValueError: for an unknown resource.
        """
        unknown = set(limits) - RESOURCES
        if unknown:
            raise ValueError(f"unknown quota resources: {sorted(unknown)}")
        with self.state.lock:
            current = self._limits.setdefault(project_id, {})
            for key, value in limits.items():
                if value is not None:
                    current[key] = int(value)

    def limits(self, project_id: str) -> dict[str, int]:
        """Return the quota limits in force for ``project_id``."""
        limits = dataclasses.asdict(self.state.config.quotas)
        with self.state.lock:
            limits.update(self._limits.get(project_id, {}))
        return limits

    @collection.settled
    def usage(self, project_id: str) -> dict[str, int]:
        """Return what ``project_id`` consumes (resources being created count)."""
        usage = dict.fromkeys(("shares", "gigabytes", "snapshots", "snapshot_gigabytes"), 0)
        usage.update(self._usage.get(project_id, {}))
        return usage

    def charge(self, project_id: str, **deltas: int) -> None:
        """Add ``deltas`` (negative: a refund) to ``project_id``'s usage."""
        usage = self._usage.setdefault(project_id, {})
        for key, delta in deltas.items():
            usage[key] = usage.get(key, 0) + delta

    def over(self, project_id: str, resource: str, delta: int) -> bool:
        """Whether ``delta`` more of ``resource`` would exceed ``project_id``'s limit."""
        limit = self.limits(project_id)[resource]
        if limit < 0:
            return False
        used = self._usage.get(project_id, {}).get(resource, 0)
        return used + delta > limit

    def check(self, project_id: str, resource: str, delta: int, message: str) -> None:
        """Refuse like Manila's ``QuotaError`` when ``delta`` would exceed the limit.

        :param message: the answer's text; ``{allowed}`` is replaced by the limit.
        :raises errors.ApiError: 413 with ``Retry-After: 0``.
        """
        if self.over(project_id, resource, delta):
            allowed = self.limits(project_id)[resource]
            raise errors.over_quota(message.format(allowed=allowed))
