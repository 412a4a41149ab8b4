#!/usr/bin/env python3
"""Bring up a real OpenStack Manila 23.0.1 on this machine, for the contract tier.

Stdlib only; runs with any python3 (3.10 or newer)::

    python3 tools/real_manila.py install   # the pinned virtualenv, cached between runs
    python3 tools/real_manila.py setup     # configs, MariaDB database (migrated), RabbitMQ vhost
    python3 tools/real_manila.py start     # setup, then the four services; waits until usable
    python3 tools/real_manila.py start --keystone   # ... plus a real Keystone and a fifth API
    python3 tools/real_manila.py up        # install + start (--keystone: Keystone's venv too)
    python3 tools/real_manila.py status    # which services run, whether the APIs answer
    python3 tools/real_manila.py env       # endpoints and share types (JSON, or --shell)
    python3 tools/real_manila.py stop      # stops exactly the processes start started

What runs (loopback only, on the machine's RabbitMQ and MariaDB):

* ``manila-scheduler`` and ``manila-share`` with two backends of Manila's own
  dummy driver (``manila.tests.share.drivers.dummy.DummyDriver``): ``fast`` (every
  driver call 0.1 s) and ``slow`` (the same, but ``create_snapshot`` takes 3 s);
* ``manila-api`` twice, each under gunicorn: ``noauthv2`` (``X-Auth-Token:
  <user>:<project>`` is an admin of that project) and the ``keystone`` pipeline
  with ``authtoken`` removed, where ``X-User-Id``/``X-Project-Id``/``X-Roles``
  are trusted and Manila's real policy decides;
* its own MariaDB database ``manila_protector_<name>`` and RabbitMQ vhost
  ``manila_protector_<name>`` (nothing shared with other Manilas or our worker);
* with ``--keystone``: a real Keystone 30.0.0 (``tools/real_keystone.py``, same instance
  name) and ``manila-api`` a third time (``api-keystone``), on Manila's **unmodified**
  ``keystone`` pipeline: keystonemiddleware's ``auth_token`` validates tokens with that
  Keystone (as the ``manila`` service user) and accepts service tokens of users with the
  ``service`` role; it is in Keystone's catalog as ``sharev2`` (``manilav2``, region
  ``RegionOne``, ``.../v2/$(project_id)s`` as devstack registers it). ``stop`` then stops
  that Keystone too. ``env.json`` (mode 0600) gains ``keystone`` (auth URL, projects,
  users with passwords, roles) and ``keystone_api``; ``env`` prints it without passwords.

Share types (created idempotently at start): ``mp_default`` (snapshot, create from
snapshot, revert; backend ``fast``; the default type), ``mp_no_snapshots`` (no snapshot
support), ``mp_slow_snapshots`` (backend ``slow``).

Places: the virtualenv in ``${MANILA_PROTECTOR_CACHE:-~/.cache/manila-protector}/
manila-23.0.1/venv`` (kept between runs; a marker file records what was installed),
configs, logs, PID files and ``env.json`` in ``.../manila-23.0.1/run/<name>``.

Exit status: 0 done, 1 failed (the reason and the tail of the relevant log are
printed), 2 this machine cannot run it (a prerequisite is missing).
"""

# ruff: noqa: S603, S607 - a developer/CI tool: it runs the commands it builds itself
# (Manila's virtualenv, rabbitmqctl from PATH), never input from elsewhere.
from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

MANILA_VERSION = "23.0.1"
#: Everything installed into Manila's virtualenv, pinned.
REQUIREMENTS = (
    f"manila=={MANILA_VERSION}",
    "python-manilaclient==6.3.0",
    "gunicorn==27.0.1",
    "PyMySQL==1.2.4",
)
DUMMY_DRIVER = "manila.tests.share.drivers.dummy.DummyDriver"
#: Seconds every dummy driver call takes (Manila's default is 2 s, create_share 4 s).
DRIVER_DELAY = 0.1
#: Seconds ``create_snapshot`` takes on the ``slow`` backend (a crash test's window).
SLOW_SNAPSHOT_DELAY = 3.0
BACKENDS = ("fast", "slow")
SHARE_TYPES = {
    "mp_default": {"snapshot_support": "True", "create_share_from_snapshot_support": "True",
                   "revert_to_snapshot_support": "True", "share_backend_name": "fast"},
    # No snapshot capabilities at all: with "snapshot_support": "False" the scheduler finds no
    # backend (the dummy driver reports True) and the share ends in 'error'.
    "mp_no_snapshots": {"share_backend_name": "fast"},
    "mp_slow_snapshots": {"snapshot_support": "True",
                          "create_share_from_snapshot_support": "True",
                          "revert_to_snapshot_support": "True", "share_backend_name": "slow"},
}
DEFAULT_SHARE_TYPE = "mp_default"
SERVICES = ("scheduler", "share", "api", "api-policy")
#: The API on Manila's unmodified keystone pipeline (``start --keystone``).
KEYSTONE_API = "api-keystone"
ALL_SERVICES = (*SERVICES, KEYSTONE_API)
#: How Manila is registered in Keystone's catalog (as devstack registers it).
CATALOG_TYPE = "sharev2"
CATALOG_NAME = "manilav2"
CATALOG_PATH = "/v2/$(project_id)s"
#: Microversion the tool speaks to the API (any Manila 23 accepts it).
API_VERSION = "2.73"

