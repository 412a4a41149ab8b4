"""The worker process: the one place that wires transport, job store, locks, runner,
notifier, housekeeping and RPC server together (arrows point down, from here to
the parts).

Console script::

    manila-protector-worker --config-file /etc/manila-protector/manila-protector.conf

Start-up refuses, with one line naming the setting, a configuration under which
workers would not exclude each other or could not announce their jobs: a shared
job store with host-local (``file://``) locks, a worker of the same topic on
another job store, a notification queue declared otherwise than the worker
declares it.  Start-up waits for the broker, the database and the lock backend
as long as it takes, and SIGTERM ends it at any time.
"""

from __future__ import annotations

# First, before oslo.messaging: keeps eventlet out of the process (see the module).
from manila_protector.worker import threads

import fcntl
import gc
import hashlib
import os
import signal
import sys
import threading
import typing

from oslo_config import cfg
from oslo_log import log as logging
import oslo_messaging

from manila_protector import exception
from manila_protector import identity
from manila_protector import opts
from manila_protector.plugins import observe
from manila_protector import version
from manila_protector.plugins import runtime as plugin_runtime
from manila_protector.rpc import api as rpc_api
from manila_protector.rpc import broker as rpc_broker
from manila_protector.rpc import context as rpc_context
from manila_protector.rpc import endpoint as rpc_endpoint
from manila_protector.rpc import notifier as rpc_notifier
from manila_protector.worker import backend_url as backend_url_mod
from manila_protector.worker import housekeeping
from manila_protector.worker import keystone
from manila_protector.worker import locks as locks_mod
from manila_protector.worker import metrics as metrics_mod
from manila_protector.worker import runner as runner_mod
from manila_protector.worker import systemd
from manila_protector.worker.store import api as store_api
from manila_protector.worker.store import engine as store_engine
from manila_protector.worker.store import legacy as store_legacy
from manila_protector.worker.store import schema as store_schema

LOG = logging.getLogger(__name__)

#: Exit status of a configuration the worker refuses (EX_CONFIG): systemd does not
#: restart the unit for it (RestartPreventExitStatus).
EXIT_CONFIG = 78
#: Seconds between two attempts to reach a backend while starting.
START_RETRY_INTERVAL = 5.0


class ConfigurationError(Exception):
    """A configuration the worker refuses to start with; its message is one line."""


class Stopped(Exception):
    """Told to stop while still starting."""


def prepare_conf(conf: cfg.ConfigOpts) -> None:
    """Register every option the worker reads on ``conf`` (before parsing).

    Also sets the worker's defaults of oslo.messaging options (a configured value
    wins; ``opts.WORKER_MESSAGING_DEFAULTS``, which the sample config shows too):
    durable queues and exchanges (``contract.MESSAGING_DEFAULTS``), so that a
    RabbitMQ restart loses no accepted request and no unread notification;
    ``messagingv2`` notifications; a prefetch bound on its queues; and log lines
    that name their job (``instance_uuid_format``, see :data:`opts.JOB_LOG_FORMAT`).
    """
    logging.register_options(conf)
    opts.set_log_defaults(conf)
    opts.register_opts(conf)
    rpc_api.prepare_conf(conf)
    opts.set_worker_messaging_defaults(conf)


def store_digest(url: str) -> str:
    """What tells two job stores apart, without the password (announced in the group)."""
    masked = backend_url_mod.mask_url(url)
    return hashlib.sha256(masked.encode("utf-8")).hexdigest()[:16]


