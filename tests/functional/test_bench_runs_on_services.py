"""The benchmarks that need RabbitMQ (and Redis, MariaDB) still run and print their figure
last (quick mode), with worker processes on the machine's services.

They assert nothing about speed: the figures are for doc/performance.md.
"""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.functional, pytest.mark.timeout(900)]


@pytest.mark.parametrize("bench,prefix", [("memory", "memory:"), ("scaleout", "scaleout:"),
                                          ("fleet", "fleet:")])
def test_benchmark_on_the_machines_services_runs_and_prints_its_figure_last(bench, prefix):
    proc = subprocess.run([sys.executable, "-m", f"bench.{bench}", "--quick"], cwd=ROOT,
                          capture_output=True, text=True, timeout=850)
    # The workers' log lines follow the benchmark's own traceback: show that first.
    failure = proc.stderr[proc.stderr.rfind("Traceback"):][:3000] \
        if "Traceback" in proc.stderr else proc.stderr[-2000:]
    assert proc.returncode == 0, failure
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith(prefix) and "not run" not in last, last
