"""restore = a new share from the snapshot (access rules re-applied), or a revert in place.

A new share is tagged with the job's tag (share metadata), so a repeated or
resumed restore adopts the share it made instead of making a second; a new
share that fails (it ends in ``error``, its rules cannot be applied, the
deadline passes) is deleted.

A revert is sent **at most once**: sent again, it would also undo whatever was
written since the first one completed.  Under the share's lock the job first
records its intent in the share's metadata (``job_tags.REVERT_KEY``), then sends
the revert, then marks it sent.  A resumed or resent job that finds its intent
never sends the revert again: marked sent, it waits for the outcome (a slow
revert resumed ends ``succeeded`` when it completes); not marked, Manila may or
may not have taken the request (the job stopped between the two), and the job
fails naming the share instead of guessing.
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


class Restore(delivery_mod.Operation):
    """The restore operation."""

    def __call__(self, saved: values.SavedInfo, options: values.RestoreOptions, *,
                 job_tag: str | None = None,
                 caller: identity.Caller | None = None) -> values.RestoreResult:
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
        deadline = self._delivery.deadline(self._timeout)
        self._delivery.phase(progress.CHECKING, f"snapshot {saved.snapshot_id}", deadline)
        snapshot = self._delivery.saved_snapshot(saved, caller, deadline)
        if options.target_share_id and job_tag:
            resumed = self._resumed_revert(saved, job_tag, deadline)
            if resumed is not None:
                return resumed
        if snapshot["status"] != statuses.SNAPSHOT_AVAILABLE:
            raise exception.InvalidStatus(
                f"snapshot {saved.snapshot_id} is {snapshot['status']!r}; a restore needs it "
                "'available'",
                details={"snapshot_id": saved.snapshot_id, "status": snapshot["status"]},
            )
        if options.target_share_id:
            return self._revert(saved, job_tag, deadline)
        return self._new_share(saved, options, job_tag, deadline)

    # -- revert in place ------------------------------------------------------------------

    def _resumed_revert(self, saved: values.SavedInfo, job_tag: str,
                        deadline: waiting.Deadline) -> values.RestoreResult | None:
        """The outcome of this job's revert where an earlier run of it got to send it.

        :returns: None where the share shows no revert of this job (send it now).
        :raises exception.OperationFailed: an earlier run stopped between the intent and
            the mark -- whether Manila took the revert cannot be told.
        """
        share = self._delivery.read(lambda: self._manila.get_share(saved.share_id), deadline,
                                    f"reading share {saved.share_id}")
        state = job_tags.revert_state(share, job_tag)
        if state == "sent":
            LOG.info("share %s: job %s's revert was sent before; waiting for its outcome",
                     saved.share_id, job_tag)
            return self._reverted(saved, deadline)
        if state == "intended":
            raise exception.OperationFailed(
                f"job {job_tag} stopped between asking Manila to revert share "
                f"{saved.share_id} to snapshot {saved.snapshot_id} and recording that Manila "
                "took the request: whether the revert happened cannot be told, and a revert "
                "is never sent twice; check the share (a new job may revert it)",
                details={"share_id": saved.share_id, "revert": "unknown"})
        return None

    def _revert(self, saved: values.SavedInfo, job_tag: str | None,
                deadline: waiting.Deadline) -> values.RestoreResult:
        delivery = self._delivery
        latest = max(
            delivery.read(lambda: self._manila.list_snapshots(saved.share_id), deadline,
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
        rules = delivery.wait(
            lambda: self._manila.get_share(saved.share_id).get("access_rules_status")
            or statuses.ACCESS_RULE_ACTIVE,
            statuses.SHARE_RULES_SETTLED, deadline, f"access rules of share {saved.share_id}")
        if rules != statuses.ACCESS_RULE_ACTIVE:
            raise exception.InvalidStatus(
                f"share {saved.share_id}'s access rules are {rules!r}; Manila cannot revert it "
                "until they are fixed",
                details={"share_id": saved.share_id, "access_rules_status": rules},
            )
        delivery.phase(progress.REVERTING,
                       f"share {saved.share_id} to snapshot {saved.snapshot_id}", deadline)
        self._send_revert(saved, job_tag)
        return self._reverted(saved, deadline)

    def _send_revert(self, saved: values.SavedInfo, job_tag: str | None) -> None:
        """Record the intent, send the revert (once: not even after a lost answer), mark it."""
        delivery = self._delivery
        share_id = saved.share_id
        if job_tag:
            delivery.mutate(f"recording the revert of share {share_id}",
                            lambda: self._manila.set_share_metadata(
                                share_id, job_tags.revert_intent(job_tag, sent=False)))
        try:
            delivery.mutate(f"revert of share {share_id}",
                            lambda: self._manila.revert_share(share_id, saved.snapshot_id))
        except exception.ProtectorError as exc:
            if job_tag and not delivery_mod.answer_lost(exc):
                # Refused (or never sent): nothing happened, and the job may be run again.
                self._forget_intent(share_id)
            raise
        if job_tag:
            try:
                delivery.mutate(f"recording that share {share_id}'s revert was sent",
                                lambda: self._manila.set_share_metadata(
                                    share_id, job_tags.revert_intent(job_tag, sent=True)))
            except exception.ProtectorError as exc:
                # The revert was taken; only a resumed run would miss the mark (and then
                # refuse to guess).
                LOG.warning("share %s: the revert was sent but could not be marked (%s)",
                            share_id, exc)

    def _forget_intent(self, share_id: str) -> None:
        try:
            self._delivery.mutate(f"forgetting the revert of share {share_id}",
                                  lambda: self._manila.delete_share_metadata(
                                      share_id, job_tags.REVERT_KEY))
        except exception.ProtectorError as exc:
            LOG.warning("share %s: could not remove the revert's intent (%s)", share_id, exc)

    def _reverted(self, saved: values.SavedInfo,
                  deadline: waiting.Deadline) -> values.RestoreResult:
        """Wait for the revert to end; the share as it ends."""
        delivery = self._delivery
        polled = delivery.share_status(saved.share_id)
        status = delivery.wait(polled, statuses.REVERT_DONE, deadline,
                               f"share {saved.share_id} reverting to {saved.snapshot_id}",
                               changed=True, phase=progress.REVERTING)
        if status not in statuses.REVERT_DONE.ready:
            raise exception.OperationFailed(
                f"revert of share {saved.share_id} to snapshot {saved.snapshot_id} ended in "
                f"status {status!r}",
                details={"share_id": saved.share_id, "status": status},
            )
        return values.RestoreResult.from_share(polled.last, values.MODE_REVERT,
                                               saved.access_rules)

    # -- a new share ----------------------------------------------------------------------

    def _new_share(self, saved: values.SavedInfo, options: values.RestoreOptions,
                   job_tag: str | None, deadline: waiting.Deadline) -> values.RestoreResult:
        delivery = self._delivery
        share = None
        find = (lambda: self._tagged_share(job_tag)) if job_tag else None
        if find is not None:
            share = delivery.read(find, deadline, f"looking for the share of job {job_tag}")
            if share is not None:
                LOG.info("snapshot %s: adopting share %s restored earlier by job %s",
                         saved.snapshot_id, share["id"], job_tag)
        lost = False
        adopted = share is not None
        if share is None:
            delivery.phase(progress.SHARE_REQUESTED, f"snapshot {saved.snapshot_id}", deadline)
            share, lost = delivery.create(
                f"share from snapshot {saved.snapshot_id}",
                lambda: self._manila.create_share(
                    share_proto=saved.share_proto,
                    size=saved.size,
                    snapshot_id=saved.snapshot_id,
                    name=options.name,
                    description=options.description,
                    metadata={**dict(saved.metadata), **job_tags.metadata(job_tag)},
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
            polled = delivery.share_status(share_id)
            status = delivery.wait(polled, statuses.NEW_SHARE_READY, deadline,
                                   f"restored share {share_id}", changed=not adopted)
            if status not in statuses.NEW_SHARE_READY.ready:
                raise exception.OperationFailed(
                    f"share {share_id} restored from snapshot {saved.snapshot_id} ended in "
                    f"status {status!r}",
                    details={"share_id": share_id, "status": status},
                )
            applied: tuple[values.AccessRule, ...] = ()
            if options.restore_access_rules and saved.access_rules:
                applied = self._apply_rules(share_id, saved.access_rules, deadline)
        except exception.ProtectorError as exc:
            cleaned = delivery.discard_share(share_id)
            delivery_mod.left_behind(exc, "share_id", share_id, cleaned)
            raise
        if lost and job_tag:
            self._discard_duplicate_shares(job_tag, share_id)
        # Re-applying access rules changes the share's access_rules_status, nothing the
        # result reports: the share as the wait last read it is the result.
        return values.RestoreResult.from_share(polled.last, values.MODE_NEW_SHARE, applied)

    def _tagged_shares(self, job_tag: str) -> list[Resource]:
        """The shares restored by job ``job_tag`` that are not being deleted, oldest first."""
        return [dict(share) for share in job_tags.shares_of(
            self._manila.find_shares_by_metadata(job_tags.metadata(job_tag)), job_tag)]

    def _tagged_share(self, job_tag: str) -> Resource | None:
        tagged = self._tagged_shares(job_tag)
        return tagged[0] if tagged else None

    def _discard_duplicate_shares(self, job_tag: str, keep: str) -> None:
        """Delete other shares of this job, made by a request whose answer was lost.

        Best effort within the cleanup deadline; never raises (the job succeeded).
        """
        delivery = self._delivery
        try:
            shares = delivery.read(lambda: self._tagged_shares(job_tag),
                                   delivery.cleanup_deadline(),
                                   f"looking for the shares of job {job_tag}")
        except exception.ProtectorError as exc:
            LOG.warning("could not look for duplicate shares of job %s: %s", job_tag, exc)
            return
        for share in shares:
            if share["id"] != keep:
                LOG.warning("deleting duplicate restored share %s of job %s", share["id"],
                            job_tag)
                delivery.discard_share(share["id"])

    def _apply_rules(self, share_id: str, rules: tuple[values.AccessRule, ...],
                     deadline: waiting.Deadline) -> tuple[values.AccessRule, ...]:
        """Allow each saved rule not yet present, then wait until all are active."""
        delivery = self._delivery
        delivery.phase(progress.APPLYING_ACCESS_RULES, f"share {share_id}", deadline)

        def key(rule: typing.Mapping[str, typing.Any]) -> tuple[str, str, str]:
            return (rule["access_type"], rule["access_to"], rule["access_level"])

        def allow_missing() -> None:
            # Listed again before each attempt: a rule whose answer was lost may exist.
            present = {key(r) for r in self._manila.list_access_rules(share_id)}
            for rule in rules:
                if rule.key not in present:
                    delivery.mutate(f"access rule for share {share_id}",
                                    lambda rule=rule: self._manila.allow_access(share_id, rule))

        delivery.resend(allow_missing, deadline, f"allowing access to share {share_id}")
        wanted = {rule.key for rule in rules}
        waiting_for: list[tuple[str, str, str]] = []

        def failed_rules() -> list[tuple[str, str, str]] | None:
            """The wanted rules that failed or vanished once none is pending; None before."""
            states = {key(r): (r.get("state") or statuses.ACCESS_RULE_ACTIVE)
                      for r in self._manila.list_access_rules(share_id)}
            failed = sorted(k for k in wanted
                            if k not in states or states[k] in statuses.ACCESS_RULE_FAILED)
            if failed:
                return failed
            waiting_for[:] = sorted(k for k in wanted
                                    if states[k] != statuses.ACCESS_RULE_ACTIVE)
            return None if waiting_for else []

        failed = delivery.until(
            failed_rules, deadline, f"access rules of restored share {share_id}", changed=True,
            pending=lambda: f"{len(waiting_for)} rule(s) not active", phase=None)
        if failed:
            raise exception.OperationFailed(
                f"access rules could not be re-applied to restored share {share_id} (restore "
                "with restore_access_rules=false to skip them)",
                details={"share_id": share_id},
            )
        return rules
