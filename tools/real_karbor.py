#!/usr/bin/env python3
"""Install OpenStack Karbor 1.6.0 and this checkout's plugins into one virtualenv,
for the Karbor tier (tests/karbor).

Stdlib only; runs with any python3 (3.10 or newer)::

    python3 tools/real_karbor.py install   # the pinned virtualenv (cached) + this checkout
    python3 tools/real_karbor.py check     # our modules import there, the pins hold
    python3 tools/real_karbor.py paths     # where things are (JSON)

Karbor's last release (1.6.0, 2020) installs from the registry but imports only with
``oslo.db==12.0.0``, ``oslo.context<4``, ``oslo.messaging<14.9``, ``SQLAlchemy<2`` and
``setuptools<81`` (sqlalchemy-migrate needs ``pkg_resources``); :data:`REQUIREMENTS`
is what that set resolved to, pinned. This project's package is then installed from
the checkout (``pip install --no-deps -e``; redone when the checkout or its
``setup.cfg`` changes) and must import there: ``manila_protector.plugins.protection``,
``manila_protector.plugins.protectable``, ``manila_protector.rpc.api``; ``pip check``
must find no conflict between our requirements and Karbor's.

NOTE: the virtualenv is shared by every checkout on the machine, and the editable
install points at the last checkout that ran ``install``. The tier therefore runs
Karbor's Python with ``PYTHONPATH=<its checkout>``, so the code under test is always its
own; the installed metadata supplies only the entry points.

Place: ``${MANILA_PROTECTOR_CACHE:-~/.cache/manila-protector}/karbor-1.6.0/venv`` (a
marker file records what was installed; ``install.log`` beside it).

Exit status: 0 done, 1 failed (the reason and the tail of the log are printed), 2 this
machine cannot run it (no package index).
"""

# ruff: noqa: S603 - a developer/CI tool: it runs the commands it builds itself
# (Karbor's virtualenv's pip and python), never input from elsewhere.
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

KARBOR_VERSION = "1.6.0"
#: Everything installed into Karbor's virtualenv, pinned: the issue's constraints
#: (oslo.db==12.0.0, oslo.context<4, oslo.messaging<14.9, SQLAlchemy<2, setuptools<81)
#: as they resolved, and the libraries our code and Karbor's flows lean on.
REQUIREMENTS = (
    f"karbor=={KARBOR_VERSION}",
    "oslo.db==12.0.0",
    "oslo.context==3.4.0",
    "oslo.messaging==14.6.0",
    "oslo.config==10.7.0",
    "oslo.log==8.3.2",
    "oslo.utils==10.2.0",
    "oslo.serialization==5.11.0",
    "oslo.versionedobjects==3.12.0",
    "SQLAlchemy==1.4.54",
    "sqlalchemy-migrate==0.13.0",
    "setuptools==80.9.0",
    "eventlet==0.41.3",
    "taskflow==6.5.0",
    "stevedore==5.10.0",
    "python-manilaclient==6.3.0",
    "keystoneauth1==5.18.1",
    "jsonschema==4.26.0",
    "requests==2.34.2",
    # Ours, not Karbor's (the worker's locks): resolved under the same pins.
    "tooz==9.1.0",
)
#: What must import in Karbor's virtualenv: Karbor's protection service and our plugins.
MODULES = (
    "karbor.services.protection.manager",
    "manila_protector.plugins.protection",
    "manila_protector.plugins.protectable",
    "manila_protector.rpc.api",
)

REPO = pathlib.Path(__file__).resolve().parents[1]
EXIT_FAILED = 1
EXIT_CANNOT_RUN = 2


class Failed(Exception):
    """The tooling failed; ``log`` names the log whose tail explains it."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, log: pathlib.Path | None = None) -> None:
        super().__init__(message)
        self.log = log


class CannotRun(Failed):
    """This machine lacks a prerequisite (a package index)."""

    exit_code = EXIT_CANNOT_RUN


def say(message: str) -> None:
    print(f"[real-karbor] {message}", flush=True)


def tail(path: pathlib.Path | None, lines: int = 40) -> str:
    if path is None:
        return ""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


class Paths:
    """Where the virtualenv and its bookkeeping live."""

    def __init__(self, cache: str | None = None) -> None:
        cache = cache or os.environ.get("MANILA_PROTECTOR_CACHE") or "~/.cache/manila-protector"
        self.base = pathlib.Path(cache).expanduser() / f"karbor-{KARBOR_VERSION}"
        self.venv = self.base / "venv"
        self.marker = self.venv / ".manila-protector-installed.json"
        self.ours_marker = self.venv / ".manila-protector-checkout.json"
        self.log = self.base / "install.log"
        self.lock = self.base / "install.lock"

    def bin(self, name: str) -> pathlib.Path:
        return self.venv / "bin" / name


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


def run(cmd: list[str], *, log: pathlib.Path, timeout: float = 600,
        env: dict[str, str] | None = None) -> None:
    """Run a command, its output appended to ``log``; raise :class:`Failed` on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout,
                              env=env, stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        raise Failed(f"{' '.join(cmd[:4])}... exited {proc.returncode}", log=log)


