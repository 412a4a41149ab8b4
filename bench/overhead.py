"""Benchmark 1 -- overhead: protect -> restore -> delete through the RPC worker beside a bare loop.

The worker side calls :class:`~manila_protector.rpc.api.ProtectorAPI` (``call``,
which returns the finished job) on a worker in this process: in-memory
oslo.messaging transport, the job store on its single-host default (an SQLite
file under ``state_path``), tooz ``file://`` lock, notifications sent.  The bare
side makes the same Manila requests the plugin core makes for each operation,
with python-manilaclient, in a plain loop (create, poll, done): no RPC, job
store, lock, notification or validation.  Both talk to one Manila stand-in that
answers every request after ``--latency`` seconds (10 ms: a fast real Manila
API) and finishes every transition at once.  Rounds are interleaved (worker
first in even rounds, bare first in odd ones) so noise hits both sides.

Figure: the median over rounds of (worker round time / bare round time).  Also
printed: the same at zero latency, the requests each side made per operation,
and where the worker's own time goes (wall-clock breakdown and a profile).

    python -m bench.overhead            # 200 rounds at 10 ms and at 0 ms (+ RabbitMQ rows)
    python -m bench.overhead --quick    # a smoke run (~20 s)
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import functools
import os
import re
import sys
import tempfile
import threading
import time
import typing
import uuid

from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from manilaclient import api_versions
from manilaclient import client as manilaclient
from manilaclient import exceptions as manila_exc

from manila_protector import jobs
from manila_protector.plugins import client_factory
from manila_protector.plugins import job_tags
from manila_protector.plugins import manila_client
from manila_protector.plugins import schemas
from manila_protector.rpc import notifier as notifier_mod
from manila_standin import ManilaStandIn, StandInConfig
from manila_protector.worker import locks as locks_mod
from manila_protector.worker.store import api as store_api

from bench import report
from bench import rig

OPERATIONS = ("protect", "restore", "delete")
TARGET = 1.10
#: Python threads of the stand-in's HTTP server: not the worker's time.
STANDIN_THREAD_MARKERS = ("process_request_thread", "manila-standin-")


# -- the two sides ------------------------------------------------------------------------


class WorkerSide:
    """protect / restore / delete as RPC ``call``s to the worker."""

    name = "worker"

    def __init__(self, worker: rig.WorkerRig, project: str, share_id: str) -> None:
        self._client = worker.client
        self._ctxt = rig.member_context(project)
        self._share_id = share_id
        self._saved: dict[str, typing.Any] = {}
        self.restored: str | None = None

    def _check(self, record: dict[str, typing.Any] | None) -> dict[str, typing.Any]:
        if record is None or record["status"] != jobs.SUCCEEDED:
            raise RuntimeError(f"worker job did not succeed: {record!r}")
        return record["result"]

    def protect(self) -> None:
        self._saved = self._check(self._client.protect(
            self._ctxt, str(uuid.uuid4()), self._share_id, dict(rig.PROTECT_PARAMETERS)))

    def restore(self) -> None:
        result = self._check(self._client.restore(
            self._ctxt, str(uuid.uuid4()), self._share_id, self._saved,
            {"restore_name": "bench-restored"}))
        self.restored = result["share_id"]

    def delete(self) -> None:
        self._check(self._client.delete(self._ctxt, str(uuid.uuid4()), self._share_id,
                                        self._saved))


class BareSide:
    """The plugin core's Manila requests, written as a plain python-manilaclient loop.

    protect: get share, list the share's snapshots (for the job's tag), create the
    snapshot, poll it, list the share's access rules.  restore: get snapshot,
    list shares carrying the job's tag, create the share, poll it, list its rules,
    allow each saved rule, poll the rules.  delete: get snapshot, delete it, poll
    until 404.
    """

    name = "bare"
    TAG = job_tags.KEY

    def __init__(self, client: typing.Any, share_id: str) -> None:
        self.client = client
        self._share_id = share_id
        self._saved: dict[str, typing.Any] = {}
        self.restored: str | None = None

    @staticmethod
    def _poll(fetch: typing.Callable[[], str], done: typing.Container[str]) -> str:
        interval = 0.25
        while True:
            status = fetch()
            if status in done:
                return status
            time.sleep(interval)
            interval = min(interval * 1.25, 15.0)

    def protect(self) -> None:
        c = self.client
        tag = str(uuid.uuid4())
        share = c.shares.get(self._share_id)
        for snap in c.share_snapshots.list(detailed=True,
                                           search_opts={"share_id": self._share_id}):
            if (getattr(snap, "metadata", None) or {}).get(self.TAG) == tag:
                raise RuntimeError("a fresh tag cannot be found")
        snap = c.share_snapshots.create(self._share_id, force=False, name="bench",
                                        description="benchmark", metadata={self.TAG: tag})
        latest = {}

        def snapshot_status() -> str:
            latest["snap"] = c.share_snapshots.get(snap.id)
            return latest["snap"].status

        if self._poll(snapshot_status, {"available", "error"}) != "available":
            raise RuntimeError("snapshot failed")
        rules = [{"access_type": r.access_type, "access_to": r.access_to,
                  "access_level": r.access_level}
                 for r in c.share_access_rules.access_list(self._share_id)]
        self._saved = {"snapshot_id": snap.id, "size": latest["snap"].size,
                       "share_proto": share.share_proto, "share_type": share.share_type,
                       "availability_zone": share.availability_zone, "rules": rules}

    def restore(self) -> None:
        c = self.client
        tag = str(uuid.uuid4())
        saved = self._saved
        snap = c.share_snapshots.get(saved["snapshot_id"])
        if snap.status != "available":
            raise RuntimeError("snapshot not available")
        found = c.shares.list(detailed=True,
                              search_opts={"is_public": False, "metadata": {self.TAG: tag}})
        if found:
            raise RuntimeError("a fresh tag cannot be found")
        share = c.shares.create(saved["share_proto"], saved["size"],
                                snapshot_id=saved["snapshot_id"], name="bench-restored",
                                metadata={self.TAG: tag}, share_type=saved["share_type"],
                                availability_zone=saved["availability_zone"])

        def share_status() -> str:
            return c.shares.get(share.id).status

        if self._poll(share_status, {"available", "error"}) != "available":
            raise RuntimeError("restored share failed")
        present = {(r.access_type, r.access_to, r.access_level)
                   for r in c.share_access_rules.access_list(share.id)}
        for rule in saved["rules"]:
            key = (rule["access_type"], rule["access_to"], rule["access_level"])
            if key not in present:
                c.shares.allow(share.id, *key)

        def rules_status() -> str:
            states = [r.state for r in c.share_access_rules.access_list(share.id)]
            return "active" if all(s == "active" for s in states) else "applying"

        self._poll(rules_status, {"active"})
        self.restored = share.id

    def delete(self) -> None:
        c = self.client
        snapshot_id = self._saved["snapshot_id"]
        c.share_snapshots.get(snapshot_id)
        c.share_snapshots.delete(snapshot_id)

        def snapshot_status() -> str:
            try:
                return c.share_snapshots.get(snapshot_id).status
            except manila_exc.NotFound:
                return "gone"

        if self._poll(snapshot_status, {"gone", "error_deleting"}) != "gone":
            raise RuntimeError("snapshot not deleted")


def bare_client(standin: ManilaStandIn, project: str) -> typing.Any:
    """python-manilaclient at the microversion the worker negotiates (the newest both know)."""
    sess = ks_session.Session(auth=token_endpoint.Token(standin.endpoint, f"bench:{project}"))
    probe = manilaclient.Client(manila_client.CLIENT_MAX_VERSION, session=sess,
                                service_catalog_url=standin.endpoint, retries=0)
    version = api_versions.discover_version(probe, manila_client.CLIENT_MAX_VERSION)
    return manilaclient.Client(version, session=sess, service_catalog_url=standin.endpoint,
                               retries=0)


# -- measuring ----------------------------------------------------------------------------


class Round(typing.NamedTuple):
    seconds: dict[str, float]   # per operation
    requests: dict[str, int]    # per operation


def run_round(side: typing.Any, standin: ManilaStandIn) -> Round:
    seconds, requests = {}, {}
    for op in OPERATIONS:
        standin.reset_requests()
        began = time.perf_counter()
        getattr(side, op)()
        seconds[op] = time.perf_counter() - began
        requests[op] = standin.count_requests()
    return Round(seconds, requests)


def cleanup(bare: BareSide, *sides: typing.Any) -> None:
    """Delete the shares the round restored (outside the timed part)."""
    for side in sides:
        if side.restored:
            bare.client.shares.delete(side.restored)
            side.restored = None


class Comparison(typing.NamedTuple):
    label: str
    worker: list[Round]
    bare: list[Round]

    def ratios(self, op: str | None = None) -> list[float]:
        def total(r: Round) -> float:
            return r.seconds[op] if op else sum(r.seconds.values())
        return [total(w) / total(b) for w, b in zip(self.worker, self.bare, strict=True)]

    def extra_per_job(self) -> list[float]:
        """Per round: (worker round time - bare round time) / jobs in a round."""
        return [(sum(w.seconds.values()) - sum(b.seconds.values())) / len(OPERATIONS)
                for w, b in zip(self.worker, self.bare, strict=True)]


def compare(label: str, standin: ManilaStandIn, worker: WorkerSide, bare: BareSide,
            rounds: int, warmup: int) -> Comparison:
    result = Comparison(label, [], [])
    for i in range(warmup + rounds):
        order = (worker, bare) if i % 2 == 0 else (bare, worker)
        measured = {side.name: run_round(side, standin) for side in order}
        cleanup(bare, worker, bare)
        if i >= warmup:
            result.worker.append(measured["worker"])
            result.bare.append(measured["bare"])
    return result


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _requests(rounds: list[Round], op: str) -> str:
    counts = sorted({r.requests[op] for r in rounds})
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"


def print_comparisons(comparisons: list[Comparison]) -> None:
    rows = []
    for c in comparisons:
        ratios = c.ratios()
        rows.append([c.label, len(ratios), f"{report.median(ratios):.2f}",
                     f"{report.quantile(ratios, 0.1):.2f}-{report.quantile(ratios, 0.9):.2f}",
                     *(f"{report.median(c.ratios(op)):.2f}" for op in OPERATIONS),
                     _ms(report.median(c.extra_per_job()))])
    report.table(["transport, Manila latency", "rounds", "median worker/bare",
                  "p10-p90", *(f"{op} alone" for op in OPERATIONS),
                  "worker - bare, ms per job"], rows,
                 "Round time ratio worker / bare (protect + restore + delete), per round:")
    rows = []
    for c in comparisons:
        for side, rounds in (("worker", c.worker), ("bare", c.bare)):
            totals = [sum(r.seconds.values()) for r in rounds]
            rows.append([c.label, side, _ms(report.median(totals)),
                         *(_ms(report.median([r.seconds[op] for r in rounds]))
                           for op in OPERATIONS),
                         *(_requests(rounds, op) for op in OPERATIONS)])
    report.table(["transport, Manila latency", "side", "round ms (median)",
                  *(f"{op} ms" for op in OPERATIONS), *(f"{op} requests" for op in OPERATIONS)],
                 rows, "Medians of each side (same rounds), and the Manila requests each made:")


# -- where the worker's time goes -----------------------------------------------------------


class Breakdown:
    """Wall-clock intervals spent in each part of the worker, by wrapping their entry points.

    Jobs run one at a time here, so the intervals recorded between a caller's
    ``call`` and its return are that job's.
    """

    HTTP = "Manila requests (the plugin core's HTTP)"
    LOCK = "share lock (tooz file://)"
    PARTS = (
        (HTTP, manila_client.ManilaClient,
         ("get_share", "create_share", "delete_share", "revert_share",
          "find_shares_by_metadata", "get_snapshot", "list_snapshots", "create_snapshot",
          "delete_snapshot", "list_access_rules", "allow_access")),
        ("Manila client per job (session, client)", client_factory.ClientFactory,
         ("for_caller",)),
        ("job store (SQLite default, oslo.db)", store_api.JobStore,
         ("accept", "begin", "finish", "mark_notified", "get", "set_phase")),
        ("notifications (.start and .end)", notifier_mod.JobNotifier, ("start", "finished")),
        ("validation (request envelope, schemas)", jobs.JobRequest, ("build",)),
        ("validation (request envelope, schemas)", schemas, ("validate",)),
    )

    def __init__(self) -> None:
        #: (part, step, began, ended) in perf_counter seconds.
        self.intervals: list[tuple[str, str, float, float]] = []
        self._guard = threading.Lock()
        self._undo: list[tuple[typing.Any, str, typing.Any]] = []

    def _add(self, part: str, step: str, began: float) -> None:
        ended = time.perf_counter()
        with self._guard:
            self.intervals.append((part, step, began, ended))

    def _wrap(self, owner: typing.Any, name: str, part: str) -> None:
        original = owner.__dict__[name]
        func = original.__func__ if isinstance(original, classmethod | staticmethod) else original
        owner_name = getattr(owner, "__name__", "").rsplit(".", 1)[-1]
        step = f"{owner_name}.{name}"

        @functools.wraps(func)
        def timed(*args: typing.Any, **kwargs: typing.Any) -> typing.Any:
            began = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self._add(part, step, began)

        wrapped = type(original)(timed) if isinstance(
            original, classmethod | staticmethod) else timed
        setattr(owner, name, wrapped)
        self._undo.append((owner, name, original))

    def _wrap_lock(self) -> None:
        original = locks_mod.ShareLocks.hold
        breakdown = self

        @contextlib.contextmanager
        def hold(self: locks_mod.ShareLocks, share_id: str) -> typing.Iterator[typing.Any]:
            began = time.perf_counter()
            manager = original(self, share_id)
            held = manager.__enter__()
            breakdown._add(breakdown.LOCK, "ShareLocks.hold (acquire)", began)
            try:
                yield held
            finally:
                began = time.perf_counter()
                manager.__exit__(None, None, None)
                breakdown._add(breakdown.LOCK, "ShareLocks.hold (release)", began)

        locks_mod.ShareLocks.hold = hold
        self._undo.append((locks_mod.ShareLocks, "hold", original))

    def __enter__(self) -> Breakdown:
        for part, owner, names in self.PARTS:
            for name in names:
                self._wrap(owner, name, part)
        self._wrap_lock()
        return self

    def __exit__(self, *exc_info: object) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)

    def between(self, began: float, ended: float) -> list[tuple[str, str, float, float]]:
        with self._guard:
            return [i for i in self.intervals if began <= i[2] and i[3] <= ended]


def _outermost(intervals: list[tuple[str, str, float, float]]
               ) -> list[tuple[str, str, float, float]]:
    """The intervals not inside another one (a schema check inside a store call...)."""
    ordered = sorted(intervals, key=lambda i: (i[2], -i[3]))
    kept: list[tuple[str, str, float, float]] = []
    for interval in ordered:
        if kept and interval[3] <= kept[-1][3]:
            continue
        kept.append(interval)
    return kept


class JobTimes(typing.NamedTuple):
    """Where the jobs of one transport spent their wall time."""

    transport: str
    per_job: float                      # median seconds of a job as the RPC caller sees it
    parts: dict[str, float]             # median seconds per job in each part
    timeline: list[tuple[str, float, float]]  # one delete job: step, starts at, takes


def time_jobs(standin: ManilaStandIn, root: str, url: str, rounds: int) -> JobTimes:
    """Run worker rounds with every part wrapped; sum the parts, lay out one delete job."""
    project = rig.unlimited_project(standin)
    bare = BareSide(bare_client(standin, project), "")
    share = standin.create_share(project, size=1, access_rules=rig.RULES)
    calls: list[tuple[str, float, float]] = []
    with rig.WorkerRig(standin, rig.state_dir(root, uuid.uuid4().hex), url) as worker:
        side = WorkerSide(worker, project, share["id"])
        for _ in range(2):
            run_round(side, standin)
            cleanup(bare, side)
        with Breakdown() as breakdown:
            for _ in range(rounds):
                for op in OPERATIONS:
                    began = time.perf_counter()
                    getattr(side, op)()
                    calls.append((op, began, time.perf_counter()))
                cleanup(bare, side)
    per_part: dict[str, list[float]] = collections.defaultdict(list)
    sequences: dict[tuple[str, ...], list[list[tuple[float, float]]]] = collections.defaultdict(
        list)
    for op, began, ended in calls:
        steps = _outermost(breakdown.between(began, ended))
        job_parts: dict[str, float] = collections.defaultdict(float)
        for part, _step, start, stop in steps:
            job_parts[part] += stop - start
        for part in {p for p, _o, _n in Breakdown.PARTS} | {Breakdown.LOCK}:
            per_part[part].append(job_parts.get(part, 0.0))
        if op == "delete":
            key = tuple(f"{step} ({part.split(' (')[0]})" for part, step, _a, _b in steps)
            sequences[key].append([(start - began, stop - start) for _p, _s, start, stop in steps]
                                  + [(ended - began, 0.0)])
    per_job = report.median([ended - began for _op, began, ended in calls])
    key, runs = max(sequences.items(), key=lambda kv: len(kv[1]))
    timeline = [(name, report.median([r[i][0] for r in runs]),
                 report.median([r[i][1] for r in runs]))
                for i, name in enumerate(key + ("the reply reaches the caller",))]
    return JobTimes(rig.transport_name(url), per_job,
                    {part: report.median(times) for part, times in per_part.items()}, timeline)


class ThreadProfiles:
    """cProfile in every thread of this process except the stand-in's.

    ``threading.setprofile`` runs a bootstrap in each new thread that installs
    that thread's own profiler, so it must be entered before the worker starts.
    :meth:`mark` snapshots the counters; :meth:`since_mark` gives own time and
    calls per function since then.
    """

    def __init__(self) -> None:
        self._profiles: list[cProfile.Profile] = []
        self._guard = threading.Lock()
        self._base: dict[tuple[str, int, str], tuple[int, float]] = {}
        self.callers: dict[tuple[str, int, str], collections.Counter] = {}

    def _bootstrap(self, frame: typing.Any, event: str, arg: typing.Any) -> None:
        sys.setprofile(None)
        if any(m in threading.current_thread().name for m in STANDIN_THREAD_MARKERS):
            return
        profile = cProfile.Profile()
        with self._guard:
            self._profiles.append(profile)
        profile.enable()

    def __enter__(self) -> ThreadProfiles:
        threading.setprofile(self._bootstrap)
        main = cProfile.Profile()
        self._profiles.append(main)
        main.enable()
        return self

    def __exit__(self, *exc_info: object) -> None:
        threading.setprofile(None)
        self._profiles[0].disable()

    def _totals(self) -> dict[tuple[str, int, str], tuple[int, float]]:
        totals: dict[tuple[str, int, str], list[float]] = collections.defaultdict(
            lambda: [0, 0.0])
        self.callers = collections.defaultdict(collections.Counter)
        with self._guard:
            profiles = list(self._profiles)
        for profile in profiles:
            profile.snapshot_stats()
            for func, (_cc, calls, own, _cum, callers) in profile.stats.items():
                totals[func][0] += calls
                totals[func][1] += own
                for caller, caller_stats in callers.items():
                    self.callers[func][caller] += caller_stats[1]
        return {k: (int(v[0]), v[1]) for k, v in totals.items()}

    def mark(self) -> None:
        self._base = self._totals()

    def since_mark(self) -> dict[tuple[str, int, str], tuple[int, float]]:
        delta = {}
        for func, (calls, own) in self._totals().items():
            base_calls, base_own = self._base.get(func, (0, 0.0))
            if calls - base_calls > 0 or own - base_own > 1e-9:
                delta[func] = (calls - base_calls, own - base_own)
        return delta

    def area(self, func: tuple[str, int, str], depth: int = 0) -> str:
        """The area of a function; a generic one (stdlib) takes its main caller's area."""
        area = _area(_label(func))
        callers = self.callers.get(func)
        if area != _OTHER or depth > 8 or not callers:
            return area
        return self.area(callers.most_common(1)[0][0], depth + 1)


