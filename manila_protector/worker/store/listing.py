"""Listing jobs: validated filters and one page of rows, newest first.

Invariants: a page holds at most :data:`MAX_PAGE` rows, ordered by
``(created_at, job_id)`` descending; the marker is the last job of the previous
page and the next page starts strictly after it in that order, so paging visits
every job once even when jobs share a timestamp (``job_id`` breaks the tie) and
while new jobs arrive (they sort before the marker).  A marker that is no job
the caller may see is "not found", like any job of another project.
"""

from __future__ import annotations

import dataclasses
import datetime
import typing

import sqlalchemy as sa

from manila_protector import exception
from manila_protector import jobs
from manila_protector.worker.store import models

#: The most records one page holds.
MAX_PAGE = 1000

_JOBS = models.jobs


def _invalid(message: str, field: str, rule: str) -> exception.InvalidRequest:
    return exception.InvalidRequest(message, details={"field": field, "rule": rule})


@dataclasses.dataclass(frozen=True)
class Filters:
    """What a caller asked to list (validated by :meth:`build`)."""

    #: Whose jobs; None: every project's (an administrator, decided by the caller).
    project_id: str | None
    status: str | None = None
    operation: str | None = None
    share_id: str | None = None
    #: Jobs created at or after this time (naive UTC).
    since: datetime.datetime | None = None
    limit: int = MAX_PAGE
    marker: str | None = None

    @classmethod
    def build(cls, *, project_id: str | None, status: typing.Any = None,
              operation: typing.Any = None, share_id: typing.Any = None,
              since: typing.Any = None, limit: typing.Any = MAX_PAGE,
              marker: typing.Any = None) -> Filters:
        """Check every filter.

        :param since: a :class:`datetime.datetime`; naive means UTC.
        :raises exception.InvalidRequest: naming the field and the rule.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise _invalid(f"limit must be an integer from 1 to {MAX_PAGE}", "limit", "range")
        if status is not None and status not in jobs.STATUSES:
            raise _invalid(f"unknown status {str(status)[:32]!r}", "status", "enum")
        if operation is not None and operation not in jobs.OPERATIONS:
            raise _invalid(f"unknown operation {str(operation)[:32]!r}", "operation", "enum")
        if since is not None:
            if not isinstance(since, datetime.datetime):
                raise _invalid("since must be a time", "since", "type")
            if since.tzinfo is not None:
                since = since.astimezone(datetime.UTC).replace(tzinfo=None)
        return cls(project_id=project_id, status=status, operation=operation,
                   share_id=None if share_id is None else jobs.parse_share_id(share_id),
                   since=since, limit=limit,
                   marker=None if marker is None else jobs.parse_job_id(marker))


def page(conn: sa.Connection, filters: Filters) -> list[sa.Row[typing.Any]]:
    """One page of ``jobs`` rows (run inside the caller's transaction).

    :raises exception.NotFound: the marker is no job the caller may see.
    """
    query = sa.select(_JOBS)
    if filters.project_id is not None:
        query = query.where(_JOBS.c.project_id == filters.project_id)
    if filters.status is not None:
        query = query.where(_JOBS.c.status == filters.status)
    if filters.operation is not None:
        query = query.where(_JOBS.c.operation == filters.operation)
    if filters.share_id is not None:
        query = query.where(_JOBS.c.share_id == filters.share_id)
    if filters.since is not None:
        query = query.where(_JOBS.c.created_at >= filters.since)
    if filters.marker is not None:
        last = conn.execute(sa.select(_JOBS.c.created_at, _JOBS.c.project_id)
                            .where(_JOBS.c.job_id == filters.marker)).first()
        if last is None or (filters.project_id is not None
                            and last.project_id != filters.project_id):
            raise exception.NotFound(f"marker job {filters.marker} not found",
                                     details={"field": "marker", "job_id": filters.marker})
        query = query.where(sa.or_(
            _JOBS.c.created_at < last.created_at,
            sa.and_(_JOBS.c.created_at == last.created_at, _JOBS.c.job_id < filters.marker)))
    query = query.order_by(_JOBS.c.created_at.desc(), _JOBS.c.job_id.desc())
    return list(conn.execute(query.limit(filters.limit)))
