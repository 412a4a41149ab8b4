"""The package installs like a service: what the sdist and the wheel carry, the systemd files.

The distributions are built from a copy of this checkout with the build frontend
(``python -m build --no-isolation``: the test extra brings ``build`` and ``wheel``),
the wheel from the sdist, as a packager would.
"""

import configparser
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

from manila_protector import opts
from manila_protector.worker import service

from support.fixtures import unavailable

ROOT = pathlib.Path(__file__).resolve().parents[2]
UNIT = ROOT / "etc/systemd/manila-protector-worker.service"
SYSUSERS = ROOT / "etc/systemd/manila-protector.sysusers.conf"
TMPFILES = ROOT / "etc/systemd/manila-protector.tmpfiles.conf"
#: The highest `systemd-analyze security` exposure the unit may have (of 10; "OK" < 4).
MAX_EXPOSURE = 4.0


def etc_files() -> set[str]:
    return {str(path.relative_to(ROOT)) for path in (ROOT / "etc").rglob("*") if path.is_file()}


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, pathlib.Path]:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the distributions are built from one")
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True, timeout=60).stdout.decode()
    tree = tmp_path_factory.mktemp("checkout")
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tree / name)
    out = tree / "dist"
    proc = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir",
                           str(out), str(tree)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [sdist] = out.glob("*.tar.gz")
    [wheel] = out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel}


def test_the_sdist_carries_the_licence_etc_docs_and_release_notes(dists):
    with tarfile.open(dists["sdist"]) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert "LICENSE" in names
    assert etc_files() <= names
    assert {"doc/install.rst", "doc/troubleshooting.rst", "README.md"} <= names
    assert any(name.startswith("releasenotes/notes/") for name in names)
    assert not any(name.startswith(("standin/", "tests/", "manila_standin/")) for name in names)


def test_the_wheel_installs_etc_as_data_files_and_holds_no_standin(dists):
    with zipfile.ZipFile(dists["wheel"]) as archive:
        names = set(archive.namelist())
    data = {name.split(".data/data/share/manila-protector/", 1)[1] for name in names
            if ".data/data/share/manila-protector/" in name}
    assert data == etc_files(), "setup.cfg [options.data_files] must list every file of etc/"
    assert any(re.search(r"\.dist-info/(licenses/)?LICENSE$", name) for name in names)
    packages = {name.split("/", 1)[0] for name in names if "/" in name}
    assert "manila_protector" in packages
    assert not packages & {"manila_standin", "standin", "tests", "bench", "tools"}
    assert "manila_protector/worker/store/migrations/script.py.mako" in names
    entry_points = next(_read(dists["wheel"], "entry_points.txt"))
    for script in ("manila-protector-worker", "manila-protector-manage",
                   "manila-protector-demo"):
        assert f"{script} = " in entry_points


def _read(wheel: pathlib.Path, suffix: str):
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.endswith(".dist-info/" + suffix):
                yield archive.read(name).decode()


def test_the_licence_is_the_apache_2_0_text_setup_cfg_names():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    assert setup["metadata"]["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert "APPENDIX: How to apply the Apache License to your work." in text


# -- systemd ------------------------------------------------------------------------------


def unit() -> configparser.ConfigParser:
    parsed = configparser.ConfigParser(strict=False, interpolation=None)
    parsed.optionxform = str
    parsed.read_string(UNIT.read_text())
    return parsed


def test_the_unit_waits_for_readiness_and_does_not_restart_a_refused_configuration():
    section = unit()["Service"]
    assert section["Type"] == "notify"
    assert section["RestartPreventExitStatus"] == str(service.EXIT_CONFIG)
    assert section["Restart"] == "on-failure"
    assert section["User"] == section["Group"] == "manila-protector"
    assert int(section["TimeoutStopSec"]) > 300  # [worker] shutdown_timeout's default
    # The directories the worker writes by default are the ones the unit makes writable.
    assert "/var/lib/" + section["StateDirectory"] == opts._DEFAULT_OPTS[1].default
    assert opts._COORDINATION_OPTS[1].default.startswith(opts._DEFAULT_OPTS[1].default + "/")


def test_the_unit_is_rated_below_4_by_systemd_analyze_security():
    if shutil.which("systemd-analyze") is None:
        unavailable("systemd-analyze is not installed (apt-get install systemd)")
    proc = subprocess.run(["systemd-analyze", "security", "--offline=true", str(UNIT)],
                          capture_output=True, text=True, timeout=120)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", proc.stdout + proc.stderr)
    assert found, proc.stdout + proc.stderr
    assert float(found.group(1)) < MAX_EXPOSURE, proc.stdout


def test_sysusers_and_tmpfiles_make_the_user_and_its_directories(tmp_path):
    tools = [shutil.which(name) for name in ("systemd-sysusers", "systemd-tmpfiles")]
    if None in tools:
        unavailable("systemd-sysusers / systemd-tmpfiles are not installed")
    if os.geteuid() != 0:
        pytest.skip("systemd-tmpfiles sets owners: needs root")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for tool, conf, extra in ((tools[0], SYSUSERS, []), (tools[1], TMPFILES, ["--create"])):
        proc = subprocess.run([tool, f"--root={root}", *extra, "-"], input=conf.read_text(),
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
    users = {line.split(":")[0]: line.split(":") for line in
             (root / "etc/passwd").read_text().splitlines()}
    groups = {line.split(":")[0]: line.split(":") for line in
              (root / "etc/group").read_text().splitlines()}
    uid, gid = int(users["manila-protector"][2]), int(groups["manila-protector"][2])
    assert users["manila-protector"][6] == "/usr/sbin/nologin"
    expected = {"var/lib/manila-protector": (0o700, uid, gid),
                "var/lib/manila-protector/locks": (0o700, uid, gid),
                "var/log/manila-protector": (0o750, uid, gid),
                "etc/manila-protector": (0o750, 0, gid)}
    for path, (mode, owner, group) in expected.items():
        found = (root / path).stat()
        assert (found.st_mode & 0o777, found.st_uid, found.st_gid) == (mode, owner, group), path
