"""A real Keystone 30 for the contract tier (``tools/real_keystone.py``): logins,
catalogs, short-lived tokens, and what keystonemiddleware hands a service.

``env`` below is the ``keystone`` part of the real Manila's ``env.json`` (brought up with
``tools/real_manila.py up --keystone``): ``auth_url``, ``region``, ``projects`` (name ->
id), ``users`` (name -> ``id``, ``password``, ``project``, ``project_id``, ``roles``),
``tenants`` (project -> its member user), ``service_users``, ``roles``.

Two forms of a service catalog:

* **v3** -- what Keystone puts in a token and keystoneauth gives back
  (``auth.get_access(session).service_catalog.catalog``): each endpoint is one
  ``{"interface", "url", "region", "region_id", "id"}``;
* **v2** -- what keystonemiddleware's ``auth_token`` hands the service behind it in
  ``X-Service-Catalog``, and so what Karbor's request context carries: one endpoint entry
  per region with ``publicURL``/``internalURL``/``adminURL``. :func:`v2_catalog` converts;
  :func:`authtoken_headers` asks the real middleware.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import threading
import time
import typing

from keystoneauth1 import service_token
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from keystoneauth1.identity import v3
from manilaclient import client as manila_client

REPO = pathlib.Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "real_keystone.py"
#: Microversion of the clients made here (the newest python-manilaclient 6.3.0 knows).
API_VERSION = "2.98"
SHARE_SERVICE_TYPE = "sharev2"


def _tool(name: str, *args: str, stdin: str = "", timeout: float = 180) -> dict:
    """Run ``tools/real_keystone.py`` for instance ``name``; returns the JSON it prints.

    :raises RuntimeError: the tool failed (its report, which names no secret).
    """
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, str(TOOL), *args, "--name", name], input=stdin,
                          capture_output=True, text=True, timeout=timeout, env=env,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"tools/real_keystone.py {args[0]} exited {proc.returncode}:\n"
                           f"{proc.stderr[-4000:]}")
    return json.loads(proc.stdout)


# -- logins -------------------------------------------------------------------------------


def password_auth(env: dict[str, typing.Any], user: str) -> v3.Password:
    """keystoneauth's ``Password`` plugin for ``user``, scoped to its project."""
    entry = env["users"][user]
    return v3.Password(auth_url=env["auth_url"], username=entry["name"],
                       password=entry["password"], user_domain_name=env["user_domain_name"],
                       project_name=entry["project"],
                       project_domain_name=env["project_domain_name"])


@dataclasses.dataclass(frozen=True)
class Login:
    """A user's keystoneauth session and what Keystone answered."""

    session: ks_session.Session
    auth: v3.Password
    token: str
    user_id: str
    project_id: str
    roles: tuple[str, ...]
    #: The token's catalog in the v3 form.
    catalog: list[dict[str, typing.Any]]


def login(env: dict[str, typing.Any], user: str) -> Login:
    """Log ``user`` in (password, project-scoped) through keystoneauth."""
    auth = password_auth(env, user)
    sess = ks_session.Session(auth=auth)
    access = auth.get_access(sess)
    return Login(session=sess, auth=auth, token=access.auth_token, user_id=access.user_id,
                 project_id=access.project_id, roles=tuple(access.role_names),
                 catalog=access.service_catalog.catalog)


def token_status(env: dict[str, typing.Any], token: str, as_user: str = "protector",
                 allow_expired: bool = False) -> int:
    """Keystone's answer when ``as_user`` (a service user) validates ``token``:
    ``GET /v3/auth/tokens`` (200 valid, 404 expired or unknown)."""
    sess = ks_session.Session(auth=password_auth(env, as_user))
    url = env["auth_url"] + "/auth/tokens" + ("?allow_expired=1" if allow_expired else "")
    return sess.get(url, headers={"X-Subject-Token": token}, raise_exc=False).status_code


