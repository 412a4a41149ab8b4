"""Running one job: its contents parsed, its caller back, its share locked, the core called.

The runner decides *when* a job runs and records what came of it; this module
is what runs it.  Every mutating request the core sends first proves that the
share's lock is still this worker's (the lock's ``ensure`` is the core's
guard), and a caller whose token would expire before the job could finish and
clean up bounds the job (``token_expired``) unless service tokens ride along.
"""

from __future__ import annotations

import datetime
import time
import typing

from manila_protector import exception
from manila_protector import identity
from manila_protector import jobs
from manila_protector import progress as progress_mod
from manila_protector.plugins import runtime as plugin_runtime
from manila_protector.plugins import schemas
from manila_protector.plugins import values


class HeldLock(typing.Protocol):
    """A held share lock (``worker.locks.HeldLock``)."""

    def ensure(self, what: str) -> None: ...


class ShareLocks(typing.Protocol):
    """The per-share locks (``worker.locks.ShareLocks``)."""

    #: Seconds :meth:`hold` waits for a busy share.
    lock_wait: float

    def hold(self, share_id: str) -> typing.ContextManager[HeldLock]: ...


class Contents(typing.NamedTuple):
    """A request's parameters and saved info, validated and parsed."""

    options: values.ProtectOptions | values.RestoreOptions | None
    saved: values.SavedInfo | None


def parse_contents(request: jobs.JobRequest) -> Contents:
    """Validate parameters and saved info against the plugin's schemas.

    :raises exception.InvalidRequest: naming the field and rule.
    """
    if request.operation == jobs.PROTECT:
        return Contents(values.ProtectOptions.from_parameters(request.parameters), None)
    saved = values.SavedInfo.from_dict(request.saved_info)
    if request.operation == jobs.RESTORE:
        return Contents(values.RestoreOptions.from_parameters(request.parameters), saved)
    schemas.validate(schemas.VERIFY_SCHEMA, request.parameters, "parameters")
    return Contents(None, saved)


def token_left(caller: identity.Caller, sends_service_tokens: bool) -> float | None:
    """Seconds the caller's token has left, where that bounds a job (None: it does not).

    :raises exception.TokenExpired: it has expired already.
    """
    if caller.expires_at is None or sends_service_tokens:
        return None
    left = (caller.expires_at - datetime.datetime.now(datetime.UTC)).total_seconds()
    if left <= 0:
        raise exception.TokenExpired(
            f"the caller's token expired at {caller.expires_at.isoformat()} before the job "
            "could run (send it again with a fresh token, or configure [service_user])",
            details={"expired_at": caller.expires_at.isoformat()})
    return left


class Executor:
    """Runs jobs with the plugin core under their share's lock.

    :param runtime: the plugin runtime (Manila clients, the core).
    :param locks: the per-share locks.
    :param lock_waited: told the seconds each job waited for its share's lock.
    """

    def __init__(self, runtime: plugin_runtime.PluginRuntime, locks: ShareLocks,
                 lock_waited: typing.Callable[[float], None] | None = None) -> None:
        self._runtime = runtime
        self._locks = locks
        self._lock_waited = lock_waited or (lambda seconds: None)

    def run(self, request: jobs.JobRequest, caller: identity.Caller, contents: Contents,
            progress: progress_mod.Observer = progress_mod.SILENT) -> dict[str, typing.Any]:
        """Run one job; its result as the job record carries it.

        :param progress: hears the job's phases (the lock wait here, the core's after).
        :raises exception.ProtectorError: the job failed (classified by the caller).
        """
        factory = self._runtime.factory
        left = token_left(caller, factory.sends_service_tokens)
        manila = factory.for_caller(caller)
        progress.phase(progress_mod.WAITING_FOR_LOCK, detail=f"share {request.share_id}",
                       remaining=self._locks.lock_wait)
        began = time.monotonic()
        with self._locks.hold(request.share_id) as held:
            self._lock_waited(time.monotonic() - began)
            protector = self._runtime.protector(manila, guard=held.ensure,
                                                token_expires_in=left, progress=progress)
            if request.operation == jobs.PROTECT:
                options = typing.cast(values.ProtectOptions, contents.options)
                return protector.protect(request.share_id, options, job_tag=request.job_id,
                                         caller=caller).to_dict()
            # Every operation but protect carries saved info.
            saved = typing.cast(values.SavedInfo, contents.saved)
            if request.operation == jobs.RESTORE:
                options = typing.cast(values.RestoreOptions, contents.options)
                return protector.restore(saved, options, job_tag=request.job_id,
                                         caller=caller).to_dict()
            if request.operation == jobs.DELETE:
                return protector.delete(saved, caller=caller).to_dict()
            return protector.verify(saved, caller=caller).to_dict()

    def sweep(self, share_id: str, kind: str, resource_id: str, job_id: str) -> bool:
        """Delete what failed job ``job_id`` left on ``share_id``, under the share's lock,
        with the service's own credentials (``[manila]``).

        :returns: whether nothing of the job's is left.
        :raises exception.ProtectorError: no service credentials, the share busy, the
            lock backend unavailable.
        """
        manila = self._runtime.factory.for_service()
        with self._locks.hold(share_id) as held:
            protector = self._runtime.protector(manila, guard=held.ensure)
            return protector.sweep(kind, resource_id, job_id)
