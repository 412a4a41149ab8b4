"""A stand-in for the part of Keystone's identity API v3 that services use.

:class:`KeystoneStandIn` serves, over real HTTP on a loopback port, what a
service and keystoneauth need of Keystone, answering as Keystone 30 does
(checked against the real one by ``tests/contract/test_keystone_fidelity.py``):

* version discovery: ``GET /`` (300, the versions) and ``GET /v3`` (the v3 document);
* ``POST /v3/auth/tokens``: password authentication, scoped to a project (the
  user's default project when no scope is given); 201 with ``X-Subject-Token``;
  401 for a wrong password;
* ``GET``/``HEAD /v3/auth/tokens``: validation of ``X-Subject-Token`` with the
  caller's ``X-Auth-Token`` (401 when that one does not authenticate; 403 unless
  the caller has the ``admin`` or -- for GET -- ``service`` role, or is the token's
  user; 404 for an unknown or expired token, unless ``allow_expired`` and within
  the window); the token's user, project, roles, catalog and ``expires_at``;
* ``DELETE /v3/auth/tokens``: revocation (admin or the token's user).

:meth:`KeystoneStandIn.authenticate` is what keystonemiddleware's ``auth_token``
does in front of a service configured like Manila (service tokens accepted,
``service_token_roles_required``): a :class:`~manila_standin.server.ManilaStandIn`
linked with :meth:`~manila_standin.server.ManilaStandIn.use_keystone` asks it for
every request.

Tokens expire on the wall clock (``time.time``; a test may hand another clock),
so that a service comparing ``expires_at`` with its own clock agrees with us.
Like Fernet tokens, ``issued_at`` and ``expires_at`` are whole seconds.
"""

from __future__ import annotations

import dataclasses
import datetime
import http.server
import json
import secrets
import threading
import time
import typing
import urllib.parse
import uuid

from manila_standin import api as api_mod

DOMAIN_ID = "default"
DOMAIN_NAME = "Default"
REGION = "RegionOne"
#: Keystone's identity API version, as Keystone 30 reports it.
VERSION_ID = "v3.14"
VERSION_UPDATED = "2020-04-07T00:00:00Z"
MEDIA_TYPE = "application/vnd.openstack.identity-v3+json"
#: Seconds a token lives unless asked otherwise (Keystone's ``[token] expiration``).
TOKEN_LIFE = 3600
#: Seconds after expiry an ``allow_expired`` validation still succeeds (Keystone's
#: ``[token] allow_expired_window``, 48 h).
ALLOW_EXPIRED_WINDOW = 172800
#: The role keystonemiddleware requires of a service token (``service_token_roles``).
SERVICE_ROLE = "service"
ADMIN_ROLE = "admin"
#: The accounts :meth:`KeystoneStandIn.bootstrap` makes (as ``tools/real_keystone.py``).
TENANTS = {"project-a": "member-a", "project-b": "member-b"}
MEMBER_ROLES = ("member", "reader")
SERVICE_PROJECT = "service"
ADMIN_PROJECT = "admin"
SERVICE_USERS = ("manila", "protector")

_UNAUTHORIZED = "The request you have made requires authentication."


