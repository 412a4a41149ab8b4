"""Benchmark 2 -- finish latency and poll count: how soon a protect ends after Manila does.

The stand-in makes a new snapshot ``available`` T seconds after it was asked for,
T in {0.2, 2, 10, 60} s.  The plugin core protects a share against it and we
record the completion time (from the protect call to its return) and the GET
polls of the snapshot it made.

Virtual time: the stand-in runs on a manual clock and the core's waits sleep on
a clock that advances that manual clock by the slept amount, so T = 60 s takes
no real time and every figure is exact and reproducible (HTTP requests take no
virtual time).  Jitter is on (the default 10 %), so each growth factor runs
with several seeds; the tables give the median and the worst.  One real-clock
spot check at T = 2 s, through the RPC worker, shows virtual and real agree.

Karbor's fixed schedule (first poll after 15 s, then every 15 s) is computed the
same way: completion ceil(T/15)*15 s, ceil(T/15) polls.

Targets (default growth factor 1.25): completion <= 1.25*T + 0.25 s,
polls <= 5*ln(T/0.25) + 3.

    python -m bench.finish_latency           # 25 seeds, 5 real runs
    python -m bench.finish_latency --quick   # 3 seeds, 1 real run
"""

from __future__ import annotations

import argparse
import contextlib
import math
import random
import sys
import tempfile
import time
import typing
import uuid

from keystoneauth1 import session as ks_session

from manila_protector import jobs
from manila_protector.plugins import client_factory
from manila_protector.plugins import share_protector
from manila_protector.plugins import values
from manila_protector.plugins import waiting
from manila_standin import ManilaStandIn, ManualClock, StandInConfig

from bench import report
from bench import rig

T_VALUES = (0.2, 2.0, 10.0, 60.0)
FACTORS = (1.25, 1.5, 2.0)
DEFAULT_FACTOR = 1.25
INITIAL_INTERVAL = 0.25
#: ``poll_first_delay``: the default (first poll at once) and the alternative.
FIRST_DELAYS = (0.0, 0.25)
#: (growth factor, first delay) of each configuration measured.
CONFIGS = tuple((factor, 0.0) for factor in FACTORS) + ((DEFAULT_FACTOR, FIRST_DELAYS[1]),)
KARBOR_INTERVAL = 15.0
REAL_T = 2.0
OPTIONS = values.ProtectOptions(snapshot_name="bench", description="")
#: Protects a runtime makes before the learnt figures are taken.
WARM_UP = 20


def completion_target(t: float) -> float:
    return 1.25 * t + 0.25


def polls_target(t: float) -> float:
    return 5 * math.log(t / 0.25) + 3


def karbor(t: float) -> tuple[float, int]:
    """Karbor's fixed schedule: completion and polls for an operation of ``t`` seconds."""
    polls = max(1, math.ceil(t / KARBOR_INTERVAL))
    return polls * KARBOR_INTERVAL, polls


class VirtualClock:
    """The waiter's clock: sleeping moves the stand-in's manual clock on by as much."""

    def __init__(self, manual: ManualClock) -> None:
        self._manual = manual

    def now(self) -> float:
        return self._manual.now()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._manual.advance(seconds)


class Run(typing.NamedTuple):
    completion: float
    polls: int


def snapshot_polls(standin: ManilaStandIn, snapshot_id: str) -> int:
    route = f"/snapshots/{snapshot_id}"
    return sum(1 for r in standin.requests() if r.method == "GET" and r.route == route)


@contextlib.contextmanager
def _virtual_standin() -> typing.Iterator[tuple[VirtualClock, ManilaStandIn, str, typing.Any]]:
    """A stand-in on a manual clock: (the waits' clock, the stand-in, a project, a client)."""
    manual = ManualClock(start=1_800_000_000.0)
    with ManilaStandIn(StandInConfig(), clock=manual) as standin:
        project = rig.unlimited_project(standin)
        factory = client_factory.ClientFactory(
            lambda auth, connections: ks_session.Session(auth=auth, session=connections))
        yield (VirtualClock(manual), standin, project,
               factory.for_token(f"bench:{project}", standin.endpoint))


