"""Jobs: what a caller asks for (:class:`JobRequest`) and what it gets back (:class:`JobRecord`).

The job vocabulary both sides share: the RPC layer (endpoint, notifications)
and the worker (runner, job store) import it; it imports neither.

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

#: Context keys that hold secrets: never logged, notified or stored with a job.
SECRET_CONTEXT_KEYS = frozenset({"auth_token", "auth_token_info"})

_PROJECT_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def utcnow() -> str:
    """The current time as an ISO 8601 UTC string (what job records carry)."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")


def shown(value: typing.Any, limit: int = 64) -> str:
    """A caller-supplied value as it may appear in a log line or a message.

    Escaped (a newline cannot forge another log line) and cut to ``limit``
    characters; a value that is not a string shows as its type.
    """
    if not isinstance(value, str):
        return f"<{type(value).__name__}>"
    return ascii(value[:limit])


def refuse_unexpected(unexpected: typing.Mapping[str, typing.Any]) -> None:
    """:raises exception.InvalidRequest: naming the arguments no method takes."""
    if unexpected:
        names = sorted(str(k)[:32] for k in unexpected)[:5]
        raise exception.InvalidRequest(
            f"unexpected argument(s): {', '.join(shown(n) for n in names)}",
            details={"field": ", ".join(names), "rule": "additionalProperties"})


def parse_uuid(value: typing.Any, field: str) -> str:
    """Return the canonical form of a UUID (every id that reaches a URL is one).

    :raises exception.InvalidRequest: it is not a UUID string; ``details.field``
        names ``field``.
    """
    if not isinstance(value, str) or len(value) > 64:
        raise exception.InvalidRequest(f"{field} must be a UUID string",
                                       details={"field": field, "rule": "uuid"})
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise exception.InvalidRequest(f"{field} {shown(value)} is not a UUID",
                                       details={"field": field, "rule": "uuid"}) from exc


def parse_job_id(job_id: typing.Any) -> str:
    """Return the canonical form of a job id.

    :raises exception.InvalidRequest: it is not a UUID string.
    """
    return parse_uuid(job_id, "job_id")


def parse_share_id(share_id: typing.Any) -> str:
    """Return the canonical form of a share id (Manila's are UUIDs).

    :raises exception.InvalidRequest: it is not a UUID string.
    """
    return parse_uuid(share_id, "share_id")


def parse_project_id(project_id: typing.Any) -> str:
    """Check a project id's form (Keystone's are hex; a deployment's may differ a little).

    :raises exception.InvalidRequest: not a short id of letters, digits, ``-`` and ``_``.
    """
    if not isinstance(project_id, str) or not _PROJECT_ID.match(project_id):
        raise exception.InvalidRequest(f"parent_id {shown(project_id)} is not a project id",
                                       details={"field": "parent_id", "rule": "pattern"})
    return project_id


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
    #: What an unfinished job is doing now (``manila_protector.progress.PHASES``);
    #: None once it finished.
    phase: str | None = None
    #: What the phase is about (``snapshot <id>``), if anything.
    phase_detail: str | None = None
    #: When the job entered its phase.
    phase_started_at: str | None = None
    #: When the current stage must end by (the lock wait, the operation's deadline,
    #: the cleanup's), where it is bounded.
    deadline: str | None = None

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


#: The page ``list_jobs`` returns when the caller names no limit, and the largest.
DEFAULT_PAGE = 100
MAX_PAGE = 1000
_FILTERS = frozenset({"status", "operation", "share_id", "since"})


@dataclasses.dataclass(frozen=True)
class ListFilters:
    """A ``list_jobs`` request's filters, limit and marker, checked."""

    status: str | None = None
    operation: str | None = None
    share_id: str | None = None
    since: datetime.datetime | None = None
    limit: int = DEFAULT_PAGE
    marker: str | None = None

    @classmethod
    def build(cls, filters: typing.Any, limit: typing.Any, marker: typing.Any) -> ListFilters:
        """:raises exception.InvalidRequest: naming the field and the rule."""
        filters = {} if filters is None else filters
        if not isinstance(filters, dict):
            raise exception.InvalidRequest("filters must be an object",
                                           details={"field": "filters", "rule": "type"})
        unknown = sorted(str(k)[:32] for k in set(filters) - _FILTERS)
        if unknown:
            raise exception.InvalidRequest(
                f"unknown filter(s): {', '.join(shown(k) for k in unknown[:5])} "
                f"(known: {', '.join(sorted(_FILTERS))})",
                details={"field": "filters", "rule": "additionalProperties"})
        status = filters.get("status")
        if status is not None and status not in STATUSES:
            raise exception.InvalidRequest(f"status {shown(status)} is not a job status",
                                           details={"field": "filters.status", "rule": "enum"})
        operation = filters.get("operation")
        if operation is not None and operation not in OPERATIONS:
            raise exception.InvalidRequest(
                f"operation {shown(operation)} is not an operation",
                details={"field": "filters.operation", "rule": "enum"})
        share_id = filters.get("share_id")
        since = filters.get("since")
        if since is not None:
            try:
                since = datetime.datetime.fromisoformat(since)
            except (TypeError, ValueError):
                raise exception.InvalidRequest(
                    f"since {shown(since)} is not an ISO 8601 time",
                    details={"field": "filters.since", "rule": "format"}) from None
        if limit is None:
            limit = DEFAULT_PAGE
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise exception.InvalidRequest(f"limit must be a whole number from 1 to {MAX_PAGE}",
                                           details={"field": "limit", "rule": "range"})
        return cls(status=status, operation=operation,
                   share_id=None if share_id is None else parse_share_id(share_id),
                   since=since, limit=limit,
                   marker=None if marker is None else parse_uuid(marker, "marker"))