#: Builtins whose own time is waiting (for a lock, a socket, a sleep), not work.
_WAITING = ("acquire' of '_thread", "time.sleep", "select", "'poll' of", "epoll",
            "recv_into", "'recv' of", "'wait' of", "'accept' of", "'connect' of")

#: Areas of own time, first match wins: (label, substrings of the file or function name).
_AREAS = (
    ("notifications (oslo.messaging notify)", ("oslo_messaging/notify", "rpc/notifier.py")),
    ("RPC transport and dispatch (oslo.messaging, kombu)",
     ("oslo_messaging/", "kombu/", "amqp/", "futurist/", "vine/", "rpc/endpoint.py",
      "rpc/api.py", "rpc/context.py", "oslo_context/", "oslo_serialization/")),
    ("job store (SQLAlchemy, SQLite)", ("sqlite3", "sqlalchemy/", "oslo_db/", "alembic/",
                                        "worker/store/")),
    ("share lock (tooz, fasteners)", ("tooz/", "fasteners/", "worker/locks.py")),
    ("HTTP client (manilaclient, keystoneauth, requests)",
     ("manilaclient/", "keystoneauth1/", "requests/", "urllib3/", "http/client.py",
      "_socket.socket", "email/", "urllib/", "stevedore/", "ssl")),
    ("validation (jsonschema)", ("jsonschema", "referencing/", "rpds")),
    ("plugin core and runner (manila_protector)", ("manila_protector/",)),
)


