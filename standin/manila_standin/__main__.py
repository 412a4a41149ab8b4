"""Run a Manila stand-in from the command line.

``manila-protector-standin --port 8786 --snapshot-create-delay 5`` serves the
Manila v2 API until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import typing
import uuid

from manila_standin import config as config_mod
from manila_standin import server as server_mod

LOG = logging.getLogger(__name__)

_DELAYS = (
    "share_create", "snapshot_create", "snapshot_delete", "share_delete", "revert",
    "access_apply",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the command line parser of the stand-in."""
    parser = argparse.ArgumentParser(
        prog="manila-protector-standin",
        description="Serve a stand-in of the OpenStack Manila v2 API (noauth tokens "
        "'<user>:<project>').",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, default=8786, help="port to bind (0: any)")
    parser.add_argument("--min-version", default="2.0", help="lowest microversion served")
    parser.add_argument("--max-version", default="2.99", help="highest microversion served")
    for name in _DELAYS:
        parser.add_argument(
            "--" + name.replace("_", "-") + "-delay",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help=f"stand-in seconds a {name.replace('_', ' ')} takes",
        )
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="stand-in seconds per real second")
    parser.add_argument("--latency", type=float, default=0.0,
                        help="real seconds added to every answer")
    parser.add_argument("--error-rate", type=float, default=0.0,
                        help="share of requests answered 500/503 (0..1)")
    parser.add_argument("--slow-rate", type=float, default=0.0,
                        help="share of answers held back by --slow-delay (0..1)")
    parser.add_argument("--slow-delay", type=float, default=0.0,
                        help="real seconds a slow answer is held back")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault rates")
    parser.add_argument("--log-level", default="INFO", help="logging level")
    return parser


def config_from_args(args: argparse.Namespace) -> config_mod.StandInConfig:
    """Turn parsed arguments into a :class:`StandInConfig`."""
    delays = config_mod.Delays(**{name: getattr(args, f"{name}_delay") for name in _DELAYS})
    return config_mod.StandInConfig(
        min_version=args.min_version,
        max_version=args.max_version,
        delays=delays,
        time_scale=args.time_scale,
        latency=args.latency,
        error_rate=args.error_rate,
        slow_rate=args.slow_rate,
        slow_delay=args.slow_delay,
        seed=args.seed,
    )


def main(argv: typing.Sequence[str] | None = None) -> int:
    """Serve until interrupted; returns the process exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        config = config_from_args(args)
        standin = server_mod.ManilaStandIn(config, host=args.host, port=args.port)
        standin.start()
    except (OSError, ValueError) as exc:
        print(f"manila-protector-standin: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def _stop(signum: int, frame: typing.Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    print(f"Manila stand-in endpoint: {standin.endpoint}", flush=True)
    print(f"Example token (noauth, admin of a project): demo:{uuid.uuid4().hex}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
