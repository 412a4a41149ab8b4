"""Benchmarks: numbers anyone can reproduce with one command each.

Each benchmark is a module run as ``python -m bench.<name>`` (``--quick`` for a
smoke run); it prints its tables (Markdown) and, as its last line, its figure.
``python -m bench`` runs them all.  ``doc/performance.md`` explains the figures.

- ``bench.overhead`` -- protect, restore, delete through the RPC worker beside
  the same Manila requests as a bare python-manilaclient loop;
- ``bench.finish_latency`` -- how soon a job ends after Manila, and how many
  polls that takes, beside Karbor's fixed 15 s schedule;
- ``bench.listing`` -- a project's shares out of a large Manila, beside
  list-everything-then-filter;
- ``bench.memory`` -- a worker process's peak RSS, idle and with 1,000 accepted jobs;
- ``bench.scaleout`` -- one worker process against two on RabbitMQ with Redis locks;
- ``bench.fleet`` -- 10,000 jobs cast at once to 4 worker processes sharing a job
  store on MariaDB, one killed for good mid-run (``tox -e fleet``).
"""

import warnings

# eventlet (imported by oslo.messaging's dependencies) announces its own deprecation on
# import; it says nothing about what is measured.
warnings.filterwarnings("ignore", message="\\s*Eventlet is deprecated")
warnings.filterwarnings("ignore", category=DeprecationWarning)
