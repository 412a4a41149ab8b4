"""The protection core: protect (snapshot), restore (new share or revert), delete, verify.

Explicit signatures and frozen dataclasses; no Karbor, RPC, lock or journal
here.  Karbor's hooks (``protection.py``) and the worker both call this.

Idempotency: given a ``job_tag``, protect tags its snapshot (snapshot metadata
at microversion >= 2.73, a marker in the description below) and restore tags the
new share (share metadata); before creating anything each looks for a resource
carrying its tag and adopts it.  A repeated or resumed job therefore never makes
a second snapshot or share.
"""

from __future__ import annotations

import dataclasses
import logging
import typing

from manila_protector import exception
from manila_protector.plugins import manila_client
from manila_protector.plugins import schemas
from manila_protector.plugins import statuses
from manila_protector.plugins import waiting

LOG = logging.getLogger(__name__)

#: Metadata key (snapshot and share) holding the tag of the job that made it.
JOB_TAG_KEY = "manila_protector_job"
_DESCRIPTION_MARKER = "[" + JOB_TAG_KEY + "={tag}]"

_SHARE_READY = waiting.StatusSets(
    ready=frozenset({statuses.SHARE_AVAILABLE}),
    pending=statuses.SHARE_TRANSITIONAL,
    failed=statuses.SHARE_UNPROTECTABLE,
)
_NEW_SHARE_READY = waiting.StatusSets(
    ready=frozenset({statuses.SHARE_AVAILABLE}),
    pending=frozenset({"creating", "creating_from_snapshot"}),
    failed=statuses.SHARE_CREATE_FAILED | {waiting.GONE},
)
_REVERT_DONE = waiting.StatusSets(
    ready=frozenset({statuses.SHARE_AVAILABLE}),
    pending=frozenset({"reverting"}),
    failed=frozenset({"reverting_error", "error", waiting.GONE}),
)
_SNAPSHOT_READY = waiting.StatusSets(
    ready=frozenset({statuses.SNAPSHOT_AVAILABLE}),
    pending=statuses.SNAPSHOT_CREATING | statuses.SNAPSHOT_BUSY,
    failed=statuses.SNAPSHOT_FAILED | {waiting.GONE},
)
_SNAPSHOT_SETTLED = waiting.StatusSets(
    ready=statuses.SNAPSHOT_DELETABLE | statuses.SNAPSHOT_DELETING | {waiting.GONE},
    pending=statuses.SNAPSHOT_CREATING | statuses.SNAPSHOT_BUSY,
    failed=statuses.SNAPSHOT_DELETE_FAILED,
)
_SNAPSHOT_GONE = waiting.StatusSets(
    ready=frozenset({waiting.GONE}),
    pending=statuses.SNAPSHOT_DELETING,
    failed=statuses.SNAPSHOT_DELETE_FAILED,
)
_RULES_SETTLED = waiting.StatusSets(
    ready=frozenset({statuses.ACCESS_RULE_ACTIVE}),
    pending=statuses.SHARE_ACCESS_RULES_SYNCING,
    failed=frozenset({"error"}),
)
_SHARE_GONE = waiting.StatusSets(
    ready=frozenset({waiting.GONE}),
    pending=frozenset({"deleting", "deferred_deleting"}),
    failed=frozenset({"error_deleting", "error_deferred_deleting"}),
)


