"""The worker's housekeeping: what a fleet needs done in the background.

Every ``[worker] housekeeping_interval`` seconds, each step on its own (one
failing does not skip the others, and none ends the worker):

* **membership**: join the topic's group again (a lock backend that restarted
  without persistence forgot it), with this worker's capabilities;
* **notifications**: send the terminal notifications the broker did not confirm;
* **strays**: schedule again this worker's unfinished jobs that no thread here
  holds (a run stopped on a store error, e.g. the database refused a connection:
  without this only a restart would resume them);
* **takeover**: a worker that owns jobs in the store but has been missing from
  the group for ``takeover_after`` seconds is gone for good -- adopt its jobs
  and resume them here (their job tags mean no second snapshot or share; of
  several workers adopting at once each job goes to exactly one).  A chunk at
  a time (what this worker can start soon, see ``JobRunner.adopt``), every
  :data:`ADOPT_PERIOD` seconds until none is left, so that the live workers
  share a dead one's jobs instead of the first to notice queueing them all;
* **balance**: while fewer jobs wait here than there are slots, take over jobs
  that no worker has begun from the worker with the most of them waiting
  (``JobRunner.steal``): after a burst, RabbitMQ's first-come hand-out can leave
  one worker with a long queue while the others idle.  Also every
  :data:`ADOPT_PERIOD` seconds as soon as a job ends here with few waiting
  behind it (:meth:`Housekeeper.nudge`), and again while the last round found
  some;
* **sweep**: delete what failed jobs made and could not delete, under the share's
  lock, with the service's own ``[manila]`` credentials (without them, what is
  left stays named in the failed jobs' errors);
* **purge**: forget finished jobs older than ``job_retention`` (hourly).
"""

from __future__ import annotations

import logging
import threading
import time
import typing

from manila_protector import exception

LOG = logging.getLogger(__name__)

#: Seconds between two purges of old finished jobs.
PURGE_PERIOD = 3600.0
#: Seconds between two takeover rounds while a dead worker still has jobs to adopt
#: (the other steps keep their interval).
ADOPT_PERIOD = 1.0


class Membership(typing.Protocol):
    """The group membership (``worker.locks.ShareLocks``)."""

    def join(self, group: str, capabilities: dict[str, typing.Any]) -> None: ...

    def members(self, group: str) -> dict[str, dict[str, typing.Any]]: ...


