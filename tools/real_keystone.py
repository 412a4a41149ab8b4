#!/usr/bin/env python3
"""Bring up a real OpenStack Keystone 30.0.0 (2026.2, Manila 23's cycle) on this machine.

Stdlib only; runs with any python3 (3.10 or newer)::

    python3 tools/real_keystone.py install   # the pinned virtualenv, cached between runs
    python3 tools/real_keystone.py setup     # config, fernet/credential keys, database, bootstrap
    python3 tools/real_keystone.py start     # setup, then Keystone under gunicorn, then accounts
    python3 tools/real_keystone.py up        # install + start
    python3 tools/real_keystone.py status    # whether it runs and answers
    python3 tools/real_keystone.py env       # auth URL, projects, users (JSON, passwords hidden)
    python3 tools/real_keystone.py token --user member-a --project project-a --expires-in 5
    python3 tools/real_keystone.py stop      # stops exactly the process group start started

``tools/real_manila.py start --keystone`` starts it (same ``--name``) together with a
Manila API process on Manila's unmodified ``keystone`` pipeline; this tool alone runs
Keystone only.

What runs (loopback only, on the machine's MariaDB): Keystone's WSGI application under
gunicorn on a free 127.0.0.1 port, its own database ``keystone_protector_<name>``, fernet
and credential keys in the run directory. Accounts (created idempotently at every start,
domain ``Default``, region ``RegionOne``):

* ``admin`` (bootstrap): role ``admin`` in project ``admin`` (``[resource]
  admin_project_name``);
* ``member-a`` / ``member-b``: roles ``member`` and ``reader`` in ``project-a`` / ``project-b``;
* ``manila``: roles ``admin`` and ``service`` in project ``service`` (as devstack makes it);
* ``protector`` (our worker's service user): role ``service`` in project ``service``.

Passwords are made once per instance and kept in ``secrets.json`` (mode 0600); only
``env.json`` (0600) carries them; nothing this tool prints does.

``token`` mints a real token with Keystone's own application run in-process (Keystone's
virtualenv, the same database and fernet keys) with ``[token] expiration`` set to
``--expires-in`` seconds: the running Keystone validates it until it expires. It prints
JSON (``token``, ``expires_at``, ``user_id``, ``project_id``, ``roles``, ``catalog``).
``authtoken-headers`` hands a token (standard input) to keystonemiddleware's
``auth_token`` in-process, configured like Manila's, and prints the headers a service
behind it receives (``X-Service-Catalog`` in the form services get it).

Exit status: 0 done, 1 failed (the reason and the tail of the relevant log are printed),
2 this machine cannot run it (a prerequisite is missing).
"""

# ruff: noqa: S603, S607 - a developer/CI tool: it runs the commands it builds itself
# (Keystone's virtualenv), never input from elsewhere.
from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import real_manila as rm  # noqa: E402 - the sibling tool: processes, locks, MariaDB

KEYSTONE_VERSION = "30.0.0"
#: Everything installed into Keystone's virtualenv, pinned.
REQUIREMENTS = (
    f"keystone=={KEYSTONE_VERSION}",
    "keystonemiddleware==13.0.1",
    "gunicorn==27.0.1",
    "PyMySQL==1.2.4",
)
SERVICE = "keystone"
REGION = "RegionOne"
DOMAIN = "Default"
DOMAIN_ID = "default"
ADMIN_USER = "admin"
ADMIN_PROJECT = "admin"
SERVICE_PROJECT = "service"
#: Tenant projects and their member users.
TENANTS = {"project-a": "member-a", "project-b": "member-b"}
MEMBER_ROLES = ("member", "reader")
#: Role names (Keystone's defaults; ``service`` marks service users' tokens).
ROLES = {"admin": "admin", "member": "member", "reader": "reader", "service": "service"}
#: Every user but the bootstrap admin: (project, roles there).
USERS = {
    **{user: (project, MEMBER_ROLES) for project, user in TENANTS.items()},
    "manila": (SERVICE_PROJECT, ("admin", "service")),
    "protector": (SERVICE_PROJECT, ("service",)),
}
#: Users whose tokens services accept as service tokens.
SERVICE_USERS = ("manila", "protector")

