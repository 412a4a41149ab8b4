"""The Keystone stand-in answers as the real Keystone 30 does, and the Manila stand-in
behind it as Manila 23's keystone pipeline does.

Every probe is sent to both -- the real Keystone and Manila of ``tools/real_manila.py up
--keystone`` and the stand-ins -- and the answers are compared once ids, tokens, times
and addresses are replaced by placeholders: status, the headers services read
(``X-Subject-Token``, ``WWW-Authenticate``, ``Location``) and the JSON body, key by key.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
import typing

import pytest
import requests

from manila_standin import keystone as standin_keystone
from manila_standin import server as standin_server

from support import attacks
from support import keystone

pytestmark = [pytest.mark.functional, pytest.mark.contract, pytest.mark.real_manila,
              pytest.mark.usefixtures("module_wall_time")]

_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000000Z$")
_HEX = re.compile(r"^[0-9a-f]{32}$")


@dataclasses.dataclass
class Side:
    """One Keystone and the Manila behind it."""

    env: dict[str, typing.Any]
    manila_base: str
    mint: typing.Callable[[str, int], dict[str, typing.Any]]

    def token(self, user: str) -> str:
        return keystone.login(self.env, user).token

    def normalize(self, value: typing.Any, key: str = "") -> typing.Any:
        """``value`` with what differs between two Keystones replaced by placeholders."""
        if isinstance(value, dict):
            found = {k: self.normalize(v, k) for k, v in value.items()}
            if "endpoints" in found:
                found["endpoints"] = sorted(found["endpoints"], key=json.dumps)
            return found
        if isinstance(value, list):
            items = [self.normalize(v, key) for v in value]
            return sorted(items, key=json.dumps) if key in ("roles", "catalog") else items
        if isinstance(value, str):
            if key in ("expires_at", "issued_at"):
                return "<time>" if _TIME.match(value) else value
            if key in ("audit_ids",):
                return "<audit id>" if len(value) == 22 else value
            if _HEX.match(value):
                return "<id>"
            value = value.replace(self.env["base_url"], "<keystone>")
            value = value.replace(self.manila_base, "<manila>")
            return re.sub(r"/v2/[0-9a-f]{32}$", "/v2/<project id>", value)
        return value

    def answer(self, method: str, url: str, **kwargs: typing.Any) -> dict[str, typing.Any]:
        """Status, the headers that matter (present, or their normalized value), body."""
        got = requests.request(method, url, timeout=30, **kwargs)
        try:
            body = got.json() if got.content else None
        except ValueError:
            body = got.text
        return {
            "status": got.status_code,
            "x-subject-token": "X-Subject-Token" in got.headers,
            "www-authenticate": self.normalize(got.headers.get("WWW-Authenticate", "")),
            "location": self.normalize(got.headers.get("Location", "")),
            "body": self.normalize(body),
        }


def _password(env: dict[str, typing.Any], user: str, password: str | None = None,
              project: str | None = None) -> dict[str, typing.Any]:
    entry = env["users"][user]
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"name": "Default"},
        "password": entry["password"] if password is None else password}}},
        "scope": {"project": {"name": project or entry["project"],
                              "domain": {"name": "Default"}}}}}


def _probes(side: Side) -> dict[str, dict[str, typing.Any]]:
    env, auth = side.env, side.env["auth_url"]
    protector, member_a, member_b = (side.token(u) for u in ("protector", "member-a",
                                                             "member-b"))
    tokens = f"{auth}/auth/tokens"
    minted = side.mint("member-a", 1)
    ends = attacks.expires_at(minted)
    answers = {
        "discovery /": side.answer("GET", env["base_url"] + "/"),
        "discovery /v3": side.answer("GET", auth),
        "password login": side.answer("POST", tokens, json=_password(env, "member-a")),
        "password login, nocatalog": side.answer("POST", tokens + "?nocatalog",
                                                 json=_password(env, "member-a")),
        "wrong password": side.answer("POST", tokens, json=_password(env, "member-a", "x")),
        "project without a role": side.answer(
            "POST", tokens, json=_password(env, "member-a", project="project-b")),
        "validate (service user)": side.answer(
            "GET", tokens, headers={"X-Auth-Token": protector, "X-Subject-Token": member_a}),
        "validate, nocatalog": side.answer(
            "GET", tokens + "?nocatalog",
            headers={"X-Auth-Token": protector, "X-Subject-Token": member_a}),
        "validate an unknown token": side.answer(
            "GET", tokens, headers={"X-Auth-Token": protector, "X-Subject-Token": "garbage"}),
        "validate without a subject": side.answer(
            "GET", tokens, headers={"X-Auth-Token": protector}),
        "validate with a bad service token": side.answer(
            "GET", tokens, headers={"X-Auth-Token": "garbage", "X-Subject-Token": member_a}),
        "validate another user's token (member)": side.answer(
            "GET", tokens, headers={"X-Auth-Token": member_b, "X-Subject-Token": member_a}),
        "validate its own token": side.answer(
            "GET", tokens, headers={"X-Auth-Token": member_a, "X-Subject-Token": member_a}),
        "check (HEAD) by the service user": side.answer(
            "HEAD", tokens, headers={"X-Auth-Token": protector, "X-Subject-Token": member_a}),
        "check (HEAD) an unknown token": side.answer(
            "HEAD", tokens, headers={"X-Auth-Token": protector, "X-Subject-Token": "garbage"}),
    }
    attacks.wait_until(lambda: keystone.token_status(env, minted["token"]) == 404,
                       "the minted token to expire", timeout=60)
    assert time.time() >= ends
    expired = {"X-Subject-Token": minted["token"]}
    answers.update({
        "validate an expired token": side.answer(
            "GET", tokens, headers={"X-Auth-Token": protector, **expired}),
        "validate an expired token, allow_expired": side.answer(
            "GET", tokens + "?allow_expired=1", headers={"X-Auth-Token": protector, **expired}),
        "validate an expired token, allow_expired, as a member": side.answer(
            "GET", tokens + "?allow_expired=1", headers={"X-Auth-Token": member_b, **expired}),
        "an expired token as the caller's": side.answer(
            "GET", tokens, headers={"X-Auth-Token": minted["token"],
                                    "X-Subject-Token": protector}),
    })
    shares = side.manila_base + "/v2/" + env["projects"]["project-a"] + "/shares"
    for name, headers in {
        "no token": {},
        "a garbage token": {"X-Auth-Token": "garbage"},
        "a valid token": {"X-Auth-Token": member_a},
        "an expired token": {"X-Auth-Token": minted["token"]},
        "an expired token with a service user's token": {
            "X-Auth-Token": minted["token"], "X-Service-Token": protector},
        "an expired token with a member's token as service token": {
            "X-Auth-Token": minted["token"], "X-Service-Token": member_b},
        "a valid token with a member's token as service token": {
            "X-Auth-Token": member_a, "X-Service-Token": member_b},
    }.items():
        got = side.answer("GET", shares, headers=headers)
        # What Manila lists differs; that it answered 200, and with what, does not matter.
        got["body"] = sorted(got["body"]) if got["status"] == 200 else got["body"]
        answers[f"Manila: {name}"] = got
    return answers


@pytest.fixture(scope="module")
def answers(keystone_manila_env: dict[str, typing.Any]
            ) -> dict[str, dict[str, dict[str, typing.Any]]]:
    """Every probe's answer, from the real pair and from the stand-ins."""
    real_env = keystone_manila_env["keystone"]
    real = Side(real_env, keystone_manila_env["keystone_api"]["base_url"],
                lambda user, life: keystone.short_lived_token(real_env, user, life))
    ks = standin_keystone.KeystoneStandIn().start()
    manila = standin_server.ManilaStandIn().start()
    try:
        standin_env = ks.bootstrap()
        manila.use_keystone(ks)
        standin = Side(standin_env, manila.base_url,
                       lambda user, life: ks.issue(user, expires_in=life))
        return {"real": _probes(real), "standin": _probes(standin)}
    finally:
        manila.stop()
        ks.stop()


