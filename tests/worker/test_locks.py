"""Per-share locks on real tooz backends: file:// in a temporary directory and the real Redis."""

import logging
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest
import redis
from redis import backoff as redis_backoff
from redis import retry as redis_retry

from manila_protector import exception
from manila_protector.worker import backend_url as backend_url_mod
from manila_protector.worker import locks

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
LOG_NAME = "manila_protector.worker.locks"
LOCK_WAIT = 0.2
# Room for thread start-up and a loaded CI machine on top of the deadlines under test.
MARGIN = 2.0
# redis-py polls a busy lock every 0.1 s and gives up when its next poll would pass the deadline.
REDIS_POLL = 0.1


def new_share_id():
    return str(uuid.uuid4())


def redis_client(port=REDIS_PORT):
    return redis.Redis(host=REDIS_HOST, port=port, socket_timeout=1, socket_connect_timeout=1,
                       retry=redis_retry.Retry(redis_backoff.NoBackoff(), 0))


def require(available, what):
    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required under CI")
    pytest.skip(f"{what} is not available")


def redis_answers(port=REDIS_PORT):
    try:
        return redis_client(port).ping()
    except redis.RedisError:
        return False


def redis_key(lock_name):
    # tooz's redis driver keeps a lock under "<namespace>_<name>_lock", namespace "_tooz".
    return b"_tooz_" + lock_name + b"_lock"


@pytest.fixture
def make_locks():
    """Build and start ShareLocks; stop all of them at teardown."""
    made = []

    def make(url, member_id=None, *, lock_wait=LOCK_WAIT, backend_timeout=5.0, start=True):
        share_locks = locks.ShareLocks(url, member_id or f"member-{uuid.uuid4()}",
                                       lock_wait=lock_wait, backend_timeout=backend_timeout)
        made.append(share_locks)
        if start:
            share_locks.start()
        return share_locks

    yield make
    for share_locks in made:
        share_locks.stop()


def file_backend(tmp_path):
    """A file:// backend in a directory of the test's own (the worker's lock_path)."""
    (tmp_path / "locks").mkdir(exist_ok=True)
    return f"file://{tmp_path}/locks"


@pytest.fixture
def file_url(tmp_path):
    return file_backend(tmp_path)


@pytest.fixture
def redis_url():
    require(redis_answers(), f"Redis on {REDIS_HOST}:{REDIS_PORT}")
    return f"redis://{REDIS_HOST}:{REDIS_PORT}"


@pytest.fixture(params=["file", pytest.param("redis", marks=pytest.mark.functional)])
def backend_url(request, tmp_path):
    """Every behaviour both drivers must share runs against both."""
    if request.param == "file":
        return file_backend(tmp_path)
    return request.getfixturevalue("redis_url")


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of our own on a free port, so a test may kill it."""
    binary = shutil.which("redis-server")
    require(binary, "redis-server")
    with socket.socket() as probe:
        probe.bind((REDIS_HOST, 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", REDIS_HOST, "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not redis_answers(port):
        assert proc.poll() is None, "redis-server exited at start-up"
        assert time.monotonic() < deadline, "redis-server did not answer within 10 s"
        threading.Event().wait(0.05)
    yield proc, f"redis://{REDIS_HOST}:{port}"
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


class Holder:
    """Holds a share's lock in a background thread until told to let go."""

    def __init__(self, share_locks, share_id):
        self.share_locks = share_locks
        self.share_id = share_id
        self.entered = threading.Event()
        self.leave = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            with self.share_locks.hold(self.share_id):
                self.entered.set()
                self.leave.wait(30)
        except Exception as exc:  # noqa: BLE001 - reported by __enter__
            self.error = exc
            self.entered.set()

    def __enter__(self):
        self.thread.start()
        assert self.entered.wait(10), "holder never got the lock"
        assert self.error is None, self.error
        return self

    def __exit__(self, *exc_info):
        self.leave.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


