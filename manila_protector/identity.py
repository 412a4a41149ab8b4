"""Who is asking: the one place that decides a caller's identity and admin-ness.

A :class:`Caller` is built once where a request enters -- the worker's runner
for an RPC request, Karbor's adapters for a hook -- and passed down; nothing
else reads a request context's identity fields.

Two ways to build one:

* :meth:`Caller.from_context` reads a request context *strictly* (``roles`` a
  list of strings, ``is_admin`` a bool, ids bounded printable strings, the
  whole context bounded in size); anything else is a typed ``invalid_request``.
  On its own it trusts what the context says: that is right inside Karbor
  (keystonemiddleware validated the token in front of it) and on a bus only
  trusted services can write to (the worker without ``[keystone_authtoken]``).
* :meth:`Caller.validated` takes identity from a token validated by Keystone
  (``manila_protector.worker.keystone``) and refuses a context whose claims
  contradict it.

The rule for admin-ness is one: the ``admin`` role, or a context flag ``True``
where the context is trusted.  A Keystone-validated caller is an admin only by
Keystone's roles.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import typing

from manila_protector import exception

#: The role that makes a caller an administrator.
ADMIN_ROLE = "admin"
#: Longest id (user, project, request) accepted from a context.
MAX_ID_LENGTH = 255
#: Most roles a context may carry, and the longest role name.
MAX_ROLES = 64
MAX_ROLE_LENGTH = 255
#: Longest token accepted (Fernet tokens are ~200 bytes; PKI-era ones were a few KB).
MAX_TOKEN_LENGTH = 8192

_PRINTABLE = re.compile(r"[\x21-\x7e]+")


@dataclasses.dataclass(frozen=True)
class Caller:
    """The identity a request acts under.

    :param user_id: the user (None where the context names none).
    :param project_id: the project the caller acts in.
    :param roles: the caller's roles in that project.
    :param is_admin: whether the caller may act on every project's shares.
    :param auth_token: the caller's token (never logged, never stored in clear).
    :param request_id: the caller's request id (follows the job in logs and notifications).
    :param service_catalog: the catalog the caller handed over (v2 or v3 form), if any.
    :param validated: identity came from Keystone, not from the context.
    :param expires_at: when the token expires (known only where Keystone said so).
    """

    user_id: str | None
    project_id: str | None
    roles: tuple[str, ...] = ()
    is_admin: bool = False
    auth_token: str | None = dataclasses.field(default=None, repr=False, compare=False)
    request_id: str | None = None
    service_catalog: typing.Any = dataclasses.field(default=None, repr=False, compare=False)
    validated: bool = False
    expires_at: datetime.datetime | None = None

    @classmethod
    def from_context(cls, ctxt: typing.Any, *, max_bytes: int | None = None) -> Caller:
        """The caller a request context names, read strictly (and trusted).

        :param ctxt: an oslo.context (or Karbor) request context.
        :param max_bytes: the largest context accepted, as JSON (None: no bound).
        :raises exception.InvalidRequest: a field of the wrong type or form, or
            a context too large; ``details.field`` names it.
        """
        problem = getattr(ctxt, "malformed", None)
        if problem:
            raise exception.InvalidRequest(f"the request context is malformed: {problem}",
                                           details={"field": "context", "rule": "type"})
        if max_bytes is not None:
            size = _context_size(ctxt)
            if size > max_bytes:
                raise exception.InvalidRequest(
                    f"the request context is {size} bytes; the limit is {max_bytes}",
                    details={"field": "context", "rule": "max_bytes"})
        roles = _roles(getattr(ctxt, "roles", None))
        flag = getattr(ctxt, "is_admin", False)
        if flag is None:
            flag = False
        if not isinstance(flag, bool):
            raise _invalid("is_admin", "type", "must be a boolean")
        return cls(
            user_id=_identifier(getattr(ctxt, "user_id", None), "user_id"),
            project_id=_identifier(getattr(ctxt, "project_id", None), "project_id"),
            roles=roles,
            is_admin=flag or ADMIN_ROLE in roles,
            auth_token=_token(getattr(ctxt, "auth_token", None)),
            request_id=_identifier(getattr(ctxt, "request_id", None), "request_id"),
            service_catalog=_catalog(getattr(ctxt, "service_catalog", None)),
        )

    def validated_as(self, *, user_id: str, project_id: str | None, roles: typing.Iterable[str],
                     expires_at: datetime.datetime | None,
                     service_catalog: typing.Any = None) -> Caller:
        """This caller with the identity Keystone gave its token.

        The context may leave user, project and roles out; what it claims must
        agree with the token.

        :raises exception.NotAuthorized: the context claims another user or
            project, a role the token lacks, or admin-ness the token lacks.
        """
        granted = tuple(sorted(set(roles)))
        admin = ADMIN_ROLE in granted
        mismatch = [name for name, claimed, actual in (
            ("user_id", self.user_id, user_id), ("project_id", self.project_id, project_id))
            if claimed is not None and claimed != actual]
        if set(self.roles) - set(granted):
            mismatch.append("roles")
        if self.is_admin and not admin:
            mismatch.append("is_admin")
        if mismatch:
            raise exception.NotAuthorized(
                f"the request context's {', '.join(mismatch)} "
                f"{'does' if len(mismatch) == 1 else 'do'} not match its token",
                details={"fields": mismatch})
        return dataclasses.replace(
            self, user_id=user_id, project_id=project_id, roles=granted, is_admin=admin,
            validated=True, expires_at=expires_at,
            service_catalog=service_catalog or self.service_catalog)

    def check(self, owner_project_id: str | None, what: str) -> None:
        """:raises exception.NotAuthorized: ``what`` belongs to another project."""
        if self.is_admin or owner_project_id is None:
            return
        if owner_project_id != self.project_id:
            raise exception.NotAuthorized(
                f"{what} is not in project {self.project_id}; only an administrator may act "
                "on another project's shares",
                details={"project_id": self.project_id})

    def sees(self, project_id: str | None) -> bool:
        """Whether a record of ``project_id`` (a job) is this caller's to see."""
        return self.is_admin or (project_id is not None and project_id == self.project_id)

    def to_dict(self) -> dict[str, typing.Any]:
        """The caller without its token (what a job record keeps)."""
        return {"user_id": self.user_id, "project_id": self.project_id,
                "roles": list(self.roles), "is_admin": self.is_admin,
                "request_id": self.request_id, "service_catalog": self.service_catalog,
                "validated": self.validated,
                "expires_at": self.expires_at.isoformat() if self.expires_at else None}

    @classmethod
    def from_dict(cls, data: typing.Mapping[str, typing.Any],
                  auth_token: str | None) -> Caller:
        """A caller kept by :meth:`to_dict`, with its token back."""
        expires = data.get("expires_at")
        return cls(user_id=data.get("user_id"), project_id=data.get("project_id"),
                   roles=tuple(data.get("roles") or ()), is_admin=bool(data.get("is_admin")),
                   auth_token=auth_token, request_id=data.get("request_id"),
                   service_catalog=data.get("service_catalog"),
                   validated=bool(data.get("validated")),
                   expires_at=datetime.datetime.fromisoformat(expires) if expires else None)


