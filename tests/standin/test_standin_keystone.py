"""The Keystone stand-in: logins and catalogs through keystoneauth, validation with
Keystone's rules, and Manila behind it as keystonemiddleware guards it (manual clock:
a token expires when the test says so). ``tests/contract/test_keystone_fidelity.py``
compares every answer with the real Keystone 30's."""

from __future__ import annotations

import typing

import pytest
from manilaclient import exceptions as manila_exc

from manila_standin import KeystoneStandIn, ManilaStandIn, ManualClock

from support import keystone

START = 1_800_000_000.0


@pytest.fixture
def ks_clock() -> ManualClock:
    return ManualClock(start=START)


@pytest.fixture
def ks(ks_clock: ManualClock) -> typing.Iterator[KeystoneStandIn]:
    with KeystoneStandIn(clock=ks_clock.now) as running:
        yield running


@pytest.fixture
def env(ks: KeystoneStandIn) -> dict[str, typing.Any]:
    return ks.bootstrap()


@pytest.fixture
def manila(ks: KeystoneStandIn, env: dict[str, typing.Any]) -> typing.Iterator[ManilaStandIn]:
    with ManilaStandIn() as running:
        running.use_keystone(ks)
        yield running


def _status(call: typing.Callable[[], object]) -> int:
    try:
        call()
    except manila_exc.ClientException as exc:
        return exc.http_status
    return 200


def test_a_member_logs_in_and_finds_manila_in_its_catalog(env, manila):
    member = keystone.login(env, "member-a")

    assert member.project_id == env["projects"]["project-a"]
    assert set(member.roles) == {"member", "reader"}
    url = keystone.endpoint_of(member.catalog, "sharev2", "internal", "RegionOne")
    assert url == f"{manila.endpoint}/{member.project_id}"
    client = keystone.manila(member.session, env["region"])
    share = client.shares.create("NFS", 1, name="mine")
    assert manila.share(share.id)["project_id"] == member.project_id


def test_a_service_user_validates_a_members_token_and_a_member_may_not(env, ks):
    member_a = keystone.login(env, "member-a")

    assert keystone.token_status(env, member_a.token, as_user="protector") == 200
    assert keystone.token_status(env, member_a.token, as_user="member-b") == 403
    assert keystone.token_status(env, "gAAAAAB-unknown", as_user="protector") == 404
    assert ks.validations() == 3


def test_an_expired_token_is_unknown_unless_allow_expired(env, ks, ks_clock):
    minted = ks.issue("member-a", expires_in=60)
    assert keystone.token_status(env, minted["token"]) == 200

    ks_clock.advance(60)

    assert keystone.token_status(env, minted["token"]) == 404
    assert keystone.token_status(env, minted["token"], allow_expired=True) == 200
    ks_clock.advance(2 * 24 * 3600)  # Keystone's allow_expired_window
    assert keystone.token_status(env, minted["token"], allow_expired=True) == 404


def test_manila_takes_an_expired_token_only_with_a_service_users_token(env, ks, ks_clock,
                                                                       manila):
    minted = ks.issue("member-a", expires_in=60)
    endpoint = f"{manila.endpoint}/{minted['project_id']}"
    ks_clock.advance(61)
    alone = keystone.manila_with_token(endpoint, minted["token"])
    with_service = keystone.manila_with_token(
        endpoint, minted["token"], service_auth=keystone.password_auth(env, "protector"))
    with_member = keystone.manila_with_token(
        endpoint, minted["token"], service_auth=keystone.password_auth(env, "member-b"))

    assert _status(alone.shares.list) == 401
    assert _status(with_service.shares.list) == 200
    assert _status(with_member.shares.list) == 401
    [refused, *_] = [r for r in manila.requests() if r.status == 401]
    assert refused.project_id is None


def test_a_revoked_token_no_longer_reaches_manila_and_noauth_tokens_never_do(env, ks, manila):
    member = keystone.login(env, "member-a")
    endpoint = f"{manila.endpoint}/{member.project_id}"
    assert _status(keystone.manila_with_token(endpoint, member.token).shares.list) == 200

    ks.revoke(member.token)

    assert _status(keystone.manila_with_token(endpoint, member.token).shares.list) == 401
    noauth = keystone.manila_with_token(endpoint, f"admin:{member.project_id}")
    assert _status(noauth.shares.list) == 401
