"""Building :class:`~manila_protector.plugins.manila_client.ManilaClient` objects.

One :class:`ClientFactory` per process: it finds Manila's endpoint, builds a
keystoneauth session for the caller's token (or the service's credentials)
over this thread's keep-alive connections, and negotiates the API microversion
once per endpoint.  Errors are translated by
:func:`manila_protector.plugins.manila_client.translate_errors`.
"""

from __future__ import annotations

import copy
import http.cookiejar
import logging
import threading
import typing

from keystoneauth1 import loading as ks_loading
from keystoneauth1.access import service_catalog as ks_catalog
from keystoneauth1 import service_token
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from manilaclient import api_versions
from manilaclient import client as manila_client
import requests

from manila_protector import exception
from manila_protector import identity
from manila_protector.plugins import manila_client as client_mod
from manila_protector.plugins import observe

LOG = logging.getLogger(__name__)

#: The option group of the service user whose token rides along (Nova's and Cinder's name).
SERVICE_USER_GROUP = "service_user"


def _no_cookies() -> http.cookiejar.CookiePolicy:
    """A cookie policy that accepts and returns no cookie."""
    return http.cookiejar.DefaultCookiePolicy(allowed_domains=[])



def _interfaces(section: typing.Any) -> tuple[str, ...]:
    """``valid_interfaces`` (in order of preference), else the deprecated ``interface``."""
    if section.valid_interfaces:
        return tuple(section.valid_interfaces)
    return (section.interface,) if section.interface else ("public",)