_OTHER = "other (threading, queue, json, logging...)"
#: The benchmark's own measuring code, left out of the profile.
_MEASURING = ("cProfile.py", "_lsprof", "bench/")


def _label(func: tuple[str, int, str]) -> str:
    filename, line, name = func
    if filename == "~":
        return name
    filename = re.sub(r"^.*/lib/python3\.\d+/(site-packages/)?", "", filename)
    filename = filename.replace(os.path.dirname(os.path.dirname(__file__)) + "/", "")
    return f"{filename}:{line}({name})"


def _area(label: str) -> str:
    for area, markers in _AREAS:
        if any(m in label for m in markers):
            return area
    return _OTHER


def print_job_times(times: list[JobTimes], latency: float, rounds: int) -> None:
    parts = sorted({p for t in times for p in t.parts}, key=lambda p: -times[0].parts.get(p, 0))
    def cell(seconds: float, per_job: float) -> str:
        return f"{_ms(seconds)} ({seconds / per_job:.0%})"

    rows = [[part, *(cell(t.parts.get(part, 0.0), t.per_job) for t in times)] for part in parts]
    rows.append(["RPC call and reply, dispatch, thread hand-offs (the rest)",
                 *(cell(t.per_job - sum(t.parts.values()), t.per_job) for t in times)])
    rows.append(["**one job as the RPC caller sees it (median)**",
                 *(_ms(t.per_job) for t in times)])
    report.table(["part of the worker", *(f"{t.transport}: ms per job" for t in times)], rows,
                 f"Where a job's wall time goes ({latency * 1000:g} ms latency, "
                 f"{rounds * len(OPERATIONS)} jobs per transport (protect, restore, delete); "
                 "medians per job; each part timed by wrapping its entry points; the rest is "
                 "the median job less the parts' medians):")
    for t in times:
        report.table(
            ["step", "starts at ms", "takes ms"],
            [["the caller sends the RPC call", "0.0", ""]]
            + [[name, _ms(start), _ms(took) if took else ""] for name, start, took in t.timeline],
            f"One delete job step by step ({t.transport}; medians over {rounds} jobs; gaps "
            "between steps are RPC, thread hand-offs and the runner's own code):")