def _invalid(field: str, rule: str, what: str) -> exception.InvalidRequest:
    return exception.InvalidRequest(f"the request context's {field} {what}",
                                    details={"field": f"context.{field}", "rule": rule})


def _identifier(value: typing.Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(field, "type", "must be a string")
    if not 0 < len(value) <= MAX_ID_LENGTH or not _PRINTABLE.fullmatch(value):
        raise _invalid(field, "pattern",
                       f"must be 1-{MAX_ID_LENGTH} printable characters without spaces")
    return value


def _roles(value: typing.Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise _invalid("roles", "type", "must be a list of strings")
    if len(value) > MAX_ROLES:
        raise _invalid("roles", "max_items", f"may hold at most {MAX_ROLES} roles")
    for role in value:
        if (not isinstance(role, str) or not 0 < len(role) <= MAX_ROLE_LENGTH
                or not _PRINTABLE.fullmatch(role)):
            raise _invalid("roles", "type", "must be a list of role names")
    return tuple(value)


def _token(value: typing.Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_TOKEN_LENGTH \
            or not _PRINTABLE.fullmatch(value):
        # Never echo the value: it may be a secret.
        raise _invalid("auth_token", "type", "is not a token")
    return value


def _catalog(value: typing.Any) -> typing.Any:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(isinstance(e, dict) for e in value):
        raise _invalid("service_catalog", "type", "must be a list of catalog entries")
    return list(value)


def _context_size(ctxt: typing.Any) -> int:
    try:
        values = ctxt.to_dict()
    except Exception:  # noqa: BLE001 - a context we cannot even read is too large to trust
        return 1 << 62
    return len(json.dumps(values, default=str))