class WorkerService:
    """One worker: RPC server on ``[worker] topic`` running jobs from the shared job store.

    :param conf: a parsed configuration (see :func:`prepare_conf`).
    :param transport: the RPC transport (default: from ``transport_url``).
    :param notification_transport: default: from ``[oslo_messaging_notifications]``.
    :param runtime: the plugin runtime (default: from ``[manila]``).
    :param close_transports: whether :meth:`stop` cleans the transports up (default:
        when it built them).
    """

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        *,
        transport: typing.Any = None,
        notification_transport: typing.Any = None,
        runtime: plugin_runtime.PluginRuntime | None = None,
        close_transports: bool | None = None,
    ) -> None:
        self.conf = conf
        self._own_transports = transport is None if close_transports is None else \
            close_transports
        self.transport = transport or rpc_api.get_transport(conf)
        self.notification_transport = (notification_transport
                                       or oslo_messaging.get_notification_transport(conf))
        self.metrics: metrics_mod.Metrics | None = None
        self._metrics_problem: str | None = None
        if conf.metrics.enabled:
            try:
                self.metrics = metrics_mod.Metrics()
            except exception.InvalidRequest as exc:
                self._metrics_problem = str(exc)  # refused by start(), in one line
        self.runtime = runtime or plugin_runtime.PluginRuntime.from_conf(
            conf, observer=self.metrics or observe.NOTHING)
        self.host = conf.host
        self.group = f"manila_protector.{conf.worker.topic}"
        self.store: store_api.JobStore | None = None
        self.locks: locks_mod.ShareLocks | None = None
        self.runner: runner_mod.JobRunner | None = None
        self.housekeeper: housekeeping.Housekeeper | None = None
        self._server: typing.Any = None
        self.listener: metrics_mod.Listener | None = None
        self._state_lock: typing.IO[str] | None = None

    # -- start ----------------------------------------------------------------------------

    def start(self, stop: threading.Event | None = None) -> None:
        """Open the store, connect the locks, join the group, resume jobs, then serve.

        :param stop: set to give up while waiting for a backend (raises :class:`Stopped`).
        :raises ConfigurationError: a configuration the worker refuses (one line).
        """
        stop = stop or threading.Event()
        conf = self.conf
        if self._metrics_problem:
            raise ConfigurationError(self._metrics_problem)
        os.makedirs(conf.state_path, mode=0o700, exist_ok=True)
        self._claim_state_path()
        # python-manilaclient writes shell-completion caches; keep them out of $HOME.
        os.environ.setdefault("MANILACLIENT_UUID_CACHE_DIR",
                              os.path.join(conf.state_path, "manilaclient-cache"))
        connection = conf.database.connection
        backend = self._lock_backend(connection)
        try:
            self.store = store_api.JobStore.from_conf(conf)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        _patiently("the job store", stop, lambda: self._ensure_schema(connection))
        store_legacy.import_journal(conf.state_path, self.store, self.host)
        try:
            self.locks = locks_mod.ShareLocks(
                backend, self.host, lock_wait=conf.coordination.lock_wait,
                backend_timeout=conf.coordination.backend_timeout)
        except ValueError as exc:
            raise ConfigurationError(f"[coordination] backend_url: {exc}") from None
        _patiently("the lock backend", stop, self.locks.start)
        capabilities = {"store": store_digest(connection), "pid": os.getpid()}
        _patiently("the lock backend", stop, lambda: self._join(capabilities))
        notifier = rpc_notifier.JobNotifier.from_conf(conf, self.notification_transport,
                                                      self.host)
        _patiently("the notification broker", stop, lambda: self._announce_start(notifier))
        self.runner = runner_mod.JobRunner(
            store=self.store, locks=self.locks, notifier=notifier, runtime=self.runtime,
            host=self.host, max_concurrent_jobs=conf.worker.max_concurrent_jobs,
            max_queued_jobs=conf.worker.max_queued_jobs,
            max_waiting_calls=conf.worker.max_waiting_calls,
            max_request_bytes=conf.worker.max_request_bytes, identify=self._identify(),
            progress_interval=conf.worker.progress_interval,
            observer=self.metrics, members=self._members)
        resumed = self.runner.start()
        target = oslo_messaging.Target(topic=conf.worker.topic, server=self.host)
        self._server = oslo_messaging.get_rpc_server(
            self.transport, target, [rpc_endpoint.ProtectorEndpoint(self.runner)],
            serializer=rpc_context.RequestContextSerializer(),
            access_policy=rpc_endpoint.ACCESS_POLICY)
        self._server.start()
        self.housekeeper = housekeeping.Housekeeper(
            runner=self.runner, store=self.store, membership=self.locks, group=self.group,
            host=self.host, capabilities=capabilities,
            interval=conf.worker.housekeeping_interval,
            takeover_after=conf.worker.takeover_after, retention=conf.worker.job_retention)
        self.runner.room_made = self.housekeeper.nudge
        self.housekeeper.start()
        if self.metrics is not None:
            self._start_listener(self.metrics)
        if not self.runtime.factory.has_service_credentials:
            LOG.info("no [manila] service credentials: what failed jobs could not delete is "
                     "not swept (it stays named in their errors, details.cleaned_up = false)")
        if not conf.manila.endpoint_override:
            LOG.warning("[manila] endpoint_override is not set: each job must bring Manila's "
                        "endpoint in its request context's service catalog (v2 or v3 form); "
                        "a job without one is refused (unsupported)")
        LOG.info("worker %s serving topic %s (%d job(s) resumed; store %s: %s)", self.host,
                 conf.worker.topic, resumed, self.store.database.safe_url,
                 self.store.counts())

    def _start_listener(self, metrics: metrics_mod.Metrics) -> None:
        """Serve ``/metrics`` and ``/healthz`` (``[metrics]``)."""
        assert self.runner is not None and self.locks is not None and self.store is not None
        runner, locks, store, conf = self.runner, self.locks, self.store, self.conf
        metrics.set_load(lambda: runner.load)
        checks = {
            "broker": lambda: rpc_broker.check_reachable(conf),
            "lock_backend": lambda: locks.members(self.group),
            "job_store": store.check_schema,
        }
        try:
            self.listener = metrics_mod.Listener(metrics, checks, conf.metrics.host,
                                                 conf.metrics.port)
        except OSError as exc:
            raise ConfigurationError(
                f"[metrics] cannot listen on {conf.metrics.host}:{conf.metrics.port}: "
                f"{exc.strerror or exc}") from None
        self.listener.start()
        LOG.info("metrics on http://%s:%d/metrics, health on /healthz", conf.metrics.host,
                 self.listener.port)

    def _members(self) -> list[str]:
        """The hosts of the live workers on this topic (the lock backend's group)."""
        assert self.locks is not None
        return list(self.locks.members(self.group))

    def _lock_backend(self, connection: str) -> str:
        """The lock backend URL; refuses a shared store with host-local locks."""
        conf = self.conf
        url = conf.coordination.backend_url or "file://" + os.path.abspath(
            conf.coordination.lock_path)
        if backend_url_mod.scheme(url) == "file" and not store_engine.is_sqlite(connection):
            raise ConfigurationError(
                "[coordination] backend_url is a file:// backend, which excludes workers on "
                "one host only, but [database] connection is a shared database for workers "
                "on several hosts: set a shared lock backend (redis://, etcd3+http://, "
                "zookeeper://)")
        if not conf.coordination.backend_url:
            path = os.path.abspath(conf.coordination.lock_path)
            if "?" in path or "#" in path:
                raise ConfigurationError(f"[coordination] lock_path {path!r} cannot be "
                                         "written as a file:// URL (no '?' or '#')")
            os.makedirs(path, mode=0o700, exist_ok=True)
        return url

    def _ensure_schema(self, connection: str) -> None:
        """An SQLite store (one host) is migrated here; a shared one only by ``db sync``."""
        assert self.store is not None
        if store_engine.is_sqlite(connection):
            store_schema.upgrade(self.store.database)
            return
        try:
            self.store.check_schema()
        except exception.StoreSchemaOutdated as exc:
            raise ConfigurationError(str(exc)) from None

    def _join(self, capabilities: dict[str, typing.Any]) -> None:
        """Join the topic's group; refuse when a live worker there uses another job store."""
        assert self.locks is not None
        others = {member: caps for member, caps in self.locks.members(self.group).items()
                  if member != self.host}
        strangers = sorted(member for member, caps in others.items()
                           if caps.get("store") not in (None, capabilities["store"]))
        if strangers:
            raise ConfigurationError(
                f"worker(s) {', '.join(strangers)} on topic {self.conf.worker.topic} use "
                "another job store: every worker of a topic needs the same [database] "
                "connection, or a job could run twice")
        self.locks.join(self.group, capabilities)

    def _announce_start(self, notifier: rpc_notifier.JobNotifier) -> None:
        """Send ``manila_protector.worker.start``; a declaration conflict stops the worker."""
        try:
            notifier.worker_started(self.host, retry=0)
        except exception.NotificationFailed as exc:
            text = str(exc)
            if "PRECONDITION_FAILED" in text or "inequivalent" in text:
                raise ConfigurationError(
                    "a notification queue on the broker was declared otherwise than this "
                    "worker declares it (durable or not): set [oslo_messaging_rabbit] "
                    "amqp_durable_queues as the queue's other users have it, or delete the "
                    f"queue ({text.splitlines()[0][:200]})") from None
            raise exception.WorkerUnavailable(text) from exc

    def _identify(self) -> typing.Callable[[typing.Any], identity.Caller]:
        """Who a request's caller is: Keystone's answer with ``[keystone_authtoken]``, else
        the context read strictly (the bus is trusted then; said at start)."""
        max_bytes = self.conf.worker.max_context_bytes
        try:
            validator = keystone.TokenValidator.from_conf(self.conf)
        except exception.IdentityUnavailable as exc:
            raise ConfigurationError(str(exc)) from None
        if validator is not None:
            LOG.info("validating every request's token with Keystone ([keystone_authtoken])")
            return lambda ctxt: validator.identify(ctxt, max_bytes=max_bytes)
        LOG.warning("[keystone_authtoken] is not configured: a request's identity is taken "
                    "from its context as sent, so whoever can write to the bus is trusted")
        return lambda ctxt: identity.Caller.from_context(ctxt, max_bytes=max_bytes)

    def _claim_state_path(self) -> None:
        """Make sure no other worker uses this state directory.

        :raises ConfigurationError: another live process holds it.
        """
        path = os.path.join(self.conf.state_path, "worker.lock")
        handle = open(path, "a+")  # held (locked) for the life of the worker
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise ConfigurationError(
                f"state_path {self.conf.state_path} is in use by another worker: each "
                "worker needs its own state_path") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._state_lock = handle

    # -- stop -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop taking requests, let running jobs finish (bounded), close everything."""
        if self.housekeeper is not None:
            self.housekeeper.stop()
        if self.listener is not None:
            self.listener.stop()
            self.listener = None
        if self._server is not None:
            self._server.stop()
        still_running = 0
        if self.runner is not None:
            still_running = self.runner.stop(self.conf.worker.shutdown_timeout)
        if self._server is not None:
            self._server.wait()
            self._server = None
        if still_running:
            # Those jobs still act on Manila until the process exits: releasing their
            # share locks now would let another worker in beside them. The locks go with
            # the process (file locks) or expire (lock_timeout); the store resumes them.
            LOG.warning("exiting with %d job(s) still running; their locks are left to "
                        "expire", still_running)
            return
        if self.locks is not None:
            self.locks.stop()
        if self.store is not None:
            self.store.close()
        if self._state_lock is not None:
            self._state_lock.close()
            self._state_lock = None
        if self._own_transports:
            self.transport.cleanup()
            self.notification_transport.cleanup()
        LOG.info("worker %s stopped", self.host)