def assert_busy(share_locks, share_id, lock_wait=LOCK_WAIT):
    ran = []
    began = time.monotonic()
    with pytest.raises(exception.ShareBusy) as caught:
        with share_locks.hold(share_id):
            ran.append(True)
    waited = time.monotonic() - began
    assert ran == []
    assert lock_wait - REDIS_POLL <= waited < lock_wait + MARGIN
    assert caught.value.details["share_id"] == share_id
    assert caught.value.retryable
    assert re.fullmatch(rf"share {share_id} is busy: another job holds its lock "
                        r"\(waited \d+\.\d s\)", str(caught.value))


# ---------------------------------------------------------------- every driver


def test_hold_yields_an_owned_lock_and_releases_it_on_exit(backend_url, make_locks):
    share_locks = make_locks(backend_url, lock_wait=0)
    share_id = new_share_id()
    with share_locks.hold(share_id) as held:
        assert held.share_id == share_id
        assert held.name == locks.ShareLocks.lock_name(share_id)
        assert held.still_owned()
    assert not held.still_owned()
    with share_locks.hold(share_id) as again:
        assert again.still_owned()


def test_second_job_on_same_share_in_another_thread_gets_share_busy(backend_url, make_locks):
    share_locks = make_locks(backend_url)
    share_id = new_share_id()
    with Holder(share_locks, share_id):
        assert_busy(share_locks, share_id)


def test_another_member_cannot_hold_a_held_share(backend_url, make_locks):
    first = make_locks(backend_url, "worker-1")
    second = make_locks(backend_url, "worker-2")
    share_id = new_share_id()
    with first.hold(share_id):
        assert_busy(second, share_id)
    with second.hold(share_id):
        assert_busy(first, share_id)


def test_locks_are_not_reentrant_in_the_same_thread(backend_url, make_locks):
    share_locks = make_locks(backend_url)
    share_id = new_share_id()
    with share_locks.hold(share_id) as held:
        assert_busy(share_locks, share_id)
        assert held.still_owned()


