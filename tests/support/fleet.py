"""One fleet run: jobs cast at once to worker processes sharing one job store, what came of them.

Used by ``bench.fleet`` (the full size, figures for doc/performance.md) and by the
functional fleet test (CI size, the correctness counts only).  The workers are real
``python -m manila_protector.worker.service`` processes (:class:`rabbit.Workers`) on
the real RabbitMQ, sharing one database and one Redis for their locks and group
membership; the Manila stand-in and the notification listener live in the driving
process.

A run protects one share per job (so every job may run at once: the ideal wall time
is ``jobs x snapshot seconds / (workers x max_concurrent_jobs)``), optionally kills
one worker with SIGKILL for good once a fraction of the jobs ended, and then counts,
from what a user can see -- the notifications, the stand-in's snapshots and the job
store's records:

- jobs without a terminal notification, jobs with more than one;
- snapshots per job (a job tag, exactly one per succeeded job; none without a job);
- jobs the store still holds unfinished (orphans);
- the killed worker's unfinished jobs, and on which worker they ended (takeover);
- each worker's RSS, sampled throughout.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import os
import threading
import time
import typing
import uuid

from manila_protector import jobs as jobs_mod
from manila_protector.plugins import job_tags
from manila_standin import server as standin_server

from support import databases
from support import rabbit

OPTIONS = {"snapshot_name": "fleet", "description": "fleet run", "force": False}
#: Each worker's database pool (``[database] max_pool_size`` and ``max_overflow``).
DB_POOL = 10
#: Threads casting the jobs.
CAST_THREADS = 8
#: Seconds between two RSS samples of each worker.
RSS_PERIOD = 0.5


def rss_kib(pid: int) -> int | None:
    """``VmRSS`` of a process in KiB (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class RssSampler:
    """Samples every worker's RSS every :data:`RSS_PERIOD` seconds in a thread of its own."""

    def __init__(self, workers: typing.Sequence[rabbit.WorkerProcess]) -> None:
        self._workers = list(workers)
        self.peak_kib: dict[str, int] = {w.host: 0 for w in self._workers}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def _loop(self) -> None:
        while True:
            for worker in self._workers:
                kib = rss_kib(worker.popen.pid) if worker.running else None
                if kib:
                    self.peak_kib[worker.host] = max(self.peak_kib[worker.host], kib)
            self.samples += 1
            # A sampling period, not a wait for something to happen.
            if self._stop.wait(RSS_PERIOD):
                return

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclasses.dataclass
class FleetRun:
    """What one run did and what came of it."""

    workers: int
    slots: int
    jobs: int
    snapshot_seconds: float
    #: From the first cast to the last terminal notification received.
    seconds: float
    cast_seconds: float
    #: Per job: terminal notifications received.
    terminal: dict[str, int]
    #: Per job: status of its (last) terminal notification, and the host it names.
    status: dict[str, str]
    ended_on: dict[str, str]
    #: Per job tag: snapshots the stand-in holds; snapshots without one of our jobs.
    snapshots_per_job: dict[str, int]
    stray_snapshots: int
    #: Jobs the store still holds accepted or running after the run.
    unfinished_in_store: int
    #: Overlapping mutations of one share, as the stand-in recorded them.
    conflicts: int
    peak_rss_mib: dict[str, float]
    rss_samples: int
    killed: str | None = None
    killed_at: float | None = None
    #: The killed worker's jobs the store held unfinished when it was killed.
    killed_unfinished: list[str] = dataclasses.field(default_factory=list)
    #: The killed worker's finished jobs whose terminal notification was not recorded as
    #: sent when it was killed (sent again by the adopter: the documented window).
    killed_unsent: list[str] = dataclasses.field(default_factory=list)
    #: Jobs without a ``.start`` after the kill, sent again by the caller (doc/rpc.rst).
    resent: list[str] = dataclasses.field(default_factory=list)
    #: Seconds from the kill to the last of those jobs' terminal notifications.
    takeover_seconds: float | None = None
    error_codes: dict[str, int] = dataclasses.field(default_factory=dict)
    #: Seconds from the first cast to each job's first terminal notification, in order.
    ends: list[float] = dataclasses.field(default_factory=list)

    # -- the counts --------------------------------------------------------------------

    @property
    def concurrency(self) -> int:
        return self.workers * self.slots

    @property
    def ideal_seconds(self) -> float:
        return self.jobs * self.snapshot_seconds / self.concurrency

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds

    @property
    def steady_rate(self) -> float:
        """Jobs per second while the run was in full flow: from the 10th to the 90th
        percentile of the jobs' ends (the casting and the last jobs' tail left out)."""
        if len(self.ends) < 10:
            return float("nan")
        low, high = len(self.ends) // 10, len(self.ends) * 9 // 10
        span = self.ends[high - 1] - self.ends[low]
        return (high - 1 - low) / span if span > 0 else float("nan")

    def without_terminal(self) -> list[str]:
        return sorted(j for j, n in self.terminal.items() if n == 0)

    def repeated_terminal(self) -> list[str]:
        return sorted(j for j, n in self.terminal.items() if n > 1)

    def succeeded(self) -> list[str]:
        return sorted(j for j, s in self.status.items() if s == jobs_mod.SUCCEEDED)

    def failed(self) -> list[str]:
        return sorted(j for j, s in self.status.items() if s == jobs_mod.FAILED)

    def duplicates(self) -> list[str]:
        """Jobs with more than one snapshot in the stand-in."""
        return sorted(j for j, n in self.snapshots_per_job.items() if n > 1)

    def succeeded_without_snapshot(self) -> list[str]:
        return sorted(j for j in self.succeeded() if self.snapshots_per_job.get(j, 0) != 1)

    def orphans(self) -> int:
        """Jobs that never ended (no terminal notification, or unfinished in the store)
        and snapshots no job of the run owns."""
        return len(self.without_terminal()) + self.unfinished_in_store + self.stray_snapshots

    def repeated_outside_the_window(self) -> list[str]:
        """Jobs with more than one terminal notification not explained by the kill (a worker
        killed after sending ``.end``, before recording it: doc/notifications.rst)."""
        return sorted(set(self.repeated_terminal()) - set(self.killed_unsent))

    def taken_over(self) -> list[str]:
        """The killed worker's unfinished jobs that ended on another worker."""
        return sorted(j for j in self.killed_unfinished
                      if self.ended_on.get(j) not in (None, self.killed))

    def adopters(self) -> dict[str, int]:
        """Per worker that ended some of the killed worker's unfinished jobs: how many."""
        return dict(collections.Counter(self.ended_on[j] for j in self.taken_over()))


def run(
    *,
    standin: standin_server.ManilaStandIn,
    workers: rabbit.Workers,
    notifications: rabbit.Notifications,
    client: typing.Any,
    ctxt: typing.Any,
    project: str,
    store: databases.SharedStore,
    redis_url: str,
    workers_count: int,
    jobs_count: int,
    slots: int,
    snapshot_seconds: float,
    kill_after: float | None = None,
    takeover_after: int = 10,
    lock_timeout: int = 10,
    timeout: float | None = None,
    progress: typing.Callable[[str], None] | None = None,
) -> FleetRun:
    """Start ``workers_count`` workers, cast ``jobs_count`` protects at once, collect.

    :param kill_after: kill one worker (SIGKILL, never restarted) once this fraction
        of the jobs ended; None: no kill.
    :param timeout: seconds to wait for every job's end (default: generous, from the
        ideal); a run that does not end in time is reported, not raised.
    """
    say = progress or (lambda _text: None)
    fleet_options: dict[str, dict[str, typing.Any]] = {
        # The workers' connections must fit the server's max_connections (151 by
        # default, shared here with other users): oslo.db's default pool (5 + 50
        # overflow) times 4 workers does not.
        "database": {"connection": store.url, "max_pool_size": DB_POOL,
                     "max_overflow": DB_POOL},
        "worker": {"token_keys": store.key, "takeover_after": takeover_after,
                   "housekeeping_interval": 1},
    }
    # Group membership expires as fast as a lock: a killed worker is missed soon.
    backend = f"{redis_url}?lock_timeout={lock_timeout}&membership_timeout={lock_timeout}"
    started = [workers.start(workers.configure(standin, redis_url=backend,
                                               max_concurrent_jobs=slots, lock_wait=300,
                                               options=fleet_options))
               for _ in range(workers_count)]
    say(f"{workers_count} worker(s) up")
    share_ids = standin.create_shares(project, jobs_count, size=1)
    standin.reset_conflicts()
    job_ids = [str(uuid.uuid4()) for _ in share_ids]
    wanted = set(job_ids)
    collector = notifications.collector
    ideal = jobs_count * snapshot_seconds / (workers_count * slots)
    timeout = timeout if timeout is not None else ideal * 4 + 3 * takeover_after + 300
    killed = None
    killed_at = None
    killed_unfinished: list[str] = []
    killed_unsent: list[str] = []
    resent: list[str] = []
    view = store.open()
    try:
        with RssSampler(started) as sampler:
            began = time.monotonic()
            # Several senders, as many API services would: one sender's publishes
            # (persistent messages on durable queues) would spread "at once" over minutes.
            with concurrent.futures.ThreadPoolExecutor(CAST_THREADS) as senders:
                list(senders.map(lambda pair: client.protect(ctxt, pair[0], pair[1], OPTIONS,
                                                             cast=True),
                                 zip(job_ids, share_ids, strict=True)))
            cast_seconds = time.monotonic() - began
            say(f"{jobs_count} jobs cast in {cast_seconds:.1f} s")

            def ended() -> set[str]:
                return collector.finished_jobs() & wanted

            if kill_after is not None and workers_count > 1:
                mark = max(1, int(jobs_count * kill_after))
                collector.wait_for(lambda c: len(ended()) >= mark, timeout,
                                   what=f"{mark} jobs to end before the kill")
                victim = started[-1]
                killed, killed_at = victim.host, time.monotonic()
                victim.kill()
                killed_unfinished = view.unfinished(victim.host)
                killed_unsent = [r.job_id for r in view.unnotified(victim.host)]
                # RabbitMQ acknowledges a request when a worker receives it: what the
                # killed worker had received but not recorded is gone.  A caller sends
                # a job whose .start never came again, same job_id (doc/rpc.rst); one
                # still queued in RabbitMQ is then answered from the store.
                notifications.barrier()
                started_jobs = {n["payload"].get("job_id") for n in collector.items
                                if n["event_type"].endswith(".start")
                                and isinstance(n["payload"], dict)}
                for job_id, share_id in zip(job_ids, share_ids, strict=True):
                    if job_id not in started_jobs:
                        resent.append(job_id)
                        client.protect(ctxt, job_id, share_id, OPTIONS, cast=True)
                say(f"resent {len(resent)} job(s) without a .start")
                say(f"killed {victim.host} with {len(killed_unfinished)} unfinished job(s) "
                    f"after {len(ended())} ended")
            try:
                collector.wait_for(lambda c: ended() >= wanted,
                                   max(1.0, began + timeout - time.monotonic()),
                                   what=f"a terminal notification of {jobs_count} jobs")
            except AssertionError as exc:
                say(f"not every job ended: {exc}"[:300])
        notifications.barrier()
        for worker in started:
            if worker.running:
                worker.terminate(worker.config.shutdown_timeout + 20)
        unfinished = sum(view.counts().get(s, 0) for s in (jobs_mod.ACCEPTED, jobs_mod.RUNNING))
    finally:
        view.close()

    terminal: dict[str, int] = {j: 0 for j in job_ids}
    seen: dict[str, list[tuple[str, str, str, float]]] = collections.defaultdict(list)
    status: dict[str, str] = {}
    ended_on: dict[str, str] = {}
    last_received = began
    codes: collections.Counter[str] = collections.Counter()
    for note in collector.items:
        payload = note["payload"]
        if (not note["event_type"].endswith((".end", ".error")) or not isinstance(payload, dict)
                or payload.get("job_id") not in wanted):
            continue
        job_id = payload["job_id"]
        terminal[job_id] += 1
        seen[job_id].append((payload.get("host"), payload["status"], payload.get("finished_at"),
                             note["received"] - began))
        status[job_id] = payload["status"]
        ended_on[job_id] = payload.get("host")
        last_received = max(last_received, note["received"])
        if payload["status"] == jobs_mod.FAILED:
            codes[(payload.get("error") or {}).get("code", "?")] += 1
    shares = set(share_ids)
    per_tag: collections.Counter[str] = collections.Counter()
    stray = 0
    for snapshot in standin.snapshots():
        if snapshot["share_id"] not in shares:
            continue
        tag = (snapshot.get("metadata") or {}).get(job_tags.KEY)
        if tag in wanted:
            per_tag[tag] += 1
        else:
            stray += 1
    for job_id, notes in seen.items():
        if len(notes) > 1:
            say(f"job {job_id}: {len(notes)} terminal notifications {notes}; killed "
                f"{killed} at {(killed_at or began) - began:.1f} s; unfinished at the kill: "
                f"{job_id in killed_unfinished}")
    takeover_seconds = None
    if killed is not None and killed_unfinished:
        ends = [n["received"] for n in collector.items
                if n["event_type"].endswith((".end", ".error"))
                and isinstance(n["payload"], dict)
                and n["payload"].get("job_id") in set(killed_unfinished)]
        if ends:
            takeover_seconds = max(ends) - killed_at
    return FleetRun(
        workers=workers_count, slots=slots, jobs=jobs_count, snapshot_seconds=snapshot_seconds,
        seconds=last_received - began, cast_seconds=cast_seconds, terminal=terminal,
        status=status, ended_on=ended_on, snapshots_per_job=dict(per_tag),
        stray_snapshots=stray, unfinished_in_store=unfinished,
        conflicts=len(standin.conflicts()),
        peak_rss_mib={h: kib / 1024 for h, kib in sampler.peak_kib.items()},
        rss_samples=sampler.samples, killed=killed, killed_at=killed_at,
        killed_unfinished=killed_unfinished, killed_unsent=killed_unsent, resent=resent,
        takeover_seconds=takeover_seconds,
        error_codes=dict(codes),
        ends=sorted(min(note[3] for note in notes) for notes in seen.values()))


def machine_load() -> str:
    """The load averages and how many CPUs this process sees (for reports)."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} on {os.cpu_count()} CPUs"
