"""The worker as systemd runs it: ``Type=notify`` readiness, and SIGTERM when idle.

The worker process gets ``NOTIFY_SOCKET`` naming a datagram socket this test
reads, as systemd's would be.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import uuid

import pytest

from manila_protector import exception
from manila_protector.worker import service as service_mod
#: Seconds a test waits for the worker to say READY=1, or to exit.
WAIT = 60.0

pytestmark = pytest.mark.functional


@contextlib.contextmanager
def notify_socket():
    """A datagram socket as systemd's ``NOTIFY_SOCKET`` (a short path: AF_UNIX limit)."""
    with tempfile.TemporaryDirectory(prefix="mp-notify-") as directory:
        path = os.path.join(directory, "notify")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(path)
            sock.settimeout(WAIT)
            yield path, sock


def receive_until(sock: socket.socket, state: str) -> list[str]:
    """What the worker told systemd, up to and including ``state``."""
    told = []
    while state not in told:
        try:
            told.extend(sock.recv(4096).decode().split("\n"))
        except TimeoutError:
            raise AssertionError(f"no {state} within {WAIT:g} s; told {told}") from None
    return told


def start(config, notify_path: str) -> subprocess.Popen:
    env = dict(os.environ, NOTIFY_SOCKET=notify_path, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "manila_protector.worker.service", "--config-file",
         str(config.path)], env=env, stdin=subprocess.DEVNULL,
        stdout=open(config.log_path, "ab"), stderr=subprocess.STDOUT)


@pytest.fixture
def process():
    started: list[subprocess.Popen] = []
    yield started.append
    for popen in started:
        if popen.poll() is None:
            popen.kill()
            popen.wait(WAIT)


def test_worker_says_ready_once_its_rpc_server_consumes_then_stops_on_sigterm(
        make_standin, workers, make_client, ctxt, process):
    config = workers.configure(make_standin())
    with notify_socket() as (path, sock):
        worker = start(config, path)
        process(worker)
        told = receive_until(sock, "READY=1")
        assert worker.poll() is None
        assert told == ["READY=1"]
        # READY=1 came after the RPC server started consuming: a request sent now is
        # answered by the runner (this job does not exist), not left in a queue.
        with pytest.raises(exception.NotFound):
            make_client().get_job(ctxt, str(uuid.uuid4()), server=config.host)

        worker.send_signal(signal.SIGTERM)
        assert worker.wait(WAIT) == 0
        assert receive_until(sock, "STOPPING=1") == ["STOPPING=1"]
    log = config.log_path.read_text(errors="replace")
    assert f"worker {config.host} stopped" in log
    assert "Traceback" not in log


def test_a_stopped_worker_starts_again_on_the_same_host(make_standin, workers, make_client,
                                                          ctxt, process):
    # systemctl restart: the second process joins the topic's group under the same host
    # name and serves.
    config = workers.configure(make_standin())
    for _ in range(2):
        with notify_socket() as (path, sock):
            worker = start(config, path)
            process(worker)
            receive_until(sock, "READY=1")
            with pytest.raises(exception.NotFound):
                make_client().get_job(ctxt, str(uuid.uuid4()), server=config.host)
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(WAIT) == 0


def test_a_configuration_error_tells_systemd_nothing_and_exits_78(make_standin, workers,
                                                                  process):
    config = workers.configure(make_standin(), options={"worker": {"max_queued_jobs": "lots"}})
    with notify_socket() as (path, sock):
        worker = start(config, path)
        process(worker)
        assert worker.wait(WAIT) == service_mod.EXIT_CONFIG == 78
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            sock.recv(4096)  # no READY=1: systemd sees the start fail
    last = config.log_path.read_text().strip().splitlines()[-1]
    assert last.startswith("manila-protector-worker: [worker] max_queued_jobs: ")

