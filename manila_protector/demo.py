"""``manila-protector-demo``: the whole product in one process, against the Manila stand-in.

Starts the Manila stand-in (a real HTTP server speaking the Manila v2 API) and
a worker on an in-memory oslo.messaging transport, then protects a share,
restores it into a new share and deletes the snapshot through the RPC client,
printing each notification as it arrives.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import threading
import typing
import uuid
import warnings

from manila_protector import version

try:
    import manila_standin
except ModuleNotFoundError:  # the product installed without its demo extra
    manila_standin = None

RULES = [
    {"access_type": "ip", "access_to": "10.20.0.0/16", "access_level": "rw"},
    {"access_type": "ip", "access_to": "10.30.1.5", "access_level": "ro"},
]


class _Console:
    """The demo's one writer: whole lines, one at a time.

    The notification listener's thread and the main thread (the replies) both
    print; a ``print`` writes its text and its newline in two writes, so without
    one lock their lines ran into each other.
    """

    def __init__(self, out: typing.TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()

    def line(self, text: str = "") -> None:
        with self._lock:
            self._out.write(text + "\n")
            self._out.flush()


class _Printer:
    """Notification endpoint: prints each notification as it arrives."""

    def __init__(self, console: _Console) -> None:
        self._console = console
        self.terminal = threading.Semaphore(0)

    def _show(self, priority: str, event_type: str, payload: dict) -> None:
        error = payload.get("error") or {}
        line = (f"  [{priority:5}] {event_type:34} job={payload.get('job_id', '')[:8]} "
                f"status={payload.get('status')}")
        if error:
            line += f" error={error.get('code')}: {error.get('message')}"
        self._console.line(line)
        if event_type.endswith((".end", ".error")):
            self.terminal.release()

    def info(self, ctxt: typing.Any, publisher_id: str, event_type: str, payload: dict,
             metadata: dict) -> None:
        self._show("INFO", event_type, payload)

    def error(self, ctxt: typing.Any, publisher_id: str, event_type: str, payload: dict,
              metadata: dict) -> None:
        self._show("ERROR", event_type, payload)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="manila-protector-demo", description=__doc__)
    parser.add_argument("--version", action="version", version=version.version_string())
    parser.add_argument("--delay", type=float, default=1.0,
                        help="seconds the stand-in takes for each Manila transition (default 1)")
    parser.add_argument("--transport-url", default="kombu+memory:////",
                        help="oslo.messaging transport (default: in-memory kombu)")
    parser.add_argument("--state-path", default=None,
                        help="worker state directory (default: a temporary directory)")
    return parser


def main(argv: list[str] | None = None, out: typing.TextIO = sys.stdout) -> int:
    """Run the demo; returns 0 when protect, restore and delete all succeeded."""
    args = _parser().parse_args(argv)
    if manila_standin is None:
        print("manila-protector-demo needs the Manila stand-in: "
              "pip install -e ./standin -e '.[demo]' in the source checkout", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="  (log) %(levelname)s %(name)s: %(message)s")
    # The in-memory broker has no host name and no heartbeats; kombu says so on every connect.
    for noisy in ("kombu", "oslo.messaging._drivers.impl_rabbit"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    config = manila_standin.StandInConfig(delays=manila_standin.Delays(
        share_create=args.delay, snapshot_create=args.delay, snapshot_delete=args.delay,
        share_delete=args.delay, access_apply=args.delay / 2))
    with warnings.catch_warnings():
        # eventlet (imported by oslo.messaging's dependencies) announces its own deprecation
        # when first imported; it is not ours to act on and only clutters the demo. The
        # filters hold for this run only: importing this module changes no process-wide state.
        warnings.filterwarnings("ignore", message="\\s*Eventlet is deprecated")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        with tempfile.TemporaryDirectory(prefix="manila-protector-demo-") as tmp, \
                manila_standin.ManilaStandIn(config) as standin:
            return _run(args, standin, args.state_path or os.path.join(tmp, "state"),
                        _Console(out))


def _run(args: argparse.Namespace, standin: manila_standin.ManilaStandIn, state_path: str,
         console: _Console) -> int:
    # Imported here, under main()'s warning filters: oslo.messaging pulls eventlet in.
    from oslo_config import cfg
    from oslo_context import context as oslo_context
    import oslo_messaging

    from manila_protector.rpc import api as rpc_api
    from manila_protector.rpc import context as rpc_context
    from manila_protector.worker import service as service_mod

    conf = cfg.CONF  # oslo.messaging registers some options only on the global CONF
    service_mod.prepare_conf(conf)
    conf([], project="manila-protector-demo")
    conf.set_override("transport_url", args.transport_url)
    conf.set_override("state_path", state_path)
    conf.set_override("host", "demo-worker")
    conf.set_override("endpoint_override", standin.endpoint, group="manila")
    conf.set_override("driver", ["messagingv2"], group="oslo_messaging_notifications")
    conf.set_override("topics", ["manila_protector_demo"], group="oslo_messaging_notifications")

    project = uuid.uuid4().hex
    share = standin.create_share(project, size=10, name="finance-data", share_proto="NFS",
                                 metadata={"department": "finance"}, access_rules=RULES)
    console.line(f"Manila stand-in at {standin.endpoint}; project {project}")
    console.line(f"Share {share['id']} ({share['size']} GiB NFS) with access rules "
                 f"{[r['access_to'] for r in RULES]}")

    transport = rpc_api.get_transport(conf)
    notification_transport = oslo_messaging.get_notification_transport(conf)
    printer = _Printer(console)
    listener = oslo_messaging.get_notification_listener(
        notification_transport, [oslo_messaging.Target(topic="manila_protector_demo")],
        [printer],
        serializer=rpc_context.RequestContextSerializer())
    listener.start()
    worker = service_mod.WorkerService(conf, transport=transport,
                                       notification_transport=notification_transport)
    worker.start()
    client = rpc_api.ProtectorAPI(transport, topic=conf.worker.topic,
                                   exchange=conf.control_exchange)
    ctxt = oslo_context.RequestContext(auth_token=f"demo:{project}", user_id="demo",
                                       project_id=project, roles=["member", "reader"])
    ok = True
    try:
        console.line("\n1. protect (snapshot the share)")
        protected = client.protect(ctxt, str(uuid.uuid4()), share["id"], {
            "snapshot_name": "nightly", "description": "demo backup", "force": False})
        ok &= _report(protected, console)
        saved = protected["result"]

        console.line("\n2. restore (a new share from the snapshot, with the access rules)")
        restored = client.restore(ctxt, str(uuid.uuid4()), share["id"], saved,
                                  {"restore_name": "finance-data-restored"})
        ok &= _report(restored, console)
        if restored["status"] == "succeeded":
            new_id = restored["result"]["share_id"]
            rules = [(r["access_to"], r["state"]) for r in standin.access_rules(new_id)]
            console.line(f"   restored share {new_id}: {standin.share(new_id)['status']}, "
                         f"rules {rules}")

        console.line("\n3. delete (the snapshot)")
        deleted = client.delete(ctxt, str(uuid.uuid4()), share["id"], saved)
        ok &= _report(deleted, console)
        for _ in range(3):  # let the last notifications print before we stop
            printer.terminal.acquire(timeout=5)
    finally:
        worker.stop()
        listener.stop()
        listener.wait()
        transport.cleanup()
        notification_transport.cleanup()
    snapshots = standin.snapshots(share_id=share["id"])
    console.line(f"\nSnapshots of {share['id']} left in Manila: {len(snapshots)}")
    console.line("Demo " + ("succeeded" if ok else "FAILED"))
    return 0 if ok else 1


def _report(record: dict, console: _Console) -> bool:
    summary = {k: record[k] for k in ("job_id", "operation", "status")}
    if record.get("error"):
        summary["error"] = record["error"]
    console.line("   reply: " + json.dumps(summary))
    return record["status"] == "succeeded"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
