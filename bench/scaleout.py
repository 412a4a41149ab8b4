"""Benchmark: scale-out -- one worker process against two, on RabbitMQ with Redis locks.

::

    python -m bench.scaleout            # 3 rounds of 400 protect jobs over 200 shares
    python -m bench.scaleout --quick    # 1 round of 100 jobs over 50 shares

Worker processes (``python -m manila_protector.worker.service``, each with
``max_concurrent_jobs = 4``) share a topic on the machine's RabbitMQ (an exchange
of their own) and a private ``redis-server`` for the per-share locks; the Manila
stand-in answers every request after 50 ms.  Each run protects fresh shares, two
jobs per share, cast in share order (a share's two jobs are a whole pass apart); it
is timed from the first cast to the last ``.end`` notification received.  The 1-
and 2-worker runs alternate (1, 2, then 2, 1, ...), so drift on a shared machine
hits both; the figure is the median over rounds of each round's ratio.

The workers share one job store (an SQLite file of the run's own; ``bench.fleet``
measures a fleet on MariaDB).  The figure shows that the topic, the locks and the job
store do not serialise workers: two workers should finish the same jobs in about half
the time (target >= 1.8x).

The figures and their analysis: doc/performance.md, "Scale-out over RabbitMQ".
"""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import statistics
import sys
import tempfile
import time
import typing
import uuid

from manila_standin import config as standin_config
from manila_standin import server as standin_server

from bench import report
from bench import rig

# The worker-process harness lives with the tests (tests/support/rabbit.py).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))
from support import rabbit  # noqa: E402