class ClientFactory:
    """Builds Manila clients; negotiates the microversion once per endpoint.

    :param session_loader: builds a keystoneauth session around an auth plugin and
        a ``requests.Session`` to send through (the deployment's ``[manila]``
        session options: TLS, timeouts).  Each thread keeps one
        ``requests.Session``, so its jobs reuse their connections to Manila
        (keep-alive) whatever token each job carries; it stores no cookies.
    :param max_version: the highest microversion to ask for (default: the client's).
    :param interface: the catalog interface to use (``public``, ``internal``,
        ``admin``; ``publicURL`` spellings too), or several in order of preference.
    :param region_name: the catalog region to use (None: any).
    :param service_type: Manila's service type in the catalog.
    :param endpoint_override: the Manila endpoint, where there is no service catalog.
    :param service_auth: a keystoneauth auth plugin with the service's own credentials
        (``[manila]``), or None: used only for work of the service's own
        (:meth:`for_service`), never in a caller's place.
    :param service_user: a keystoneauth auth plugin whose token every request
        sends as ``X-Service-Token`` (``[service_user]``), or None.
    :param observer: told of every HTTP response (its method and status).
    """

    def __init__(
        self,
        session_loader: typing.Callable[[typing.Any, requests.Session], ks_session.Session],
        max_version: str | None = None,
        interface: str | typing.Sequence[str] = "public",
        region_name: str | None = None,
        service_type: str = "sharev2",
        endpoint_override: str | None = None,
        service_auth: typing.Any = None,
        service_user: typing.Any = None,
        observer: observe.Observer = observe.NOTHING,
    ) -> None:
        self._session_loader = session_loader
        self._observer = observer
        self._endpoint_override = endpoint_override
        self._service_auth = service_auth
        self._service_user = service_user
        newest = client_mod.CLIENT_MAX_VERSION
        wanted = api_versions.APIVersion(max_version) if max_version else newest
        if wanted > newest:
            wanted = newest
        self._wanted = wanted
        self._interfaces = (interface,) if isinstance(interface, str) else tuple(interface)
        self._region_name = region_name
        self._service_type = service_type
        self._versions: dict[str, api_versions.APIVersion] = {}
        self._lock = threading.Lock()
        self._http = threading.local()

    @classmethod
    def from_conf(cls, conf: typing.Any, group: str = "manila",
                  observer: observe.Observer = observe.NOTHING) -> ClientFactory:
        """A factory configured from the ``[manila]`` options (see ``opts.py``)."""
        section = getattr(conf, group)

        def load_session(auth: typing.Any, connections: requests.Session) -> ks_session.Session:
            return ks_loading.load_session_from_conf_options(conf, group, auth=auth,
                                                             session=connections)

        service_auth = None
        if section.auth_type:
            with client_mod.translate_errors(f"load the [{group}] service credentials"):
                service_auth = ks_loading.load_auth_from_conf_options(conf, group)
        service_user = None
        users = getattr(conf, SERVICE_USER_GROUP, None)
        if users is not None and users.send_service_user_token:
            with client_mod.translate_errors(
                    f"load the [{SERVICE_USER_GROUP}] credentials"):
                service_user = ks_loading.load_auth_from_conf_options(
                    conf, SERVICE_USER_GROUP)
        return cls(
            load_session,
            max_version=section.max_api_version,
            interface=_interfaces(section),
            region_name=section.region_name,
            service_type=section.service_type or "sharev2",
            endpoint_override=section.endpoint_override,
            service_auth=service_auth,
            service_user=service_user,
            observer=observer,
        )

    def _session(self, auth: typing.Any) -> ks_session.Session:
        """A keystoneauth session for ``auth`` over this thread's connections."""
        connections = getattr(self._http, "session", None)
        if connections is None:
            connections = requests.Session()
            # Nothing a response sets (a load balancer's cookie) may follow a job's
            # requests into another tenant's job.
            connections.cookies.set_policy(_no_cookies())
            connections.hooks["response"].append(self._observed)
            self._http.session = connections
        return self._session_loader(auth, connections)

    def _observed(self, response: requests.Response, *args: typing.Any,
                  **kwargs: typing.Any) -> None:
        """requests' response hook: every answer this factory's clients receive."""
        self._observer.manila_request(response.request.method or "", response.status_code)

    @property
    def has_service_credentials(self) -> bool:
        """Whether ``[manila]`` holds the service's own credentials (for :meth:`for_service`)."""
        return self._service_auth is not None

    @property
    def sends_service_tokens(self) -> bool:
        """Whether every request carries an ``X-Service-Token`` (``[service_user]``)."""
        return self._service_user is not None

    def for_caller(self, caller: identity.Caller) -> client_mod.ManilaClient:
        """A client acting for ``caller``, with the caller's own token.

        Against ``endpoint_override`` or the Manila endpoint of the caller's
        service catalog.  Service credentials never stand in for a caller; with
        ``[service_user] send_service_user_token`` every request also carries the
        service's token (``X-Service-Token``), which Manila's keystonemiddleware
        accepts beside a user token that expired during a long job.

        :raises exception.NotAuthorized: the caller has no token.
        :raises exception.Unsupported: no Manila endpoint to use.
        """
        if not caller.auth_token:
            raise exception.NotAuthorized("the request carries no token")
        endpoint = self._endpoint_override or self.endpoint_from_catalog(caller.service_catalog)
        return self.for_token(caller.auth_token, endpoint)

    def for_service(self) -> client_mod.ManilaClient:
        """A client with the service credentials.

        :raises exception.NotAuthorized: none are configured.
        """
        if self._service_auth is None:
            raise exception.NotAuthorized("no service credentials are configured in [manila]")
        return self.for_auth(self._service_auth, self._endpoint_override)

    def endpoint_from_catalog(self, catalog: typing.Any) -> str:
        """Find the Manila endpoint in a request context's service catalog.

        Either form a caller may hand over: the **v2 form** keystonemiddleware gives
        services (``X-Service-Catalog``; endpoints with ``publicURL``,
        ``internalURL``, ``adminURL``) -- what Karbor's context carries -- or the
        **v3 form** of a token's catalog (endpoints with ``interface`` and ``url``).
        keystoneauth's own catalog classes read them, honouring the configured
        interfaces (in order of preference) and region.

        :raises exception.Unsupported: no such endpoint (the message names
            ``[manila] endpoint_override`` as the other way).
        """
        entries = [copy.deepcopy(dict(entry)) for entry in catalog or ()
                   if isinstance(entry, typing.Mapping)]
        v3 = any(isinstance(endpoint, typing.Mapping) and "interface" in endpoint
                 for entry in entries for endpoint in entry.get("endpoints") or ())
        reader = (ks_catalog.ServiceCatalogV3 if v3 else ks_catalog.ServiceCatalogV2)(entries)
        wanted = (f"{self._service_type} endpoint ({'/'.join(self._interfaces)}"
                  + (f", region {self._region_name}" if self._region_name else "") + ")")
        with client_mod.translate_errors(
                f"no {wanted} in the request's service catalog, and no [manila] "
                "endpoint_override"):
            url = reader.url_for(service_type=self._service_type,
                                 interface=list(self._interfaces),
                                 region_name=self._region_name)
        if not url:
            raise exception.Unsupported(
                f"no {wanted} in the request's service catalog, and no [manila] "
                "endpoint_override")
        return url

    def for_token(self, token: str, endpoint: str) -> client_mod.ManilaClient:
        """A client acting with the caller's token against ``endpoint`` (see :meth:`for_caller`)."""
        if not token:
            raise exception.NotAuthorized("the request carries no token")
        auth: typing.Any = token_endpoint.Token(endpoint, token)
        if self._service_user is not None:
            auth = service_token.ServiceTokenAuthWrapper(user_auth=auth,
                                                         service_auth=self._service_user)
        return self._build(self._session(auth), endpoint)

    def for_auth(self, auth: typing.Any, endpoint: str | None = None) -> client_mod.ManilaClient:
        """A client acting with a keystoneauth auth plugin (service credentials)."""
        session = self._session(auth)
        if endpoint is None:
            with client_mod.translate_errors("find the Manila endpoint"):
                endpoint = session.get_endpoint(
                    auth, service_type=self._service_type, interface=list(self._interfaces),
                    region_name=self._region_name,
                )
            if not endpoint:
                raise exception.Unsupported("no Manila endpoint found for the service credentials")
        return self._build(session, endpoint)

    def _build(self, session: ks_session.Session, endpoint: str) -> client_mod.ManilaClient:
        version = self._negotiated(session, endpoint)
        with client_mod.translate_errors("build a Manila client"):
            client = manila_client.Client(
                version, session=session, service_catalog_url=endpoint, retries=0
            )
        return client_mod.ManilaClient(client, version)

    def _negotiated(self, session: ks_session.Session, endpoint: str) -> api_versions.APIVersion:
        with self._lock:
            known = self._versions.get(endpoint)
        if known is not None:
            return known
        with client_mod.translate_errors(f"negotiate the Manila API version at {endpoint}"):
            probe = manila_client.Client(
                client_mod.CLIENT_MAX_VERSION, session=session, service_catalog_url=endpoint,
                retries=0,
            )
            version = api_versions.discover_version(probe, self._wanted)
        if version < client_mod.SHARE_TYPE_ID_VERSION:
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