RABBIT_HOST = os.environ.get("MANILA_PROTECTOR_RABBIT_HOST", "127.0.0.1")
RABBIT_PORT = int(os.environ.get("MANILA_PROTECTOR_RABBIT_PORT", "5672"))
RABBIT_USER = os.environ.get("MANILA_PROTECTOR_RABBIT_USER", "guest")
RABBIT_PASSWORD = os.environ.get("MANILA_PROTECTOR_RABBIT_PASSWORD", "guest")
DB_HOST = os.environ.get("MANILA_PROTECTOR_DB_HOST", "127.0.0.1")
DB_PORT = int(os.environ.get("MANILA_PROTECTOR_DB_PORT", "3306"))
DB_USER = os.environ.get("MANILA_PROTECTOR_DB_USER", "root")
DB_PASSWORD = os.environ.get("MANILA_PROTECTOR_DB_PASSWORD", "")

START_TIMEOUT = 240.0
STOP_TIMEOUT = 20.0
EXIT_FAILED = 1
EXIT_CANNOT_RUN = 2


class Failed(Exception):
    """The tooling failed; ``log`` names the log whose tail explains it."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, log: pathlib.Path | None = None) -> None:
        super().__init__(message)
        self.log = log


class CannotRun(Failed):
    """This machine lacks a prerequisite (MariaDB, RabbitMQ, rabbitmqctl, a package index)."""

    exit_code = EXIT_CANNOT_RUN


def say(message: str) -> None:
    print(f"[real-manila] {message}", flush=True)


def tail(path: pathlib.Path | None, lines: int = 40) -> str:
    if path is None:
        return ""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


# -- places ---------------------------------------------------------------------------


class Paths:
    """Where one instance (``name``) keeps its files."""

    def __init__(self, name: str, cache: str | None = None) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,40}", name):
            raise Failed(f"instance name {name!r}: use lower-case letters, digits, _ and -")
        self.name = name
        cache = cache or os.environ.get("MANILA_PROTECTOR_CACHE") or "~/.cache/manila-protector"
        self.base = pathlib.Path(cache).expanduser() / f"manila-{MANILA_VERSION}"
        self.venv = self.base / "venv"
        self.marker = self.venv / ".manila-protector-installed.json"
        self.run = self.base / "run" / name
        self.etc = self.run / "etc"
        self.logs = self.run / "log"
        self.pids = self.run / "pids"
        self.state = self.run / "state"
        self.locks = self.run / "lock"
        self.env_file = self.run / "env.json"
        ident = name.replace("-", "_")
        self.database = f"manila_protector_{ident}"
        self.vhost = f"manila_protector_{ident}"
        self.host = f"mp-real-manila-{name}"

    def bin(self, name: str) -> pathlib.Path:
        return self.venv / "bin" / name

    def log(self, service: str) -> pathlib.Path:
        return self.logs / f"{service}.log"

    def pid_file(self, service: str) -> pathlib.Path:
        return self.pids / f"{service}.json"

    @property
    def manila_conf(self) -> pathlib.Path:
        return self.etc / "manila.conf"

    @property
    def policy_conf(self) -> pathlib.Path:
        return self.etc / "policy-api.conf"

    @property
    def paste_ini(self) -> pathlib.Path:
        return self.etc / "api-paste.ini"

    @property
    def keystone_api_conf(self) -> pathlib.Path:
        """The ``api-keystone`` process's config (over ``manila.conf``; mode 0600)."""
        return self.etc / "api-keystone.conf"

    @property
    def shipped_paste_ini(self) -> pathlib.Path:
        """Manila's own ``api-paste.ini``, unmodified (the ``api-keystone`` process's)."""
        return self.venv / "etc" / "manila" / "api-paste.ini"

    @property
    def with_keystone(self) -> pathlib.Path:
        """Present while a ``start --keystone`` made this instance use a Keystone."""
        return self.run / "with-keystone"


