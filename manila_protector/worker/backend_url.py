"""Lock backend URLs: the driver options we rely on, and their secrets kept out of sight.

A tooz URL may carry a password (``redis://:secret@host``, ``?sentinel_password=``);
:func:`mask_url` is what may be logged or put in an exception, and
:func:`secrets_of` lists what must be scrubbed from a driver's own messages.
"""

from __future__ import annotations

import re
import urllib.parse

#: Socket timeout (seconds) added to a ``redis://`` URL that sets none, so a
#: dead or hung Redis fails a call quickly instead of after tooz's 30 s default.
REDIS_SOCKET_TIMEOUT = 5.0

# Query options whose values are secrets and must never be logged.
_SECRET_OPTION = re.compile(r"password|passwd|secret|token", re.IGNORECASE)


def scheme(url: str) -> str:
    """The URL's scheme (tooz's driver name)."""
    return urllib.parse.urlsplit(url).scheme


def mask_url(url: str) -> str:
    """Return ``url`` with its userinfo and secret query options replaced by ``***``.

    ``redis://:secret@host:6379?sentinel_password=x`` becomes
    ``redis://***@host:6379?sentinel_password=***``.
    """
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = parts.query
    if query:
        masked = []
        for item in query.split("&"):
            key, sep, _value = item.partition("=")
            masked.append(f"{key}{sep}***" if sep and _SECRET_OPTION.search(key) else item)
        query = "&".join(masked)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query))


def secrets_of(url: str) -> tuple[str, ...]:
    """The secret strings a URL carries, raw and percent-decoded, longest first."""
    parts = urllib.parse.urlsplit(url)
    found: set[str] = set()
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        found.add(userinfo)
        found.update(userinfo.split(":"))
    for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if _SECRET_OPTION.search(key):
            found.add(value)
    decoded = {urllib.parse.unquote(item) for item in found}
    return tuple(sorted((s for s in found | decoded if s), key=len, reverse=True))


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every one of ``secrets`` replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def with_driver_defaults(url: str, backend_timeout: float) -> str:
    """Add the driver options we rely on to ``url`` when it does not set them.

    For ``redis://`` the driver honours ``socket_timeout`` and
    ``socket_connect_timeout`` (``CLIENT_FLOAT_ARGS`` in
    ``tooz/drivers/redis.py``); without them the socket timeout falls back to
    the driver's ``timeout`` option, 30 s by default.  ``timeout`` is left alone
    because it is also the default lock TTL (``lock_timeout``).
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "redis":
        return url
    present = {key for key, _ in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)}
    default = min(REDIS_SOCKET_TIMEOUT, backend_timeout)
    extra = []
    if not present & {"socket_timeout", "timeout"}:
        extra.append(f"socket_timeout={default:g}")
    if "socket_connect_timeout" not in present:
        extra.append(f"socket_connect_timeout={default:g}")
    query = "&".join(item for item in (parts.query, *extra) if item)
    return urllib.parse.urlunsplit(parts._replace(query=query))
