"""The real Keystone 30 beside the real Manila 23, asked directly (python-manilaclient and
keystoneauth; not our worker yet): what Manila's unmodified keystone pipeline does with
real tokens, expired tokens and service tokens, and the catalog services are handed.

This proves the infrastructure issue 11's attacks will run on. Brought up once per
session with ``tools/real_manila.py up --keystone`` (the ``keystone_manila_env``
fixture); under ``CI`` the module fails when that cannot be done, elsewhere a machine
without a prerequisite skips it.
"""

from __future__ import annotations

import datetime
import json
import threading
import time
import typing
import uuid

import pytest
import requests
from manilaclient import exceptions as manila_exc

from support import keystone

pytestmark = [pytest.mark.functional, pytest.mark.real_manila,
              pytest.mark.usefixtures("module_wall_time")]

#: Seconds a short-lived token lives.
SHORT_LIFE = 3
#: Seconds a share may take to settle on the dummy driver (it takes well under one).
SETTLE_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def ks(keystone_manila_env: dict[str, typing.Any]) -> dict[str, typing.Any]:
    """The Keystone part of the env (auth URL, projects, users, roles)."""
    return keystone_manila_env["keystone"]


@pytest.fixture(scope="module")
def manila_api(keystone_manila_env: dict[str, typing.Any]) -> dict[str, typing.Any]:
    """The API on Manila's keystone pipeline (``base_url``, ``endpoint_template``...)."""
    return keystone_manila_env["keystone_api"]


def _wait_share(manila: typing.Any, share_id: str, wanted: set[str]) -> str:
    deadline = time.monotonic() + SETTLE_TIMEOUT
    pause = threading.Event()
    while True:
        try:
            status = manila.shares.get(share_id).status
        except manila_exc.NotFound:
            status = "gone"
        if status in wanted:
            return status
        assert time.monotonic() < deadline, f"share {share_id} still {status}"
        pause.wait(0.2)


@pytest.fixture(scope="module")
def share_a(ks: dict[str, typing.Any]) -> typing.Iterator[typing.Any]:
    """A share of ``project-a``, made by its member through the catalog; deleted after."""
    manila = keystone.manila(keystone.login(ks, "member-a").session, ks["region"])
    share = manila.shares.create("NFS", 1, name=f"ks-contract-{uuid.uuid4().hex[:8]}")
    assert _wait_share(manila, share.id, {"available", "error"}) == "available"
    yield share
    manila.shares.delete(share.id)
    _wait_share(manila, share.id, {"gone", "error_deleting"})


@pytest.fixture(scope="module")
def expired(ks: dict[str, typing.Any]) -> dict[str, typing.Any]:
    """A real token of ``member-a`` that Keystone has seen expire (polled, not slept)."""
    minted = keystone.short_lived_token(ks, "member-a", SHORT_LIFE, project="project-a")
    assert _lifetime(minted) == SHORT_LIFE
    keystone.wait_until_expired(ks, minted["token"], timeout=SHORT_LIFE + 60)
    return minted


def _lifetime(minted: dict[str, typing.Any]) -> float:
    """Seconds between a token's ``issued_at`` and ``expires_at`` (as Keystone wrote them)."""
    def parse(value: str) -> datetime.datetime:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))

    return (parse(minted["expires_at"]) - parse(minted["issued_at"])).total_seconds()


def _share_ids(manila: typing.Any) -> set[str]:
    return {share.id for share in manila.shares.list()}


def _status_of(call: typing.Callable[[], object]) -> int:
    try:
        call()
    except manila_exc.ClientException as exc:
        return exc.http_status
    return 200


# -- tokens and catalogs ------------------------------------------------------------------


def test_a_members_token_lists_its_projects_shares_through_the_catalog(ks, manila_api, share_a):
    member = keystone.login(ks, "member-a")
    assert member.project_id == ks["projects"]["project-a"]
    assert {"member", "reader"} <= set(member.roles)
    endpoint = keystone.endpoint_of(member.catalog, "sharev2", "public", ks["region"])
    assert endpoint == manila_api["endpoint_template"].replace("$(project_id)s",
                                                               member.project_id)

    manila = keystone.manila(member.session, ks["region"])
    assert manila.client.endpoint_override == endpoint
    listed = manila.shares.list()
    assert share_a.id in {share.id for share in listed}
    assert {share.project_id for share in listed} == {member.project_id}


