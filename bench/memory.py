"""Benchmark 5 -- memory: a worker process's peak RSS, idle and with 1,000 accepted jobs.

The worker is a real ``python -m manila_protector.worker.service --config-file ...``
process on RabbitMQ at 127.0.0.1:5672 (its own exchange, topic and notification
topic), with the default ``file://`` lock backend and ``max_concurrent_jobs = 8``;
the Manila stand-in and the RPC client live in this process.  Where RabbitMQ does
not answer, the worker runs instead in a child process wired on the in-memory
transport, whose sending thread lives in the same child (say so in the output).

- idle: after the worker started and finished one protect (the warm-up);
- loaded: after 1,000 protect jobs were *accepted*: each recorded in the job
  store (its single-host default, an SQLite file under ``state_path``) and
  announced by its ``.start`` notification (counted here).  Every snapshot then
  takes an hour, so 8 jobs run (polling) and 992 wait in the store (the worker
  keeps only their ids queued).

Peak RSS is the kernel's high-water mark ``VmHWM`` of the worker's process
(``/proc/<pid>/status``).  Figure: both peaks beside their targets.

    python -m bench.memory           # 1,000 jobs
    python -m bench.memory --quick   # 100 jobs
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import threading
import time
import typing
import uuid

from oslo_config import cfg
import oslo_messaging

from manila_protector import exception
from manila_protector import jobs
from manila_protector.rpc import api as rpc_api
from manila_protector.rpc import context as rpc_context
from manila_standin import ManilaStandIn, StandInConfig
from manila_protector.worker import service as service_mod

from bench import report
from bench import rig

IDLE_TARGET_MB = 80.0
LOADED_TARGET_MB = 150.0
SLOW_SNAPSHOT = 3600.0
READY_TIMEOUT = 60.0
ACCEPT_TIMEOUT = 300.0


def memory_kb(pid: int | str) -> dict[str, int]:
    """``VmHWM`` and ``VmRSS`` of a process, in KiB."""
    found = {}
    with open(f"/proc/{pid}/status", encoding="utf-8") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                found[name] = int(value.split()[0])
    return found


class StartCounter:
    """A notification endpoint counting ``.start`` notifications (one per accepted job)."""

    def __init__(self) -> None:
        self.count = 0
        self._cond = threading.Condition()

    def info(self, ctxt: typing.Any, publisher_id: str, event_type: str, payload: typing.Any,
             metadata: typing.Any) -> None:
        if event_type.endswith(".start"):
            with self._cond:
                self.count += 1
                self._cond.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.count >= count, timeout)


def _conf(settings: dict[tuple[str | None, str], typing.Any]) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    service_mod.prepare_conf(conf)
    conf([], project="manila-protector-bench")
    for (group, name), value in settings.items():
        conf.set_override(name, value, group=group)
    return conf


def _settings(url: str, standin_endpoint: str, state_path: str
              ) -> dict[tuple[str | None, str], typing.Any]:
    suffix = uuid.uuid4().hex[:8]
    return {
        (None, "transport_url"): url,
        (None, "control_exchange"): f"bench_memory_{suffix}",
        (None, "host"): f"bench-memory-{suffix}",
        (None, "state_path"): state_path,
        ("worker", "topic"): f"bench_memory_{suffix}",
        ("worker", "max_concurrent_jobs"): 8,
        ("worker", "shutdown_timeout"): 2,
        ("manila", "endpoint_override"): standin_endpoint,
        ("oslo_messaging_notifications", "driver"): ["messagingv2"],
        ("oslo_messaging_notifications", "topics"): [f"bench_memory_notifications_{suffix}"],
        ("oslo_messaging_rabbit", "amqp_auto_delete"): True,
    }


def _write_conf(path: pathlib.Path, settings: dict[tuple[str | None, str], typing.Any]) -> None:
    groups: dict[str, list[str]] = {}
    for (group, name), value in settings.items():
        text = ",".join(value) if isinstance(value, list) else str(value)
        groups.setdefault(group or "DEFAULT", []).append(f"{name} = {text}")
    path.write_text("".join(f"[{g}]\n" + "\n".join(lines) + "\n\n" for g, lines in groups.items()))


class Driver:
    """What drives the worker: RPC client, notification listener, the stand-in's shares."""

    def __init__(self, conf: cfg.ConfigOpts, standin: ManilaStandIn) -> None:
        self.standin = standin
        self.conf = conf
        self.transport = rpc_api.get_transport(conf)
        self.notification_transport = oslo_messaging.get_notification_transport(conf)
        self.client = rpc_api.ProtectorAPI(self.transport, topic=conf.worker.topic,
                                           exchange=conf.control_exchange, timeout=60)
        self.project = rig.unlimited_project(standin)
        self.ctxt = rig.member_context(self.project)
        self.starts = StartCounter()
        self.listener = oslo_messaging.get_notification_listener(
            self.notification_transport,
            [oslo_messaging.Target(topic=t) for t in conf.oslo_messaging_notifications.topics],
            [self.starts], serializer=rpc_context.RequestContextSerializer())
        self.listener.start()

    def wait_ready(self, alive: typing.Callable[[], bool]) -> None:
        """Until the worker answers (``NotFound`` for a job that does not exist)."""
        probe = rpc_api.ProtectorAPI(self.transport, topic=self.client_topic,
                                      exchange=self.conf.control_exchange, timeout=2)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and alive():
            try:
                probe.get_job(self.ctxt, str(uuid.uuid4()))
            except exception.NotFound:
                return
            except exception.WorkerUnavailable:
                continue
        raise RuntimeError("the worker did not come up")

    @property
    def client_topic(self) -> str:
        return self.client._client.target.topic

    def warm_up(self) -> None:
        share = self.standin.create_share(self.project, size=1, access_rules=rig.RULES)
        record = self.client.protect(self.ctxt, str(uuid.uuid4()), share["id"],
                                     dict(rig.PROTECT_PARAMETERS))
        if record is None or record["status"] != jobs.SUCCEEDED:
            raise RuntimeError(f"the warm-up protect failed: {record!r}")

    def load(self, count: int) -> float:
        """Cast ``count`` protects whose snapshots take an hour; wait until all are accepted."""
        self.standin.config.delays.snapshot_create = SLOW_SNAPSHOT
        shares = self.standin.create_shares(self.project, count, size=1)
        already = self.starts.count
        began = time.monotonic()
        for share_id in shares:
            self.client.protect(self.ctxt, str(uuid.uuid4()), share_id,
                                dict(rig.PROTECT_PARAMETERS), cast=True)
        if not self.starts.wait_for(already + count, ACCEPT_TIMEOUT):
            raise RuntimeError(f"only {self.starts.count - already} of {count} jobs accepted")
        return time.monotonic() - began

    def close(self) -> None:
        self.listener.stop()
        self.listener.wait()
        self.transport.cleanup()
        self.notification_transport.cleanup()