@contextlib.contextmanager
def file_lock(path: pathlib.Path):
    """An exclusive lock (flock) on ``path`` for the duration of the block."""
    import fcntl  # POSIX only, like the rest of this tool

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run(cmd: list[str], *, log: pathlib.Path | None = None, timeout: float = 600,
        env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command; its output goes to ``log`` (appended) or is captured."""
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            out.write(f"\n$ {' '.join(cmd)}\n".encode())
            out.flush()
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout,
                                  env=env, stdin=subprocess.DEVNULL, check=False)
    else:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              stdin=subprocess.DEVNULL, check=False)
    if check and proc.returncode != 0:
        detail = "" if log is not None else (proc.stdout or "") + (proc.stderr or "")
        raise Failed(f"{' '.join(cmd[:3])}... exited {proc.returncode}: {detail.strip()[-2000:]}",
                     log=log)
    return proc


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
            and paths.bin("manila-share").exists() and paths.bin("python").exists())


def install(paths: Paths, python: str | None = None) -> None:
    """Create the virtualenv and install the pinned packages, unless already done."""
    with file_lock(paths.base / "install.lock"):
        if installed(paths):
            say(f"Manila {MANILA_VERSION} already installed in {paths.venv}")
            return
        began = time.monotonic()
        log = paths.base / "install.log"
        if paths.venv.exists():
            say(f"removing an incomplete or outdated virtualenv at {paths.venv}")
            shutil.rmtree(paths.venv)
        paths.base.mkdir(parents=True, exist_ok=True)
        python = python or sys.executable
        say(f"installing Manila {MANILA_VERSION} into {paths.venv} (log: {log})")
        run([python, "-m", "venv", str(paths.venv)], log=log)
        pip = [str(paths.bin("python")), "-m", "pip", "--disable-pip-version-check"]
        try:
            run(pip + ["install", "--quiet", *REQUIREMENTS], log=log, timeout=1800)
        except Failed as exc:
            text = tail(log, 200)
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
        raise Failed(f"Manila is not installed in {paths.venv}: run "
                     f"`{sys.executable} {__file__} install` first")


# -- setup ----------------------------------------------------------------------------


def transport_url(paths: Paths) -> str:
    vhost = urllib.parse.quote(paths.vhost, safe="")
    return f"rabbit://{RABBIT_USER}:{RABBIT_PASSWORD}@{RABBIT_HOST}:{RABBIT_PORT}/{vhost}"


def database_url(paths: Paths, database: str | None = None) -> str:
    password = urllib.parse.quote(DB_PASSWORD, safe="")
    return (f"mysql+pymysql://{DB_USER}:{password}@{DB_HOST}:{DB_PORT}/"
            f"{database if database is not None else paths.database}?charset=utf8")


def backend_section(name: str, create_snapshot_delay: float) -> str:
    # Every other method keeps the default delay; DictOpt replaces Manila's defaults whole.
    delays = {"ensure_share": 0, "get_pool": 0, "do_setup": 0, "_get_pools_info": 0,
              "_update_share_stats": 0, "create_snapshot": create_snapshot_delay}
    return f"""
[{name}]
share_driver = {DUMMY_DRIVER}
driver_handles_share_servers = False
share_backend_name = {name}
dummy_driver_default_driver_method_delay = {DRIVER_DELAY:g}
dummy_driver_driver_methods_delays = {",".join(f"{k}:{v:g}" for k, v in delays.items())}
"""


def manila_conf(paths: Paths, debug: bool) -> str:
    return f"""\
# Written by tools/real_manila.py; rewritten by every setup.
[DEFAULT]
auth_strategy = noauthv2
host = {paths.host}
state_path = {paths.state}
api_paste_config = {paths.paste_ini}
transport_url = {transport_url(paths)}
control_exchange = manila
enabled_share_backends = {",".join(BACKENDS)}
enabled_share_protocols = NFS,CIFS
default_share_type = {DEFAULT_SHARE_TYPE}
storage_availability_zone = nova
# Short periodic work, so that capabilities reach the scheduler quickly.
periodic_interval = 5
periodic_fuzzy_delay = 0
report_interval = 5
debug = {debug}
use_stderr = True

[database]
connection = {database_url(paths)}

[oslo_concurrency]
lock_path = {paths.locks}

[oslo_messaging_notifications]
driver = noop
{backend_section("fast", DRIVER_DELAY)}{backend_section("slow", SLOW_SNAPSHOT_DELAY)}"""


POLICY_CONF = """\
# The second API process: Manila's keystone pipeline without authtoken (see api-paste.ini):
# keystonecontext trusts X-User-Id, X-Project-Id and X-Roles; Manila's policy decides.
[DEFAULT]
auth_strategy = keystone
"""


def paste_ini(paths: Paths) -> str:
    shipped = (paths.venv / "etc" / "manila" / "api-paste.ini").read_text()
    lines = []
    for line in shipped.splitlines():
        if re.match(r"^keystone(_nolimit)?\s*=", line):
            line = line.replace(" authtoken ", " ")
        lines.append(line)
    text = "\n".join(lines) + "\n"
    if re.search(r"^keystone(_nolimit)?\s*=.*authtoken", text, re.M):
        raise Failed("could not remove authtoken from the keystone pipeline")
    return text


def rabbitmqctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, check=False)


def ensure_vhost(paths: Paths, timeout: float = 180.0) -> None:
    """Create the vhost and give the user access (retried: RabbitMQ may be restarting)."""
    if shutil.which("rabbitmqctl") is None:
        raise CannotRun("rabbitmqctl is not on PATH: the instance needs its own RabbitMQ vhost")
    deadline = time.monotonic() + timeout
    while True:
        listed = rabbitmqctl("list_vhosts", "--quiet", "--no-table-headers")
        if listed.returncode == 0:
            if paths.vhost not in listed.stdout.split():
                added = rabbitmqctl("add_vhost", paths.vhost)
                if added.returncode != 0 and "already" not in added.stdout + added.stderr:
                    listed = added
            if listed.returncode == 0:
                perms = rabbitmqctl("set_permissions", "-p", paths.vhost, RABBIT_USER,
                                    ".*", ".*", ".*")
                if perms.returncode == 0:
                    return
                listed = perms
        if time.monotonic() > deadline:
            detail = (listed.stdout + listed.stderr).strip()[-1000:]
            raise CannotRun(f"RabbitMQ vhost {paths.vhost}: rabbitmqctl failed for "
                            f"{timeout:g} s: {detail}")
        time.sleep(2)


def wait_for_port(host: str, port: int, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=3).close()
            return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise CannotRun(f"{what} on {host}:{port} does not answer: {exc}") from exc
            time.sleep(1)


def ensure_database(paths: Paths) -> None:
    """Create the database (if missing) and migrate it to Manila's head (idempotent)."""
    wait_for_port(DB_HOST, DB_PORT, "MariaDB", 30)
    create = (
        "import sys, pymysql\n"
        "c = pymysql.connect(host=sys.argv[1], port=int(sys.argv[2]), user=sys.argv[3],"
        " password=sys.argv[4], connect_timeout=10)\n"
        "c.cursor().execute('CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8'"
        " % sys.argv[5])\n"
        "c.close()\n")
    log = paths.log("setup")
    try:
        run([str(paths.bin("python")), "-c", create, DB_HOST, str(DB_PORT), DB_USER,
             DB_PASSWORD, paths.database], log=log, timeout=60)
    except Failed as exc:
        raise CannotRun(f"cannot create database {paths.database} on MariaDB "
                        f"{DB_HOST}:{DB_PORT} as {DB_USER}", log=log) from exc
    began = time.monotonic()
    run([str(paths.bin("manila-manage")), "--config-file", str(paths.manila_conf),
         "db", "sync"], log=log, timeout=600)
    say(f"database {paths.database} migrated ({time.monotonic() - began:.1f} s)")


def setup(paths: Paths, debug: bool = False) -> None:
    """Write the configs, create and migrate the database, create the vhost (idempotent)."""
    require_installed(paths)
    for folder in (paths.etc, paths.logs, paths.pids, paths.state, paths.locks):
        folder.mkdir(parents=True, exist_ok=True)
    paths.manila_conf.write_text(manila_conf(paths, debug))
    paths.policy_conf.write_text(POLICY_CONF)
    paths.paste_ini.write_text(paste_ini(paths))
    wait_for_port(RABBIT_HOST, RABBIT_PORT, "RabbitMQ", 120)
    ensure_vhost(paths)
    ensure_database(paths)
    say(f"set up {paths.run} (database {paths.database}, vhost {paths.vhost})")


# -- processes ------------------------------------------------------------------------


def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (guards against a reused PID)."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _group_members(record: dict) -> list[int]:
    """Processes still in the group ``start`` made, started no earlier than its leader."""
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if (int(fields[2]) == record["pgid"] and record.get("start_time")
                and int(fields[19]) >= int(record["start_time"])):
            found.append(int(entry.name))
    return found


def _alive(record: dict) -> bool:
    pid = record["pid"]
    started = _start_time(pid)
    if started is None:
        return False
    if record.get("start_time") and started != record["start_time"]:
        return False  # the PID was reused by another process
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def read_pid(paths: Paths, service: str) -> dict | None:
    try:
        return json.loads(paths.pid_file(service).read_text())
    except (OSError, ValueError):
        return None


def spawn(paths: Paths, service: str, cmd: list[str]) -> dict:
    """Start ``cmd`` in its own session (process group); record its PID."""
    log = paths.log(service)
    if log.exists():
        log.replace(log.with_suffix(".log.1"))
    with open(log, "ab") as out:
        out.write(f"$ {' '.join(cmd)}\n".encode())
        out.flush()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("PYTHONPATH", None)
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=paths.run, env=env,
                                start_new_session=True)
    record = {"service": service, "pid": proc.pid, "pgid": proc.pid,
              "start_time": _start_time(proc.pid), "cmd": cmd}
    paths.pid_file(service).write_text(json.dumps(record))
    return record


