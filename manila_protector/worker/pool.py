"""The worker's job threads: a fixed number of them, taking job ids from a bounded queue.

Only ids are queued -- a job's contents stay in the job store until it runs --
so a worker holding thousands of accepted jobs holds kilobytes for them.  The
queue is bounded (``[worker] max_queued_jobs``): beyond it the runner refuses new
jobs with the retryable ``worker_busy`` before recording them.

Daemon threads, so that a worker told to stop can exit while a job still runs:
the job store keeps that job and it resumes (here at the next start, or on
another worker that adopts it).
"""

from __future__ import annotations

import collections
import logging
import threading
import typing

LOG = logging.getLogger(__name__)


class Pool:
    """``size`` threads running ``target(job_id)`` for each queued id.

    :param size: jobs running at once.
    :param target: runs one job; its exceptions are logged, the thread lives on.
    :param max_queued: ids that may wait (beyond the running ones).
    """

    def __init__(self, size: int, target: typing.Callable[[str], None],
                 max_queued: int = 1 << 30) -> None:
        self._target = target
        self._max_queued = max_queued
        self._queue: collections.deque[str | None] = collections.deque()
        self._changed = threading.Condition()
        self._threads = [threading.Thread(target=self._loop, name=f"job-{i}", daemon=True)
                         for i in range(size)]
        self._busy = 0
        # Ids queued or running: a job is never in the pool twice.
        self._held: set[str] = set()

    @property
    def size(self) -> int:
        """Jobs that may run at once."""
        return len(self._threads)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    @property
    def queued(self) -> int:
        """Ids waiting for a thread."""
        with self._changed:
            return sum(1 for item in self._queue if item is not None)

    @property
    def running(self) -> int:
        """Jobs running now."""
        with self._changed:
            return self._busy

    def holds(self, job_id: str) -> bool:
        """Whether ``job_id`` is queued or running here."""
        with self._changed:
            return job_id in self._held

    def has_room(self) -> bool:
        """Whether one more id may be queued."""
        with self._changed:
            return len(self._queue) < self._max_queued

    def put(self, job_id: str, *, force: bool = False) -> bool:
        """Queue ``job_id``; False when the queue is full (``force``: queue it anyway --
        a job already owned, resumed or adopted, is never refused).  A job already
        queued or running here is not queued again (True)."""
        with self._changed:
            if job_id in self._held:
                return True
            if not force and len(self._queue) >= self._max_queued:
                return False
            self._held.add(job_id)
            self._queue.append(job_id)
            self._changed.notify()
            return True

    def _loop(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._queue)
                job_id = self._queue.popleft()
                if job_id is None:
                    return
                self._busy += 1
            try:
                self._target(job_id)
            except Exception:  # noqa: BLE001 - one job's failure must not cost a worker thread
                LOG.exception("job %s: the runner failed; the job stays in the store and "
                              "resumes later (housekeeping)", job_id)
            finally:
                with self._changed:
                    self._held.discard(job_id)
                    self._busy -= 1
                    self._changed.notify_all()

    def stop(self, timeout: float) -> int:
        """Take no more work; wait up to ``timeout`` for running jobs.

        Queued ids are dropped: their jobs stay accepted in the store.

        :returns: the number of jobs still running.
        """
        with self._changed:
            self._held.difference_update(i for i in self._queue if i is not None)
            self._queue.clear()
            self._queue.extend([None] * len(self._threads))
            self._changed.notify_all()
            self._changed.wait_for(lambda: self._busy == 0, timeout=timeout)
            return self._busy
