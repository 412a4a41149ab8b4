"""``manila-protector``, the operator CLI, run as an operator runs it: a separate process
with the workers' configuration file, against worker processes on the real RabbitMQ,
asserting what it prints and its exit status."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import threading
import typing
import uuid

import kombu
import pytest

from manila_protector import progress as phases
from manila_standin import config as standin_config

from support import rabbit

pytestmark = pytest.mark.functional

#: Seconds a CLI command may take (it starts a Python process and talks to workers).
COMMAND_TIMEOUT = 120.0
#: Seconds to wait for what the workers were asked.
WAIT = 90.0
OPTIONS = {"snapshot_name": "cli", "description": "", "force": False}


class Cli:
    """Runs ``manila-protector`` with a worker's configuration file, as a project's user
    without Keystone (a noauth token ``alice:<project>``)."""

    def __init__(self, config_path: pathlib.Path, project: str, cwd: pathlib.Path) -> None:
        self.config_path = config_path
        self.token = f"alice:{project}"
        self.cwd = cwd
        self.env = {key: value for key, value in os.environ.items()
                    if not key.startswith("OS_")}
        self.env["PYTHONUNBUFFERED"] = "1"

    def argv(self, *args: str, identity: bool = True) -> list[str]:
        base = [sys.executable, "-m", "manila_protector.cli.shell",
                "--config-file", str(self.config_path)]
        if identity:
            base += ["--os-auth-type", "admin_token", "--os-token", self.token]
        return base + list(args)

    def __call__(self, *args: str, identity: bool = True,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.argv(*args, identity=identity), capture_output=True,
                              text=True, timeout=COMMAND_TIMEOUT, cwd=self.cwd,
                              env=dict(self.env, **(env or {})), stdin=subprocess.DEVNULL)
        # A user sees both streams: neither may ever show the token.
        assert self.token not in done.stdout + done.stderr
        return done

    def json(self, *args: str, **kwargs: typing.Any) -> typing.Any:
        done = self(*args, "-f", "json", **kwargs)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


@pytest.fixture
def worker_setup(make_standin, workers, tmp_path, project):
    """A stand-in with a share of the test's project and one worker; the CLI on its config."""
    standin = make_standin(standin_config.Delays(snapshot_create=1.5, share_create=1.0))
    share = standin.create_share(project, size=1, access_rules=[
        {"access_type": "ip", "access_to": "10.0.0.0/24", "access_level": "rw"}])
    config = workers.configure(standin)
    worker = workers.start(config)
    return standin, share, worker, Cli(config.path, project, tmp_path)


def test_protect_follows_its_job_to_the_end_then_restore_verify_and_delete_use_it(
        worker_setup):
    standin, share, _worker, cli = worker_setup

    protected = cli("protect", share["id"], "--name", "nightly", "-f", "json")

    assert protected.returncode == 0, protected.stderr
    record = json.loads(protected.stdout)
    assert record["status"] == "succeeded" and record["operation"] == "protect"
    assert record["result"]["snapshot_name"] == "nightly"
    progress = protected.stderr.splitlines()
    # Before the end, the job's phase (the worker records them) with how long it lasted.
    shown = {line.split("  ")[2].split(" for ")[0] for line in progress[:-1]}
    assert shown and shown <= set(phases.PHASES), progress
    assert any(" for " in line for line in progress[:-1]), progress
    assert "protect  succeeded  elapsed" in progress[-1]
    [snapshot] = standin.snapshots(share_id=share["id"])
    assert snapshot["id"] == record["result"]["snapshot_id"]

    restored = cli.json("restore", record["job_id"], "--name", "restored")
    new_share = standin.share(restored["result"]["share_id"])
    assert restored["status"] == "succeeded"
    assert new_share["name"] == "restored" and new_share["status"] == "available"
    assert [r["access_to"] for r in standin.access_rules(new_share["id"])] == ["10.0.0.0/24"]

    verified = cli("verify", record["job_id"], "-f", "value", "-c", "status")
    assert (verified.returncode, verified.stdout.strip()) == (0, "succeeded")

    deleted = cli.json("delete", record["job_id"])
    assert deleted["result"] == {"snapshot_id": snapshot["id"], "already_gone": False}
    assert standin.snapshots(share_id=share["id"]) == []

    # The snapshot is gone: a verify job now runs and fails -- exit status 1, its error shown.
    failed = cli("verify", record["job_id"], "-f", "json")
    assert failed.returncode == 1, failed.stderr
    assert json.loads(failed.stdout)["error"]["code"] == "not_found"


