"""Jobs: what a caller asks for (:class:`JobRequest`) and what it gets back (:class:`JobRecord`).

The job vocabulary both sides share: the RPC layer (endpoint, notifications)
and the worker (runner, journal) import it; it imports neither.

A job is identified by the caller's ``job_id`` (a UUID), the idempotency key:
the same ``job_id`` again returns the same job and repeats no side effect.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import typing
import uuid

from manila_protector import exception

PROTECT = "protect"
RESTORE = "restore"
DELETE = "delete"
VERIFY = "verify"
OPERATIONS = frozenset({PROTECT, RESTORE, DELETE, VERIFY})
#: Operations that act on a snapshot saved by an earlier protect.
NEEDS_SAVED_INFO = frozenset({RESTORE, DELETE, VERIFY})

ACCEPTED = "accepted"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
STATUSES = frozenset({ACCEPTED, RUNNING, SUCCEEDED, FAILED})
TERMINAL = frozenset({SUCCEEDED, FAILED})

#: Context keys that hold secrets: never logged, notified or journaled.
SECRET_CONTEXT_KEYS = frozenset({"auth_token", "auth_token_info"})

_SHARE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$")


def utcnow() -> str:
    """The current time as an ISO 8601 UTC string (what job records carry)."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")


def parse_job_id(job_id: typing.Any) -> str:
    """Return the canonical form of a job id.

    :raises exception.InvalidRequest: it is not a UUID string.
    """
    if not isinstance(job_id, str) or len(job_id) > 64:
        raise exception.InvalidRequest("job_id must be a UUID string",
                                       details={"field": "job_id", "rule": "uuid"})
    try:
        return str(uuid.UUID(job_id))
    except ValueError as exc:
        raise exception.InvalidRequest(f"job_id {job_id[:64]!r} is not a UUID",
                                       details={"field": "job_id", "rule": "uuid"}) from exc


def parse_share_id(share_id: typing.Any) -> str:
    """Check a share id's form (Manila's are UUIDs; be lenient but safe).

    :raises exception.InvalidRequest: not a short printable identifier.
    """
    if not isinstance(share_id, str) or not _SHARE_ID.match(share_id):
        shown = share_id[:64] if isinstance(share_id, str) else type(share_id).__name__
        raise exception.InvalidRequest(f"share_id {shown!r} is not a valid share id",
                                       details={"field": "share_id", "rule": "pattern"})
    return share_id


@dataclasses.dataclass(frozen=True)
class JobRequest:
    """A validated request: the operation, its share and its (JSON) arguments."""

    job_id: str
    operation: str
    share_id: str
    parameters: dict[str, typing.Any]
    saved_info: dict[str, typing.Any] | None = None

    @classmethod
    def build(
        cls,
        *,
        job_id: typing.Any,
        operation: typing.Any,
        share_id: typing.Any,
        parameters: typing.Any,
        saved_info: typing.Any = None,
        max_bytes: int,
    ) -> JobRequest:
        """Check the envelope of a request (the plugin schemas check the contents).

        :raises exception.InvalidRequest: naming the field and the rule.
        """
        job_id = parse_job_id(job_id)
        if operation not in OPERATIONS:
            raise exception.InvalidRequest(
                f"unknown operation {str(operation)[:32]!r}",
                details={"field": "operation", "rule": "enum"})
        share_id = parse_share_id(share_id)
        if parameters is None:
            parameters = {}
        if not isinstance(parameters, dict):
            raise exception.InvalidRequest("parameters must be an object",
                                           details={"field": "parameters", "rule": "type"})
        if operation in NEEDS_SAVED_INFO:
            if not isinstance(saved_info, dict):
                raise exception.InvalidRequest(
                    f"{operation} needs saved_info (the result of a protect) as an object",
                    details={"field": "saved_info", "rule": "type"})
            if saved_info.get("share_id") != share_id:
                raise exception.InvalidRequest(
                    f"saved_info belongs to share {str(saved_info.get('share_id'))[:64]!r}, "
                    f"not {share_id}",
                    details={"field": "saved_info.share_id", "rule": "matches_share_id"})
        else:
            saved_info = None
        size = len(json.dumps({"p": parameters, "s": saved_info}, default=str))
        if size > max_bytes:
            raise exception.InvalidRequest(
                f"request is {size} bytes; the limit is {max_bytes}",
                details={"field": "parameters", "rule": "max_bytes"})
        return cls(job_id=job_id, operation=operation, share_id=share_id,
                   parameters=parameters, saved_info=saved_info)

    def to_dict(self) -> dict[str, typing.Any]:
        return dataclasses.asdict(self)

    def same_job_as(self, operation: str, share_id: str) -> bool:
        return self.operation == operation and self.share_id == share_id


@dataclasses.dataclass(frozen=True)
class JobRecord:
    """A job as callers see it: in ``call`` replies, notifications and ``get_job``."""

    job_id: str
    operation: str
    share_id: str
    project_id: str | None
    status: str
    result: dict[str, typing.Any] | None = None
    error: dict[str, typing.Any] | None = None
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    host: str | None = None
    request_id: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    def to_dict(self) -> dict[str, typing.Any]:
        return dataclasses.asdict(self)

    @classmethod
    def rejected(cls, *, job_id: typing.Any, operation: typing.Any, share_id: typing.Any,
                 project_id: str | None, error: exception.ProtectorError, host: str,
                 request_id: str | None) -> JobRecord:
        """The record of a request refused before it became a job (bad input)."""
        now = utcnow()
        return cls(
            job_id=str(job_id)[:64] if job_id is not None else "",
            operation=str(operation)[:32] if operation is not None else "",
            share_id=str(share_id)[:255] if share_id is not None else "",
            project_id=project_id,
            status=FAILED,
            error=error.to_dict(),
            created_at=now,
            finished_at=now,
            host=host,
            request_id=request_id,
        )


def context_without_secrets(ctxt: typing.Any) -> dict[str, typing.Any]:
    """A request context as a dict with no secret in it (for the journal)."""
    data = dict(ctxt.to_dict())
    # oslo.context < 4 (Karbor's environment) names them 'user' and 'tenant' only.
    data.setdefault("user_id", getattr(ctxt, "user_id", None))
    data.setdefault("project_id", getattr(ctxt, "project_id", None))
    for key in SECRET_CONTEXT_KEYS:
        data.pop(key, None)
    return data


def caller_is_admin(ctxt: typing.Any) -> bool:
    """Whether the caller is an administrator (the flag or an ``admin`` role)."""
    return bool(getattr(ctxt, "is_admin", False)) or "admin" in (getattr(ctxt, "roles", None)
                                                                 or [])