def _pip(paths: Paths) -> list[str]:
    return [str(paths.bin("python")), "-m", "pip", "--disable-pip-version-check"]


def _clean_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


# -- Karbor's virtualenv ----------------------------------------------------------------


def karbor_installed(paths: Paths) -> bool:
    try:
        marker = json.loads(paths.marker.read_text())
    except (OSError, ValueError):
        return False
    return marker.get("requirements") == list(REQUIREMENTS) and paths.bin("python").exists()


def install_karbor(paths: Paths, python: str | None) -> None:
    """Create the virtualenv and install :data:`REQUIREMENTS`, unless already done."""
    if karbor_installed(paths):
        say(f"Karbor {KARBOR_VERSION} already installed in {paths.venv}")
        return
    began = time.monotonic()
    if paths.venv.exists():
        say(f"removing an incomplete or outdated virtualenv at {paths.venv}")
        shutil.rmtree(paths.venv)
    paths.base.mkdir(parents=True, exist_ok=True)
    python = python or sys.executable
    say(f"installing Karbor {KARBOR_VERSION} into {paths.venv} (log: {paths.log})")
    run([python, "-m", "venv", str(paths.venv)], log=paths.log)
    try:
        run(_pip(paths) + ["install", "--quiet", *REQUIREMENTS], log=paths.log, timeout=1800,
            env=_clean_env())
    except Failed as exc:
        text = tail(paths.log, 200)
        if re.search(r"No matching distribution|Could not find a version|"
                     r"NewConnectionError|Temporary failure in name resolution", text):
            raise CannotRun(f"Karbor's packages cannot be installed here (no package "
                            f"index?): {exc}", log=paths.log) from exc
        raise
    paths.marker.write_text(json.dumps({
        "requirements": list(REQUIREMENTS), "python": python,
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "seconds": round(time.monotonic() - began, 1)}, indent=2))
    say(f"Karbor installed in {time.monotonic() - began:.0f} s")


# -- this checkout ------------------------------------------------------------------------


def _checkout_identity() -> dict[str, str]:
    setup_cfg = (REPO / "setup.cfg").read_bytes()
    return {"checkout": str(REPO), "setup_cfg_sha256": hashlib.sha256(setup_cfg).hexdigest()}


def install_ours(paths: Paths) -> None:
    """``pip install --no-deps -e`` this checkout (its entry points), when not current."""
    wanted = _checkout_identity()
    try:
        current = json.loads(paths.ours_marker.read_text())
    except (OSError, ValueError):
        current = None
    if current == wanted:
        say(f"manila_protector from {REPO} already installed")
        return
    say(f"installing manila_protector from {REPO} (editable, no dependencies)")
    paths.ours_marker.unlink(missing_ok=True)
    run(_pip(paths) + ["install", "--quiet", "--no-deps", "-e", str(REPO)], log=paths.log,
        timeout=600, env=_clean_env())
    paths.ours_marker.write_text(json.dumps(wanted, indent=2))


def check(paths: Paths) -> None:
    """``pip check`` finds no conflict, and :data:`MODULES` import from this checkout."""
    proc = subprocess.run(_pip(paths) + ["check"], capture_output=True, text=True, timeout=300,
                          env=_clean_env(), stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        raise Failed("our requirements and Karbor's conflict (pip check in "
                     f"{paths.venv}):\n{proc.stdout.strip()}{proc.stderr.strip()}")
    env = _clean_env()
    env["PYTHONPATH"] = str(REPO)
    probe = ("import importlib, json, sys\n"
             f"mods = {list(MODULES)!r}\n"
             "print(json.dumps({m: importlib.import_module(m).__file__ for m in mods}))\n")
    proc = subprocess.run([str(paths.bin("python")), "-W", "ignore", "-c", probe],
                          capture_output=True, text=True, timeout=300, env=env,
                          stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        raise Failed(f"a module does not import in Karbor's virtualenv:\n{proc.stderr[-4000:]}")
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    for module in MODULES:
        if module.startswith("manila_protector") and not found[module].startswith(str(REPO)):
            raise Failed(f"{module} imported from {found[module]}, not from {REPO}")
    say(f"pip check clean; {', '.join(MODULES)} import")


def install(paths: Paths, python: str | None = None) -> None:
    with file_lock(paths.lock):
        install_karbor(paths, python)
        install_ours(paths)
        check(paths)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("install", "check", "paths"))
    parser.add_argument("--python", help="interpreter for the virtualenv (default: this one)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    paths = Paths()
    try:
        if args.command == "install":
            install(paths, args.python)
        elif args.command == "check":
            if not karbor_installed(paths):
                raise Failed(f"Karbor is not installed in {paths.venv}: run "
                             f"`{sys.executable} {__file__} install` first")
            check(paths)
        else:
            print(json.dumps({"base": str(paths.base), "venv": str(paths.venv),
                              "python": str(paths.bin("python")), "repo": str(REPO),
                              "installed": karbor_installed(paths)}))
    except Failed as exc:
        print(f"[real-karbor] FAILED: {exc}", file=sys.stderr)
        if exc.log is not None:
            print(f"---- tail of {exc.log}\n{tail(exc.log)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
