"""The job runner: validate -> journal -> lock -> run -> notify.

Every job is validated (envelope and schemas) before anything happens, recorded
in the journal before it runs, run under its share's lock by the plugin core,
and announced with exactly one terminal notification.  Expected failures are
classified here, once, as data (a job record); they are not logged as
tracebacks.
"""

from __future__ import annotations

import datetime
import logging
import queue
import threading
import typing

from manila_protector import exception
from manila_protector import identity
from manila_protector import jobs
from manila_protector.plugins import resources
from manila_protector.plugins import runtime as plugin_runtime
from manila_protector.plugins import schemas
from manila_protector.plugins import values
from manila_protector.worker import journal as journal_mod

LOG = logging.getLogger(__name__)


class Notifier(typing.Protocol):
    """Where the runner announces jobs (the RPC layer's ``JobNotifier``)."""

    def start(self, record: jobs.JobRecord) -> None: ...

    def finished(self, record: jobs.JobRecord) -> None: ...


class ShareLocks(typing.Protocol):
    """The per-share lock (``worker.locks.ShareLocks``)."""

    def hold(self, share_id: str) -> typing.ContextManager[HeldLock]: ...


class HeldLock(typing.Protocol):
    """A held share lock (``worker.locks.HeldLock``)."""

    def ensure(self, what: str) -> None: ...


class _Contents(typing.NamedTuple):
    """A request's parameters and saved info, validated and parsed."""

    options: values.ProtectOptions | values.RestoreOptions | None
    saved: values.SavedInfo | None


def _parse_contents(request: jobs.JobRequest) -> _Contents:
    """Validate parameters and saved info against the plugin's schemas.

    :raises exception.InvalidRequest: naming the field and rule.
    """
    if request.operation == jobs.PROTECT:
        return _Contents(values.ProtectOptions.from_parameters(request.parameters),
                         None)
    saved = values.SavedInfo.from_dict(request.saved_info)
    if request.operation == jobs.RESTORE:
        return _Contents(values.RestoreOptions.from_parameters(request.parameters),
                         saved)
    schemas.validate(schemas.VERIFY_SCHEMA, request.parameters, "parameters")
    return _Contents(None, saved)


class _Done(threading.Event):
    """Set when a job finishes; carries its final record to the callers waiting."""

    record: jobs.JobRecord | None = None


