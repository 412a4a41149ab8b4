"""Every option of manila_protector, registered on a ``ConfigOpts`` passed in.

Nothing is registered at import time, and :func:`list_opts` changes nothing:
it feeds ``oslo-config-generator --namespace manila_protector`` (see ``etc/``).
The generator also calls :func:`set_lib_defaults` (entry point
``oslo.config.opts.defaults``) so that the sample shows the worker's own
defaults of oslo.messaging's options.

Each default lives in one place: the plugin core's value types
(:class:`~manila_protector.plugins.waiting.WaitPolicy`,
:class:`~manila_protector.plugins.values.Timeouts`,
:class:`~manila_protector.plugins.runtime.PluginSettings`) and the RPC
contract hold theirs, and the options here read them.

The job store's ``[database]`` options are oslo.db's own (the OpenStack
convention; listed by the generator's ``oslo.db`` namespace); this module only
registers them and gives ``connection`` the worker's default, an SQLite file
under ``state_path``.  oslo.db belongs to the ``worker`` extra: it is imported
where those options are registered, not at the top, because the Karbor plugins
import this module in an environment pinned to an older oslo.db.

Option names are part of the product: deployment tools and the docs rely on them.
"""

from __future__ import annotations

import copy
import re
import socket

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

from manila_protector.plugins import client_factory
from manila_protector.plugins import runtime
from manila_protector.plugins import values
from manila_protector.plugins import waiting
from manila_protector.rpc import api as rpc_api
from manila_protector.rpc import contract

_WAIT = waiting.WaitPolicy
_TIMEOUTS = values.Timeouts

MANILA_GROUP = "manila"
DISPATCH_GROUP = "dispatch"
KEYSTONE_GROUP = "keystone_authtoken"
WORKER_GROUP = "worker"
COORDINATION_GROUP = "coordination"
DATABASE_GROUP = "database"
METRICS_GROUP = "metrics"

#: ``[database] connection`` by default: the single-host job store.
DEFAULT_DATABASE_CONNECTION = "sqlite:///$state_path/job-store.sqlite"

_DEFAULT_OPTS = [
    cfg.HostAddressOpt(
        "host",
        default=socket.gethostname(),
        sample_default="<current hostname>",
        help="Name of this worker host: the RPC server name and part of the notification "
             "publisher id (manila_protector.<host>). Must be unique among the workers "
             "on one topic.",
    ),
    cfg.StrOpt(
        "state_path",
        default="/var/lib/manila-protector",
        help="Directory for the worker's state: the job journal, the default SQLite job "
             "store and its token key file and, with the default lock backend, the lock "
             "files. Must be writable by the service user.",
    ),
]

