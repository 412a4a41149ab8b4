"""The protection core: protect (snapshot), restore (new share or revert), delete, verify.

Explicit signatures and frozen dataclasses; no Karbor, RPC, lock or journal
here.  Karbor's hooks (``protection.py``) and the worker both call this.

Idempotency: given a ``job_tag``, protect tags its snapshot (snapshot metadata
at microversion >= 2.73, a marker in the description below) and restore tags the
new share (share metadata); before creating anything each looks for a resource
carrying its tag and adopts it.  A repeated or resumed job therefore never makes
a second snapshot or share.

Faults: reads are retried after a 5xx, a timeout or a broken connection until
the operation's deadline.  A create whose answer is lost may still have been
carried out, so before sending it again the tag is looked up; and a job that
fails after its snapshot (or restored share) exists deletes it, so a failed
job leaves nothing behind for a resend to duplicate.  Where that cleanup
cannot finish (Manila unreachable, the cleanup deadline passed) the error
names the resource left (``details``: ``cleaned_up`` false).

An optional *guard* runs before every mutating request: the worker passes one
that proves it still holds the share's lock.
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

_T = typing.TypeVar("_T")

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
_OTHERS_SETTLED = waiting.StatusSets(
    ready=frozenset({"settled", "mine"}),
    pending=frozenset({"busy"}),
)
#: Another job's snapshot in one of these is a Manila operation in flight on the
#: share: a protect waits for it before making its own.
_SNAPSHOT_IN_FLIGHT = (statuses.SNAPSHOT_CREATING | statuses.SNAPSHOT_BUSY
                       | statuses.SNAPSHOT_DELETING)
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
    #: How long a failed job may spend deleting the snapshot or share it made.
    cleanup: float = 300.0


#: Sends of one create or delete request whose answers were lost (5xx, timeout).
REQUEST_ATTEMPTS = 3


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
    :param guard: called with a description before every mutating request; it
        raises (e.g. :class:`exception.LockUnavailable`) to stop the request.
    """

    def __init__(
        self,
        manila: manila_client.ManilaClient,
        waiter: waiting.Waiter,
        timeouts: Timeouts = Timeouts(),
        guard: typing.Callable[[str], None] | None = None,
    ) -> None:
        self._manila = manila
        self._waiter = waiter
        self._timeouts = timeouts
        self._guard = guard

    # -- helpers ----------------------------------------------------------------

    def _deadline(self, seconds: float) -> waiting.Deadline:
        return waiting.Deadline(self._waiter.clock, seconds)

    def _share_status(self, share_id: str) -> _Polled:
        return _Polled(lambda: self._manila.get_share(share_id))

    def _snapshot_status(self, snapshot_id: str) -> _Polled:
        return _Polled(lambda: self._manila.get_snapshot(snapshot_id))

    def _wait(self, fetch: typing.Callable[[], str], sets: waiting.StatusSets,
              deadline: waiting.Deadline, what: str, *, changed: bool = False) -> str:
        return self._waiter.wait(fetch, sets, deadline, what, changed=changed)

    def _read(self, call: typing.Callable[[], _T], deadline: waiting.Deadline,
              what: str) -> _T:
        """An idempotent request, retried after retryable errors until the deadline."""
        return self._waiter.retry(call, deadline, what)

    def _mutate(self, what: str, call: typing.Callable[[], _T]) -> _T:
        """A mutating request, sent only once the guard allows it.

        A refusal by the guard is marked (``details.refused_before``): no request
        was sent, and it is not retried here.
        """
        if self._guard is not None:
            try:
                self._guard(what)
            except exception.ProtectorError as exc:
                exc.details["refused_before"] = what
                raise
        return call()

    @staticmethod
    def _answer_lost(exc: exception.ProtectorError) -> bool:
        """Whether a mutating request failed in a way that may hide that Manila acted."""
        return exc.retryable and "refused_before" not in exc.details

    def _resend(self, attempt: typing.Callable[[], _T], deadline: waiting.Deadline,
                what: str) -> _T:
        """Run ``attempt`` again after lost answers, at most REQUEST_ATTEMPTS times."""
        return self._waiter.retry(attempt, deadline, what, attempts=REQUEST_ATTEMPTS,
                                  retry_if=self._answer_lost)

    def _create(
        self,
        what: str,
        create: typing.Callable[[], dict[str, typing.Any]],
        find: typing.Callable[[], dict[str, typing.Any] | None] | None,
        deadline: waiting.Deadline,
    ) -> tuple[dict[str, typing.Any], bool]:
        """Send a create request; after a lost answer, adopt what it made or send it again.

        A 5xx or a timeout does not prove that Manila did nothing: before each
        new attempt ``find`` (a tag lookup) looks for what an earlier one made.
        Without ``find`` the first error is raised.

        :returns: the resource, and whether an answer was lost on the way (another
            attempt might still surface later: the caller removes duplicates).
        """
        if find is None:
            return self._mutate(what, create), False
        lost = False

        def attempt() -> dict[str, typing.Any]:
            nonlocal lost
            if lost:
                found = find()
                if found is not None:
                    LOG.info("%s: an earlier request's answer was lost but Manila made %s; "
                             "adopting it", what, found["id"])
                    return found
            try:
                return self._mutate(what, create)
            except exception.ProtectorError as exc:
                lost = lost or self._answer_lost(exc)
                raise

        try:
            return self._resend(attempt, deadline, what), lost
        except exception.ProtectorError:
            if not lost:
                raise
            # The last answer was lost too: one more look, so that nothing made is missed.
            cleanup = self._deadline(self._timeouts.cleanup)
            try:
                found = self._read(find, cleanup, f"looking for the {what}")
            except exception.ProtectorError:
                found = None
            if found is None:
                raise
            LOG.info("%s: adopting %s, made by a request whose answer was lost", what,
                     found["id"])
            return found, True

    def _request_deletion(
        self,
        what: str,
        delete: typing.Callable[[], None],
        status: typing.Callable[[], str],
        deletable: frozenset[str],
        deadline: waiting.Deadline,
    ) -> None:
        """Send a delete request; after a lost answer, send it again only if Manila did not act.

        :raises exception.NotFound: the resource is gone.
        :raises exception.ProtectorError: the request failed ``REQUEST_ATTEMPTS``
            times, or for good.
        """
        lost = False

        def attempt() -> None:
            nonlocal lost
            if lost and status() not in deletable:
                return  # deleting, or gone: an earlier request was carried out
            try:
                self._mutate(what, delete)
            except exception.ProtectorError as exc:
                lost = lost or self._answer_lost(exc)
                raise

        self._resend(attempt, deadline, what)

    @staticmethod
    def _left_behind(exc: exception.ProtectorError, key: str, resource_id: str,
                     cleaned_up: bool) -> None:
        """Record in a failure what the job made and whether it was deleted."""
        exc.details.setdefault(key, resource_id)
        exc.details["cleaned_up"] = cleaned_up

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
        already tagged with ``job_tag``; when the protect fails once its snapshot
        exists (it ended in ``error``, the deadline passed, Manila stayed
        unreachable) the snapshot is deleted.

        :param caller: when given, the share must be the caller's (or the caller an admin).
        :raises exception.NotAuthorized: the share is another project's.
        :raises exception.InvalidStatus: the share cannot be protected.
        :raises exception.OperationFailed: the snapshot ended in an error status.
        :raises exception.DeadlineExceeded: the deadline passed.
        """
        deadline = self._deadline(self._timeouts.protect)
        share = self._read(lambda: self._manila.get_share(share_id), deadline,
                           f"reading share {share_id}")
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

        snapshot = self._own_snapshot_once_settled(share_id, job_tag, deadline) if job_tag \
            else None
        lost = False
        adopted = snapshot is not None
        if adopted:
            LOG.info("share %s: adopting snapshot %s made earlier by job %s",
                     share_id, snapshot["id"], job_tag)
        else:
            snapshot, lost = self._create(
                f"snapshot of share {share_id}",
                lambda: self._manila.create_snapshot(
                    share_id=share_id,
                    force=options.force,
                    name=options.snapshot_name,
                    # The tag goes into the description only where snapshots have no
                    # metadata: otherwise the user's description stays theirs.
                    description=(options.description
                                 if self._manila.supports_snapshot_metadata
                                 else self._tagged_description(options.description, job_tag)),
                    metadata={JOB_TAG_KEY: job_tag} if job_tag else None,
                ),
                (lambda: self._tagged_snapshot(share_id, job_tag)) if job_tag else None,
                deadline,
            )
            LOG.info("share %s: snapshot %s requested", share_id, snapshot["id"])

        snapshot_id = snapshot["id"]
        try:
            polled = self._snapshot_status(snapshot_id)
            status = self._wait(polled, _SNAPSHOT_READY, deadline,
                                f"snapshot {snapshot_id} of share {share_id}",
                                changed=not adopted)
            if status not in _SNAPSHOT_READY.ready:
                raise exception.OperationFailed(
                    f"snapshot {snapshot_id} of share {share_id} ended in status {status!r}",
                    details={"share_id": share_id, "snapshot_id": snapshot_id,
                             "status": status},
                )
            snapshot = polled.last
            rules = self._read(lambda: self._saved_rules(share_id), deadline,
                               f"reading the access rules of share {share_id}")
        except exception.ProtectorError as exc:
            cleaned = self._discard_snapshot(snapshot_id)
            self._left_behind(exc, "snapshot_id", snapshot_id, cleaned)
            raise
        if lost and job_tag:
            self._discard_duplicates(share_id, job_tag, snapshot_id)
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

    @staticmethod
    def _job_of(snapshot: typing.Mapping[str, typing.Any]) -> str | None:
        """The job tag a snapshot carries (metadata, or the description's marker)."""
        tag = (snapshot.get("metadata") or {}).get(JOB_TAG_KEY)
        if tag:
            return str(tag)
        description = snapshot.get("description") or ""
        prefix = _DESCRIPTION_MARKER.split("{tag}")[0]
        start = description.rfind(prefix)
        if start < 0:
            return None
        end = description.find("]", start)
        return description[start + len(prefix):end] if end > 0 else None

    @staticmethod
    def _tagged(snapshots: list[dict[str, typing.Any]],
                job_tag: str) -> list[dict[str, typing.Any]]:
        """The snapshots made by job ``job_tag`` that are not being deleted, oldest first."""
        marker = _DESCRIPTION_MARKER.format(tag=job_tag)
        return sorted(
            (snap for snap in snapshots
             if ((snap.get("metadata") or {}).get(JOB_TAG_KEY) == job_tag
                 or marker in (snap.get("description") or ""))
             and snap.get("status") not in statuses.SNAPSHOT_DELETING),
            key=lambda snap: (snap.get("created_at") or "", snap["id"]))

    def _tagged_snapshot(self, share_id: str, job_tag: str) -> dict[str, typing.Any] | None:
        tagged = self._tagged(self._manila.list_snapshots(share_id), job_tag)
        return tagged[0] if tagged else None

    def _own_snapshot_once_settled(
        self, share_id: str, job_tag: str, deadline: waiting.Deadline
    ) -> dict[str, typing.Any] | None:
        """The snapshot this job made earlier; else wait until no other job's is in flight.

        A snapshot of another job being made or deleted is that job still at work
        on the share: the lock should have kept us out, but a lock backend that
        lost its state (a Redis restart without persistence) does not, so the
        share itself is asked too.  (A person's snapshot does not hold us up:
        Manila takes several at once.)  The first look is the tag lookup a
        protect makes anyway.
        """
        mine: list[dict[str, typing.Any]] = []

        def fetch() -> str:
            snapshots = self._manila.list_snapshots(share_id)
            mine[:] = self._tagged(snapshots, job_tag)[:1]
            if mine:
                return "mine"
            busy = [s for s in snapshots if s.get("status") in _SNAPSHOT_IN_FLIGHT
                    and self._job_of(s) not in (None, job_tag)]
            if busy:
                LOG.info("share %s: waiting for snapshot(s) %s in flight", share_id,
                         ", ".join(s["id"] for s in busy))
                return "busy"
            return "settled"

        self._wait(fetch, _OTHERS_SETTLED, deadline, f"snapshots in flight on share {share_id}")
        return mine[0] if mine else None

    def _discard_duplicates(self, share_id: str, job_tag: str, keep: str) -> None:
        """Delete other snapshots of this job, made by a request whose answer was lost.

        Best effort within the cleanup deadline; never raises (the job succeeded).
        """
        try:
            snapshots = self._read(lambda: self._manila.list_snapshots(share_id),
                                   self._deadline(self._timeouts.cleanup),
                                   f"listing the snapshots of share {share_id}")
        except exception.ProtectorError as exc:
            LOG.warning("share %s: could not look for duplicate snapshots of job %s: %s",
                        share_id, job_tag, exc)
            return
        for snap in self._tagged(snapshots, job_tag):
            if snap["id"] != keep:
                LOG.warning("share %s: deleting duplicate snapshot %s of job %s", share_id,
                            snap["id"], job_tag)
                self._discard_snapshot(snap["id"])

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

    def _discard_snapshot(self, snapshot_id: str) -> bool:
        """Delete a snapshot a failed job made (see :meth:`_discard`).

        :returns: whether the snapshot is gone.
        """
        # Manila deletes a snapshot only once it is available or in error.
        return self._discard(
            f"snapshot {snapshot_id} of a failed job", self._snapshot_status(snapshot_id),
            _SNAPSHOT_SETTLED, statuses.SNAPSHOT_DELETABLE,
            lambda: self._manila.delete_snapshot(snapshot_id), _SNAPSHOT_GONE)

    def _discard(
        self,
        what: str,
        polled: _Polled,
        settled: waiting.StatusSets,
        deletable: frozenset[str],
        delete: typing.Callable[[], None],
        gone: waiting.StatusSets,
    ) -> bool:
        """Delete what a failed job made, within the cleanup deadline; never raises.

        Waits for the resource to settle (``settled``), asks for its deletion when
        its status is in ``deletable``, then waits until it is gone.

        :returns: whether the resource is gone.
        """
        deadline = self._deadline(self._timeouts.cleanup)
        try:
            status = self._wait(polled, settled, deadline, what)
            if status in deletable:
                try:
                    self._request_deletion(f"deleting {what}", delete, polled, deletable,
                                           deadline)
                except exception.NotFound:
                    status = waiting.GONE
            if status != waiting.GONE:
                status = self._wait(polled, gone, deadline, what, changed=True)
        except exception.ProtectorError as exc:
            LOG.warning("could not delete %s: %s", what, exc)
            return False
        if status != waiting.GONE:
            LOG.warning("could not delete %s: it is %r", what, status)
            return False
        LOG.info("deleted %s", what)
        return True

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
        deadline = self._deadline(self._timeouts.restore)
        snapshot = self._saved_snapshot(saved, caller, deadline)
        if snapshot["status"] != statuses.SNAPSHOT_AVAILABLE:
            raise exception.InvalidStatus(
                f"snapshot {saved.snapshot_id} is {snapshot['status']!r}; a restore needs it "
                "'available'",
                details={"snapshot_id": saved.snapshot_id, "status": snapshot["status"]},
            )
        if options.target_share_id:
            return self._revert(saved, deadline)
        return self._restore_new(saved, options, job_tag, deadline)

    def _saved_snapshot(self, saved: SavedInfo, caller: Caller | None,
                        deadline: waiting.Deadline) -> dict[str, typing.Any]:
        """The saved snapshot, checked to be the saved share's and the caller's."""
        snapshot = self._read(lambda: self._manila.get_snapshot(saved.snapshot_id), deadline,
                              f"reading snapshot {saved.snapshot_id}")
        if snapshot["share_id"] != saved.share_id:
            raise exception.InvalidRequest(
                f"snapshot {saved.snapshot_id} belongs to share {snapshot['share_id']}, "
                f"not {saved.share_id}",
                details={"field": "saved_info.share_id", "rule": "snapshot_owner"},
            )
        if caller is not None:
            caller.check(snapshot.get("project_id"), f"snapshot {saved.snapshot_id}")
        return snapshot

    def _revert(self, saved: SavedInfo, deadline: waiting.Deadline) -> RestoreResult:
        latest = max(
            self._read(lambda: self._manila.list_snapshots(saved.share_id), deadline,
                       f"listing the snapshots of share {saved.share_id}"),
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
        # Not resent after a lost answer: a second revert would also undo whatever was
        # written since the first one completed.
        self._mutate(f"revert of share {saved.share_id}",
                     lambda: self._manila.revert_share(saved.share_id, saved.snapshot_id))
        polled = self._share_status(saved.share_id)
        status = self._wait(polled, _REVERT_DONE, deadline,
                            f"share {saved.share_id} reverting to {saved.snapshot_id}",
                            changed=True)
        if status not in _REVERT_DONE.ready:
            raise exception.OperationFailed(
                f"revert of share {saved.share_id} to snapshot {saved.snapshot_id} ended in "
                f"status {status!r}",
                details={"share_id": saved.share_id, "status": status},
            )
        return self._result(polled.last, "revert", saved.access_rules)

    def _restore_new(
        self, saved: SavedInfo, options: RestoreOptions, job_tag: str | None,
        deadline: waiting.Deadline,
    ) -> RestoreResult:
        share = None
        find = (lambda: self._tagged_share(job_tag)) if job_tag else None
        if find is not None:
            share = self._read(find, deadline, f"looking for the share of job {job_tag}")
            if share is not None:
                LOG.info("snapshot %s: adopting share %s restored earlier by job %s",
                         saved.snapshot_id, share["id"], job_tag)
        lost = False
        adopted = share is not None
        if share is None:
            metadata = dict(saved.metadata)
            if job_tag:
                metadata[JOB_TAG_KEY] = job_tag
            share, lost = self._create(
                f"share from snapshot {saved.snapshot_id}",
                lambda: self._manila.create_share(
                    share_proto=saved.share_proto,
                    size=saved.size,
                    snapshot_id=saved.snapshot_id,
                    name=options.name,
                    description=options.description,
                    metadata=metadata,
                    share_network_id=saved.share_network_id,
                    share_type=saved.share_type,
                    availability_zone=saved.availability_zone,
                ),
                find,
                deadline,
            )
            LOG.info("snapshot %s: restoring into new share %s", saved.snapshot_id, share["id"])
        share_id = share["id"]
        try:
            polled = self._share_status(share_id)
            status = self._wait(polled, _NEW_SHARE_READY, deadline,
                                f"restored share {share_id}", changed=not adopted)
            if status not in _NEW_SHARE_READY.ready:
                raise exception.OperationFailed(
                    f"share {share_id} restored from snapshot {saved.snapshot_id} ended in "
                    f"status {status!r}",
                    details={"share_id": share_id, "status": status},
                )
            applied: tuple[manila_client.AccessRule, ...] = ()
            if options.restore_access_rules and saved.access_rules:
                applied = self._apply_rules(share_id, saved.access_rules, deadline)
        except exception.ProtectorError as exc:
            cleaned = self._discard_share(share_id)
            self._left_behind(exc, "share_id", share_id, cleaned)
            raise
        if lost and job_tag:
            self._discard_duplicate_shares(job_tag, share_id)
        # Re-applying access rules changes the share's access_rules_status, nothing the
        # result reports: the share as the wait last read it is the result.
        return self._result(polled.last, "new_share", applied)

    def _tagged_shares(self, job_tag: str) -> list[dict[str, typing.Any]]:
        """The shares restored by job ``job_tag`` that are not being deleted, oldest first."""
        return sorted(
            (share for share in self._manila.find_shares_by_metadata({JOB_TAG_KEY: job_tag})
             if share.get("status") not in _SHARE_GONE.pending),
            key=lambda share: (share.get("created_at") or "", share["id"]))

    def _tagged_share(self, job_tag: str) -> dict[str, typing.Any] | None:
        tagged = self._tagged_shares(job_tag)
        return tagged[0] if tagged else None

    def _discard_duplicate_shares(self, job_tag: str, keep: str) -> None:
        """Delete other shares of this job, made by a request whose answer was lost.

        Best effort within the cleanup deadline; never raises (the job succeeded).
        """
        try:
            shares = self._read(lambda: self._tagged_shares(job_tag),
                                self._deadline(self._timeouts.cleanup),
                                f"looking for the shares of job {job_tag}")
        except exception.ProtectorError as exc:
            LOG.warning("could not look for duplicate shares of job %s: %s", job_tag, exc)
            return
        for share in shares:
            if share["id"] != keep:
                LOG.warning("deleting duplicate restored share %s of job %s", share["id"],
                            job_tag)
                self._discard_share(share["id"])

    def _apply_rules(
        self,
        share_id: str,
        rules: tuple[manila_client.AccessRule, ...],
        deadline: waiting.Deadline,
    ) -> tuple[manila_client.AccessRule, ...]:
        """Allow each saved rule not yet present, then wait until all are active."""
        def key(rule: typing.Mapping[str, typing.Any]) -> tuple[str, str, str]:
            return (rule["access_type"], rule["access_to"], rule["access_level"])

        def allow_missing() -> None:
            # Listed again before each attempt: a rule whose answer was lost may exist.
            present = {key(r) for r in self._manila.list_access_rules(share_id)}
            for rule in rules:
                if key(rule.to_dict()) not in present:
                    self._mutate(f"access rule for share {share_id}",
                                 lambda rule=rule: self._manila.allow_access(share_id, rule))

        self._resend(allow_missing, deadline, f"allowing access to share {share_id}")
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
            changed=True,
        )
        if status != statuses.ACCESS_RULE_ACTIVE:
            raise exception.OperationFailed(
                f"access rules could not be re-applied to restored share {share_id} (restore "
                "with restore_access_rules=false to skip them)",
                details={"share_id": share_id},
            )
        return rules

    def _discard_share(self, share_id: str) -> bool:
        """Delete a share a failed restore made (see :meth:`_discard`).

        :returns: whether the share is gone.
        """
        # Manila deletes a share only once it is no longer being created.
        return self._discard(
            f"share {share_id} of a failed restore", self._share_status(share_id),
            _NEW_SHARE_READY, statuses.SHARE_DELETABLE,
            lambda: self._manila.delete_share(share_id), _SHARE_GONE)

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
            snapshot = self._saved_snapshot(saved, caller, deadline)
        except exception.NotFound:
            return DeleteResult(saved.snapshot_id, already_gone=True)
        status = snapshot["status"]
        if status not in statuses.SNAPSHOT_DELETABLE | statuses.SNAPSHOT_DELETING:
            # Manila refuses to delete a snapshot being made or read: let it settle.
            status = self._wait(self._snapshot_status(saved.snapshot_id), _SNAPSHOT_SETTLED,
                                deadline, what)
        if status == waiting.GONE:
            return DeleteResult(saved.snapshot_id, already_gone=True)
        polled = self._snapshot_status(saved.snapshot_id)
        if status in statuses.SNAPSHOT_DELETABLE:
            try:
                self._request_deletion(
                    f"deleting {what}", lambda: self._manila.delete_snapshot(saved.snapshot_id),
                    polled, statuses.SNAPSHOT_DELETABLE, deadline)
            except exception.NotFound:
                return DeleteResult(saved.snapshot_id, already_gone=True)
        status = self._wait(polled, _SNAPSHOT_GONE, deadline, what,
                            changed=status in statuses.SNAPSHOT_DELETABLE)
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
        snapshot = self._saved_snapshot(saved, caller, self._deadline(self._timeouts.verify))
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
