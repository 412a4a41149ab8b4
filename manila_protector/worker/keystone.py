"""Callers' identity from Keystone: each request's token is validated, never believed.

With ``[keystone_authtoken]`` configured (keystoneauth's auth options, as
OpenStack services name the group), the worker validates every request's token
through the identity API with its own credentials -- ``GET /v3/auth/tokens``
with ``X-Subject-Token``, as keystonemiddleware does -- and takes the user,
project, roles, admin-ness and catalog from Keystone's answer.  A context that
claims otherwise is refused (``not_authorized``).

Answers are cached by a digest of the token (never the token itself as a key)
until the token expires or ``token_cache_time`` passes, whichever is first (so
a revoked token stops working within that time, as with keystonemiddleware);
the cache holds at most ``token_cache_size`` entries, least recently used first
out.

keystoneauth's errors on this path are translated here, once: a token Keystone
does not know (or that expired) is ``not_authorized``/``token_expired``;
Keystone unreachable, or refusing the service's own credentials, is the
retryable ``identity_unavailable``.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import hashlib
import logging
import threading
import time
import typing

from keystoneauth1 import access
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import loading as ks_loading
from keystoneauth1 import session as ks_session
from oslo_config import cfg

from manila_protector import exception
from manila_protector import identity
from manila_protector import opts

LOG = logging.getLogger(__name__)

@dataclasses.dataclass(frozen=True)
class _Validated:
    user_id: str
    project_id: str | None
    roles: tuple[str, ...]
    expires_at: datetime.datetime | None
    catalog: typing.Any
    keep_until: float


class TokenValidator:
    """Validates tokens with Keystone and builds the :class:`identity.Caller` from its answer.

    :param session: a keystoneauth session authenticated as this service.
    :param interfaces: the identity endpoint's interfaces, in order of preference.
    :param region_name: the identity endpoint's region (None: any).
    :param cache_time: see ``token_cache_time``.
    :param cache_size: see ``token_cache_size``.
    :param clock: seconds, monotonic (tests drive it).
    """

    def __init__(self, session: ks_session.Session, *,
                 interfaces: typing.Sequence[str] = ("internal", "public"),
                 region_name: str | None = None, cache_time: float = 300,
                 cache_size: int = 10000,
                 clock: typing.Callable[[], float] = time.monotonic) -> None:
        self._session = session
        self._interfaces = list(interfaces)
        self._region_name = region_name
        self._cache_time = cache_time
        self._cache_size = cache_size
        self._clock = clock
        self._cache: collections.OrderedDict[str, _Validated] = collections.OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts) -> TokenValidator | None:
        """The validator ``[keystone_authtoken]`` describes; None where it sets no auth_type."""
        section = getattr(conf, opts.KEYSTONE_GROUP)
        if not section.auth_type:
            return None
        with _translate("load the [keystone_authtoken] credentials"):
            auth = ks_loading.load_auth_from_conf_options(conf, opts.KEYSTONE_GROUP)
            session = ks_loading.load_session_from_conf_options(conf, opts.KEYSTONE_GROUP,
                                                                auth=auth)
        interfaces = (section.valid_interfaces
                      or ([section.interface] if section.interface else ["internal", "public"]))
        return cls(session, interfaces=interfaces, region_name=section.region_name,
                   cache_time=section.token_cache_time, cache_size=section.token_cache_size)

    def identify(self, ctxt: typing.Any, *, max_bytes: int | None = None) -> identity.Caller:
        """The caller of a request, with identity from Keystone.

        :raises exception.InvalidRequest: the context is malformed.
        :raises exception.NotAuthorized: no token, a token Keystone does not know, or
            claims the token contradicts.
        :raises exception.TokenExpired: the token expired.
        :raises exception.IdentityUnavailable: Keystone could not be asked.
        """
        claimed = identity.Caller.from_context(ctxt, max_bytes=max_bytes)
        if not claimed.auth_token:
            raise exception.NotAuthorized("the request carries no token")
        known = self._validate(claimed.auth_token)
        return claimed.validated_as(user_id=known.user_id, project_id=known.project_id,
                                    roles=known.roles, expires_at=known.expires_at,
                                    service_catalog=known.catalog)

    def _validate(self, token: str) -> _Validated:
        key = hashlib.sha256(token.encode("utf-8")).hexdigest()
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached.keep_until > now:
                self._cache.move_to_end(key)
                return cached
            self._cache.pop(key, None)
        known = self._ask(token, now)
        with self._lock:
            self._cache[key] = known
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return known

    def _ask(self, token: str, now: float) -> _Validated:
        with _translate("validate the caller's token with Keystone"):
            response = self._session.get(
                "/auth/tokens", headers={"X-Subject-Token": token}, raise_exc=False,
                endpoint_filter={"service_type": "identity", "interface": self._interfaces,
                                 "region_name": self._region_name, "version": (3, 0)})
        if response.status_code == 404:
            raise self._unknown(token)
        if response.status_code in (401, 403):
            raise exception.IdentityUnavailable(
                f"Keystone refused this service's own credentials (HTTP {response.status_code})"
                "; check [keystone_authtoken]")
        if response.status_code != 200:
            raise exception.IdentityUnavailable(
                f"Keystone answered HTTP {response.status_code} to a token validation")
        info = access.create(body=response.json(), auth_token=token)
        expires = info.expires
        utcnow = datetime.datetime.now(datetime.UTC)
        if expires is not None and expires <= utcnow:
            raise exception.TokenExpired("the request's token expired")
        if not info.user_id:
            raise exception.NotAuthorized("Keystone's answer names no user for the token")
        keep = now + self._cache_time
        if expires is not None:
            keep = min(keep, now + (expires - utcnow).total_seconds())
        catalog = info.service_catalog.catalog if info.has_service_catalog() else None
        return _Validated(user_id=info.user_id, project_id=info.project_id,
                          roles=tuple(info.role_names or ()), expires_at=expires,
                          catalog=catalog, keep_until=keep)

    def _unknown(self, token: str) -> exception.NotAuthorized:
        """Why Keystone does not take a token: it expired (``token_expired``, retryable:
        send the job again with a fresh one), or it is not a token of Keystone's."""
        with _translate("ask Keystone whether the caller's token expired"):
            response = self._session.get(
                "/auth/tokens", headers={"X-Subject-Token": token}, raise_exc=False,
                params={"allow_expired": 1},
                endpoint_filter={"service_type": "identity", "interface": self._interfaces,
                                 "region_name": self._region_name, "version": (3, 0)})
        if response.status_code == 200:
            expires = access.create(body=response.json(), auth_token=token).expires
            if expires is not None and expires <= datetime.datetime.now(datetime.UTC):
                return exception.TokenExpired(
                    f"the request's token expired at {expires.isoformat()}",
                    details={"expired_at": expires.isoformat()})
        return exception.NotAuthorized("Keystone does not know the request's token (it is "
                                       "invalid or revoked)")


@contextlib.contextmanager
def _translate(what: str) -> typing.Iterator[None]:
    """Re-raise keystoneauth's errors on the validation path as ours."""
    try:
        yield
    except exception.ProtectorError:
        raise
    except (ks_exc.ClientException, OSError) as exc:
        raise exception.IdentityUnavailable(f"{what}: {type(exc).__name__}: {exc}") from exc