_WORKER_OPTS = [
    cfg.StrOpt(
        "topic",
        default=contract.DEFAULT_TOPIC,
        help="RPC topic the workers listen on. Every worker on one topic shares the work.",
    ),
    cfg.IntOpt(
        "max_concurrent_jobs",
        default=8,
        min=1,
        help="Jobs (on different shares) this worker runs at the same time. Further "
             "accepted jobs wait in the job store.",
    ),
    cfg.IntOpt(
        "max_queued_jobs",
        default=10000,
        min=1,
        help="Jobs accepted by this worker that may wait for a free job slot; beyond it "
             "new jobs are refused with the retryable error worker_busy before anything "
             "is recorded (a waiting job costs only its id here: it stays in the job "
             "store).",
    ),
    cfg.IntOpt(
        "max_waiting_calls",
        default=32,
        min=1,
        help="RPC calls that may wait for their job's end at once (call with wait=True, "
             "the client's default); beyond it a call is answered with the accepted "
             "record at once, so that get_job and list_jobs always find a thread. Keep "
             "well below [DEFAULT] executor_thread_pool_size.",
    ),
    cfg.FloatOpt(
        "progress_interval",
        default=5.0,
        min=0.0,
        help="Least seconds between two manila_protector.<operation>.progress "
             "notifications of one job. A phase change sooner than that is held back and "
             "only the latest one is sent once the interval has passed; the job store "
             "records every phase at once (get_job, list_jobs). Progress notifications "
             "are best effort; terminal ones are not affected.",
    ),
    cfg.IntOpt(
        "takeover_after",
        default=300,
        min=10,
        help="Seconds a worker may be missing from the group of its topic before a live "
             "worker adopts its unfinished jobs and resumes them (their job tags mean no "
             "second snapshot or share).",
    ),
    cfg.IntOpt(
        "housekeeping_interval",
        default=60,
        min=1,
        help="Seconds between two rounds of housekeeping: notifications the broker did "
             "not confirm sent again, workers gone for good adopted, what failed jobs "
             "left behind swept.",
    ),
    cfg.IntOpt(
        "max_request_bytes",
        default=262144,
        min=1024,
        help="Largest accepted RPC request (parameters and saved_info as JSON); larger "
             "requests are refused with invalid_request.",
    ),
    cfg.IntOpt(
        "max_context_bytes",
        default=131072,
        min=1024,
        help="Largest accepted request context (as JSON: token, identity, service catalog); "
             "larger contexts are refused with invalid_request.",
    ),
    cfg.IntOpt(
        "job_retention",
        default=7 * 24 * 3600,
        min=0,
        help="Seconds finished jobs stay in the job store (and are answered for the same "
             "job_id). 0 keeps them forever.",
    ),
    cfg.ListOpt(
        "token_keys",
        default=[],
        secret=True,
        help="Fernet keys (each 32 url-safe base64-encoded bytes, e.g. from `python3 -c "
             "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`) "
             "that encrypt the callers' tokens the job store keeps while a job is unfinished. "
             "The first key encrypts, all of them decrypt: to rotate, put a new key first and "
             "drop the old one once no job accepted before is unfinished. Every worker "
             "sharing a [database] connection needs the same keys; a shared database without "
             "them is refused. Empty with an SQLite store (one host): a key is generated once "
             "into $state_path/token.key (mode 0600) and used from there.",
    ),
    cfg.IntOpt(
        "shutdown_timeout",
        default=300,
        min=0,
        help="On SIGTERM, seconds to let running jobs finish before exiting; jobs still "
             "running then are resumed from the job store at the next start (or by a worker "
             "that adopts them). Keep below "
             "systemd's TimeoutStopSec.",
    ),
]

_COORDINATION_OPTS = [
    cfg.StrOpt(
        "backend_url",
        default=None,
        sample_default="file://$lock_path",
        help="tooz backend for the per-share locks and the workers' membership. Default: "
             "file:// locks in lock_path, one directory for the whole host, so every "
             "worker of the host excludes the others. Workers on several hosts need a "
             "shared backend: redis://host:6379, etcd3+http://host:2379, "
             "zookeeper://host:2181; a worker with a shared [database] connection and "
             "file:// locks refuses to start.",
        secret=True,
    ),
    cfg.StrOpt(
        "lock_path",
        default="/var/lib/manila-protector/locks",
        help="The host-wide directory of the default file:// lock backend. Every worker "
             "of one host must name the same directory (it is not under state_path for "
             "that reason).",
    ),
    cfg.FloatOpt(
        "lock_wait",
        default=30.0,
        min=0,
        help="Seconds a job waits for its share's lock before failing with the "
             "retryable error share_busy.",
    ),
    cfg.FloatOpt(
        "backend_timeout",
        default=20.0,
        min=1,
        help="Seconds a call to the lock backend may take before the job fails with "
             "the retryable error lock_unavailable.",
    ),
]

