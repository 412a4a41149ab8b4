"""Karbor 1.6.0 for the Karbor tier, seen from the test process.

:func:`install` makes sure ``tools/real_karbor.py install`` ran (the virtualenv is
cached). A :class:`Deployment` is one karbor-protection's files -- ``providers.d``
with a copy of our provider file (``etc/providers.d/manila-share.conf``) on a
file-system bank, a ``karbor.conf``, Karbor's database -- and runs
``tests/karbor/driver.py`` with Karbor's Python on them: each command is one
karbor-protection doing one thing (checkpoint create, restore create, verification
create, checkpoint delete, a protectables call) with Karbor's own code, and answers
one JSON result. :meth:`Deployment.start` runs it in the background, so that a test
can watch the flow's task events and kill the process at a chosen point.
"""

from __future__ import annotations

import configparser
import dataclasses
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
import typing
import uuid

REPO = pathlib.Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "real_karbor.py"
DRIVER = REPO / "tests" / "karbor" / "driver.py"
PROVIDER_FILE = REPO / "etc" / "providers.d" / "manila-share.conf"

SHARE = "OS::Manila::Share"
PROJECT = "OS::Keystone::Project"

#: Exit status of the tool when this machine lacks a prerequisite.
EXIT_CANNOT_RUN = 2
#: Seconds the install may take (uncached: about a minute here).
INSTALL_TIMEOUT = 1800.0
#: Seconds one driver command may take.
RUN_TIMEOUT = 180.0


class Unavailable(Exception):
    """Karbor's virtualenv could not be built.

    :ivar cannot_run: this machine lacks a prerequisite (a package index) rather than
        the install failing.
    """

    def __init__(self, message: str, cannot_run: bool) -> None:
        super().__init__(message)
        self.cannot_run = cannot_run


class DriverFailed(AssertionError):
    """The driver itself failed (not Karbor's flow: that is in the result)."""


def _clean_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