def profile_worker(standin: ManilaStandIn, root: str, rounds: int) -> None:
    """A profile of every worker thread over ``rounds`` rounds on the in-memory transport."""
    project = rig.unlimited_project(standin)
    bare = BareSide(bare_client(standin, project), "")
    share = standin.create_share(project, size=1, access_rules=rig.RULES)
    with ThreadProfiles() as profiles, \
            rig.WorkerRig(standin, rig.state_dir(root, "profile")) as worker:
        side = WorkerSide(worker, project, share["id"])
        for count in (2, rounds):
            if count == rounds:
                profiles.mark()
            for _ in range(count):
                run_round(side, standin)
                cleanup(bare, side)
        stats = profiles.since_mark()
    jobs_done = rounds * len(OPERATIONS)
    working = {f: v for f, v in stats.items()
               if not any(m in _label(f) for m in _WAITING + _MEASURING)}
    total_own = sum(own for _calls, own in working.values())
    areas: dict[str, float] = collections.defaultdict(float)
    for func, (_calls, own) in working.items():
        areas[profiles.area(func)] += own
    report.table(
        ["area", "own CPU ms per job", "share"],
        [[area, _ms(own / jobs_done), f"{own / total_own:.0%}"]
         for area, own in sorted(areas.items(), key=lambda kv: -kv[1])]
        + [["**all threads but the stand-in's**", _ms(total_own / jobs_done), "100%"]],
        f"Own time by area (in-memory transport; cProfile in every thread but the stand-in's, "
        f"waits excluded, a generic function counted in its main caller's area, "
        f"{jobs_done} jobs; profiling slows everything, compare shares, not ms):")
    top = sorted(working.items(), key=lambda kv: -kv[1][1])[:15]
    report.table(
        ["function", "calls per job", "own ms per job"],
        [[f"`{_label(func)}`", f"{calls / jobs_done:.1f}", f"{own / jobs_done * 1000:.2f}"]
         for func, (calls, own) in top],
        "Top functions by own time (same profile; waiting for locks, sockets and sleeps "
        "excluded):")