_MANILA_OPTS = [
    cfg.StrOpt(
        "max_api_version",
        default=None,
        help="Highest Manila API microversion to use (e.g. 2.73). Default: the highest "
             "that both this python-manilaclient and the Manila server support.",
    ),
    cfg.IntOpt(
        "list_page_size",
        default=runtime.PluginSettings.list_page_size,
        min=1,
        max=10000,
        help="Shares per list request; share lists are always paginated. A Manila that "
             "answers fewer per page (a lower cap) is paged through all the same.",
    ),
    cfg.FloatOpt(
        "poll_initial_interval",
        default=_WAIT.initial_interval,
        min=0.01,
        help="Seconds between the first and second status poll of a wait.",
    ),
    cfg.FloatOpt(
        "poll_backoff_factor",
        default=_WAIT.backoff_factor,
        min=1.0,
        help="Each poll interval is this many times the previous one. The lateness of "
             "noticing that Manila finished stays within (factor - 1) of the time "
             "already waited: 1.25 keeps it within a quarter.",
    ),
    cfg.FloatOpt(
        "poll_max_interval",
        default=_WAIT.max_interval,
        min=0.01,
        help="Poll intervals never grow past this many seconds.",
    ),
    cfg.FloatOpt(
        "poll_jitter",
        default=_WAIT.jitter,
        min=0.0,
        max=0.99,
        help="Each poll interval is shortened by a random fraction up to this, so many "
             "workers do not poll in step.",
    ),
    cfg.FloatOpt(
        "poll_first_delay",
        default=_WAIT.first_delay,
        min=0.0,
        help="Seconds before the first poll of a wait (0: at once). A real Manila never "
             "finishes a snapshot or share at once, so 0.25 spares one status request per "
             "wait; an operation that is done at once then ends that much later.",
    ),
    cfg.FloatOpt("protect_timeout", default=_TIMEOUTS.protect, min=1,
                 help="Deadline in seconds of a protect (waiting for the share and the "
                      "snapshot)."),
    cfg.FloatOpt("restore_timeout", default=_TIMEOUTS.restore, min=1,
                 help="Deadline in seconds of a restore (the new share and its access "
                      "rules, or the revert)."),
    cfg.FloatOpt("delete_timeout", default=_TIMEOUTS.delete, min=1,
                 help="Deadline in seconds of a snapshot delete."),
    cfg.FloatOpt("verify_timeout", default=_TIMEOUTS.verify, min=1,
                 help="Deadline in seconds of a verify."),
    cfg.FloatOpt("cleanup_timeout", default=_TIMEOUTS.cleanup, min=1,
                 help="Seconds a failed protect or restore may spend deleting the snapshot "
                      "or share it made (after its own deadline, if that is why it failed). "
                      "What is still there then is named in the job's error "
                      "(details.cleaned_up = false)."),
]

#: Where Karbor's protection plugin runs its jobs (the provider file's ``[dispatch]``).
DISPATCH_DIRECT = "direct"
DISPATCH_WORKER = "worker"

_DISPATCH_OPTS = [
    cfg.StrOpt(
        "mode",
        default=DISPATCH_DIRECT,
        choices=[(DISPATCH_DIRECT, "each hook calls Manila itself, in karbor-protection"),
                 (DISPATCH_WORKER, "each hook sends its job to the protection workers over "
                                   "RabbitMQ and waits for its end")],
        help="Where the protection plugin's jobs run.",
    ),
    cfg.StrOpt(
        "transport_url",
        default=None,
        secret=True,
        help="The workers' RabbitMQ (oslo.messaging transport URL), e.g. "
             "rabbit://user:password@rabbit:5672/. Required with mode = worker.",
    ),
    cfg.StrOpt(
        "topic",
        default=contract.DEFAULT_TOPIC,
        help="The workers' RPC topic ([worker] topic of their configuration).",
    ),
    cfg.StrOpt(
        "exchange",
        default=contract.CONTROL_EXCHANGE,
        help="The workers' RPC exchange (control_exchange of their configuration).",
    ),
    cfg.FloatOpt(
        "call_timeout",
        default=rpc_api.DEFAULT_JOB_TIMEOUT,
        min=1,
        help="Seconds a hook waits for its job in all (it is queued, waits for the share's "
             "lock, runs). Longer than the workers' longest [manila] *_timeout.",
    ),
    cfg.FloatOpt(
        "call_monitor_timeout",
        default=rpc_api.DEFAULT_TIMEOUT,
        min=1,
        help="Seconds a hook's call may go without a heartbeat from the worker running its "
             "job before the worker is presumed dead (the job fails worker_unavailable; "
             "running the flow again answers from the same job).",
    ),
]

#: keystoneauth's standard [manila] options get these defaults.
_MANILA_DEFAULTS = {"service_type": "sharev2", "timeout": 60}


