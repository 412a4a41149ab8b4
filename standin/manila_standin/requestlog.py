"""The record of every request the stand-in answered, for tests to assert on."""

from __future__ import annotations

import dataclasses
import threading


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    """One request as the stand-in saw it.

    :param method: HTTP method.
    :param path: the path as received, without query string.
    :param route: the path below ``/v2`` without a project id (``/shares/x``);
        the received path for unversioned requests.
    :param query: query parameters (last value wins).
    :param status: the HTTP status answered.
    :param project_id: the caller's project (None when not authenticated).
    :param microversion: the requested microversion (None: unversioned URL).
    :param mutating: whether the method is POST, PUT or DELETE.
    :param time: stand-in time of arrival.
    :param request_id: the ``req-...`` id answered in ``x-openstack-request-id``.
    :param injected: whether the answer was an injected fault.
    """

    method: str
    path: str
    route: str
    query: dict[str, str]
    status: int
    project_id: str | None
    microversion: str | None
    mutating: bool
    time: float
    request_id: str
    injected: bool = False


class RequestLog:
    """Thread-safe record of every request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[RecordedRequest] = []

    def record(self, entry: RecordedRequest) -> None:
        """Append one request."""
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[RecordedRequest]:
        """Return a copy of the log."""
        with self._lock:
            return list(self._entries)

    def reset(self) -> None:
        """Forget every recorded request."""
        with self._lock:
            self._entries.clear()

    def count(
        self,
        method: str | None = None,
        path_prefix: str | None = None,
        mutating: bool | None = None,
    ) -> int:
        """Count recorded requests matching every given criterion.

        :param method: HTTP method (case-insensitive).
        :param path_prefix: prefix of the received path or of the route
            (``"/shares"`` matches ``/v2/shares/x`` and ``/v2/<project>/shares``).
        :param mutating: only mutating (True) or only read-only (False) requests.
        """
        wanted_method = method.upper() if method else None
        with self._lock:
            entries = list(self._entries)
        total = 0
        for entry in entries:
            if wanted_method is not None and entry.method != wanted_method:
                continue
            if mutating is not None and entry.mutating != mutating:
                continue
            if path_prefix is not None and not (
                entry.path.startswith(path_prefix) or entry.route.startswith(path_prefix)
            ):
                continue
            total += 1
        return total
