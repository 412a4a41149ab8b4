"""A configuration the worker cannot run with ends in one line naming the option, exit 78.

78 is EX_CONFIG: the unit's ``RestartPreventExitStatus=78`` keeps systemd from
restarting the worker in a loop until the file is fixed.  No broker is needed:
each of these is refused before the worker connects to anything.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

import pytest

from manila_protector.worker import service

#: Seconds a worker may take to say READY=1 (or to exit) on a loaded machine.
READY_TIMEOUT = 300


def run_worker(tmp_path, extra: str, *args: str) -> subprocess.CompletedProcess:
    path = tmp_path / "worker.conf"
    path.write_text(f"""\
[DEFAULT]
transport_url = kombu+memory:////
state_path = {tmp_path}/state
host = config-errors
[coordination]
lock_path = {tmp_path}/locks
[manila]
endpoint_override = http://127.0.0.1:9/v2
{extra}
""")
    return subprocess.run([sys.executable, "-m", "manila_protector.worker.service",
                           "--config-file", str(path), *args],
                          capture_output=True, text=True, timeout=120)


def assert_one_line_naming(proc: subprocess.CompletedProcess, *named: str) -> None:
    assert proc.returncode == service.EXIT_CONFIG == 78, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    ours = [line for line in proc.stderr.splitlines()
            if line.startswith("manila-protector-worker: ")]
    assert len(ours) == 1, proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1] == ours[0]
    for name in named:
        assert name in ours[0], ours[0]


@pytest.mark.parametrize(("extra", "named"), [
    ("[worker]\nmax_concurrent_jobs = eight", ("[worker] max_concurrent_jobs", "'eight'")),
    ("[worker]\nmax_concurrent_jobs = 0", ("[worker] max_concurrent_jobs", "1")),
    ("[coordination]\nlock_wait = soon", ("[coordination] lock_wait",)),
    ("[DEFAULT]\ntransport_url = nosuch://broker", ("[DEFAULT] transport_url", "nosuch")),
    ("[oslo_messaging_notifications]\ntransport_url = nosuch://broker",
     ("[oslo_messaging_notifications] transport_url",)),
    ("[coordination]\nbackend_url = nosuch://locks", ("[coordination] backend_url", "nosuch")),
    ("[database]\nconnection = mysql+pymysql://db/jobs",
     ("[coordination] backend_url", "[database] connection")),
    ("[manila]\nauth_type = nosuchplugin", ("[manila]", "nosuchplugin")),
], ids=["not-an-int", "below-min", "not-a-float", "transport", "notification-transport",
        "lock-backend", "shared-store-with-file-locks", "auth-plugin"])
def test_a_bad_option_ends_in_one_line_naming_it(tmp_path, extra, named):
    assert_one_line_naming(run_worker(tmp_path, extra), *named)


def test_a_missing_config_file_ends_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "manila_protector.worker.service",
                           "--config-file", str(tmp_path / "absent.conf")],
                          capture_output=True, text=True, timeout=120)
    assert_one_line_naming(proc, "absent.conf")


def test_a_bad_value_of_a_command_line_option_in_the_file_exits_78(tmp_path):
    proc = run_worker(tmp_path, "[DEFAULT]\ndebug = maybe")
    assert proc.returncode == 78
    assert "Traceback" not in proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1].endswith("--debug: Invalid Boolean value: maybe")


def test_a_refused_start_leaves_the_host_free_to_start_again(tmp_path):
    # The first start gets as far as the lock backend's group, then is refused; fixing the
    # file is enough: the next start serves (no stale membership, no held state directory).
    refused = run_worker(tmp_path, "[keystone_authtoken]\nauth_type = nosuchplugin")
    assert_one_line_naming(refused, "[keystone_authtoken]", "nosuchplugin")
    conf = tmp_path / "worker.conf"
    conf.write_text(conf.read_text().replace("auth_type = nosuchplugin", ""))
    notify = tempfile.mkdtemp(prefix="mp-notify-")
    log = tmp_path / "worker.log"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, open(log, "wb") as out:
        sock.bind(os.path.join(notify, "notify"))
        sock.settimeout(READY_TIMEOUT)
        worker = subprocess.Popen(
            [sys.executable, "-m", "manila_protector.worker.service", "--config-file",
             str(conf)], stdout=out, stderr=subprocess.STDOUT,
            env=dict(os.environ, NOTIFY_SOCKET=os.path.join(notify, "notify")))
        try:
            told = sock.recv(64)
        except TimeoutError:
            told = b"(nothing)"
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(READY_TIMEOUT)
    shutil.rmtree(notify)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
    assert told == b"READY=1", tail
    assert worker.returncode == 0, tail


def test_manage_names_a_bad_option_in_one_line_too(tmp_path):
    path = tmp_path / "manage.conf"
    path.write_text(f"[database]\nconnection = sqlite:///{tmp_path}/jobs.sqlite\n"
                    "max_pool_size = many\n")
    proc = subprocess.run([sys.executable, "-m", "manila_protector.worker.manage",
                           "--config-file", str(path), "db", "version"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 78
    assert "Traceback" not in proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1] == (
        "manila-protector-manage: [database] max_pool_size: "
        "invalid literal for int() with base 10: 'many'")