def stop_services(paths: Paths, services: tuple[str, ...]) -> list[str]:
    """Stop the process groups ``start`` recorded for ``services`` (all at once: SIGTERM,
    SIGKILL after a deadline); returns those that were running.

    :raises Failed: one survived SIGKILL.
    """
    records = {s: r for s in services if (r := read_pid(paths, s)) is not None}
    running = {s: r for s, r in records.items() if _alive(r)}
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, 10.0)):
        left = [r for r in running.values() if _alive(r)]
        for record in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(record["pgid"], sig)
        deadline = time.monotonic() + wait
        while any(_alive(r) for r in left) and time.monotonic() < deadline:
            time.sleep(0.1)
    survivors = [s for s, r in running.items() if _alive(r)]
    if survivors:
        raise Failed(f"{', '.join(survivors)} survived SIGKILL")
    for service, record in records.items():
        # Whatever else was left in the group (a gunicorn worker): gone too -- each
        # process of that group started after its leader, so none that reused an id.
        if service in running:
            for pid in _group_members(record):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        paths.pid_file(service).unlink(missing_ok=True)
    return [s for s in services if s in running]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_command(paths: Paths, service: str, port: int | None = None) -> list[str]:
    conf = ["--config-file", str(paths.manila_conf)]
    if service == "scheduler":
        return [str(paths.bin("manila-scheduler")), *conf]
    if service == "share":
        return [str(paths.bin("manila-share")), *conf]
    if service == "api-policy":
        conf += ["--config-file", str(paths.policy_conf)]
    if service == KEYSTONE_API:
        conf += ["--config-file", str(paths.keystone_api_conf)]
    return [str(paths.bin("python")), os.path.abspath(__file__), "_serve-api",
            "--bind", f"127.0.0.1:{port}", *conf]


