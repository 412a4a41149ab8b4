"""The plugin core against the Manila stand-in over HTTP, on virtual time.

The stand-in's transitions and the core's waits share one manual clock: when
the core sleeps, stand-in time moves on by that much, so a 60 s snapshot takes
no real time and no test sleeps.
"""

from __future__ import annotations

import random
import uuid

import pytest
from keystoneauth1 import session as ks_session

from manila_protector.plugins import client_factory
from manila_protector.plugins import runtime as runtime_mod
from manila_protector.plugins import values
from manila_protector.plugins import waiting
from manila_standin import ManilaStandIn, ManualClock, StandInConfig


class VirtualClock:
    """The waiter's clock: sleeping advances the stand-in's manual clock."""

    def __init__(self, manual: ManualClock) -> None:
        self.manual = manual
        self.slept = 0.0

    def now(self) -> float:
        return self.manual.now()

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.manual.advance(seconds)


@pytest.fixture
def manual_clock():
    return ManualClock(start=1_800_000_000.0)


@pytest.fixture
def vclock(manual_clock):
    return VirtualClock(manual_clock)


@pytest.fixture
def standin_config():
    return StandInConfig()


@pytest.fixture
def standin(standin_config, manual_clock):
    with ManilaStandIn(standin_config, clock=manual_clock) as running:
        yield running


@pytest.fixture
def other_project():
    return uuid.uuid4().hex


def plain_session(auth, connections):
    return ks_session.Session(auth=auth, session=connections)


@pytest.fixture
def factory():
    return client_factory.ClientFactory(plain_session)


@pytest.fixture
def plugin_settings():
    return runtime_mod.PluginSettings(
        wait_policy=waiting.WaitPolicy(),
        timeouts=values.Timeouts(protect=600, restore=600, delete=600, verify=60),
        list_page_size=100,
    )


@pytest.fixture
def runtime(plugin_settings, factory, vclock):
    return runtime_mod.PluginRuntime(plugin_settings, factory, clock=vclock, rng=random.Random(5))


@pytest.fixture
def manila(factory, standin, project):
    return factory.for_token(f"user:{project}", standin.endpoint)


@pytest.fixture
def protector(runtime, manila):
    return runtime.protector(manila)


#: The access rules every ``share`` fixture starts with.
RULES = [
    {"access_type": "ip", "access_to": "10.0.0.0/24", "access_level": "rw"},
    {"access_type": "ip", "access_to": "192.168.7.9", "access_level": "ro"},
]


@pytest.fixture
def share(standin, project):
    return standin.create_share(project, size=2, share_proto="NFS", name="data",
                                metadata={"owner": "team-a"}, access_rules=RULES)

