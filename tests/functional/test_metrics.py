"""``[metrics]``: a worker process's /metrics and /healthz, scraped over HTTP while it
runs jobs on the real RabbitMQ and Redis."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

import pytest
from prometheus_client import parser

from manila_standin import config as standin_config
from manila_standin import server as standin_server

from support import rabbit

pytestmark = pytest.mark.functional

OPTIONS = {"snapshot_name": "metrics", "description": "", "force": False}
WAIT = 90.0


def get(url: str) -> tuple[int, str]:
    """The status and body of a GET (an error status is an answer too)."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = get(url + "/metrics")
    assert status == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in parser.text_string_to_metric_families(text)
            for s in family.samples}


def value(found, name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


def metrics_worker(workers, standin, redis_url: str | None = None):
    port = standin_server.free_port()
    config = workers.configure(standin, redis_url=redis_url, options={
        "metrics": {"enabled": "true", "host": "127.0.0.1", "port": port}})
    worker = workers.start(config)
    return worker, f"http://127.0.0.1:{port}"


def test_metrics_count_jobs_manila_requests_polls_and_lock_waits(
        make_standin, workers, make_client, ctxt, project):
    standin = make_standin(standin_config.Delays(snapshot_create=1.0))
    share = standin.create_share(project, size=1)
    _worker, url = metrics_worker(workers, standin)
    client = make_client()

    protected = client.protect(ctxt, str(uuid.uuid4()), share["id"], OPTIONS)
    assert protected["status"] == "succeeded"
    failed = client.verify(ctxt, str(uuid.uuid4()), share["id"],
                           dict(protected["result"], snapshot_id=str(uuid.uuid4())))
    assert failed["status"] == "failed"

    found = samples(url)
    assert value(found, "manila_protector_jobs_total", operation="protect",
                 outcome="succeeded") == 1
    assert value(found, "manila_protector_jobs_total", operation="verify",
                 outcome="failed") == 1
    assert value(found, "manila_protector_job_duration_seconds_count",
                 operation="protect") == 1
    assert value(found, "manila_protector_lock_wait_seconds_count") == 2
    # The snapshot's creation was awaited: at least one wait, with at least one poll.
    assert value(found, "manila_protector_wait_polls_count", outcome="done") >= 1
    assert value(found, "manila_protector_wait_polls_sum", outcome="done") >= 1
    posts = value(found, "manila_protector_manila_requests_total", method="POST",
                  status="202")
    assert posts and posts >= 1
    assert value(found, "manila_protector_manila_requests_total", method="GET",
                 status="404") >= 1
    # The reply comes as soon as the outcome is stored; the job's thread ends just after.
    idle = rabbit.wait_until(
        lambda: (now := samples(url))[("manila_protector_jobs_running", ())] == 0 and now,
        WAIT, "no job running")
    assert value(idle, "manila_protector_jobs_queued") == 0
    assert value(idle, "manila_protector_oldest_running_job_seconds") == 0


def test_healthz_answers_503_naming_the_lock_backend_while_redis_is_down(
        make_standin, workers, tmp_path):
    missing = rabbit.PrivateRedis.missing()
    if missing:
        pytest.skip(missing)
    redis = rabbit.PrivateRedis(tmp_path / "redis")
    redis.start()
    try:
        worker, url = metrics_worker(workers, make_standin(), redis_url=redis.url)
        status, body = get(url + "/healthz")
        assert status == 200, body
        assert json.loads(body) == {"status": "ok", "checks": {
            "broker": {"ok": True}, "lock_backend": {"ok": True}, "job_store": {"ok": True}}}

        redis.stop()
        status, body = rabbit.wait_until(
            lambda: (answer := get(url + "/healthz"))[0] == 503 and answer, WAIT,
            "/healthz to answer 503")
        health = json.loads(body)
        assert health["status"] == "unavailable"
        assert health["checks"]["lock_backend"]["ok"] is False
        assert health["checks"]["broker"] == {"ok": True}
        assert health["checks"]["job_store"] == {"ok": True}
        assert get(url + "/nothing")[0] == 404
        assert worker.running
    finally:
        redis.close()