START_TIMEOUT = 180.0
Failed = rm.Failed
CannotRun = rm.CannotRun


def say(message: str) -> None:
    print(f"[real-keystone] {message}", flush=True)


# -- places ---------------------------------------------------------------------------


class Paths:
    """Where one instance (``name``) keeps its files (the interface ``real_manila``'s
    process helpers use: ``run``, ``log()``, ``pid_file()``)."""

    def __init__(self, name: str, cache: str | None = None) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,40}", name):
            raise Failed(f"instance name {name!r}: use lower-case letters, digits, _ and -")
        self.name = name
        cache = cache or os.environ.get("MANILA_PROTECTOR_CACHE") or "~/.cache/manila-protector"
        self.base = pathlib.Path(cache).expanduser() / f"keystone-{KEYSTONE_VERSION}"
        self.venv = self.base / "venv"
        self.marker = self.venv / ".manila-protector-installed.json"
        self.run = self.base / "run" / name
        self.etc = self.run / "etc"
        self.logs = self.run / "log"
        self.pids = self.run / "pids"
        self.fernet_keys = self.run / "fernet-keys"
        self.credential_keys = self.run / "credential-keys"
        self.env_file = self.run / "env.json"
        self.secrets_file = self.run / "secrets.json"
        self.conf = self.etc / "keystone.conf"
        self.authtoken_conf = self.etc / "authtoken.conf"
        self.database = f"keystone_protector_{name.replace('-', '_')}"

    def bin(self, name: str) -> pathlib.Path:
        return self.venv / "bin" / name

    def log(self, service: str) -> pathlib.Path:
        return self.logs / f"{service}.log"

    def pid_file(self, service: str) -> pathlib.Path:
        return self.pids / f"{service}.json"


