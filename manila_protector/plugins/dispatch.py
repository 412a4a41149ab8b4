"""Where a Karbor hook's job runs: in karbor-protection (``direct``) or on a worker (``worker``).

``[dispatch] mode`` in the provider file chooses.  Both take a job the same way
-- the caller's context, the share, the validated options or saved info, and a
job id -- and give back the same value types, so the hooks write Karbor's bank
the same way whichever ran the job.

The job id is derived from what Karbor hands the hook (:func:`karbor_job_id`):
the checkpoint (protect, delete), the restore or the verification, the share
and the operation.  When karbor-protection dies mid-flow and Karbor runs the
flow again, the hook asks for the same job: a worker answers from that job
(no second snapshot, no second share); in direct mode the core adopts what
the job tagged.

In worker mode the caller's whole request context travels with the job (token,
user, project, roles, request id, service catalog), and the hook waits for the
final record while the worker's heartbeats keep the call alive.
"""

from __future__ import annotations

import threading
import typing
import uuid

from manila_protector import exception
from manila_protector import identity
from manila_protector import jobs
from manila_protector import opts
from manila_protector.plugins import runtime as runtime_mod
from manila_protector.plugins import share_protector
from manila_protector.plugins import values
from manila_protector.rpc import api as rpc_api

#: The namespace of the job ids derived from Karbor's objects (uuid5).
KARBOR_JOB_NAMESPACE = uuid.UUID("6c1f7f64-3f4e-5d5a-9b8e-2d1c0a7e4b90")


def karbor_job_id(operation: str, owner: typing.Any, resource_id: str) -> str | None:
    """The job id of ``operation`` on a share for a Karbor checkpoint, restore or verification.

    The same for every run of the same flow; different for two restores (or
    verifications) of one checkpoint.  None where Karbor gave no owner id.
    """
    owner_id = getattr(owner, "id", None)
    if not owner_id:
        return None
    return str(uuid.uuid5(KARBOR_JOB_NAMESPACE, f"karbor:{operation}:{owner_id}:{resource_id}"))


class Dispatch(typing.Protocol):
    """What the hooks need of a mode."""

    def protect(self, context: typing.Any, share_id: str, options: values.ProtectOptions,
                job_id: str | None) -> values.SavedInfo: ...

    def restore(self, context: typing.Any, saved: values.SavedInfo,
                options: values.RestoreOptions, job_id: str | None) -> values.RestoreResult: ...

    def verify(self, context: typing.Any, saved: values.SavedInfo,
               job_id: str | None) -> values.VerifyResult: ...

    def delete(self, context: typing.Any, saved: values.SavedInfo,
               job_id: str | None) -> values.DeleteResult: ...


class Direct:
    """Runs each job here, through the protection core (``mode = direct``).

    :param runtime: gives the plugin runtime (built on first use: Karbor loads
        plugins before any request, and loading must not need Manila).
    """

    def __init__(self, runtime: typing.Callable[[], runtime_mod.PluginRuntime]) -> None:
        self._runtime = runtime

    def protector(self, caller: identity.Caller) -> share_protector.ShareProtector:
        """The core acting for ``caller``."""
        runtime = self._runtime()
        return runtime.protector(runtime.client(caller))

    def protect(self, context: typing.Any, share_id: str, options: values.ProtectOptions,
                job_id: str | None) -> values.SavedInfo:
        caller = identity.Caller.from_context(context)
        return self.protector(caller).protect(share_id, options, job_tag=job_id, caller=caller)

    def restore(self, context: typing.Any, saved: values.SavedInfo,
                options: values.RestoreOptions, job_id: str | None) -> values.RestoreResult:
        caller = identity.Caller.from_context(context)
        return self.protector(caller).restore(saved, options, job_tag=job_id, caller=caller)

    def verify(self, context: typing.Any, saved: values.SavedInfo,
               job_id: str | None) -> values.VerifyResult:
        caller = identity.Caller.from_context(context)
        return self.protector(caller).verify(saved, caller=caller)

    def delete(self, context: typing.Any, saved: values.SavedInfo,
               job_id: str | None) -> values.DeleteResult:
        caller = identity.Caller.from_context(context)
        return self.protector(caller).delete(saved, caller=caller)


class ToWorker:
    """Sends each job to the protection workers and waits for its end (``mode = worker``).

    :param conf: the provider file's ConfigOpts (the plugin's own: the workers'
        messaging defaults -- durable declarations -- are set there, never on
        Karbor's global configuration); ``[dispatch]`` registered.
    """

    def __init__(self, conf: typing.Any) -> None:
        self._conf = conf
        self._client: rpc_api.ProtectorAPI | None = None
        self._transport: typing.Any = None
        self._lock = threading.Lock()

    def _api(self) -> rpc_api.ProtectorAPI:
        with self._lock:
            if self._client is None:
                section = self._conf.dispatch
                if not section.transport_url:
                    raise exception.Unsupported(
                        f"[{opts.DISPATCH_GROUP}] mode = {opts.DISPATCH_WORKER} needs "
                        f"[{opts.DISPATCH_GROUP}] transport_url (the workers' RabbitMQ)")
                rpc_api.prepare_conf(self._conf)
                transport = rpc_api.get_transport(self._conf, section.transport_url)
                self._transport = transport
                self._client = rpc_api.ProtectorAPI(
                    transport, topic=section.topic, exchange=section.exchange,
                    timeout=section.call_monitor_timeout, job_timeout=section.call_timeout)
            return self._client

    def close(self) -> None:
        """Close the connection to the workers' bus (the next job opens it again)."""
        with self._lock:
            transport, self._transport, self._client = self._transport, None, None
        if transport is not None:
            transport.cleanup()

    @staticmethod
    def _result(record: dict[str, typing.Any]) -> dict[str, typing.Any]:
        """The job's result; its error as our exception; a job not finished as unavailable."""
        if record["status"] == jobs.FAILED:
            raise exception.from_dict(record["error"] or {})
        if record["status"] != jobs.SUCCEEDED:
            raise exception.WorkerUnavailable(
                f"job {record['job_id']} is still {record['status']} on worker "
                f"{record.get('host')} (it stopped before the job ended); running the flow "
                "again answers from the same job",
                details={"job_id": record["job_id"], "host": record.get("host")})
        return record["result"]

    @staticmethod
    def _job_id(job_id: str | None) -> str:
        return job_id or str(uuid.uuid4())

    def protect(self, context: typing.Any, share_id: str, options: values.ProtectOptions,
                job_id: str | None) -> values.SavedInfo:
        record = self._api().protect(context, self._job_id(job_id), share_id,
                                     options.to_parameters())
        return values.SavedInfo.from_dict(self._result(record))

    def restore(self, context: typing.Any, saved: values.SavedInfo,
                options: values.RestoreOptions, job_id: str | None) -> values.RestoreResult:
        record = self._api().restore(context, self._job_id(job_id), saved.share_id,
                                     saved.to_dict(), options.to_parameters())
        return values.RestoreResult.from_dict(self._result(record))

    def verify(self, context: typing.Any, saved: values.SavedInfo,
               job_id: str | None) -> values.VerifyResult:
        record = self._api().verify(context, self._job_id(job_id), saved.share_id,
                                    saved.to_dict())
        return values.VerifyResult.from_dict(self._result(record))

    def delete(self, context: typing.Any, saved: values.SavedInfo,
               job_id: str | None) -> values.DeleteResult:
        record = self._api().delete(context, self._job_id(job_id), saved.share_id,
                                    saved.to_dict())
        return values.DeleteResult.from_dict(self._result(record))
