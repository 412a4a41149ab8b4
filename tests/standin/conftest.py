"""Fixtures for the Manila stand-in tests: a running stand-in on a manual clock
and real python-manilaclient clients talking to it over HTTP."""

from __future__ import annotations

import typing
import uuid

import pytest
import requests
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from manilaclient import api_versions
from manilaclient import client as manila_client

from manila_standin import ManilaStandIn, ManualClock, StandInConfig

START = 1_700_000_000.0


@pytest.fixture
def clock() -> ManualClock:
    """Stand-in time that moves only when a test advances it."""
    return ManualClock(start=START)


@pytest.fixture
def config() -> StandInConfig:
    """Default settings (zero delays); tests may change them before use."""
    return StandInConfig()


@pytest.fixture
def standin(config: StandInConfig, clock: ManualClock) -> typing.Iterator[ManilaStandIn]:
    """A running stand-in driven by the manual clock."""
    with ManilaStandIn(config, clock=clock) as running:
        yield running


@pytest.fixture
def project_id() -> str:
    """A fresh project id (hex, usable in URLs like real noauth Manila)."""
    return uuid.uuid4().hex


def session_for(endpoint: str, token: str) -> ks_session.Session:
    """A keystoneauth session with a static token (noauth / registered)."""
    return ks_session.Session(auth=token_endpoint.Token(endpoint=endpoint, token=token))


def negotiated_client(
    endpoint: str, token: str, version: str | None = None, **kwargs: typing.Any
) -> typing.Any:
    """A manilaclient client built the way the project builds it.

    Without ``version`` the microversion is negotiated with ``discover_version``.
    """
    sess = session_for(endpoint, token)
    if version is None:
        probe = manila_client.Client(api_versions.MAX_VERSION, session=sess)
        wanted = api_versions.APIVersion(api_versions.MAX_VERSION)
        negotiated = api_versions.discover_version(probe, wanted)
        return manila_client.Client(negotiated, session=sess, **kwargs)
    return manila_client.Client(version, session=sess, **kwargs)


@pytest.fixture
def make_client(standin: ManilaStandIn) -> typing.Callable[..., typing.Any]:
    """Factory: ``make_client(token, version=None, **client_kwargs)``."""

    def make(token: str, version: str | None = None, **kwargs: typing.Any) -> typing.Any:
        return negotiated_client(standin.endpoint, token, version, **kwargs)

    return make


@pytest.fixture
def client(make_client: typing.Callable[..., typing.Any], project_id: str) -> typing.Any:
    """A negotiated (2.98) client of ``project_id`` with a noauth admin token."""
    return make_client(f"user1:{project_id}")


@pytest.fixture
def http(standin: ManilaStandIn) -> typing.Callable[..., requests.Response]:
    """Raw HTTP against the stand-in: ``http(method, path, token=, version=, json=)``."""

    def call(
        method: str,
        path: str,
        token: str | None = "admin:admin",
        version: str | None = None,
        **kwargs: typing.Any,
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["X-Auth-Token"] = token
        if version is not None:
            headers["X-OpenStack-Manila-API-Version"] = version
        return requests.request(
            method, standin.base_url + path, headers=headers, timeout=30, **kwargs
        )

    return call