def write_private(path: pathlib.Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by its owner only (mode 0600 from the start)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


# -- install --------------------------------------------------------------------------


def installed(paths: Paths) -> bool:
    try:
        marker = json.loads(paths.marker.read_text())
    except (OSError, ValueError):
        return False
    return (marker.get("requirements") == list(REQUIREMENTS)
            and paths.bin("keystone-manage").exists() and paths.bin("python").exists())


def install(paths: Paths, python: str | None = None) -> None:
    """Create the virtualenv and install the pinned packages, unless already done."""
    with rm.file_lock(paths.base / "install.lock"):
        if installed(paths):
            say(f"Keystone {KEYSTONE_VERSION} already installed in {paths.venv}")
            return
        began = time.monotonic()
        log = paths.base / "install.log"
        if paths.venv.exists():
            say(f"removing an incomplete or outdated virtualenv at {paths.venv}")
            shutil.rmtree(paths.venv)
        paths.base.mkdir(parents=True, exist_ok=True)
        python = python or sys.executable
        say(f"installing Keystone {KEYSTONE_VERSION} into {paths.venv} (log: {log})")
        rm.run([python, "-m", "venv", str(paths.venv)], log=log)
        pip = [str(paths.bin("python")), "-m", "pip", "--disable-pip-version-check"]
        try:
            rm.run(pip + ["install", "--quiet", *REQUIREMENTS], log=log, timeout=1800)
        except Failed as exc:
            text = rm.tail(log, 200)
            if re.search(r"No matching distribution|Could not find a version|"
                         r"NewConnectionError|Temporary failure in name resolution", text):
                raise CannotRun(f"the packages cannot be installed here (no package index?): "
                                f"{exc}", log=log) from exc
            raise
        paths.marker.write_text(json.dumps({
            "requirements": list(REQUIREMENTS), "python": python,
            "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "seconds": round(time.monotonic() - began, 1)}, indent=2))
        say(f"installed in {time.monotonic() - began:.0f} s")


def require_installed(paths: Paths) -> None:
    if not installed(paths):
        raise Failed(f"Keystone is not installed in {paths.venv}: run "
                     f"`{sys.executable} {__file__} install` first")


# -- setup ----------------------------------------------------------------------------


def database_url(paths: Paths) -> str:
    password = urllib.parse.quote(rm.DB_PASSWORD, safe="")
    return (f"mysql+pymysql://{rm.DB_USER}:{password}@{rm.DB_HOST}:{rm.DB_PORT}/"
            f"{paths.database}?charset=utf8")


def keystone_conf(paths: Paths, debug: bool) -> str:
    return f"""\
# Written by tools/real_keystone.py; rewritten by every setup.
[DEFAULT]
debug = {debug}
use_stderr = True

[database]
connection = {database_url(paths)}

[token]
provider = fernet

[fernet_tokens]
key_repository = {paths.fernet_keys}

[fernet_receipts]
key_repository = {paths.fernet_keys}

[credential]
key_repository = {paths.credential_keys}

[identity]
# Test logins in milliseconds; 72 is bcrypt's limit (no truncation warning per hash).
password_hash_rounds = 4
max_password_length = 72

[resource]
# Without it every project's token is marked as the cloud admin project's.
admin_project_name = {ADMIN_PROJECT}
admin_project_domain_name = {DOMAIN}

[oslo_messaging_notifications]
driver = noop
"""


def load_secrets(paths: Paths) -> dict[str, str]:
    """The instance's passwords (made once, kept in ``secrets.json``, mode 0600)."""
    try:
        found = json.loads(paths.secrets_file.read_text())
    except (OSError, ValueError):
        found = {}
    wanted = [ADMIN_USER, *USERS]
    if not all(isinstance(found.get(user), str) for user in wanted):
        found = {user: found.get(user) or secrets.token_urlsafe(18) for user in wanted}
        write_private(paths.secrets_file, json.dumps(found, indent=2))
    return found


def ensure_database(paths: Paths) -> None:
    rm.wait_for_port(rm.DB_HOST, rm.DB_PORT, "MariaDB", 30)
    create = (
        "import sys, pymysql\n"
        "c = pymysql.connect(host=sys.argv[1], port=int(sys.argv[2]), user=sys.argv[3],"
        " password=sys.argv[4], connect_timeout=10)\n"
        "c.cursor().execute('CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8'"
        " % sys.argv[5])\n"
        "c.close()\n")
    log = paths.log("setup")
    try:
        rm.run([str(paths.bin("python")), "-c", create, rm.DB_HOST, str(rm.DB_PORT),
                rm.DB_USER, rm.DB_PASSWORD, paths.database], log=log, timeout=60)
    except Failed as exc:
        raise CannotRun(f"cannot create database {paths.database} on MariaDB "
                        f"{rm.DB_HOST}:{rm.DB_PORT} as {rm.DB_USER}", log=log) from exc


def keystone_manage(paths: Paths, *args: str, env: dict[str, str] | None = None) -> None:
    rm.run([str(paths.bin("keystone-manage")), "--config-file", str(paths.conf), *args],
           log=paths.log("setup"), timeout=600, env=env)


def _user_and_group() -> tuple[str, str]:
    import grp
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name


def setup(paths: Paths, base_url: str, debug: bool = False) -> None:
    """Config, database (migrated), keys, bootstrap with identity endpoints at
    ``base_url`` (idempotent; bootstrap corrects the endpoints' URLs)."""
    require_installed(paths)
    for folder in (paths.etc, paths.logs, paths.pids):
        folder.mkdir(parents=True, exist_ok=True)
    paths.conf.write_text(keystone_conf(paths, debug))
    ensure_database(paths)
    began = time.monotonic()
    keystone_manage(paths, "db_sync")
    user, group = _user_and_group()
    owner = ["--keystone-user", user, "--keystone-group", group]
    if not any(paths.fernet_keys.glob("[0-9]*")):
        keystone_manage(paths, "fernet_setup", *owner)
    if not any(paths.credential_keys.glob("[0-9]*")):
        keystone_manage(paths, "credential_setup", *owner)
    # The password goes through the environment: the command line is logged.
    env = dict(os.environ, OS_BOOTSTRAP_PASSWORD=load_secrets(paths)[ADMIN_USER])
    env.pop("PYTHONPATH", None)
    keystone_manage(paths, "bootstrap", "--bootstrap-username", ADMIN_USER,
                    "--bootstrap-project-name", ADMIN_PROJECT,
                    "--bootstrap-role-name", "admin",
                    "--bootstrap-region-id", REGION,
                    "--bootstrap-admin-url", base_url,
                    "--bootstrap-internal-url", base_url,
                    "--bootstrap-public-url", base_url, env=env)
    say(f"set up {paths.run} (database {paths.database} migrated and bootstrapped in "
        f"{time.monotonic() - began:.1f} s)")


# -- Keystone's API (stdlib) ------------------------------------------------------------


def request(method: str, url: str, *, token: str | None = None, body: object = None,
            headers: dict[str, str] | None = None,
            timeout: float = 10) -> tuple[int, dict[str, str], object]:
    """One JSON request; returns status, headers, decoded body."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http only
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as answer:  # noqa: S310
            status, got, raw = answer.status, dict(answer.headers.items()), answer.read()
    except urllib.error.HTTPError as exc:
        status, got, raw = exc.code, dict(exc.headers.items()), exc.read()
    try:
        return status, got, json.loads(raw) if raw else None
    except ValueError:
        return status, got, raw.decode(errors="replace")


def password_token(auth_url: str, user: str, password: str,
                   project: str) -> tuple[str, dict]:
    """A project-scoped token (and its body) for ``user``.

    :raises Failed: Keystone refused.
    """
    status, headers, body = request("POST", f"{auth_url}/auth/tokens", body={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": DOMAIN}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"name": DOMAIN}}}}})
    token = {k.lower(): v for k, v in headers.items()}.get("x-subject-token")
    if status != 201 or not token:
        raise Failed(f"Keystone refused a token for {user} in {project}: {status}")
    return token, body["token"]


class Admin:
    """Keystone's API as the bootstrap admin (idempotent helpers)."""

    def __init__(self, auth_url: str, password: str) -> None:
        self.auth_url = auth_url
        self.token, _ = password_token(auth_url, ADMIN_USER, password, ADMIN_PROJECT)

    def call(self, method: str, path: str, body: object = None,
             ok: tuple[int, ...] = (200, 201, 204)) -> object:
        status, _, answer = request(method, self.auth_url + path, token=self.token, body=body)
        if status not in ok:
            raise Failed(f"Keystone {method} {path.split('?')[0]} answered {status}: "
                         f"{str(answer)[:500]}")
        return answer

    def find(self, collection: str, name: str, **query: str) -> dict | None:
        params = urllib.parse.urlencode({"name": name, **query})
        found = self.call("GET", f"/{collection}?{params}")[collection]
        return found[0] if found else None

    def ensure(self, collection: str, name: str, fields: dict, **query: str) -> dict:
        """The entity of that name, created with ``fields`` if missing."""
        found = self.find(collection, name, **query)
        if found is not None:
            return found
        kind = collection[:-1]
        return self.call("POST", f"/{collection}", {kind: {"name": name, **fields}})[kind]

    def grant(self, project_id: str, user_id: str, role_id: str) -> None:
        self.call("PUT", f"/projects/{project_id}/users/{user_id}/roles/{role_id}")


def ensure_accounts(auth_url: str, passwords: dict[str, str]) -> dict:
    """Projects, roles, users and their roles (see the module docstring); returns their
    ids. A user whose stored password does not log in gets it set again."""
    admin = Admin(auth_url, passwords[ADMIN_USER])
    roles = {name: admin.ensure("roles", name, {})["id"] for name in ROLES.values()}
    projects = {name: admin.ensure("projects", name, {"domain_id": DOMAIN_ID},
                                   domain_id=DOMAIN_ID)["id"]
                for name in (ADMIN_PROJECT, SERVICE_PROJECT, *TENANTS)}
    users = {ADMIN_USER: admin.find("users", ADMIN_USER, domain_id=DOMAIN_ID)["id"]}
    for user, (project, user_roles) in USERS.items():
        found = admin.find("users", user, domain_id=DOMAIN_ID)
        if found is None:
            found = admin.call("POST", "/users", {"user": {
                "name": user, "domain_id": DOMAIN_ID, "password": passwords[user],
                "default_project_id": projects[project], "enabled": True}})["user"]
        users[user] = found["id"]
        for role in user_roles:
            admin.grant(projects[project], found["id"], roles[role])
        try:
            password_token(auth_url, user, passwords[user], project)
        except Failed:
            admin.call("PATCH", f"/users/{found['id']}",
                       {"user": {"password": passwords[user]}})
            password_token(auth_url, user, passwords[user], project)
    return {"roles": roles, "projects": projects, "users": users}


def ensure_service(env: dict, service_type: str, name: str, urls: dict[str, str]) -> str:
    """Register a service and its endpoints (``interface -> url``, region ``RegionOne``)
    in Keystone's catalog, correcting the URLs of existing endpoints; returns its id."""
    admin = Admin(env["auth_url"], env["users"][ADMIN_USER]["password"])
    services = admin.call("GET", f"/services?type={urllib.parse.quote(service_type)}")
    service = next((s for s in services["services"] if s.get("name") == name), None)
    if service is None:
        service = admin.call("POST", "/services", {"service": {
            "type": service_type, "name": name, "enabled": True}})["service"]
    endpoints = admin.call("GET", f"/endpoints?service_id={service['id']}")["endpoints"]
    for interface, url in urls.items():
        have = [e for e in endpoints
                if e["interface"] == interface and e.get("region_id") == REGION]
        if not have:
            admin.call("POST", "/endpoints", {"endpoint": {
                "service_id": service["id"], "interface": interface, "url": url,
                "region_id": REGION, "enabled": True}})
            continue
        for extra in have[1:]:
            admin.call("DELETE", f"/endpoints/{extra['id']}")
        if have[0]["url"] != url:
            admin.call("PATCH", f"/endpoints/{have[0]['id']}", {"endpoint": {"url": url}})
    return service["id"]


def authtoken_section(env: dict, user: str = "manila") -> str:
    """``[keystone_authtoken]`` for a service behind keystonemiddleware, as ``user``:
    service tokens accepted from users with the ``service`` role, and only from them."""
    return f"""\
[keystone_authtoken]
www_authenticate_uri = {env["auth_url"]}
auth_url = {env["auth_url"]}
auth_type = password
username = {user}
password = {env["users"][user]["password"]}
user_domain_name = {DOMAIN}
project_name = {env["users"][user]["project"]}
project_domain_name = {DOMAIN}
region_name = {REGION}
service_token_roles = {ROLES["service"]}
service_token_roles_required = true
"""


# -- start / stop / status ------------------------------------------------------------


def read_env(paths: Paths) -> dict | None:
    try:
        return json.loads(paths.env_file.read_text())
    except (OSError, ValueError):
        return None


def running(paths: Paths) -> dict | None:
    record = rm.read_pid(paths, SERVICE)
    return record if record is not None and rm._alive(record) else None


def answers(base_url: str) -> bool:
    """Keystone's v3 root answers (with a timeout: a master whose workers crash-loop
    still accepts connections)."""
    try:
        status, _, body = request("GET", base_url + "/v3", timeout=3)
    except OSError:
        return False
    return status == 200 and isinstance(body, dict) and "version" in body


def healthy(paths: Paths) -> dict | None:
    env = read_env(paths)
    if env is None or running(paths) is None or not answers(env["base_url"]):
        return None
    return env


def _port_of_last_run(paths: Paths) -> int | None:
    env = read_env(paths) or {}
    with contextlib.suppress(OSError, ValueError):
        env = env or json.loads((paths.run / "last-port.json").read_text())
    port = env.get("port")
    return port if isinstance(port, int) else None


def _free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As gunicorn binds: a port in TIME_WAIT after the last stop is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start(paths: Paths, debug: bool = False, timeout: float = START_TIMEOUT) -> dict:
    """Set up, start Keystone, wait until it answers, make the accounts; returns the env."""
    env = healthy(paths)
    if env is not None:
        say(f"already running: {env['auth_url']}")
        return env
    if running(paths) is not None:
        say("a previous start left Keystone running: stopping it first")
        stop(paths)
    began = time.monotonic()
    # The same port as last time when it is free: the catalog's identity URLs stay put.
    port = _port_of_last_run(paths)
    if port is None or not _free(port):
        port = rm.free_port()
    base_url = f"http://127.0.0.1:{port}"
    setup(paths, base_url, debug)
    write_private(paths.run / "last-port.json", json.dumps({"port": port}))
    cmd = [str(paths.bin("python")), os.path.abspath(__file__), "_serve",
           "--bind", f"127.0.0.1:{port}", "--config-file", str(paths.conf)]
    try:
        record = rm.spawn(paths, SERVICE, cmd)
        deadline = time.monotonic() + timeout
        while not answers(base_url):
            if not rm._alive(record):
                raise Failed("keystone exited while starting", log=paths.log(SERVICE))
            if time.monotonic() > deadline:
                raise Failed(f"timed out after {timeout:g} s waiting for Keystone to answer",
                             log=paths.log(SERVICE))
            time.sleep(0.3)
        passwords = load_secrets(paths)
        auth_url = base_url + "/v3"
        ids = ensure_accounts(auth_url, passwords)
    except BaseException:
        stop(paths, quiet=True)
        raise
    users = {ADMIN_USER: {"project": ADMIN_PROJECT, "roles": ["admin"]},
             **{user: {"project": project, "roles": list(roles)}
                for user, (project, roles) in USERS.items()}}
    for user, entry in users.items():
        entry.update(name=user, id=ids["users"][user], password=passwords[user],
                     project_id=ids["projects"][entry["project"]])
    env = {
        "name": paths.name,
        "keystone_version": KEYSTONE_VERSION,
        "port": port,
        "base_url": base_url,
        "auth_url": auth_url,
        "region": REGION,
        "user_domain_name": DOMAIN,
        "project_domain_name": DOMAIN,
        "domain_id": DOMAIN_ID,
        "projects": ids["projects"],
        "tenants": {project: user for project, user in TENANTS.items()},
        "users": users,
        "service_users": list(SERVICE_USERS),
        "roles": ROLES,
        "role_ids": ids["roles"],
        "authtoken_conf": str(paths.authtoken_conf),
        "run_dir": str(paths.run),
        "logs": {SERVICE: str(paths.log(SERVICE)), "setup": str(paths.log("setup"))},
        "pids": {SERVICE: rm.read_pid(paths, SERVICE)["pid"]},
        "started_in_seconds": round(time.monotonic() - began, 1),
    }
    write_private(paths.authtoken_conf, authtoken_section(env))
    write_private(paths.env_file, json.dumps(env, indent=2))
    say(f"Keystone {KEYSTONE_VERSION} ready in {env['started_in_seconds']} s: {auth_url}")
    return env


def stop(paths: Paths, quiet: bool = False) -> None:
    stopped = rm.stop_services(paths, (SERVICE,))
    if running(paths) is not None:
        raise Failed("keystone still running after stop")
    paths.env_file.unlink(missing_ok=True)
    if not quiet:
        say(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


def status(paths: Paths) -> int:
    env = read_env(paths) or {}
    record = running(paths)
    print(f"instance {paths.name}: run dir {paths.run}")
    print(f"  installed: {installed(paths)} ({paths.venv})")
    state = f"running (PID {record['pid']})" if record else "not running"
    print(f"  keystone: {state}")
    if env.get("base_url"):
        print(f"  auth_url: {env['auth_url']} "
              f"{'answers' if answers(env['base_url']) else 'does not answer'}")
    return 0 if record else 3


def redacted(env: dict) -> dict:
    """``env`` without passwords (for printing)."""
    shown = json.loads(json.dumps(env))
    for entry in shown.get("users", {}).values():
        if "password" in entry:
            entry["password"] = "***"  # noqa: S105 - a mask, not a password
    return shown


def _in_venv(paths: Paths, *args: str, stdin: str = "", timeout: float = 120) -> dict:
    """Run one of this tool's in-virtualenv commands; returns the JSON it prints."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("PYTHONPATH", None)
    log = paths.log(args[0].lstrip("_"))
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as errors:
        proc = subprocess.run([str(paths.bin("python")), os.path.abspath(__file__), *args],
                              input=stdin.encode(), stdout=subprocess.PIPE, stderr=errors,
                              timeout=timeout, env=env, check=False)
    if proc.returncode != 0:
        raise Failed(f"{args[0]} exited {proc.returncode}", log=log)
    return json.loads(proc.stdout)


def mint_token(paths: Paths, user: str, project: str, expires_in: int) -> dict:
    """A real token of ``user`` in ``project`` that expires ``expires_in`` seconds after
    it is issued (see the module docstring)."""
    env = read_env(paths)
    if env is None:
        raise Failed(f"Keystone instance {paths.name} is not running (start it first)")
    if user not in env["users"]:
        raise Failed(f"unknown user {user!r}: one of {sorted(env['users'])}")
    return _in_venv(paths, "_mint", "--config-file", str(paths.conf), "--user", user,
                    "--project", project, "--expires-in", str(expires_in),
                    stdin=env["users"][user]["password"])


def authtoken_headers(paths: Paths, token: str, service_token: str | None = None) -> dict:
    """What keystonemiddleware's auth_token (configured like Manila's) hands the service
    behind it for ``token`` (and ``service_token``): status and headers."""
    if read_env(paths) is None:
        raise Failed(f"Keystone instance {paths.name} is not running (start it first)")
    return _in_venv(paths, "_authtoken", "--config-file", str(paths.authtoken_conf),
                    stdin=token + "\n" + (service_token or "") + "\n")


# -- in Keystone's virtualenv -------------------------------------------------------------


def _reset_argv() -> None:
    """Keystone parses ``sys.argv`` with oslo.config when it configures itself: under
    gunicorn (or this tool) that is someone else's command line. Its config files are
    passed as ``default_config_files`` instead."""
    sys.argv = [sys.argv[0]]


def serve(argv: list[str]) -> None:
    """Serve Keystone's WSGI application with gunicorn."""
    parser = argparse.ArgumentParser(prog="real_keystone.py _serve")
    parser.add_argument("--bind", required=True)
    parser.add_argument("--config-file", action="append", required=True)
    args = parser.parse_args(argv)

    from gunicorn.app.base import BaseApplication

    class KeystoneApi(BaseApplication):
        def load_config(self) -> None:
            for key, value in {"bind": args.bind, "workers": 1, "threads": 8,
                               "worker_class": "gthread", "timeout": 120,
                               "graceful_timeout": 5, "accesslog": "-",
                               "proc_name": "keystone",
                               "control_socket_disable": True}.items():
                self.cfg.set(key, value)

        def load(self):
            _reset_argv()
            from keystone.server.flask import core

            return core.initialize_application("public", config_files=args.config_file)

    KeystoneApi().run()


def mint(argv: list[str]) -> None:
    """Keystone's application in-process with ``[token] expiration``: POST a password
    authentication (password on standard input) and print the token."""
    parser = argparse.ArgumentParser(prog="real_keystone.py _mint")
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--project", required=True)
    parser.add_argument("--expires-in", type=int, required=True)
    args = parser.parse_args(argv)
    password = sys.stdin.readline().rstrip("\n")
    with tempfile.TemporaryDirectory() as folder:
        overlay = pathlib.Path(folder) / "short-tokens.conf"
        overlay.write_text(f"[token]\nexpiration = {args.expires_in}\n")
        _reset_argv()
        from keystone.server.flask import core
        from werkzeug.test import Client

        app = core.initialize_application(
            "public", config_files=[args.config_file, str(overlay)])
    answer = Client(app).post("/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": args.user, "domain": {"name": DOMAIN}, "password": password}}},
        "scope": {"project": {"name": args.project, "domain": {"name": DOMAIN}}}}})
    if answer.status_code != 201:
        print(f"Keystone answered {answer.status_code}: {answer.get_data(as_text=True)}",
              file=sys.stderr)
        sys.exit(1)
    body = answer.get_json()["token"]
    print(json.dumps({
        "token": answer.headers["X-Subject-Token"],
        "issued_at": body["issued_at"], "expires_at": body["expires_at"],
        "user_id": body["user"]["id"], "project_id": body["project"]["id"],
        "roles": [role["name"] for role in body["roles"]],
        "catalog": body.get("catalog", [])}))


