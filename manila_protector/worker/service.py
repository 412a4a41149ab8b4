"""The worker process: the one place that wires transport, journal, locks, runner,
notifier and RPC server together (arrows point down, from here to the parts).

Console script::

    manila-protector-worker --config-file /etc/manila-protector/manila-protector.conf
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import threading
import typing

from oslo_config import cfg
from oslo_log import log as logging
import oslo_messaging

from manila_protector import identity
from manila_protector import opts
from manila_protector.plugins import runtime as plugin_runtime
from manila_protector.rpc import api as rpc_api
from manila_protector.rpc import context as rpc_context
from manila_protector.rpc import endpoint as rpc_endpoint
from manila_protector.rpc import notifier as rpc_notifier
from manila_protector.worker import journal as journal_mod
from manila_protector.worker import keystone
from manila_protector.worker import locks as locks_mod
from manila_protector.worker import runner as runner_mod

LOG = logging.getLogger(__name__)


def prepare_conf(conf: cfg.ConfigOpts) -> None:
    """Register every option the worker reads on ``conf`` (before parsing).

    Also sets the worker's defaults of oslo.messaging options (a configured value wins):
    durable queues and exchanges (``[oslo_messaging_rabbit] amqp_durable_queues``), so
    that a RabbitMQ restart loses no accepted request and no unread notification.
    Without them a cast sent after the restart but before the workers re-declared their
    queue was dropped as unroutable (doc/reliability.md).  Callers and notification
    consumers on the same exchange must use the same setting.
    """
    logging.register_options(conf)
    opts.register_opts(conf)
    rpc_api.prepare_conf(conf)


class WorkerService:
    """One worker: RPC server on ``[worker] topic`` running jobs from the journal.

    :param conf: a parsed configuration (see :func:`prepare_conf`).
    :param transport: the RPC transport (default: from ``transport_url``).
    :param notification_transport: default: from ``[oslo_messaging_notifications]``.
    :param runtime: the plugin runtime (default: from ``[manila]``).
    """

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        *,
        transport: typing.Any = None,
        notification_transport: typing.Any = None,
        runtime: plugin_runtime.PluginRuntime | None = None,
    ) -> None:
        self.conf = conf
        self._own_transports = transport is None
        self.transport = transport or rpc_api.get_transport(conf)
        self.notification_transport = (notification_transport
                                       or oslo_messaging.get_notification_transport(conf))
        self.runtime = runtime or plugin_runtime.PluginRuntime.from_conf(conf)
        self.host = conf.host
        self.journal: journal_mod.Journal | None = None
        self.locks: locks_mod.ShareLocks | None = None
        self.runner: runner_mod.JobRunner | None = None
        self._server: typing.Any = None
        self._stopped = threading.Event()
        self._housekeeping: threading.Thread | None = None
        self._state_lock: typing.IO[str] | None = None

    def start(self) -> None:
        """Open the journal, connect the locks, resume unfinished jobs, then serve."""
        conf = self.conf
        os.makedirs(conf.state_path, mode=0o700, exist_ok=True)
        self._claim_state_path()
        # python-manilaclient writes shell-completion caches; keep them out of $HOME.
        os.environ.setdefault("MANILACLIENT_UUID_CACHE_DIR",
                              os.path.join(conf.state_path, "manilaclient-cache"))
        self.journal = journal_mod.Journal(os.path.join(conf.state_path, "jobs.sqlite"))
        backend_url = (conf.coordination.backend_url
                       or locks_mod.ShareLocks.default_backend_url(conf.state_path))
        self.locks = locks_mod.ShareLocks(
            backend_url, f"manila_protector.{self.host}.{os.getpid()}",
            lock_wait=conf.coordination.lock_wait,
            backend_timeout=conf.coordination.backend_timeout)
        self.locks.start()
        notifier = rpc_notifier.JobNotifier(self.notification_transport, self.host)
        self.runner = runner_mod.JobRunner(
            journal=self.journal, locks=self.locks, notifier=notifier, runtime=self.runtime,
            host=self.host, max_concurrent_jobs=conf.worker.max_concurrent_jobs,
            max_request_bytes=conf.worker.max_request_bytes, identify=self._identify())
        self._purge()
        resumed = self.runner.start()
        target = oslo_messaging.Target(topic=conf.worker.topic, server=self.host)
        self._server = oslo_messaging.get_rpc_server(
            self.transport, target, [rpc_endpoint.ProtectorEndpoint(self.runner)],
            serializer=rpc_context.RequestContextSerializer(),
            access_policy=rpc_endpoint.ACCESS_POLICY)
        self._server.start()
        self._housekeeping = threading.Thread(target=self._housekeep, name="housekeeping",
                                              daemon=True)
        self._housekeeping.start()
        if not conf.manila.endpoint_override:
            LOG.warning("[manila] endpoint_override is not set: each job must bring Manila's "
                        "endpoint in its request context's service catalog (v2 or v3 form); "
                        "a job without one is refused (unsupported)")
        LOG.info("worker %s serving topic %s (%d job(s) resumed, journal %s)", self.host,
                 conf.worker.topic, resumed, self.journal.counts())

    def _identify(self) -> typing.Callable[[typing.Any], identity.Caller]:
        """Who a request's caller is: Keystone's answer with ``[keystone_authtoken]``, else
        the context read strictly (the bus is trusted then; said at start)."""
        max_bytes = self.conf.worker.max_context_bytes
        validator = keystone.TokenValidator.from_conf(self.conf)
        if validator is not None:
            LOG.info("validating every request's token with Keystone ([keystone_authtoken])")
            return lambda ctxt: validator.identify(ctxt, max_bytes=max_bytes)
        LOG.warning("[keystone_authtoken] is not configured: a request's identity is taken "
                    "from its context as sent, so whoever can write to the bus is trusted")
        return lambda ctxt: identity.Caller.from_context(ctxt, max_bytes=max_bytes)

    def _claim_state_path(self) -> None:
        """Make sure no other worker uses this state directory (its journal is ours alone).

        :raises RuntimeError: another live process holds it.
        """
        path = os.path.join(self.conf.state_path, "worker.lock")
        handle = open(path, "a+")  # held (locked) for the life of the worker
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise RuntimeError(
                f"state_path {self.conf.state_path} is in use by another worker: each "
                "worker needs its own state_path") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._state_lock = handle

    def _purge(self) -> None:
        retention = self.conf.worker.job_retention
        if retention and self.journal is not None:
            purged = self.journal.purge(retention)
            if purged:
                LOG.info("forgot %d finished job(s) older than %ss", purged, retention)

    def _housekeep(self) -> None:
        """Forget old finished jobs once an hour (or per retention period, if shorter)."""
        period = min(3600, self.conf.worker.job_retention or 3600)
        while not self._stopped.wait(period):
            try:
                self._purge()
            except Exception:  # noqa: BLE001 - housekeeping must not end the worker
                LOG.exception("purging the journal failed; trying again later")

    def stop(self) -> None:
        """Stop taking requests, let running jobs finish (bounded), close everything."""
        self._stopped.set()
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
            # the process (file locks) or expire (lock_timeout); the journal resumes them.
            LOG.warning("exiting with %d job(s) still running; their locks are left to "
                        "expire", still_running)
            return
        if self._housekeeping is not None:
            self._housekeeping.join(timeout=30)
        if self.locks is not None:
            self.locks.stop()
        if self.journal is not None:
            self.journal.close()
        if self._state_lock is not None:
            self._state_lock.close()
            self._state_lock = None
        if self._own_transports:
            self.transport.cleanup()
            self.notification_transport.cleanup()
        LOG.info("worker %s stopped", self.host)


def main(argv: list[str] | None = None) -> int:
    """``manila-protector-worker``: run until SIGTERM/SIGINT, then shut down cleanly."""
    conf = cfg.CONF  # oslo.messaging registers some options only on the global CONF
    prepare_conf(conf)
    conf(sys.argv[1:] if argv is None else argv, project="manila-protector",
         prog="manila-protector-worker")
    logging.setup(conf, "manila-protector")
    conf.log_opt_values(LOG, logging.DEBUG)
    stop = threading.Event()

    def on_signal(signum: int, frame: typing.Any) -> None:
        LOG.info("signal %d received: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    service = WorkerService(conf)
    service.start()
    while not stop.wait(3600):
        pass
    service.stop()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
