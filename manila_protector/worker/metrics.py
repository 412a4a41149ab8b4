"""The worker's Prometheus metrics and its ``/metrics`` and ``/healthz`` listener.

Opt-in (``[metrics] enabled``): prometheus_client belongs to the ``worker``
extra, and is imported only here, only when the listener is enabled, so the
plugins (which Karbor loads) and a worker without metrics never need it.

:class:`Metrics` is the worker's observer: the runner reports jobs, lock waits
and failed notifications to it, and the plugin core (through
:class:`~manila_protector.plugins.observe.Observer`) Manila's responses and
the polls of each wait.  Every metric lives in the registry of its own
:class:`Metrics` (never prometheus_client's global one), so two workers in one
process count apart.

``/healthz`` runs each check (broker, lock backend, job store) in a thread of
its own, bounded by :data:`CHECK_TIMEOUT`; it answers 200 when every check
passed and 503 otherwise, with a small JSON body naming each check's result.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import socketserver
import threading
import time
import typing
from wsgiref import simple_server

from manila_protector import exception
from manila_protector.plugins import observe

LOG = logging.getLogger(__name__)

PREFIX = "manila_protector"
#: Seconds a health check may take before it counts as failed.
CHECK_TIMEOUT = 5.0
#: Buckets of the job duration histogram (seconds): a verify takes a second, a
#: large snapshot hours.
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, float("inf"))
#: Buckets of the lock wait histogram (seconds).
LOCK_WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, float("inf"))
#: Buckets of the polls-per-wait histogram.
POLL_BUCKETS = (1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, float("inf"))

#: Every metric this module exports (what doc/metrics.rst and the alert rules use).
METRIC_NAMES = (
    f"{PREFIX}_jobs_total",
    f"{PREFIX}_job_duration_seconds",
    f"{PREFIX}_lock_wait_seconds",
    f"{PREFIX}_manila_requests_total",
    f"{PREFIX}_wait_polls",
    f"{PREFIX}_jobs_running",
    f"{PREFIX}_jobs_queued",
    f"{PREFIX}_oldest_running_job_seconds",
    f"{PREFIX}_notifications_failed_total",
)


def prometheus_client() -> typing.Any:
    """The prometheus_client module.

    :raises exception.InvalidRequest: it is not installed (the ``worker`` extra).
    """
    try:
        import prometheus_client as module  # the worker extra's (see the module doc)
    except ImportError as exc:
        raise exception.InvalidRequest(
            "[metrics] enabled needs prometheus_client: install manila-protector[worker]",
            details={"field": "metrics.enabled"}) from exc
    return module


class Metrics(observe.Observer):
    """The worker's metrics, in a registry of their own.

    :param load: returns ``{"running": n, "queued": n}`` (the runner's load), read
        at each scrape.
    """

    def __init__(self, load: typing.Callable[[], dict[str, int]] | None = None) -> None:
        prom = prometheus_client()
        self.registry = prom.CollectorRegistry(auto_describe=True)
        self._load = load or (lambda: {"running": 0, "queued": 0})
        self._running: dict[str, float] = {}
        self._lock = threading.Lock()
        registry = self.registry
        self.jobs = prom.Counter(
            f"{PREFIX}_jobs", "Jobs finished, by operation and outcome (succeeded, failed).",
            ["operation", "outcome"], registry=registry)
        self.duration = prom.Histogram(
            f"{PREFIX}_job_duration_seconds",
            "Seconds a job ran on this worker (lock wait included), by operation.",
            ["operation"], buckets=DURATION_BUCKETS, registry=registry)
        self.lock_wait = prom.Histogram(
            f"{PREFIX}_lock_wait_seconds", "Seconds a job waited for its share's lock.",
            buckets=LOCK_WAIT_BUCKETS, registry=registry)
        self.manila_requests = prom.Counter(
            f"{PREFIX}_manila_requests",
            "HTTP responses received from Manila (and Keystone, on Manila's session), by "
            "method and status code.", ["method", "status"], registry=registry)
        self.polls = prom.Histogram(
            f"{PREFIX}_wait_polls",
            "Status reads per wait for Manila, by outcome (done, deadline, error).",
            ["outcome"], buckets=POLL_BUCKETS, registry=registry)
        self.notifications_failed = prom.Counter(
            f"{PREFIX}_notifications_failed",
            "Notifications the broker did not take (sent again later), by event.",
            ["event"], registry=registry)
        running = prom.Gauge(f"{PREFIX}_jobs_running", "Jobs running on this worker.",
                             registry=registry)
        running.set_function(lambda: self._load()["running"])
        queued = prom.Gauge(f"{PREFIX}_jobs_queued",
                            "Jobs accepted by this worker and waiting for a thread.",
                            registry=registry)
        queued.set_function(lambda: self._load()["queued"])
        oldest = prom.Gauge(f"{PREFIX}_oldest_running_job_seconds",
                            "Seconds the longest-running job on this worker has run "
                            "(0: none running).", registry=registry)
        oldest.set_function(self._oldest)

    def set_load(self, load: typing.Callable[[], dict[str, int]]) -> None:
        """Where the running and queued gauges read from (the runner, once it exists)."""
        self._load = load

    def _oldest(self) -> float:
        with self._lock:
            began = min(self._running.values(), default=None)
        return 0.0 if began is None else time.monotonic() - began

    # -- the runner's observer -----------------------------------------------------------

    def job_started(self, job_id: str, operation: str) -> None:
        with self._lock:
            self._running[job_id] = time.monotonic()

    def job_finished(self, job_id: str, operation: str, outcome: str, seconds: float) -> None:
        with self._lock:
            self._running.pop(job_id, None)
        self.jobs.labels(operation=operation, outcome=outcome).inc()
        self.duration.labels(operation=operation).observe(seconds)

    def lock_waited(self, seconds: float) -> None:
        self.lock_wait.observe(seconds)

    def notification_failed(self, event: str) -> None:
        self.notifications_failed.labels(event=event).inc()

    # -- the plugin core's observer --------------------------------------------------------

    def manila_request(self, method: str, status: int) -> None:
        self.manila_requests.labels(method=method, status=str(status)).inc()

    def wait_finished(self, polls: int, outcome: str) -> None:
        self.polls.labels(outcome=outcome).observe(polls)


Check = typing.Callable[[], None]


def run_checks(checks: typing.Mapping[str, Check], timeout: float = CHECK_TIMEOUT
               ) -> tuple[bool, dict[str, dict[str, typing.Any]]]:
    """Run every check at once, each bounded by ``timeout`` seconds.

    :returns: whether all passed, and ``{name: {"ok": bool, "error": str}}``.
    """
    results: dict[str, dict[str, typing.Any]] = {}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(len(checks), 1),
                                                 thread_name_prefix="healthz")
    try:
        futures = {name: pool.submit(check) for name, check in checks.items()}
        deadline = time.monotonic() + timeout
        for name, future in futures.items():
            try:
                future.result(timeout=max(deadline - time.monotonic(), 0.0))
                results[name] = {"ok": True}
            except concurrent.futures.TimeoutError:
                results[name] = {"ok": False, "error": f"no answer within {timeout:g} s"}
            except exception.ProtectorError as exc:
                results[name] = {"ok": False, "error": f"{exc.code}: {exc}"}
            except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
                results[name] = {"ok": False, "error": type(exc).__name__}
    finally:
        # A check stuck past its deadline is left to finish in its thread.
        pool.shutdown(wait=False)
    return all(r["ok"] for r in results.values()), results


class _Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: typing.Any) -> None:  # noqa: A002
        LOG.debug("metrics listener: " + format, *args)


class Listener:
    """The HTTP listener: ``/metrics`` (Prometheus text format) and ``/healthz``.

    :param metrics: the metrics to export.
    :param checks: the health checks by name.
    :param host: the address to listen on.
    :param port: the port (0: any free one; see :attr:`port`).
    """

    def __init__(self, metrics: Metrics, checks: typing.Mapping[str, Check], host: str,
                 port: int) -> None:
        self._metrics_app = prometheus_client().make_wsgi_app(metrics.registry)
        self._checks = dict(checks)
        self._server = simple_server.make_server(host, port, self._app, server_class=_Server,
                                                 handler_class=_QuietHandler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _app(self, environ: dict[str, typing.Any],
             start_response: typing.Callable[..., typing.Any]) -> typing.Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            healthy, results = run_checks(self._checks)
            body = json.dumps({"status": "ok" if healthy else "unavailable",
                               "checks": results}).encode("utf-8")
            start_response("200 OK" if healthy else "503 Service Unavailable",
                           [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
            return [body]
        if path == "/metrics":
            return self._metrics_app(environ, start_response)
        body = b"not found: try /metrics or /healthz\n"
        start_response("404 Not Found", [("Content-Type", "text/plain"),
                                         ("Content-Length", str(len(body)))])
        return [body]