def _stamp(seconds: float) -> str:
    """Keystone's timestamp of a Fernet token (whole seconds, six zero decimals)."""
    moment = datetime.datetime.fromtimestamp(int(seconds), datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def _hex_id() -> str:
    return uuid.uuid4().hex


@dataclasses.dataclass(frozen=True)
class User:
    id: str
    name: str
    password: str = dataclasses.field(repr=False)
    default_project_id: str | None


@dataclasses.dataclass(frozen=True)
class Token:
    """An issued token (the value is the dictionary key, never part of the record)."""

    user_id: str
    project_id: str | None
    roles: tuple[str, ...]
    issued_at: float
    expires_at: float
    audit_id: str


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who a token stands for, as keystonemiddleware hands it to the service."""

    user_id: str
    project_id: str | None
    roles: tuple[str, ...]


class _Refused(Exception):
    """An answer other than success: status and Keystone's error message."""

    def __init__(self, status: int, message: str, title: str,
                 headers: typing.Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.title = title
        self.headers = dict(headers or {})


class KeystoneStandIn:
    """Keystone's identity API v3, as far as services use it, over HTTP.

    :param host: address to bind (loopback by default).
    :param port: port to bind; 0 picks a free one at :meth:`start`.
    :param clock: seconds since the epoch (the wall clock by default).
    :param token_life: seconds a token lives unless :meth:`issue` says otherwise.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 clock: typing.Callable[[], float] = time.time,
                 token_life: int = TOKEN_LIFE) -> None:
        self._host = host
        self._port = port
        self._clock = clock
        self.token_life = token_life
        self._lock = threading.Lock()
        self._users: dict[str, User] = {}
        self._projects: dict[str, str] = {}          # id -> name
        self._roles: dict[str, str] = {}             # name -> id
        self._assignments: dict[tuple[str, str], tuple[str, ...]] = {}
        self._services: list[dict[str, typing.Any]] = []
        self._tokens: dict[str, Token] = {}
        self._revoked: set[str] = set()
        self._passwords: dict[str, str] = {}         # user name -> password
        self._log: list[tuple[str, str, int]] = []
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> KeystoneStandIn:
        """Bind the port, serve in a daemon thread, add the identity endpoints.

        :raises RuntimeError: if already started.
        """
        from manila_standin import server as server_mod

        if self._server is not None:
            raise RuntimeError("the Keystone stand-in is already running")
        self._server = server_mod.HttpServer((self._host, self._port), self)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.02},
                                        name=f"keystone-standin-{self._port}", daemon=True)
        self._thread.start()
        self.add_service("identity", "keystone", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> KeystoneStandIn:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://host:port`` (the unversioned root, where discovery starts)."""
        return f"http://{self._host}:{self._port}"

    @property
    def auth_url(self) -> str:
        """``http://host:port/v3``."""
        return self.base_url + "/v3"

    # -- accounts and catalog -------------------------------------------------------------

    def add_project(self, name: str) -> str:
        """Create a project in the default domain; returns its id."""
        with self._lock:
            for project_id, known in self._projects.items():
                if known == name:
                    return project_id
            project_id = _hex_id()
            self._projects[project_id] = name
            return project_id

    def add_user(self, name: str, project: str, roles: typing.Iterable[str],
                 password: str | None = None) -> str:
        """Create a user with ``roles`` in ``project`` (its default project); returns its id."""
        project_id = self.add_project(project)
        password = password or secrets.token_urlsafe(18)
        with self._lock:
            for role in roles:
                self._roles.setdefault(role, _hex_id())
            user = User(_hex_id(), name, password, project_id)
            self._users[user.id] = user
            self._passwords[name] = password
            self._assignments[(user.id, project_id)] = tuple(roles)
            return user.id

    def add_service(self, service_type: str, name: str, url: str) -> None:
        """Add a catalog entry with public, internal and admin endpoints at ``url``
        (``$(project_id)s`` is replaced by the token's project, as Keystone does)."""
        with self._lock:
            self._services = [s for s in self._services if s["type"] != service_type]
            self._services.append({"type": service_type, "name": name, "id": _hex_id(),
                                   "url": url, "ids": [_hex_id() for _ in range(3)]})

    def bootstrap(self) -> dict[str, typing.Any]:
        """Make the accounts ``tools/real_keystone.py`` makes; returns :meth:`env`."""
        self.add_user("admin", ADMIN_PROJECT, (ADMIN_ROLE,))
        for project, user in TENANTS.items():
            self.add_user(user, project, MEMBER_ROLES)
        self.add_user("manila", SERVICE_PROJECT, (ADMIN_ROLE, SERVICE_ROLE))
        self.add_user("protector", SERVICE_PROJECT, (SERVICE_ROLE,))
        return self.env()

    def env(self) -> dict[str, typing.Any]:
        """The accounts in the shape of the real Keystone's ``env.json`` ``keystone`` part:
        ``auth_url``, ``region``, ``projects`` (name -> id), ``users`` (name -> ``id``,
        ``password``, ``project``, ``project_id``, ``roles``), ``tenants``..."""
        with self._lock:
            users = {}
            for user in self._users.values():
                project_id = user.default_project_id
                users[user.name] = {
                    "name": user.name, "id": user.id, "password": user.password,
                    "project": self._projects.get(project_id or ""),
                    "project_id": project_id,
                    "roles": list(self._assignments.get((user.id, project_id or ""), ()))}
            return {
                "name": "standin", "keystone_version": "standin", "base_url": self.base_url,
                "auth_url": self.auth_url, "region": REGION,
                "user_domain_name": DOMAIN_NAME, "project_domain_name": DOMAIN_NAME,
                "domain_id": DOMAIN_ID,
                "projects": {name: project_id for project_id, name in self._projects.items()},
                "tenants": dict(TENANTS), "users": users,
                "service_users": list(SERVICE_USERS),
                "roles": {name: name for name in self._roles},
            }

    # -- tokens ---------------------------------------------------------------------------

    def issue(self, user: str, project: str | None = None,
              expires_in: float | None = None) -> dict[str, typing.Any]:
        """A token of ``user`` (a name) in ``project`` (a name; default its own) that
        expires ``expires_in`` seconds after it is issued: the fields of
        ``tools/real_keystone.py token`` (``token``, ``issued_at``, ``expires_at``,
        ``user_id``, ``project_id``, ``roles``, ``catalog``).

        :raises KeyError: no such user, or no role in that project.
        """
        with self._lock:
            found = next((u for u in self._users.values() if u.name == user), None)
            if found is None:
                raise KeyError(f"no user {user}")
            project_id = found.default_project_id
            if project:
                project_id = next((i for i, n in self._projects.items() if n == project), None)
                if project_id is None:
                    raise KeyError(f"no project {project}")
            value, token = self._issue(found, project_id, expires_in)
            body = self._token_body(token, catalog=True)
        return {"token": value, "issued_at": body["issued_at"],
                "expires_at": body["expires_at"], "user_id": token.user_id,
                "project_id": token.project_id, "roles": list(token.roles),
                "catalog": body["catalog"]}

    def revoke(self, token: str) -> None:
        """Revoke ``token``: validations answer 404 and services 401 from now on."""
        with self._lock:
            self._revoked.add(token)

    def authenticate(self, token: str | None,
                     service_token: str | None = None) -> Identity | None:
        """What keystonemiddleware's ``auth_token`` lets through to a service configured
        like Manila (service tokens accepted, ``service_token_roles_required``):

        * no token, an unknown, revoked or expired one: refused (None);
        * an ``X-Service-Token`` that is not a valid token of a user with the
          ``service`` role: refused, whatever the user token;
        * an expired user token with such a service token: accepted within the
          ``allow_expired`` window.
        """
        if not token:
            return None
        now = self._clock()
        with self._lock:
            if service_token:
                service = self._live(service_token, now)
                if service is None or SERVICE_ROLE not in service.roles:
                    return None
            found = self._live(token, now, allow_expired=bool(service_token))
            if found is None:
                return None
            return Identity(found.user_id, found.project_id, found.roles)

    def validations(self) -> int:
        """How many token validations (``GET``/``HEAD /v3/auth/tokens``) were answered."""
        with self._lock:
            return sum(1 for method, path, _ in self._log
                       if method in ("GET", "HEAD") and path.rstrip("/") == "/v3/auth/tokens")

    def requests(self) -> list[tuple[str, str, int]]:
        """``(method, path, status)`` of every request answered, oldest first."""
        with self._lock:
            return list(self._log)

    def _issue(self, user: User, project_id: str | None,
               expires_in: float | None) -> tuple[str, Token]:
        roles: tuple[str, ...] = ()
        if project_id is not None:
            if (user.id, project_id) not in self._assignments:
                raise KeyError(f"user {user.name} has no role in project {project_id}")
            roles = self._assignments[(user.id, project_id)]
        issued = int(self._clock())
        life = self.token_life if expires_in is None else expires_in
        token = Token(user.id, project_id, roles, issued, int(issued + life),
                      secrets.token_urlsafe(16)[:22])
        # A Fernet token's length and alphabet, but random.
        value = "gAAAAAB" + secrets.token_urlsafe(132)[:176]
        self._tokens[value] = token
        return value, token

    def _live(self, value: str, now: float, allow_expired: bool = False) -> Token | None:
        token = self._tokens.get(value)
        if token is None or value in self._revoked:
            return None
        if now >= token.expires_at:
            if not allow_expired or now >= token.expires_at + ALLOW_EXPIRED_WINDOW:
                return None
        return token

    def _token_body(self, token: Token, catalog: bool) -> dict[str, typing.Any]:
        user = self._users[token.user_id]
        domain = {"id": DOMAIN_ID, "name": DOMAIN_NAME}
        body: dict[str, typing.Any] = {
            "methods": ["password"],
            "user": {"domain": domain, "id": user.id, "name": user.name,
                     "password_expires_at": None},
            "audit_ids": [token.audit_id],
            "expires_at": _stamp(token.expires_at),
            "issued_at": _stamp(token.issued_at),
        }
        if token.project_id is not None:
            body["project"] = {"domain": domain, "id": token.project_id,
                               "name": self._projects[token.project_id]}
            body["is_domain"] = False
            body["roles"] = [{"id": self._roles[name], "name": name} for name in token.roles]
            body["is_admin_project"] = self._projects[token.project_id] == ADMIN_PROJECT
            if catalog:
                body["catalog"] = self._catalog(token.project_id)
        return body

    def _catalog(self, project_id: str) -> list[dict[str, typing.Any]]:
        catalog = []
        for service in self._services:
            url = service["url"].replace("$(project_id)s", project_id)
            catalog.append({
                "endpoints": [{"id": endpoint_id, "interface": interface, "region_id": REGION,
                               "url": url, "region": REGION}
                              for endpoint_id, interface in zip(
                                  service["ids"], ("public", "internal", "admin"), strict=True)],
                "id": service["id"], "type": service["type"], "name": service["name"]})
        return catalog

    # -- HTTP -----------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: typing.Mapping[str, str],
               body: bytes, default_host: str = "127.0.0.1") -> api_mod.Reply:
        """Answer one HTTP request (``headers`` with lower-case names)."""
        split = urllib.parse.urlsplit(target)
        path = split.path or "/"
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        base = f"http://{headers.get('host') or default_host}"
        extra: dict[str, str] = {}
        try:
            status, payload, extra = self._route(method.upper(), path, query, headers, body,
                                                 base)
        except _Refused as exc:
            status, extra = exc.status, exc.headers
            payload = {"error": {"code": exc.status, "message": exc.message,
                                 "title": exc.title}}
        with self._lock:
            self._log.append((method.upper(), path, status))
        reply_headers = [("Vary", "X-Auth-Token"),
                         ("x-openstack-request-id", f"req-{uuid.uuid4()}"), *extra.items()]
        data = b""
        if payload is not None:
            data = json.dumps(payload).encode("utf-8")
            reply_headers.append(("Content-Type", "application/json"))
        if method.upper() == "HEAD":
            data = b""
        return api_mod.Reply(status, reply_headers, data)

    def _route(self, method: str, path: str, query: dict[str, str],
               headers: typing.Mapping[str, str], body: bytes, base: str
               ) -> tuple[int, typing.Any, dict[str, str]]:
        if path == "/" and method in ("GET", "HEAD"):
            return 300, {"versions": {"values": [self._version(base)]}}, {
                "Location": f"{base}/v3/"}
        if path in ("/v3", "/v3/") and method in ("GET", "HEAD"):
            return 200, {"version": self._version(base)}, {}
        if path.rstrip("/") == "/v3/auth/tokens":
            if method == "POST":
                return self._password_auth(body, "nocatalog" in query)
            if method in ("GET", "HEAD", "DELETE"):
                return self._check(method, headers, query)
        raise _Refused(404, "The resource could not be found.", "Not Found")

    @staticmethod
    def _version(base: str) -> dict[str, typing.Any]:
        return {"id": VERSION_ID, "status": "stable", "updated": VERSION_UPDATED,
                "links": [{"rel": "self", "href": f"{base}/v3/"}],
                "media-types": [{"base": "application/json", "type": MEDIA_TYPE}]}

    def _unauthorized(self) -> _Refused:
        return _Refused(401, _UNAUTHORIZED, "Unauthorized",
                        {"WWW-Authenticate": f'Keystone uri="{self.auth_url}"'})

    def _password_auth(self, raw: bytes, nocatalog: bool) -> tuple[int, typing.Any,
                                                                   dict[str, str]]:
        try:
            auth = json.loads(raw)["auth"]
            methods = auth["identity"]["methods"]
            given = auth["identity"]["password"]["user"]
        except (ValueError, KeyError, TypeError):
            raise _Refused(400, "Malformed request body", "Bad Request") from None
        if "password" not in methods or not isinstance(given, dict):
            raise self._unauthorized()
        with self._lock:
            user = self._find_user(given)
            if user is None or not secrets.compare_digest(
                    str(given.get("password", "")), user.password):
                raise self._unauthorized()
            project_id = self._scope(auth.get("scope"), user)
            try:
                value, token = self._issue(user, project_id, None)
            except KeyError:
                raise self._unauthorized() from None
            payload = {"token": self._token_body(token, catalog=not nocatalog)}
        return 201, payload, {"X-Subject-Token": value}

    def _find_user(self, given: dict[str, typing.Any]) -> User | None:
        if "id" in given:
            return self._users.get(str(given["id"]))
        domain = given.get("domain") or {}
        if domain.get("id", DOMAIN_ID) != DOMAIN_ID and domain.get("name") != DOMAIN_NAME:
            return None
        return next((u for u in self._users.values() if u.name == given.get("name")), None)

    def _scope(self, scope: typing.Any, user: User) -> str | None:
        if not scope:
            return user.default_project_id
        project = scope.get("project") if isinstance(scope, dict) else None
        if not isinstance(project, dict):
            raise self._unauthorized()
        if "id" in project:
            if project["id"] not in self._projects:
                raise self._unauthorized()
            return str(project["id"])
        for project_id, name in self._projects.items():
            if name == project.get("name"):
                return project_id
        raise self._unauthorized()

    def _check(self, method: str, headers: typing.Mapping[str, str],
               query: dict[str, str]) -> tuple[int, typing.Any, dict[str, str]]:
        now = self._clock()
        with self._lock:
            caller = self._live(headers.get("x-auth-token") or "", now)
            if caller is None:
                raise self._unauthorized()
            subject_value = headers.get("x-subject-token")
            if not subject_value:
                raise _Refused(404, "No token in the request", "Not Found")
            subject = self._tokens.get(subject_value)
            if subject is None:
                raise _Refused(404, "Could not recognize Fernet token", "Not Found")
            allow_expired = query.get("allow_expired", "").lower() in ("1", "true", "yes")
            if self._live(subject_value, now, allow_expired=allow_expired) is None:
                raise _Refused(404, "Failed to validate token", "Not Found")
            # Keystone's policies: identity:validate_token (admin, service or the token's
            # user), identity:check_token (HEAD) and identity:revoke_token (admin or the
            # token's user).
            allowed = {ADMIN_ROLE, SERVICE_ROLE} if method == "GET" else {ADMIN_ROLE}
            if not (allowed & set(caller.roles) or subject.user_id == caller.user_id):
                action = {"GET": "validate_token", "HEAD": "check_token",
                          "DELETE": "revoke_token"}[method]
                raise _Refused(403, "You are not authorized to perform the requested "
                               f"action: identity:{action}.", "Forbidden")
            if method == "DELETE":
                self._revoked.add(subject_value)
                return 204, None, {}
            payload = {"token": self._token_body(subject, catalog="nocatalog" not in query)}
        return 200, payload, {"X-Subject-Token": subject_value}