def wait_until_expired(env: dict[str, typing.Any], token: str, timeout: float) -> None:
    """Poll Keystone until it no longer takes ``token`` (but still would with
    ``allow_expired``): the token expired rather than being revoked."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while token_status(env, token) == 200:
        assert time.monotonic() < deadline, f"the token still valid after {timeout:g} s"
        pause.wait(0.25)
    assert token_status(env, token, allow_expired=True) == 200


def short_lived_token(env: dict[str, typing.Any], user: str, expires_in: int,
                      project: str | None = None) -> dict[str, typing.Any]:
    """A real token of ``user`` that expires ``expires_in`` seconds after it was issued
    (``tools/real_keystone.py token``): ``token``, ``issued_at``, ``expires_at``,
    ``user_id``, ``project_id``, ``roles``, ``catalog`` (v3 form)."""
    args = ["token", "--user", user, "--expires-in", str(expires_in)]
    if project is not None:
        args += ["--project", project]
    return _tool(env["name"], *args)


# -- catalogs -----------------------------------------------------------------------------


def v2_catalog(catalog: list[dict[str, typing.Any]]) -> list[dict[str, typing.Any]]:
    """A v3-form catalog in the v2 form services receive in ``X-Service-Catalog``: per
    service ``type``, ``name`` (when it has one) and one endpoint entry per region, whose
    keys are ``region`` and ``<interface>URL``."""
    converted = []
    for service in catalog:
        regions: dict[str | None, dict[str, str]] = {}
        for endpoint in service.get("endpoints", []):
            region = endpoint.get("region_id") or endpoint.get("region")
            entry = regions.get(region)
            if entry is None:
                entry = regions[region] = {"region": region} if region else {}
            entry[endpoint["interface"] + "URL"] = endpoint["url"]
        item: dict[str, typing.Any] = {"type": service["type"]}
        if "name" in service:
            item["name"] = service["name"]
        item["endpoints"] = list(regions.values())
        converted.append(item)
    return converted


def endpoint_of(catalog: list[dict[str, typing.Any]], service_type: str,
                interface: str = "public", region: str | None = None) -> str:
    """The URL of ``service_type``'s ``interface`` endpoint in a v3-form catalog."""
    for service in catalog:
        if service["type"] != service_type:
            continue
        for endpoint in service.get("endpoints", []):
            if endpoint["interface"] == interface and region in (None, endpoint.get("region_id")):
                return endpoint["url"]
    raise LookupError(f"no {interface} {service_type} endpoint in the catalog")


def authtoken_headers(env: dict[str, typing.Any], token: str,
                      service_token_: str | None = None) -> dict[str, typing.Any]:
    """What keystonemiddleware's ``auth_token``, configured like Manila's, does with
    ``token`` (and an ``X-Service-Token``): ``status`` and the ``headers`` that reach the
    service (e.g. ``X-Service-Catalog``, ``X-Roles``, ``X-Project-Id``)."""
    return _tool(env["name"], "authtoken-headers",
                 stdin=f"{token}\n{service_token_ or ''}\n")


# -- Manila through the catalog -----------------------------------------------------------


def manila(sess: ks_session.Session, region: str | None = None) -> typing.Any:
    """python-manilaclient on ``sess``, its endpoint found in the token's catalog."""
    return manila_client.Client(API_VERSION, session=sess, service_type=SHARE_SERVICE_TYPE,
                                region_name=region, endpoint_type="publicURL", retries=0)


def manila_with_token(endpoint: str, token: str,
                      service_auth: v3.Password | None = None) -> typing.Any:
    """python-manilaclient sending ``token`` as it is (no re-authentication) to
    ``endpoint``; with ``service_auth`` also an ``X-Service-Token`` of that user
    (keystoneauth's ``ServiceTokenAuthWrapper``, as Nova and Cinder send it)."""
    auth: typing.Any = token_endpoint.Token(endpoint, token)
    if service_auth is not None:
        auth = service_token.ServiceTokenAuthWrapper(user_auth=auth, service_auth=service_auth)
    return manila_client.Client(API_VERSION, session=ks_session.Session(auth=auth),
                                service_catalog_url=endpoint, retries=0)
