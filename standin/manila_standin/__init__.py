"""A stand-in for the OpenStack Manila v2 API, for tests and demos.

:class:`ManilaStandIn` serves the part of Manila 23's API this project uses
over real HTTP, so that unmodified python-manilaclient talks to it; its
helpers seed and inspect the model, inject faults, advance time and report
overlapping mutations of a share.

Where things are::

    server.py            ManilaStandIn: the HTTP server and the helpers tests use
    api.py               one request in, one reply out: faults, auth, versions, routing
    __main__.py          the manila-protector-standin command

    the core, shared by every resource
    state.py             the model: one lock, one clock, a collection per resource
    transitions.py       transitional statuses completing on the stand-in clock
    conflicts.py         the conflict detector (overlapping mutations of a share)
    identity.py          tokens -> who is calling; what the caller may see and change
    keystone.py          KeystoneStandIn: Keystone's token API (logins, validation,
                         discovery, catalogs) and keystonemiddleware's rules for Manila
    collection.py        the base of the resource collections
    clock.py config.py errors.py faults.py
    params.py listing.py routing.py render.py versions.py requestlog.py

    the resources: model and transitions / HTTP handlers and JSON views
    shares.py            shares_api.py
    snapshots.py         snapshots_api.py
    access_rules.py      access_rules_api.py
    share_types.py       share_types_api.py      (share types, networks, zones)
    quotas.py                                    (no HTTP API)
    metadata.py          metadata of shares and snapshots, written once
    revert.py            the revert share action
    records.py           GET/DELETE of a share or snapshot, and their admin actions, once
"""

from manila_standin.clock import ManualClock, RealClock
from manila_standin.config import Delays, Quotas, StandInConfig
from manila_standin.keystone import KeystoneStandIn
from manila_standin.server import ManilaStandIn

__all__ = ["Delays", "KeystoneStandIn", "ManilaStandIn", "ManualClock", "Quotas", "RealClock",
           "StandInConfig"]
