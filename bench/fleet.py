"""Benchmark: a fleet -- 10,000 jobs cast at once to 4 worker processes, one killed for good.

::

    python -m bench.fleet            # the issue's size: 10,000 jobs, 4 workers (tox -e fleet)
    python -m bench.fleet --quick    # a smoke run: 120 jobs; 24 per worker side by side

Worker processes (``python -m manila_protector.worker.service``, ``max_concurrent_jobs
= --slots`` each) share a topic on the machine's RabbitMQ (an exchange of their own),
one job store on the machine's MariaDB (a database of the run's own, migrated as
``manila-protector-manage db sync`` does, dropped afterwards) and a private
``redis-server`` for their locks and group membership.  The Manila stand-in answers
every request after 50 ms and makes every snapshot in 1 s.  Every job protects a
share of its own, so all of them may run at once: the ideal wall time is
``jobs x 1 s / (workers x slots)``.

Two parts, one process, one stand-in:

1. **Throughput side by side**: ``--compare-jobs`` protects per worker on 1 worker, then
   on ``--workers`` workers (as many per worker: each slot runs as many jobs one after
   the other on both sides; the order alternates over ``--rounds``); the figures are the
   median of the rounds' ratios of jobs per second, over each whole run and in full
   flow (from the 10th to the 90th percentile of the jobs' ends).
2. **The fleet run**: ``--jobs`` protects cast at once; once ``--kill-after`` of them
   ended, one worker is killed with SIGKILL and never restarted: the others adopt its
   jobs after ``--takeover-after`` seconds.  Counted: terminal notifications per job,
   snapshots per job (the stand-in's), jobs the store holds unfinished at the end
   (orphans), the killed worker's jobs and where they ended, each worker's RSS
   (sampled every 0.5 s throughout), and the wall time beside the ideal.

Nothing here is asserted: the correctness counts at CI size are asserted by
``tests/functional/test_fleet.py`` (which runs the same code, ``tests/support/fleet.py``).
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import tempfile
import time
import uuid

from manila_standin import config as standin_config
from manila_standin import server as standin_server

from bench import report
from bench import rig

# The worker-process harness lives with the tests (tests/support/).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))
from support import databases  # noqa: E402
from support import fleet  # noqa: E402
from support import rabbit  # noqa: E402

RSS_TARGET_MB = 150.0
IDEAL_TARGET = 1.15
SCALE_TARGET = 3.5


def machine_busy() -> tuple[int, int]:
    """(busy, total) clock ticks of every CPU so far (``/proc/stat``)."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def one_run(args: argparse.Namespace, standin: standin_server.ManilaStandIn,
            broker: rabbit.Broker, redis_url: str, root: pathlib.Path, workers_count: int,
            jobs_count: int, kill_after: float | None) -> tuple[fleet.FleetRun, float]:
    """A fleet of ``workers_count`` on a fresh store and topic; returns the run and the
    share of the machine's CPUs busy meanwhile."""
    names = rabbit.Names(topic=f"mp-fleet-{uuid.uuid4().hex[:10]}",
                         notification_topic=f"mp-fleet-n-{uuid.uuid4().hex[:10]}")
    project = uuid.uuid4().hex
    ctxt = rig.member_context(project)
    listener = rabbit.NotificationListener(broker, names)
    notifications = listener.start()
    workers = rabbit.Workers(broker, names, root / names.topic, ctxt)
    store = databases.SharedStore.create()
    busy_before, total_before = machine_busy()
    try:
        client = rabbit.rpc_api.ProtectorAPI(broker.transport, topic=names.topic,
                                             exchange=broker.control_exchange)
        done = fleet.run(
            standin=standin, workers=workers, notifications=notifications, client=client,
            ctxt=ctxt, project=project, store=store, redis_url=redis_url,
            workers_count=workers_count, jobs_count=jobs_count, slots=args.slots,
            snapshot_seconds=args.snapshot, kill_after=kill_after,
            takeover_after=args.takeover_after, timeout=args.timeout,
            progress=lambda text: print(f"({workers_count} worker(s), {jobs_count} jobs: "
                                        f"{text})", file=sys.stderr, flush=True))
    finally:
        workers.stop_all()
        listener.stop()
        rabbit.delete_from_broker(names.queues(), [f"{names.topic}_fanout"])
        store.drop()
    busy, total = machine_busy()
    share = (busy - busy_before) / max(1, total - total_before)
    # Each run's figures as soon as it ends (a long run's report comes only at the end).
    print(f"({workers_count} worker(s), {jobs_count} jobs: done in {done.seconds:.1f} s, "
          f"{done.rate:.2f} jobs/s, ideal {done.ideal_seconds:.1f} s, peak RSS "
          f"{max(done.peak_rss_mib.values()):.0f} MB, orphans {done.orphans()}, duplicates "
          f"{len(done.duplicates())}, failed {len(done.failed())} {done.error_codes or ''}, "
          f"machine busy {share:.0%}; "
          f"{fleet.machine_load()})", file=sys.stderr, flush=True)
    return done, share


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run (about 2 minutes)")
    parser.add_argument("--jobs", type=int, default=10000, help="jobs of the fleet run")
    parser.add_argument("--workers", type=int, default=4, help="worker processes")
    parser.add_argument("--slots", type=int, default=8,
                        help="max_concurrent_jobs of each worker (default 8, the product's)")
    parser.add_argument("--compare-jobs", type=int, default=400,
                        help="jobs per worker of each run of the side-by-side throughput "
                             "part (0: skip)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="1-worker and N-worker runs each in the side-by-side part")
    parser.add_argument("--kill-after", type=float, default=0.3,
                        help="share of the jobs ended when one worker is killed")
    parser.add_argument("--takeover-after", type=int, default=10,
                        help="[worker] takeover_after of the workers (seconds, min 10)")
    parser.add_argument("--timeout", type=float, default=5400,
                        help="seconds the fleet run waits for every job's end before it "
                             "counts what is missing (default 5400)")
    parser.add_argument("--latency", type=float, default=0.05,
                        help="seconds the stand-in takes to answer (default 0.05)")
    parser.add_argument("--snapshot", type=float, default=1.0,
                        help="seconds the stand-in takes to make a snapshot (default 1)")
    return parser


def _mb(value: float) -> str:
    return f"{value:.0f}"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.quick:
        args.jobs, args.compare_jobs, args.rounds = 120, 24, 1
    rig.quiet()
    report.header("Fleet: jobs cast at once to worker processes sharing one job store", argv)
    for reason in (None if rig.rabbit_answers() else "no RabbitMQ on 127.0.0.1:5672",
                   rabbit.PrivateRedis.missing(), databases.SharedStore.missing()):
        if reason:
            report.figure(f"fleet: not run ({reason})")
            return 2
    print(f"- machine at the start: {fleet.machine_load()}\n", flush=True)
    compared: list[tuple[fleet.FleetRun, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        root = pathlib.Path(tmp)
        redis_server = rabbit.PrivateRedis(root / "redis")
        redis_server.start()
        broker = rabbit.open_broker()
        config = standin_config.StandInConfig(
            latency=args.latency, delays=standin_config.Delays(snapshot_create=args.snapshot),
            quotas=standin_config.Quotas(shares=-1, gigabytes=-1, snapshots=-1,
                                         snapshot_gigabytes=-1))
        began = time.monotonic()
        try:
            with standin_server.ManilaStandIn(config) as standin:
                if args.compare_jobs:
                    for number in range(1, args.rounds + 1):
                        order = (1, args.workers) if number % 2 else (args.workers, 1)
                        for count in order:
                            compared.append(one_run(args, standin, broker, redis_server.url,
                                                    root, count, args.compare_jobs * count,
                                                    None))
                main_run, main_busy = one_run(args, standin, broker, redis_server.url, root,
                                              args.workers, args.jobs, args.kill_after)
        finally:
            rabbit.close_broker(broker)
            redis_server.close()
    took = time.monotonic() - began

    runs = compared + [(main_run, main_busy)]
    report.table(
        ["run", "workers x slots", "jobs", "seconds", "ideal s", "seconds / ideal",
         "jobs/s", "in full flow", "casting s", "peak RSS per worker MB", "failed",
         "machine busy"],
        [["side by side" if run is not main_run else "fleet run (one killed)",
          f"{run.workers} x {run.slots}", run.jobs, f"{run.seconds:.1f}",
          f"{run.ideal_seconds:.1f}", f"{run.seconds / run.ideal_seconds:.2f}",
          f"{run.rate:.1f}", f"{run.steady_rate:.1f}", f"{run.cast_seconds:.1f}",
          " / ".join(_mb(v) for v in run.peak_rss_mib.values()), len(run.failed()),
          f"{busy:.0%}"] for run, busy in runs],
        title=f"Each run, from the first cast to the last terminal notification received "
              f"(stand-in {args.latency * 1000:g} ms per request, {args.snapshot:g} s per "
              f"snapshot; machine busy: all CPUs, everything on the machine):")

    ratios, steady = [], []
    for number in range(args.rounds if args.compare_jobs else 0):
        one = compared[2 * number] if compared[2 * number][0].workers == 1 else \
            compared[2 * number + 1]
        many = compared[2 * number + 1] if one is compared[2 * number] else \
            compared[2 * number]
        ratios.append(many[0].rate / one[0].rate)
        steady.append(many[0].steady_rate / one[0].steady_rate)
    ratio = statistics.median(ratios) if ratios else float("nan")
    steady_ratio = statistics.median(steady) if steady else float("nan")

    m = main_run
    peak = max(m.peak_rss_mib.values())
    orphans = m.orphans()
    ideal_ratio = m.seconds / m.ideal_seconds
    report.table(
        ["count", "value", "target"],
        [["jobs", m.jobs, ""],
         ["jobs without a terminal notification", len(m.without_terminal()), 0],
         ["jobs with more than one terminal notification", len(m.repeated_terminal()),
          "0 (the kill's window excepted)"],
         ["... of them in the kill's documented window", len(
             set(m.repeated_terminal()) & set(m.killed_unsent)), ""],
         ["jobs failed", len(m.failed()), 0],
         ["jobs with two or more snapshots (duplicates)", len(m.duplicates()), 0],
         ["succeeded jobs without exactly one snapshot", len(m.succeeded_without_snapshot()),
          0],
         ["snapshots of no job of the run", m.stray_snapshots, 0],
         ["jobs left unfinished in the store", m.unfinished_in_store, 0],
         ["orphans (no terminal notification + unfinished + stray snapshots)", orphans, 0],
         ["overlapping mutations of one share (stand-in)", m.conflicts, 0],
         ["killed worker", m.killed or "none", ""],
         ["jobs without .start after the kill, resent by the caller (same job_id)",
          len(m.resent), ""],
         ["its unfinished jobs at the kill", len(m.killed_unfinished), ""],
         ["... of them ended on another worker (takeover)", len(m.taken_over()),
          len(m.killed_unfinished)],
         ["... of them per worker that ended them", " / ".join(
             str(n) for _, n in sorted(m.adopters().items())) or "", ""],
         ["seconds from the kill to the last of them ended",
          f"{m.takeover_seconds:.1f}" if m.takeover_seconds is not None else "", ""],
         ["peak RSS of any worker (MB, sampled every 0.5 s)", f"{peak:.0f}",
          f"<= {RSS_TARGET_MB:g}"],
         ["RSS samples per worker", m.rss_samples, ""],
         ["whole run / ideal", f"{ideal_ratio:.2f}", f"<= {IDEAL_TARGET}"],
         [f"{args.workers} workers / 1 worker, jobs per second (side by side, whole runs)",
          f"{ratio:.2f}", f">= {SCALE_TARGET}"],
         [f"{args.workers} workers / 1 worker, jobs per second in full flow",
          f"{steady_ratio:.2f}", ""]],
        title=f"The fleet run: {m.jobs:,} jobs cast at once to {m.workers} workers x "
              f"{m.slots} slots, store on MariaDB, locks on Redis:")
    for run, _ in runs:
        if run.error_codes:
            report.note(f"Failures by code, {run.workers} worker(s) x {run.jobs} jobs"
                        f"{' (the fleet run)' if run is m else ''}: {run.error_codes}")
    report.note(f"Whole benchmark {took:.0f} s; machine at the end: {fleet.machine_load()}.")
    report.figure(
        f"fleet: {m.jobs:,} jobs on {m.workers} workers, one killed: orphans {orphans}, "
        f"duplicates {len(m.duplicates())}, taken over {len(m.taken_over())}/"
        f"{len(m.killed_unfinished)}; peak RSS {peak:.0f} MB "
        f"({report.met(peak <= RSS_TARGET_MB)}); run/ideal {ideal_ratio:.2f} "
        f"({report.met(ideal_ratio <= IDEAL_TARGET)}); {args.workers}/1 workers "
        f"{ratio:.2f}x ({report.met(ratio >= SCALE_TARGET)}; {steady_ratio:.2f}x in full "
        "flow)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
