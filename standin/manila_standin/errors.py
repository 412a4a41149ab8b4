"""Manila-shaped API errors raised by the stand-in's model and routing.

Manila answers every error with a JSON "fault" body whose single key names the
kind of fault (``{"itemNotFound": {"code": 404, "message": ...}}``). The key is
chosen from the HTTP status exactly as Manila's ``wsgi.Fault`` does it: codes
without a dedicated name (406, 422, 500, ...) are all reported as
``computeFault``.
"""

from __future__ import annotations

import typing

FAULT_NAMES: dict[int, str] = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    501: "notImplemented",
    503: "serviceUnavailable",
}

# The explanations webob puts in a fault when the code raising it gave none.
DEFAULT_MESSAGES: dict[int, str] = {
    400: (
        "The server could not comply with the request since it is either "
        "malformed or otherwise incorrect."
    ),
    401: (
        "This server could not verify that you are authorized to access the "
        "document you requested."
    ),
    403: "Access was denied to this resource.",
    404: "The resource could not be found.",
    406: "The resource could not be generated that was acceptable to your browser.",
    409: "There was a conflict when trying to complete your request.",
    413: "The body of your request was too large for this server.",
    422: "Unable to process the contained instructions",
    500: "The server has either erred or is incapable of performing the requested operation.",
    503: "The server is currently unavailable. Please try again at a later time.",
}

#: Manila 23's bare answers: where it raises webob's 404/403 without a message
#: (GET or DELETE of a share or snapshot not found; a denied admin action) ...
NOT_FOUND = DEFAULT_MESSAGES[404]
ACCESS_DENIED = DEFAULT_MESSAGES[403]
#: ... and where Manila's own ``NotFound`` travels up unexplained (a snapshot of,
#: or a revert of, a share not found).
NOT_FOUND_TRANSLATED = "NotFound: Resource could not be found."


def fault_name(status: int) -> str:
    """Return the fault key Manila uses for an HTTP ``status``."""
    return FAULT_NAMES.get(status, "computeFault")


class ApiError(Exception):
    """An error the stand-in answers with a Manila fault body.

    :param status: HTTP status code.
    :param message: the fault message; webob's default text when omitted.
    :param headers: extra response headers (``Retry-After`` for quota faults).
    """

    def __init__(
        self,
        status: int,
        message: str | None = None,
        headers: typing.Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.message = message if message is not None else DEFAULT_MESSAGES.get(status, "")
        self.headers = dict(headers or {})
        super().__init__(f"{status}: {self.message}")

    def body(self) -> dict[str, typing.Any]:
        """Return the JSON fault body for this error."""
        fault: dict[str, typing.Any] = {"code": self.status, "message": self.message}
        if self.status == 413:
            fault["retryAfter"] = self.headers.get("Retry-After", "0")
        return {fault_name(self.status): fault}


class KeystoneUnauthorized(ApiError):
    """The 401 keystonemiddleware's ``auth_token`` answers in front of Manila.

    :param uri: Keystone's auth URL (``WWW-Authenticate: Keystone uri="..."``).
    """

    def __init__(self, uri: str) -> None:
        super().__init__(401, "The request you have made requires authentication.",
                         {"WWW-Authenticate": f'Keystone uri="{uri}"'})

    def body(self) -> dict[str, typing.Any]:
        return {"error": {"code": 401, "title": "Unauthorized", "message": self.message}}


def bad_request(message: str | None = None) -> ApiError:
    """400, Manila's ``badRequest``."""
    return ApiError(400, message)


def forbidden(message: str | None = None) -> ApiError:
    """403, Manila's ``forbidden``."""
    return ApiError(403, message)


def not_found(message: str | None = None) -> ApiError:
    """404, Manila's ``itemNotFound``."""
    return ApiError(404, message)


def conflict(message: str | None = None) -> ApiError:
    """409, Manila's ``conflictingRequest``."""
    return ApiError(409, message)


def over_quota(message: str) -> ApiError:
    """413 with ``Retry-After: 0``, as Manila answers a ``QuotaError``."""
    return ApiError(413, message, {"Retry-After": "0"})


def unprocessable(message: str | None = None) -> ApiError:
    """422, reported by Manila under the ``computeFault`` key."""
    return ApiError(422, message)


def invalid_input(reason: str) -> ApiError:
    """400 worded like Manila's ``InvalidInput``."""
    return ApiError(400, f"Invalid input received: {reason}.")


def invalid_share(reason: str, status: int = 400) -> ApiError:
    """Manila's ``InvalidShare`` (400 unless the controller maps it otherwise)."""
    return ApiError(status, f"Invalid share: {reason}.")