def test_no_wait_prints_the_job_id_and_job_show_and_list_find_it(worker_setup, make_client,
                                                                  ctxt):
    standin, share, _worker, cli = worker_setup
    other = standin.create_share(ctxt.project_id, size=1)

    accepted = cli("protect", share["id"], "--no-wait", "-f", "value", "-c", "job_id")
    second = cli("protect", other["id"], "--no-wait", "-f", "value", "-c", "job_id")

    assert accepted.returncode == 0 and second.returncode == 0, accepted.stderr
    job_id, other_id = accepted.stdout.strip(), second.stdout.strip()
    assert str(uuid.UUID(job_id)) == job_id
    client = make_client()
    for waited in (job_id, other_id):
        rabbit.wait_until(lambda w=waited: client.get_job(ctxt, w)["status"] == "succeeded",
                          WAIT, f"job {waited}")

    shown = cli.json("job", "show", job_id)
    assert (shown["job_id"], shown["share_id"], shown["status"]) == (
        job_id, share["id"], "succeeded")
    listed = cli.json("job", "list")
    assert {row["Job ID"] for row in listed} == {job_id, other_id}
    assert [row["Job ID"] for row in cli.json("job", "list", "--share", share["id"])] == [job_id]
    assert cli.json("job", "list", "--status", "failed") == []
    assert cli.json("job", "list", "--operation", "restore") == []
    first_page = cli.json("job", "list", "--limit", "1")
    second_page = cli.json("job", "list", "--limit", "1", "--marker", first_page[0]["Job ID"])
    assert {first_page[0]["Job ID"], second_page[0]["Job ID"]} == {job_id, other_id}
    assert cli.json("job", "list", "--since", "2999-01-01T00:00:00+00:00") == []