def _patiently(what: str, stop: threading.Event, action: typing.Callable[[], None]) -> None:
    """Run ``action`` until it succeeds, again after each retryable failure; give up only
    when ``stop`` is set (:class:`Stopped`)."""
    while True:
        if stop.is_set():
            raise Stopped(f"stopped while waiting for {what}")
        try:
            action()
            return
        except exception.ProtectorError as exc:
            if not exc.retryable:
                raise
            LOG.warning("waiting for %s: %s", what, exc)
        if stop.wait(START_RETRY_INTERVAL):
            raise Stopped(f"stopped while waiting for {what}")


def check_values(conf: cfg.ConfigOpts) -> None:
    """:func:`opts.first_invalid_value` as a :class:`ConfigurationError`."""
    invalid = opts.first_invalid_value(conf)
    if invalid:
        raise ConfigurationError(invalid)


def _build(conf: cfg.ConfigOpts) -> WorkerService:
    """The service for ``conf``; what it cannot be built from is a ConfigurationError."""
    try:
        transport = rpc_api.get_transport(conf)
    except (oslo_messaging.InvalidTransportURL, oslo_messaging.DriverLoadFailure) as exc:
        raise ConfigurationError(f"[DEFAULT] transport_url: {opts.one_line(exc)}") from None
    try:
        notification_transport = oslo_messaging.get_notification_transport(conf)
    except (oslo_messaging.InvalidTransportURL, oslo_messaging.DriverLoadFailure) as exc:
        transport.cleanup()
        raise ConfigurationError(
            f"[oslo_messaging_notifications] transport_url: {opts.one_line(exc)}") from None
    try:
        # The service builds the plugin runtime itself: with its metrics as the observer.
        return WorkerService(conf, transport=transport,
                             notification_transport=notification_transport,
                             close_transports=True)
    except exception.ProtectorError as exc:  # the [manila] options' credentials or endpoint
        transport.cleanup()
        notification_transport.cleanup()
        raise ConfigurationError(opts.one_line(exc)) from None


