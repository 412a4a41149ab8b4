"""A stand-in for the OpenStack Manila v2 API, for tests and demos.

:class:`ManilaStandIn` serves the part of Manila 23's API this project uses
over real HTTP, so that unmodified python-manilaclient talks to it; its
helpers seed and inspect the model, inject faults, advance time and report
overlapping mutations of a share.
"""

from manila_standin.clock import ManualClock, RealClock
from manila_standin.config import Delays, Quotas, StandInConfig
from manila_standin.server import ManilaStandIn

__all__ = ["Delays", "ManilaStandIn", "ManualClock", "Quotas", "RealClock", "StandInConfig"]
