"""Tokens at rest: encrypted, gone from the SQLite files when the job ends (also after a
kill -9 and a restart), and the key file of a single-host store."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import stat
import subprocess
import sys
import threading
import typing

import pytest
from cryptography import fernet
from oslo_config import cfg

from manila_protector import opts
from manila_protector.worker.store import api as store_api
from manila_protector.worker.store import schema
from manila_protector.worker.store import tokens

from support import store_child

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _store(directory: pathlib.Path, key: str) -> store_api.JobStore:
    return store_api.JobStore.from_url(f"sqlite:///{directory}/jobs.sqlite", token_keys=[key])


def _database_files(directory: pathlib.Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in directory.iterdir()
            if path.name.startswith("jobs.sqlite")}


def _secrets_left(directory: pathlib.Path, secrets: list[str]) -> list[tuple[str, str]]:
    """``(file, secret)`` for every secret still in the database's files."""
    return [(name, secret) for name, data in _database_files(directory).items()
            for secret in secrets if secret.encode() in data]


class Child:
    """``python -m support.store_child`` on a store: a worker process to kill -9."""

    def __init__(self, directory: pathlib.Path, key: str, mode: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT / "tests"),
                   **{store_child.KEY_ENV: key})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "support.store_child",
             f"sqlite:///{directory}/jobs.sqlite", "child-worker", mode],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
        self.jobs: list[dict[str, str]] = []

    def read_until(self, done: typing.Callable[[dict], bool]) -> dict[str, str]:
        """Read the child's lines until ``done(line)``; a watchdog kills a silent child."""
        watchdog = threading.Timer(120, self.process.kill)
        watchdog.start()
        try:
            for raw in self.process.stdout:
                line = json.loads(raw)
                if "job_id" in line:
                    self.jobs.append(line)
                if done(line):
                    return line
        finally:
            watchdog.cancel()
        raise AssertionError(f"the child ended ({self.process.wait()}) before it was done")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(timeout=60) == -signal.SIGKILL
        self.process.stdout.close()
        self.process.stdin.close()

    @property
    def secrets(self) -> list[str]:
        return [value for job in self.jobs for value in (job["token"], job["ciphertext"])]


@pytest.fixture
def migrated_dir(sqlite_dir, store_key):
    store = _store(sqlite_dir, store_key)
    schema.upgrade(store.database)
    store.close()
    return sqlite_dir


def _restart_and_finish(directory: pathlib.Path, key: str) -> list[str]:
    """What a restarted worker does: finish every unfinished job; returns their secrets."""
    store = _store(directory, key)
    try:
        secrets = []
        for job_id in store.unfinished("child-worker"):
            stored = store.begin(job_id, "child-worker")
            assert stored.auth_token is not None  # the kill lost no token
            secrets += [stored.auth_token, store_child.stored_ciphertext(store, job_id)]
            store.finish(job_id, "child-worker", result={"resumed": True})
        return secrets
    finally:
        store.close()


def test_sqlite_store_uses_a_rollback_journal_not_a_wal(migrated_dir, store_key):
    store = _store(migrated_dir, store_key)
    try:
        with store.database.engine().connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"
            assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    finally:
        store.close()
    assert stat.S_IMODE((migrated_dir / "jobs.sqlite").stat().st_mode) == 0o600


def test_a_finished_jobs_token_is_in_no_database_file(migrated_dir, store_key):
    store = _store(migrated_dir, store_key)
    try:
        job = store_child.request()
        token = "needle-token-finished-123"
        store.accept(job, owner="w", project_id="p", context={}, auth_token=token, host="h",
                     request_id=None)
        store.accept(job, owner="w", project_id="p", context={}, auth_token=token + "-2",
                     host="h", request_id=None)  # a refresh: the first ciphertext replaced
        ciphertext = store_child.stored_ciphertext(store, job.job_id)
        store.begin(job.job_id, "w")
        assert _secrets_left(migrated_dir, [ciphertext]) == [("jobs.sqlite", ciphertext)]
        assert _secrets_left(migrated_dir, [token]) == []  # never in clear
        store.finish(job.job_id, "w", result={})
    finally:
        store.close()
    assert _secrets_left(migrated_dir, [token, token + "-2", ciphertext]) == []


