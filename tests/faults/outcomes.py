"""What the fault tests count: each job's notifications against what Manila (the
stand-in) ended up holding.  Imported by the tests as ``faults.outcomes``."""

from __future__ import annotations

import collections
import dataclasses
import typing
import uuid

from manila_protector.plugins import job_tags

OPTIONS = {"snapshot_name": "faults", "description": "fault injection", "force": False}

#: The error codes of doc/notifications.rst: a failed job must carry one of these.
ERROR_CODES = frozenset({
    "invalid_request", "not_found", "invalid_status", "operation_failed", "conflict",
    "unsupported", "not_authorized", "quota_exceeded", "deadline_exceeded",
    "manila_unavailable", "share_busy", "lock_unavailable", "job_conflict", "internal_error",
})


def new_id() -> str:
    return str(uuid.uuid4())


def job_tag(resource: dict[str, typing.Any]) -> str | None:
    """The job id a snapshot or restored share is tagged with (its metadata), or None."""
    return (resource.get("metadata") or {}).get(job_tags.KEY)


@dataclasses.dataclass
class Outcomes:
    """The outcome of a batch of protect jobs ``{job_id: share_id}``."""

    jobs: dict[str, str]
    terminal: dict[str, list[dict[str, typing.Any]]]
    snapshots: list[dict[str, typing.Any]]
    shares: list[dict[str, typing.Any]]

    @classmethod
    def collect(cls, jobs: dict[str, str], collector: typing.Any,
                standin: typing.Any) -> Outcomes:
        terminal: dict[str, list[dict[str, typing.Any]]] = {job_id: [] for job_id in jobs}
        for note in collector.items:
            payload = note["payload"]
            if (note["event_type"].endswith((".end", ".error")) and isinstance(payload, dict)
                    and payload.get("job_id") in terminal):
                terminal[payload["job_id"]].append(note)
        shares = {share_id for share_id in jobs.values()}
        return cls(jobs=jobs, terminal=terminal,
                   snapshots=[s for s in standin.snapshots() if s["share_id"] in shares],
                   shares=[s for s in standin.shares() if s["id"] in shares])

    # -- per job ---------------------------------------------------------------------------

    def final(self, job_id: str) -> dict[str, typing.Any] | None:
        """The job's (last) terminal record."""
        notes = self.terminal[job_id]
        return notes[-1]["payload"] if notes else None

    def status(self, job_id: str) -> str | None:
        record = self.final(job_id)
        return record["status"] if record else None

    # -- the counts ------------------------------------------------------------------------

    def without_terminal(self) -> list[str]:
        """Jobs no ``.end``/``.error`` arrived for."""
        return sorted(job_id for job_id, notes in self.terminal.items() if not notes)

    def repeated_terminal(self) -> list[str]:
        """Jobs with more than one terminal notification (the documented restart window)."""
        return sorted(job_id for job_id, notes in self.terminal.items() if len(notes) > 1)

    def contradicting_terminal(self) -> list[str]:
        """Jobs whose terminal notifications disagree (status or result)."""
        return sorted(job_id for job_id, notes in self.terminal.items()
                      if len({(n["payload"]["status"], repr(n["payload"]["result"]))
                              for n in notes}) > 1)

    def succeeded(self) -> list[str]:
        return sorted(j for j in self.jobs if self.status(j) == "succeeded")

    def failed(self) -> list[str]:
        return sorted(j for j in self.jobs if self.status(j) == "failed")

    def failure_codes(self) -> collections.Counter[str]:
        return collections.Counter(self.final(j)["error"]["code"] for j in self.failed())

    def unclear_failures(self) -> list[str]:
        """Failed jobs without a documented error code and a message."""
        unclear = []
        for job_id in self.failed():
            error = self.final(job_id).get("error") or {}
            if error.get("code") not in ERROR_CODES or not error.get("message"):
                unclear.append(job_id)
        return unclear

    def tags(self) -> collections.Counter[str | None]:
        return collections.Counter(job_tag(s) for s in self.snapshots)

    def snapshots_without_job(self) -> list[dict[str, typing.Any]]:
        """Snapshots tagged with no job we sent (or untagged), or left by a failed job."""
        failed = set(self.failed())
        return [s for s in self.snapshots
                if job_tag(s) not in self.jobs or job_tag(s) in failed]

    def jobs_with_two_snapshots(self) -> list[str]:
        return sorted(tag for tag, n in self.tags().items() if tag in self.jobs and n > 1)

    def succeeded_without_their_snapshot(self) -> list[str]:
        """Succeeded jobs whose result names no available snapshot tagged with their id."""
        by_id = {s["id"]: s for s in self.snapshots}
        wrong = []
        for job_id in self.succeeded():
            snapshot = by_id.get((self.final(job_id).get("result") or {}).get("snapshot_id"))
            if (snapshot is None or job_tag(snapshot) != job_id
                    or snapshot["status"] != "available"
                    or snapshot["share_id"] != self.jobs[job_id]):
                wrong.append(job_id)
        return wrong

    def shares_in_error(self) -> list[str]:
        return sorted(s["id"] for s in self.shares if s["status"] != "available")


# -- restore, revert, delete ----------------------------------------------------------


def saved_info(standin, share_id: str, snapshot: dict[str, typing.Any]) -> dict[str, typing.Any]:
    """What a protect of ``share_id`` would have saved for ``snapshot``."""
    share = standin.share(share_id)
    return {"snapshot_id": snapshot["id"], "share_id": share_id, "size": share["size"],
            "share_proto": share["share_proto"], "share_type": share.get("share_type"),
            "availability_zone": share.get("availability_zone"), "access_rules": []}


def revert_requests(standin) -> collections.Counter[str]:
    """Revert requests Manila received, per share (the share ``action`` POSTs)."""
    return collections.Counter(
        r.route.split("/")[2] for r in standin.requests()
        if r.method == "POST" and r.route.startswith("/shares/") and r.route.endswith("/action"))
