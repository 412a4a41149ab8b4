"""In-memory model of the Manila resources the stand-in serves.

The model enforces Manila 23's rules (which status allows which operation,
quotas, who may see what) and keeps every transitional status on a clock:
a resource in transition carries a :class:`Transition` with the stand-in time
at which it reaches its target. :meth:`StandInState.settle` completes what is
due; every public method settles first, so no background thread is needed.

It also watches for overlapping mutations of one share (the conflict
detector): a mutation is *open* from its acceptance until the resource it
changes leaves its transitional status. A mutating request on a share that
arrives while another mutation of that share is open is recorded as a
:class:`Conflict`.

All state is guarded by :attr:`StandInState.lock` (re-entrant); callers that
read live records (the HTTP views) hold it while they render.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import ipaddress
import logging
import math
import re
import threading
import typing
import uuid

from manila_standin import clock as clock_mod
from manila_standin import config as config_mod
from manila_standin import errors
from manila_standin import faults as faults_mod

LOG = logging.getLogger(__name__)

INFINITY = math.inf

SHARE_DELETABLE = ("available", "error", "inactive")
SNAPSHOT_DELETABLE = ("available", "error")
SHARE_SORT_KEYS = frozenset({
    "id", "status", "size", "host", "share_proto", "availability_zone",
    "availability_zone_id", "user_id", "project_id", "created_at", "updated_at",
    "display_name", "name", "share_type_id", "share_type", "share_network_id",
    "share_network", "snapshot_id", "snapshot", "is_public", "display_description",
})
SNAPSHOT_SORT_KEYS = frozenset({
    "id", "status", "size", "share_id", "user_id", "project_id", "progress", "name",
    "display_name", "created_at", "updated_at", "share_proto", "share_size",
    "display_description", "description",
})
ACCESS_TYPES = ("ip", "user", "cert", "cephx")
ACCESS_LEVELS = ("rw", "ro")
_USER_RE = re.compile(r"^[\w\.\-_\`;'\{\}\[\]\\]{4,255}$")
_CEPHX_RE = re.compile(r"^[a-zA-Z0-9\-_\.]+$")
_SHARE, _SNAPSHOT, _RULE = "share", "snapshot", "rule"

DEFAULT_SHARE_TYPE_NAME = "default"


@dataclasses.dataclass(frozen=True)
class MetadataOwner:
    """A kind of resource with metadata, as Manila's one ``MetadataController`` sees it.

    Manila serves share and snapshot metadata with one controller mixin
    (``manila/api/v2/metadata.py``) parameterised by the resource's name; the
    share and snapshot controllers only wrap it with their own policy names.

    :param resource_name: Manila's name of the resource (``share``, ``share_snapshot``).
    :param operation: the conflict detector's name for it (``share``, ``snapshot``).
    :param update_policy: the policy a change needs.
    :param delete_policy: the policy a deletion needs.
    """

    resource_name: str
    operation: str
    update_policy: str
    delete_policy: str

    @property
    def not_found(self) -> str:
        """Manila's 404 text for a record the caller cannot see."""
        return f"{self.resource_name.capitalize()} not found."


SHARE_METADATA = MetadataOwner(
    "share", "share", "share:update_share_metadata", "share:delete_share_metadata")
SNAPSHOT_METADATA = MetadataOwner(
    "share_snapshot", "snapshot", "share_snapshot:update_metadata",
    "share_snapshot:delete_metadata")


@dataclasses.dataclass(frozen=True)
class Context:
    """Who is calling: what Manila's request context carries.

    :param user_id: the caller's user.
    :param project_id: the caller's project.
    :param is_admin: admin contexts see and may change every project's resources.
    :param roles: the roles of a registered (keystone-like) token.
    :param request_id: the ``req-...`` id of the HTTP request, if any.
    """

    user_id: str
    project_id: str
    is_admin: bool
    roles: tuple[str, ...] = ()
    request_id: str | None = None


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
    """A mutation accepted and not yet completed (conflict detector)."""

    operation: str
    request_id: str | None
    started_at: float
    ready_at: float
    closed: bool = False


@dataclasses.dataclass(eq=False)
class Transition:
    """A pending status change of one resource.

    :param target: the status reached at ``ready_at``; None removes the resource.
    """

    target: str | None
    started_at: float
    ready_at: float
    seq: int
    ops: list[OpenOp]
    frozen: bool = False


@dataclasses.dataclass(eq=False)
class ShareType:
    """A share type with its (string valued) extra specs."""

    id: str
    name: str
    extra_specs: dict[str, str]
    description: str | None = None
    is_public: bool = True

    def flag(self, key: str) -> bool:
        """Return a boolean extra spec (absent means False)."""
        value = self.extra_specs.get(key, "False").strip().lower()
        return value in ("true", "1", "yes", "<is> true")


@dataclasses.dataclass(eq=False)
class Share:
    """A share as the stand-in stores it."""

    id: str
    project_id: str
    user_id: str
    size: int
    share_proto: str
    name: str | None
    description: str | None
    status: str
    share_type_id: str
    share_network_id: str | None
    availability_zone: str
    metadata: dict[str, str]
    is_public: bool
    snapshot_id: str | None
    created_at: float
    host: str | None
    snapshot_support: bool
    create_share_from_snapshot_support: bool
    revert_to_snapshot_support: bool
    mount_snapshot_support: bool
    updated_at: float | None = None
    task_state: str | None = None
    export_location_id: str | None = None
    export_location_created_at: float | None = None
    transition: Transition | None = None
    #: Until when ``access_rules_status`` stays ``syncing`` after its rules settled.
    access_synced_at: float = 0.0


@dataclasses.dataclass(eq=False)
class Snapshot:
    """A share snapshot as the stand-in stores it."""

    id: str
    share_id: str
    project_id: str
    user_id: str
    size: int
    share_size: int
    share_proto: str
    name: str | None
    description: str | None
    status: str
    metadata: dict[str, str]
    created_at: float
    updated_at: float | None = None
    transition: Transition | None = None


@dataclasses.dataclass(eq=False)
class AccessRule:
    """A share access rule as the stand-in stores it."""

    id: str
    share_id: str
    access_type: str
    access_to: str
    access_level: str
    state: str
    access_key: str | None
    metadata: dict[str, str]
    created_at: float
    updated_at: float | None = None
    transition: Transition | None = None


@dataclasses.dataclass(frozen=True)
class TokenInfo:
    """A registered ("keystone-validated") token."""

    user_id: str
    project_id: str
    roles: tuple[str, ...]


@dataclasses.dataclass
class ShareQuery:
    """Parsed filters of a share listing (already validated by the API layer)."""

    all_tenants: bool = False
    is_public: bool = False
    project_id: str | None = None
    name: str | None = None
    name_like: str | None = None
    description: str | None = None
    description_like: str | None = None
    status: str | None = None
    snapshot_id: str | None = None
    share_network_id: str | None = None
    share_type_id: str | None = None
    host: str | None = None
    availability_zone: str | None = None
    metadata: dict[str, typing.Any] | None = None
    export_location_id: str | None = None
    export_location_path: str | None = None
    sort_key: str = "created_at"
    sort_dir: str = "desc"
    limit: int | None = None
    offset: int = 0


@dataclasses.dataclass
class SnapshotQuery:
    """Parsed filters of a snapshot listing (already validated by the API layer)."""

    all_tenants: bool = False
    project_id: str | None = None
    share_id: str | None = None
    name: str | None = None
    name_like: str | None = None
    description: str | None = None
    description_like: str | None = None
    status: str | None = None
    size: int | None = None
    metadata: dict[str, typing.Any] | None = None
    sort_key: str = "created_at"
    sort_dir: str = "desc"
    limit: int | None = None
    offset: int = 0


