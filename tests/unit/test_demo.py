"""The README's first command: the demo runs protect -> restore -> delete end to end."""

from importlib import metadata
import json
import pathlib
import subprocess
import sys


def test_demo_protects_restores_and_deletes_printing_each_notification(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "manila_protector.demo", "--delay", "0.05",
         "--state-path", str(tmp_path / "state")],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for op in ("protect", "restore", "delete"):
        assert f"manila_protector.{op}.start" in out
        assert f"manila_protector.{op}.end" in out
    assert "rules [('10.20.0.0/16', 'active'), ('10.30.1.5', 'active')]" in out
    assert "left in Manila: 0" in out
    assert out.rstrip().endswith("Demo succeeded")
    assert "demo:" not in out  # the token never shows
    _assert_whole_lines(out)


def _assert_whole_lines(out):
    # Notifications print from the listener's thread while replies print from the main
    # thread: each line is one or the other, never both run together.
    notifications = replies = 0
    for line in out.splitlines():
        if line.startswith("  ["):
            notifications += 1
            assert line.count("manila_protector.") == 1 and "reply:" not in line, line
        elif line.startswith("   reply: "):
            replies += 1
            assert json.loads(line[len("   reply: "):])["status"] == "succeeded", line
        else:
            assert "manila_protector." not in line and "reply:" not in line, line
    assert replies == 3
    assert notifications >= 6


def test_the_demo_and_every_console_script_say_their_version():
    bin_dir = pathlib.Path(sys.executable).parent
    release = metadata.version("manila-protector")
    for script in ("manila-protector-worker", "manila-protector-manage",
                   "manila-protector-demo"):
        proc = subprocess.run([str(bin_dir / script), "--version"], capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == release, (script, proc.stdout)


def test_importing_the_demo_installs_no_warning_filters():
    probe = ("import warnings; before = list(warnings.filters); import manila_protector.demo; "
             "print(warnings.filters == before)")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"
