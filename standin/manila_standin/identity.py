"""Who is calling, and what the caller may see and change: decided here, once.

A request's token becomes a :class:`Context` in one place, :meth:`Tokens.resolve`:
a registered ("keystone-validated") token first, then -- where a Keystone stand-in
is linked (:meth:`Tokens.use_keystone`) -- what Keystone says of the token and an
``X-Service-Token`` (keystonemiddleware's rules), then a noauth ``user:project``
token, which, like Manila's ``noauthv2`` strategy, makes the caller an admin of
that project. Every visibility and policy decision of the model asks the context
(:meth:`Context.owns`); none looks at a token or at roles again.
"""

from __future__ import annotations

import dataclasses
import threading
import typing

from manila_standin import config as config_mod
from manila_standin import errors


@dataclasses.dataclass(frozen=True)
class Context:
    """Who is calling: what Manila's request context carries.

    :param user_id: the caller's user.
    :param project_id: the caller's project.
    :param is_admin: admin contexts see and may change every project's resources.
    :param roles: the roles of a registered (keystone-like) token.
    :param request_id: the ``req-...`` id of the HTTP request, if any.
    """

    user_id: str
    project_id: str
    is_admin: bool
    roles: tuple[str, ...] = ()
    request_id: str | None = None

    def owns(self, project_id: str) -> bool:
        """Whether the caller may act on ``project_id``'s resources (its member or an admin)."""
        return self.is_admin or self.project_id == project_id


def authorize(ctx: Context, project_id: str, policy: str) -> None:
    """Refuse like Manila's policy engine unless ``ctx`` owns ``project_id``.

    :param policy: the policy's name, shown in the answer (``share:update``).
    :raises errors.ApiError: 403 "Policy doesn't allow ... to be performed."
    """
    if not ctx.owns(project_id):
        raise errors.forbidden(f"Policy doesn't allow {policy} to be performed.")


def require_admin(ctx: Context) -> None:
    """Refuse a non-admin caller with Manila's bare 403 (admin-only actions).

    :raises errors.ApiError: 403 with webob's default explanation.
    """
    if not ctx.is_admin:
        raise errors.forbidden(errors.ACCESS_DENIED)


class KnownToken(typing.Protocol):
    """What a Keystone says a token stands for."""

    user_id: str
    project_id: str | None
    roles: tuple[str, ...]


class Authenticator(typing.Protocol):
    """A Keystone that authenticates a request's token (and service token)."""

    def authenticate(self, token: str | None,
                     service_token: str | None = None) -> KnownToken | None: ...


@dataclasses.dataclass(frozen=True)
class TokenInfo:
    """A registered ("keystone-validated") token."""

    user_id: str
    project_id: str
    roles: tuple[str, ...]


class Tokens:
    """Registered and revoked tokens (thread-safe).

    :param config: the stand-in settings; ``accept_noauth_tokens`` is read on every
        request, so it may be changed while the stand-in runs.
    """

    def __init__(self, config: config_mod.StandInConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._tokens: dict[str, TokenInfo] = {}
        self._revoked: set[str] = set()
        self._keystone: Authenticator | None = None
        #: Keystone's address for ``WWW-Authenticate`` (None: no Keystone linked).
        self.keystone_uri: str | None = None

    def use_keystone(self, keystone: Authenticator, uri: str) -> None:
        """Ask ``keystone`` about every token not registered here (see
        ``KeystoneStandIn.authenticate``); ``uri`` is its auth URL."""
        self._keystone = keystone
        self.keystone_uri = uri

    def register(
        self, token: str, user_id: str, project_id: str, roles: typing.Iterable[str] = ()
    ) -> None:
        """Register a "keystone-validated" token (it takes precedence over noauth)."""
        with self._lock:
            self._tokens[token] = TokenInfo(user_id, project_id, tuple(roles))
            self._revoked.discard(token)

    def revoke(self, token: str) -> None:
        """Make ``token`` invalid: requests carrying it get 401."""
        with self._lock:
            self._tokens.pop(token, None)
            self._revoked.add(token)

    def resolve(self, token: str | None, request_id: str | None = None,
                service_token: str | None = None) -> Context | None:
        """Return the context of ``token`` or None when it does not authenticate.

        :param service_token: the request's ``X-Service-Token`` (read only where a
            Keystone stand-in is linked, as keystonemiddleware reads it).
        """
        if not token:
            return None
        with self._lock:
            if token in self._revoked:
                return None
            info = self._tokens.get(token)
        if info is None and self._keystone is not None:
            known = self._keystone.authenticate(token, service_token)
            if known is not None and known.project_id is not None:
                info = TokenInfo(known.user_id, known.project_id, tuple(known.roles))
            elif service_token or not self._config.accept_noauth_tokens:
                return None
        if info is not None:
            return Context(
                info.user_id, info.project_id, "admin" in info.roles, info.roles, request_id
            )
        if not self._config.accept_noauth_tokens:
            return None
        user_id, _, project_id = token.partition(":")
        if not user_id:
            return None
        return Context(user_id, project_id or user_id, True, ("admin",), request_id)