class _Pool:
    """A fixed number of daemon threads taking jobs from a queue.

    Daemon threads, so that a worker told to stop can exit while a job still
    runs: the journal keeps that job and the next start resumes it.
    """

    def __init__(self, size: int, target: typing.Callable[[str], None]) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._target = target
        self._threads = [threading.Thread(target=self._loop, name=f"job-{i}", daemon=True)
                         for i in range(size)]
        self._busy = 0
        self._idle = threading.Condition()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def put(self, job_id: str) -> None:
        self._queue.put(job_id)

    def _loop(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            with self._idle:
                self._busy += 1
            try:
                self._target(job_id)
            except Exception:  # noqa: BLE001 - one job's failure must not cost a worker thread
                LOG.exception("job %s: the runner failed; the job stays in the journal and "
                              "resumes at the next start", job_id)
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

    def stop(self, timeout: float) -> int:
        """Take no more work; wait up to ``timeout`` for running jobs.

        :returns: the number of jobs still running.
        """
        while True:  # drop queued jobs: they stay 'accepted' in the journal
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        for _ in self._threads:
            self._queue.put(None)
        with self._idle:
            self._idle.wait_for(lambda: self._busy == 0, timeout=timeout)
            return self._busy


class JobRunner:
    """Runs protect / restore / delete / verify jobs for RPC callers.

    :param journal: the durable job journal.
    :param locks: the per-share locks.
    :param notifier: announces ``.start`` and the terminal notification.
    :param runtime: the plugin runtime (Manila clients, the plugin core).
    :param host: this worker's name (in job records).
    :param max_concurrent_jobs: jobs running at once (on different shares).
    :param max_request_bytes: the largest accepted request.
    :param identify: the caller of a request context (:class:`identity.Caller`):
        validated with Keystone where configured, else read strictly from the
        context; the only place identity is decided.
    """

    def __init__(
        self,
        *,
        journal: journal_mod.Journal,
        locks: ShareLocks,
        notifier: Notifier,
        runtime: plugin_runtime.PluginRuntime,
        host: str,
        max_concurrent_jobs: int,
        max_request_bytes: int,
        identify: typing.Callable[[typing.Any], identity.Caller],
    ) -> None:
        self._journal = journal
        self._locks = locks
        self._notifier = notifier
        self._runtime = runtime
        self.host = host
        self._max_request_bytes = max_request_bytes
        self._identify = identify
        self._pool = _Pool(max_concurrent_jobs, self._run)
        self._done: dict[str, _Done] = {}
        # Contents parsed when a job was accepted, for its run (a resumed job parses again).
        self._contents: dict[str, _Contents] = {}
        self._done_lock = threading.Lock()
        self._stopping = threading.Event()

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> int:
        """Send the notifications a crash left unsent and resume unfinished jobs.

        :returns: the number of jobs resumed.
        """
        for record in self._journal.unnotified():
            LOG.info("job %s (share %s): sending the %s notification a restart left unsent",
                     record.job_id, record.share_id, record.status)
            self._announce_finished(record)
        resumed = self._journal.unfinished()
        for job_id in resumed:
            if not self._journal.start_notified(job_id):
                record = self._journal.get(job_id)
                self._notifier.start(record)
                self._journal.mark_notified(job_id, terminal=False)
            LOG.info("job %s: resuming after a restart", job_id)
            self._schedule(job_id)
        self._pool.start()
        return len(resumed)

    def stop(self, timeout: float) -> int:
        """Take no new jobs; let running ones finish for up to ``timeout`` seconds.

        :returns: jobs still running (they stay in the journal and resume at the next start).
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
            LOG.warning("%d job(s) still running at shutdown; they resume at the next start",
                        still_running)
        return still_running

    # -- jobs ---------------------------------------------------------------------------

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
        """Accept a job (or return the existing job with this ``job_id``).

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
            contents = _parse_contents(request)
            caller = self._caller(ctxt)
            try:
                record, created = self._journal.accept(
                    request, project_id=caller.project_id, context=caller.to_dict(),
                    auth_token=caller.auth_token, host=self.host,
                    request_id=caller.request_id)
            except exception.JobConflict:
                # The conflict names the existing job's operation and share: tell them
                # only to its own project (or an admin), as get_job does.
                if not caller.sees(self._journal.get(request.job_id).project_id):
                    raise exception.NotFound(f"job {request.job_id} not found",
                                             details={"job_id": request.job_id}) from None
                raise
        except exception.ProtectorError as exc:
            LOG.info("refused %s request for job %s: %s", jobs.shown(operation, 32),
                     jobs.shown(job_id), exc)
            self._notifier.finished(jobs.JobRecord.rejected(
                job_id=job_id, operation=operation, share_id=share_id,
                project_id=caller.project_id if caller else None, error=exc, host=self.host,
                request_id=caller.request_id if caller else None))
            raise
        if not created:
            if not caller.sees(record.project_id):
                raise exception.NotFound(f"job {record.job_id} not found")
            LOG.info("job %s (share %s): repeated request, job is %s", record.job_id,
                     record.share_id, record.status)
            return record
        LOG.info("job %s (share %s): %s accepted", record.job_id, record.share_id,
                 record.operation)
        # Journal.begin records that .start was sent; a crash before the job begins
        # sends it once more at the next start.
        self._notifier.start(record)
        self._schedule(record.job_id, contents)
        return record

    def _caller(self, ctxt: typing.Any) -> identity.Caller:
        """The caller of a request; every request must carry a token.

        :raises exception.InvalidRequest: the context is malformed.
        :raises exception.NotAuthorized: no token (or, with Keystone, a bad one).
        """
        caller = self._identify(ctxt)
        if not caller.auth_token:
            raise exception.NotAuthorized("the request carries no token")
        return caller

    def wait(self, job_id: str, timeout: float | None = None) -> jobs.JobRecord:
        """Block until the job finishes (or ``timeout`` passes, or the worker stops).

        :returns: the job's record at that moment.
        """
        with self._done_lock:
            event = self._done.get(job_id)
        if (event is not None and not self._stopping.is_set() and event.wait(timeout)
                and event.record is not None):
            return event.record
        return self._journal.get(job_id)

    def get_job(self, ctxt: typing.Any, job_id: typing.Any) -> jobs.JobRecord:
        """A job's record, for its own project (or an admin).

        :raises exception.NotFound: unknown job, or another project's.
        """
        caller = self._caller(ctxt)
        record = self._journal.get(jobs.parse_job_id(job_id))
        if not caller.sees(record.project_id):
            raise exception.NotFound(f"job {record.job_id} not found")
        return record

    def _schedule(self, job_id: str, contents: _Contents | None = None) -> None:
        with self._done_lock:
            if self._stopping.is_set():
                # Consumed from the broker while shutting down: the journal has it and
                # the next start runs it.
                LOG.info("job %s: accepted during shutdown; it runs after the restart",
                         job_id)
                return
            self._done.setdefault(job_id, _Done())
            if contents is not None:
                self._contents[job_id] = contents
            self._pool.put(job_id)

    def _announce_finished(self, record: jobs.JobRecord) -> None:
        self._notifier.finished(record)
        self._journal.mark_notified(record.job_id, terminal=True)

    def _run(self, job_id: str) -> None:
        with self._done_lock:
            contents = self._contents.pop(job_id, None)
        stored = self._journal.begin(job_id)
        if stored.record.finished:
            self._release_waiters(job_id, stored.record)
            return
        request = stored.request
        try:
            result = self._execute(stored, contents or _parse_contents(request))
        except exception.ProtectorError as exc:
            LOG.warning("job %s (share %s): %s failed: %s [%s]", job_id, request.share_id,
                        request.operation, exc, exc.code)
            record = self._journal.finish(job_id, error=exc.to_dict())
        except Exception as exc:  # noqa: BLE001 - a bug must fail the job, not the worker
            LOG.exception("job %s (share %s): unexpected error", job_id, request.share_id)
            error = exception.ProtectorError(f"internal error: {type(exc).__name__}")
            record = self._journal.finish(job_id, error=error.to_dict())
        else:
            LOG.info("job %s (share %s): %s succeeded", job_id, request.share_id,
                     request.operation)
            record = self._journal.finish(job_id, result=result)
        # The outcome is in the journal: a waiting caller may have it now, while the
        # terminal notification goes out (the journal resends it after a crash).
        self._release_waiters(job_id, record)
        self._announce_finished(record)

    def _release_waiters(self, job_id: str, record: jobs.JobRecord) -> None:
        """Hand a finished job's record to the callers waiting for it."""
        with self._done_lock:
            event = self._done.pop(job_id, None)
        if event is not None:
            event.record = record
            event.set()

    def _execute(self, stored: journal_mod.StoredJob,
                 contents: _Contents) -> dict[str, typing.Any]:
        request = stored.request
        caller = identity.Caller.from_dict(stored.context, stored.auth_token)
        factory = self._runtime.factory
        token_left = None
        if caller.expires_at is not None and not factory.sends_service_tokens:
            token_left = (caller.expires_at
                          - datetime.datetime.now(datetime.UTC)).total_seconds()
            if token_left <= 0:
                raise exception.TokenExpired(
                    f"the caller's token expired at {caller.expires_at.isoformat()} before "
                    "the job could run (send it again with a fresh token, or configure "
                    "[service_user])", details={"expired_at": caller.expires_at.isoformat()})
        manila = factory.for_caller(caller)
        with self._locks.hold(request.share_id) as held:
            # Every mutating request first proves that the share's lock is still ours.
            protector = self._runtime.protector(manila, guard=held.ensure,
                                                token_expires_in=token_left)
            if request.operation == jobs.PROTECT:
                return protector.protect(
                    request.share_id, typing.cast(values.ProtectOptions,
                                                  contents.options),
                    job_tag=request.job_id, caller=caller).to_dict()
            # Every operation but protect carries saved info.
            saved = typing.cast(values.SavedInfo, contents.saved)
            if request.operation == jobs.RESTORE:
                return protector.restore(
                    saved, typing.cast(values.RestoreOptions, contents.options),
                    job_tag=request.job_id, caller=caller).to_dict()
            if request.operation == jobs.DELETE:
                return protector.delete(saved, caller=caller).to_dict()
            return protector.verify(saved, caller=caller).to_dict()

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