def authtoken(argv: list[str]) -> None:
    """keystonemiddleware's auth_token in-process in front of an app that records what
    reaches it; token and service token (may be empty) on standard input."""
    parser = argparse.ArgumentParser(prog="real_keystone.py _authtoken")
    parser.add_argument("--config-file", required=True)
    args = parser.parse_args(argv)
    token = sys.stdin.readline().strip()
    service_token = sys.stdin.readline().strip()
    sys.argv = [sys.argv[0]]

    from keystonemiddleware import auth_token
    from oslo_config import cfg
    from werkzeug.test import Client

    conf = cfg.ConfigOpts()
    conf(args=[], project="authtoken-echo", default_config_files=[args.config_file])
    seen: dict[str, str] = {}

    def app(environ, start_response):
        seen.update({key[5:].replace("_", "-").title(): value
                     for key, value in environ.items() if key.startswith("HTTP_X_")})
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b""]

    middleware = auth_token.AuthProtocol(app, {"oslo_config_config": conf})
    headers = {"X-Auth-Token": token} if token else {}
    if service_token:
        headers["X-Service-Token"] = service_token
    answer = Client(middleware).get("/", headers=headers)
    for secret in ("X-Auth-Token", "X-Service-Token"):
        seen.pop(secret, None)
    print(json.dumps({"status": answer.status_code, "headers": seen,
                      "www_authenticate": answer.headers.get("WWW-Authenticate")}))