# -- requests and results ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who asks: a share or snapshot of another project is refused unless ``is_admin``.

    Manila enforces this itself for a member's token; the check matters where the
    worker acts with service credentials or Manila runs without keystone.
    """

    project_id: str | None
    is_admin: bool = False

    def check(self, owner_project_id: str | None, what: str) -> None:
        """:raises exception.NotAuthorized: ``what`` belongs to another project."""
        if self.is_admin or owner_project_id is None:
            return
        if owner_project_id != self.project_id:
            raise exception.NotAuthorized(
                f"{what} is not in project {self.project_id}; only an administrator may act "
                "on another project's shares",
                details={"project_id": self.project_id},
            )


@dataclasses.dataclass(frozen=True)
class ProtectOptions:
    """A protect request's options (the spec's OPTIONS_SCHEMA)."""

    snapshot_name: str
    description: str
    force: bool = False

    @classmethod
    def from_parameters(cls, parameters: typing.Any) -> ProtectOptions:
        """Validate Karbor/RPC parameters (string booleans accepted).

        :raises exception.InvalidRequest: a schema violation, naming field and rule.
        """
        params = schemas.validate(schemas.OPTIONS_SCHEMA, parameters, "parameters")
        return cls(
            snapshot_name=params["snapshot_name"],
            description=params["description"],
            force=params["force"],
        )


@dataclasses.dataclass(frozen=True)
class RestoreOptions:
    """A restore request's options (the spec's RESTORE_SCHEMA)."""

    target_share_id: str | None = None
    name: str | None = None
    description: str | None = None
    restore_access_rules: bool = True

    @classmethod
    def from_parameters(cls, parameters: typing.Any) -> RestoreOptions:
        """Validate Karbor/RPC restore parameters.

        :raises exception.InvalidRequest: a schema violation, naming field and rule.
        """
        params = schemas.validate(schemas.RESTORE_SCHEMA, parameters, "parameters")
        return cls(
            target_share_id=params.get("share_id") or None,
            name=params.get("restore_name"),
            description=params.get("restore_description"),
            restore_access_rules=params.get("restore_access_rules", True),
        )


@dataclasses.dataclass(frozen=True)
class SavedInfo:
    """What protect records so that restore, verify and delete can work later."""

    snapshot_id: str
    share_id: str
    size: int
    share_proto: str
    share_type: str | None = None
    share_network_id: str | None = None
    availability_zone: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    access_rules: tuple[manila_client.AccessRule, ...] = ()
    snapshot_name: str | None = None
    created_at: str | None = None
    job_tag: str | None = None

    def to_dict(self) -> dict[str, typing.Any]:
        return {
            "snapshot_id": self.snapshot_id,
            "share_id": self.share_id,
            "size": self.size,
            "share_proto": self.share_proto,
            "share_type": self.share_type,
            "share_network_id": self.share_network_id,
            "availability_zone": self.availability_zone,
            "metadata": dict(self.metadata),
            "access_rules": [rule.to_dict() for rule in self.access_rules],
            "snapshot_name": self.snapshot_name,
            "created_at": self.created_at,
            "job_tag": self.job_tag,
        }

    @classmethod
    def from_dict(cls, data: typing.Any) -> SavedInfo:
        """Validate and load saved info (as stored in a checkpoint or sent over RPC).

        :raises exception.InvalidRequest: a schema violation, naming field and rule.
        """
        data = schemas.validate(schemas.SAVED_INFO_SCHEMA, data, "saved_info")
        return cls(
            snapshot_id=data["snapshot_id"],
            share_id=data["share_id"],
            size=data["size"],
            share_proto=data["share_proto"],
            share_type=data.get("share_type"),
            share_network_id=data.get("share_network_id"),
            availability_zone=data.get("availability_zone"),
            metadata=tuple(sorted((data.get("metadata") or {}).items())),
            access_rules=tuple(manila_client.AccessRule.from_dict(r)
                               for r in data.get("access_rules") or ()),
            snapshot_name=data.get("snapshot_name"),
            created_at=data.get("created_at"),
            job_tag=data.get("job_tag"),
        )


@dataclasses.dataclass(frozen=True)
class RestoreResult:
    """The share a restore produced (a new one, or the original after a revert)."""

    share_id: str
    mode: str  # "new_share" or "revert"
    status: str
    name: str | None
    size: int | None
    share_proto: str | None
    share_type: str | None
    access_rules: tuple[manila_client.AccessRule, ...] = ()

    def to_dict(self) -> dict[str, typing.Any]:
        return {
            "share_id": self.share_id,
            "mode": self.mode,
            "status": self.status,
            "name": self.name,
            "size": self.size,
            "share_proto": self.share_proto,
            "share_type": self.share_type,
            "access_rules": [rule.to_dict() for rule in self.access_rules],
        }


@dataclasses.dataclass(frozen=True)
class DeleteResult:
    """The outcome of a delete: whether the snapshot was still there to delete."""

    snapshot_id: str
    already_gone: bool

    def to_dict(self) -> dict[str, typing.Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class VerifyResult:
    """A verified snapshot."""

    snapshot_id: str
    share_id: str
    status: str
    size: int | None

    def to_dict(self) -> dict[str, typing.Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Timeouts:
    """The deadline of each operation, in seconds (all waits of an operation share it)."""

    protect: float = 3600.0
    restore: float = 3600.0
    delete: float = 1800.0
    verify: float = 300.0


# -- the core ---------------------------------------------------------------------


class _Polled:
    """A wait's status function that keeps what it last read.

    The wait's final read is the resource in its final state; keeping it spares
    the GET that would otherwise follow every wait.
    """

    def __init__(self, get: typing.Callable[[], dict[str, typing.Any]]) -> None:
        self._get = get
        self.last: dict[str, typing.Any] = {}

    def __call__(self) -> str:
        try:
            self.last = self._get()
        except exception.NotFound:
            self.last = {}
            return waiting.GONE
        return self.last["status"]


class ShareProtector:
    """Protects, restores, deletes and verifies share snapshots.

    :param manila: the client acting for the caller.
    :param waiter: how to poll.
    :param timeouts: each operation's deadline.
    """

    def __init__(
        self,
        manila: manila_client.ManilaClient,
        waiter: waiting.Waiter,
        timeouts: Timeouts = Timeouts(),
    ) -> None:
        self._manila = manila
        self._waiter = waiter
        self._timeouts = timeouts

    # -- helpers ----------------------------------------------------------------

    def _deadline(self, seconds: float) -> waiting.Deadline:
        return waiting.Deadline(self._waiter.clock, seconds)

    def _share_status(self, share_id: str) -> _Polled:
        return _Polled(lambda: self._manila.get_share(share_id))

    def _snapshot_status(self, snapshot_id: str) -> _Polled:
        return _Polled(lambda: self._manila.get_snapshot(snapshot_id))

    def _wait(self, fetch: typing.Callable[[], str], sets: waiting.StatusSets,
              deadline: waiting.Deadline, what: str) -> str:
        return self._waiter.wait(fetch, sets, deadline, what)

    # -- protect ----------------------------------------------------------------

    def protect(
        self,
        share_id: str,
        options: ProtectOptions,
        *,
        job_tag: str | None = None,
        caller: Caller | None = None,
    ) -> SavedInfo:
        """Snapshot a share and return what a restore needs.

        Waits (bounded) for the share to be ``available``; adopts a snapshot
        already tagged with ``job_tag``; a snapshot that ends in ``error`` is
        deleted and the operation fails.

        :param caller: when given, the share must be the caller's (or the caller an admin).
        :raises exception.NotAuthorized: the share is another project's.
        :raises exception.InvalidStatus: the share cannot be protected.
        :raises exception.OperationFailed: the snapshot ended in an error status.
        :raises exception.DeadlineExceeded: the deadline passed.
        """
        deadline = self._deadline(self._timeouts.protect)
        share = self._manila.get_share(share_id)
        if caller is not None:
            caller.check(share.get("project_id"), f"share {share_id}")
        if share["status"] != statuses.SHARE_AVAILABLE:
            polled_share = self._share_status(share_id)
            status = self._wait(polled_share, _SHARE_READY, deadline, f"share {share_id}")
            if status not in _SHARE_READY.ready:
                raise exception.InvalidStatus(
                    f"share {share_id} is {status!r} and cannot be protected",
                    details={"share_id": share_id, "status": status},
                )
            share = polled_share.last

        snapshot = self._find_tagged_snapshot(share_id, job_tag) if job_tag else None
        if snapshot is not None:
            LOG.info("share %s: adopting snapshot %s made earlier by job %s",
                     share_id, snapshot["id"], job_tag)
        else:
            snapshot = self._manila.create_snapshot(
                share_id=share_id,
                force=options.force,
                name=options.snapshot_name,
                # The tag goes into the description only where snapshots have no metadata:
                # otherwise the user's description stays theirs.
                description=(options.description if self._manila.supports_snapshot_metadata
                             else self._tagged_description(options.description, job_tag)),
                metadata={JOB_TAG_KEY: job_tag} if job_tag else None,
            )
            LOG.info("share %s: snapshot %s requested", share_id, snapshot["id"])

        snapshot_id = snapshot["id"]
        polled = self._snapshot_status(snapshot_id)
        status = self._wait(polled, _SNAPSHOT_READY, deadline,
                            f"snapshot {snapshot_id} of share {share_id}")
        if status not in _SNAPSHOT_READY.ready:
            self._discard_snapshot(snapshot_id, deadline)
            raise exception.OperationFailed(
                f"snapshot {snapshot_id} of share {share_id} ended in status {status!r}; "
                "it was deleted",
                details={"share_id": share_id, "snapshot_id": snapshot_id, "status": status},
            )
        snapshot = polled.last
        rules = self._saved_rules(share_id)
        return SavedInfo(
            snapshot_id=snapshot_id,
            share_id=share_id,
            size=int(snapshot.get("size") or share["size"]),
            share_proto=share["share_proto"],
            share_type=share.get("share_type"),
            share_network_id=share.get("share_network_id"),
            availability_zone=share.get("availability_zone"),
            metadata=tuple(sorted((share.get("metadata") or {}).items())),
            access_rules=rules,
            snapshot_name=snapshot.get("name"),
            created_at=snapshot.get("created_at"),
            job_tag=job_tag,
        )

    @staticmethod
    def _tagged_description(description: str, job_tag: str | None) -> str:
        if not job_tag:
            return description
        marker = _DESCRIPTION_MARKER.format(tag=job_tag)
        return f"{description} {marker}" if description else marker

    def _find_tagged_snapshot(self, share_id: str, job_tag: str) -> dict[str, typing.Any] | None:
        marker = _DESCRIPTION_MARKER.format(tag=job_tag)
        for snap in self._manila.list_snapshots(share_id):
            if (snap.get("metadata") or {}).get(JOB_TAG_KEY) == job_tag:
                return snap
            if marker in (snap.get("description") or ""):
                return snap
        return None

    def _saved_rules(self, share_id: str) -> tuple[manila_client.AccessRule, ...]:
        rules = []
        for rule in self._manila.list_access_rules(share_id):
            state = rule.get("state") or rule.get("status") or statuses.ACCESS_RULE_ACTIVE
            if state in statuses.ACCESS_RULE_FAILED:
                continue  # a rule being denied or broken is not part of the share's access
            rules.append(manila_client.AccessRule(
                access_type=rule["access_type"],
                access_to=rule["access_to"],
                access_level=rule["access_level"],
                metadata=tuple(sorted((rule.get("metadata") or {}).items())),
            ))
        return tuple(sorted(rules, key=lambda r: (r.access_type, r.access_to, r.access_level)))

    def _discard_snapshot(self, snapshot_id: str, deadline: waiting.Deadline) -> None:
        """Delete a failed snapshot so nothing is left behind (best effort within the deadline)."""
        try:
            self._manila.delete_snapshot(snapshot_id)
            self._wait(self._snapshot_status(snapshot_id), _SNAPSHOT_GONE, deadline,
                       f"failed snapshot {snapshot_id}")
        except exception.NotFound:
            pass
        except exception.ProtectorError as exc:
            LOG.warning("could not delete failed snapshot %s: %s", snapshot_id, exc)

    # -- restore ----------------------------------------------------------------

    def restore(
        self,
        saved: SavedInfo,
        options: RestoreOptions,
        *,
        job_tag: str | None = None,
        caller: Caller | None = None,
    ) -> RestoreResult:
        """Restore from a snapshot: a new share, or a revert of the original in place.

        :param caller: when given, the snapshot must be the caller's (or the caller an admin).
        :raises exception.InvalidRequest: ``share_id`` names another share, or the
            snapshot is not the saved share's.
        :raises exception.NotAuthorized: the snapshot is another project's.
        :raises exception.Unsupported: revert needs microversion 2.27.
        :raises exception.Conflict: revert to a snapshot that is not the latest.
        :raises exception.OperationFailed: the new share (or the revert) ended in error.
        :raises exception.DeadlineExceeded: the deadline passed.
        """
        if options.target_share_id and options.target_share_id != saved.share_id:
            raise exception.InvalidRequest(
                f"restore into share {options.target_share_id} refused: snapshot "
                f"{saved.snapshot_id} belongs to share {saved.share_id}; Manila can only revert "
                "a share to its own snapshot (omit share_id to restore into a new share)",
                details={"field": "parameters.share_id", "rule": "own_share"},
            )
        if options.target_share_id and not self._manila.supports_revert:
            raise exception.Unsupported(
                f"revert in place needs Manila API microversion 2.27; this Manila offers "
                f"{self._manila.version.get_string()}"
            )
        snapshot = self._saved_snapshot(saved, caller)
        if snapshot["status"] != statuses.SNAPSHOT_AVAILABLE:
            raise exception.InvalidStatus(
                f"snapshot {saved.snapshot_id} is {snapshot['status']!r}; a restore needs it "
                "'available'",
                details={"snapshot_id": saved.snapshot_id, "status": snapshot["status"]},
            )
        if options.target_share_id:
            return self._revert(saved)
        return self._restore_new(saved, options, job_tag)

    def _saved_snapshot(self, saved: SavedInfo, caller: Caller | None) -> dict[str, typing.Any]:
        """The saved snapshot, checked to be the saved share's and the caller's."""
        snapshot = self._manila.get_snapshot(saved.snapshot_id)
        if snapshot["share_id"] != saved.share_id:
            raise exception.InvalidRequest(
                f"snapshot {saved.snapshot_id} belongs to share {snapshot['share_id']}, "
                f"not {saved.share_id}",
                details={"field": "saved_info.share_id", "rule": "snapshot_owner"},
            )
        if caller is not None:
            caller.check(snapshot.get("project_id"), f"snapshot {saved.snapshot_id}")
        return snapshot

    def _revert(self, saved: SavedInfo) -> RestoreResult:
        deadline = self._deadline(self._timeouts.restore)
        latest = max(
            self._manila.list_snapshots(saved.share_id),
            key=lambda s: (s.get("created_at") or "", s["id"]),
            default=None,
        )
        if latest is not None and latest["id"] != saved.snapshot_id:
            raise exception.Conflict(
                f"cannot revert share {saved.share_id} to snapshot {saved.snapshot_id}: Manila "
                f"reverts a share only to its latest snapshot, which is {latest['id']}; "
                "restore into a new share instead (omit share_id)",
                details={"latest_snapshot_id": latest["id"]},
            )
        # Manila refuses a revert (409) while the share's access rules are syncing:
        # let them settle first, within the same deadline.
        rules = self._wait(
            lambda: self._manila.get_share(saved.share_id).get("access_rules_status")
            or statuses.ACCESS_RULE_ACTIVE,
            _RULES_SETTLED, deadline, f"access rules of share {saved.share_id}")
        if rules != statuses.ACCESS_RULE_ACTIVE:
            raise exception.InvalidStatus(
                f"share {saved.share_id}'s access rules are {rules!r}; Manila cannot revert it "
                "until they are fixed",
                details={"share_id": saved.share_id, "access_rules_status": rules},
            )
        self._manila.revert_share(saved.share_id, saved.snapshot_id)
        polled = self._share_status(saved.share_id)
        status = self._wait(polled, _REVERT_DONE, deadline,
                            f"share {saved.share_id} reverting to {saved.snapshot_id}")
        if status not in _REVERT_DONE.ready:
            raise exception.OperationFailed(
                f"revert of share {saved.share_id} to snapshot {saved.snapshot_id} ended in "
                f"status {status!r}",
                details={"share_id": saved.share_id, "status": status},
            )
        return self._result(polled.last, "revert", saved.access_rules)

    def _restore_new(
        self, saved: SavedInfo, options: RestoreOptions, job_tag: str | None
    ) -> RestoreResult:
        deadline = self._deadline(self._timeouts.restore)
        share = None
        if job_tag:
            found = self._manila.find_shares_by_metadata({JOB_TAG_KEY: job_tag})
            share = found[0] if found else None
            if share is not None:
                LOG.info("snapshot %s: adopting share %s restored earlier by job %s",
                         saved.snapshot_id, share["id"], job_tag)
        if share is None:
            metadata = dict(saved.metadata)
            if job_tag:
                metadata[JOB_TAG_KEY] = job_tag
            share = self._manila.create_share(
                share_proto=saved.share_proto,
                size=saved.size,
                snapshot_id=saved.snapshot_id,
                name=options.name,
                description=options.description,
                metadata=metadata,
                share_network_id=saved.share_network_id,
                share_type=saved.share_type,
                availability_zone=saved.availability_zone,
            )
            LOG.info("snapshot %s: restoring into new share %s", saved.snapshot_id, share["id"])
        share_id = share["id"]
        polled = self._share_status(share_id)
        status = self._wait(polled, _NEW_SHARE_READY, deadline, f"restored share {share_id}")
        if status not in _NEW_SHARE_READY.ready:
            self._discard_share(share_id, deadline)
            raise exception.OperationFailed(
                f"share {share_id} restored from snapshot {saved.snapshot_id} ended in status "
                f"{status!r}; it was deleted",
                details={"share_id": share_id, "status": status},
            )
        applied: tuple[manila_client.AccessRule, ...] = ()
        if options.restore_access_rules and saved.access_rules:
            try:
                applied = self._apply_rules(share_id, saved.access_rules, deadline)
            except exception.ProtectorError:
                self._discard_share(share_id, deadline)
                raise
        # Re-applying access rules changes the share's access_rules_status, nothing the
        # result reports: the share as the wait last read it is the result.
        return self._result(polled.last, "new_share", applied)

    def _apply_rules(
        self,
        share_id: str,
        rules: tuple[manila_client.AccessRule, ...],
        deadline: waiting.Deadline,
    ) -> tuple[manila_client.AccessRule, ...]:
        """Allow each saved rule not yet present, then wait until all are active."""
        def key(rule: typing.Mapping[str, typing.Any]) -> tuple[str, str, str]:
            return (rule["access_type"], rule["access_to"], rule["access_level"])

        present = {key(r) for r in self._manila.list_access_rules(share_id)}
        for rule in rules:
            if key(rule.to_dict()) not in present:
                self._manila.allow_access(share_id, rule)
        wanted = {key(r.to_dict()) for r in rules}

        def fetch() -> str:
            states = {key(r): (r.get("state") or statuses.ACCESS_RULE_ACTIVE)
                      for r in self._manila.list_access_rules(share_id)}
            failed = sorted(k for k in wanted
                            if states.get(k) in statuses.ACCESS_RULE_FAILED or k not in states)
            if failed:
                return "error"
            if all(states[k] == statuses.ACCESS_RULE_ACTIVE for k in wanted):
                return statuses.ACCESS_RULE_ACTIVE
            return "applying"

        status = self._wait(
            fetch,
            waiting.StatusSets(ready=frozenset({statuses.ACCESS_RULE_ACTIVE}),
                               pending=frozenset({"applying"}), failed=frozenset({"error"})),
            deadline,
            f"access rules of restored share {share_id}",
        )
        if status != statuses.ACCESS_RULE_ACTIVE:
            raise exception.OperationFailed(
                f"access rules could not be re-applied to restored share {share_id}; the share "
                "was deleted (restore with restore_access_rules=false to skip them)",
                details={"share_id": share_id},
            )
        return rules

    def _discard_share(self, share_id: str, deadline: waiting.Deadline) -> None:
        """Delete a failed restored share so nothing is left behind (best effort)."""
        try:
            self._manila.delete_share(share_id)
            self._wait(self._share_status(share_id), _SHARE_GONE, deadline,
                       f"failed restored share {share_id}")
        except exception.NotFound:
            pass
        except exception.ProtectorError as exc:
            LOG.warning("could not delete failed restored share %s: %s", share_id, exc)

    @staticmethod
    def _result(share: typing.Mapping[str, typing.Any], mode: str,
                rules: tuple[manila_client.AccessRule, ...]) -> RestoreResult:
        return RestoreResult(
            share_id=share["id"],
            mode=mode,
            status=share["status"],
            name=share.get("name"),
            size=share.get("size"),
            share_proto=share.get("share_proto"),
            share_type=share.get("share_type"),
            access_rules=rules,
        )

    # -- delete -----------------------------------------------------------------

    def delete(self, saved: SavedInfo, *, caller: Caller | None = None) -> DeleteResult:
        """Delete the snapshot and wait until it is gone; already gone is success.

        :param caller: when given, the snapshot must be the caller's (or the caller an admin).
        :raises exception.InvalidRequest: the snapshot belongs to another share.
        :raises exception.NotAuthorized: the snapshot is another project's.
        :raises exception.OperationFailed: Manila failed to delete it.
        :raises exception.DeadlineExceeded: the deadline passed.
        """
        deadline = self._deadline(self._timeouts.delete)
        what = f"snapshot {saved.snapshot_id}"
        try:
            snapshot = self._saved_snapshot(saved, caller)
        except exception.NotFound:
            return DeleteResult(saved.snapshot_id, already_gone=True)
        status = snapshot["status"]
        if status not in statuses.SNAPSHOT_DELETABLE | statuses.SNAPSHOT_DELETING:
            # Manila refuses to delete a snapshot being made or read: let it settle.
            status = self._wait(self._snapshot_status(saved.snapshot_id), _SNAPSHOT_SETTLED,
                                deadline, what)
        if status == waiting.GONE:
            return DeleteResult(saved.snapshot_id, already_gone=True)
        if status in statuses.SNAPSHOT_DELETABLE:
            try:
                self._manila.delete_snapshot(saved.snapshot_id)
            except exception.NotFound:
                return DeleteResult(saved.snapshot_id, already_gone=True)
        status = self._wait(self._snapshot_status(saved.snapshot_id), _SNAPSHOT_GONE, deadline,
                            what)
        if status != waiting.GONE:
            raise exception.OperationFailed(
                f"{what} could not be deleted: status {status!r}",
                details={"snapshot_id": saved.snapshot_id, "status": status},
            )
        return DeleteResult(saved.snapshot_id, already_gone=False)

    # -- verify -----------------------------------------------------------------

    def verify(self, saved: SavedInfo, *, caller: Caller | None = None) -> VerifyResult:
        """Check that the snapshot exists, belongs to the share and is ``available``.

        :param caller: when given, the snapshot must be the caller's (or the caller an admin).
        :raises exception.NotFound: the snapshot is gone.
        :raises exception.NotAuthorized: the snapshot is another project's.
        :raises exception.InvalidStatus: the snapshot is not available.
        """
        snapshot = self._saved_snapshot(saved, caller)
        if snapshot["status"] != statuses.SNAPSHOT_AVAILABLE:
            raise exception.InvalidStatus(
                f"snapshot {saved.snapshot_id} is {snapshot['status']!r}, not 'available'",
                details={"snapshot_id": saved.snapshot_id, "status": snapshot["status"]},
            )
        return VerifyResult(
            snapshot_id=saved.snapshot_id,
            share_id=saved.share_id,
            status=snapshot["status"],
            size=snapshot.get("size"),
        )