def virtual_runs(seeds: int) -> dict[tuple[float, float, float], list[Run]]:
    """Every (T, growth factor, first delay) of CONFIGS with ``seeds`` seeds, on virtual time."""
    runs: dict[tuple[float, float, float], list[Run]] = {}
    with _virtual_standin() as (clock, standin, project, manila):
        for t in T_VALUES:
            standin.config.delays.snapshot_create = t
            for factor, first in CONFIGS:
                policy = waiting.WaitPolicy(initial_interval=INITIAL_INTERVAL,
                                            backoff_factor=factor, first_delay=first)
                done = runs.setdefault((t, factor, first), [])
                for seed in range(seeds):
                    protector = share_protector.ShareProtector(
                        manila, waiting.Waiter(policy, clock, random.Random(seed)))
                    share = standin.create_share(project, size=1)
                    standin.reset_requests()
                    began = clock.now()
                    saved = protector.protect(share["id"], OPTIONS, job_tag=str(uuid.uuid4()))
                    done.append(Run(clock.now() - began,
                                    snapshot_polls(standin, saved.snapshot_id)))
    return runs


def learnt_runs(seeds: int, warm_up: int = WARM_UP) -> dict[float, list[Run]]:
    """Per T: ``seeds`` protects at the default settings after ``warm_up`` others, every one
    on one runtime's :class:`waiting.Expected` (a worker that has protected before)."""
    runs: dict[float, list[Run]] = {}
    with _virtual_standin() as (clock, standin, project, manila):
        policy = waiting.WaitPolicy(initial_interval=INITIAL_INTERVAL)
        for t in T_VALUES:
            standin.config.delays.snapshot_create = t
            expected = waiting.Expected()
            done = runs.setdefault(t, [])
            for seed in range(warm_up + seeds):
                protector = share_protector.ShareProtector(
                    manila, waiting.Waiter(policy, clock, random.Random(seed),
                                           expected=expected))
                share = standin.create_share(project, size=1)
                standin.reset_requests()
                began = clock.now()
                saved = protector.protect(share["id"], OPTIONS, job_tag=str(uuid.uuid4()))
                if seed >= warm_up:
                    done.append(Run(clock.now() - began,
                                    snapshot_polls(standin, saved.snapshot_id)))
    return runs


def real_runs(count: int) -> list[Run]:
    """Protects through the RPC worker against a real-clock stand-in with T = 2 s."""
    done = []
    config = StandInConfig()
    config.delays.snapshot_create = REAL_T
    with tempfile.TemporaryDirectory(prefix="bench-finish-") as root, \
            ManilaStandIn(config) as standin, \
            rig.WorkerRig(standin, rig.state_dir(root, "worker")) as worker:
        project = rig.unlimited_project(standin)
        ctxt = rig.member_context(project)
        for _ in range(count):
            share = standin.create_share(project, size=1)
            standin.reset_requests()
            began = time.monotonic()
            record = worker.client.protect(ctxt, str(uuid.uuid4()), share["id"],
                                           dict(rig.PROTECT_PARAMETERS))
            took = time.monotonic() - began
            if record is None or record["status"] != jobs.SUCCEEDED:
                raise RuntimeError(f"protect failed: {record!r}")
            done.append(Run(took, snapshot_polls(standin, record["result"]["snapshot_id"])))
    return done