# -- HTTP -----------------------------------------------------------------------------


def http(method: str, url: str, *, token: str | None = None, body: object = None,
         headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http only
    request.add_header("Accept", "application/json")
    request.add_header("X-OpenStack-Manila-API-Version", API_VERSION)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("X-Auth-Token", token)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


ADMIN_TOKEN = "mp-admin:mp-admin"  # noqa: S105 - a noauth "<user>:<project>", no secret


def api_answers(url: str) -> bool:
    try:
        status, _ = http("GET", url + "/", timeout=3)
    except OSError:
        return False
    return status in (200, 300)


def pools(endpoint: str) -> list[str]:
    status, body = http("GET", endpoint + "/scheduler-stats/pools", token=ADMIN_TOKEN)
    if status != 200 or not isinstance(body, dict):
        return []
    return [pool["name"] for pool in body.get("pools", [])]


def ensure_share_types(endpoint: str) -> dict[str, str]:
    """Create the share types that are missing, correct the extra specs of the others;
    returns name -> id."""
    status, body = http("GET", endpoint + "/types?is_public=all", token=ADMIN_TOKEN)
    if status != 200:
        raise Failed(f"listing share types answered {status}: {body}")
    found = {t["name"]: t for t in body["share_types"]}
    ids = {}
    for name, specs in SHARE_TYPES.items():
        wanted = {"driver_handles_share_servers": "False", **specs}
        if name not in found:
            status, body = http("POST", endpoint + "/types", token=ADMIN_TOKEN, body={
                "share_type": {"name": name, "extra_specs": wanted,
                               "share_type_access:is_public": True}})
            if status != 200:
                raise Failed(f"creating share type {name} answered {status}: {body}")
            ids[name] = body["share_type"]["id"]
            continue
        type_id = ids[name] = found[name]["id"]
        have = {k: str(v) for k, v in (found[name].get("extra_specs") or {}).items()}
        changed = {k: v for k, v in wanted.items() if have.get(k) != v}
        if changed:
            status, body = http("POST", f"{endpoint}/types/{type_id}/extra_specs",
                                token=ADMIN_TOKEN, body={"extra_specs": changed})
            if status != 200:
                raise Failed(f"updating share type {name} answered {status}: {body}")
        for key in sorted(set(have) - set(wanted)):
            status, body = http("DELETE", f"{endpoint}/types/{type_id}/extra_specs/{key}",
                                token=ADMIN_TOKEN)
            if status not in (200, 202, 204):
                raise Failed(f"unsetting {key} of share type {name} answered {status}: {body}")
    return ids


# -- start / stop / status ------------------------------------------------------------


def running_services(paths: Paths) -> dict[str, dict]:
    found = {}
    for service in ALL_SERVICES:
        record = read_pid(paths, service)
        if record is not None and _alive(record):
            found[service] = record
    return found


def read_env(paths: Paths) -> dict | None:
    try:
        return json.loads(paths.env_file.read_text())
    except (OSError, ValueError):
        return None


def healthy(paths: Paths) -> dict | None:
    """The env of a fully running instance whose APIs answer, else None."""
    env = read_env(paths)
    if env is None or not set(running_services(paths)) >= set(SERVICES):
        return None
    if not (api_answers(env["base_url"]) and api_answers(env["policy_base_url"])):
        return None
    return env


def _wait(what: str, predicate, timeout: float, log: pathlib.Path, paths: Paths,
          services: tuple[str, ...] = SERVICES) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        dead = [s for s in services if read_pid(paths, s) and not _alive(read_pid(paths, s))]
        if dead:
            raise Failed(f"manila-{dead[0]} exited while waiting for {what}",
                         log=paths.log(dead[0]))
        if time.monotonic() > deadline:
            raise Failed(f"timed out after {timeout:g} s waiting for {what}", log=log)
        time.sleep(0.5)


def _initialised_backends(paths: Paths) -> set[str]:
    try:
        text = paths.log("share").read_text(errors="replace")
    except OSError:
        return set()
    return set(re.findall(r"Finished initialization of driver: '\w+@[^@']+@(\w+)'", text))


def start(paths: Paths, debug: bool = False, timeout: float = START_TIMEOUT,
          keystone: bool = False) -> dict:
    """Set up, start the services, wait until Manila is usable; returns the env.

    :param keystone: also a real Keystone and the ``api-keystone`` process (see the
        module docstring); added to an instance that already runs without them.
    """
    env = healthy(paths)
    if env is None and running_services(paths):
        say("a previous start left services running: stopping them first")
        stop(paths)
    # Keystone starts beside Manila (most of either is waiting), in a thread.
    keystone_start = _KeystoneStart(paths, debug, timeout) if keystone else None
    try:
        if env is not None:
            env["share_types"] = ensure_share_types(env["endpoint"])
            say(f"already running: {env['endpoint']} (noauthv2), "
                f"{env['policy_endpoint']} (policy)")
        else:
            env = _start_manila(paths, debug, timeout)
    except BaseException:
        if keystone_start is not None:
            keystone_start.abandon()
        raise
    if keystone_start is not None:
        env = _start_keystone_api(paths, env, keystone_start.result(), timeout)
    write_private(paths.env_file, json.dumps(env, indent=2))
    return env


class _KeystoneStart:
    """``tools/real_keystone.py``'s ``start`` (same instance name) in a thread."""

    def __init__(self, paths: Paths, debug: bool, timeout: float) -> None:
        rk = _keystone_tool()
        self._paths = paths
        self._keystone_paths = rk.Paths(paths.name)
        rk.require_installed(self._keystone_paths)
        self._env: dict | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(debug, timeout),
                                        name="keystone-start", daemon=True)
        self._thread.start()

    def _run(self, debug: bool, timeout: float) -> None:
        try:
            self._env = _keystone_tool().start(self._keystone_paths, debug, timeout)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by result()
            self._error = exc

    def result(self) -> dict:
        """Keystone's env once it runs; from then on ``stop`` stops it too.

        :raises Failed: it could not be started (what it started is stopped).
        """
        self._thread.join()
        if self._error is not None:
            raise self._error
        self._paths.with_keystone.touch()
        assert self._env is not None
        return self._env

    def abandon(self) -> None:
        """Manila failed: wait for Keystone's start to end, then stop it."""
        self._thread.join()
        if self._error is None:
            with contextlib.suppress(Failed):
                _keystone_tool().stop(self._keystone_paths, quiet=True)


