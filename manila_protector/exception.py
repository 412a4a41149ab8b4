"""The one exception tree of manila_protector.

Every error the project raises is a :class:`ProtectorError`.  Each class has a
stable machine-readable ``code`` (what a job record, a notification and an RPC
caller see) and a ``retryable`` flag (whether sending the same request again
later may succeed).

Foreign exceptions (python-manilaclient, keystoneauth, requests, tooz,
jsonschema, oslo.db and SQLAlchemy, alembic) are translated into these in
exactly one place each and re-raised with ``raise ... from exc``.

The constructor signature ``(message, *, request_id=None, details=None)`` and
the ``kwargs`` attribute let oslo.messaging rebuild the exception on the
caller's side (it calls ``cls(*args, **exc.kwargs)``).
"""

from __future__ import annotations

import typing


class ProtectorError(Exception):
    """Base of every manila_protector error."""

    code: typing.ClassVar[str] = "internal_error"
    retryable: typing.ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        request_id: str | None = None,
        details: dict[str, typing.Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id
        self.details = dict(details or {})
        # Read by oslo.messaging when it serialises the exception for a caller.
        self.kwargs = {"request_id": request_id, "details": self.details}

    def to_dict(self) -> dict[str, typing.Any]:
        """The error as the JSON object a job record carries."""
        return {
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
            "request_id": self.request_id,
            "details": dict(self.details),
        }

    def __str__(self) -> str:
        return self.message


class InvalidRequest(ProtectorError):
    """The request is malformed: a schema violation, a bad id, a wrong type."""

    code = "invalid_request"


class NotFound(ProtectorError):
    """A share, snapshot or job does not exist (or is not visible to the caller)."""

    code = "not_found"


class InvalidStatus(ProtectorError):
    """A share or snapshot is in a status that forbids the operation."""

    code = "invalid_status"


class OperationFailed(ProtectorError):
    """Manila accepted the operation but it ended in an error status."""

    code = "operation_failed"


class Conflict(ProtectorError):
    """Manila refused the operation because of the resource's state (HTTP 409)."""

    code = "conflict"


class Unsupported(ProtectorError):
    """The Manila deployment or share type does not support what was asked."""

    code = "unsupported"


class NotAuthorized(ProtectorError):
    """The caller may not do this: no credentials, rejected credentials, or another project."""

    code = "not_authorized"


class TokenExpired(NotAuthorized):
    """The caller's token expired (or would before the job could finish and clean up).

    Send the job again with a fresh token, or let the worker send service tokens
    (``[service_user]``).
    """

    code = "token_expired"
    retryable = True


class IdentityUnavailable(ProtectorError):
    """Keystone could not be asked about the caller's token (unreachable, or it refused us)."""

    code = "identity_unavailable"
    retryable = True


class QuotaExceeded(ProtectorError):
    """Manila refused the operation because the project is over quota."""

    code = "quota_exceeded"


class DeadlineExceeded(ProtectorError):
    """An operation did not finish within its deadline."""

    code = "deadline_exceeded"
    retryable = True


class ManilaUnavailable(ProtectorError):
    """Manila could not be reached or answered with a server error."""

    code = "manila_unavailable"
    retryable = True


class ShareBusy(ProtectorError):
    """Another job holds the share's lock."""

    code = "share_busy"
    retryable = True


class LockUnavailable(ProtectorError):
    """The lock backend could not be reached; the job did not run unlocked."""

    code = "lock_unavailable"
    retryable = True


class WorkerUnavailable(ProtectorError):
    """No worker answered a job in time (the bus is down, or no worker serves the topic).

    The job may still run: sending it again with the same ``job_id`` is safe.
    """

    code = "worker_unavailable"
    retryable = True


class WorkerBusy(ProtectorError):
    """The worker has as many jobs waiting as it takes (``[worker] max_queued_jobs``).

    Nothing was recorded; send the job again later (the same ``job_id`` is safe).
    """

    code = "worker_busy"
    retryable = True


class GuardRefused(ProtectorError):
    """A request that would change Manila was stopped before it was sent: Manila was not asked.

    Raised where the job's guard (the worker's proof that it still holds the
    share's lock) refused; it carries the code and retryability of the guard's
    own reason (e.g. ``lock_unavailable``) and names the request in
    ``details.refused_before``.  Such a request is never sent again by the job.
    """

    def __init__(
        self,
        message: str,
        *,
        request_id: str | None = None,
        details: dict[str, typing.Any] | None = None,
        code: str = ProtectorError.code,
        retryable: bool = False,
    ) -> None:
        super().__init__(message, request_id=request_id, details=details)
        self.code = code  # type: ignore[misc]
        self.retryable = retryable  # type: ignore[misc]
        self.kwargs.update(code=code, retryable=retryable)

    @classmethod
    def before(cls, what: str, reason: ProtectorError) -> GuardRefused:
        """The refusal of ``what`` (a description of the request) for ``reason``."""
        return cls(reason.message, request_id=reason.request_id,
                   details={**reason.details, "refused_before": what},
                   code=reason.code, retryable=reason.retryable)


class JobConflict(ProtectorError):
    """A job id was reused for a different operation or share."""

    code = "job_conflict"


class NotOwner(ProtectorError):
    """The job belongs to another worker now (it was taken over): this one must not run it."""

    code = "not_owner"


class StoreUnavailable(ProtectorError):
    """The job store (its database) could not be reached or did not answer in time."""

    code = "store_unavailable"
    retryable = True


class StoreSchemaOutdated(StoreUnavailable):
    """The job store's schema is not the one this release needs: run its migrations."""

    code = "store_schema_outdated"
    retryable = False


class NotificationFailed(Exception):
    """The broker did not take a notification (internal: it is sent again later).

    Not a :class:`ProtectorError`: it never reaches a caller.
    """


def _leaves() -> dict[str, type[ProtectorError]]:
    found: dict[str, type[ProtectorError]] = {}
    pending: list[type[ProtectorError]] = [ProtectorError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


def from_dict(error: typing.Mapping[str, typing.Any]) -> ProtectorError:
    """The error a job record carries (:meth:`ProtectorError.to_dict`) as an exception.

    The class is the one with that ``code``; an unknown code keeps its code and
    retryability on a :class:`ProtectorError`.
    """
    code = str(error.get("code") or ProtectorError.code)
    message = str(error.get("message") or code)
    details = dict(error.get("details") or {})
    request_id = error.get("request_id")
    cls = _leaves().get(code)
    if cls is None or cls is GuardRefused:
        return GuardRefused(message, request_id=request_id, details=details, code=code,
                            retryable=bool(error.get("retryable")))
    return cls(message, request_id=request_id, details=details)
