"""``manila-protector``: the operator's command line, on cliff (as OpenStack's CLIs are).

::

    manila-protector --config-file /etc/manila-protector/manila-protector.conf \\
        --os-cloud mycloud protect <share> --name nightly

The bus comes from the workers' own configuration file (``--config-file``:
``[DEFAULT] transport_url``, ``control_exchange``, ``[worker] topic``,
``[oslo_messaging_notifications] topics``...); identity from ``--os-cloud`` /
``OS_*`` (see :mod:`manila_protector.cli.credentials`).

Exit status: 0 the command (and its job) succeeded; 1 the job failed; 2 a usage,
configuration, identity or connection error, or a request the workers refused.
"""

from __future__ import annotations

import argparse
import sys
import typing

from cliff import app
from cliff import commandmanager
from oslo_config import cfg

from manila_protector import exception
from manila_protector import opts
from manila_protector import version
from manila_protector.cli import credentials
from manila_protector.rpc import api as rpc_api
from manila_protector.rpc import broker
from manila_protector.rpc import context as rpc_context

#: Exit status of a job that failed.
EXIT_FAILED = 1
#: Exit status of a usage, configuration or connection error (argparse's too).
EXIT_USAGE = 2
#: Seconds a worker may go without answering (or heartbeating) before it is given up.
DEFAULT_TIMEOUT = 30.0


class Connection:
    """The CLI's configuration, transport and client, built on first use.

    :param options: the parsed global options.
    :param loader: the identity loader (``openstack.config``).
    """

    def __init__(self, options: argparse.Namespace, loader: typing.Any) -> None:
        self._options = options
        self._loader = loader
        self._conf: cfg.ConfigOpts | None = None
        self._transport: typing.Any = None
        self._notification_transport: typing.Any = None
        self._client: rpc_api.ProtectorAPI | None = None
        self._context: rpc_context.RequestContext | None = None

    @property
    def conf(self) -> cfg.ConfigOpts:
        """The workers' configuration, as the worker reads it (bus options only).

        :raises exception.InvalidRequest: a file cannot be read or a value is invalid.
        """
        if self._conf is None:
            conf = cfg.ConfigOpts()
            rpc_api.prepare_conf(conf)
            opts.register_client_opts(conf)
            files = self._options.config_file or None
            try:
                conf([], project="manila-protector", prog="manila-protector",
                     default_config_files=files,
                     default_config_dirs=self._options.config_dir or None)
                conf.worker.topic  # noqa: B018 - read now, so that a bad value fails here
            except (cfg.Error, ValueError) as exc:
                raise exception.InvalidRequest(f"configuration: {exc}") from None
            self._conf = conf
        return self._conf

    @property
    def topic(self) -> str:
        return self._options.topic or self.conf.worker.topic

    @property
    def client(self) -> rpc_api.ProtectorAPI:
        if self._client is None:
            import oslo_messaging

            self._check_broker()
            try:
                self._transport = rpc_api.get_transport(self.conf)
            except oslo_messaging.MessagingException as exc:
                raise exception.InvalidRequest(f"transport_url: {exc}") from None
            self._client = rpc_api.ProtectorAPI(
                self._transport, topic=self.topic, exchange=self.conf.control_exchange,
                timeout=self._options.rpc_timeout, retry=self._options.retry)
        return self._client

    def notification_transport(self) -> typing.Any:
        import oslo_messaging

        if self._notification_transport is None:
            self._check_broker()
            try:
                self._notification_transport = oslo_messaging.get_notification_transport(
                    self.conf)
            except oslo_messaging.MessagingException as exc:
                raise exception.InvalidRequest(f"transport_url: {exc}") from None
        return self._notification_transport

    def _check_broker(self) -> None:
        """Fail at once, with one line, where the broker is unreachable (oslo.messaging
        would wait for it forever: its reply queue reconnects without a bound)."""
        if self._options.retry is not None:
            broker.check_reachable(self.conf)

    @property
    def context(self) -> rpc_context.RequestContext:
        """The request context every request carries (see ``credentials``)."""
        if self._context is None:
            self._context = credentials.request_context(self._loader, self._options)
        return self._context

    def close(self) -> None:
        for transport in (self._transport, self._notification_transport):
            if transport is not None:
                transport.cleanup()
        self._transport = self._notification_transport = self._client = None


class ProtectorApp(app.App):
    """The ``manila-protector`` application.

    :param argv: the arguments (the identity options depend on ``--os-auth-type``).
    """

    NAME = "manila-protector"

    def __init__(self, argv: list[str]) -> None:
        self._argv = argv
        self._loader: typing.Any = None
        self.connection: Connection | None = None
        super().__init__(
            description="Protect OpenStack Manila shares through the manila-protector "
                        "workers: submit and follow jobs, list them, watch their "
                        "notifications, ping the workers.",
            version=version.version_string(),
            command_manager=commandmanager.CommandManager("manila_protector.cli"),
            deferred_help=True,
        )

    def build_option_parser(self, description: str, version: str,
                            argparse_kwargs: dict[str, typing.Any] | None = None
                            ) -> argparse.ArgumentParser:
        parser = super().build_option_parser(
            description, version, dict(argparse_kwargs or {}, prog=self.NAME))
        for action in parser._actions:  # noqa: SLF001 - cliff names its base class here
            if "--version" in action.option_strings:
                action.version = f"{self.NAME} {version}"
        bus = parser.add_argument_group("the workers' bus")
        bus.add_argument("--config-file", metavar="<path>", action="append",
                         help="The workers' configuration file (repeatable): the bus "
                              "([DEFAULT] transport_url, control_exchange), [worker] topic, "
                              "the notification topics. Default: oslo.config's search for "
                              "manila-protector.conf (/etc/manila-protector/...).")
        bus.add_argument("--config-dir", metavar="<path>", action="append",
                         help="A directory of *.conf files read after --config-file.")
        bus.add_argument("--topic", metavar="<topic>",
                         help="The workers' RPC topic (default: [worker] topic).")
        bus.add_argument("--rpc-timeout", metavar="<seconds>", type=_positive_float,
                         default=DEFAULT_TIMEOUT,
                         help="Seconds to wait for a worker's answer (default: %(default)s).")
        bus.add_argument("--retry", metavar="<count>", type=int, default=0,
                         help="Times to retry connecting to the broker (default: "
                              "%(default)s; -1: forever).")
        try:
            self._loader = credentials.register_arguments(parser, self._argv)
        except exception.ProtectorError as exc:
            parser.error(str(exc))
        return parser

    def initialize_app(self, argv: list[str]) -> None:
        if self.options.retry is not None and self.options.retry < 0:
            self.options.retry = None
        self.connection = Connection(self.options, self._loader)

    def clean_up(self, cmd: typing.Any, result: int, err: BaseException | None) -> None:
        if self.connection is not None:
            self.connection.close()


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    """The console script; returns the exit status (0, 1 job failed, 2 usage/connection)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args:
        args = ["--help"]
    try:
        return ProtectorApp(args).run(args)
    except SystemExit as exc:  # argparse's usage errors (2) and --help/--version (0)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