def _start_manila(paths: Paths, debug: bool, timeout: float) -> dict:
    setup(paths, debug)
    began = time.monotonic()
    port, policy_port = free_port(), free_port()
    while policy_port == port:
        policy_port = free_port()
    base_url, policy_base_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{policy_port}"
    try:
        # The scheduler first: when it starts it asks the share services for their
        # capabilities, and manila-share publishes them when its drivers are ready.
        spawn(paths, "scheduler", service_command(paths, "scheduler"))
        spawn(paths, "share", service_command(paths, "share"))
        spawn(paths, "api", service_command(paths, "api", port))
        spawn(paths, "api-policy", service_command(paths, "api-policy", policy_port))
        _wait("manila-api (noauthv2) to answer", lambda: api_answers(base_url), timeout,
              paths.log("api"), paths)
        _wait("manila-api (policy) to answer", lambda: api_answers(policy_base_url), timeout,
              paths.log("api-policy"), paths)
        _wait("manila-share to initialise its drivers",
              lambda: _initialised_backends(paths) >= set(BACKENDS), timeout,
              paths.log("share"), paths)
        endpoint = base_url + "/v2"
        wanted = {f"{paths.host}@{b}#fake_pool_for_{b}" for b in BACKENDS}
        _wait("the scheduler to see both backends' pools",
              lambda: set(pools(endpoint)) >= wanted, timeout, paths.log("scheduler"), paths)
        share_types = ensure_share_types(endpoint)
    except BaseException:
        stop(paths, quiet=True)
        raise
    env = {
        "name": paths.name,
        "manila_version": MANILA_VERSION,
        "base_url": base_url,
        "endpoint": endpoint,
        "policy_base_url": policy_base_url,
        "policy_endpoint": policy_base_url + "/v2",
        "admin_token": ADMIN_TOKEN,
        "share_types": share_types,
        "default_share_type": DEFAULT_SHARE_TYPE,
        "backends": sorted(wanted),
        "slow_snapshot_seconds": SLOW_SNAPSHOT_DELAY,
        "run_dir": str(paths.run),
        "logs": {service: str(paths.log(service)) for service in SERVICES},
        "pids": {service: read_pid(paths, service)["pid"] for service in SERVICES},
        "started_in_seconds": round(time.monotonic() - began, 1),
    }
    say(f"Manila {MANILA_VERSION} ready in {env['started_in_seconds']} s: {endpoint} "
        f"(noauthv2), {env['policy_endpoint']} (keystone pipeline, trusted headers)")
    return env


