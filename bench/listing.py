"""Benchmark 3 -- a project's shares out of a large Manila.

The stand-in holds 50,000 shares; one project owns 5,000 of them (and a second
one 500, to show what the work grows with).  An administrator asks for a
project's protectable shares two ways, both over HTTP against the same stand-in:

- ours: Karbor's protectable plugin, ``get_dependent_resources`` (Manila filters
  by project, ``all_tenants=1&project_id=...``, paginated with ``limit``/``offset``);
- Karbor's: python-manilaclient ``shares.list(detailed=True)`` over every
  project (``all_tenants=1``), then filtered by project in Python.

Requests are counted by the stand-in; times are medians of a few runs, the two
ways interleaved.  Figure: how many times faster ours is, for the 5,000-share
project at the default page size, and the requests it made.

    python -m bench.listing            # 50,000 shares, 5 runs each
    python -m bench.listing --quick    # 5,000 shares (500 in the project), 2 runs
"""

from __future__ import annotations

import argparse
import sys
import time
import typing
import uuid

from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from manilaclient import api_versions
from manilaclient import client as manilaclient
from oslo_config import cfg
from oslo_context import context as oslo_context

from manila_protector import opts
from manila_protector.plugins import manila_client
from manila_protector.plugins import protectable
from manila_protector.plugins import resources
from manila_protector.plugins import runtime
from manila_standin import ManilaStandIn, StandInConfig

from bench import report
from bench import rig

TARGET_SPEEDUP = 10.0
PAGE_SIZES = (500, 1000)
#: ``[manila] list_page_size`` by default.
DEFAULT_PAGE_SIZE = runtime.PluginSettings().list_page_size
ADMIN_TOKEN = "bench-admin:admin-project"


class Listed(typing.NamedTuple):
    seconds: float
    requests: int
    shares: int


def ours(standin: ManilaStandIn, project: str, page_size: int) -> Listed:
    """``get_dependent_resources`` as Karbor calls it, with an admin's context."""
    conf = cfg.ConfigOpts()
    opts.register_manila_opts(conf)
    conf.set_override("endpoint_override", standin.endpoint, group="manila")
    conf.set_override("list_page_size", page_size, group="manila")
    plugin = protectable.ShareProtectablePlugin(conf=conf)
    context = oslo_context.RequestContext(auth_token=ADMIN_TOKEN, project_id="admin-project",
                                          roles=["admin"], is_admin=True)
    parent = resources.Resource(type=resources.PROJECT_RESOURCE_TYPE, id=project, name=project)
    plugin.get_dependent_resources(context, parent)  # negotiates the microversion once
    standin.reset_requests()
    began = time.perf_counter()
    found = plugin.get_dependent_resources(context, parent)
    took = time.perf_counter() - began
    return Listed(took, standin.count_requests(), len(found))


def karbors(standin: ManilaStandIn, project: str, client: typing.Any) -> Listed:
    """Every share of every project, detailed, then the project's picked out in Python."""
    standin.reset_requests()
    began = time.perf_counter()
    everything = client.shares.list(detailed=True, search_opts={"all_tenants": 1})
    found = [resources.Resource(type=resources.SHARE_RESOURCE_TYPE, id=s.id, name=s.name)
             for s in everything if s.project_id == project]
    took = time.perf_counter() - began
    return Listed(took, standin.count_requests(), len(found))


def admin_client(standin: ManilaStandIn) -> typing.Any:
    sess = ks_session.Session(auth=token_endpoint.Token(standin.endpoint, ADMIN_TOKEN))
    probe = manilaclient.Client(manila_client.CLIENT_MAX_VERSION, session=sess,
                                service_catalog_url=standin.endpoint, retries=0)
    version = api_versions.discover_version(probe, manila_client.CLIENT_MAX_VERSION)
    return manilaclient.Client(version, session=sess, service_catalog_url=standin.endpoint,
                               retries=0)


