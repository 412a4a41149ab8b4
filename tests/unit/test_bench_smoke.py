"""The benchmarks that need no broker still run and print their figure last (quick mode).

They assert nothing about speed: the figures are for doc/performance.md.  The ones on
RabbitMQ, Redis and MariaDB (memory, scaleout, fleet) are smoke-run by
tests/functional/test_bench_runs_on_services.py.
"""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("bench,prefix", [("finish_latency", "finish:"),
                                          ("listing", "listing:"),
                                          ("overhead", "overhead:")])
def test_benchmark_runs_and_prints_its_figure_last(bench, prefix):
    proc = subprocess.run([sys.executable, "-m", f"bench.{bench}", "--quick"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1].startswith(prefix)
