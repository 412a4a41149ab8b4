"""The protection plugin's JSON schemas and the one place requests are validated.

``OPTIONS_SCHEMA`` and ``RESTORE_SCHEMA`` are the spec's, property for property;
the only additions are optional properties documented in ``doc/usage.rst`` and
``additionalProperties: false`` (Karbor itself rejects unknown keys, so a typo
in a direct call is refused the same way).

Karbor stores plan and restore parameters as strings, so ``"False"`` can arrive
where a boolean is expected: :func:`validate` converts the usual spellings of a
boolean for properties declared ``boolean`` before validating.
"""

from __future__ import annotations

import copy
import typing

import jsonschema

from manila_protector import exception

#: A UUID as Manila writes its ids (either case).
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

OPTIONS_SCHEMA: dict[str, typing.Any] = {
    "title": "Share Protection Options",
    "type": "object",
    "properties": {
        "snapshot_name": {
            "type": "string",
            "title": "Snapshot Name",
            "description": "The name of the snapshot.",
        },
        "description": {
            "type": "string",
            "title": "Description",
            "description": "The description of the share snapshot.",
        },
        "force": {
            "type": "boolean",
            "title": "Force",
            "description": "Optional flag to indicate whether to snapshot a share "
                           "even if it's busy.",
            "default": False,
        },
    },
    "required": ["snapshot_name", "description", "force"],
    "additionalProperties": False,
}

RESTORE_SCHEMA: dict[str, typing.Any] = {
    "title": "Share Protection Restore",
    "type": "object",
    "properties": {
        "share_id": {
            "type": "string",
            "title": "Share ID",
            "description": "The target share ID to restore to.",
        },
        "restore_name": {
            "type": "string",
            "title": "Restore Name",
            "description": "The name of the restored share.",
            "default": None,
        },
        "restore_description": {
            "type": "string",
            "title": "Restore Description",
            "description": "The description of the restored share.",
            "default": None,
        },
        # Addition (documented): re-apply the protected share's access rules.
        "restore_access_rules": {
            "type": "boolean",
            "title": "Restore Access Rules",
            "description": "Re-apply the access rules the share had when it was protected "
                           "to the restored share.",
            "default": True,
        },
    },
    "additionalProperties": False,
}

VERIFY_SCHEMA: dict[str, typing.Any] = {
    "title": "Share Protection Verify",
    "type": "object",
    "properties": {},
    "additionalProperties": False,
}

_ACCESS_RULE_SCHEMA: dict[str, typing.Any] = {
    "type": "object",
    "properties": {
        "access_type": {"type": "string", "minLength": 1, "maxLength": 255},
        "access_to": {"type": "string", "minLength": 1, "maxLength": 4096},
        "access_level": {"type": "string", "enum": ["rw", "ro"]},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["access_type", "access_to", "access_level"],
}

SAVED_INFO_SCHEMA: dict[str, typing.Any] = {
    "title": "Share Protection Saved Info",
    "type": "object",
    "properties": {
        # Both reach Manila's URLs: UUIDs only (requests would normalise "../x" into
        # another resource's path).
        "snapshot_id": {"type": "string", "title": "Snapshot ID", "pattern": UUID_PATTERN},
        "share_id": {"type": "string", "title": "Share ID", "pattern": UUID_PATTERN},
        "size": {"type": "integer", "title": "Size (GiB)", "minimum": 1},
        "share_proto": {"type": "string", "title": "Share Protocol", "minLength": 1},
        "share_type": {"type": ["string", "null"], "title": "Share Type ID"},
        "share_network_id": {"type": ["string", "null"], "title": "Share Network ID"},
        "availability_zone": {"type": ["string", "null"], "title": "Availability Zone"},
        "metadata": {
            "type": "object",
            "title": "Share Metadata",
            "additionalProperties": {"type": "string"},
        },
        "access_rules": {
            "type": "array",
            "title": "Access Rules",
            "items": _ACCESS_RULE_SCHEMA,
        },
        "snapshot_name": {"type": ["string", "null"], "title": "Snapshot Name"},
        "created_at": {"type": ["string", "null"], "title": "Snapshot Creation Time"},
        "job_tag": {"type": ["string", "null"], "title": "Job Tag"},
    },
    "required": ["snapshot_id", "share_id", "size", "share_proto"],
}

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _coerce(
    schema: dict[str, typing.Any], document: dict[str, typing.Any]
) -> dict[str, typing.Any]:
    """Return a copy with string booleans converted and ``None`` values dropped."""
    properties = schema.get("properties", {})
    out: dict[str, typing.Any] = {}
    for key, value in document.items():
        if value is None:
            # A property whose default is None was simply not given.
            continue
        declared = properties.get(key, {}).get("type")
        if declared == "boolean" and isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in _TRUE:
                value = True
            elif lowered in _FALSE:
                value = False
        out[key] = value
    return out


def _field_name(error: jsonschema.ValidationError, what: str) -> str:
    path = list(error.absolute_path)
    if error.validator == "required":
        # The missing property is named in the message, not in the path.
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        path.append(missing)
    elif error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        path.append(",".join(extra))
    return ".".join([what] + [str(p) for p in path])


def validate(
    schema: dict[str, typing.Any], document: typing.Any, what: str
) -> dict[str, typing.Any]:
    """Validate ``document`` against ``schema`` and return the normalised copy.

    :param schema: one of this module's schemas.
    :param document: the request's parameters or saved info.
    :param what: the name used in error messages ("parameters", "saved_info").
    :returns: a new dict with string booleans converted and ``None`` values dropped.
    :raises exception.InvalidRequest: naming the field and the rule that failed;
        ``details`` carries ``field``, ``rule`` and ``all`` (every violation).
    """
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise exception.InvalidRequest(
            f"{what}: must be an object, not {type(document).__name__}",
            details={"field": what, "rule": "type"},
        )
    normalised = _coerce(schema, document)
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(normalised), key=lambda e: list(e.absolute_path))
    if not errors:
        return normalised
    violations = [
        {
            "field": _field_name(err, what),
            "rule": str(err.validator),
            # A huge or hostile value must not make a huge error message.
            "message": err.message if len(err.message) <= 200 else err.message[:197] + "...",
        }
        for err in errors
    ]
    first = violations[0]
    message = f"{first['field']}: {first['message']} (rule: {first['rule']})"
    if len(violations) > 1:
        message += f" and {len(violations) - 1} more violation(s)"
    raise exception.InvalidRequest(
        message,
        details={"field": first["field"], "rule": first["rule"], "all": violations},
    )


def schema_copy(schema: dict[str, typing.Any]) -> dict[str, typing.Any]:
    """A deep copy for callers (Karbor may mutate what it is given)."""
    return copy.deepcopy(schema)
