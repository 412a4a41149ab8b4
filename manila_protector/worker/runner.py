"""The job runner: validate -> store -> lock -> run -> notify, for the whole fleet.

Every job is validated (envelope, schemas, caller) before anything happens,
recorded in the shared job store before the caller is answered, run by the one
worker that owns it under its share's lock, and announced with exactly one
terminal notification -- recorded as sent only once the broker confirmed it,
and sent again (at the next housekeeping, or by whoever adopts the job) until
then.  Expected failures are classified here, once, as data (a job record);
they are not logged as tracebacks.

While a job runs, its thread carries the job's own request context, so every
log line of the job names its caller's request id and the job
(:func:`job_log_context`), and its phases are recorded in the store and
announced, rate-limited (:mod:`manila_protector.worker.progress`).

A request for a job another worker owns is answered from the store and never
run here.  Beyond ``max_queued_jobs`` waiting here, new jobs are refused
(``worker_busy``, retryable) before they are recorded; beyond
``max_waiting_calls`` callers waiting for their job's end, a call gets the
accepted record at once, so that ``get_job`` and ``list_jobs`` always find a
thread to answer them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import typing

from oslo_context import context as oslo_context

from manila_protector import exception
from manila_protector import identity
from manila_protector import jobs
from manila_protector import progress
from manila_protector import version
from manila_protector.plugins import resources
from manila_protector.plugins import runtime as plugin_runtime
from manila_protector.worker import execution
from manila_protector.worker import pool as pool_mod
from manila_protector.worker import progress as progress_mod
from manila_protector.worker.store import api as store_api

LOG = logging.getLogger(__name__)

#: Seconds between two reads of the store by a caller waiting for another worker's job.
FOREIGN_POLL_INTERVAL = 0.5


class Notifier(typing.Protocol):
    """Where the runner announces jobs (``rpc.notifier.JobNotifier``); raises
    ``NotificationFailed`` unless the broker took the notification."""

    def start(self, record: jobs.JobRecord) -> None: ...

    def finished(self, record: jobs.JobRecord) -> None: ...

    def progress(self, record: jobs.JobRecord) -> None: ...


@contextlib.contextmanager
def job_log_context(job_id: str, context: typing.Mapping[str, typing.Any]
                    ) -> typing.Iterator[oslo_context.RequestContext]:
    """Install a job's own request context in this thread while it runs.

    oslo.log reads the request context of a log line from oslo.context's
    thread-local store, so every line the job's thread writes -- the runner's,
    the locks', the plugin core's -- carries the caller's ``request_id`` (and
    user and project), and the job id as the context's ``resource_uuid``
    (shown by ``%(instance)s`` in ``logging_context_format_string``, formatted
    by ``instance_uuid_format``: ``[job <job_id>]`` by the worker's default).
    The thread's previous context is put back afterwards, so that nothing of
    this job follows the thread into its next one.

    :param context: the job's stored request context (without secrets).
    """
    previous = oslo_context.get_current()
    installed = oslo_context.RequestContext(
        request_id=context.get("request_id"), user_id=context.get("user_id"),
        project_id=context.get("project_id"), resource_uuid=job_id, overwrite=True)
    try:
        yield installed
    finally:
        if previous is not None:
            previous.update_store()
        else:
            # NOTE: oslo.context offers no public way to clear the store.
            vars(oslo_context._request_store).pop("context", None)  # noqa: SLF001


class JobObserver(typing.Protocol):
    """What the runner reports for metrics (``worker.metrics.Metrics``)."""

    def job_started(self, job_id: str, operation: str) -> None: ...

    def job_finished(self, job_id: str, operation: str, outcome: str,
                     seconds: float) -> None: ...

    def lock_waited(self, seconds: float) -> None: ...

    def notification_failed(self, event: str) -> None: ...


class NoObserver:
    """A :class:`JobObserver` that records nothing (metrics disabled)."""

    def job_started(self, job_id: str, operation: str) -> None:
        pass

    def job_finished(self, job_id: str, operation: str, outcome: str, seconds: float) -> None:
        pass

    def lock_waited(self, seconds: float) -> None:
        pass

    def notification_failed(self, event: str) -> None:
        pass


class _Done(threading.Event):
    """Set when a job finishes; carries its final record to the callers waiting."""

    record: jobs.JobRecord | None = None


class JobRunner:
    """Runs protect / restore / delete / verify jobs for RPC callers.

    :param store: the shared job store.
    :param locks: the per-share locks.
    :param notifier: announces ``.start`` and the terminal notification.
    :param runtime: the plugin runtime (Manila clients, the plugin core).
    :param host: this worker's name: the owner of the jobs it takes, in their records.
    :param max_concurrent_jobs: jobs running at once (on different shares).
    :param max_queued_jobs: jobs waiting here for a thread before new ones are refused.
    :param max_waiting_calls: callers waiting for their job's end at once.
    :param max_request_bytes: the largest accepted request.
    :param identify: the caller of a request context (:class:`identity.Caller`):
        validated with Keystone where configured, else read strictly from the
        context; the only place identity is decided.
    :param progress_interval: least seconds between two ``.progress`` notifications
        of one job (see :mod:`manila_protector.worker.progress`).
    :param observer: told of jobs, lock waits and failed notifications (metrics).
    :param members: the hosts of the workers on this topic (for ``ping``).
    """

    def __init__(
        self,
        *,
        store: store_api.JobStore,
        locks: execution.ShareLocks,
        notifier: Notifier,
        runtime: plugin_runtime.PluginRuntime,
        host: str,
        max_concurrent_jobs: int,
        max_request_bytes: int,
        identify: typing.Callable[[typing.Any], identity.Caller],
        max_queued_jobs: int = 10000,
        max_waiting_calls: int = 32,
        progress_interval: float = 5.0,
        observer: JobObserver | None = None,
        members: typing.Callable[[], list[str]] | None = None,
    ) -> None:
        self._progress_interval = progress_interval
        self._store = store
        self._notifier = notifier
        self._observer = observer or NoObserver()
        self._members = members
        self._started_at = time.monotonic()
        self._executor = execution.Executor(runtime, locks, self._observer.lock_waited)
        self._runtime = runtime
        self.host = host
        self._max_request_bytes = max_request_bytes
        self._identify = identify
        self._pool = pool_mod.Pool(max_concurrent_jobs, self._run, max_queued=max_queued_jobs)
        self._done: dict[str, _Done] = {}
        self._done_lock = threading.Lock()
        self._stopping = threading.Event()
        self._waiting = threading.BoundedSemaphore(max_waiting_calls)
        # Jobs whose terminal notification a thread of this worker is sending (from the
        # outcome recorded until the broker's confirmation is): the housekeeping's
        # resend must not send it a second time meanwhile.
        self._announcing: set[str] = set()
        # Jobs a request thread is accepting (recorded, not yet scheduled): not strays.
        self._accepting: set[str] = set()
        #: Called when a job ends and fewer jobs wait here than there are slots (the
        #: housekeeping's ``nudge``: it looks for jobs waiting on a busier worker).
        self.room_made: typing.Callable[[], None] = lambda: None

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> int:
        """Send the notifications a crash left unsent and resume this worker's jobs.

        :returns: the number of jobs resumed.
        """
        self.resend_notifications()
        resumed = self._store.unfinished(self.host)
        for job_id in resumed:
            LOG.info("job %s: resuming after a restart", job_id)
            self._requeued(job_id)
            self._schedule(job_id)
        self._pool.start()
        return len(resumed)

    def adopt(self, dead_owner: str) -> int:
        """Take over a chunk of the jobs of a worker gone for good, and resume them here.

        The chunk is what this worker can start soon -- its free slots and as many
        again queued, less what already waits here -- and never less than
        ``max_concurrent_jobs``, so that a busy fleet still takes a dead worker's
        jobs over in bounded time.  Housekeeping calls it every round until the
        dead worker has none left: every live worker takes its part, rather than
        the first one to notice queueing them all behind its own.

        :returns: the number of unfinished jobs adopted.
        """
        adopted = self._store.adopt(dead_owner, self.host, limit=self.adoption_chunk())
        for job_id in adopted:
            LOG.info("job %s: adopted from worker %s, resuming", job_id, dead_owner)
            self._requeued(job_id)
            self._schedule(job_id)
        self.resend_notifications()
        return len(adopted)

    def adoption_chunk(self) -> int:
        """How many of a dead worker's jobs to adopt now (see :meth:`adopt`)."""
        slots = self._pool.size
        return max(slots, 2 * slots - self._pool.running - self._pool.queued)

    def wants_work(self) -> bool:
        """Whether this worker would soon have a slot with nothing to run: fewer jobs wait
        here than it has slots."""
        return self._pool.queued < self._pool.size

    def steal(self) -> int:
        """Take over jobs that wait on a busier worker while slots here would idle.

        RabbitMQ hands each request to whichever worker asks first, and a worker
        queues what it accepted: after a burst one worker can hold a long queue
        while the others have nothing left.  Up to what this worker can start soon
        (its free slots and as many again queued, less what waits here) of the
        busiest worker's jobs that nobody has begun move here, oldest first; that
        worker keeps at least ``max_concurrent_jobs`` of them and never fewer than
        this one then holds (``JobStore.steal``).

        :returns: the number of jobs taken over.
        """
        slots = self._pool.size
        room = 2 * slots - self._pool.running - self._pool.queued
        if self._stopping.is_set() or room < 1:
            return 0
        taken = self._store.steal(self.host, limit=room, keep=slots)
        for job_id in taken:
            LOG.info("job %s: taken over from a busier worker", job_id)
            self._schedule(job_id)
        return len(taken)

    def resume_strays(self) -> int:
        """Schedule this worker's unfinished jobs that no thread here holds.

        A job whose run stopped on a store error (``begin`` or ``finish`` could not
        reach the database) stays unfinished and owned by this worker: without this,
        only a restart would resume it.  Running it again is what a restart does (its
        job tags and the revert's intent make a second run harmless).

        :returns: how many were scheduled.
        """
        with self._done_lock:
            accepting = set(self._accepting)
        strays = [job_id for job_id in self._store.unfinished(self.host)
                  if job_id not in accepting and not self._pool.holds(job_id)]
        for job_id in strays:
            LOG.warning("job %s: unfinished here but not scheduled (its run stopped on an "
                        "error); resuming it", job_id)
            self._schedule(job_id)
        return len(strays)

    def stop(self, timeout: float) -> int:
        """Take no new jobs; let running ones finish for up to ``timeout`` seconds.

        :returns: jobs still running (they stay in the store: this worker resumes them
            at its next start, or another adopts them).
        """
        with self._done_lock:
            self._stopping.set()
        still_running = self._pool.stop(timeout)
        with self._done_lock:
            # Callers waiting on a job that will only finish after a restart get
            # its current record now rather than hanging the shutdown.
            for event in self._done.values():
                event.set()
        if still_running:
            LOG.warning("%d job(s) still running at shutdown; they resume later",
                        still_running)
        return still_running

    @property
    def load(self) -> dict[str, int]:
        """Jobs running and queued here (for logs, ping and metrics)."""
        return {"running": self._pool.running, "queued": self._pool.queued}

    def status(self, ctxt: typing.Any) -> dict[str, typing.Any]:
        """This worker as ``ping`` shows it: host, version, running and queued jobs,
        seconds since it started, and the hosts of the workers on its topic.

        :raises exception.NotAuthorized: the request carries no token.
        """
        self._caller(ctxt)
        load = self.load
        members: list[str] | None = None
        if self._members is not None:
            try:
                members = sorted(self._members())
            except exception.ProtectorError as exc:
                LOG.info("ping: the workers of the topic are unknown: %s", exc)
        return {"host": self.host, "version": version.version_string(),
                "running": load["running"], "queued": load["queued"],
                "uptime": round(time.monotonic() - self._started_at, 3),
                "members": members}

    # -- jobs ---------------------------------------------------------------------------

    def _caller(self, ctxt: typing.Any) -> identity.Caller:
        """The caller of a request; every request must carry a token.

        :raises exception.InvalidRequest: the context is malformed.
        :raises exception.NotAuthorized: no token (or, with Keystone, a bad one).
        """
        caller = self._identify(ctxt)
        if not caller.auth_token:
            raise exception.NotAuthorized("the request carries no token")
        return caller

    def submit(
        self,
        ctxt: typing.Any,
        *,
        operation: typing.Any,
        job_id: typing.Any,
        share_id: typing.Any,
        parameters: typing.Any = None,
        saved_info: typing.Any = None,
        unexpected: dict[str, typing.Any] | None = None,
    ) -> jobs.JobRecord:
        """Accept a job (or return the existing job with this ``job_id``, whoever owns it).

        Bad input is refused with a typed error before anything is recorded or
        any Manila call is made; an ``.error`` notification announces it too,
        for callers that used ``cast``.

        :raises exception.ProtectorError: the request was refused.
        """
        caller: identity.Caller | None = None
        try:
            jobs.refuse_unexpected(unexpected or {})
            request = jobs.JobRequest.build(
                job_id=job_id, operation=operation, share_id=share_id, parameters=parameters,
                saved_info=saved_info, max_bytes=self._max_request_bytes)
            execution.parse_contents(request)
            caller = self._caller(ctxt)
            with self._done_lock:
                self._accepting.add(request.job_id)
            try:
                record, created = self._accept(request, caller)
            except BaseException:
                self._accepted(request.job_id)
                raise
        except exception.ProtectorError as exc:
            LOG.info("refused %s request for job %s: %s", jobs.shown(operation, 32),
                     jobs.shown(job_id), exc)
            self._announce(jobs.JobRecord.rejected(
                job_id=job_id, operation=operation, share_id=share_id,
                project_id=caller.project_id if caller else None, error=exc, host=self.host,
                request_id=caller.request_id if caller else None), record_sent=False)
            raise
        if not created:
            self._accepted(request.job_id)
            if not caller.sees(record.project_id):
                raise exception.NotFound(f"job {record.job_id} not found")
            LOG.info("job %s (share %s): repeated request, job is %s on %s", record.job_id,
                     record.share_id, record.status, record.host)
            return record
        try:
            LOG.info("job %s (share %s): %s accepted", record.job_id, record.share_id,
                     record.operation)
            self._announce_start(record)
            self._schedule(record.job_id)
        finally:
            self._accepted(record.job_id)
        return record

    def _accepted(self, job_id: str) -> None:
        """The request thread is done with ``job_id`` (scheduled, or not created here)."""
        with self._done_lock:
            self._accepting.discard(job_id)

    def _accept(self, request: jobs.JobRequest,
                caller: identity.Caller) -> tuple[jobs.JobRecord, bool]:
        if not self._pool.has_room():
            # A resend of a job the store has is answered below whatever the load.
            try:
                return self._store.get(request.job_id), False
            except exception.NotFound:
                pass
            raise exception.WorkerBusy(
                f"worker {self.host} has {self._pool.queued} jobs waiting; send the job "
                "again later (the same job_id is safe)", details={"host": self.host})
        try:
            return self._store.accept(
                request, owner=self.host, project_id=caller.project_id,
                context=caller.to_dict(), auth_token=caller.auth_token, host=self.host,
                request_id=caller.request_id)
        except exception.JobConflict:
            # The conflict names the existing job's operation and share: tell them
            # only to its own project (or an admin), as get_job does.
            if not caller.sees(self._store.get(request.job_id).project_id):
                raise exception.NotFound(f"job {request.job_id} not found",
                                         details={"job_id": request.job_id}) from None
            raise

    def wait(self, job_id: str, timeout: float | None = None) -> jobs.JobRecord:
        """Block until the job finishes (or ``timeout`` passes, or the worker stops).

        A job of this worker is waited for here; another worker's is read from the
        store until it finishes.  Beyond ``max_waiting_calls`` callers at once, the
        record is returned as it is now.

        :returns: the job's record at that moment.
        """
        if not self._waiting.acquire(blocking=False):
            return self._store.get(job_id)
        try:
            with self._done_lock:
                event = self._done.get(job_id)
            if event is not None:
                began = time.monotonic()
                if not self._stopping.is_set() and event.wait(timeout):
                    if event.record is not None:
                        return event.record
                    # Another worker runs it now: its outcome comes through the store.
                    return self._wait_in_store(
                        job_id, None if timeout is None
                        else max(0.0, timeout - (time.monotonic() - began)))
                return self._store.get(job_id)
            return self._wait_in_store(job_id, timeout)
        finally:
            self._waiting.release()

    def _wait_in_store(self, job_id: str, timeout: float | None) -> jobs.JobRecord:
        pause = threading.Event()
        waited = 0.0
        while True:
            record = self._store.get(job_id)
            if record.finished or self._stopping.is_set() or (
                    timeout is not None and waited >= timeout):
                return record
            pause.wait(FOREIGN_POLL_INTERVAL)
            waited += FOREIGN_POLL_INTERVAL

    def get_job(self, ctxt: typing.Any, job_id: typing.Any) -> jobs.JobRecord:
        """A job's record, from any worker, for its own project (or an admin).

        :raises exception.NotFound: unknown job, or another project's.
        """
        job_id = jobs.parse_job_id(job_id)
        caller = self._caller(ctxt)
        record = self._store.get(job_id)
        if not caller.sees(record.project_id):
            raise exception.NotFound(f"job {record.job_id} not found")
        return record

    def list_jobs(self, ctxt: typing.Any, filters: typing.Any, limit: typing.Any,
                  marker: typing.Any) -> list[jobs.JobRecord]:
        """The caller's project's jobs (every project's for an admin), newest first, paged.

        :raises exception.InvalidRequest: a filter, the limit or the marker is malformed.
        :raises exception.NotFound: the marker is no job the caller can see.
        """
        parsed = jobs.ListFilters.build(filters, limit, marker)
        caller = self._caller(ctxt)
        return self._store.list_jobs(
            project_id=None if caller.is_admin else caller.project_id,
            status=parsed.status, operation=parsed.operation, share_id=parsed.share_id,
            since=parsed.since, limit=parsed.limit, marker=parsed.marker)

    def _requeued(self, job_id: str) -> None:
        """A resumed job waits for a thread again: its record says so, not what it was
        doing when its worker stopped (best effort, as all progress)."""
        try:
            self._store.set_phase(job_id, self.host, progress.QUEUED)
        except exception.ProtectorError as exc:
            LOG.info("job %s: phase not reset to queued: %s", job_id, exc)

    def _schedule(self, job_id: str) -> None:
        with self._done_lock:
            if self._stopping.is_set():
                # Consumed from the broker while shutting down: the store has it; it
                # runs after the restart (or on the worker that adopts it).
                LOG.info("job %s: accepted during shutdown; it runs later", job_id)
                return
            self._done.setdefault(job_id, _Done())
            # Accepted within the bound (submit checked), or resumed or adopted: a job
            # this worker owns is never refused.
            self._pool.put(job_id, force=True)

    # -- running ------------------------------------------------------------------------

    def _run(self, job_id: str) -> None:
        try:
            self._run_one(job_id)
        finally:
            if self.wants_work():
                self.room_made()

    def _run_one(self, job_id: str) -> None:
        try:
            stored = self._store.begin(job_id, self.host)
        except exception.NotOwner:
            # Adopted (this worker was missing from the group) or taken over by a worker
            # with free slots: it runs there.
            LOG.info("job %s: another worker took it over while it waited here; leaving it",
                     job_id)
            self._release_waiters(job_id, None)
            return
        if stored.record.finished:
            self._release_waiters(job_id, stored.record)
            return
        with job_log_context(job_id, stored.context):
            self._run_stored(stored)

    def _run_stored(self, stored: store_api.StoredJob) -> None:
        job_id = stored.record.job_id
        if not stored.start_notified:
            self._announce_start(stored.record)
        request = stored.request
        caller = identity.Caller.from_dict(stored.context, stored.auth_token)
        observer = progress_mod.JobProgress(
            job_id=job_id, owner=self.host, store=self._store,
            announce=self._announce_progress, clock=self._runtime.clock,
            interval=self._progress_interval)
        began = time.monotonic()
        self._observer.job_started(job_id, request.operation)
        try:
            result = self._executor.run(request, caller, execution.parse_contents(request),
                                        observer)
        except exception.ProtectorError as exc:
            LOG.warning("job %s (share %s): %s failed: %s [%s]", job_id, request.share_id,
                        request.operation, exc, exc.code)
            outcome: dict[str, typing.Any] = {"error": exc.to_dict()}
        except Exception as exc:  # noqa: BLE001 - a bug must fail the job, not the worker
            LOG.exception("job %s (share %s): unexpected error", job_id, request.share_id)
            error = exception.ProtectorError(f"internal error: {type(exc).__name__}")
            outcome = {"error": error.to_dict()}
        else:
            LOG.info("job %s (share %s): %s succeeded", job_id, request.share_id,
                     request.operation)
            outcome = {"result": result}
        self._observer.job_finished(job_id, request.operation,
                                    jobs.FAILED if "error" in outcome else jobs.SUCCEEDED,
                                    time.monotonic() - began)
        with self._announcing_job(job_id):
            try:
                record = self._store.finish(job_id, self.host, **outcome)
            except exception.NotOwner:
                LOG.warning("job %s: adopted by another worker while it ran here; its "
                            "outcome is that worker's to record", job_id)
                self._release_waiters(job_id, None)
                return
            # The outcome is in the store: a waiting caller may have it now, while the
            # terminal notification goes out (sent again later if the broker refuses it).
            self._release_waiters(job_id, record)
            self._announce(record)

    def _release_waiters(self, job_id: str, record: jobs.JobRecord | None) -> None:
        """Hand a finished job's record to the callers waiting for it (None: another
        worker finishes it; they wait for it in the store)."""
        with self._done_lock:
            event = self._done.pop(job_id, None)
        if event is not None:
            event.record = record
            event.set()

    def sweep_leftovers(self) -> int:
        """Delete what failed jobs made and could not delete (see ``plugins/sweep.py``).

        Needs ``[manila]`` service credentials: a finished job keeps no token.

        :returns: how many leftovers are gone now.
        """
        if not self._runtime.factory.has_service_credentials:
            return 0
        gone = 0
        for leftover in self._store.leftovers():
            try:
                done = self._executor.sweep(leftover.share_id, leftover.kind,
                                            leftover.resource_id, leftover.job_id)
            except exception.ProtectorError as exc:
                LOG.info("job %s's leftover %s %s not swept yet: %s", leftover.job_id,
                         leftover.kind, leftover.resource_id, exc)
                continue
            if done:
                self._store.swept(leftover.job_id)
                gone += 1
        return gone

    # -- notifications ----------------------------------------------------------------------

    def _announce_start(self, record: jobs.JobRecord) -> None:
        try:
            self._notifier.start(record)
        except exception.NotificationFailed as exc:
            self._observer.notification_failed("start")
            LOG.warning("job %s: .start not sent (%s); sent again when the job begins",
                        record.job_id, exc)
            return
        self._store.mark_notified(record.job_id, terminal=False)

    def _announce_progress(self, record: jobs.JobRecord) -> None:
        """Send a ``.progress`` notification, best effort: a failure is logged, not retried."""
        try:
            self._notifier.progress(record)
        except exception.NotificationFailed as exc:
            LOG.info("job %s: .progress (%s) not sent: %s", record.job_id, record.phase, exc)

    def _announce(self, record: jobs.JobRecord, *, record_sent: bool = True) -> bool:
        """Send a terminal notification; record it as sent only once the broker took it."""
        try:
            self._notifier.finished(record)
        except exception.NotificationFailed as exc:
            self._observer.notification_failed(
                "end" if record.status == jobs.SUCCEEDED else "error")
            LOG.warning("job %s: terminal notification not sent (%s)%s", record.job_id, exc,
                        "; sent again later" if record_sent else "")
            return False
        if record_sent:
            self._store.mark_notified(record.job_id, terminal=True)
        return True

    def resend_notifications(self) -> int:
        """Send the terminal notifications of this worker's jobs not yet confirmed.

        :returns: how many went out.
        """
        sent = 0
        for record in self._store.unnotified(self.host):
            with self._announcing_job(record.job_id) as mine:
                # Not while this worker's own run of the job is sending it, nor once that
                # run recorded it as sent (after the list above was read).
                if not mine or self._store.end_notified(record.job_id):
                    continue
                LOG.info("job %s (share %s): sending its %s notification again",
                         record.job_id, record.share_id, record.status)
                sent += self._announce(record)
        return sent

    @contextlib.contextmanager
    def _announcing_job(self, job_id: str) -> typing.Iterator[bool]:
        """Claim the sending of ``job_id``'s terminal notification in this worker.

        Yields whether the claim is this caller's (False: another thread of this worker
        is sending it now); released on leaving.
        """
        with self._done_lock:
            mine = job_id not in self._announcing
            self._announcing.add(job_id)
        try:
            yield mine
        finally:
            if mine:
                with self._done_lock:
                    self._announcing.discard(job_id)

    # -- the protectable plugin, synchronously -----------------------------------------------

    def _catalog_for(self, caller: identity.Caller) -> typing.Any:
        return self._runtime.catalog(self._runtime.client(caller))

    def list_resources(self, ctxt: typing.Any) -> list[dict[str, typing.Any]]:
        """The caller's protectable shares."""
        caller = self._caller(ctxt)
        return [s.to_dict() for s in self._catalog_for(caller).list_shares()]

    def show_resource(self, ctxt: typing.Any, share_id: typing.Any) -> dict[str, typing.Any]:
        """One protectable share."""
        share_id = jobs.parse_share_id(share_id)
        caller = self._caller(ctxt)
        return self._catalog_for(caller).show_share(share_id, caller=caller).to_dict()

    def list_dependent_resources(self, ctxt: typing.Any, parent_type: typing.Any,
                                 parent_id: typing.Any) -> list[dict[str, typing.Any]]:
        """The protectable shares of a project."""
        if parent_type != resources.PROJECT_RESOURCE_TYPE:
            raise exception.InvalidRequest(
                f"parent_type must be {resources.PROJECT_RESOURCE_TYPE!r}",
                details={"field": "parent_type", "rule": "enum"})
        parent_id = jobs.parse_project_id(parent_id)
        caller = self._caller(ctxt)
        shares = self._catalog_for(caller).list_project_shares(parent_id, caller=caller)
        return [s.to_dict() for s in shares]