# -- main -----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.overhead", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: few rounds")
    parser.add_argument("--rounds", type=int, default=200, help="measured rounds per row")
    parser.add_argument("--latency", type=float, default=0.010,
                        help="seconds the stand-in takes to answer (default 0.010)")
    parser.add_argument("--rabbit", choices=("auto", "yes", "no"), default="auto",
                        help="also measure on RabbitMQ at 127.0.0.1:5672 (auto: if it answers; "
                             "never with --quick)")
    parser.add_argument("--rabbit-rounds", type=int, default=100)
    parser.add_argument("--profile-rounds", type=int, default=20)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.quick:
        args.rounds, args.rabbit_rounds, args.profile_rounds = 8, 8, 3
    rig.quiet()
    report.header("Benchmark 1: worker overhead", argv)
    transports = [rig.MEMORY_URL]
    if args.rabbit == "yes" or (args.rabbit == "auto" and not args.quick and rig.rabbit_answers()):
        transports.append(rig.RABBIT_URL)
    warmup = 2 if args.quick else 5
    comparisons = []
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as root, \
            ManilaStandIn(StandInConfig(latency=args.latency)) as standin:
        for url in transports:
            project = rig.unlimited_project(standin)
            bare = BareSide(bare_client(standin, project),
                            standin.create_share(project, size=1, access_rules=rig.RULES)["id"])
            rounds = args.rounds if url == rig.MEMORY_URL else args.rabbit_rounds
            with rig.WorkerRig(standin, rig.state_dir(root, uuid.uuid4().hex), url) as worker:
                worker_side = WorkerSide(
                    worker, project,
                    standin.create_share(project, size=1, access_rules=rig.RULES)["id"])
                for latency in (args.latency, 0.0):
                    standin.faults.latency = latency
                    label = f"{rig.transport_name(url)}, {latency * 1000:g} ms"
                    comparisons.append(compare(label, standin, worker_side, bare, rounds,
                                               warmup))
                    print(f"({label}: done)", file=sys.stderr, flush=True)
        print_comparisons(comparisons)
        standin.faults.latency = args.latency
        print_job_times([time_jobs(standin, root, url, args.profile_rounds)
                         for url in transports], args.latency, args.profile_rounds)
        profile_worker(standin, root, args.profile_rounds)
    headline = report.median(comparisons[0].ratios())
    zero = report.median(comparisons[1].ratios())
    report.figure(f"overhead: median worker/bare = {headline:.2f} at "
                  f"{args.latency * 1000:g} ms latency (target <= {TARGET:.2f}, "
                  f"{report.met(headline <= TARGET)}); {zero:.2f} at 0 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