_METRICS_OPTS = [
    cfg.BoolOpt(
        "enabled",
        default=False,
        help="Serve Prometheus metrics on /metrics and a health check on /healthz (broker, "
             "lock backend and job store reachable: 200, else 503, with a JSON body) over "
             "HTTP. Needs prometheus_client (the 'worker' extra). See doc/metrics.rst.",
    ),
    cfg.HostAddressOpt(
        "host",
        default="127.0.0.1",
        help="Address the metrics listener binds to. It serves no secret, but anyone who "
             "reaches it learns the worker's load: keep it on a management network.",
    ),
    cfg.PortOpt(
        "port",
        default=9468,
        help="Port of the metrics listener (0: any free port, logged at start).",
    ),
]


def _keystoneauth_opts() -> list[cfg.Opt]:
    opts = (
        ks_loading.get_session_conf_options()
        + ks_loading.get_auth_common_conf_options()
        + ks_loading.get_adapter_conf_options(include_deprecated=True)
    )
    for opt in opts:
        if opt.dest in _MANILA_DEFAULTS:
            opt.default = _MANILA_DEFAULTS[opt.dest]
    return opts


def register_manila_opts(conf: cfg.ConfigOpts, group: str = MANILA_GROUP) -> None:
    """Register the Manila access options (keystoneauth + waits) in ``group``.

    The Karbor plugins call this on the conf Karbor gives them; the worker calls
    :func:`register_opts`.
    """
    conf.register_group(cfg.OptGroup(group, title="Manila access, waits and deadlines"))
    conf.register_opts(_MANILA_OPTS, group=group)
    for opt in _keystoneauth_opts():
        conf.register_opt(opt, group=group)
    ks_loading.register_auth_conf_options(conf, group)
    for name, value in _MANILA_DEFAULTS.items():
        conf.set_default(name, value, group=group)
    register_service_user_opts(conf)


_SERVICE_USER_OPTS = [
    cfg.BoolOpt(
        "send_service_user_token",
        default=False,
        help="Send this service user's token (X-Service-Token) beside the caller's token "
             "with every Manila request, as Nova and Cinder do: Manila's keystonemiddleware "
             "then accepts a user token that expired during a long job or before a resume "
             "(Manila needs service_token_roles_required, and this user the 'service' role). "
             "Without it, a job whose token expires fails with token_expired. The user's "
             "credentials are keystoneauth's auth options in this group.",
    ),
]


def register_service_user_opts(conf: cfg.ConfigOpts) -> None:
    """Register ``[service_user]`` (keystoneauth's auth options and the switch)."""
    group = client_factory.SERVICE_USER_GROUP
    conf.register_group(cfg.OptGroup(group, title="The service user sending service tokens"))
    conf.register_opts(_SERVICE_USER_OPTS, group=group)
    ks_loading.register_auth_conf_options(conf, group)


_KEYSTONE_OPTS = [
    cfg.IntOpt("token_cache_time", default=300, min=0,
               help="Seconds a validated token's identity is kept before Keystone is asked "
                    "again (a revoked token stops working within this time); never past "
                    "the token's expiry. 0 asks Keystone for every request."),
    cfg.IntOpt("token_cache_size", default=10000, min=1,
               help="Most validated tokens kept (least recently used dropped first)."),
]
#: keystoneauth's adapter options that find the identity endpoint for validation.
_KEYSTONE_ADAPTER_OPTS = ("valid_interfaces", "interface", "region_name")


def _keystone_opts(include_deprecated: bool) -> list[cfg.Opt]:
    adapter = [opt for opt in ks_loading.get_adapter_conf_options(
        include_deprecated=include_deprecated) if opt.dest in _KEYSTONE_ADAPTER_OPTS]
    return ks_loading.get_session_conf_options() + adapter + _KEYSTONE_OPTS


def register_keystone_opts(conf: cfg.ConfigOpts) -> None:
    """``[keystone_authtoken]``: keystoneauth's auth, session and adapter options, the cache.

    Set ``auth_type`` (and that plugin's options: the worker's own credentials) and
    the worker validates every request's token with Keystone; leave it unset and
    the bus is trusted (doc/configuration.rst, "Security model").  Options of
    keystonemiddleware's own that a deployment copies into the section
    (``www_authenticate_uri``, ``memcached_servers``...) are ignored.
    """
    conf.register_group(cfg.OptGroup(KEYSTONE_GROUP,
                                     title="Validating callers' tokens with Keystone"))
    ks_loading.register_auth_conf_options(conf, KEYSTONE_GROUP)
    for opt in _keystone_opts(include_deprecated=True):
        conf.register_opt(opt, group=KEYSTONE_GROUP)


