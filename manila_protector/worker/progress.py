"""A running job's progress: its phase recorded in the job store and announced, rate-limited.

The plugin core reports phases and polls to a :class:`JobProgress` (the
:class:`manila_protector.progress.Observer` of one job).  Each phase change is
recorded in the shared job store at once -- ``get_job`` and ``list_jobs`` on
any worker show it -- and announced with a ``manila_protector.<operation>.progress``
notification, at most one per job every ``[worker] progress_interval``
seconds, the first no sooner than that after the job began to run (its
``.start`` announced it): a phase change within that interval of the last
notification is held back, and only the latest such phase is sent, as soon as
the interval has passed (at the job's next phase change or next poll of Manila,
which comes at most ``[manila] poll_max_interval`` later).  A job's terminal notification is
never held back or replaced by progress: the runner sends it as before.

Progress is best effort: a phase the store could not record, or a
``.progress`` the broker did not take, is logged and the job goes on (nothing
is sent again; the next phase replaces it).
"""

from __future__ import annotations

import datetime
import logging
import typing

from manila_protector import exception
from manila_protector import jobs

LOG = logging.getLogger(__name__)


class Clock(typing.Protocol):
    """Monotonic time (the plugin runtime's clock: tests drive a virtual one)."""

    def now(self) -> float: ...


class PhaseStore(typing.Protocol):
    """Where phases are recorded (``worker.store.api.JobStore``)."""

    def set_phase(self, job_id: str, owner: str, phase: str, *, detail: str | None = None,
                  deadline: datetime.datetime | None = None) -> None: ...

    def get(self, job_id: str) -> jobs.JobRecord: ...


class JobProgress:
    """One running job's :class:`manila_protector.progress.Observer`.

    :param job_id: the job.
    :param owner: the worker running it (the store fences on it).
    :param store: records each phase.
    :param announce: sends a ``.progress`` notification of a record; it must not
        raise (the runner's logs a failure and carries on).
    :param clock: measures the interval between notifications.
    :param interval: least seconds between two ``.progress`` notifications of the job.
    :param wall: the current time (UTC), for the deadline the store records.
    """

    def __init__(self, *, job_id: str, owner: str, store: PhaseStore,
                 announce: typing.Callable[[jobs.JobRecord], None], clock: Clock,
                 interval: float,
                 wall: typing.Callable[[], datetime.datetime] = lambda: datetime.datetime.now(
                     datetime.UTC)) -> None:
        self._job_id = job_id
        self._owner = owner
        self._store = store
        self._announce = announce
        self._clock = clock
        self._interval = interval
        self._wall = wall
        self._current: tuple[str, str | None] | None = None
        # A recorded phase not announced yet (its record is read when it is sent).
        self._held = False
        # The job's .start announced it: the first .progress comes an interval after
        # it began to run (a job that ends sooner is announced by .start and .end).
        self._last_sent = clock.now()

    def phase(self, phase: str, *, detail: str | None = None,
              remaining: float | None = None) -> None:
        """Record ``phase`` (unless it is the current one) and announce it when the rate
        allows."""
        if (phase, detail) == self._current:
            return
        self._current = (phase, detail)
        deadline = (None if remaining is None
                    else self._wall() + datetime.timedelta(seconds=remaining))
        try:
            self._store.set_phase(self._job_id, self._owner, phase, detail=detail,
                                  deadline=deadline)
        except exception.ProtectorError as exc:
            LOG.warning("job %s: phase %s not recorded: %s", self._job_id, phase, exc)
            return
        LOG.debug("job %s: phase %s (%s)", self._job_id, phase, detail or "-")
        self._held = True
        self._send_if_due()

    def waiting(self, *, status: str | None, elapsed: float, remaining: float) -> None:
        """A poll in the current phase: send a held-back phase once the interval passed."""
        self._send_if_due()

    def _send_if_due(self) -> None:
        if not self._held:
            return
        now = self._clock.now()
        if now - self._last_sent < self._interval:
            return
        self._held = False
        self._last_sent = now
        try:
            record = self._store.get(self._job_id)  # the latest phase, as recorded
        except exception.ProtectorError as exc:
            LOG.warning("job %s: progress not announced: %s", self._job_id, exc)
            return
        self._announce(record)
