"""The stand-in's model: every resource collection, tied to one lock and one clock.

:class:`StandInState` owns what the resources share (the settings, the clock,
the faults, the :mod:`~manila_standin.transitions` timeline and the
:mod:`~manila_standin.conflicts` detector, the tokens) and one collection per
resource, each in its own module with its rules and transitions:

========================  =============================================
``state.shares``          :mod:`manila_standin.shares`
``state.snapshots``       :mod:`manila_standin.snapshots`
``state.rules``           :mod:`manila_standin.access_rules`
``state.types``           :mod:`manila_standin.share_types`
``state.networks``        :mod:`manila_standin.share_types`
``state.quotas``          :mod:`manila_standin.quotas`
``state.tokens``          :mod:`manila_standin.identity`
========================  =============================================

All state is guarded by :attr:`StandInState.lock` (re-entrant); callers that
read live records (the HTTP views) hold it while they render. Every operation
settles the timeline first, so a resource shows the status stand-in time has
reached without any background thread.
"""

from __future__ import annotations

import threading
import typing

from manila_standin import access_rules
from manila_standin import clock as clock_mod
from manila_standin import config as config_mod
from manila_standin import conflicts as conflicts_mod
from manila_standin import faults as faults_mod
from manila_standin import identity
from manila_standin import quotas
from manila_standin import share_types
from manila_standin import shares
from manila_standin import snapshots
from manila_standin import transitions


class StandInState:
    """The stand-in's resources, quotas, tokens, transitions and conflicts.

    :param config: the stand-in settings.
    :param clock: the clock transitions are measured with.
    :param faults: outcome faults consulted when operations start or complete.
    """

    def __init__(
        self,
        config: config_mod.StandInConfig,
        clock: clock_mod.Clock,
        faults: faults_mod.Faults,
    ) -> None:
        self.lock = threading.RLock()
        self.config = config
        self.clock = clock
        self.faults = faults
        self.timeline = transitions.Timeline(clock)
        self.detector = conflicts_mod.ConflictDetector(clock)
        self.tokens = identity.Tokens(config)
        self.quotas = quotas.Quotas(self)
        self.types = share_types.ShareTypes(self)
        self.networks = share_types.ShareNetworks(self)
        self.shares = shares.Shares(self)
        self.snapshots = snapshots.Snapshots(self)
        self.rules = access_rules.AccessRules(self)

    def now(self) -> float:
        """Return the current stand-in time."""
        return self.clock.now()

    def settle(self) -> None:
        """Complete every transition whose time has come."""
        with self.lock:
            self.timeline.settle()

    def mutation(
        self, ctx: identity.Context | None, operation: str, share_id: str | None
    ) -> typing.ContextManager[conflicts_mod.Mutation]:
        """Run a mutating operation of ``share_id`` under the conflict detector."""
        return self.detector.mutation(ctx, operation, share_id)

    def conflicts(self) -> list[conflicts_mod.Conflict]:
        """Return a copy of the recorded conflicts."""
        with self.lock:
            return self.detector.conflicts()

    def reset_conflicts(self) -> None:
        """Forget the recorded conflicts (open operations stay open)."""
        with self.lock:
            self.detector.reset()

    @property
    def shares_by_id(self) -> dict[str, shares.Share]:
        """Every share by id (live records: hold :attr:`lock` while reading them)."""
        return self.shares.by_id
