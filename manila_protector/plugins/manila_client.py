"""Talking to Manila: building python-manilaclient clients, negotiating the
microversion, and translating every Manila, keystoneauth and requests error into
the project's exception tree -- in this one module.

The rest of the project calls :class:`ManilaClient` and never manilaclient.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.cookiejar
import logging
import threading
import typing

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import loading as ks_loading
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from manilaclient import api_versions
from manilaclient import client as manila_client
from manilaclient import exceptions as manila_exc
import requests

from manila_protector import exception

LOG = logging.getLogger(__name__)

#: Microversions at which the features we use appear.
REVERT_VERSION = api_versions.APIVersion("2.27")
ACCESS_RULES_API_VERSION = api_versions.APIVersion("2.45")
SNAPSHOT_METADATA_VERSION = api_versions.APIVersion("2.73")
SHARE_TYPE_ID_VERSION = api_versions.APIVersion("2.6")

#: The newest microversion this python-manilaclient knows.
CLIENT_MAX_VERSION = api_versions.APIVersion(api_versions.MAX_VERSION)


def _request_id(exc: BaseException) -> str | None:
    return getattr(exc, "request_id", None)


def _http_message(exc: manila_exc.ClientException) -> str:
    # HttpError.message is the fault body's message; never the request headers.
    message = getattr(exc, "message", None) or exc.__class__.__name__
    status = getattr(exc, "http_status", None) or getattr(exc, "code", None)
    return f"{message} (HTTP {status})" if status else str(message)


_ErrorMapping = tuple[tuple[type[Exception], ...], type[exception.ProtectorError], str]

#: Manila's HTTP errors and what they mean here: (its classes, ours, message prefix).
_HTTP_ERRORS: tuple[_ErrorMapping, ...] = (
    ((manila_exc.NotFound,), exception.NotFound, "not found: "),
    ((manila_exc.Unauthorized, manila_exc.Forbidden), exception.NotAuthorized,
     "refused by Manila: "),
    ((manila_exc.Conflict,), exception.Conflict, ""),
    ((manila_exc.RequestEntityTooLarge,), exception.QuotaExceeded, "over quota: "),
    ((manila_exc.UnprocessableEntity, manila_exc.NotAcceptable), exception.Unsupported, ""),
    ((manila_exc.BadRequest,), exception.InvalidRequest, "Manila refused the request: "),
    ((manila_exc.HttpServerError,), exception.ManilaUnavailable, "Manila server error: "),
)


@contextlib.contextmanager
def translate_errors(what: str) -> typing.Iterator[None]:
    """Re-raise any Manila/keystoneauth/requests error as a :class:`ProtectorError`.

    :param what: a short description of the call ("get share 123"), used in messages.
    """
    try:
        yield
    except exception.ProtectorError:
        raise
    except manila_exc.HttpError as exc:
        for classes, ours, prefix in _HTTP_ERRORS:
            if isinstance(exc, classes):
                raise ours(f"{what}: {prefix}{_http_message(exc)}",
                           request_id=_request_id(exc)) from exc
        # Any other 4xx: Manila found the request itself wrong.
        raise exception.InvalidRequest(f"{what}: {_http_message(exc)}",
                                       request_id=_request_id(exc)) from exc
    except manila_exc.UnsupportedVersion as exc:
        raise exception.Unsupported(f"{what}: {exc}") from exc
    except manila_exc.ClientException as exc:
        # Other HTTP 4xx, and client-side errors (CommandError on a bad access rule).
        raise exception.InvalidRequest(
            f"{what}: {_http_message(exc)}", request_id=_request_id(exc)
        ) from exc
    except (ks_exc.EndpointNotFound, ks_exc.CatalogException) as exc:
        raise exception.Unsupported(f"{what}: no Manila endpoint: {exc}") from exc
    except (ks_exc.Unauthorized, ks_exc.AuthorizationFailure,
            ks_exc.AuthPluginException) as exc:
        # AuthPluginException: [manila] names an unknown auth plugin or lacks its options;
        # a misconfiguration, which retrying will not cure.
        raise exception.NotAuthorized(f"{what}: authentication failed: {exc}") from exc
    except (ks_exc.ConnectionError, ks_exc.RetriableConnectionFailure) as exc:
        raise exception.ManilaUnavailable(f"{what}: cannot reach Manila: {exc}") from exc
    except ks_exc.ClientException as exc:
        raise exception.ManilaUnavailable(f"{what}: {exc}") from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise exception.ManilaUnavailable(f"{what}: cannot reach Manila: {exc}") from exc


@dataclasses.dataclass(frozen=True)
class AccessRule:
    """One access rule of a share, as saved and re-applied."""

    access_type: str
    access_to: str
    access_level: str
    metadata: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, typing.Any]:
        return {
            "access_type": self.access_type,
            "access_to": self.access_to,
            "access_level": self.access_level,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: typing.Mapping[str, typing.Any]) -> AccessRule:
        return cls(
            access_type=data["access_type"],
            access_to=data["access_to"],
            access_level=data["access_level"],
            metadata=tuple(sorted((data.get("metadata") or {}).items())),
        )


class ManilaClient:
    """The Manila calls the plugins make, at one negotiated microversion.

    Every method returns plain dicts (the API's JSON) and raises only
    :class:`exception.ProtectorError` subclasses.
    """

    def __init__(self, client: typing.Any, version: api_versions.APIVersion) -> None:
        self._client = client
        self.version = version

    # -- features -------------------------------------------------------------

    @property
    def supports_revert(self) -> bool:
        return self.version >= REVERT_VERSION

    @property
    def supports_access_rules_api(self) -> bool:
        return self.version >= ACCESS_RULES_API_VERSION

    @property
    def supports_snapshot_metadata(self) -> bool:
        return self.version >= SNAPSHOT_METADATA_VERSION

    # -- shares ---------------------------------------------------------------

    def get_share(self, share_id: str) -> dict[str, typing.Any]:
        with translate_errors(f"get share {share_id}"):
            return _as_dict(self._client.shares.get(share_id))

    def list_shares(
        self, search_opts: dict[str, typing.Any], page_size: int
    ) -> typing.Iterator[dict[str, typing.Any]]:
        """Yield shares page by page (``limit``/``offset``, oldest first).

        ``is_public`` defaults to False here: python-manilaclient otherwise adds
        ``is_public=True`` and lists other projects' public shares.

        A page shorter than ``page_size`` ends the list only once a longer page
        was seen: a Manila that caps pages below ``page_size`` (older releases
        cap every list at ``osapi_max_limit``) answers short pages all along,
        and stopping at the first would silently drop shares from protection.
        So a list that fits in one page costs one more (empty) request.
        """
        offset = 0
        longest = 0
        while True:
            opts = {"is_public": False, **search_opts, "limit": page_size, "offset": offset}
            with translate_errors("list shares"):
                # The page as Manila's JSON: building a manilaclient Resource per share
                # (setattr per field) was a third of the client's time on big lists.
                page = self._client.shares.list(
                    detailed=True, search_opts=opts, sort_key="created_at", sort_dir="asc",
                    return_raw=True,
                )
            if isinstance(page, tuple):  # with_count answers (shares, count)
                page = page[0]
            yield from page
            if not page or len(page) < min(longest, page_size):
                return
            longest = max(longest, len(page))
            offset += len(page)

    def create_share(
        self,
        *,
        share_proto: str,
        size: int,
        snapshot_id: str,
        name: str | None,
        description: str | None,
        metadata: dict[str, str],
        share_network_id: str | None,
        share_type: str | None,
        availability_zone: str | None,
    ) -> dict[str, typing.Any]:
        with translate_errors(f"create share from snapshot {snapshot_id}"):
            share = self._client.shares.create(
                share_proto,
                size,
                snapshot_id=snapshot_id,
                name=name,
                description=description,
                metadata=metadata,
                share_network=share_network_id,
                share_type=share_type,
                availability_zone=availability_zone,
            )
            return _as_dict(share)

    def delete_share(self, share_id: str) -> None:
        with translate_errors(f"delete share {share_id}"):
            self._client.shares.delete(share_id)

    def revert_share(self, share_id: str, snapshot_id: str) -> None:
        with translate_errors(f"revert share {share_id} to snapshot {snapshot_id}"):
            self._client.shares.revert_to_snapshot(share_id, snapshot_id)

    def find_shares_by_metadata(self, metadata: dict[str, str]) -> list[dict[str, typing.Any]]:
        """The caller's own shares carrying all of ``metadata`` (filtered by Manila)."""
        with translate_errors("find shares by metadata"):
            found = self._client.shares.list(
                detailed=True, search_opts={"is_public": False, "metadata": metadata}
            )
        found = found[0] if isinstance(found, tuple) else found
        result = [_as_dict(s) for s in found]
        # Be strict: a server that ignores the filter must not make us adopt a stranger.
        return [s for s in result if all((s.get("metadata") or {}).get(k) == v
                                         for k, v in metadata.items())]

    # -- snapshots ------------------------------------------------------------

    def get_snapshot(self, snapshot_id: str) -> dict[str, typing.Any]:
        with translate_errors(f"get snapshot {snapshot_id}"):
            return _as_dict(self._client.share_snapshots.get(snapshot_id))

    def list_snapshots(self, share_id: str) -> list[dict[str, typing.Any]]:
        """All snapshots of one share (a share has at most a quota's worth)."""
        with translate_errors(f"list snapshots of share {share_id}"):
            snaps = self._client.share_snapshots.list(
                detailed=True, search_opts={"share_id": share_id}
            )
        return [_as_dict(s) for s in snaps]

    def create_snapshot(
        self,
        *,
        share_id: str,
        force: bool,
        name: str,
        description: str,
        metadata: dict[str, str] | None,
    ) -> dict[str, typing.Any]:
        with translate_errors(f"snapshot share {share_id}"):
            if self.supports_snapshot_metadata:
                snap = self._client.share_snapshots.create(
                    share_id, force=force, name=name, description=description,
                    metadata=metadata or {},
                )
            else:
                snap = self._client.share_snapshots.create(
                    share_id, force=force, name=name, description=description
                )
            return _as_dict(snap)

    def delete_snapshot(self, snapshot_id: str) -> None:
        with translate_errors(f"delete snapshot {snapshot_id}"):
            self._client.share_snapshots.delete(snapshot_id)

    # -- access rules ---------------------------------------------------------

    def list_access_rules(self, share_id: str) -> list[dict[str, typing.Any]]:
        with translate_errors(f"list access rules of share {share_id}"):
            if self.supports_access_rules_api:
                rules = self._client.share_access_rules.access_list(share_id)
            else:
                rules = self._client.shares.access_list(share_id)
        return [_rule_to_dict(r) for r in rules]

    def allow_access(self, share_id: str, rule: AccessRule) -> dict[str, typing.Any]:
        with translate_errors(f"allow {rule.access_type} access to share {share_id}"):
            kwargs: dict[str, typing.Any] = {}
            if self.supports_access_rules_api and rule.metadata:
                kwargs["metadata"] = dict(rule.metadata)
            return dict(self._client.shares.allow(
                share_id, rule.access_type, rule.access_to, rule.access_level, **kwargs
            ))


def _no_cookies() -> http.cookiejar.CookiePolicy:
    """A cookie policy that accepts and returns no cookie."""
    return http.cookiejar.DefaultCookiePolicy(allowed_domains=[])


def _as_dict(resource: typing.Any) -> dict[str, typing.Any]:
    """A manilaclient resource as the API's JSON object.

    NOTE: ``Resource.to_dict()`` deep-copies the resource's JSON; listing a
    project's 5,000 shares spent over half its time there.  The resource is
    dropped right after, so a shallow copy of its JSON is just as safe.
    """
    info = getattr(resource, "_info", None)
    return dict(info) if isinstance(info, dict) else resource.to_dict()


def _rule_to_dict(rule: typing.Any) -> dict[str, typing.Any]:
    if hasattr(rule, "to_dict"):
        return _as_dict(rule)
    if hasattr(rule, "_asdict"):
        return dict(rule._asdict())
    return dict(rule)


class ClientFactory:
    """Builds :class:`ManilaClient` objects; negotiates the microversion once per endpoint.

    :param session_loader: builds a keystoneauth session around an auth plugin and
        a ``requests.Session`` to send through (the deployment's ``[manila]``
        session options: TLS, timeouts).  Each thread keeps one
        ``requests.Session``, so its jobs reuse their connections to Manila
        (keep-alive) whatever token each job carries; it stores no cookies.
    :param max_version: the highest microversion to ask for (default: the client's).
    :param endpoint_override: the Manila endpoint, where there is no service catalog.
    :param service_auth: a keystoneauth auth plugin with the service's own credentials,
        or None where none are configured.
    """

    def __init__(
        self,
        session_loader: typing.Callable[[typing.Any, requests.Session], ks_session.Session],
        max_version: str | None = None,
        interface: str = "public",
        region_name: str | None = None,
        service_type: str = "sharev2",
        endpoint_override: str | None = None,
        service_auth: typing.Any = None,
    ) -> None:
        self._session_loader = session_loader
        self._endpoint_override = endpoint_override
        self._service_auth = service_auth
        wanted = api_versions.APIVersion(max_version) if max_version else CLIENT_MAX_VERSION
        if wanted > CLIENT_MAX_VERSION:
            wanted = CLIENT_MAX_VERSION
        self._wanted = wanted
        self._interface = interface
        self._region_name = region_name
        self._service_type = service_type
        self._versions: dict[str, api_versions.APIVersion] = {}
        self._lock = threading.Lock()
        self._http = threading.local()

    @classmethod
    def from_conf(cls, conf: typing.Any, group: str = "manila") -> ClientFactory:
        """A factory configured from the ``[manila]`` options (see ``opts.py``)."""
        section = getattr(conf, group)

        def load_session(auth: typing.Any, connections: requests.Session) -> ks_session.Session:
            return ks_loading.load_session_from_conf_options(conf, group, auth=auth,
                                                             session=connections)

        service_auth = None
        if section.auth_type:
            with translate_errors(f"load the [{group}] service credentials"):
                service_auth = ks_loading.load_auth_from_conf_options(conf, group)
        return cls(
            load_session,
            max_version=section.max_api_version,
            interface=(section.valid_interfaces or ["public"])[0],
            region_name=section.region_name,
            service_type=section.service_type or "sharev2",
            endpoint_override=section.endpoint_override,
            service_auth=service_auth,
        )

    def _session(self, auth: typing.Any) -> ks_session.Session:
        """A keystoneauth session for ``auth`` over this thread's connections."""
        connections = getattr(self._http, "session", None)
        if connections is None:
            connections = requests.Session()
            # Nothing a response sets (a load balancer's cookie) may follow a job's
            # requests into another tenant's job.
            connections.cookies.set_policy(_no_cookies())
            self._http.session = connections
        return self._session_loader(auth, connections)

    @property
    def has_service_credentials(self) -> bool:
        return self._service_auth is not None

    def for_context(
        self, *, auth_token: str | None, service_catalog: typing.Any, is_admin: bool
    ) -> ManilaClient:
        """A client for a request context.

        The caller's token is used when there is one (against ``endpoint_override``
        or the catalog's Manila endpoint).  Without a token, the service
        credentials are used -- only for an admin context, and only where configured.

        :raises exception.NotAuthorized: no token, and no right to the service credentials.
        """
        if auth_token:
            endpoint = self._endpoint_override or self.endpoint_from_catalog(service_catalog)
            return self.for_token(auth_token, endpoint)
        if self._service_auth is not None and is_admin:
            return self.for_auth(self._service_auth, self._endpoint_override)
        raise exception.NotAuthorized(
            "the request carries no token"
            + ("" if self._service_auth is None else " and is not an admin's")
        )

    def for_service(self) -> ManilaClient:
        """A client with the service credentials.

        :raises exception.NotAuthorized: none are configured.
        """
        if self._service_auth is None:
            raise exception.NotAuthorized("no service credentials are configured in [manila]")
        return self.for_auth(self._service_auth, self._endpoint_override)

    def endpoint_from_catalog(self, catalog: typing.Any) -> str:
        """Find the Manila endpoint in a request context's service catalog."""
        for entry in catalog or ():
            if entry.get("type") != self._service_type:
                continue
            for endpoint in entry.get("endpoints", ()):
                interface = endpoint.get("interface") or ""
                if interface not in (self._interface, self._interface + "URL"):
                    continue
                if self._region_name and endpoint.get("region") not in (
                    self._region_name, endpoint.get("region_id")
                ):
                    continue
                url = endpoint.get("url") or endpoint.get(self._interface + "URL")
                if url:
                    return url
        raise exception.Unsupported(
            f"no {self._service_type} endpoint ({self._interface}) in the service catalog; "
            "set [manila] endpoint_override"
        )

    def for_token(self, token: str, endpoint: str) -> ManilaClient:
        """A client acting with the caller's token against ``endpoint``."""
        if not token:
            raise exception.NotAuthorized("the request carries no token")
        session = self._session(token_endpoint.Token(endpoint, token))
        return self._build(session, endpoint)

    def for_auth(self, auth: typing.Any, endpoint: str | None = None) -> ManilaClient:
        """A client acting with a keystoneauth auth plugin (service credentials)."""
        session = self._session(auth)
        if endpoint is None:
            with translate_errors("find the Manila endpoint"):
                endpoint = session.get_endpoint(
                    auth, service_type=self._service_type, interface=self._interface,
                    region_name=self._region_name,
                )
            if not endpoint:
                raise exception.Unsupported("no Manila endpoint found for the service credentials")
        return self._build(session, endpoint)

    def _build(self, session: ks_session.Session, endpoint: str) -> ManilaClient:
        version = self._negotiated(session, endpoint)
        with translate_errors("build a Manila client"):
            client = manila_client.Client(
                version, session=session, service_catalog_url=endpoint, retries=0
            )
        return ManilaClient(client, version)

    def _negotiated(self, session: ks_session.Session, endpoint: str) -> api_versions.APIVersion:
        with self._lock:
            known = self._versions.get(endpoint)
        if known is not None:
            return known
        with translate_errors(f"negotiate the Manila API version at {endpoint}"):
            probe = manila_client.Client(
                CLIENT_MAX_VERSION, session=session, service_catalog_url=endpoint, retries=0
            )
            version = api_versions.discover_version(probe, self._wanted)
        if version < SHARE_TYPE_ID_VERSION:
            # Below 2.6 Manila speaks of share types by name; everything still
            # works, but say so: it is almost certainly not what the operator wants.
            LOG.warning("Manila at %s negotiated microversion %s only",
                        endpoint, version.get_string())
        LOG.info("Manila at %s: using microversion %s", endpoint, version.get_string())
        with self._lock:
            self._versions[endpoint] = version
        return version

    def forget(self, endpoint: str) -> None:
        """Drop a cached microversion (e.g. after Manila was upgraded or downgraded)."""
        with self._lock:
            self._versions.pop(endpoint, None)
