"""The Karbor tier: Karbor 1.6.0's own code drives our plugins.

Each scenario runs ``tests/karbor/driver.py`` with the Python of Karbor's virtualenv
(``tools/real_karbor.py install``, cached between runs): Karbor's ProtectionManager,
its taskflow flows, its provider and protectable registries and its file-system bank,
as karbor-protection runs them on checkpoint create, restore create, verification
create and checkpoint delete (no karbor-api, no Keystone). Today in ``direct`` mode
(the plugin calls Manila itself) against the Manila stand-in, which serves the Manila
v2 API over HTTP from the pytest process.

Where Karbor's virtualenv cannot be built for want of a package index, the tier fails
under ``CI`` (saying why) and is skipped elsewhere; an install that fails for any
other reason (our requirements conflicting with Karbor's pins, a module that does not
import there) fails everywhere.
"""

from __future__ import annotations

import os
import pathlib
import time
import typing
import uuid

import pytest

# The one place the tier names the stand-in's package.
from manila_standin import ManilaStandIn, StandInConfig

from support import karbor_flows

_TIMES: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter: typing.Any) -> None:
    if "install" in _TIMES:
        terminalreporter.write_line(
            f"karbor tier: Karbor 1.6.0 virtualenv ready in {_TIMES['install']:.1f} s "
            f"(cached or not)")
    if "tier_end" in _TIMES and "tier_start" in _TIMES:
        terminalreporter.write_line(
            f"karbor tier: {_TIMES['tier_end'] - _TIMES['tier_start']:.1f} s wall time")


def _unavailable(message: str) -> typing.NoReturn:
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def karbor_python() -> pathlib.Path:
    """Karbor's Python, with this checkout's plugins installed (tools/real_karbor.py)."""
    _TIMES["tier_start"] = time.monotonic()
    problem = None
    try:
        python = karbor_flows.install()
    except karbor_flows.Unavailable as exc:
        problem = exc
    if problem is not None:
        message = f"Karbor 1.6.0's virtualenv could not be built: {problem}"
        if problem.cannot_run:
            _unavailable(message)
        pytest.fail(message, pytrace=False)
    _TIMES["install"] = time.monotonic() - _TIMES["tier_start"]
    return python


@pytest.fixture(autouse=True)
def _time_the_tier() -> typing.Iterator[None]:
    # The tier ends with its last test, whatever tiers the session runs after it.
    yield
    _TIMES["tier_end"] = time.monotonic()


@pytest.fixture
def manila() -> typing.Iterator[ManilaStandIn]:
    """The Manila the scenarios act on: the stand-in, served from this process."""
    with ManilaStandIn(StandInConfig()) as running:
        yield running


@pytest.fixture
def karbor(tmp_path: pathlib.Path, karbor_python: pathlib.Path,
           manila: ManilaStandIn) -> typing.Iterator[karbor_flows.Deployment]:
    """A karbor-protection's files (providers.d, karbor.conf, database, bank) with
    ``[manila] endpoint_override`` pointing at the stand-in."""
    deployment = karbor_flows.Deployment(tmp_path / "karbor", karbor_python,
                                         manila_endpoint=manila.endpoint)
    yield deployment
    for log in sorted(deployment.logs.glob("*.log")):
        # Shown when the test failed.
        print(f"---- {log.name}\n" + "\n".join(log.read_text(errors="replace")
                                              .splitlines()[-40:]))


@pytest.fixture
def caller() -> karbor_flows.Caller:
    """A member of a fresh project (the stand-in's noauth token)."""
    return karbor_flows.Caller(user_id="alice", project_id=uuid.uuid4().hex)