def test_jobs_on_different_shares_hold_their_locks_at_the_same_time(backend_url, make_locks):
    share_locks = make_locks(backend_url)
    inside = {"a": threading.Event(), "b": threading.Event()}
    saw_other = {}

    def job(me, other):
        with share_locks.hold(f"{me}-{uuid.uuid4()}"):
            inside[me].set()
            saw_other[me] = inside[other].wait(10)

    threads = [threading.Thread(target=job, args=pair) for pair in (("a", "b"), ("b", "a"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert saw_other == {"a": True, "b": True}


def test_waiting_job_gets_the_lock_when_the_holder_releases_it(backend_url, make_locks):
    share_locks = make_locks(backend_url, lock_wait=10)
    share_id = new_share_id()
    got_it = threading.Event()

    def waiter():
        with share_locks.hold(share_id) as held:
            if held.still_owned():
                got_it.set()

    with Holder(share_locks, share_id):
        thread = threading.Thread(target=waiter)
        thread.start()
    assert got_it.wait(10)
    thread.join(10)


def test_body_error_propagates_and_the_lock_is_released(backend_url, make_locks, caplog):
    share_locks = make_locks(backend_url, lock_wait=0)
    share_id = new_share_id()
    caplog.set_level(logging.WARNING, logger=LOG_NAME)
    with pytest.raises(RuntimeError, match="job failed"):
        with share_locks.hold(share_id):
            raise RuntimeError("job failed")
    with share_locks.hold(share_id) as held:
        assert held.still_owned()
    assert "lock may have been lost" not in caplog.text


def test_hold_before_start_or_after_stop_is_unavailable_and_never_runs_the_body(
        backend_url, make_locks):
    share_locks = make_locks(backend_url, start=False)
    ran = []
    with pytest.raises(exception.LockUnavailable):
        with share_locks.hold(new_share_id()):
            ran.append("before start")
    share_locks.start()
    share_locks.start()  # a second start is a no-op
    share_locks.stop()
    share_locks.stop()  # so is a second stop
    with pytest.raises(exception.LockUnavailable):
        with share_locks.hold(new_share_id()):
            ran.append("after stop")
    assert ran == []


# ---------------------------------------------------------------- file driver


HOLDER_PROCESS = """
import sys
from manila_protector.worker import locks
share_locks = locks.ShareLocks(sys.argv[1], "other-process", lock_wait=10, backend_timeout=20)
share_locks.start()
with share_locks.hold(sys.argv[2]):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_lock_held_by_another_process_is_busy_until_that_process_is_killed(
        file_url, make_locks, tmp_path):
    share_id = new_share_id()
    with open(tmp_path / "holder.err", "w+") as err:
        proc = subprocess.Popen([sys.executable, "-c", HOLDER_PROCESS, file_url, share_id],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                text=True)
        try:
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            line = proc.stdout.readline() if ready else ""
            err.seek(0)
            assert line == "held\n", err.read()

            assert_busy(make_locks(file_url), share_id)

            kill(proc)
            with make_locks(file_url, lock_wait=10).hold(share_id) as held:
                assert held.still_owned()
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            proc.stdin.close()
            proc.stdout.close()


def test_hostile_share_ids_lock_files_stay_inside_the_lock_directory(
        file_url, make_locks, tmp_path):
    share_locks = make_locks(file_url, lock_wait=0)
    hostile = ["../../etc", "../escape", "a/b", "..", ".", "x" * 5000, "sp ace", "\u00e9t\u00e9"]
    for share_id in hostile:
        with share_locks.hold(share_id) as held:
            assert held.still_owned()
    assert sorted(os.listdir(tmp_path)) == ["locks"]
    lock_files = set(os.listdir(tmp_path / "locks"))
    for share_id in hostile:
        assert locks.ShareLocks.lock_name(share_id).decode() in lock_files


# ---------------------------------------------------------------- lock names


def test_lock_names_are_deterministic_bytes_distinct_per_share():
    ids = [new_share_id() for _ in range(50)] + ["../../etc", "..", "a/b", "a.b", "x" * 10000,
                                                  "x" * 10001, "sha256.abc", "\n", "\u00e9"]
    names = [locks.ShareLocks.lock_name(share_id) for share_id in ids]
    assert len(set(names)) == len(ids)
    for share_id, name in zip(ids, names):
        assert isinstance(name, bytes)
        assert name == locks.ShareLocks.lock_name(share_id)
        assert name.startswith(b"manila_protector.share.")
        assert b"/" not in name and b".." not in name
        assert len(name) < 128
        assert name.decode("ascii")


def test_lock_names_show_manila_uuids_and_ignore_their_case():
    share_id = "3f1c2a9e-5b7d-4c1e-9a0b-1234567890ab"
    assert locks.ShareLocks.lock_name(share_id) == b"manila_protector.share." + share_id.encode()
    assert locks.ShareLocks.lock_name(share_id.upper()) == locks.ShareLocks.lock_name(share_id)


@pytest.mark.parametrize("share_id", ["", None, b"bytes-id"])
def test_lock_name_rejects_empty_and_non_string_ids(share_id):
    with pytest.raises(ValueError):
        locks.ShareLocks.lock_name(share_id)


# ---------------------------------------------------------------- URLs and secrets


@pytest.mark.parametrize(("url", "masked"), [
    ("redis://:s3cret@h:6379", "redis://***@h:6379"),
    ("redis://admin:s3cret@h:6379?lock_timeout=30", "redis://***@h:6379?lock_timeout=30"),
    ("redis://h:26379?sentinel=m&sentinel_password=s3cret", "redis://h:26379?sentinel=m&sentinel_password=***"),
    ("file:///var/lib/manila_protector/locks", "file:///var/lib/manila_protector/locks"),
])
def test_mask_url_hides_userinfo_and_password_options(url, masked):
    assert backend_url_mod.mask_url(url) == masked


def test_unreachable_backend_message_never_shows_the_password(make_locks, caplog):
    caplog.set_level(logging.DEBUG, logger=LOG_NAME)
    share_locks = make_locks("redis://admin:s3cret@127.0.0.1:1?sentinel=main&sentinel_password=t0ken",
                             backend_timeout=0.5, start=False)
    with pytest.raises(exception.LockUnavailable) as caught:
        share_locks.start()
    shown = [str(caught.value), repr(caught.value.to_dict()), repr(share_locks),
             share_locks.backend, caplog.text, str(caught.value.__cause__)]
    for text in shown:
        assert "s3cret" not in text and "t0ken" not in text and "admin" not in text
    assert "redis://***@127.0.0.1:1" in str(caught.value)


def test_redis_url_gets_a_default_socket_timeout_unless_it_sets_one():
    assert backend_url_mod.with_driver_defaults("redis://h:6379", 20) == (
        "redis://h:6379?socket_timeout=5&socket_connect_timeout=5")
    assert backend_url_mod.with_driver_defaults("redis://h:6379?lock_timeout=30", 2) == (
        "redis://h:6379?lock_timeout=30&socket_timeout=2&socket_connect_timeout=2")
    assert backend_url_mod.with_driver_defaults("redis://h?socket_timeout=1&socket_connect_timeout=3",
                                       20) == "redis://h?socket_timeout=1&socket_connect_timeout=3"
    # The driver's own "timeout" already sets the socket timeout.
    assert backend_url_mod.with_driver_defaults("redis://h?timeout=10", 20) == (
        "redis://h?timeout=10&socket_connect_timeout=5")
    assert backend_url_mod.with_driver_defaults("file:///x", 20) == "file:///x"


def test_unknown_backend_scheme_is_a_configuration_error():
    with pytest.raises(ValueError, match="no driver 'nosuch'"):
        locks.ShareLocks("nosuch://:s3cret@h", "m", lock_wait=1, backend_timeout=20)


@pytest.mark.parametrize("kwargs", [{"lock_wait": -1, "backend_timeout": 20},
                                    {"lock_wait": 1, "backend_timeout": 0}])
def test_negative_waits_are_rejected(kwargs):
    with pytest.raises(ValueError):
        locks.ShareLocks("file:///tmp/x", "m", **kwargs)


# ---------------------------------------------------------------- redis driver


@pytest.mark.functional
def test_heartbeats_keep_a_redis_lock_owned_beyond_its_ttl(redis_url, make_locks):
    url = redis_url + "?lock_timeout=2"
    share_locks = make_locks(url)
    other = make_locks(url)
    share_id = new_share_id()
    client = redis_client()
    with share_locks.hold(share_id) as held:
        key = redis_key(held.name)
        # Owned past its 2 s TTL: wait (bounded) until the key has outlived one whole
        # TTL from its first reading, checking at every read that it is still ours.
        first_ttl = client.pttl(key)
        assert 0 < first_ttl <= 2000
        outlived = time.monotonic() + first_ttl / 1000.0 + 0.5
        deadline = outlived + 10.0
        renewed, previous = False, first_ttl
        while not (renewed and time.monotonic() > outlived):
            assert time.monotonic() < deadline, "the lock was not renewed past its TTL"
            assert held.still_owned()
            ttl = client.pttl(key)
            assert 0 < ttl <= 2000
            renewed = renewed or ttl > previous  # a TTL that went up was renewed
            previous = ttl
            threading.Event().wait(0.05)
        assert_busy(other, share_id, lock_wait=0)
    assert client.exists(key) == 0


@pytest.mark.functional
def test_lost_redis_lock_is_reported_and_does_not_mask_the_body_error(
        redis_url, make_locks, caplog):
    share_locks = make_locks(redis_url)
    caplog.set_level(logging.WARNING, logger=LOG_NAME)
    with pytest.raises(RuntimeError, match="job failed"):
        with share_locks.hold(new_share_id()) as held:
            redis_client().delete(redis_key(held.name))
            assert not held.still_owned()
            raise RuntimeError("job failed")
    assert "lock may have been lost" in caplog.text


@pytest.mark.functional
def test_a_lock_redis_forgot_stops_the_job_before_its_next_mutation(
        redis_url, make_locks, caplog):
    share_locks = make_locks(redis_url, lock_wait=LOCK_WAIT)
    share_id = new_share_id()
    caplog.set_level(logging.WARNING, logger=LOG_NAME)
    with share_locks.hold(share_id) as held:
        held.ensure("the first request")
        redis_client().delete(redis_key(held.name))  # what a restart without persistence does
        assert not held.still_owned()
        # Not taken back: another job may have held the share meanwhile.
        with pytest.raises(exception.LockUnavailable) as info:
            held.ensure("the next request")
        assert info.value.retryable and info.value.details["lost"] is True
        assert "the next request" in str(info.value)
        assert not held.still_owned()
    assert "stopping the job" in caplog.text


@pytest.mark.functional
def test_a_lost_lock_another_job_took_stops_the_next_mutation(redis_url, make_locks):
    share_locks = make_locks(redis_url, lock_wait=LOCK_WAIT)
    other = make_locks(redis_url, lock_wait=0)
    share_id = new_share_id()
    with share_locks.hold(share_id) as held:
        redis_client().delete(redis_key(held.name))
        with Holder(other, share_id):
            with pytest.raises(exception.LockUnavailable, match="another job may have") as info:
                held.ensure("deleting snapshot x")
    assert info.value.retryable
    assert "deleting snapshot x" in str(info.value)
    with pytest.raises(exception.LockUnavailable, match="released"):
        held.ensure("anything after the release")


@pytest.mark.functional
def test_unreachable_redis_fails_start_within_backend_timeout(make_locks):
    share_locks = make_locks(f"redis://{REDIS_HOST}:1", backend_timeout=1.0, start=False)
    began = time.monotonic()
    with pytest.raises(exception.LockUnavailable) as caught:
        share_locks.start()
    assert time.monotonic() - began < 1.0 + MARGIN
    assert caught.value.retryable
    ran = []
    with pytest.raises(exception.LockUnavailable):
        with share_locks.hold(new_share_id()):
            ran.append(True)
    assert ran == []


@pytest.mark.functional
def test_redis_dying_makes_hold_unavailable_within_deadline_and_never_runs_body(
        private_redis, make_locks):
    proc, url = private_redis
    share_locks = make_locks(url, backend_timeout=1.0)
    kill(proc)
    ran = []
    began = time.monotonic()
    with pytest.raises(exception.LockUnavailable) as caught:
        with share_locks.hold(new_share_id()):
            ran.append(True)
    assert time.monotonic() - began < LOCK_WAIT + 1.0 + MARGIN
    assert ran == []
    assert "did not answer" in str(caught.value) or "failed to acquire" in str(caught.value)


@pytest.mark.functional
def test_redis_dying_while_held_is_reported_at_release_and_stop_still_returns(
        private_redis, make_locks, caplog):
    proc, url = private_redis
    share_locks = make_locks(url, backend_timeout=1.0)
    caplog.set_level(logging.WARNING, logger=LOG_NAME)
    with pytest.raises(RuntimeError, match="job failed"):
        with share_locks.hold(new_share_id()) as held:
            kill(proc)
            assert not held.still_owned()
            raise RuntimeError("job failed")
    assert "lock may have been lost" in caplog.text
    began = time.monotonic()
    share_locks.stop()
    assert time.monotonic() - began < 1.0 + MARGIN


def test_a_host_joins_again_after_its_last_process_left_without_leaving(backend_url,
                                                                       make_locks):
    # A worker killed (or refused at start) stays a member; the next process of the same
    # host must be able to join (the file driver cannot update a member's capabilities).
    gone = make_locks(backend_url, "host-a")
    gone.join("manila_protector.t", {"store": "old"})
    again = make_locks(backend_url, "host-a")
    again.join("manila_protector.t", {"store": "new"})
    assert again.members("manila_protector.t") == {"host-a": {"store": "new"}}