def _keystone_tool():
    """``tools/real_keystone.py`` as a module (it imports this one: imported late)."""
    import real_keystone

    return real_keystone


def keystone_api_conf(paths: Paths, keystone_env: dict) -> str:
    """``api-keystone``'s config over ``manila.conf``: Manila's own paste file, whose
    ``keystone`` pipeline has ``authtoken``, and keystonemiddleware's options."""
    section = _keystone_tool().authtoken_section(keystone_env, user="manila")
    return f"""\
# Written by tools/real_manila.py start --keystone (mode 0600: a service password).
[DEFAULT]
auth_strategy = keystone
api_paste_config = {paths.shipped_paste_ini}

{section}"""


def _keystone_api_usable(paths: Paths, env: dict, keystone_env: dict) -> bool:
    record = read_pid(paths, KEYSTONE_API)
    api = env.get("keystone_api") or {}
    return bool(record and _alive(record) and api.get("auth_url") == keystone_env["auth_url"]
                and api_answers(api["base_url"]))


def _member_sees_shares(base_url: str, keystone_env: dict) -> bool:
    """A member's real token lists its project's shares on ``api-keystone``."""
    rk = _keystone_tool()
    user = keystone_env["users"][keystone_env["tenants"][next(iter(keystone_env["tenants"]))]]
    token, _ = rk.password_token(keystone_env["auth_url"], user["name"], user["password"],
                                 user["project"])
    try:
        status, _ = http("GET", f"{base_url}/v2/{user['project_id']}/shares", token=token)
    except OSError:
        return False
    return status == 200


def _start_keystone_api(paths: Paths, env: dict, keystone_env: dict, timeout: float) -> dict:
    """``api-keystone`` on the running Keystone (``keystone_env``)."""
    rk = _keystone_tool()
    if _keystone_api_usable(paths, env, keystone_env):
        say(f"already running: {env['keystone_api']['base_url']} (keystone pipeline)")
    else:
        stop_services(paths, (KEYSTONE_API,))
        began = time.monotonic()
        taken = {urllib.parse.urlsplit(env[k]).port for k in ("base_url", "policy_base_url")}
        port = free_port()
        while port in taken:
            port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        urls = {interface: base_url + CATALOG_PATH
                for interface in ("public", "internal", "admin")}
        try:
            rk.ensure_service(keystone_env, CATALOG_TYPE, CATALOG_NAME, urls)
            write_private(paths.keystone_api_conf, keystone_api_conf(paths, keystone_env))
            spawn(paths, KEYSTONE_API, service_command(paths, KEYSTONE_API, port))
            services = (*SERVICES, KEYSTONE_API)
            _wait("manila-api (keystone) to answer", lambda: api_answers(base_url), timeout,
                  paths.log(KEYSTONE_API), paths, services)
            _wait("manila-api (keystone) to take a member's token",
                  lambda: _member_sees_shares(base_url, keystone_env), timeout,
                  paths.log(KEYSTONE_API), paths, services)
        except BaseException:
            stop_services(paths, (KEYSTONE_API,))
            raise
        env["keystone_api"] = {
            "base_url": base_url,
            "endpoint_template": base_url + CATALOG_PATH,
            "service_type": CATALOG_TYPE,
            "service_name": CATALOG_NAME,
            "region": keystone_env["region"],
            "auth_url": keystone_env["auth_url"],
            "started_in_seconds": round(time.monotonic() - began, 1),
        }
        say(f"manila-api on the keystone pipeline ready in "
            f"{env['keystone_api']['started_in_seconds']} s: {base_url}/v2 "
            f"(catalog: {CATALOG_TYPE} {CATALOG_NAME})")
    env["keystone"] = keystone_env
    env["logs"][KEYSTONE_API] = str(paths.log(KEYSTONE_API))
    env["pids"][KEYSTONE_API] = read_pid(paths, KEYSTONE_API)["pid"]
    return env