def main(argv: list[str] | None = None) -> int:
    """``manila-protector-worker``: run until SIGTERM/SIGINT, then shut down cleanly.

    Exit status: 0 stopped, 78 (EX_CONFIG) a configuration the worker refuses --
    one line on stderr naming the option, no traceback.
    """
    threads.limit_malloc_arenas()  # before any thread starts
    conf = cfg.CONF  # oslo.messaging registers some options only on the global CONF
    prepare_conf(conf)
    try:
        try:
            conf(sys.argv[1:] if argv is None else argv, project="manila-protector",
                 prog="manila-protector-worker", version=version.version_string())
        except SystemExit as exc:
            # argparse has printed its one line (a bad command line, or a config file
            # value of a command-line option such as debug); --help and --version are 0.
            if exc.code in (0, None):
                raise
            return EXIT_CONFIG
        except cfg.Error as exc:
            raise ConfigurationError(opts.one_line(exc)) from None
        check_values(conf)
        logging.setup(conf, "manila-protector")
        conf.log_opt_values(LOG, logging.DEBUG)
        service = _build(conf)
    except ConfigurationError as exc:
        print(f"manila-protector-worker: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    stop = threading.Event()
    changed = threading.Event()

    def on_signal(signum: int, frame: typing.Any) -> None:
        LOG.info("signal %d received: stopping", signum)
        systemd.notify("STOPPING=1")
        stop.set()
        changed.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    outcome: list[BaseException | None] = []
    threading.Thread(target=_start, args=(service, stop, outcome, changed), name="start",
                     daemon=True).start()
    changed.wait()  # the start thread ended, or a signal came
    if not outcome:
        # SIGTERM while still starting: nothing was taken from the bus yet.
        LOG.info("stopped while starting")
        return 0
    failure = outcome[0]
    if isinstance(failure, ConfigurationError):
        print(f"manila-protector-worker: {failure}", file=sys.stderr)
        LOG.error("%s", failure)
        service.stop()  # leave the group and close what was opened: a fixed start finds it free
        return EXIT_CONFIG
    if isinstance(failure, Stopped):
        LOG.info("%s", failure)
        return 0
    if failure is not None:
        raise failure
    systemd.notify("READY=1")
    stop.wait()
    service.stop()
    # NOTE: everything is closed now. Leave the process's objects to the exit rather
    # than to a last full garbage collection while the modules are torn down: with
    # oslo, SQLAlchemy and the clients loaded that walk took about a second.
    gc.freeze()
    return 0


def _start(service: WorkerService, stop: threading.Event,
           outcome: list[BaseException | None], changed: threading.Event) -> None:
    try:
        service.start(stop)
        outcome.append(None)
    except BaseException as exc:  # noqa: BLE001 - handed to main, which decides
        outcome.append(exc)
    finally:
        changed.set()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