#: Each probe and the status the real Keystone (or Manila behind it) answers.
PROBES = {
    "discovery /": 300, "discovery /v3": 200, "password login": 201,
    "password login, nocatalog": 201, "wrong password": 401, "project without a role": 401,
    "validate (service user)": 200, "validate, nocatalog": 200,
    "validate an unknown token": 404, "validate without a subject": 404,
    "validate with a bad service token": 401, "validate another user's token (member)": 403,
    "validate its own token": 200, "check (HEAD) by the service user": 403,
    "check (HEAD) an unknown token": 404, "validate an expired token": 404,
    "validate an expired token, allow_expired": 200,
    "validate an expired token, allow_expired, as a member": 403,
    "an expired token as the caller's": 401,
    "Manila: no token": 401, "Manila: a garbage token": 401, "Manila: a valid token": 200,
    "Manila: an expired token": 401,
    "Manila: an expired token with a service user's token": 200,
    "Manila: an expired token with a member's token as service token": 401,
    "Manila: a valid token with a member's token as service token": 401,
}


@pytest.mark.parametrize("probe", PROBES)
def test_the_stand_in_answers_as_the_real_keystone_and_manila_do(answers, probe):
    assert set(answers["standin"]) == set(PROBES)
    assert answers["real"][probe]["status"] == PROBES[probe]
    assert answers["standin"][probe] == answers["real"][probe]


def test_a_validation_answer_names_the_tokens_user_project_roles_and_catalog(answers):
    for side in ("real", "standin"):
        token = answers[side]["validate (service user)"]["body"]["token"]
        assert token["user"]["name"] == "member-a"
        assert token["project"]["name"] == "project-a"
        assert sorted(role["name"] for role in token["roles"]) == ["member", "reader"]
        assert {service["type"] for service in token["catalog"]} == {"identity", "sharev2"}
        assert token["expires_at"] == "<time>"
        assert "catalog" not in answers[side]["validate, nocatalog"]["body"]["token"]
