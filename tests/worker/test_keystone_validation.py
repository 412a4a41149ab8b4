"""A worker with ``[keystone_authtoken]``: identity from Keystone's answer, never from
the message (the Keystone stand-in, with the Manila stand-in behind it).

The same attacks run on separate worker processes against the real Keystone 30 in
``tests/contract/test_keystone_attacks.py``; here the worker is in-process, so
Keystone's own troubles (unreachable, refusing the worker's credentials) and the
validation cache can be tried too.
"""

from __future__ import annotations

import dataclasses
import typing
import uuid

import pytest
from keystoneauth1 import loading as ks_loading
from oslo_context import context as oslo_context

from manila_protector import exception
from manila_protector import opts
from manila_standin import KeystoneStandIn

from support import keystone

OPTIONS = {"snapshot_name": "nightly", "description": "keystone", "force": False}


def new_id() -> str:
    return str(uuid.uuid4())


@dataclasses.dataclass
class Validated:
    """A fresh worker validating tokens with a Keystone stand-in, and two members."""

    env: typing.Any
    keystone: KeystoneStandIn
    a: keystone.Login
    b: keystone.Login
    share_a: dict[str, typing.Any]
    share_b: dict[str, typing.Any]

    def context(self, login: keystone.Login, **claims: typing.Any
                ) -> oslo_context.RequestContext:
        values = {"auth_token": login.token, "user_id": login.user_id,
                  "project_id": login.project_id, "roles": list(login.roles), **claims}
        return oslo_context.RequestContext(**values)


def configure(conf: typing.Any, env: dict[str, typing.Any], password: str | None = None) -> None:
    """``[keystone_authtoken]`` as a deployment writes it: the service user ``protector``."""
    group = opts.KEYSTONE_GROUP
    conf.register_opts(ks_loading.get_auth_plugin_conf_options("password"), group=group)
    protector = env["users"]["protector"]
    for name, value in {"auth_type": "password", "auth_url": env["auth_url"],
                        "username": "protector",
                        "password": password or protector["password"],
                        "user_domain_name": "Default", "project_name": "service",
                        "project_domain_name": "Default"}.items():
        conf.set_override(name, value, group=group)


@pytest.fixture(scope="module")
def transport_url() -> str:
    """One transport: what is tried here is identity, not the transport (the tier's
    other modules run both)."""
    return "kombu+memory:////"


@pytest.fixture
def validated(fresh) -> typing.Iterator[Validated]:
    ks = KeystoneStandIn().start()
    try:
        env = ks.bootstrap()
        fresh.standin.use_keystone(ks)
        configure(fresh.conf, env)
        a, b = keystone.login(env, "member-a"), keystone.login(env, "member-b")
        share_a = fresh.standin.create_share(a.project_id, size=1)
        share_b = fresh.standin.create_share(b.project_id, size=1)
        yield Validated(env, ks, a, b, share_a, share_b)
    finally:
        ks.stop()


@pytest.mark.parametrize("claims", [
    {"project_id": "B"}, {"roles": ["admin", "member"]}, {"is_admin": True},
    {"user_id": "someone-else"}], ids=["project", "roles", "is_admin", "user"])
def test_a_context_claiming_more_than_its_token_is_refused_before_manila(fresh, validated,
                                                                        claims):
    fresh.make_worker()
    if claims.get("project_id") == "B":
        claims = {"project_id": validated.b.project_id}
    forged = validated.context(validated.a, **claims)
    fresh.standin.reset_requests()

    with pytest.raises(exception.NotAuthorized) as info:
        fresh.client.protect(forged, new_id(), validated.share_b["id"], OPTIONS)

    assert info.value.code == "not_authorized"
    assert fresh.standin.count_requests() == 0
    assert fresh.standin.snapshots(share_id=validated.share_b["id"]) == []


def test_identity_comes_from_keystone_and_the_answer_is_cached(fresh, validated):
    fresh.make_worker()
    # The context names nothing but the token: Keystone says who it is.
    bare = oslo_context.RequestContext(auth_token=validated.a.token)
    before = validated.keystone.validations()

    record = fresh.client.protect(bare, new_id(), validated.share_a["id"], OPTIONS)
    fresh.client.get_job(bare, record["job_id"])
    listed = fresh.client.list_jobs(bare)

    assert record["status"] == "succeeded", record
    assert [job["job_id"] for job in listed] == [record["job_id"]]
    assert {job["project_id"] for job in listed} == {validated.a.project_id}
    assert validated.keystone.validations() - before == 1
    with pytest.raises(exception.NotFound):
        fresh.client.get_job(validated.context(validated.b), record["job_id"])


def test_a_revoked_token_is_refused_once_the_cache_time_is_over(fresh, validated):
    fresh.conf.set_override("token_cache_time", 0, group=opts.KEYSTONE_GROUP)
    fresh.make_worker()
    ctxt = validated.context(validated.a)
    assert fresh.client.list_jobs(ctxt) == []
    validated.keystone.revoke(validated.a.token)

    with pytest.raises(exception.NotAuthorized) as info:
        fresh.client.list_jobs(ctxt)
    assert info.value.code == "not_authorized"


def test_an_expired_token_is_token_expired_and_a_garbage_one_not_authorized(fresh, validated):
    fresh.make_worker()
    expired = validated.keystone.issue("member-a", expires_in=-1)
    fresh.standin.reset_requests()

    with pytest.raises(exception.TokenExpired) as info:
        fresh.client.protect(validated.context(validated.a, auth_token=expired["token"]),
                             new_id(), validated.share_a["id"], OPTIONS)
    assert info.value.retryable
    assert expired["token"] not in str(info.value)
    with pytest.raises(exception.NotAuthorized) as info:
        fresh.client.protect(validated.context(validated.a, auth_token="gAAAAAB-not-a-token"),
                             new_id(), validated.share_a["id"], OPTIONS)
    assert info.value.code == "not_authorized"
    assert fresh.standin.count_requests() == 0


def test_keystone_refusing_the_workers_credentials_is_retryable_and_names_no_secret(
        fresh, validated):
    configure(fresh.conf, validated.env, password="wrong-password-xyz")
    fresh.make_worker()

    with pytest.raises(exception.IdentityUnavailable) as info:
        fresh.client.protect(validated.context(validated.a), new_id(),
                             validated.share_a["id"], OPTIONS)

    assert info.value.retryable
    assert "wrong-password-xyz" not in str(info.value)
    assert validated.a.token not in str(info.value)
    assert fresh.standin.count_requests() == 0


def test_keystone_unreachable_is_identity_unavailable(fresh, validated):
    fresh.make_worker()
    validated.keystone.stop()

    with pytest.raises(exception.IdentityUnavailable) as info:
        fresh.client.list_jobs(validated.context(validated.a))
    assert info.value.retryable