TARGET = 1.8
OPTIONS = {"snapshot_name": "scaleout", "description": "bench.scaleout", "force": False}
END = "manila_protector.protect.end"
QUEUES = {"durable": {},
          "transient": {"oslo_messaging_rabbit": {"amqp_durable_queues": False}}}


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of every CPU so far (``/proc/stat``)."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def process_seconds(pid: int) -> float:
    """CPU seconds (user + system) a process used so far (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Run(typing.NamedTuple):
    round: int
    workers: int
    jobs: int
    seconds: float
    cast_seconds: float
    per_host: dict[str, int]
    requests_per_job: float
    failed: int
    driver_cpu: float
    worker_cpu: float
    machine_busy: float
    job_seconds: float

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds


def one_run(number: int, workers_count: int, args: argparse.Namespace,
            standin: standin_server.ManilaStandIn, broker: rabbit.Broker,
            redis_url: str, root: pathlib.Path) -> Run:
    """Start ``workers_count`` workers, protect ``args.jobs`` jobs, stop the workers."""
    names = rabbit.Names(topic=f"mp-scale-{uuid.uuid4().hex[:10]}",
                         notification_topic=f"mp-scale-n-{uuid.uuid4().hex[:10]}")
    project = uuid.uuid4().hex
    ctxt = rig.member_context(project)
    listener = rabbit.NotificationListener(broker, names)
    notifications = listener.start()
    workers = rabbit.Workers(broker, names, root / names.topic, ctxt)
    try:
        for _ in range(workers_count):
            workers.start(workers.configure(standin, redis_url=redis_url,
                                            max_concurrent_jobs=4, lock_wait=120,
                                            options=QUEUES[args.queues]))
        share_ids = standin.create_shares(project, args.shares, size=1)
        client = rabbit.rpc_api.ProtectorAPI(broker.transport, topic=names.topic,
                                                   exchange=broker.control_exchange)
        jobs = [(str(uuid.uuid4()), share_ids[i % len(share_ids)]) for i in range(args.jobs)]
        requests_before = standin.count_requests()
        cpu_before = time.process_time()
        workers_before = sum(process_seconds(w.popen.pid) for w in workers.started)
        busy_before, total_before = machine_ticks()
        began = time.monotonic()
        for job_id, share_id in jobs:
            client.protect(ctxt, job_id, share_id, OPTIONS, cast=True)
        cast_seconds = time.monotonic() - began
        wanted = {job_id for job_id, _ in jobs}
        collector = notifications.collector
        collector.wait_for(lambda c: c.finished_jobs() >= wanted, timeout=args.jobs * 2 + 60,
                           what=f"the end of {args.jobs} jobs")
        ends = [n for n in collector.items if n["event_type"].endswith((".end", ".error"))
                and n["payload"].get("job_id") in wanted]
        seconds = max(n["received"] for n in ends) - began
        driver_cpu = (time.process_time() - cpu_before) / seconds
        worker_cpu = (sum(process_seconds(w.popen.pid) for w in workers.started)
                      - workers_before) / seconds
        busy, total = machine_ticks()
        machine_busy = (busy - busy_before) / max(1, total - total_before)
        per_host: dict[str, int] = {}
        for note in ends:
            per_host[note["payload"]["host"]] = per_host.get(note["payload"]["host"], 0) + 1
        failed = sum(1 for n in ends if n["event_type"] != END)
        job_seconds = statistics.median(
            (datetime.datetime.fromisoformat(n["payload"]["finished_at"])
             - datetime.datetime.fromisoformat(n["payload"]["started_at"])).total_seconds()
            for n in ends)
        requests = standin.count_requests() - requests_before
    finally:
        workers.stop_all()
        listener.stop()
        rabbit.delete_from_broker(names.queues(), [f"{names.topic}_fanout"])
    return Run(number, workers_count, len(jobs), seconds, cast_seconds, per_host,
               requests / len(jobs), failed, driver_cpu, worker_cpu, machine_busy, job_seconds)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.scaleout", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 1 round of 100 jobs over 50 shares")
    parser.add_argument("--rounds", type=int, default=3, help="1- and 2-worker runs each")
    parser.add_argument("--jobs", type=int, default=400, help="protect jobs per run")
    parser.add_argument("--shares", type=int, default=200, help="shares per run")
    parser.add_argument("--queues", choices=sorted(QUEUES), default="durable",
                        help="RabbitMQ queues: the worker's default (durable) or "
                             "oslo.messaging's (transient); on both sides")
    parser.add_argument("--latency", type=float, default=0.05,
                        help="seconds the stand-in takes to answer (default 0.05)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.quick:
        args.rounds, args.jobs, args.shares = 1, 100, 50
    rig.quiet()
    report.header("Scale-out over RabbitMQ: 1 worker against 2", argv)
    if not rig.rabbit_answers():
        report.figure("scaleout: not run (no RabbitMQ on 127.0.0.1:5672)")
        return 2
    reason = rabbit.PrivateRedis.missing()
    if reason:
        report.figure(f"scaleout: not run ({reason})")
        return 2
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-scaleout-") as tmp:
        root = pathlib.Path(tmp)
        redis_server = rabbit.PrivateRedis(root / "redis")
        redis_server.start()
        broker = rabbit.open_broker(overrides=QUEUES[args.queues])
        config = standin_config.StandInConfig(
            latency=args.latency,
            quotas=standin_config.Quotas(shares=-1, gigabytes=-1, snapshots=-1,
                                         snapshot_gigabytes=-1))
        try:
            with standin_server.ManilaStandIn(config) as standin:
                for number in range(1, args.rounds + 1):
                    order = (1, 2) if number % 2 else (2, 1)
                    for count in order:
                        run = one_run(number, count, args, standin, broker, redis_server.url,
                                      root)
                        runs.append(run)
                        print(f"(round {number}, {count} worker(s): {run.rate:.1f} jobs/s)",
                              file=sys.stderr, flush=True)
        finally:
            rabbit.close_broker(broker)
            redis_server.close()

    report.table(
        ["round", "workers", "jobs", "seconds", "jobs/s", "jobs per worker", "failed",
         "Manila requests per job", "job (s, median)", "casting (s)", "workers' CPU",
         "driver CPU", "machine busy"],
        [[r.round, r.workers, r.jobs, f"{r.seconds:.1f}", f"{r.rate:.1f}",
          " / ".join(str(n) for n in sorted(r.per_host.values(), reverse=True)), r.failed,
          f"{r.requests_per_job:.1f}", f"{r.job_seconds:.3f}", f"{r.cast_seconds:.1f}",
          f"{r.worker_cpu:.0%}",
          f"{r.driver_cpu:.0%}", f"{r.machine_busy:.0%}"]
         for r in runs],
        title="Each run (from the first cast to the last .end received):")
    one = [r.rate for r in runs if r.workers == 1]
    two = [r.rate for r in runs if r.workers == 2]
    ratios = [b.rate / a.rate for a in runs if a.workers == 1
              for b in runs if b.workers == 2 and b.round == a.round]
    ratio = statistics.median(ratios)
    bound = 4 / (runs[0].requests_per_job * args.latency)
    report.table(
        ["", "1 worker", "2 workers", "2 / 1"],
        [["median jobs/s", f"{statistics.median(one):.1f}", f"{statistics.median(two):.1f}",
          f"{ratio:.2f}x (median of the rounds' ratios)"]],
        title=f"Medians over {args.rounds} round(s), {args.jobs} jobs over {args.shares} shares,"
              f" stand-in latency {args.latency * 1000:g} ms, max_concurrent_jobs = 4, "
              f"{args.queues} queues:")
    report.note("CPU columns: share of one core used by the worker processes together and "
                "by this process (the stand-in and the notification listener); machine busy: "
                "all cores, everything running on the machine.")
    report.note(f"One worker cannot beat 4 slots x 1 / ({runs[0].requests_per_job:.1f} "
                f"requests x {args.latency * 1000:g} ms) = {bound:.1f} jobs/s: the latency, "
                "not the worker, sets the pace, which is what lets a second worker double it.")
    report.figure(f"scaleout: 2 workers / 1 worker = {ratio:.2f}x (target >= {TARGET:g}, "
                  f"{report.met(ratio >= TARGET)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