def stop(paths: Paths, quiet: bool = False) -> None:
    """Stop exactly the processes ``start`` recorded, then check they are gone; and the
    Keystone a ``start --keystone`` used."""
    stopped = stop_services(paths, ALL_SERVICES)
    left = running_services(paths)
    if left:
        raise Failed(f"still running after stop: {sorted(left)}")
    paths.env_file.unlink(missing_ok=True)
    if paths.with_keystone.exists():
        rk = _keystone_tool()
        rk.stop(rk.Paths(paths.name), quiet=True)
        stopped.append("keystone")
        paths.with_keystone.unlink()
    if not quiet:
        say(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


def redacted(env: dict) -> dict:
    """``env`` without passwords (for printing)."""
    shown = json.loads(json.dumps(env))
    if "keystone" in shown:
        shown["keystone"] = _keystone_tool().redacted(shown["keystone"])
    return shown


def status(paths: Paths) -> int:
    env = read_env(paths) or {}
    running = running_services(paths)
    print(f"instance {paths.name}: run dir {paths.run}")
    print(f"  installed: {installed(paths)} ({paths.venv})")
    shown = ALL_SERVICES if paths.with_keystone.exists() else SERVICES
    for service in shown:
        record = running.get(service)
        state = f"running (PID {record['pid']})" if record else "not running"
        print(f"  manila-{service}: {state}")
    urls = (("endpoint", env.get("base_url")), ("policy", env.get("policy_base_url")),
            ("keystone pipeline", (env.get("keystone_api") or {}).get("base_url")))
    for key, url in urls:
        if url:
            print(f"  {key}: {url} {'answers' if api_answers(url) else 'does not answer'}")
    code = 0 if set(running) >= set(shown) else 3
    if paths.with_keystone.exists():
        rk = _keystone_tool()
        code = max(code, rk.status(rk.Paths(paths.name)))
    return code


# -- the API server (runs inside Manila's virtualenv) ----------------------------------


def serve_api(argv: list[str]) -> None:
    """Serve ``manila.wsgi.api:application`` with gunicorn (Manila's own server needs
    eventlet). The module parses ``sys.argv`` as oslo.config arguments: hand it only
    the config files."""
    parser = argparse.ArgumentParser(prog="real_manila.py _serve-api")
    parser.add_argument("--bind", required=True)
    parser.add_argument("--config-file", action="append", required=True)
    args = parser.parse_args(argv)

    from gunicorn.app.base import BaseApplication

    class ManilaApi(BaseApplication):
        def load_config(self) -> None:
            for key, value in {"bind": args.bind, "workers": 1, "threads": 8,
                               "worker_class": "gthread", "timeout": 120,
                               "graceful_timeout": 5, "accesslog": "-",
                               "proc_name": "manila-api",
                               # gunicorn's control socket is one path per user
                               # (~/.gunicorn/gunicorn.ctl): every instance would share it.
                               "control_socket_disable": True}.items():
                self.cfg.set(key, value)

        def load(self):
            sys.argv = [sys.argv[0]] + [
                arg for path in args.config_file for arg in ("--config-file", path)]
            from manila.wsgi import api

            return api.application

    ManilaApi().run()


# -- command line ---------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_serve-api"]:
        serve_api(argv[1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=(
        "install", "setup", "start", "up", "stop", "status", "env", "paths"))
    parser.add_argument("--name", default=os.environ.get("MANILA_PROTECTOR_REAL_MANILA_NAME",
                                                         "default"),
                        help="instance name (own run dir, database and vhost)")
    parser.add_argument("--python", help="interpreter for the virtualenv (default: this one)")
    parser.add_argument("--debug", action="store_true", help="Manila's debug logging")
    parser.add_argument("--shell", action="store_true", help="env: print shell exports")
    parser.add_argument("--timeout", type=float, default=START_TIMEOUT,
                        help="start: seconds to wait for Manila to be usable")
    parser.add_argument("--keystone", action="store_true",
                        help="start/up: also a real Keystone and Manila's keystone pipeline "
                             "(install/up: Keystone's virtualenv too)")
    args = parser.parse_args(argv)
    try:
        paths = Paths(args.name)
        keystone_paths = None
        if args.keystone:
            rk = _keystone_tool()
            keystone_paths = rk.Paths(args.name)
        if args.command == "install":
            install(paths, args.python)
            if keystone_paths is not None:
                rk.install(keystone_paths, args.python)
        elif args.command == "setup":
            setup(paths, args.debug)
        elif args.command in ("start", "up"):
            if args.command == "up":
                install(paths, args.python)
                if keystone_paths is not None:
                    rk.install(keystone_paths, args.python)
            else:
                require_installed(paths)
            start(paths, args.debug, args.timeout, keystone=args.keystone)
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
                raise Failed(f"instance {paths.name} is not running (start it first)")
            if args.shell:
                print(f"export MANILA_PROTECTOR_REAL_MANILA_ENDPOINT={env['endpoint']}")
                print(f"export MANILA_PROTECTOR_REAL_MANILA_POLICY_ENDPOINT="
                      f"{env['policy_endpoint']}")
                if "keystone" in env:
                    print(f"export OS_AUTH_URL={env['keystone']['auth_url']}")
                    print(f"export MANILA_PROTECTOR_REAL_MANILA_KEYSTONE_BASE_URL="
                          f"{env['keystone_api']['base_url']}")
            else:
                print(json.dumps(redacted(env), indent=2))
    except Failed as exc:
        print(f"[real-manila] FAILED: {exc}", file=sys.stderr)
        if exc.log is not None:
            print(f"---- tail of {exc.log}\n{tail(exc.log)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
