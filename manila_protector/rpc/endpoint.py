"""The RPC endpoint (version 1.2): hands each request to the runner and returns its record.

No logic lives here.  Every method may be used with ``call`` (the reply is the
job record; with ``wait=True`` -- what :class:`~manila_protector.rpc.api.ProtectorAPI`
sends -- the final record, while heartbeats keep the call alive) or with
``cast`` (the outcome arrives only as notifications).
"""

from __future__ import annotations

import functools
import logging
import typing

import oslo_messaging
from oslo_messaging.rpc import dispatcher as rpc_dispatcher

from manila_protector import exception
from manila_protector import jobs
from manila_protector.rpc import contract

LOG = logging.getLogger(__name__)

_T = typing.TypeVar("_T")

def _expected(method: typing.Callable[..., _T]) -> typing.Callable[..., _T]:
    """Refusals reach the caller typed, and without the worker's traceback.

    oslo.messaging sends the traceback of whatever an endpoint raises with the
    reply; a refusal carries nothing a caller should see of the worker's code.  So
    the error travels as a fresh copy of ours with no traceback and no cause
    (oslo.messaging's ``ExpectedException`` with that ``exc_info``; it is also
    logged at DEBUG only), and a bug as a plain ``internal_error``, its traceback
    logged here.
    """
    @functools.wraps(method)
    def typed(*args: typing.Any, **kwargs: typing.Any) -> _T:
        try:
            return method(*args, **kwargs)
        except exception.ProtectorError as exc:
            clean = exception.from_dict(exc.to_dict())
        except Exception:  # noqa: BLE001 - a bug answers internal_error, never a traceback
            LOG.exception("RPC method %s failed unexpectedly", method.__name__)
            clean = exception.ProtectorError("internal error: the worker logged it")
        expected = oslo_messaging.ExpectedException()
        expected.exc_info = (type(clean), clean, None)
        raise expected from None

    return typed

class AccessPolicy(oslo_messaging.ExplicitRPCAccessPolicy):
    """The RPC server's access policy: only the methods marked ``@oslo_messaging.expose``
    are callable, and oslo.messaging's own ping where ``rpc_ping_enabled`` adds it.

    (oslo.messaging's default policy lets any public attribute be called: a request
    for the method ``target`` reached the endpoint's ``Target`` and failed with a
    TypeError instead of being refused as ``NoSuchMethod``.  The explicit policy
    alone hid the ``oslo_rpc_server_ping`` endpoint that ``rpc_ping_enabled = true``
    adds, which then answered ``NoSuchMethod`` and logged a traceback per ping.)
    """

    def is_allowed(self, endpoint: typing.Any, method: str) -> bool:
        if isinstance(endpoint, rpc_dispatcher.PingEndpoint):
            return method == "oslo_rpc_server_ping"
        return super().is_allowed(endpoint, method)


ACCESS_POLICY = AccessPolicy


class Runner(typing.Protocol):
    """What the endpoint needs of the job runner (``worker.runner.JobRunner``)."""

    def submit(self, ctxt: typing.Any, **request: typing.Any) -> jobs.JobRecord: ...

    def wait(self, job_id: str, timeout: float | None = None) -> jobs.JobRecord: ...

    def get_job(self, ctxt: typing.Any, job_id: typing.Any) -> jobs.JobRecord: ...

    def list_jobs(self, ctxt: typing.Any, filters: typing.Any, limit: typing.Any,
                  marker: typing.Any) -> list[jobs.JobRecord]: ...

    def list_resources(self, ctxt: typing.Any) -> list[dict[str, typing.Any]]: ...

    def show_resource(self, ctxt: typing.Any, share_id: typing.Any) -> dict[str, typing.Any]: ...

    def list_dependent_resources(self, ctxt: typing.Any, parent_type: typing.Any,
                                 parent_id: typing.Any) -> list[dict[str, typing.Any]]: ...

    def status(self, ctxt: typing.Any) -> dict[str, typing.Any]: ...


def _check_wait(wait: typing.Any) -> bool:
    if not isinstance(wait, bool):
        raise exception.InvalidRequest("wait must be a boolean",
                                       details={"field": "wait", "rule": "type"})
    return wait