def _t(t: float) -> str:
    return f"{t:g} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.finish_latency", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 seeds, 1 real run")
    parser.add_argument("--seeds", type=int, default=25, help="jitter seeds per (T, factor)")
    parser.add_argument("--real-runs", type=int, default=5, help="real-clock runs at T = 2 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.real_runs = 3, 1
    rig.quiet()
    report.header("Benchmark 2: finish latency and poll count", argv)
    runs = virtual_runs(args.seeds)

    rows = []
    for t in T_VALUES:
        k_completion, k_polls = karbor(t)
        for factor, first in CONFIGS:
            ratios = [r.completion / t for r in runs[(t, factor, first)]]
            polls = [r.polls for r in runs[(t, factor, first)]]
            rows.append([_t(t), f"{factor:g}", f"{first:g} s", f"{report.median(ratios):.2f}",
                         f"{max(ratios):.2f}", f"{(factor * max(t, first) + 0.25) / t:.2f}",
                         f"{report.median(polls):g}", f"{max(polls)}",
                         f"{k_completion / t:.2f}", f"{k_polls}"])
    report.table(["T", "growth factor", "first poll after", "completion/T median", "worst",
                  "bound (g*T + 0.25 s)/T", "polls median", "worst",
                  "Karbor completion/T", "Karbor polls"], rows,
                 f"Virtual time, {args.seeds} jitter seeds per row (jitter 0.1, first interval "
                 f"{INITIAL_INTERVAL:g} s, cap 15 s):")

    rows = []
    verdicts: dict[float, list[tuple[float, bool, bool, float, int]]] = {}
    for first in FIRST_DELAYS:
        for t in T_VALUES:
            measured = runs[(t, DEFAULT_FACTOR, first)]
            worst_completion = max(r.completion for r in measured)
            worst_polls = max(r.polls for r in measured)
            ok_time = worst_completion <= completion_target(t) + 1e-9
            ok_polls = worst_polls <= polls_target(t)
            verdicts.setdefault(first, []).append(
                (t, ok_time, ok_polls, worst_completion, worst_polls))
            rows.append([f"{first:g} s", _t(t), f"{worst_completion:.2f} s",
                         f"{completion_target(t):.2f} s", report.met(ok_time),
                         str(worst_polls), f"{polls_target(t):.1f}", report.met(ok_polls)])
    report.table(["first poll after", "T", "worst completion", "target 1.25T+0.25 s", "",
                  "worst polls", "target 5 ln(T/0.25)+3", ""], rows,
                 f"Targets at the default growth factor {DEFAULT_FACTOR:g} (worst of "
                 f"{args.seeds} seeds), with the default first poll at once and with "
                 f"poll_first_delay = {FIRST_DELAYS[1]:g} s:")

    learnt = learnt_runs(args.seeds)
    rows = []
    for t in T_VALUES:
        first_waits = runs[(t, DEFAULT_FACTOR, 0.0)]
        for label, measured in (("first of its kind", first_waits),
                                (f"after {WARM_UP} others", learnt[t])):
            ratios = [r.completion / t for r in measured]
            polls = [r.polls for r in measured]
            rows.append([_t(t), label, f"{report.median(ratios):.2f}", f"{max(ratios):.2f}",
                         f"{report.median(polls):g}", str(max(polls))])
    report.table(["T", "protect", "completion/T median", "worst", "polls median", "worst"],
                 rows,
                 f"Learning what a snapshot takes (default settings, virtual time, {args.seeds} "
                 f"seeds): a runtime's first protect beside one made after {WARM_UP} others "
                 "of the same T:")

    real = real_runs(args.real_runs)
    virtual = runs[(REAL_T, DEFAULT_FACTOR, 0.0)]
    report.table(
        ["clock", "runs", "completion/T median", "worst", "polls median", "worst"],
        [["virtual (plugin core)", len(virtual),
          f"{report.median([r.completion / REAL_T for r in virtual]):.2f}",
          f"{max(r.completion for r in virtual) / REAL_T:.2f}",
          f"{report.median([r.polls for r in virtual]):g}", str(max(r.polls for r in virtual))],
         ["real (RPC worker, in-memory transport)", len(real),
          f"{report.median([r.completion / REAL_T for r in real]):.2f}",
          f"{max(r.completion for r in real) / REAL_T:.2f}",
          f"{report.median([r.polls for r in real]):g}", str(max(r.polls for r in real))]],
        f"Spot check at T = {REAL_T:g} s, default settings: virtual time beside the real clock "
        "(the real completion also holds the RPC call and the job's bookkeeping):")

    default = verdicts[0.0]
    missed = [(t, ok_time, ok_polls) for t, ok_time, ok_polls, _c, _p in default
              if not (ok_time and ok_polls)]
    worst_ratio = max(c / t for t, _a, _b, c, _p in default)
    karbor_small = karbor(T_VALUES[0])[0] / T_VALUES[0]
    delayed = verdicts[FIRST_DELAYS[1]]
    delayed_met = all(ok_time and ok_polls for _t0, ok_time, ok_polls, _c, _p in delayed)
    summary = (f"finish: g={DEFAULT_FACTOR:g}, worst of {args.seeds} seeds: completion/T <= "
               f"{worst_ratio:.2f}, polls {' / '.join(str(p) for *_x, p in default)} at T = "
               f"{' / '.join(f'{t:g}' for t in T_VALUES)} s "
               f"(poll_first_delay={FIRST_DELAYS[1]:g}: "
               f"{' / '.join(str(p) for *_x, p in delayed)}, targets "
               f"{'met at every T' if delayed_met else 'MISSED somewhere'}); targets ")
    if missed:
        summary += "MISSED at " + ", ".join(
            f"T={t:g} s ({'time' if not ok_time else ''}{' ' if not (ok_time or ok_polls) else ''}"
            f"{'polls' if not ok_polls else ''})" for t, ok_time, ok_polls in missed)
        summary += f", met elsewhere; Karbor: {karbor_small:.0f}x T at T={T_VALUES[0]:g} s"
    else:
        summary += f"met at every T; Karbor: {karbor_small:.0f}x T at T={T_VALUES[0]:g} s"
    learnt_worst = max(r.completion / t for t in T_VALUES for r in learnt[t])
    summary += (f"; learnt after {WARM_UP} protects: completion/T <= {learnt_worst:.2f}, polls "
                f"{' / '.join(str(max(r.polls for r in learnt[t])) for t in T_VALUES)}")
    report.figure(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