def populate(standin: ManilaStandIn, total: int, projects: dict[str, int],
             others: int) -> None:
    """``projects`` (name -> shares), the rest of ``total`` spread over ``others`` projects."""
    for project, count in projects.items():
        standin.create_shares(project, count, name=project[:8] + "-{i}")
    rest = total - sum(projects.values())
    for index in range(others):
        count = rest // others + (1 if index < rest % others else 0)
        standin.create_shares(uuid.uuid4().hex, count, name="other-{i}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.listing", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 5,000 shares")
    parser.add_argument("--total", type=int, default=50_000, help="shares in the stand-in")
    parser.add_argument("--project-shares", type=int, default=5_000,
                        help="shares of the measured project")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each way")
    parser.add_argument("--latency", type=float, default=0.010,
                        help="seconds the stand-in takes to answer (default 0.010)")
    args = parser.parse_args(argv)
    if args.quick:
        args.total, args.project_shares, args.runs = 5_000, 500, 2
    rig.quiet()
    report.header("Benchmark 3: project listing at scale", argv)
    big, small = uuid.uuid4().hex, uuid.uuid4().hex
    sizes = {big: args.project_shares, small: max(1, args.project_shares // 10)}
    with ManilaStandIn(StandInConfig(latency=args.latency)) as standin:
        began = time.perf_counter()
        populate(standin, args.total, sizes, others=45)
        print(f"({args.total} shares created in {time.perf_counter() - began:.1f} s)",
              file=sys.stderr, flush=True)
        client = admin_client(standin)
        results: dict[tuple[str, str], list[Listed]] = {}
        for project, count in sizes.items():
            for run in range(args.runs):
                ways = [(f"ours, page {size}", lambda p=project, s=size: ours(standin, p, s))
                        for size in PAGE_SIZES]
                ways.append(("Karbor's (list all, filter)",
                             lambda p=project: karbors(standin, p, client)))
                if run % 2:
                    ways.reverse()
                for name, way in ways:
                    listed = way()
                    if listed.shares != count:
                        raise RuntimeError(f"{name} found {listed.shares} shares, not {count}")
                    results.setdefault((project, name), []).append(listed)
            print(f"(project of {count} shares: done)", file=sys.stderr, flush=True)

    rows = []
    karbor_name = "Karbor's (list all, filter)"
    for project, count in sizes.items():
        karbor_time = report.median([r.seconds for r in results[(project, karbor_name)]])
        for name in [f"ours, page {size}" for size in PAGE_SIZES] + [karbor_name]:
            listed = results[(project, name)]
            took = report.median([r.seconds for r in listed])
            shares_sent = count if name != karbor_name else args.total
            rows.append([f"{count:,}", name, str(listed[0].requests), f"{shares_sent:,}",
                         f"{took * 1000:.0f}", f"{karbor_time / took:.1f}x"])
    report.table(["project's shares", "way", "requests", "shares Manila sent",
                  "ms (median)", "speed-up vs Karbor's"], rows,
                 f"{args.total:,} shares in the stand-in ({args.latency * 1000:g} ms per "
                 f"request), an admin lists one project; medians of {args.runs} interleaved "
                 "runs:")
    name = f"ours, page {DEFAULT_PAGE_SIZE}"
    speedup = (report.median([r.seconds for r in results[(big, karbor_name)]])
               / report.median([r.seconds for r in results[(big, name)]]))
    requests = results[(big, name)][0].requests
    report.figure(f"listing: get_dependent_resources of a {args.project_shares:,}-share project "
                  f"among {args.total:,}: {speedup:.1f}x faster than list-all-then-filter "
                  f"(target >= {TARGET_SPEEDUP:g}x, {report.met(speedup >= TARGET_SPEEDUP)}), "
                  f"{requests} requests (ceil(({args.project_shares:,}+1)/{DEFAULT_PAGE_SIZE}))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
