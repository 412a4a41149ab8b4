"""Checks of request values, written once for every resource.

Each helper answers the way Manila's API layer does for the same mistake (the
``badRequest``/``computeFault`` fault and its wording), so a resource module
never words a validation error itself.
"""

from __future__ import annotations

import ast
import typing

from manila_standin import errors

_TRUE = ("1", "t", "true", "on", "y", "yes")
_FALSE = ("0", "f", "false", "off", "n", "no")

#: The statuses an admin may force with ``reset_status`` (shares and snapshots).
RESET_STATUSES = frozenset({
    "creating", "available", "deleting", "error", "error_deleting", "migrating",
    "migrating_to", "server_migrating",
})


def query_bool(name: str, value: str) -> bool:
    """Parse a boolean query parameter (or body string) like Manila's strict parser.

    :raises errors.ApiError: 400 "Unrecognized value ..." (``InvalidInput``).
    """
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise errors.invalid_input(
        f"Unrecognized value '{value}' for {name}, acceptable values are: "
        "'0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"
    )


def body_bool(name: str, value: typing.Any) -> bool:
    """Parse a boolean field of an update body (a JSON bool or a string).

    :raises errors.ApiError: 400 "Invalid value ... for ...".
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise errors.bad_request(f"Invalid value '{value}' for {name}.")


def non_negative_int(name: str, value: str) -> int:
    """Parse ``limit``, ``offset`` or ``size``.

    :raises errors.ApiError: 400 when not an integer or negative.
    """
    try:
        number = int(value)
    except ValueError:
        raise errors.bad_request(f"{name} param must be an integer") from None
    if number < 0:
        raise errors.bad_request(f"{name} param must be positive")
    return number


def is_int_like(value: typing.Any) -> bool:
    """Whether ``value`` is an integer or its exact decimal text."""
    try:
        return str(int(value)) == str(value).strip()
    except (TypeError, ValueError):
        return False


def literal_dict(name: str, value: str) -> dict[str, typing.Any]:
    """Parse a dict-valued filter (``metadata={'k': 'v'}``) as Manila does.

    :raises errors.ApiError: 400 when it is no Python literal or no dict.
    """
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        raise errors.bad_request(f"Invalid value for {name} filter.") from None
    if not isinstance(parsed, dict):
        raise errors.invalid_input(f"Wrong {name} filter provided: {value}.")
    return parsed


def check_lengths(**fields: typing.Any) -> None:
    """Refuse a display field (``name``, ``description``) longer than 255 characters.

    :raises errors.ApiError: 400 "... has more than 255 characters."
    """
    for name, value in fields.items():
        if value is not None and len(str(value)) > 255:
            raise errors.bad_request(f"{name} has more than 255 characters.")


def check_metadata(metadata: typing.Any) -> None:
    """Validate metadata like Manila's ``check_metadata_properties``.

    :raises errors.ApiError: 400 for a non-dict, a blank or long key, a long value.
    """
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise errors.bad_request("Malformed request body")
    for key, value in metadata.items():
        if not key:
            raise errors.bad_request("Invalid metadata: Metadata property key is blank.")
        if len(str(key)) > 255:
            raise errors.bad_request(
                "Invalid metadata size: Metadata property key is greater than 255 characters."
            )
        if value is not None and len(str(value)) > 1023:
            raise errors.bad_request(
                "Invalid metadata size: Metadata property value is greater than 1023 "
                "characters."
            )


def strings(mapping: typing.Mapping[typing.Any, typing.Any] | None) -> dict[str, str]:
    """Return a copy of ``mapping`` with string keys and values (Manila stores strings)."""
    return {str(k): str(v) for k, v in (mapping or {}).items()}


def resource_body(body: typing.Any, key: str) -> dict[str, typing.Any]:
    """Return ``body[key]`` of a create or update request (``{"share": {...}}``).

    :raises errors.ApiError: 422, as Manila answers a body without that entity.
    """
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise errors.unprocessable()
    return body[key]


def metadata_body(body: typing.Any) -> dict[str, typing.Any]:
    """Return ``body["metadata"]`` of a metadata request.

    :raises errors.ApiError: 400 "Malformed request body".
    """
    if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
        raise errors.bad_request("Malformed request body")
    return body["metadata"]


def display_fields(data: typing.Mapping[str, typing.Any]) -> dict[str, typing.Any]:
    """Pick ``name``/``description`` of an update body; the ``display_`` names win."""
    fields: dict[str, typing.Any] = {}
    for key, alias in (("name", "display_name"), ("description", "display_description")):
        if alias in data:
            fields[key] = data[alias]
        elif key in data:
            fields[key] = data[key]
    return fields


def reset_status(payload: typing.Any) -> str:
    """Return the status a ``reset_status`` action asks for.

    :raises errors.ApiError: 400 without a status or with an unknown one.
    """
    if not isinstance(payload, dict) or "status" not in payload:
        raise errors.bad_request("Must specify 'status'")
    status = payload["status"]
    if status not in RESET_STATUSES:
        raise errors.bad_request(
            "Invalid state. Valid states: " + ", ".join(sorted(RESET_STATUSES)) + "."
        )
    return str(status)