def install() -> pathlib.Path:
    """Run ``tools/real_karbor.py install`` (cached); returns Karbor's Python.

    :raises Unavailable: with the tool's explanation.
    """
    try:
        proc = subprocess.run([sys.executable, str(TOOL), "install"], capture_output=True,
                              text=True, timeout=INSTALL_TIMEOUT, env=_clean_env(),
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired as exc:
        raise Unavailable(f"tools/real_karbor.py install did not finish in "
                          f"{INSTALL_TIMEOUT:g} s", cannot_run=False) from exc
    if proc.returncode != 0:
        raise Unavailable(f"tools/real_karbor.py install exited {proc.returncode}:\n"
                          f"{proc.stdout[-3000:]}{proc.stderr[-6000:]}",
                          cannot_run=proc.returncode == EXIT_CANNOT_RUN)
    paths = subprocess.run([sys.executable, str(TOOL), "paths"], capture_output=True,
                           text=True, timeout=60, env=_clean_env(), check=True)
    return pathlib.Path(json.loads(paths.stdout)["python"])


@dataclasses.dataclass(frozen=True)
class Caller:
    """The request context karbor-api would hand karbor-protection (``--context``).

    ``token`` defaults to the stand-in's noauth form ``<user>:<project>``.
    """

    user_id: str
    project_id: str
    roles: tuple[str, ...] = ("member", "reader")
    is_admin: bool = False
    token: str | None = None
    service_catalog: tuple[dict[str, typing.Any], ...] | None = None
    request_id: str | None = None
    project_name: str | None = None

    def to_json(self) -> str:
        return json.dumps({
            "user_id": self.user_id, "project_id": self.project_id,
            "project_name": self.project_name, "roles": list(self.roles),
            "is_admin": self.is_admin,
            "auth_token": self.token or f"{self.user_id}:{self.project_id}",
            "request_id": self.request_id or f"req-{uuid.uuid4()}",
            "service_catalog": list(self.service_catalog or ()),
        })


def v2_catalog(endpoint: str, region: str = "RegionOne") -> tuple[dict[str, typing.Any], ...]:
    """A service catalog with Manila at ``endpoint``, in the **v2 form** keystonemiddleware
    hands a service (``X-Service-Catalog``), which Karbor's RequestContext carries."""
    return ({"type": "sharev2", "name": "manilav2", "endpoints": [
        {"region": region, "publicURL": endpoint, "internalURL": endpoint,
         "adminURL": endpoint}]},)


def v3_catalog(endpoint: str, region: str = "RegionOne") -> tuple[dict[str, typing.Any], ...]:
    """The same in the **v3 form** of a token's catalog (``interface``/``url``)."""
    return ({"type": "sharev2", "name": "manilav2", "endpoints": [
        {"interface": "public", "region": region, "region_id": region, "url": endpoint}]},)


def share_resource(share: dict[str, typing.Any]) -> dict[str, typing.Any]:
    """A plan's resource entry for a share (as Karbor's dashboard builds it)."""
    return {"id": share["id"], "type": SHARE, "name": share.get("name") or share["id"]}


class DriverRun:
    """One driver process: its task events as they come, then its result."""

    def __init__(self, proc: subprocess.Popen, log: pathlib.Path, what: str) -> None:
        self._proc = proc
        self.log = log
        self._what = what
        self._events: list[dict[str, typing.Any]] = []
        self._final: dict[str, typing.Any] | None = None
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, name=f"driver-{what}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                message = {"event": "noise", "text": line.rstrip()}
            with self._changed:
                if "event" in message:
                    self._events.append(message)
                else:
                    self._final = message
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def events(self) -> list[dict[str, typing.Any]]:
        with self._changed:
            return list(self._events)

    def task_states(self, task_prefix: str) -> list[str]:
        """The states the tasks whose names start with ``task_prefix`` went through."""
        return [e["state"] for e in self.events
                if e.get("event") == "task" and str(e.get("task", "")).startswith(task_prefix)]

    def wait_for_event(self, predicate: typing.Callable[[dict[str, typing.Any]], bool],
                       timeout: float = RUN_TIMEOUT) -> dict[str, typing.Any]:
        """The first event matching ``predicate``; fails if the process ends first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self._events:
                    if predicate(event):
                        return event
                if not self._reader.is_alive():
                    raise AssertionError(f"{self._what} ended before the event came:\n"
                                         f"{self.log_tail()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no such event from {self._what} within "
                                         f"{timeout:g} s; events: {self._events[-5:]}")
                self._changed.wait(remaining)

    def kill(self) -> None:
        """SIGKILL, as when karbor-protection dies; returns once it is gone."""
        self._proc.send_signal(signal.SIGKILL)
        self._proc.wait(timeout=RUN_TIMEOUT)
        self._reader.join(timeout=RUN_TIMEOUT)

    def result(self, timeout: float = RUN_TIMEOUT) -> dict[str, typing.Any]:
        """The command's result (waits for the process to end).

        :raises DriverFailed: the driver failed, or ended without a result.
        """
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            raise DriverFailed(f"{self._what} did not finish in {timeout:g} s:\n"
                               f"{self.log_tail()}") from None
        self._reader.join(timeout=timeout)
        final = self._final
        if self._proc.returncode != 0 or final is None or final.get("result") is None:
            detail = (final or {}).get("driver_error") or {}
            raise DriverFailed(f"{self._what} exited {self._proc.returncode}: "
                               f"{''.join(detail.get('traceback', []))}\n{self.log_tail()}")
        return final["result"]

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return f"(no log at {self.log})"
        return f"---- tail of {self.log}\n" + "\n".join(text.splitlines()[-lines:])


class Deployment:
    """One karbor-protection's configuration and state, in ``root``.

    :param python: Karbor's Python (from :func:`install`).
    :param manila_endpoint: the Manila API, written as ``[manila] endpoint_override``
        in the provider file (the protection plugin) and in ``karbor.conf`` (the
        protectable plugin reads Karbor's global configuration); None leaves both out,
        so the plugins look for Manila in the request's service catalog.
    :param transport_url: Karbor's ``[DEFAULT] transport_url``.
    :param dispatch: the provider file's ``[dispatch]`` section (None: the file's own,
        ``mode = direct`` by default).
    """

    def __init__(self, root: pathlib.Path, python: pathlib.Path,
                 manila_endpoint: str | None = None,
                 transport_url: str | None = None,
                 dispatch: dict[str, str] | None = None) -> None:
        self.root = root
        self.python = python
        self.manila_endpoint = manila_endpoint
        self.transport_url = transport_url
        self.dispatch = dict(dispatch) if dispatch is not None else None
        self.provider_dir = root / "providers.d"
        self.bank_dir = root / "bank"
        self.karbor_conf = root / "karbor.conf"
        self.logs = root / "logs"
        self.database = f"sqlite:///{root / 'karbor.sqlite'}"
        self._runs = 0
        for path in (self.provider_dir, self.logs):
            path.mkdir(parents=True, exist_ok=True)
        parsed = configparser.ConfigParser(interpolation=None)
        parsed.read(PROVIDER_FILE)
        self.provider_id = parsed["provider"]["id"]
        self.write_provider()
        self.write_karbor_conf()

    def write_provider(self, manila: dict[str, str] | None = None,
                       sections: dict[str, dict[str, str]] | None = None) -> pathlib.Path:
        """Our provider file, on a file-system bank in ``bank_dir``.

        :param manila: ``[manila]`` options besides ``endpoint_override``.
        :param sections: further sections (e.g. ``dispatch``), merged over the file's.
        """
        parsed = configparser.ConfigParser(interpolation=None)
        parsed.read(PROVIDER_FILE)
        parsed["provider"]["bank"] = "karbor-fs-bank-plugin"
        parsed.remove_section("swift_client")
        parsed["file_system_bank_plugin"] = {"file_system_bank_path": str(self.bank_dir)}
        options = dict(manila or {})
        if self.manila_endpoint is not None:
            options.setdefault("endpoint_override", self.manila_endpoint)
        parsed["manila"] = options
        if self.dispatch is not None:
            sections = {"dispatch": self.dispatch, **(sections or {})}
        for name, values in (sections or {}).items():
            if not parsed.has_section(name):
                parsed.add_section(name)
            for key, value in values.items():
                parsed[name][key] = value
        path = self.provider_dir / PROVIDER_FILE.name
        with open(path, "w") as out:
            out.write("# Written by tests/support/karbor_flows.py from "
                      "etc/providers.d/manila-share.conf\n")
            parsed.write(out)
        return path

    def write_karbor_conf(self, sections: dict[str, dict[str, str]] | None = None) -> None:
        """karbor.conf: ``[manila]`` for the protectable plugin, and ``sections``."""
        parsed = configparser.ConfigParser(interpolation=None)
        if self.manila_endpoint is not None:
            parsed["manila"] = {"endpoint_override": self.manila_endpoint}
        for name, values in (sections or {}).items():
            if not parsed.has_section(name):
                parsed.add_section(name)
            for key, value in values.items():
                parsed[name][key] = value
        with open(self.karbor_conf, "w") as out:
            parsed.write(out)

    # -- running the driver ------------------------------------------------------------

    def start(self, command: str, *args: str, caller: Caller,
              register_our_protectable: bool = False) -> DriverRun:
        """Start one driver command in the background."""
        self._runs += 1
        log = self.logs / f"{self._runs:02d}-{command}.log"
        cmd = [str(self.python), str(DRIVER), command, *args,
               "--provider-dir", str(self.provider_dir), "--database", self.database,
               "--config-file", str(self.karbor_conf), "--context", caller.to_json(),
               "--log-file", str(log)]
        if self.transport_url:
            cmd += ["--transport-url", self.transport_url]
        if register_our_protectable:
            cmd.append("--register-our-protectable")
        env = _clean_env()
        # The code under test is this checkout's, whichever checkout the shared
        # virtualenv's editable install points at (see tools/real_karbor.py).
        env["PYTHONPATH"] = str(REPO)
        with open(log, "ab") as stderr:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                    env=env, stdin=subprocess.DEVNULL, cwd=self.root)
        return DriverRun(proc, log, f"driver {command} (run {self._runs})")

    def run(self, command: str, *args: str, caller: Caller,
            register_our_protectable: bool = False) -> dict[str, typing.Any]:
        """Run one driver command to its end; returns its result."""
        run = self.start(command, *args, caller=caller,
                         register_our_protectable=register_our_protectable)
        result = run.result()
        if result.get("manila_protector") != str(REPO / "manila_protector"):
            raise DriverFailed(f"the driver ran manila_protector from "
                               f"{result.get('manila_protector')}, not from {REPO}")
        return result

    def protect(self, caller: Caller, resources: list[dict[str, typing.Any]],
                parameters: dict[str, typing.Any] | None = None,
                checkpoint_id: str | None = None) -> dict[str, typing.Any]:
        """Checkpoint create for a new plan of ``resources``."""
        return self.run("protect", *self.protect_args(resources, parameters, checkpoint_id),
                        caller=caller)

    def protect_args(self, resources: list[dict[str, typing.Any]],
                     parameters: dict[str, typing.Any] | None = None,
                     checkpoint_id: str | None = None) -> list[str]:
        return ["--provider-id", self.provider_id,
                "--checkpoint-id", checkpoint_id or str(uuid.uuid4()),
                "--resources", json.dumps(resources),
                "--parameters", json.dumps(parameters or {})]

    def restore(self, caller: Caller, checkpoint_id: str,
                parameters: dict[str, typing.Any] | None = None) -> dict[str, typing.Any]:
        return self.run("restore", "--provider-id", self.provider_id,
                        "--checkpoint-id", checkpoint_id,
                        "--parameters", json.dumps(parameters or {}), caller=caller)

    def verify(self, caller: Caller, checkpoint_id: str,
               parameters: dict[str, typing.Any] | None = None) -> dict[str, typing.Any]:
        return self.run("verify", "--provider-id", self.provider_id,
                        "--checkpoint-id", checkpoint_id,
                        "--parameters", json.dumps(parameters or {}), caller=caller)

    def delete(self, caller: Caller, checkpoint_id: str) -> dict[str, typing.Any]:
        return self.run("delete", "--provider-id", self.provider_id,
                        "--checkpoint-id", checkpoint_id, caller=caller)

    def protectables(self, caller: Caller, action: str, *args: str,
                     register_our_protectable: bool = True) -> dict[str, typing.Any]:
        return self.run("protectables", action, *args, caller=caller,
                        register_our_protectable=register_our_protectable)