class _Mutation:
    """Bookkeeping of one mutating operation for the conflict detector."""

    def __init__(self, state: StandInState, ctx: Context | None, operation: str) -> None:
        self.state = state
        self.ctx = ctx
        self.operation = operation
        self.status = 202
        self.ops: list[OpenOp] = []

    def open(self, ready_at: float, share_ids: typing.Iterable[str]) -> list[OpenOp]:
        """Register this operation as open on ``share_ids`` until ``ready_at``."""
        op = OpenOp(
            self.operation,
            self.ctx.request_id if self.ctx else None,
            self.state.now(),
            ready_at,
        )
        for share_id in share_ids:
            self.state._open_ops.setdefault(share_id, []).append(op)
        self.ops.append(op)
        return [op]


def _iso_ready(ready_at: float) -> float | None:
    return None if math.isinf(ready_at) else ready_at


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
        self._seq = 0
        self._last_stamp = 0.0
        self._heap: list[tuple[float, int, str, str]] = []
        self.shares_by_id: dict[str, Share] = {}
        self._shares_by_project: dict[str, dict[str, None]] = {}
        self._public_shares: dict[str, None] = {}
        self.snapshots_by_id: dict[str, Snapshot] = {}
        self._snapshots_by_share: dict[str, dict[str, None]] = {}
        self._snapshots_by_project: dict[str, dict[str, None]] = {}
        self.rules_by_id: dict[str, AccessRule] = {}
        self._rules_by_share: dict[str, dict[str, None]] = {}
        self.share_types: dict[str, ShareType] = {}
        self.default_share_type_id: str | None = None
        self._share_networks: dict[str, str] = {}
        self._open_ops: dict[str, list[OpenOp]] = {}
        self._conflicts: list[Conflict] = []
        self._quota_limits: dict[str, dict[str, int]] = {}
        self._usage: dict[str, dict[str, int]] = {}
        self._tokens: dict[str, TokenInfo] = {}
        self._revoked: set[str] = set()
        self.default_share_type_id = self.add_share_type(
            DEFAULT_SHARE_TYPE_NAME,
            snapshot_support=True,
            create_share_from_snapshot_support=True,
            revert_to_snapshot_support=True,
        )

    # -- time and transitions ---------------------------------------------

    def now(self) -> float:
        """Return the current stand-in time."""
        return self.clock.now()

    def _stamp(self) -> float:
        # Manila orders "the latest snapshot" by created_at; keep creation
        # times strictly increasing so that order is never ambiguous.
        now = self.now()
        if now <= self._last_stamp:
            now = self._last_stamp + 1e-6
        self._last_stamp = now
        return now

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _begin(
        self,
        kind: str,
        resource: Share | Snapshot | AccessRule,
        target: str | None,
        delay: float,
        ops: list[OpenOp] | None = None,
    ) -> Transition:
        now = self.now()
        ready_at = now + max(0.0, delay)
        seq = self._next_seq()
        transition = Transition(target, now, ready_at, seq, list(ops or []))
        for op in transition.ops:
            op.ready_at = ready_at
        resource.transition = transition
        if not math.isinf(ready_at):
            heapq.heappush(self._heap, (ready_at, seq, kind, resource.id))
        return transition

    @staticmethod
    def _cancel(resource: Share | Snapshot | AccessRule) -> None:
        if resource.transition is not None:
            for op in resource.transition.ops:
                op.closed = True
            resource.transition = None

    def settle(self) -> None:
        """Complete every transition whose time has come."""
        with self.lock:
            now = self.now()
            while self._heap and self._heap[0][0] <= now:
                _, seq, kind, resource_id = heapq.heappop(self._heap)
                resource = self._lookup(kind, resource_id)
                if resource is None or resource.transition is None:
                    continue
                if resource.transition.seq != seq:
                    continue
                if self._frozen(kind, resource):
                    resource.transition.frozen = True
                    resource.transition.ready_at = INFINITY
                    for op in resource.transition.ops:
                        op.ready_at = INFINITY
                    continue
                self._complete(kind, resource)

    def _lookup(self, kind: str, resource_id: str) -> Share | Snapshot | AccessRule | None:
        if kind == _SHARE:
            return self.shares_by_id.get(resource_id)
        if kind == _SNAPSHOT:
            return self.snapshots_by_id.get(resource_id)
        return self.rules_by_id.get(resource_id)

    def _frozen(self, kind: str, resource: Share | Snapshot | AccessRule) -> bool:
        if kind == _SHARE:
            return self.faults.is_share_stuck(resource.id)
        if kind == _SNAPSHOT:
            assert isinstance(resource, Snapshot)
            if resource.transition is not None and resource.transition.target is None:
                return self.faults.is_snapshot_stuck_deleting(resource.id)
            if resource.status == "restoring":
                return self.faults.is_share_stuck(resource.share_id)
        return False

    def _complete(self, kind: str, resource: Share | Snapshot | AccessRule) -> None:
        transition = resource.transition
        assert transition is not None
        resource.transition = None
        for op in transition.ops:
            op.closed = True
        now = transition.ready_at
        if kind == _SHARE:
            assert isinstance(resource, Share)
            if transition.target is None:
                self._remove_share(resource)
                return
            resource.status = transition.target
            resource.updated_at = now
            if resource.status == "available":
                self._ensure_export(resource, now)
        elif kind == _SNAPSHOT:
            assert isinstance(resource, Snapshot)
            if transition.target is None:
                self._remove_snapshot(resource)
                return
            resource.status = transition.target
            resource.updated_at = now
        else:
            assert isinstance(resource, AccessRule)
            share = self.shares_by_id.get(resource.share_id)
            if share is not None:
                share.access_synced_at = max(share.access_synced_at,
                                             now + self.config.delays.access_status_lag)
            if transition.target is None:
                self._remove_rule(resource)
                return
            resource.state = transition.target
            resource.updated_at = now

    @staticmethod
    def _ensure_export(share: Share, now: float) -> None:
        if share.export_location_id is None and share.host:
            share.export_location_id = str(uuid.uuid4())
            share.export_location_created_at = now

    # -- conflict detector ------------------------------------------------

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
    def _mutation(
        self, ctx: Context | None, operation: str, share_id: str | None
    ) -> typing.Iterator[_Mutation]:
        earlier = list(self._live_ops(share_id)) if share_id else []
        arrived = self.now()
        scope = _Mutation(self, ctx, operation)
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
                    first_ready_at=_iso_ready(op.ready_at),
                    second_operation=operation,
                    second_request_id=ctx.request_id if ctx else None,
                    second_at=arrived,
                    second_status=status,
                )
                LOG.debug("conflict recorded: %s", conflict)
                self._conflicts.append(conflict)

    def conflicts(self) -> list[Conflict]:
        """Return a copy of the recorded conflicts."""
        with self.lock:
            return list(self._conflicts)

    def reset_conflicts(self) -> None:
        """Forget the recorded conflicts (open operations stay open)."""
        with self.lock:
            self._conflicts.clear()

    # -- tokens -------------------------------------------------------------

    def register_token(
        self, token: str, user_id: str, project_id: str, roles: typing.Iterable[str] = ()
    ) -> None:
        """Register a "keystone-validated" token (it takes precedence over noauth)."""
        with self.lock:
            self._tokens[token] = TokenInfo(user_id, project_id, tuple(roles))
            self._revoked.discard(token)

    def revoke_token(self, token: str) -> None:
        """Make ``token`` invalid: requests carrying it get 401."""
        with self.lock:
            self._tokens.pop(token, None)
            self._revoked.add(token)

    def resolve_token(self, token: str | None, request_id: str | None = None) -> Context | None:
        """Return the context of ``token`` or None when it does not authenticate."""
        if not token:
            return None
        with self.lock:
            if token in self._revoked:
                return None
            info = self._tokens.get(token)
        if info is not None:
            return Context(
                info.user_id, info.project_id, "admin" in info.roles, info.roles, request_id
            )
        if not self.config.accept_noauth_tokens:
            return None
        user_id, _, project_id = token.partition(":")
        if not user_id:
            return None
        return Context(user_id, project_id or user_id, True, ("admin",), request_id)

    # -- share types, networks, zones ---------------------------------------

    def add_share_type(
        self,
        name: str,
        snapshot_support: bool = True,
        create_share_from_snapshot_support: bool = True,
        revert_to_snapshot_support: bool = True,
        mount_snapshot_support: bool = False,
        driver_handles_share_servers: bool = False,
        extra_specs: typing.Mapping[str, str] | None = None,
        description: str | None = None,
    ) -> str:
        """Create a public share type and return its id."""
        specs = {
            "driver_handles_share_servers": str(driver_handles_share_servers),
            "snapshot_support": str(snapshot_support),
            "create_share_from_snapshot_support": str(create_share_from_snapshot_support),
            "revert_to_snapshot_support": str(revert_to_snapshot_support),
            "mount_snapshot_support": str(mount_snapshot_support),
        }
        specs.update(extra_specs or {})
        type_id = str(uuid.uuid4())
        with self.lock:
            if any(t.name == name for t in self.share_types.values()):
                raise ValueError(f"share type {name!r} exists")
            self.share_types[type_id] = ShareType(type_id, name, specs, description)
        return type_id

    def create_share_type(
        self,
        name: str,
        extra_specs: typing.Mapping[str, str],
        is_public: bool = True,
        description: str | None = None,
    ) -> ShareType:
        """Create a share type with exactly these extra specs (``POST /types``).

        :raises ValueError: a share type of that name exists.
        """
        with self.lock:
            if any(t.name == name for t in self.share_types.values()):
                raise ValueError(f"share type {name!r} exists")
            found = ShareType(str(uuid.uuid4()), name,
                              {str(k): str(v) for k, v in extra_specs.items()}, description,
                              is_public)
            self.share_types[found.id] = found
            return found

    def find_share_type(self, name_or_id: str) -> ShareType | None:
        """Find a share type by id or name."""
        with self.lock:
            found = self.share_types.get(name_or_id)
            if found is not None:
                return found
            for share_type in self.share_types.values():
                if share_type.name == name_or_id:
                    return share_type
            return None

    def add_share_network(self, project_id: str) -> str:
        """Create an (opaque) share network of ``project_id`` and return its id."""
        network_id = str(uuid.uuid4())
        with self.lock:
            self._share_networks[network_id] = project_id
        return network_id

    def _check_share_network(self, ctx: Context, network_id: str) -> None:
        owner = self._share_networks.get(network_id)
        if owner is None or not (ctx.is_admin or owner == ctx.project_id):
            raise errors.not_found(f"Share network {network_id} could not be found.")

    # -- quotas -------------------------------------------------------------

    def set_quota(self, project_id: str, **limits: int | None) -> None:
        """Override quota limits of ``project_id`` (``shares``, ``gigabytes``,
        ``snapshots``, ``snapshot_gigabytes``; ``-1`` means unlimited)."""
        known = {"shares", "gigabytes", "snapshots", "snapshot_gigabytes"}
        unknown = set(limits) - known
        if unknown:
            raise ValueError(f"unknown quota resources: {sorted(unknown)}")
        with self.lock:
            current = self._quota_limits.setdefault(project_id, {})
            for key, value in limits.items():
                if value is not None:
                    current[key] = int(value)

    def quota_limits(self, project_id: str) -> dict[str, int]:
        """Return the quota limits in force for ``project_id``."""
        defaults = dataclasses.asdict(self.config.quotas)
        with self.lock:
            defaults.update(self._quota_limits.get(project_id, {}))
        return defaults

    def quota_usage(self, project_id: str) -> dict[str, int]:
        """Return what ``project_id`` consumes (resources being created count)."""
        with self.lock:
            self.settle()
            usage = {"shares": 0, "gigabytes": 0, "snapshots": 0, "snapshot_gigabytes": 0}
            usage.update(self._usage.get(project_id, {}))
            return usage

    def _charge(self, project_id: str, **deltas: int) -> None:
        usage = self._usage.setdefault(project_id, {})
        for key, delta in deltas.items():
            usage[key] = usage.get(key, 0) + delta

    def _over(self, project_id: str, resource: str, delta: int) -> bool:
        limit = self.quota_limits(project_id)[resource]
        if limit < 0:
            return False
        used = self._usage.get(project_id, {}).get(resource, 0)
        return used + delta > limit

    # -- visibility ---------------------------------------------------------

    def visible_share(self, ctx: Context, share_id: str, message: str | None = None) -> Share:
        """Return a share the caller may see, or raise 404."""
        share = self.shares_by_id.get(share_id)
        if share is None or not (
            ctx.is_admin or share.project_id == ctx.project_id or share.is_public
        ):
            # Manila 23 answers a bare 404 here (webob's default explanation).
            raise errors.not_found(message or errors.NOT_FOUND)
        return share

    @staticmethod
    def _authorize_share(ctx: Context, share: Share, action: str) -> None:
        # Public shares of other projects are visible, but only their owners
        # (or an admin) may change them: Manila's policy answers 403.
        _authorize(ctx, share.project_id, f"share:{action}")

    def visible_snapshot(
        self, ctx: Context, snapshot_id: str, status: int = 404, message: str | None = None
    ) -> Snapshot:
        """Return a snapshot the caller may see, or raise (404 by default)."""
        snapshot = self.snapshots_by_id.get(snapshot_id)
        if snapshot is None or not (ctx.is_admin or snapshot.project_id == ctx.project_id):
            raise errors.ApiError(status, message or errors.NOT_FOUND)
        return snapshot

    def visible_rule(self, ctx: Context, access_id: str) -> AccessRule:
        """Return an access rule whose share the caller may see, or raise 404."""
        rule = self.rules_by_id.get(access_id)
        if rule is None:
            raise errors.not_found(f"Share access rule {access_id} not found.")
        self.visible_share(ctx, rule.share_id, f"Share access rule {access_id} not found.")
        return rule

    # -- shares -------------------------------------------------------------

    def _new_share(
        self,
        *,
        project_id: str,
        user_id: str,
        size: int,
        share_proto: str,
        name: str | None,
        description: str | None,
        status: str,
        share_type: ShareType,
        share_network_id: str | None,
        availability_zone: str,
        metadata: dict[str, str],
        is_public: bool,
        snapshot_id: str | None,
        host: str | None,
    ) -> Share:
        created = self._stamp()
        share = Share(
            id=str(uuid.uuid4()),
            project_id=project_id,
            user_id=user_id,
            size=size,
            share_proto=share_proto,
            name=name,
            description=description,
            status=status,
            share_type_id=share_type.id,
            share_network_id=share_network_id,
            availability_zone=availability_zone,
            metadata=metadata,
            is_public=is_public,
            snapshot_id=snapshot_id,
            created_at=created,
            host=host,
            snapshot_support=share_type.flag("snapshot_support"),
            create_share_from_snapshot_support=share_type.flag(
                "create_share_from_snapshot_support"
            ),
            revert_to_snapshot_support=share_type.flag("revert_to_snapshot_support"),
            mount_snapshot_support=share_type.flag("mount_snapshot_support"),
        )
        self.shares_by_id[share.id] = share
        self._shares_by_project.setdefault(project_id, {})[share.id] = None
        if is_public:
            self._public_shares[share.id] = None
        self._charge(project_id, shares=1, gigabytes=size)
        return share

    def _remove_share(self, share: Share) -> None:
        self.shares_by_id.pop(share.id, None)
        project = self._shares_by_project.get(share.project_id)
        if project is not None:
            project.pop(share.id, None)
            if not project:
                del self._shares_by_project[share.project_id]
        self._public_shares.pop(share.id, None)
        for rule_id in list(self._rules_by_share.pop(share.id, {})):
            rule = self.rules_by_id.pop(rule_id, None)
            if rule is not None:
                self._cancel(rule)
        self._charge(share.project_id, shares=-1, gigabytes=-share.size)
        self._cancel(share)

    def create_share(
        self,
        ctx: Context,
        *,
        share_proto: typing.Any,
        size: typing.Any,
        name: str | None = None,
        description: str | None = None,
        snapshot_id: str | None = None,
        share_network_id: str | None = None,
        share_type: str | None = None,
        is_public: bool = False,
        availability_zone: str | None = None,
        metadata: dict[str, str] | None = None,
        check_create_from_snapshot_support: bool = True,
    ) -> Share:
        """Create a share through the API rules (Manila ``POST /shares``).

        The order of the checks follows Manila's share controller and
        ``manila.share.api.API.create``.

        :raises errors.ApiError: 400/404/413 as Manila answers them.
        """
        with self.lock:
            self.settle()
            if availability_zone and availability_zone not in self.config.availability_zones:
                raise errors.not_found(
                    f"Availability zone {availability_zone} could not be found."
                )
            snapshot = self.visible_snapshot(
                ctx, snapshot_id,
                message=f"ShareSnapshotNotFound: Snapshot {snapshot_id} could not be found.",
            ) if snapshot_id else None
            parent = self.shares_by_id[snapshot.share_id] if snapshot is not None else None
            operation = "share_create_from_snapshot" if snapshot else "share_create"
            with self._mutation(ctx, operation, parent.id if parent else None) as scope:
                scope.status = 200
                if parent is not None:
                    if share_network_id:
                        if share_network_id != parent.share_network_id:
                            raise errors.bad_request(
                                "Share network ID should be the same as snapshot's"
                                " parent share's or empty"
                            )
                    elif parent.share_network_id:
                        share_network_id = parent.share_network_id
                    if check_create_from_snapshot_support and not (
                        parent.create_share_from_snapshot_support
                    ):
                        raise errors.bad_request(
                            f"A new share may not be created from snapshot '{snapshot_id}', "
                            "because the snapshot's parent share does not have that "
                            "capability."
                        )
                if share_network_id:
                    self._check_share_network(ctx, share_network_id)
                chosen: ShareType | None = None
                if share_type:
                    chosen = self.find_share_type(share_type)
                    if chosen is None:
                        raise errors.not_found("Share type not found.")
                elif snapshot is None and self.default_share_type_id:
                    chosen = self.share_types[self.default_share_type_id]
                if (
                    chosen is not None
                    and snapshot is None
                    and not share_network_id
                    and chosen.flag("driver_handles_share_servers")
                ):
                    raise errors.bad_request(
                        "Share network must be set when the driver_handles_share_servers "
                        "is true."
                    )
                _check_metadata(metadata)
                if snapshot is not None:
                    if snapshot.status != "available":
                        raise errors.bad_request(
                            "Invalid share snapshot: status must be 'available'."
                        )
                    if not size:
                        size = snapshot.size
                if isinstance(size, bool) or not _is_int_like(size) or int(size) <= 0:
                    raise errors.invalid_input(
                        f"Share size '{size}' must be an integer and greater than 0"
                    )
                size = int(size)
                if snapshot is not None and size < snapshot.size:
                    raise errors.invalid_input(
                        f"Share size '{size}' must be equal or greater than snapshot size"
                    )
                if parent is not None:
                    if availability_zone is None:
                        availability_zone = parent.availability_zone
                    elif availability_zone != parent.availability_zone:
                        raise errors.invalid_input(
                            "The specified availability zone must be the same as the parent "
                            "share when creating from snapshot."
                        )
                    if chosen is None:
                        chosen = self.share_types[parent.share_type_id]
                    elif chosen.id != parent.share_type_id:
                        raise errors.invalid_input(
                            "Invalid share type specified: the requested share type must "
                            "match the type of the source share. If a share type is not "
                            "specified when requesting a new share from a snapshot, the share "
                            "type of the source share will be applied to the new share."
                        )
                protocols = [p.upper() for p in self.config.share_protocols]
                if not isinstance(share_proto, str) or share_proto.upper() not in protocols:
                    raise errors.invalid_input(
                        f"Invalid share protocol provided: {share_proto}. It is either "
                        "disabled or unsupported. Available protocols: "
                        f"{list(self.config.share_protocols)}"
                    )
                if chosen is None:
                    raise errors.bad_request("No share type given and no default share type.")
                over_gigabytes = self._over(ctx.project_id, "gigabytes", size)
                over_shares = self._over(ctx.project_id, "shares", 1)
                if over_gigabytes:
                    raise errors.over_quota(
                        "Requested share exceeds allowed project/user or share type "
                        "gigabytes quota."
                    )
                if over_shares:
                    allowed = self.quota_limits(ctx.project_id)["shares"]
                    raise errors.over_quota(
                        f"Maximum number of shares allowed ({allowed}) exceeded."
                    )
                host: str | None = self.config.backend_host
                if snapshot is not None:
                    failing = self.faults.take_share_error_from_snapshot(snapshot.id)
                    status = self.config.share_from_snapshot_status
                else:
                    failing = self.faults.take_share_create_error()
                    if failing:
                        host = None
                    status = "creating"
                share = self._new_share(
                    project_id=ctx.project_id,
                    user_id=ctx.user_id,
                    size=size,
                    share_proto=share_proto.upper(),
                    name=name,
                    description=description,
                    status=status,
                    share_type=chosen,
                    share_network_id=share_network_id,
                    availability_zone=availability_zone or self.config.availability_zones[0],
                    metadata={str(k): str(v) for k, v in (metadata or {}).items()},
                    is_public=bool(is_public),
                    snapshot_id=snapshot.id if snapshot is not None else None,
                    host=host,
                )
                delay = self.config.delays.share_create
                if self.faults.take_stuck_next_created(share.id):
                    delay = INFINITY
                share_ids = [share.id] + ([parent.id] if parent is not None else [])
                ops = scope.open(share.created_at + delay, share_ids)
                self._begin(_SHARE, share, "error" if failing else "available", delay, ops)
                return share

    def update_share(
        self, ctx: Context, share_id: str, fields: dict[str, typing.Any]
    ) -> Share:
        """Change a share's name, description or visibility (``PUT /shares/{id}``)."""
        with self.lock:
            self.settle()
            share = self.visible_share(ctx, share_id)
            with self._mutation(ctx, "share_update", share.id) as scope:
                scope.status = 200
                self._authorize_share(ctx, share, "update")
                for key in ("name", "description"):
                    if key in fields:
                        value = fields[key]
                        if value is not None and len(str(value)) > 255:
                            raise errors.bad_request(f"{key} has more than 255 characters.")
                        setattr(share, key, value)
                if "is_public" in fields:
                    share.is_public = _strict_bool("is_public", fields["is_public"])
                    if share.is_public:
                        self._public_shares[share.id] = None
                    else:
                        self._public_shares.pop(share.id, None)
                share.updated_at = self.now()
                return share

    def delete_share(self, ctx: Context, share_id: str, force: bool = False) -> None:
        """Delete a share (``DELETE /shares/{id}`` or the ``force_delete`` action).

        :raises errors.ApiError: 404 unknown; 403 wrong status or dependent
            snapshots (400 for snapshots when forced, as Manila does).
        """
        with self.lock:
            self.settle()
            share = self.visible_share(ctx, share_id)
            operation = "share_force_delete" if force else "share_delete"
            with self._mutation(ctx, operation, share.id) as scope:
                if force and not ctx.is_admin:
                    raise errors.forbidden(errors.ACCESS_DENIED)
                self._authorize_share(ctx, share, "delete")
                if not force and share.status not in SHARE_DELETABLE:
                    raise errors.invalid_share(
                        f"Share status must be one of {SHARE_DELETABLE}", status=403
                    )
                dependent = len(self._snapshots_by_share.get(share.id, {}))
                if dependent:
                    raise errors.invalid_share(
                        f"Share still has {dependent} dependent snapshots",
                        status=400 if force else 403,
                    )
                self._cancel(share)
                if not share.host:
                    # Never scheduled: Manila drops it at once.
                    self._remove_share(share)
                    return
                share.status = "deleting"
                share.updated_at = self.now()
                delay = self.config.delays.share_delete
                ops = scope.open(self.now() + delay, [share.id])
                self._begin(_SHARE, share, None, delay, ops)

    def share_access_rules_status(self, share: Share) -> str:
        """Return ``syncing`` while any rule of ``share`` changes, else ``active``."""
        for rule_id in self._rules_by_share.get(share.id, {}):
            rule = self.rules_by_id[rule_id]
            if rule.transition is not None:
                return "syncing"
            if rule.state == "error":
                return "error"
        if self.now() < share.access_synced_at:
            return "syncing"
        return "active"

    def list_shares(self, ctx: Context, query: ShareQuery) -> tuple[int, list[Share]]:
        """Return (total matching, page) of shares visible to ``ctx``."""
        with self.lock:
            self.settle()
            if query.sort_key not in SHARE_SORT_KEYS:
                raise errors.invalid_input(f"Wrong sorting key provided - '{query.sort_key}'")
            if query.sort_dir not in ("asc", "desc"):
                raise errors.invalid_input(
                    f"Wrong sorting data provided: sort key is '{query.sort_key}' and sort "
                    f"direction is '{query.sort_dir}'"
                )
            candidates = self._share_candidates(ctx, query)
            matched = [s for s in candidates if _share_matches(s, query)]
            matched.sort(key=_share_sort_key(query.sort_key), reverse=query.sort_dir == "desc")
            total = len(matched)
            page = matched[query.offset:]
            if query.limit is not None:
                page = page[: query.limit]
            return total, page

    def _share_candidates(self, ctx: Context, query: ShareQuery) -> list[Share]:
        by_id = self.shares_by_id
        if ctx.is_admin and query.all_tenants:
            if query.project_id is not None:
                ids: typing.Iterable[str] = self._shares_by_project.get(query.project_id, {})
            else:
                ids = by_id
            return [by_id[i] for i in ids]
        own = self._shares_by_project.get(ctx.project_id, {})
        shares = [by_id[i] for i in own]
        if query.is_public:
            shares.extend(
                by_id[i] for i in self._public_shares if by_id[i].project_id != ctx.project_id
            )
        if query.project_id is not None:
            shares = [s for s in shares if s.project_id == query.project_id]
        return shares

    # -- snapshots ----------------------------------------------------------

    def create_snapshot(
        self,
        ctx: Context,
        share_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Snapshot:
        """Snapshot a share through the API rules (``POST /snapshots``).

        ``force`` is not a parameter: Manila's v2 API ignores it.

        :raises errors.ApiError: 404 unknown share; 422 no snapshot support;
            400 share not available; 413 over quota.
        """
        with self.lock:
            self.settle()
            share = self.visible_share(ctx, share_id, errors.NOT_FOUND_TRANSLATED)
            with self._mutation(ctx, "snapshot_create", share.id) as scope:
                if not share.snapshot_support:
                    raise errors.unprocessable(
                        f"Snapshots cannot be created for share '{share.id}' since it does "
                        "not have that capability."
                    )
                for key, value in (("name", name), ("description", description)):
                    if value is not None and len(str(value)) > 255:
                        raise errors.bad_request(f"{key} has more than 255 characters.")
                if metadata:
                    _check_metadata(metadata)
                self._authorize_share(ctx, share, "create_snapshot")
                if share.status != "available":
                    raise errors.invalid_share("Source share status must be available")
                if self._over(ctx.project_id, "snapshot_gigabytes", share.size):
                    raise errors.over_quota(
                        "Requested snapshot exceeds allowed project/user or share type "
                        "gigabytes quota."
                    )
                if self._over(ctx.project_id, "snapshots", 1):
                    allowed = self.quota_limits(ctx.project_id)["snapshots"]
                    raise errors.over_quota(
                        f"Maximum number of snapshots allowed ({allowed}) exceeded."
                    )
                snapshot = self._new_snapshot(
                    share,
                    project_id=ctx.project_id,
                    user_id=ctx.user_id,
                    name=name,
                    description=description,
                    status="creating",
                    metadata={str(k): str(v) for k, v in (metadata or {}).items()},
                )
                delay = self.config.delays.snapshot_create
                if self.faults.take_snapshot_stuck_creating(share.id):
                    delay = INFINITY
                target = "error" if self.faults.take_snapshot_error(share.id) else "available"
                ops = scope.open(snapshot.created_at + delay, [share.id])
                self._begin(_SNAPSHOT, snapshot, target, delay, ops)
                return snapshot

    def _new_snapshot(
        self,
        share: Share,
        *,
        project_id: str,
        user_id: str,
        name: str | None,
        description: str | None,
        status: str,
        metadata: dict[str, str],
    ) -> Snapshot:
        snapshot = Snapshot(
            id=str(uuid.uuid4()),
            share_id=share.id,
            project_id=project_id,
            user_id=user_id,
            size=share.size,
            share_size=share.size,
            share_proto=share.share_proto,
            name=name,
            description=description,
            status=status,
            metadata=metadata,
            created_at=self._stamp(),
        )
        self.snapshots_by_id[snapshot.id] = snapshot
        self._snapshots_by_share.setdefault(share.id, {})[snapshot.id] = None
        self._snapshots_by_project.setdefault(project_id, {})[snapshot.id] = None
        self._charge(project_id, snapshots=1, snapshot_gigabytes=snapshot.size)
        return snapshot

    def _remove_snapshot(self, snapshot: Snapshot) -> None:
        self.snapshots_by_id.pop(snapshot.id, None)
        for index, key in (
            (self._snapshots_by_share, snapshot.share_id),
            (self._snapshots_by_project, snapshot.project_id),
        ):
            members = index.get(key)
            if members is not None:
                members.pop(snapshot.id, None)
                if not members:
                    del index[key]
        self._charge(snapshot.project_id, snapshots=-1, snapshot_gigabytes=-snapshot.size)
        self._cancel(snapshot)

    def delete_snapshot(self, ctx: Context, snapshot_id: str, force: bool = False) -> None:
        """Delete a snapshot (``DELETE /snapshots/{id}`` or ``force_delete``).

        :raises errors.ApiError: 404 unknown; 400 not available/error (unless forced).
        """
        with self.lock:
            self.settle()
            snapshot = self.visible_snapshot(ctx, snapshot_id)
            operation = "snapshot_force_delete" if force else "snapshot_delete"
            with self._mutation(ctx, operation, snapshot.share_id) as scope:
                if force and not ctx.is_admin:
                    raise errors.forbidden(errors.ACCESS_DENIED)
                if not force and snapshot.status not in SNAPSHOT_DELETABLE:
                    raise errors.bad_request(
                        "Invalid share snapshot: Share Snapshot status must be one of "
                        f"{SNAPSHOT_DELETABLE}."
                    )
                self._cancel(snapshot)
                snapshot.status = "deleting"
                snapshot.updated_at = self.now()
                self.faults.take_stuck_deleting_next(snapshot.id)
                delay = self.config.delays.snapshot_delete
                ops = scope.open(self.now() + delay, [snapshot.share_id])
                self._begin(_SNAPSHOT, snapshot, None, delay, ops)

    def update_snapshot(
        self, ctx: Context, snapshot_id: str, fields: dict[str, typing.Any]
    ) -> Snapshot:
        """Rename or re-describe a snapshot (``PUT /snapshots/{id}``)."""
        with self.lock:
            self.settle()
            snapshot = self.visible_snapshot(ctx, snapshot_id)
            for key in ("name", "description"):
                if key in fields:
                    value = fields[key]
                    if value is not None and len(str(value)) > 255:
                        raise errors.bad_request(f"{key} has more than 255 characters.")
                    setattr(snapshot, key, value)
            snapshot.updated_at = self.now()
            return snapshot

    def list_snapshots(self, ctx: Context, query: SnapshotQuery) -> tuple[int, list[Snapshot]]:
        """Return (total matching, page) of snapshots visible to ``ctx``."""
        with self.lock:
            self.settle()
            sort_key = {"name": "display_name", "description": "display_description"}.get(
                query.sort_key, query.sort_key
            )
            if sort_key not in SNAPSHOT_SORT_KEYS:
                raise errors.invalid_input(f"Wrong sorting key provided - '{query.sort_key}'")
            if query.sort_dir not in ("asc", "desc"):
                raise errors.invalid_input(
                    f"Wrong sorting data provided: sort key is '{query.sort_key}' and sort "
                    f"direction is '{query.sort_dir}'"
                )
            by_id = self.snapshots_by_id
            everything = ctx.is_admin and query.all_tenants
            if query.share_id is not None:
                ids: typing.Iterable[str] = self._snapshots_by_share.get(query.share_id, {})
            elif everything and query.project_id is None:
                ids = by_id
            else:
                project = query.project_id if everything else ctx.project_id
                ids = self._snapshots_by_project.get(project or "", {})
            candidates = [by_id[i] for i in ids]
            if not everything:
                candidates = [s for s in candidates if s.project_id == ctx.project_id]
            elif query.project_id is not None:
                candidates = [s for s in candidates if s.project_id == query.project_id]
            matched = [s for s in candidates if _snapshot_matches(s, query)]
            matched.sort(key=_snapshot_sort_key(sort_key), reverse=query.sort_dir == "desc")
            total = len(matched)
            page = matched[query.offset:]
            if query.limit is not None:
                page = page[: query.limit]
            return total, page

    def latest_snapshot(self, share_id: str) -> Snapshot | None:
        """Return the newest (by ``created_at``) snapshot of a share."""
        with self.lock:
            ids = self._snapshots_by_share.get(share_id, {})
            snapshots = [self.snapshots_by_id[i] for i in ids]
            return max(snapshots, key=lambda s: s.created_at, default=None)

    # -- revert -------------------------------------------------------------

    def revert(self, ctx: Context, share_id: str, snapshot_id: typing.Any) -> None:
        """Revert a share to a snapshot (the ``revert`` action, >= 2.27).

        :raises errors.ApiError: 404 unknown share; 400 unknown snapshot, no
            revert support or snapshot of another share; 409 share/snapshot
            not available, snapshot not the latest, access rules changing.
        """
        with self.lock:
            self.settle()
            share = self.visible_share(ctx, share_id, errors.NOT_FOUND_TRANSLATED)
            with self._mutation(ctx, "revert", share.id) as scope:
                if not isinstance(snapshot_id, str) or not snapshot_id:
                    raise errors.bad_request("Invalid revert request: snapshot_id is required.")
                snapshot = self.visible_snapshot(
                    ctx, snapshot_id, status=400,
                    message=f"Snapshot {snapshot_id} could not be found.")
                self._authorize_share(ctx, share, "revert_to_snapshot")
                if not share.revert_to_snapshot_support:
                    raise errors.bad_request(
                        f"Share {share.id} may not be reverted to snapshot {snapshot_id}, "
                        "because the share does not have that capability."
                    )
                if snapshot.share_id != share.id:
                    raise errors.bad_request(
                        f"Snapshot {snapshot_id} is not associated with share {share.id}."
                    )
                if share.status != "available":
                    raise errors.conflict(
                        f"Share {share.id} is in '{share.status}' state, but it must be in "
                        "'available' state to be reverted to a snapshot."
                    )
                if snapshot.status != "available":
                    raise errors.conflict(
                        f"Snapshot {snapshot_id} is in '{snapshot.status}' state, but it must "
                        "be in 'available' state to be restored."
                    )
                latest = self.latest_snapshot(share.id)
                if latest is not None and latest.id != snapshot.id:
                    raise errors.conflict(
                        f"Snapshot {snapshot_id} may not be restored because it is not the "
                        f"most recent snapshot of share {share.id}. Currently the latest "
                        f"snapshot is {latest.id}."
                    )
                if self.share_access_rules_status(share) != "active":
                    raise errors.conflict(
                        f"Snapshot {snapshot_id} belongs to a share {share.id} which has "
                        "access rules that are not active."
                    )
                now = self.now()
                share.status = "reverting"
                share.updated_at = now
                snapshot.status = "restoring"
                snapshot.updated_at = now
                failing = self.faults.take_revert_error(share.id)
                delay = self.config.delays.revert
                ops = scope.open(now + delay, [share.id])
                self._begin(_SHARE, share, "reverting_error" if failing else "available",
                            delay, ops)
                self._begin(_SNAPSHOT, snapshot, "available", delay)

    # -- access rules -------------------------------------------------------

    def allow_access(
        self,
        ctx: Context,
        share_id: str,
        access_type: typing.Any,
        access_to: typing.Any,
        access_level: typing.Any = None,
        metadata: dict[str, str] | None = None,
        *,
        enable_ceph: bool = True,
        enable_ipv6: bool = True,
        allow_on_error_state: bool = False,
    ) -> AccessRule:
        """Add an access rule (``allow_access`` action): ``queued_to_apply`` first."""
        with self.lock:
            self.settle()
            share = self.visible_share(ctx, share_id, errors.NOT_FOUND_TRANSLATED)
            with self._mutation(ctx, "access_allow", share.id) as scope:
                scope.status = 200
                _validate_access(access_type, access_to, enable_ceph, enable_ipv6)
                if access_level not in (*ACCESS_LEVELS, None):
                    raise errors.bad_request(
                        f"Invalid access rule: Invalid share access level: {access_level}."
                    )
                _check_metadata(metadata)
                self._authorize_share(ctx, share, "allow_access")
                for rule_id in self._rules_by_share.get(share.id, {}):
                    rule = self.rules_by_id[rule_id]
                    if rule.access_type == access_type and rule.access_to == access_to:
                        raise errors.bad_request(
                            f"Share access {access_type}:{access_to} exists."
                        )
                invalid = ("deleting", "migrating_to", "error_deleting")
                if not share.host or share.status in invalid or (
                    share.status == "error" and not allow_on_error_state
                ):
                    raise errors.invalid_share(
                        "New access rules cannot be applied while the share or any of its "
                        "replicas or migration copies lacks a valid host or is in an "
                        "invalid state"
                    )
                rule = AccessRule(
                    id=str(uuid.uuid4()),
                    share_id=share.id,
                    access_type=access_type,
                    access_to=access_to,
                    access_level=access_level or "rw",
                    state="queued_to_apply",
                    access_key=(
                        f"AQ{uuid.uuid4().hex}==" if access_type == "cephx" else None
                    ),
                    metadata={str(k): str(v) for k, v in (metadata or {}).items()},
                    created_at=self._stamp(),
                )
                self.rules_by_id[rule.id] = rule
                self._rules_by_share.setdefault(share.id, {})[rule.id] = None
                delay = self.config.delays.access_apply
                ops = scope.open(rule.created_at + delay, [share.id])
                self._begin(_RULE, rule, "active", delay, ops)
                return rule

    def deny_access(
        self, ctx: Context, share_id: str, access_id: typing.Any,
        allow_on_error_state: bool = False,
    ) -> None:
        """Remove an access rule (``deny_access`` action): gone after the delay."""
        with self.lock:
            self.settle()
            share = self.visible_share(ctx, share_id)
            with self._mutation(ctx, "access_deny", share.id) as scope:
                if not isinstance(access_id, str) or not access_id:
                    raise errors.bad_request("Required parameter access_id is empty.")
                rule = self.rules_by_id.get(access_id)
                if rule is None or rule.share_id != share.id:
                    raise errors.not_found(f"Access rule {access_id} not found.")
                self._authorize_share(ctx, share, "deny_access")
                if not share.host or share.status in ("deleting", "migrating_to") or (
                    share.status == "error" and not allow_on_error_state
                ):
                    raise errors.invalid_share(
                        "Access rules cannot be denied while the share, any of its replicas "
                        "or migration copies lacks a valid host or is in an invalid state"
                    )
                self._cancel(rule)
                rule.state = "queued_to_deny"
                rule.updated_at = self.now()
                delay = self.config.delays.access_apply
                ops = scope.open(self.now() + delay, [share.id])
                self._begin(_RULE, rule, None, delay, ops)

    def _remove_rule(self, rule: AccessRule) -> None:
        self.rules_by_id.pop(rule.id, None)
        members = self._rules_by_share.get(rule.share_id)
        if members is not None:
            members.pop(rule.id, None)
            if not members:
                del self._rules_by_share[rule.share_id]
        self._cancel(rule)

    def rules_of(self, share_id: str) -> list[AccessRule]:
        """Return the access rules of a share, oldest first."""
        with self.lock:
            self.settle()
            ids = self._rules_by_share.get(share_id, {})
            return [self.rules_by_id[i] for i in ids]

    def rule_state(self, rule: AccessRule) -> str:
        """Return the rule state shown now (``applying``/``denying`` mid-way)."""
        transition = rule.transition
        if transition is None:
            return rule.state
        span = transition.ready_at - transition.started_at
        # Second half of the delay: the share manager is working on the rule.
        if 0 < span < INFINITY and self.now() >= transition.started_at + span / 2:
            return "applying" if rule.state == "queued_to_apply" else "denying"
        return rule.state

    def set_rule_metadata(
        self, ctx: Context, access_id: str, metadata: typing.Any
    ) -> dict[str, str]:
        """``PUT /share-access-rules/{id}/metadata``: merge metadata of a rule."""
        with self.lock:
            self.settle()
            rule = self.visible_rule(ctx, access_id)
            with self._mutation(ctx, "access_metadata_set", rule.share_id) as scope:
                scope.status = 200
                _check_metadata(metadata)
                rule.metadata.update({str(k): str(v) for k, v in metadata.items()})
                rule.updated_at = self.now()
                return dict(rule.metadata)

    def delete_rule_metadata(self, ctx: Context, access_id: str, key: str) -> None:
        """``DELETE /share-access-rules/{id}/metadata/{key}``."""
        with self.lock:
            self.settle()
            rule = self.visible_rule(ctx, access_id)
            with self._mutation(ctx, "access_metadata_delete", rule.share_id) as scope:
                scope.status = 200
                if key not in rule.metadata:
                    raise errors.not_found(f"Metadata item {key} not found.")
                del rule.metadata[key]

    # -- metadata of shares and snapshots ----------------------------------------

    def _metadata_record(
        self, ctx: Context, owner: MetadataOwner, resource_id: str
    ) -> Share | Snapshot:
        if owner is SHARE_METADATA:
            return self.visible_share(ctx, resource_id, owner.not_found)
        return self.visible_snapshot(ctx, resource_id, message=owner.not_found)

    @staticmethod
    def _share_of(record: Share | Snapshot) -> str:
        return record.share_id if isinstance(record, Snapshot) else record.id

    def metadata(self, ctx: Context, owner: MetadataOwner, resource_id: str) -> dict[str, str]:
        """All metadata of a share or snapshot (``GET .../metadata``)."""
        with self.lock:
            self.settle()
            return dict(self._metadata_record(ctx, owner, resource_id).metadata)

    def set_metadata(
        self, ctx: Context, owner: MetadataOwner, resource_id: str, metadata: typing.Any,
        replace: bool,
    ) -> dict[str, str]:
        """Merge (POST) or replace (PUT) a share's or snapshot's metadata; returns the result."""
        with self.lock:
            self.settle()
            record = self._metadata_record(ctx, owner, resource_id)
            operation = f"{owner.operation}_metadata_{'replace' if replace else 'set'}"
            with self._mutation(ctx, operation, self._share_of(record)) as scope:
                scope.status = 200
                _check_metadata(metadata)
                _authorize(ctx, record.project_id, owner.update_policy)
                if replace:
                    record.metadata = {}
                record.metadata.update({str(k): str(v) for k, v in metadata.items()})
                return dict(record.metadata)

    def update_metadata_item(
        self, ctx: Context, owner: MetadataOwner, resource_id: str, key: str, item: typing.Any
    ) -> dict[str, str]:
        """``PUT .../metadata/{key}``: set one item."""
        with self.lock:
            self.settle()
            record = self._metadata_record(ctx, owner, resource_id)
            operation = f"{owner.operation}_metadata_set"
            with self._mutation(ctx, operation, self._share_of(record)) as scope:
                scope.status = 200
                _check_metadata(item)
                if key not in item:
                    raise errors.bad_request("Request body and URI mismatch")
                if len(item) > 1:
                    raise errors.bad_request("Request body contains too many items")
                _authorize(ctx, record.project_id, owner.update_policy)
                record.metadata[key] = str(item[key])
                return {key: record.metadata[key]}

    def delete_metadata(
        self, ctx: Context, owner: MetadataOwner, resource_id: str, key: str
    ) -> None:
        """``DELETE .../metadata/{key}``."""
        with self.lock:
            self.settle()
            record = self._metadata_record(ctx, owner, resource_id)
            operation = f"{owner.operation}_metadata_delete"
            with self._mutation(ctx, operation, self._share_of(record)) as scope:
                scope.status = 200
                _authorize(ctx, record.project_id, owner.delete_policy)
                if key not in record.metadata:
                    raise errors.not_found("Metadata item was not found.")
                del record.metadata[key]

    # -- direct helpers (no API rules, no conflicts) -------------------------

    def direct_create_share(
        self,
        project_id: str,
        size: int = 1,
        share_proto: str = "NFS",
        name: str | None = None,
        status: str = "available",
        share_type: str | None = None,
        share_network_id: str | None = None,
        metadata: dict[str, str] | None = None,
        is_public: bool = False,
        access_rules: typing.Iterable[typing.Any] | None = None,
        user_id: str | None = None,
        description: str | None = None,
        availability_zone: str | None = None,
    ) -> Share:
        """Create a share directly in ``status`` (no transition, no quota check)."""
        with self.lock:
            self.settle()
            chosen = (
                self.find_share_type(share_type)
                if share_type
                else self.share_types[self.default_share_type_id or ""]
            )
            if chosen is None:
                raise ValueError(f"unknown share type {share_type!r}")
            share = self._new_share(
                project_id=project_id,
                user_id=user_id or project_id,
                size=int(size),
                share_proto=share_proto.upper(),
                name=name,
                description=description,
                status=status,
                share_type=chosen,
                share_network_id=share_network_id,
                availability_zone=availability_zone or self.config.availability_zones[0],
                metadata={str(k): str(v) for k, v in (metadata or {}).items()},
                is_public=is_public,
                snapshot_id=None,
                host=self.config.backend_host,
            )
            if status == "available":
                self._ensure_export(share, share.created_at)
            for spec in access_rules or ():
                self._direct_rule(share, spec)
            return share

    def _direct_rule(self, share: Share, spec: typing.Any) -> AccessRule:
        if isinstance(spec, dict):
            access_type = spec["access_type"]
            access_to = spec["access_to"]
            level = spec.get("access_level", "rw")
            metadata = spec.get("metadata", {})
        else:
            access_type, access_to, *rest = spec
            level = rest[0] if rest else "rw"
            metadata = {}
        rule = AccessRule(
            id=str(uuid.uuid4()),
            share_id=share.id,
            access_type=access_type,
            access_to=access_to,
            access_level=level,
            state="active",
            access_key=None,
            metadata=dict(metadata),
            created_at=self._stamp(),
        )
        self.rules_by_id[rule.id] = rule
        self._rules_by_share.setdefault(share.id, {})[rule.id] = None
        return rule

    def direct_create_snapshot(
        self,
        share_id: str,
        status: str = "available",
        name: str | None = None,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        project_id: str | None = None,
    ) -> Snapshot:
        """Create a snapshot of ``share_id`` directly in ``status``."""
        with self.lock:
            self.settle()
            share = self.shares_by_id.get(share_id)
            if share is None:
                raise KeyError(share_id)
            return self._new_snapshot(
                share,
                project_id=project_id or share.project_id,
                user_id=project_id or share.user_id,
                name=name,
                description=description,
                status=status,
                metadata={str(k): str(v) for k, v in (metadata or {}).items()},
            )

    def set_share_status(self, share_id: str, status: str) -> None:
        """Force a share's status (cancels its pending transition)."""
        with self.lock:
            self.settle()
            share = self.shares_by_id[share_id]
            self._cancel(share)
            share.status = status
            share.updated_at = self.now()
            if status == "available":
                if not share.host:
                    share.host = self.config.backend_host
                self._ensure_export(share, self.now())

    def set_snapshot_status(self, snapshot_id: str, status: str) -> None:
        """Force a snapshot's status (cancels its pending transition)."""
        with self.lock:
            self.settle()
            snapshot = self.snapshots_by_id[snapshot_id]
            self._cancel(snapshot)
            snapshot.status = status
            snapshot.updated_at = self.now()

    def all_shares(self, project_id: str | None = None) -> list[Share]:
        """Return every share (of one project), oldest first."""
        with self.lock:
            self.settle()
            if project_id is None:
                return list(self.shares_by_id.values())
            ids = self._shares_by_project.get(project_id, {})
            return [self.shares_by_id[i] for i in ids]

    def all_snapshots(self, share_id: str | None = None) -> list[Snapshot]:
        """Return every snapshot (of one share), oldest first."""
        with self.lock:
            self.settle()
            if share_id is None:
                return list(self.snapshots_by_id.values())
            ids = self._snapshots_by_share.get(share_id, {})
            return [self.snapshots_by_id[i] for i in ids]


# -- helpers ------------------------------------------------------------------


def _is_int_like(value: typing.Any) -> bool:
    try:
        return str(int(value)) == str(value).strip()
    except (TypeError, ValueError):
        return False


_TRUE = ("1", "t", "true", "on", "y", "yes")
_FALSE = ("0", "f", "false", "off", "n", "no")


def _strict_bool(name: str, value: typing.Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise errors.bad_request(f"Invalid value '{value}' for {name}.")


def _authorize(ctx: Context, project_id: str, policy: str) -> None:
    if not (ctx.is_admin or project_id == ctx.project_id):
        raise errors.forbidden(f"Policy doesn't allow {policy} to be performed.")


def _check_metadata(metadata: typing.Any) -> None:
    """Validate metadata like Manila's ``check_metadata_properties``."""
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise errors.bad_request("Malformed request body")
    for key, value in metadata.items():
        if not key:
            raise errors.bad_request("Invalid metadata: Metadata property key is blank.")
        if len(str(key)) > 255:
            raise errors.bad_request(
                "Invalid metadata size: Metadata property key is greater than 255 characters."
            )
        if value is not None and len(str(value)) > 1023:
            raise errors.bad_request(
                "Invalid metadata size: Metadata property value is greater than 1023 "
                "characters."
            )


def _validate_access(
    access_type: typing.Any, access_to: typing.Any, enable_ceph: bool, enable_ipv6: bool
) -> None:
    allowed = ACCESS_TYPES if enable_ceph else ACCESS_TYPES[:3]
    if not access_type or not isinstance(access_type, str) or not access_to or not isinstance(
        access_to, str
    ):
        raise errors.bad_request("Required parameter access_type or access_to is empty.")
    if access_type not in allowed:
        names = ", ".join(f"'{a}'" for a in allowed)
        raise errors.bad_request(f"Only {names} access types are supported.")
    if access_type == "ip":
        try:
            network = ipaddress.ip_network(access_to, strict=False)
        except ValueError:
            raise errors.bad_request(
                f"Invalid IP access: {access_to} is not a valid IP address or CIDR."
            ) from None
        if network.version == 6 and not enable_ipv6:
            raise errors.bad_request(
                f"Invalid IP access: IPv6 is not supported before 2.38 ({access_to})."
            )
    elif access_type == "user":
        if not _USER_RE.match(access_to):
            raise errors.bad_request(
                "Invalid user or group name. Must be 4-255 characters and consist of "
                "alphanumeric characters and special characters $]{[_-.`;'}"
            )
    elif access_type == "cert":
        if len(access_to) > 64:
            raise errors.bad_request(
                "Invalid CN (common name). Must be 1-64 chars long."
            )
    elif access_type == "cephx" and not _CEPHX_RE.match(access_to):
        raise errors.bad_request(
            "Invalid cephx id: it may contain only letters, digits, '-', '_' and '.'."
        )


def _like(value: str | None, needle: str) -> bool:
    return value is not None and needle.lower() in value.lower()


def _metadata_matches(have: dict[str, str], wanted: dict[str, typing.Any]) -> bool:
    return all(key in have and have[key] == str(value) for key, value in wanted.items())


def _share_matches(share: Share, q: ShareQuery) -> bool:
    if q.name is not None and share.name != q.name:
        return False
    if q.name_like is not None and not _like(share.name, q.name_like):
        return False
    if q.description is not None and share.description != q.description:
        return False
    if q.description_like is not None and not _like(share.description, q.description_like):
        return False
    if q.status is not None and share.status != q.status:
        return False
    if q.snapshot_id is not None and share.snapshot_id != q.snapshot_id:
        return False
    if q.share_network_id is not None and share.share_network_id != q.share_network_id:
        return False
    if q.share_type_id is not None and share.share_type_id != q.share_type_id:
        return False
    if q.host is not None and share.host != q.host:
        return False
    if q.availability_zone is not None and share.availability_zone != q.availability_zone:
        return False
    if q.metadata and not _metadata_matches(share.metadata, q.metadata):
        return False
    if q.export_location_id is not None and share.export_location_id != q.export_location_id:
        return False
    return True


def _snapshot_matches(snapshot: Snapshot, q: SnapshotQuery) -> bool:
    if q.name is not None and snapshot.name != q.name:
        return False
    if q.name_like is not None and not _like(snapshot.name, q.name_like):
        return False
    if q.description is not None and snapshot.description != q.description:
        return False
    if q.description_like is not None and not _like(snapshot.description, q.description_like):
        return False
    if q.status is not None and snapshot.status != q.status:
        return False
    if q.size is not None and snapshot.size != q.size:
        return False
    if q.metadata and not _metadata_matches(snapshot.metadata, q.metadata):
        return False
    return True


_SHARE_ATTRS = {
    "name": "name", "display_name": "name", "display_description": "description",
    "share_type": "share_type_id", "share_network": "share_network_id",
    "snapshot": "snapshot_id", "availability_zone_id": "availability_zone",
}
_SNAPSHOT_ATTRS = {
    "display_name": "name", "display_description": "description", "progress": "status",
}


def _nullable(value: typing.Any) -> tuple[bool, typing.Any]:
    return (value is not None, value if value is not None else "")


def _share_sort_key(sort_key: str) -> typing.Callable[[Share], typing.Any]:
    attr = _SHARE_ATTRS.get(sort_key, sort_key)
    if attr == "created_at":
        return lambda s: s.created_at
    return lambda s: (_nullable(getattr(s, attr)), s.created_at)


def _snapshot_sort_key(sort_key: str) -> typing.Callable[[Snapshot], typing.Any]:
    attr = _SNAPSHOT_ATTRS.get(sort_key, sort_key)
    if attr == "created_at":
        return lambda s: s.created_at
    return lambda s: (_nullable(getattr(s, attr)), s.created_at)
