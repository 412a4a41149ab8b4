"""The client side of the RPC API: what callers (Karbor, the CLI, the benchmarks) import.

Example::

    transport = api.get_transport(conf)            # rebuilds our exception types
    client = api.ProtectorAPI(transport)
    record = client.protect(ctxt, str(uuid.uuid4()), share_id,
                            {"snapshot_name": "nightly", "description": "", "force": False})
    client.restore(ctxt, str(uuid.uuid4()), share_id, record["result"], {}, cast=True)

A ``call`` returns the final job record (the worker sends heartbeats while the
job runs); ``cast=True`` returns at once and the outcome arrives as
notifications.  A request whose ``.start`` notification (or reply) never comes
may be sent again with the same ``job_id``: that is always safe.
"""

from __future__ import annotations

import typing

import oslo_messaging

from manila_protector.rpc import context as rpc_context
from manila_protector.rpc import contract

DEFAULT_TOPIC = contract.DEFAULT_TOPIC


def get_transport(conf: typing.Any, url: str | None = None) -> typing.Any:
    """An RPC transport that turns the worker's errors back into our exception types."""
    return oslo_messaging.get_rpc_transport(conf, url=url,
                                            allowed_remote_exmods=contract.ALLOWED_REMOTE_EXMODS)


class ProtectorAPI:
    """Client for ``manila_protector`` RPC API 1.0.

    :param transport: an oslo.messaging RPC transport (see :func:`get_transport`).
    :param topic: the workers' topic.
    :param timeout: seconds a call may go without a heartbeat from the worker
        before it fails with ``MessagingTimeout`` (the worker is presumed dead).
    :param job_timeout: seconds a ``call`` waits for a job in total.
    """

    def __init__(self, transport: typing.Any, *, topic: str = DEFAULT_TOPIC,
                 timeout: float = 60.0, job_timeout: float = 4 * 3600.0) -> None:
        target = oslo_messaging.Target(topic=topic, namespace=contract.NAMESPACE,
                                       version=contract.VERSION)
        self._client = oslo_messaging.get_rpc_client(
            transport, target, serializer=rpc_context.RequestContextSerializer(),
            timeout=timeout)
        self._timeout = timeout
        self._job_timeout = job_timeout

    def _job(self, ctxt: typing.Any, method: str, cast: bool,
             **kwargs: typing.Any) -> dict[str, typing.Any] | None:
        if cast:
            self._client.cast(ctxt, method, **kwargs)
            return None
        cctxt = self._client.prepare(timeout=self._job_timeout,
                                     call_monitor_timeout=self._timeout)
        return cctxt.call(ctxt, method, wait=True, **kwargs)

    def protect(self, ctxt: typing.Any, job_id: str, share_id: str,
                parameters: dict[str, typing.Any], *, cast: bool = False
                ) -> dict[str, typing.Any] | None:
        """Snapshot a share; the job's result is the saved info."""
        return self._job(ctxt, "protect", cast, job_id=job_id, share_id=share_id,
                         parameters=parameters)

    def restore(self, ctxt: typing.Any, job_id: str, share_id: str,
                saved_info: dict[str, typing.Any], parameters: dict[str, typing.Any],
                *, cast: bool = False) -> dict[str, typing.Any] | None:
        """Restore a snapshot into a new share (or revert the share: ``share_id`` parameter)."""
        return self._job(ctxt, "restore", cast, job_id=job_id, share_id=share_id,
                         saved_info=saved_info, parameters=parameters)

    def delete(self, ctxt: typing.Any, job_id: str, share_id: str,
               saved_info: dict[str, typing.Any], *, cast: bool = False
               ) -> dict[str, typing.Any] | None:
        """Delete a protect's snapshot (already gone is success)."""
        return self._job(ctxt, "delete", cast, job_id=job_id, share_id=share_id,
                         saved_info=saved_info)

    def verify(self, ctxt: typing.Any, job_id: str, share_id: str,
               saved_info: dict[str, typing.Any], *, cast: bool = False
               ) -> dict[str, typing.Any] | None:
        """Check that a protect's snapshot still exists and is available."""
        return self._job(ctxt, "verify", cast, job_id=job_id, share_id=share_id,
                         saved_info=saved_info)

    def get_job(self, ctxt: typing.Any, job_id: str, *, server: str | None = None
                ) -> dict[str, typing.Any]:
        """A job's record (jobs live in the journal of the worker that took them:
        pass ``server`` -- the record's ``host`` -- to ask that worker)."""
        cctxt = self._client.prepare(server=server) if server else self._client
        return cctxt.call(ctxt, "get_job", job_id=job_id)

    def list_resources(self, ctxt: typing.Any) -> list[dict[str, typing.Any]]:
        """The caller's protectable shares."""
        return self._client.call(ctxt, "list_resources")

    def show_resource(self, ctxt: typing.Any, share_id: str) -> dict[str, typing.Any]:
        """One protectable share."""
        return self._client.call(ctxt, "show_resource", share_id=share_id)

    def list_dependent_resources(self, ctxt: typing.Any, parent_type: str, parent_id: str
                                 ) -> list[dict[str, typing.Any]]:
        """The protectable shares of a project."""
        return self._client.call(ctxt, "list_dependent_resources", parent_type=parent_type,
                                 parent_id=parent_id)