def register_dispatch_opts(conf: cfg.ConfigOpts) -> None:
    """Register ``[dispatch]`` (the protection plugin's, in Karbor's provider file)."""
    conf.register_group(cfg.OptGroup(DISPATCH_GROUP,
                                     title="Where Karbor's protection plugin runs its jobs"))
    conf.register_opts(_DISPATCH_OPTS, group=DISPATCH_GROUP)


def register_client_opts(conf: cfg.ConfigOpts) -> None:
    """Register what a client of the workers reads of their configuration file
    (``[worker] topic`` and the rest of ``[worker]``; the CLI), without the job store's
    options (oslo.db is the worker extra's)."""
    conf.register_group(cfg.OptGroup(WORKER_GROUP, title="The protection worker"))
    conf.register_opts(_WORKER_OPTS, group=WORKER_GROUP)


def register_database_opts(conf: cfg.ConfigOpts) -> None:
    """Register oslo.db's ``[database]`` options on ``conf``, with the worker's default
    ``connection`` (:data:`DEFAULT_DATABASE_CONNECTION`)."""
    from oslo_db import options as db_options  # the worker extra's (see the module doc)

    db_options.set_defaults(conf, connection=DEFAULT_DATABASE_CONNECTION)


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register every manila_protector option on ``conf`` (the worker's and the job store's)."""
    conf.register_opts(_DEFAULT_OPTS)
    conf.register_group(cfg.OptGroup(WORKER_GROUP, title="The protection worker"))
    conf.register_opts(_WORKER_OPTS, group=WORKER_GROUP)
    conf.register_group(cfg.OptGroup(COORDINATION_GROUP, title="Per-share locks (tooz)"))
    conf.register_opts(_COORDINATION_OPTS, group=COORDINATION_GROUP)
    conf.register_group(cfg.OptGroup(METRICS_GROUP, title="Prometheus metrics and health"))
    conf.register_opts(_METRICS_OPTS, group=METRICS_GROUP)
    register_database_opts(conf)
    register_manila_opts(conf)
    register_keystone_opts(conf)


#: How a log line names its job (oslo.log's ``instance_uuid_format``, which formats the
#: request context's ``resource_uuid``: the runner puts the job id there).
JOB_LOG_FORMAT = "[job %(uuid)s] "


def set_log_defaults(conf: cfg.ConfigOpts) -> None:
    """The worker's defaults of oslo.log options on ``conf`` (registered already)."""
    conf.set_default("instance_uuid_format", JOB_LOG_FORMAT)


#: The worker's own defaults of oslo.messaging options (a configured value wins), beside
#: those every party of the RPC contract shares (:data:`contract.MESSAGING_DEFAULTS`):
#: ``messagingv2`` notifications, a prefetch bound on its queues, and heartbeat checks
#: often enough that an idle worker stops promptly.
WORKER_MESSAGING_DEFAULTS: dict[tuple[str, str], object] = {
    **contract.MESSAGING_DEFAULTS,
    ("oslo_messaging_notifications", "driver"): ["messagingv2"],
    ("oslo_messaging_rabbit", "rabbit_qos_prefetch_count"): 100,
    # NOTE: the RPC server's listener looks at its stop flag only between two reads of
    # the socket, each bounded by heartbeat_timeout_threshold / heartbeat_rate / 2 (60 /
    # 3 / 2 = 10 s, cut to 5 s by the listener): SIGTERM on an idle worker waited up to
    # 5 s for it. 30 checks per threshold bound each read to 1 s; a check sends nothing
    # unless the connection was silent for the negotiated heartbeat interval.
    ("oslo_messaging_rabbit", "heartbeat_rate"): 30,
}


def set_worker_messaging_defaults(conf: cfg.ConfigOpts) -> None:
    """Give ``conf``'s (registered) oslo.messaging options the worker's defaults."""
    for (group, name), value in WORKER_MESSAGING_DEFAULTS.items():
        conf.set_default(name, value, group=None if group == "DEFAULT" else group)


