"""The worker as a process, started the way an operator starts it (its console script)."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys

from support import rabbit

START_TIMEOUT = 120.0


def worker_command() -> list[str]:
    script = pathlib.Path(sys.executable).with_name("manila-protector-worker")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "manila_protector.worker.service"]


def test_a_worker_starts_and_stops_without_any_eventlet_deprecation_warning(tmp_path):
    log = tmp_path / "worker.log"
    config = tmp_path / "worker.conf"
    # The in-memory broker: the worker starts, serves and stops on its own.
    config.write_text(
        "[DEFAULT]\n"
        "transport_url = kombu+memory:////\n"
        "host = worker-no-eventlet\n"
        f"state_path = {tmp_path / 'state'}\n"
        f"log_file = {log}\n"
        "[oslo_messaging_notifications]\n"
        "driver = messagingv2\n"
        "[coordination]\n"
        f"lock_path = {tmp_path / 'locks'}\n"
        "[manila]\n"
        "endpoint_override = http://127.0.0.1:9/v2\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    process = subprocess.Popen(worker_command() + ["--config-file", str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                               text=True)
    try:
        rabbit.wait_until(lambda: log.exists() and "serving topic" in log.read_text()
                          or process.poll() is not None, START_TIMEOUT, "the worker to start")
        assert process.poll() is None, process.communicate()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=START_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "worker worker-no-eventlet stopped" in log.read_text()
    assert "EventletDeprecationWarning" not in err
    assert "Eventlet is deprecated" not in err + out