def test_events_follows_one_job_on_a_queue_of_its_own(worker_setup, notifications, broker):
    _standin, share, _worker, cli = worker_setup
    job_id = str(uuid.uuid4())
    events = subprocess.Popen(cli.argv("events", "--job", job_id, "-f", "json"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=cli.cwd, env=cli.env, stdin=subprocess.DEVNULL)
    try:
        # The listener says where it listens once its queue is bound.
        banner = _read_line(events.stderr, COMMAND_TIMEOUT)
        assert banner.startswith("listening on exchange "), banner
        assert "(durable: true)" in banner
        queue = banner.rsplit("queue ", 1)[1].strip()

        done = cli("protect", share["id"], "--job-id", job_id, "--no-wait")
        assert done.returncode == 0, done.stderr
        out, err = events.communicate(timeout=WAIT)
    finally:
        if events.poll() is None:
            events.kill()
            events.communicate()

    assert events.returncode == 0, err
    shown = [json.loads(line) for line in out.splitlines()]
    # .start, the .progress the rate limit let through (best effort), then .end.
    events_seen = [n["event_type"] for n in shown]
    assert events_seen[0] == "manila_protector.protect.start", events_seen
    assert events_seen[-1] == "manila_protector.protect.end", events_seen
    assert set(events_seen[1:-1]) <= {"manila_protector.protect.progress"}, events_seen
    assert all(n["payload"]["job_id"] == job_id for n in shown)
    assert shown[-1]["payload"]["status"] == "succeeded"
    assert cli.token not in out
    # Its own queue: the test's listener on the shared queues got them too, and the
    # CLI's queue is gone after it.
    notifications.collector.wait_for(lambda c: c.terminal(job_id), WAIT)
    assert not _queue_exists(queue)


def test_ping_lists_every_worker_of_the_topic(make_standin, workers, tmp_path, project):
    standin = make_standin()
    configs = [workers.configure(standin) for _ in range(2)]
    for config in configs:
        workers.start(config)
    cli = Cli(configs[0].path, project, tmp_path)

    done = cli("ping", "-f", "json")

    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert sorted(row["Host"] for row in rows) == sorted(c.host for c in configs)
    for row in rows:
        assert row["State"] == "ok" and row["Running"] == 0 and row["Queued"] == 0
        assert row["Version"] and row["Uptime"] > 0


def test_a_cloud_from_clouds_yaml_is_used(worker_setup, tmp_path):
    _standin, share, _worker, cli = worker_setup
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(f"clouds:\n  lab:\n    auth_type: admin_token\n"
                      f"    auth:\n      token: '{cli.token}'\n"
                      f"      endpoint: http://127.0.0.1:1/v2\n")

    done = cli("--os-cloud", "lab", "job", "list", "-f", "json", identity=False,
               env={"OS_CLIENT_CONFIG_FILE": str(clouds)})

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
    missing = cli("--os-cloud", "nowhere", "job", "list", identity=False,
                  env={"OS_CLIENT_CONFIG_FILE": str(clouds)})
    assert missing.returncode == 2
    assert "nowhere" in missing.stderr and "Traceback" not in missing.stderr


def test_oslo_messaging_ping_answers_when_rpc_ping_is_enabled(make_standin, workers,
                                                               make_client, ctxt):
    standin = make_standin()
    config = workers.configure(standin, options={"DEFAULT": {"rpc_ping_enabled": "true"}})
    worker = workers.start(config)
    client = make_client()

    answer = client._client.prepare(namespace=None, version="1.0", server=worker.host).call(
        ctxt, "oslo_rpc_server_ping")

    assert answer == "pong"
    status = client.ping(ctxt, server=worker.host)
    assert status["host"] == worker.host
    assert "NoSuchMethod" not in worker.log_tail(400)
    assert "Traceback" not in worker.log_tail(400)


def test_usage_refusals_and_connection_errors_exit_2_with_one_line(worker_setup, tmp_path):
    _standin, share, _worker, cli = worker_setup

    usage = cli("protect", "not-a-share")
    assert usage.returncode == 2
    assert "not a UUID: 'not-a-share'" in usage.stderr

    unknown = cli("job", "show", str(uuid.uuid4()))
    assert unknown.returncode == 2
    assert "[not_found]" in unknown.stderr and "Traceback" not in unknown.stderr

    no_token = cli("job", "list", identity=False)
    assert no_token.returncode == 2
    assert "[not_authorized]" in no_token.stderr or "[invalid_request]" in no_token.stderr

    dead_bus = tmp_path / "dead-bus.conf"
    dead_bus.write_text(cli.config_path.read_text().replace(
        rabbit.TRANSPORT_URL, "rabbit://guest:secret-password@127.0.0.1:1/"))
    unreachable = Cli(dead_bus, "p", tmp_path)("job", "list")
    assert unreachable.returncode == 2
    assert "[worker_unavailable]" in unreachable.stderr
    assert "secret-password" not in unreachable.stdout + unreachable.stderr

    version = cli("--version", identity=False)
    assert version.returncode == 0 and version.stdout.startswith("manila-protector ")


def _read_line(stream: typing.IO[str], timeout: float) -> str:
    """One line from a child's pipe, or fail after ``timeout`` seconds."""
    found: list[str] = []
    reader = threading.Thread(target=lambda: found.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    assert found, f"no line within {timeout:g} s"
    return found[0]


def _queue_exists(name: str) -> bool:
    with kombu.Connection(rabbit.KOMBU_URL, connect_timeout=5) as conn:
        with conn.channel() as channel:
            try:
                channel.queue_declare(name, passive=True)
            except conn.channel_errors:
                return False
            return True
