"""Run every benchmark, one after the other, each in its own process.

Each benchmark's tables go to standard output as it prints them; at the end the
figures (each benchmark's last line) are repeated together.  A benchmark that
fails is reported and the others still run; the exit status is then 1.

    python -m bench              # the full run (about 5 minutes for these four on 2 cores)
    python -m bench --quick      # every benchmark's smoke run
    python -m bench overhead listing    # only these

Benchmarks other engineers add under ``bench/`` with the same conventions
(``python -m bench.<name> [--quick]``, figure last) -- ``bench.scaleout``,
``bench.fleet`` and ``bench.faults*`` -- run after these four when present.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import time

#: Ours, in the order of the issue.
BENCHMARKS = ("overhead", "finish_latency", "listing", "memory")


def _others() -> list[str]:
    here = pathlib.Path(__file__).parent
    found = sorted(p.stem for p in here.glob("faults*.py"))
    for name in ("fleet", "scaleout"):
        if (here / f"{name}.py").exists():
            found.insert(0, name)
    return found


def run(name: str, quick: bool) -> tuple[int, str, float]:
    """Run ``bench.<name>``; returns its exit status, last line and wall time."""
    command = [sys.executable, "-m", f"bench.{name}"] + (["--quick"] if quick else [])
    began = time.monotonic()
    last = ""
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                          cwd=pathlib.Path(__file__).parent.parent,
                          env=dict(os.environ, PYTHONUNBUFFERED="1")) as process:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            if line.strip():
                last = line.strip()
    return process.returncode, last, time.monotonic() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every benchmark's smoke run")
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    args = parser.parse_args(argv)
    names = args.names or list(BENCHMARKS) + _others()
    figures = []
    failed = False
    for name in names:
        status, last, took = run(name, args.quick)
        if status != 0:
            failed = True
            last = f"bench.{name} FAILED (exit {status}); last line: {last}"
        figures.append(f"- {last} [{took:.0f} s]")
        print(flush=True)
    print("## Figures\n")
    print("\n".join(figures))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