def set_lib_defaults() -> None:
    """The worker's defaults of oslo.messaging, oslo.db and oslo.log options,
    process-wide, for the sample file: :data:`WORKER_MESSAGING_DEFAULTS`, the job
    store's ``connection`` and :data:`JOB_LOG_FORMAT`.

    Called by oslo-config-generator (entry point ``oslo.config.opts.defaults``)
    before it lists the ``oslo.messaging``, ``oslo.db`` and ``oslo.log`` namespaces; nothing else
    calls it.
    """
    from oslo_db import options as db_options  # the worker extra's (see the module doc)

    cfg.set_defaults(db_options.database_opts, connection=DEFAULT_DATABASE_CONNECTION)
    try:  # NOTE: oslo.log offers no public setter for instance_uuid_format
        from oslo_log import _options as log_options
    except ImportError:  # pragma: no cover - another oslo.log layout
        pass
    else:
        cfg.set_defaults(log_options.log_opts, instance_uuid_format=JOB_LOG_FORMAT)
    try:  # NOTE: oslo.messaging offers no public setter for most of its options
        from oslo_messaging import opts as messaging_opts
        library = messaging_opts._opts
    except (ImportError, AttributeError):  # pragma: no cover - another oslo.messaging layout
        return
    for group, options in library:
        group = group or "DEFAULT"
        cfg.set_defaults(options, **{name: value for (where, name), value
                                     in WORKER_MESSAGING_DEFAULTS.items() if where == group})


def one_line(exc: BaseException) -> str:
    """An oslo.config error's message on one line, without its ``Value for option X
    from LocationInfo(...) is not valid:`` preamble."""
    text = " ".join(str(exc).split())
    return re.sub(r"^Value for option \S+ (from LocationInfo\(.*?\) )?is not valid: ", "", text)


def first_invalid_value(conf: cfg.ConfigOpts) -> str | None:
    """Read every option registered on a parsed ``conf`` once; the first one whose value
    is not valid, as one line naming it (``[worker] max_concurrent_jobs: ...``).

    oslo.config converts a config file's values when they are first read: without
    this a typo surfaces as a traceback from wherever the option is first used.
    """
    for name in sorted(conf):
        try:
            value = conf[name]
        except (cfg.Error, ValueError) as exc:
            return f"[DEFAULT] {name}: {one_line(exc)}"
        if isinstance(value, cfg.ConfigOpts.GroupAttr):
            for option in sorted(value):
                try:
                    value[option]
                except (cfg.Error, ValueError) as exc:
                    return f"[{name}] {option}: {one_line(exc)}"
    return None


def list_opts() -> list[tuple[str | None, list[cfg.Opt]]]:
    """All options, for oslo-config-generator (``oslo.config.opts`` entry point); pure."""
    manila_opts = _MANILA_OPTS + _keystoneauth_opts() + ks_loading.get_auth_plugin_conf_options(
        "password")
    service_user_opts = _SERVICE_USER_OPTS + ks_loading.get_auth_common_conf_options() + \
        ks_loading.get_auth_plugin_conf_options("password")
    return [
        ("DEFAULT", copy.deepcopy(_DEFAULT_OPTS)),
        (WORKER_GROUP, copy.deepcopy(_WORKER_OPTS)),
        (COORDINATION_GROUP, copy.deepcopy(_COORDINATION_OPTS)),
        (METRICS_GROUP, copy.deepcopy(_METRICS_OPTS)),
        (MANILA_GROUP, copy.deepcopy(manila_opts)),
        (client_factory.SERVICE_USER_GROUP, copy.deepcopy(service_user_opts)),
        (KEYSTONE_GROUP, copy.deepcopy(
            ks_loading.get_auth_common_conf_options()
            + ks_loading.get_auth_plugin_conf_options("password")
            + _keystone_opts(include_deprecated=False))),
    ]


def list_provider_opts() -> list[tuple[str | None, list[cfg.Opt]]]:
    """The protection plugin's options in a Karbor provider file (``[manila]``, ``[dispatch]``).

    For oslo-config-generator (``oslo.config.opts`` namespace ``manila_protector.provider``).
    """
    return [group for group in list_opts()
            if group[0] in (MANILA_GROUP, client_factory.SERVICE_USER_GROUP)] + [
        (DISPATCH_GROUP, copy.deepcopy(_DISPATCH_OPTS))]