def measure_process(root: str, standin: ManilaStandIn, jobs_count: int
                    ) -> tuple[dict[str, int], dict[str, int], float]:
    """The real worker process on RabbitMQ."""
    settings = _settings(rig.RABBIT_URL, standin.endpoint, os.path.join(root, "state"))
    conf_path = pathlib.Path(root, "worker.conf")
    _write_conf(conf_path, settings)
    driver = Driver(_conf(settings), standin)
    with open(os.path.join(root, "worker.log"), "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "manila_protector.worker.service", "--config-file",
             str(conf_path)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            driver.wait_ready(lambda: worker.poll() is None)
            driver.warm_up()
            idle = memory_kb(worker.pid)
            took = driver.load(jobs_count)
            loaded = memory_kb(worker.pid)
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            driver.close()
    return idle, loaded, took


def measure_child(root: str, standin: ManilaStandIn, jobs_count: int
                  ) -> tuple[dict[str, int], dict[str, int], float]:
    """The worker and its sender in one child process on the in-memory transport."""
    project = rig.unlimited_project(standin)
    spec = {"endpoint": standin.endpoint, "state_path": os.path.join(root, "state"),
            "project": project,
            "warm_up": standin.create_share(project, size=1, access_rules=rig.RULES)["id"],
            "shares": standin.create_shares(project, jobs_count, size=1)}
    child = subprocess.Popen([sys.executable, "-m", "bench.memory", "--child"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None

    def say(word: str) -> None:
        child.stdin.write(word + "\n")
        child.stdin.flush()

    def expect(word: str) -> str:
        line = child.stdout.readline().strip()
        if not line.startswith(word):
            raise RuntimeError(f"the child said {line!r}, not {word}")
        return line

    try:
        say(json.dumps(spec))
        expect("idle")
        idle = memory_kb(child.pid)
        standin.config.delays.snapshot_create = SLOW_SNAPSHOT
        say("load")
        took = float(expect("loaded").split()[1])
        loaded = memory_kb(child.pid)
        say("stop")
        child.wait(60)
    finally:
        if child.poll() is None:
            child.kill()
    return idle, loaded, took


def child_main() -> int:
    """The fallback's child: a worker on kombu+memory and the thread that feeds it."""
    rig.quiet()
    spec = json.loads(sys.stdin.readline())
    conf = _conf(_settings(rig.MEMORY_URL, spec["endpoint"], spec["state_path"]))
    transport = rpc_api.get_transport(conf)
    notification_transport = oslo_messaging.get_notification_transport(conf)
    service = service_mod.WorkerService(conf, transport=transport,
                                        notification_transport=notification_transport)
    service.start()
    client = rpc_api.ProtectorAPI(transport, topic=conf.worker.topic,
                                  exchange=conf.control_exchange, timeout=60)
    ctxt = rig.member_context(spec["project"])
    starts = StartCounter()
    listener = oslo_messaging.get_notification_listener(
        notification_transport,
        [oslo_messaging.Target(topic=t) for t in conf.oslo_messaging_notifications.topics],
        [starts], serializer=rpc_context.RequestContextSerializer())
    listener.start()
    record = client.protect(ctxt, str(uuid.uuid4()), spec["warm_up"],
                            dict(rig.PROTECT_PARAMETERS))
    if record is None or record["status"] != jobs.SUCCEEDED:
        raise RuntimeError(f"the warm-up protect failed: {record!r}")
    print("idle", flush=True)
    if sys.stdin.readline().strip() != "load":
        return 1
    began = time.monotonic()

    def send() -> None:
        for share_id in spec["shares"]:
            client.protect(ctxt, str(uuid.uuid4()), share_id, dict(rig.PROTECT_PARAMETERS),
                           cast=True)

    sender = threading.Thread(target=send, name="sender")
    sender.start()
    sender.join()
    if not starts.wait_for(len(spec["shares"]) + 1, ACCEPT_TIMEOUT):
        raise RuntimeError("not every job was accepted")
    print(f"loaded {time.monotonic() - began:.2f}", flush=True)
    sys.stdin.readline()
    listener.stop()
    listener.wait()
    service.stop()
    transport.cleanup()
    notification_transport.cleanup()
    return 0


def _mb(kib: int) -> float:
    return kib / 1024


def imports_only_kb() -> dict[str, int]:
    """A fresh interpreter that only imports the worker's service module."""
    out = subprocess.run(
        [sys.executable, "-c",
         "import bench, manila_protector.worker.service, sys; "
         "print(open('/proc/self/status').read())"],
        capture_output=True, text=True, check=True).stdout
    return {line.split(":")[0]: int(line.split()[1]) for line in out.splitlines()
            if line.startswith(("VmHWM", "VmRSS"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 100 jobs")
    parser.add_argument("--jobs", type=int, default=1000, help="protect jobs to accept")
    parser.add_argument("--transport", choices=("auto", "rabbit", "memory"), default="auto",
                        help="auto: RabbitMQ where it answers, else the in-memory child")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main()
    if args.quick:
        args.jobs = 100
    rig.quiet()
    report.header("Benchmark 5: worker memory", argv)
    use_rabbit = args.transport == "rabbit" or (args.transport == "auto" and rig.rabbit_answers())
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as root, \
            ManilaStandIn(StandInConfig()) as standin:
        if use_rabbit:
            how = ("`python -m manila_protector.worker.service` on RabbitMQ; client, listener "
                   "and stand-in in the benchmark's process")
            idle, loaded, took = measure_process(root, standin, args.jobs)
        else:
            how = ("RabbitMQ did not answer: worker and the thread casting to it in one child "
                   "process on the in-memory transport (the sender's memory is counted too)")
            idle, loaded, took = measure_child(root, standin, args.jobs)
    imports = imports_only_kb()
    ok_idle = _mb(idle["VmHWM"]) <= IDLE_TARGET_MB
    ok_loaded = _mb(loaded["VmHWM"]) <= LOADED_TARGET_MB
    report.table(
        ["worker state", "peak RSS (VmHWM) MB", "RSS now MB", "target MB", ""],
        [["imports only (`import manila_protector.worker.service`)",
          f"{_mb(imports['VmHWM']):.1f}", f"{_mb(imports['VmRSS']):.1f}", "", ""],
         ["idle (started, one protect done)", f"{_mb(idle['VmHWM']):.1f}",
          f"{_mb(idle['VmRSS']):.1f}", f"{IDLE_TARGET_MB:g}", report.met(ok_idle)],
         [f"{args.jobs:,} protect jobs accepted (8 running, the rest queued)",
          f"{_mb(loaded['VmHWM']):.1f}", f"{_mb(loaded['VmRSS']):.1f}",
          f"{LOADED_TARGET_MB:g}", report.met(ok_loaded)]],
        f"How: {how}. The {args.jobs:,} jobs were accepted {took:.1f} s after the first "
        "cast.")
    report.figure(f"memory: worker peak RSS idle {_mb(idle['VmHWM']):.0f} MB (target <= "
                  f"{IDLE_TARGET_MB:g}, {report.met(ok_idle)}), with {args.jobs:,} accepted jobs "
                  f"{_mb(loaded['VmHWM']):.0f} MB (target <= {LOADED_TARGET_MB:g}, "
                  f"{report.met(ok_loaded)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
