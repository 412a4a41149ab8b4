"""API versions: microversion headers, negotiation, and the versions documents.

A versioned request (below ``/v2``) names its microversion in
``X-OpenStack-Manila-API-Version`` or ``OpenStack-API-Version:
shared-file-system 2.x``; none means 2.0, ``latest`` the highest served. A
malformed one is answered 400, one out of the served range 406 (with the
version headers echoing it). ``GET /`` and ``GET /v2/`` describe the versions.
"""

from __future__ import annotations

import re
import typing

from manila_standin import errors

Version = tuple[int, int]
#: Above every real microversion: the upper bound of routes without one.
MAX: Version = (99, 999)
VERSION_HEADER = "X-OpenStack-Manila-API-Version"
SERVICE_TYPE = "shared-file-system"
_VERSION_RE = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")


def parse_version(text: str) -> Version:
    """Parse ``"2.73"`` into ``(2, 73)``.

    :raises ValueError: if ``text`` is not ``major.minor``.
    """
    match = _VERSION_RE.match(text.strip())
    if not match:
        raise ValueError(text)
    return int(match.group(1)), int(match.group(2))


def format_version(version: Version) -> str:
    """Format ``(2, 73)`` as ``"2.73"``."""
    return f"{version[0]}.{version[1]}"


def requested_version(headers: typing.Mapping[str, str]) -> str | None:
    """Return the microversion a request asks for (headers with lower-case names)."""
    value = headers.get(VERSION_HEADER.lower())
    if value:
        return value.strip()
    value = headers.get("openstack-api-version")
    if value:
        for part in value.split(","):
            service, _, version = part.strip().partition(" ")
            if service.lower() == SERVICE_TYPE:
                return version.strip()
    return None


def negotiate(
    requested: str | None, lowest: Version, highest: Version
) -> tuple[Version | None, errors.ApiError | None]:
    """Decide the microversion of a versioned request.

    :returns: (the version, None), or (None, the 400/406 error to answer).
    """
    if requested is None:
        return (2, 0), None
    if requested.lower() == "latest":
        return highest, None
    try:
        version = parse_version(requested)
    except ValueError:
        return None, errors.bad_request(
            f"API Version String {requested} is of invalid format. Must be of format "
            "MajorNum.MinorNum."
        )
    if not lowest <= version <= highest:
        return None, errors.ApiError(
            406,
            f"Version {requested} is not supported by the API. Minimum is "
            f"{format_version(lowest)} and maximum is {format_version(highest)}.",
        )
    return version, None


def version_headers(shown: str) -> list[tuple[str, str]]:
    """The headers that tell the client which microversion answered."""
    return [
        (VERSION_HEADER, shown),
        ("OpenStack-API-Version", f"{SERVICE_TYPE} {shown}"),
        ("Vary", f"{VERSION_HEADER}, OpenStack-API-Version"),
    ]


def _version_entry(
    base_url: str, version_id: str, status: str, version: str, min_version: str, path: str
) -> dict[str, typing.Any]:
    return {
        "id": version_id,
        "status": status,
        "version": version,
        "min_version": min_version,
        "updated": "2015-08-27T11:33:21Z",
        "links": [
            {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"},
            {"rel": "self", "href": f"{base_url}/{path}/"},
        ],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.share+json;version=1"}
        ],
    }


def document(
    base_url: str, min_version: str, max_version: str, which: str
) -> dict[str, typing.Any]:
    """The versions document (``which``: ``all`` for ``/``, ``v2`` for ``/v2/``)."""
    v1 = _version_entry(base_url, "v1.0", "DEPRECATED", "", "", "v1")
    v2 = _version_entry(base_url, "v2.0", "CURRENT", max_version, min_version, "v2")
    return {"versions": [v1, v2] if which == "all" else [v2]}
