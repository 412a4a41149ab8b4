"""``ping`` (every worker of the topic answers) and ``events`` (follow notifications)."""

from __future__ import annotations

import argparse
import json
import signal
import threading
import typing
import uuid

from cliff import command
from cliff import lister

from manila_protector import exception
from manila_protector.cli import base
from manila_protector.rpc import broker
from manila_protector.rpc import context as rpc_context


class Ping(base.Errors, lister.Lister):
    """Ask every worker of the topic how it is: host, version, running and queued jobs,
    uptime.

    One worker of the topic answers first and names the workers its lock backend
    knows; each of those is then asked by name.  Exit status 2 when one of them
    does not answer.
    """

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--host", metavar="<host>", action="append", dest="hosts",
                            help="Ask this worker only (repeatable).")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[typing.Any, typing.Any]:
        connection = self.app.connection
        client, ctxt = connection.client, connection.context
        answers: dict[str, dict[str, typing.Any] | None] = {}
        hosts = list(parsed_args.hosts or [])
        if not hosts:
            first = client.ping(ctxt)
            answers[first["host"]] = first
            hosts = sorted(set(first.get("members") or []) | {first["host"]})
        for host in hosts:
            if host in answers:
                continue
            try:
                answers[host] = client.ping(ctxt, server=host)
            except exception.WorkerUnavailable:
                answers[host] = None
        silent = sorted(host for host, answer in answers.items() if answer is None)
        self.silent = silent
        rows = []
        for host in sorted(answers):
            answer = answers[host]
            if answer is None:
                rows.append([host, "no answer", None, None, None, None])
            else:
                rows.append([host, "ok", answer.get("version"), answer.get("running"),
                             answer.get("queued"), answer.get("uptime")])
        return (["Host", "State", "Version", "Running", "Queued", "Uptime"], rows)

    def run(self, parsed_args: argparse.Namespace) -> int:
        status = super().run(parsed_args)
        if status == 0 and getattr(self, "silent", None):
            self.app.stderr.write(f"{self.app.NAME}: error: no answer from worker(s) "
                                  f"{', '.join(self.silent)} [worker_unavailable]\n")
            return base.EXIT_USAGE
        return status


class _Printer:
    """The notification listener's endpoint: filters and prints each notification."""

    def __init__(self, parsed_args: argparse.Namespace, out: typing.TextIO,
                 done: threading.Event) -> None:
        self._args = parsed_args
        self._out = out
        self._done = done
        self._lock = threading.Lock()
        self.shown = 0

    def _wanted(self, event_type: str, payload: typing.Any) -> bool:
        if not isinstance(payload, dict):
            return False
        args = self._args
        return ((not args.job or payload.get("job_id") == args.job)
                and (not args.share or payload.get("share_id") == args.share)
                and (not args.operation or payload.get("operation") == args.operation))

    def _show(self, priority: str, publisher_id: str, event_type: str, payload: typing.Any,
              metadata: dict[str, typing.Any]) -> None:
        if not self._wanted(event_type, payload):
            return
        timestamp = (metadata or {}).get("timestamp")
        if self._args.format == "json":
            line = json.dumps({"timestamp": timestamp, "priority": priority,
                               "publisher_id": publisher_id, "event_type": event_type,
                               "payload": payload}, sort_keys=True)
        else:
            parts = [str(timestamp), event_type, f"job={payload.get('job_id')}",
                     f"share={payload.get('share_id')}", f"status={payload.get('status')}"]
            if payload.get("phase"):
                parts.append(f"phase={payload['phase']}")
            if payload.get("error"):
                parts.append(f"error={payload['error'].get('code')}")
            line = " ".join(parts)
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()
            self.shown += 1
            args = self._args
            if args.max_events and self.shown >= args.max_events:
                self._done.set()
            if args.job and event_type.endswith((".end", ".error")):
                self._done.set()

    def info(self, ctxt: typing.Any, publisher_id: str, event_type: str, payload: typing.Any,
             metadata: dict[str, typing.Any]) -> None:
        self._show("INFO", publisher_id, event_type, payload, metadata)

    def error(self, ctxt: typing.Any, publisher_id: str, event_type: str, payload: typing.Any,
              metadata: dict[str, typing.Any]) -> None:
        self._show("ERROR", publisher_id, event_type, payload, metadata)


class Events(base.Errors, command.Command):
    """Follow the workers' notifications as they come (filtered by job, share, operation).

    Listens with a queue of its own (deleted on exit), bound to the notification
    topics of the configuration file on the workers' exchange: other consumers
    of those topics miss nothing.  Only notifications sent after it started are
    shown.  With --job it ends at that job's .end or .error.
    """

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--job", metavar="<job-id>", help="Only this job's (and end "
                            "at its .end or .error).")
        parser.add_argument("--share", metavar="<share-id>", help="Only this share's.")
        parser.add_argument("--operation", choices=("protect", "restore", "delete", "verify"),
                            help="Only this operation's.")
        parser.add_argument("--max-events", metavar="<n>", type=int,
                            help="End after this many notifications.")
        parser.add_argument("--duration", metavar="<seconds>", type=float,
                            help="End after this many seconds.")
        parser.add_argument("-f", "--format", choices=("text", "json"), default="text",
                            help="One line per notification: text, or a JSON object.")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        import oslo_messaging

        connection = self.app.connection
        conf = connection.conf
        transport = connection.notification_transport()
        topics = list(conf.oslo_messaging_notifications.topics)
        queue = f"manila-protector-events-{uuid.uuid4().hex[:12]}"
        done = threading.Event()
        printer = _Printer(parsed_args, self.app.stdout, done)
        listener = oslo_messaging.get_notification_listener(
            transport, [oslo_messaging.Target(topic=topic) for topic in topics], [printer],
            executor="threading", serializer=rpc_context.RequestContextSerializer(),
            pool=queue)
        try:
            listener.start()
        except oslo_messaging.MessagingException as exc:
            raise exception.WorkerUnavailable(
                f"cannot listen for notifications: {type(exc).__name__}") from None
        described = broker.describe(conf)
        self.app.stderr.write(
            f"listening on exchange {described['exchange']} (durable: "
            f"{str(described['durable']).lower()}), topics {', '.join(topics)}, "
            f"queue {queue}\n")
        self.app.stderr.flush()
        # SIGTERM (and SIGINT where a shell left it ignored) ends it like Ctrl-C: the queue
        # is deleted on the way out.
        previous = {signum: signal.signal(signum, lambda *_: done.set())
                    for signum in (signal.SIGTERM, signal.SIGINT)}
        try:
            done.wait(parsed_args.duration)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            listener.stop()
            listener.wait()
            if not broker.delete_queue(conf, queue):
                self.app.stderr.write(f"could not delete queue {queue}: delete it with "
                                      f"'rabbitmqctl delete_queue {queue}'\n")
        return 0