# -- command line ---------------------------------------------------------------------


HIDDEN = {"_serve": serve, "_mint": mint, "_authtoken": authtoken}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in HIDDEN:
        HIDDEN[argv[0]](argv[1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=(
        "install", "setup", "start", "up", "stop", "status", "env", "paths", "token",
        "authtoken-headers"))
    parser.add_argument("--name", default=os.environ.get("MANILA_PROTECTOR_REAL_MANILA_NAME",
                                                         "default"),
                        help="instance name (own run dir and database)")
    parser.add_argument("--python", help="interpreter for the virtualenv (default: this one)")
    parser.add_argument("--debug", action="store_true", help="Keystone's debug logging")
    parser.add_argument("--timeout", type=float, default=START_TIMEOUT,
                        help="start: seconds to wait for Keystone to answer")
    parser.add_argument("--user", help="token: the user")
    parser.add_argument("--project", help="token: the project (default: the user's)")
    parser.add_argument("--expires-in", type=int, default=3600,
                        help="token: seconds until the token expires")
    args = parser.parse_args(argv)
    try:
        paths = Paths(args.name)
        if args.command == "install":
            install(paths, args.python)
        elif args.command == "setup":
            require_installed(paths)
            port = _port_of_last_run(paths) or rm.free_port()
            setup(paths, f"http://127.0.0.1:{port}", args.debug)
            write_private(paths.run / "last-port.json", json.dumps({"port": port}))
        elif args.command in ("start", "up"):
            if args.command == "up":
                install(paths, args.python)
            else:
                require_installed(paths)
            start(paths, args.debug, args.timeout)
        elif args.command == "stop":
            stop(paths)
        elif args.command == "status":
            return status(paths)
        elif args.command == "paths":
            print(json.dumps({"base": str(paths.base), "venv": str(paths.venv),
                              "run": str(paths.run), "env_file": str(paths.env_file)}))
        elif args.command == "env":
            env = healthy(paths)
            if env is None:
                raise Failed(f"Keystone instance {paths.name} is not running (start it first)")
            print(json.dumps(redacted(env), indent=2))
        elif args.command == "token":
            if not args.user:
                raise Failed("token: --user is required")
            env = read_env(paths) or {}
            project = args.project or env.get("users", {}).get(args.user, {}).get("project")
            print(json.dumps(mint_token(paths, args.user, project or "", args.expires_in)))
        elif args.command == "authtoken-headers":
            lines = sys.stdin.read().splitlines() + ["", ""]
            print(json.dumps(authtoken_headers(paths, lines[0].strip(), lines[1].strip())))
    except Failed as exc:
        print(f"[real-keystone] FAILED: {exc}", file=sys.stderr)
        if exc.log is not None:
            print(f"---- tail of {exc.log}\n{rm.tail(exc.log)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