def test_a_token_is_gone_from_disk_after_a_kill_mid_job_and_a_restart(migrated_dir,
                                                                      store_key):
    child = Child(migrated_dir, store_key, "hold")
    held = child.read_until(lambda line: "holding" in line)["holding"]
    child.kill()
    held_ciphertext = next(j["ciphertext"] for j in child.jobs if j["job_id"] == held)
    # The held job's token survived the kill (encrypted), the finished ones' did not.
    assert _secrets_left(migrated_dir, child.secrets) == [("jobs.sqlite", held_ciphertext)]
    resumed = _restart_and_finish(migrated_dir, store_key)
    assert held_ciphertext in resumed
    assert _secrets_left(migrated_dir, child.secrets + resumed) == []


@pytest.mark.parametrize("jobs_before_the_kill", [1, 7, 25])
def test_a_token_is_gone_from_disk_after_a_kill_at_any_point_and_a_restart(
        migrated_dir, store_key, jobs_before_the_kill):
    child = Child(migrated_dir, store_key, "loop")
    child.read_until(lambda line: len(child.jobs) >= jobs_before_the_kill)
    child.kill()  # somewhere in accept, begin, finish or mark_notified of a job
    resumed = _restart_and_finish(migrated_dir, store_key)
    assert _secrets_left(migrated_dir, child.secrets + resumed) == []
    assert [name for name in _database_files(migrated_dir)] == ["jobs.sqlite"]


# -- keys -----------------------------------------------------------------------------


def _conf(state_path: pathlib.Path, **worker: object) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([])
    conf.set_override("state_path", str(state_path))
    for name, value in worker.items():
        conf.set_override(name, value, group="worker")
    return conf


def test_a_single_host_store_generates_its_key_file_once(sqlite_dir):
    conf = _conf(sqlite_dir)
    first = store_api.JobStore.from_conf(conf)
    try:
        schema.upgrade(first.database)
        job = store_child.request()
        first.accept(job, owner="w", project_id="p", context={}, auth_token="kept",
                     host="h", request_id=None)
    finally:
        first.close()
    key_file = sqlite_dir / "token.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert (sqlite_dir / "job-store.sqlite").exists()  # the default [database] connection
    again = store_api.JobStore.from_conf(conf)  # a restart
    try:
        assert again.load(job.job_id).auth_token == "kept"
    finally:
        again.close()


def test_workers_starting_together_agree_on_one_key(sqlite_dir):
    path = str(sqlite_dir / "token.key")
    barrier = threading.Barrier(8)
    ciphers = []

    def start():
        barrier.wait(timeout=30)
        ciphers.append(tokens.TokenCipher.from_key_file(path))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    ciphertext = ciphers[0].encrypt("t")
    assert len(ciphers) == 8 and all(c.decrypt(ciphertext) == "t" for c in ciphers)
    assert [p.name for p in sqlite_dir.iterdir()] == ["token.key"]


def test_a_key_file_others_can_read_is_refused(sqlite_dir):
    path = sqlite_dir / "token.key"
    path.write_bytes(fernet.Fernet.generate_key())
    path.chmod(0o640)
    with pytest.raises(ValueError, match="make it 0600"):
        tokens.TokenCipher.from_key_file(str(path))


def test_a_shared_database_without_configured_keys_is_refused(sqlite_dir):
    conf = _conf(sqlite_dir)
    conf.set_override("connection", "postgresql+psycopg2://u@127.0.0.1/x", group="database")
    with pytest.raises(ValueError, match="token_keys must be set"):
        store_api.JobStore.from_conf(conf)


def test_a_malformed_key_is_refused_without_being_shown(sqlite_dir):
    conf = _conf(sqlite_dir, token_keys=[fernet.Fernet.generate_key().decode(),
                                         "not-a-key-s3cr3t"])
    with pytest.raises(ValueError) as caught:
        store_api.JobStore.from_conf(conf)
    assert "entry 2" in str(caught.value) and "s3cr3t" not in str(caught.value)
    assert "TokenCipher with 1 key(s)" in repr(tokens.TokenCipher([fernet.Fernet.generate_key()]))
