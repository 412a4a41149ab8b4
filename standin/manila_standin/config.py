"""Settings of a Manila stand-in."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Delays:
    """How long (stand-in seconds) each transition takes.

    All default to 0: a POST answers the transitional status (``creating``)
    and the next read already sees the final one. The values are read when an
    operation is accepted, so they may be changed while the stand-in runs.
    """

    share_create: float = 0.0
    snapshot_create: float = 0.0
    snapshot_delete: float = 0.0
    share_delete: float = 0.0
    revert: float = 0.0
    access_apply: float = 0.0
    #: How long a share's ``access_rules_status`` stays ``syncing`` after its rules
    #: became ``active`` (or were removed): Manila 23 updates the share a moment after
    #: the rules (0.05-0.2 s with the dummy driver). 0 keeps them in step.
    access_status_lag: float = 0.0


@dataclasses.dataclass
class Quotas:
    """Default per-project quota limits (``-1`` means unlimited)."""

    shares: int = 50
    gigabytes: int = 1000
    snapshots: int = 50
    snapshot_gigabytes: int = 1000


@dataclasses.dataclass
class StandInConfig:
    """Everything that shapes a stand-in's behaviour.

    :param min_version: lowest microversion served.
    :param max_version: highest microversion served (Manila 23 serves 2.99).
    :param delays: transition delays, see :class:`Delays`.
    :param time_scale: stand-in seconds per real second for the real clock.
    :param latency: real seconds added before every response.
    :param error_rate: share of requests answered 500/503 (0..1).
    :param slow_rate: share of requests answered only after ``slow_delay``.
    :param slow_delay: real seconds a "slow" answer is held back.
    :param seed: seed of the random generator behind the rates.
    :param quotas: default quota limits of every project.
    :param availability_zones: known availability zones; the first is the default.
    :param share_protocols: protocols accepted on share creation.
    :param backend_host: the ``host`` given to scheduled shares.
    :param export_ip: address used in export locations.
    :param accept_noauth_tokens: accept ``user:project`` tokens (noauth) besides
        the registered ones.
    :param max_limit: the most shares or snapshots one list answer holds, whatever
        ``limit`` asks (older Manila releases' ``osapi_max_limit``); None: no cap
        (Manila 23 pages shares and snapshots in the database, uncapped).
    :param share_from_snapshot_status: the status of a share being created from a
        snapshot (POST answer and until ready). ``creating_from_snapshot`` (at 2.54
        and later; ``creating`` below) is what drivers that copy asynchronously report
        (NetApp, CephFS); Manila 23 with its dummy driver, and drivers that create from
        snapshots synchronously, show ``creating`` (the contract tier uses that). Manila
        itself answers the POST with ``creating`` in both cases.
    """

    min_version: str = "2.0"
    max_version: str = "2.99"
    delays: Delays = dataclasses.field(default_factory=Delays)
    time_scale: float = 1.0
    latency: float = 0.0
    error_rate: float = 0.0
    slow_rate: float = 0.0
    slow_delay: float = 0.0
    seed: int = 0
    quotas: Quotas = dataclasses.field(default_factory=Quotas)
    availability_zones: tuple[str, ...] = ("nova",)
    share_protocols: tuple[str, ...] = ("NFS", "CIFS")
    backend_host: str = "standin@dummy#pool0"
    export_ip: str = "192.0.2.10"
    accept_noauth_tokens: bool = True
    share_from_snapshot_status: str = "creating_from_snapshot"
    max_limit: int | None = None
