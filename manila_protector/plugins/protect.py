"""protect = snapshot the share, and save what a restore needs.

Waits (bounded) for the share to be ``available``; adopts a snapshot already
tagged with the job's tag; reads the share's access rules while Manila makes the
snapshot; when the protect fails once its snapshot exists (it
ended in ``error``, the deadline passed, Manila stayed unreachable) the
snapshot is deleted.
"""

from __future__ import annotations

import logging
import typing

from manila_protector import exception
from manila_protector import identity
from manila_protector import progress
from manila_protector.plugins import delivery as delivery_mod
from manila_protector.plugins import job_tags
from manila_protector.plugins import statuses
from manila_protector.plugins import values
from manila_protector.plugins import waiting

LOG = logging.getLogger(__name__)

Resource = dict[str, typing.Any]


class Protect(delivery_mod.Operation):
    """The protect operation."""

    def __call__(self, share_id: str, options: values.ProtectOptions, *,
                 job_tag: str | None = None,
                 caller: identity.Caller | None = None) -> values.SavedInfo:
        """Snapshot a share and return what a restore needs.

        :param caller: when given, the share must be the caller's (or the caller an admin).
        :raises exception.NotAuthorized: the share is another project's.
        :raises exception.InvalidStatus: the share cannot be protected.
        :raises exception.OperationFailed: the snapshot ended in an error status.
        :raises exception.DeadlineExceeded: the deadline passed.
        """
        delivery = self._delivery
        deadline = delivery.deadline(self._timeout)
        delivery.phase(progress.CHECKING, f"share {share_id}", deadline)
        share = self._available_share(share_id, caller, deadline)
        snapshot = self._own_snapshot_once_settled(share_id, job_tag, deadline) if job_tag \
            else None
        lost = False
        adopted = snapshot is not None
        if snapshot is not None:
            LOG.info("share %s: adopting snapshot %s made earlier by job %s",
                     share_id, snapshot["id"], job_tag)
        else:
            delivery.phase(progress.SNAPSHOT_REQUESTED, f"share {share_id}", deadline)
            snapshot, lost = self._create_snapshot(share_id, options, job_tag, deadline)
            LOG.info("share %s: snapshot %s requested", share_id, snapshot["id"])

        snapshot_id = snapshot["id"]
        requested_at = delivery.now()
        try:
            # Read while Manila makes the snapshot: the wait counts this time as waited.
            rules = delivery.read(lambda: self._saved_rules(share_id), deadline,
                                  f"reading the access rules of share {share_id}")
            polled = delivery.snapshot_status(snapshot_id)
            status = delivery.wait(polled, statuses.SNAPSHOT_READY, deadline,
                                   f"snapshot {snapshot_id} of share {share_id}",
                                   changed=not adopted, since=requested_at)
            if status not in statuses.SNAPSHOT_READY.ready:
                raise exception.OperationFailed(
                    f"snapshot {snapshot_id} of share {share_id} ended in status {status!r}",
                    details={"share_id": share_id, "snapshot_id": snapshot_id,
                             "status": status},
                )
            snapshot = polled.last
        except exception.ProtectorError as exc:
            cleaned = delivery.discard_snapshot(snapshot_id)
            delivery_mod.left_behind(exc, "snapshot_id", snapshot_id, cleaned)
            raise
        if lost and job_tag:
            self._discard_duplicates(share_id, job_tag, snapshot_id)
        return values.SavedInfo(
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

    def _available_share(self, share_id: str, caller: identity.Caller | None,
                         deadline: waiting.Deadline) -> Resource:
        """The share, once available (it may still be settling).

        :raises exception.NotAuthorized: another project's share.
        :raises exception.InvalidStatus: it will not become available.
        """
        delivery = self._delivery
        share = delivery.read(lambda: self._manila.get_share(share_id), deadline,
                              f"reading share {share_id}")
        if caller is not None:
            caller.check(share.get("project_id"), f"share {share_id}")
        if share["status"] == statuses.SHARE_AVAILABLE:
            return share
        polled = delivery.share_status(share_id)
        status = delivery.wait(polled, statuses.SHARE_READY, deadline, f"share {share_id}")
        if status not in statuses.SHARE_READY.ready:
            raise exception.InvalidStatus(
                f"share {share_id} is {status!r} and cannot be protected",
                details={"share_id": share_id, "status": status},
            )
        return polled.last

    def _create_snapshot(self, share_id: str, options: values.ProtectOptions,
                         job_tag: str | None,
                         deadline: waiting.Deadline) -> tuple[Resource, bool]:
        manila = self._manila
        # The tag goes into the description only where snapshots have no metadata:
        # otherwise the user's description stays theirs.
        description = (options.description if manila.supports_snapshot_metadata
                       else job_tags.tagged_description(options.description, job_tag))
        return self._delivery.create(
            f"snapshot of share {share_id}",
            lambda: manila.create_snapshot(
                share_id=share_id, force=options.force, name=options.snapshot_name,
                description=description, metadata=job_tags.metadata(job_tag) or None),
            (lambda: self._tagged_snapshot(share_id, job_tag)) if job_tag else None,
            deadline,
        )

    def _tagged_snapshot(self, share_id: str, job_tag: str) -> Resource | None:
        tagged = job_tags.snapshots_of(self._manila.list_snapshots(share_id), job_tag)
        return dict(tagged[0]) if tagged else None

    def _own_snapshot_once_settled(self, share_id: str, job_tag: str,
                                   deadline: waiting.Deadline) -> Resource | None:
        """The snapshot this job made earlier; else wait until no other job's is in flight.

        A snapshot of another job being made or deleted is that job still at work
        on the share: the lock should have kept us out, but a lock backend that
        lost its state (a Redis restart without persistence) does not, so the
        share itself is asked too.  (A person's snapshot does not hold us up:
        Manila takes several at once.)  The first look is the tag lookup a
        protect makes anyway.
        """
        in_flight: list[str] = []

        def settled() -> tuple[Resource | None] | None:
            snapshots = self._manila.list_snapshots(share_id)
            mine = job_tags.snapshots_of(snapshots, job_tag)
            if mine:
                return (dict(mine[0]),)
            in_flight[:] = [s["id"] for s in snapshots
                            if s.get("status") in statuses.SNAPSHOT_IN_FLIGHT
                            and job_tags.tag_of(s) not in (None, job_tag)]
            if in_flight:
                LOG.info("share %s: waiting for snapshot(s) %s in flight", share_id,
                         ", ".join(in_flight))
                self._delivery.phase(
                    progress.WAITING_FOR_MANILA,
                    f"snapshot(s) {', '.join(in_flight)} in flight on share {share_id}",
                    deadline)
                return None
            return (None,)

        found = self._delivery.until(
            settled, deadline, f"snapshots in flight on share {share_id}",
            pending=lambda: "snapshot(s) " + ", ".join(in_flight) + " in flight", phase=None)
        return found[0]

    def _discard_duplicates(self, share_id: str, job_tag: str, keep: str) -> None:
        """Delete other snapshots of this job, made by a request whose answer was lost.

        Best effort within the cleanup deadline; never raises (the job succeeded).
        """
        delivery = self._delivery
        try:
            snapshots = delivery.read(lambda: self._manila.list_snapshots(share_id),
                                      delivery.cleanup_deadline(),
                                      f"listing the snapshots of share {share_id}")
        except exception.ProtectorError as exc:
            LOG.warning("share %s: could not look for duplicate snapshots of job %s: %s",
                        share_id, job_tag, exc)
            return
        for snap in job_tags.snapshots_of(snapshots, job_tag):
            if snap["id"] != keep:
                LOG.warning("share %s: deleting duplicate snapshot %s of job %s", share_id,
                            snap["id"], job_tag)
                delivery.discard_snapshot(snap["id"])

    def _saved_rules(self, share_id: str) -> tuple[values.AccessRule, ...]:
        rules = []
        for rule in self._manila.list_access_rules(share_id):
            state = rule.get("state") or rule.get("status") or statuses.ACCESS_RULE_ACTIVE
            if state in statuses.ACCESS_RULE_FAILED:
                continue  # a rule being denied or broken is not part of the share's access
            rules.append(values.AccessRule.from_dict(rule))
        return tuple(sorted(rules, key=lambda r: r.key))