def test_another_projects_share_is_not_found_for_a_member(ks, share_a):
    member_b = keystone.manila(keystone.login(ks, "member-b").session, ks["region"])
    assert _status_of(lambda: member_b.shares.get(share_a.id)) == 404
    assert share_a.id not in _share_ids(member_b)


@pytest.mark.parametrize("token", [None, "garbage", uuid.uuid4().hex],
                         ids=["none", "garbage", "unknown-uuid"])
def test_no_token_or_a_bad_one_is_refused_with_keystones_address(ks, manila_api, token):
    url = manila_api["endpoint_template"].replace("$(project_id)s", ks["projects"]["project-a"])
    headers = {"X-Auth-Token": token} if token else {}
    answer = requests.get(url + "/shares", headers=headers, timeout=30)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == f'Keystone uri="{ks["auth_url"]}"'


# -- expired tokens and service tokens -------------------------------------------------------


def test_a_minted_token_is_a_real_token_of_the_user(ks, manila_api, share_a):
    # The same minting as the short-lived tokens', with a life no machine outlasts.
    minted = keystone.short_lived_token(ks, "member-a", 600)
    assert _lifetime(minted) == 600
    assert minted["project_id"] == ks["projects"]["project-a"]
    assert minted["user_id"] == ks["users"]["member-a"]["id"]
    assert {"member", "reader"} <= set(minted["roles"])
    assert keystone.token_status(ks, minted["token"]) == 200
    endpoint = keystone.endpoint_of(minted["catalog"], "sharev2", "public", ks["region"])
    assert share_a.id in _share_ids(keystone.manila_with_token(endpoint, minted["token"]))


def test_an_expired_token_alone_is_unauthorized(ks, expired):
    endpoint = keystone.endpoint_of(expired["catalog"], "sharev2", "public", ks["region"])
    manila = keystone.manila_with_token(endpoint, expired["token"])
    assert _status_of(manila.shares.list) == 401


def test_an_expired_token_with_a_service_token_is_served_as_the_user(ks, expired, share_a):
    endpoint = keystone.endpoint_of(expired["catalog"], "sharev2", "public", ks["region"])
    manila = keystone.manila_with_token(endpoint, expired["token"],
                                        service_auth=keystone.password_auth(ks, "protector"))
    listed = manila.shares.list()
    assert share_a.id in {share.id for share in listed}
    assert {share.project_id for share in listed} == {ks["projects"]["project-a"]}


@pytest.mark.parametrize("user_token", ["expired", "valid"])
def test_a_service_token_without_the_service_role_sinks_the_request(ks, expired, user_token):
    endpoint = keystone.endpoint_of(expired["catalog"], "sharev2", "public", ks["region"])
    token = expired["token"] if user_token == "expired" else keystone.login(ks, "member-a").token
    manila = keystone.manila_with_token(endpoint, token,
                                        service_auth=keystone.password_auth(ks, "member-b"))
    assert _status_of(manila.shares.list) == 401


# -- what keystonemiddleware hands a service ---------------------------------------------------


def test_the_v2_catalog_helper_matches_what_keystonemiddleware_sends(ks, manila_api):
    member = keystone.login(ks, "member-a")
    seen = keystone.authtoken_headers(ks, member.token)
    assert seen["status"] == 200
    sent = json.loads(seen["headers"]["X-Service-Catalog"])
    assert keystone.v2_catalog(member.catalog) == sent
    sharev2 = [service for service in sent if service["type"] == "sharev2"]
    url = manila_api["endpoint_template"].replace("$(project_id)s", member.project_id)
    assert sharev2 == [{"type": "sharev2", "name": "manilav2", "endpoints": [
        {"region": ks["region"], "publicURL": url, "internalURL": url, "adminURL": url}]}]
    assert seen["headers"]["X-Project-Id"] == member.project_id
    assert set(seen["headers"]["X-Roles"].split(",")) == set(member.roles)


def test_keystonemiddleware_takes_an_expired_token_only_with_a_service_users_token(ks, expired):
    protector = keystone.login(ks, "protector")
    member_b = keystone.login(ks, "member-b")
    assert keystone.authtoken_headers(ks, expired["token"])["status"] == 401
    served = keystone.authtoken_headers(ks, expired["token"], protector.token)
    assert served["status"] == 200
    assert served["headers"]["X-Project-Id"] == ks["projects"]["project-a"]
    assert served["headers"]["X-Service-Roles"] == "service"
    assert keystone.authtoken_headers(ks, expired["token"], member_b.token)["status"] == 401
