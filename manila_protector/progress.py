"""Job progress: the phases a job goes through, and how the plugin core reports them.

The one vocabulary of phases, shared by the worker (which records a job's phase
in the job store, returns it with ``get_job`` and ``list_jobs`` and announces it
with ``manila_protector.<operation>.progress`` notifications) and the plugin
core (which reports the phases of an operation).  The core reports through an
:class:`Observer` it is handed; it knows nothing of the worker, so it reports
the same way inside Karbor, where nobody listens (:data:`SILENT`).

A phase says what the job is doing *now*; ``detail`` names what it is about
(``snapshot <id>``), and the deadline is when that stage must end by.  In
order of a protect::

    queued -> waiting_for_lock -> checking -> snapshot_requested
           -> waiting_for_manila [-> cleaning_up] -> (finished: no phase)

A restore into a new share goes ``checking -> share_requested ->
waiting_for_manila -> applying_access_rules``, a revert ``checking ->
waiting_for_manila (access rules settling) -> reverting``, a delete
``checking -> deletion_requested -> waiting_for_manila``, a verify ``checking``.
"""

from __future__ import annotations

import typing

#: Accepted and recorded; waiting for a free job thread of the worker that owns it.
QUEUED = "queued"
#: Waiting for the share's lock (at most ``[coordination] lock_wait``).
WAITING_FOR_LOCK = "waiting_for_lock"
#: Reading the share or snapshot and checking that the operation can go ahead.
CHECKING = "checking"
#: Asking Manila for the snapshot (protect).
SNAPSHOT_REQUESTED = "snapshot_requested"
#: Asking Manila for the new share made from the snapshot (restore).
SHARE_REQUESTED = "share_requested"
#: Asking Manila to revert the share to the snapshot, and waiting until it has (restore
#: in place).
REVERTING = "reverting"
#: Asking Manila to delete the snapshot (delete).
DELETION_REQUESTED = "deletion_requested"
#: Polling Manila until the resource named by ``detail`` settles.
WAITING_FOR_MANILA = "waiting_for_manila"
#: Allowing the saved access rules on the restored share and waiting until they are active.
APPLYING_ACCESS_RULES = "applying_access_rules"
#: The job failed (or made a duplicate): deleting what it made, within
#: ``[manila] cleanup_timeout``.
CLEANING_UP = "cleaning_up"

#: Every phase, with what it means (the documentation's table is this one).
PHASES: typing.Mapping[str, str] = {
    QUEUED: "accepted, waiting for a free job thread of its worker",
    WAITING_FOR_LOCK: "waiting for the share's lock",
    CHECKING: "reading the share or snapshot, checking the operation can go ahead",
    SNAPSHOT_REQUESTED: "asking Manila for the snapshot",
    SHARE_REQUESTED: "asking Manila for a new share from the snapshot",
    REVERTING: "reverting the share to the snapshot",
    DELETION_REQUESTED: "asking Manila to delete the snapshot",
    WAITING_FOR_MANILA: "waiting for Manila to finish with the resource in detail",
    APPLYING_ACCESS_RULES: "applying the saved access rules to the restored share",
    CLEANING_UP: "deleting what the failed job made",
}

#: The longest ``detail`` kept (the job store's column).
MAX_DETAIL = 255


class Observer(typing.Protocol):
    """Hears a running operation's progress (the worker's records and notifies it).

    Neither method may raise: progress is reported best effort and never stops a job.
    """

    def phase(self, phase: str, *, detail: str | None = None,
              remaining: float | None = None) -> None:
        """The operation entered ``phase``.

        :param phase: one of :data:`PHASES`.
        :param detail: what the phase is about (``snapshot <id>``), without secrets.
        :param remaining: seconds until the stage must end (its deadline), if bounded.
        """

    def waiting(self, *, status: str | None, elapsed: float, remaining: float) -> None:
        """A wait polled Manila once more, still in the same phase.

        :param status: what the wait last saw (Manila's status of the resource).
        :param elapsed: seconds the wait has lasted.
        :param remaining: seconds until its deadline.
        """


class Silent:
    """The observer nobody listens to (Karbor's plugins, tools, the sweeper)."""

    def phase(self, phase: str, *, detail: str | None = None,
              remaining: float | None = None) -> None:
        return None

    def waiting(self, *, status: str | None, elapsed: float, remaining: float) -> None:
        return None


SILENT: Observer = Silent()
