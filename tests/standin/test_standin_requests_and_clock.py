"""The request log, the clocks, direct helpers and the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import pytest
import requests

from manila_standin import ManilaStandIn, ManualClock, RealClock, StandInConfig
from manila_standin import __main__ as cli


def test_every_request_is_recorded_with_what_a_user_sent(standin, client, project_id):
    standin.reset_requests()
    share = standin.create_share(project_id)
    client.shares.list(search_opts={"limit": 5})
    client.share_snapshots.create(share["id"])
    listed, created = standin.requests()
    assert (listed.method, listed.path, listed.route) == ("GET", "/v2/shares/detail",
                                                          "/shares/detail")
    assert listed.query == {"is_public": "True", "limit": "5"}
    assert (listed.status, listed.mutating) == (200, False)
    assert (listed.project_id, listed.microversion) == (project_id, "2.98")
    assert (created.method, created.path, created.status, created.mutating) == (
        "POST", "/v2/snapshots", 202, True
    )
    assert created.time == standin.clock.now()


def test_count_requests_by_method_prefix_and_mutation(standin, client, project_id):
    share = standin.create_share(project_id)
    standin.reset_requests()
    client.shares.get(share["id"])
    client.shares.get(share["id"])
    client.share_snapshots.create(share["id"])
    client.shares.set_metadata(share["id"], {"a": "b"})
    assert standin.count_requests() == 4
    assert standin.count_requests(method="get") == 2
    assert standin.count_requests(path_prefix="/shares") == 3
    assert standin.count_requests(path_prefix="/v2/snapshots") == 1
    assert standin.count_requests(mutating=True) == 2
    assert standin.count_requests(method="POST", path_prefix="/snapshots") == 1
    standin.reset_requests()
    assert standin.requests() == []


def test_requests_with_project_in_url_count_under_the_route(standin, http, project_id):
    standin.reset_requests()
    http("GET", f"/v2/{project_id}/shares", token=f"u:{project_id}")
    assert standin.count_requests(path_prefix="/shares") == 1


def test_manual_clock_moves_only_forward():
    clock = ManualClock(start=100.0)
    clock.advance(2.5)
    assert clock.now() == 102.5
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_real_clock_runs_scaled_and_can_jump():
    clock = RealClock(time_scale=1000.0, start=0.0)
    first = clock.now()
    clock.advance(50)
    assert clock.now() >= first + 50
    with pytest.raises(ValueError):
        RealClock(time_scale=0)


def test_time_scale_makes_a_long_delay_pass(project_id):
    config = StandInConfig(time_scale=1_000_000.0)
    config.delays.snapshot_create = 60
    with ManilaStandIn(config) as standin:
        share = standin.create_share(project_id)
        ctx_token = f"u:{project_id}"
        answer = requests.post(
            standin.endpoint + "/snapshots",
            json={"snapshot": {"share_id": share["id"]}},
            headers={"X-Auth-Token": ctx_token, "X-OpenStack-Manila-API-Version": "2.73"},
            timeout=30,
        )
        snapshot_id = answer.json()["snapshot"]["id"]
        assert answer.json()["snapshot"]["status"] == "creating"
        deadline = standin.clock.now() + 3600
        while standin.snapshot(snapshot_id)["status"] == "creating":
            assert standin.clock.now() < deadline
        assert standin.snapshot(snapshot_id)["status"] == "available"


def test_direct_helpers_seed_and_inspect(standin):
    project = uuid.uuid4().hex
    ids = standin.create_shares(project, 3, size=2, name="bulk-{i}")
    assert [s["name"] for s in standin.shares(project)] == ["bulk-0", "bulk-1", "bulk-2"]
    standin.set_share_status(ids[0], "error")
    assert standin.share(ids[0])["status"] == "error"
    snapshot = standin.create_snapshot(ids[1], metadata={"a": "b"})
    assert standin.snapshots(ids[1])[0]["metadata"] == {"a": "b"}
    standin.set_snapshot_status(snapshot["id"], "error")
    assert standin.snapshot(snapshot["id"])["status"] == "error"
    assert standin.quota_usage(project) == {
        "shares": 3, "gigabytes": 6, "snapshots": 1, "snapshot_gigabytes": 2
    }
    assert standin.share(str(uuid.uuid4())) is None


def test_stop_closes_the_port(clock):
    standin = ManilaStandIn(clock=clock).start()
    endpoint = standin.endpoint
    standin.stop()
    standin.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(endpoint.replace("/v2", "/"), timeout=5)


def test_cli_arguments_become_the_config():
    args = cli.build_parser().parse_args([
        "--port", "0", "--max-version", "2.80", "--snapshot-create-delay", "5",
        "--latency", "0.1", "--error-rate", "0.2", "--time-scale", "10",
    ])
    config = cli.config_from_args(args)
    assert (config.max_version, config.delays.snapshot_create) == ("2.80", 5.0)
    assert (config.latency, config.error_rate, config.time_scale) == (0.1, 0.2, 10.0)


def test_cli_serves_until_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "manila_standin", "--port", "0",
         "--log-level", "WARNING"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        first = process.stdout.readline()
        assert first.startswith("Manila stand-in endpoint: http://127.0.0.1:")
        endpoint = first.split(": ", 1)[1].strip()
        token_line = process.stdout.readline()
        token = token_line.split(": ", 1)[1].strip()
        answer = requests.get(endpoint + "/shares", headers={"X-Auth-Token": token}, timeout=10)
        assert answer.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