class Housekeeper:
    """Runs the housekeeping steps in a thread of its own until stopped.

    :param runner: the job runner (``resend_notifications``, ``adopt``).
    :param store: the job store (``owners``, ``purge``).
    :param membership: the group membership on the lock backend.
    :param group: the topic's group.
    :param host: this worker (its member id and the owner of its jobs).
    :param capabilities: what this worker announces in the group.
    :param interval: seconds between rounds.
    :param takeover_after: seconds a member must be missing before its jobs are adopted.
    :param retention: seconds finished jobs are kept (0: forever).
    :param clock: monotonic seconds (tests drive it).
    """

    def __init__(self, *, runner: typing.Any, store: typing.Any, membership: Membership,
                 group: str, host: str, capabilities: dict[str, typing.Any], interval: float,
                 takeover_after: float, retention: float,
                 clock: typing.Callable[[], float] = time.monotonic) -> None:
        self._runner = runner
        self._store = store
        self._membership = membership
        self._group = group
        self._host = host
        self._capabilities = capabilities
        self._interval = interval
        self._takeover_after = takeover_after
        self._retention = retention
        self._clock = clock
        self._missing_since: dict[str, float] = {}
        # Owners gone for good whose jobs are being adopted, a chunk per round.
        self._adopting: set[str] = set()
        self._last_purge: float | None = None
        # Jobs may be waiting on another worker while this one has room (see balance).
        self._balancing = False
        self._stopped = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="housekeeping", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def nudge(self) -> None:
        """This worker has room for more jobs: look for some waiting elsewhere soon
        (within :data:`ADOPT_PERIOD`)."""
        self._balancing = True
        self._wake.set()

    def _loop(self) -> None:
        last_round = last_quick = self._clock()
        while True:
            quick = self._adopting or self._balancing
            pause = min(self._interval, ADOPT_PERIOD) if quick else self._interval
            if quick:  # (nudged early: the quick round still comes at its time)
                pause = max(0.0, pause - (self._clock() - last_quick))
            self._wake.wait(pause)
            self._wake.clear()
            if self._stopped.is_set():
                return
            now = self._clock()
            if now - last_round >= self._interval - pause / 2:
                last_round = last_quick = now
                self.run_once()
            elif now - last_quick >= ADOPT_PERIOD * 0.9:
                # A takeover in progress (its next chunk), or jobs to balance.
                last_quick = now
                if self._adopting:
                    self._step(self.take_over)
                if self._balancing:
                    self._step(self.balance)

    def run_once(self) -> None:
        """One round of every step (each one's failure is logged, the others still run)."""
        for step in (self.rejoin, self.resend, self.resume, self.take_over, self.balance,
                     self.sweep, self.purge):
            self._step(step)

    def balance(self) -> int:
        """Take over jobs waiting on a busier worker while this one has room.

        :returns: how many were taken over.
        """
        self._balancing = False
        if not self._runner.wants_work():
            return 0
        taken = self._runner.steal()
        # Some were found: there may be more (the next quick round looks again).
        self._balancing = taken > 0
        return taken

    @staticmethod
    def _step(step: typing.Callable[[], typing.Any]) -> None:
        try:
            step()
        except exception.ProtectorError as exc:
            LOG.warning("housekeeping: %s failed (%s); trying again next round",
                        step.__name__, exc)
        except Exception:  # noqa: BLE001 - housekeeping must not end the worker
            LOG.exception("housekeeping: %s failed; trying again next round", step.__name__)

    def rejoin(self) -> None:
        self._membership.join(self._group, self._capabilities)

    def resend(self) -> None:
        sent = self._runner.resend_notifications()
        if sent:
            LOG.info("housekeeping: sent %d notification(s) the broker had not confirmed",
                     sent)

    def resume(self) -> None:
        self._runner.resume_strays()

    def take_over(self) -> list[str]:
        """Adopt a chunk of the jobs of every owner missing from the group for
        ``takeover_after`` (the next round adopts the next chunk).

        :returns: the owners whose jobs were adopted from this round.
        """
        live = set(self._membership.members(self._group))
        now = self._clock()
        owners = self._store.owners() - {self._host}
        for gone in set(self._missing_since) - owners:
            # Its work is done, or adopted (here or elsewhere).
            self._missing_since.pop(gone)
            if gone in self._adopting:
                self._adopting.discard(gone)
                LOG.info("housekeeping: worker %s has no job left to adopt", gone)
        adopted = []
        for owner in sorted(owners):
            if owner in live:
                self._missing_since.pop(owner, None)
                self._adopting.discard(owner)  # it came back: it resumes its own jobs
                continue
            since = self._missing_since.setdefault(owner, now)
            if now - since < self._takeover_after:
                continue
            if owner not in self._adopting:
                self._adopting.add(owner)
                LOG.warning("worker %s has been missing from %s for %.0f s: adopting its "
                            "unfinished jobs, a share of them on each live worker", owner,
                            self._group, now - since)
            count = self._runner.adopt(owner)
            if count:
                LOG.info("housekeeping: adopted %d job(s) of worker %s", count, owner)
            adopted.append(owner)
        return adopted

    def sweep(self) -> None:
        swept = self._runner.sweep_leftovers()
        if swept:
            LOG.info("housekeeping: deleted %d snapshot(s)/share(s) failed jobs had left", swept)

    def purge(self) -> None:
        now = self._clock()
        if not self._retention or (self._last_purge is not None
                                   and now - self._last_purge < PURGE_PERIOD):
            return
        self._last_purge = now
        purged = self._store.purge(self._retention)
        if purged:
            LOG.info("housekeeping: forgot %d finished job(s) older than %ss", purged,
                     self._retention)
