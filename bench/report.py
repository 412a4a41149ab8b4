"""How the benchmarks print: a header naming the run, Markdown tables, one figure line.

Shared machines are noisy, so the benchmarks report medians and ratios measured
side by side; this module only formats them.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import math
import os
import platform
import statistics
import subprocess
import sys
import typing

#: Distributions whose versions every header names.
PACKAGES = ("manila-protector", "python-manilaclient", "oslo.messaging", "keystoneauth1",
            "kombu", "tooz")


def cpu_model() -> str:
    """The CPU's model name (from ``/proc/cpuinfo``) and how many cores this process sees."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {cores} cores"


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _git_revision() -> str:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        rev = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--",
                                "manila_protector"], capture_output=True, text=True,
                               timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return rev + (" + local changes in manila_protector/" if dirty else "")


def header(title: str, argv: typing.Sequence[str] | None = None) -> None:
    """Print what was run, when, where, with what."""
    argv = sys.argv[1:] if argv is None else argv
    module = sys.modules["__main__"].__spec__
    command = "python -m " + (module.name if module else "bench") + "".join(
        f" {a}" for a in argv)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"## {title}\n")
    print(f"- command: `{command}`")
    print(f"- date: {now}; revision: {_git_revision()}")
    print(f"- machine: {cpu_model()}; {platform.system()} {platform.release()}")
    print(f"- Python {platform.python_version()}; "
          + ", ".join(f"{name} {_version(name)}" for name in PACKAGES))
    print(flush=True)


def table(headers: typing.Sequence[str], rows: typing.Iterable[typing.Sequence[typing.Any]],
          title: str | None = None) -> None:
    """Print a Markdown table (numbers already formatted by the caller)."""
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    if title:
        print(f"{title}\n")

    def line(cells: typing.Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    print(line(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))
    print(flush=True)


def note(text: str) -> None:
    """Print a paragraph under a table."""
    print(text + "\n", flush=True)


def figure(text: str) -> None:
    """Print the benchmark's figure: its last line."""
    print(text, flush=True)


def median(values: typing.Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def quantile(values: typing.Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def met(ok: bool) -> str:
    return "met" if ok else "MISSED"