class ProtectorEndpoint:
    """``manila_protector`` RPC API 1.2 (1.0 plus ``list_jobs`` in 1.1, ``ping`` in 1.2)."""

    target = oslo_messaging.Target(namespace=contract.NAMESPACE, version=contract.VERSION)

    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    # NOTE: ``ctxt`` is positional-only in every method: an argument *named* ``ctxt``
    # (or ``self``) then lands in ``unexpected`` and is refused like any other, where
    # it used to make the dispatcher's call raise a TypeError.

    def _job(self, ctxt: typing.Any, wait: typing.Any, unexpected: dict[str, typing.Any],
             **request: typing.Any) -> dict[str, typing.Any]:
        wait = _check_wait(wait)  # before the job exists: a refused request runs nothing
        record = self._runner.submit(ctxt, unexpected=unexpected, **request)
        if wait and not record.finished:
            record = self._runner.wait(record.job_id)
        return record.to_dict()

    @oslo_messaging.expose
    @_expected
    def protect(self, ctxt: typing.Any, /, job_id: typing.Any = None, share_id: typing.Any = None,
                parameters: typing.Any = None, wait: typing.Any = False,
                **unexpected: typing.Any) -> dict[str, typing.Any]:
        return self._job(ctxt, wait, unexpected, operation=jobs.PROTECT, job_id=job_id,
                         share_id=share_id, parameters=parameters)

    @oslo_messaging.expose
    @_expected
    def restore(self, ctxt: typing.Any, /, job_id: typing.Any = None, share_id: typing.Any = None,
                saved_info: typing.Any = None, parameters: typing.Any = None,
                wait: typing.Any = False, **unexpected: typing.Any) -> dict[str, typing.Any]:
        return self._job(ctxt, wait, unexpected, operation=jobs.RESTORE, job_id=job_id,
                         share_id=share_id, saved_info=saved_info, parameters=parameters)

    @oslo_messaging.expose
    @_expected
    def delete(self, ctxt: typing.Any, /, job_id: typing.Any = None, share_id: typing.Any = None,
               saved_info: typing.Any = None, wait: typing.Any = False,
               **unexpected: typing.Any) -> dict[str, typing.Any]:
        return self._job(ctxt, wait, unexpected, operation=jobs.DELETE, job_id=job_id,
                         share_id=share_id, saved_info=saved_info)

    @oslo_messaging.expose
    @_expected
    def verify(self, ctxt: typing.Any, /, job_id: typing.Any = None, share_id: typing.Any = None,
               saved_info: typing.Any = None, wait: typing.Any = False,
               **unexpected: typing.Any) -> dict[str, typing.Any]:
        return self._job(ctxt, wait, unexpected, operation=jobs.VERIFY, job_id=job_id,
                         share_id=share_id, saved_info=saved_info)

    @oslo_messaging.expose
    @_expected
    def get_job(self, ctxt: typing.Any, /, job_id: typing.Any = None,
                **unexpected: typing.Any) -> dict[str, typing.Any]:
        jobs.refuse_unexpected(unexpected)
        return self._runner.get_job(ctxt, job_id).to_dict()

    @oslo_messaging.expose
    @_expected
    def list_jobs(self, ctxt: typing.Any, /, filters: typing.Any = None,
                  limit: typing.Any = None, marker: typing.Any = None,
                  **unexpected: typing.Any) -> list[dict[str, typing.Any]]:
        """(1.1) Jobs of the caller's project (every project's for an admin), newest first."""
        jobs.refuse_unexpected(unexpected)
        return [record.to_dict()
                for record in self._runner.list_jobs(ctxt, filters, limit, marker)]

    @oslo_messaging.expose
    @_expected
    def ping(self, ctxt: typing.Any, /, **unexpected: typing.Any) -> dict[str, typing.Any]:
        """(1.2) This worker's host, version, running and queued jobs, uptime, and the
        workers its lock backend knows on the topic."""
        jobs.refuse_unexpected(unexpected)
        return self._runner.status(ctxt)

    @oslo_messaging.expose
    @_expected
    def list_resources(self, ctxt: typing.Any, /,
                       **unexpected: typing.Any) -> list[dict[str, typing.Any]]:
        jobs.refuse_unexpected(unexpected)
        return self._runner.list_resources(ctxt)

    @oslo_messaging.expose
    @_expected
    def show_resource(self, ctxt: typing.Any, /, share_id: typing.Any = None,
                      **unexpected: typing.Any) -> dict[str, typing.Any]:
        jobs.refuse_unexpected(unexpected)
        return self._runner.show_resource(ctxt, share_id)

    @oslo_messaging.expose
    @_expected
    def list_dependent_resources(self, ctxt: typing.Any, /, parent_type: typing.Any = None,
                                 parent_id: typing.Any = None,
                                 **unexpected: typing.Any) -> list[dict[str, typing.Any]]:
        jobs.refuse_unexpected(unexpected)
        return self._runner.list_dependent_resources(ctxt, parent_type, parent_id)
