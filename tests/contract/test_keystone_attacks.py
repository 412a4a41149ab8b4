"""Issue 11's attacks on a worker that validates tokens with Keystone: each is refused
and nothing changes in Manila.

One suite, two identity backends (``identity`` is parametrized; ``-k standin`` runs the
fast side alone):

* ``standin`` -- the Keystone stand-in with the Manila stand-in behind it;
* ``keystone30`` -- the real Keystone 30 and Manila 23 on its unmodified keystone
  pipeline (``tools/real_manila.py up --keystone``; under ``CI`` the tier fails when
  that cannot be brought up).

The worker is a separate process on the real RabbitMQ (Redis locks) with
``[keystone_authtoken]`` (the service user ``protector``) and no ``[manila]``
credentials or endpoint: it finds Manila in the caller's catalog, as Keystone answers
it. Project B (``member-b``) protects its share first, so that there is a job and a
snapshot to steal; project A (``member-a``) then attacks with a real token of its own.
Each attack counts its attempts, how many were refused, the mutating requests that
reached Manila and the resources that changed; the table is printed at the end of the
session (``doc/reliability.md`` has it).
"""

from __future__ import annotations

import dataclasses
import pathlib
import time
import typing
import uuid

import pytest
from oslo_context import context as oslo_context

from manila_protector import exception
from manila_protector.rpc import api as rpc_api

from support import attacks
from support import rabbit

pytestmark = [pytest.mark.functional, pytest.mark.contract,
              pytest.mark.usefixtures("module_wall_time")]

OPTIONS = {"snapshot_name": "attack", "description": "issue 11", "force": False}
REFUSED = frozenset({"not_authorized", "not_found", "token_expired"})
#: Seconds a failed job may spend deleting what it made (the slow snapshot settles
#: within it; the token outlives it).
CLEANUP_TIMEOUT = 8.0
#: Seconds a job has to act before its token is too close to expiry: less than a slow
#: snapshot takes (3 s), so that the token runs out while the job waits for its
#: snapshot however soon the job asked for it.
ACTING_WINDOW = 2.8


@pytest.fixture(scope="module", params=[
    pytest.param("standin"),
    pytest.param("keystone30", marks=pytest.mark.real_manila)])
def identity(request: pytest.FixtureRequest) -> typing.Iterator[attacks.IdentityBackend]:
    if request.param == "standin":
        found: attacks.IdentityBackend = attacks.StandInIdentity(slow_snapshot_seconds=3.0)
    else:
        found = attacks.RealIdentity(request.getfixturevalue("keystone_manila_env"))
    yield found
    found.close()


@dataclasses.dataclass
class Scene:
    """Both projects, their shares, B's protected snapshot and the worker's RPC client."""

    identity: attacks.IdentityBackend
    client: typing.Any
    a: typing.Any
    b: typing.Any
    share_a: dict[str, typing.Any]
    share_b: dict[str, typing.Any]
    job_b: str
    saved_b: dict[str, typing.Any]
    host: str
    logs: list[pathlib.Path]
    service_user_client: typing.Any = None
    #: Every short-lived token minted for A (none may reach a log).
    minted: list[str] = dataclasses.field(default_factory=list)

    def holdings(self) -> dict[str, typing.Any]:
        return self.identity.holdings([self.share_a["id"], self.share_b["id"]],
                                      [self.a.project_id, self.b.project_id])


def context_of(login: typing.Any, **claims: typing.Any) -> oslo_context.RequestContext:
    """A request context with ``login``'s token, claiming what Keystone said unless
    ``claims`` say otherwise."""
    values = {"auth_token": login.token, "user_id": login.user_id,
              "project_id": login.project_id, "roles": list(login.roles), **claims}
    return oslo_context.RequestContext(**values)


class _Endpoint:
    """No ``[manila] endpoint_override``: the caller's catalog names Manila."""

    endpoint = ""


@pytest.fixture(scope="module")
def scene(identity: attacks.IdentityBackend, broker: rabbit.Broker,
          tmp_path_factory: pytest.TempPathFactory) -> typing.Iterator[Scene]:
    a, b = identity.login("member-a"), identity.login("member-b")
    topic = f"mp-ka-{uuid.uuid4().hex[:12]}"
    root = tmp_path_factory.mktemp(f"attacks-{identity.name}")
    started: list[tuple[rabbit.Names, rabbit.Workers]] = []

    def worker(service_user: bool) -> tuple[typing.Any, str, pathlib.Path]:
        names = rabbit.Names(topic=f"{topic}{'-su' if service_user else ''}",
                             notification_topic=f"{topic}-n")
        workers = rabbit.Workers(broker, names, root / names.topic, context_of(a))
        started.append((names, workers))
        config = workers.configure(_Endpoint(), options=identity.worker_options(
            service_user=service_user, cleanup_timeout=CLEANUP_TIMEOUT))
        workers.start(config)
        client = rpc_api.ProtectorAPI(broker.transport, topic=names.topic,
                                      exchange=broker.control_exchange, timeout=60)
        return client, config.host, config.log_path

    try:
        client, host, log = worker(service_user=False)
        su_client, _, su_log = worker(service_user=True)
        share_a = identity.create_share("member-a", identity.slow_type)
        share_b = identity.create_share("member-b", identity.fast_type)
        job_b = str(uuid.uuid4())
        protected = client.protect(context_of(b), job_b, share_b["id"], OPTIONS)
        assert protected["status"] == "succeeded", protected
        yield Scene(identity, client, a, b, share_a, share_b, job_b, protected["result"],
                    host, [log, su_log], su_client)
    finally:
        for names, workers in started:
            workers.stop_all()
            for process in {w.host: w for w in workers.started}.values():
                print(f"---- tail of {process.config.log_path}")
                print(process.log_tail())
            rabbit.delete_from_broker(names.queues(), [f"{names.topic}_fanout"])


def outcome(action: typing.Callable[[], typing.Any]) -> str:
    """An attempt's outcome: the error code, or ``succeeded``."""
    try:
        result = action()
    except exception.ProtectorError as error:
        return error.code
    if isinstance(result, dict) and result.get("status") == "failed":
        return result["error"]["code"]
    if isinstance(result, list):
        return f"listed {len(result)}"
    return "succeeded"


def run_attack(scene: Scene, attack: str, attempts: dict[str, typing.Callable[[], typing.Any]],
               expected: str = "refused") -> attacks.Row:
    """Run every attempt; record and return the counts (asserted by the caller)."""
    before = scene.holdings()
    mark = scene.identity.mark()
    row = attacks.Row(scene.identity.name, attack, expected)
    for name, action in attempts.items():
        result = outcome(action)
        print(f"{attack}: {name}: {result}")
        row.attempts += 1
        row.refused += result in REFUSED
        row.outcomes.append(result)
    row.mutating_reached = sum(1 for seen in scene.identity.seen_since(mark) if seen.mutating)
    after = scene.holdings()
    row.changed = _changes(before, after)
    attacks.ROWS.append(row)
    return row


def _changes(before: dict[str, typing.Any], after: dict[str, typing.Any]) -> int:
    """Resources added, removed or changed in status between two holdings."""
    changed = 0
    for share_id, snapshots in before["snapshots"].items():
        old, new = dict(snapshots), dict(after["snapshots"][share_id])
        changed += len(old.keys() ^ new.keys())
        changed += sum(1 for i in old.keys() & new.keys() if old[i] != new[i])
    for project_id, shares in before["shares"].items():
        changed += len(set(shares) ^ set(after["shares"][project_id]))
    return changed


def assert_refused(row: attacks.Row) -> None:
    assert row.refused == row.attempts, row.outcomes
    assert row.mutating_reached == 0
    assert row.changed == 0


# -- the attacks ------------------------------------------------------------------------------


def test_a_context_without_a_token_is_refused_whatever_it_claims(scene):
    intruder = oslo_context.RequestContext(user_id=scene.a.user_id,
                                           project_id=scene.b.project_id,
                                           roles=["admin", "member"], is_admin=True)
    row = run_attack(scene, "no token (claims admin in B)", {
        "protect B's share": lambda: scene.client.protect(
            intruder, str(uuid.uuid4()), scene.share_b["id"], OPTIONS),
        "delete B's snapshot": lambda: scene.client.delete(
            intruder, str(uuid.uuid4()), scene.share_b["id"], scene.saved_b),
        "read B's job": lambda: scene.client.get_job(intruder, scene.job_b),
        "list jobs": lambda: scene.client.list_jobs(intruder),
    })
    assert set(row.outcomes) == {"not_authorized"}
    assert_refused(row)


def test_a_token_of_a_with_a_context_claiming_project_b_is_refused(scene):
    forged = context_of(scene.a, project_id=scene.b.project_id)
    row = run_attack(scene, "forged project (A's token, context says B)", {
        "protect B's share": lambda: scene.client.protect(
            forged, str(uuid.uuid4()), scene.share_b["id"], OPTIONS),
        "restore B's snapshot into a new share": lambda: scene.client.restore(
            forged, str(uuid.uuid4()), scene.share_b["id"], scene.saved_b,
            {"restore_name": "stolen"}),
        "delete B's snapshot": lambda: scene.client.delete(
            forged, str(uuid.uuid4()), scene.share_b["id"], scene.saved_b),
        "read B's job": lambda: scene.client.get_job(forged, scene.job_b),
    })
    assert set(row.outcomes) == {"not_authorized"}
    assert_refused(row)


def test_a_members_token_with_a_context_claiming_admin_is_refused(scene):
    forged = context_of(scene.a, roles=["admin", "member", "reader"], is_admin=True)
    row = run_attack(scene, "forged roles (member's token, context says admin)", {
        "protect B's share": lambda: scene.client.protect(
            forged, str(uuid.uuid4()), scene.share_b["id"], OPTIONS),
        "restore B's snapshot into a new share": lambda: scene.client.restore(
            forged, str(uuid.uuid4()), scene.share_b["id"], scene.saved_b,
            {"restore_name": "stolen"}),
        "delete B's snapshot": lambda: scene.client.delete(
            forged, str(uuid.uuid4()), scene.share_b["id"], scene.saved_b),
        "list every project's jobs": lambda: scene.client.list_jobs(forged),
    })
    assert set(row.outcomes) == {"not_authorized"}
    assert_refused(row)


def test_another_tenants_jobs_and_shares_stay_out_of_reach_of_an_honest_token(scene):
    honest = context_of(scene.a)
    listed: list[dict[str, typing.Any]] = []
    row = run_attack(scene, "another tenant's job and share (A's honest token)", {
        "read B's job": lambda: scene.client.get_job(honest, scene.job_b),
        "read B's job on the worker that ran it": lambda: scene.client.get_job(
            honest, scene.job_b, server=scene.host),
        "protect B's share": lambda: scene.client.protect(
            honest, str(uuid.uuid4()), scene.share_b["id"], OPTIONS),
        "delete B's snapshot": lambda: scene.client.delete(
            honest, str(uuid.uuid4()), scene.share_b["id"], scene.saved_b),
    })
    listed = scene.client.list_jobs(honest)
    row.attempts += 1
    # A's own refused attempts on B's share are A's jobs; B's are not A's to see.
    leaked = [job for job in listed if job["job_id"] == scene.job_b
              or job["project_id"] != scene.a.project_id]
    row.refused += not leaked
    row.outcomes.append(f"list_jobs: {len(leaked)} of B's")
    assert not leaked
    assert set(row.outcomes) - {"list_jobs: 0 of B's"} <= {"not_found", "not_authorized"}
    assert_refused(row)


def test_a_token_keystone_does_not_know_is_refused(scene):
    unknown = context_of(scene.a, auth_token="gAAAAAB" + uuid.uuid4().hex * 5)
    row = run_attack(scene, "a token Keystone does not know", {
        "protect A's share": lambda: scene.client.protect(
            unknown, str(uuid.uuid4()), scene.share_a["id"], OPTIONS),
        "list jobs": lambda: scene.client.list_jobs(unknown),
    })
    assert set(row.outcomes) == {"not_authorized"}
    assert_refused(row)


def _token_nearly_out(scene: Scene, lifetime: int, left: float) -> dict[str, typing.Any]:
    """A real token of member-a, once it has at most ``left`` seconds to live
    (waited for, on the token's own ``expires_at``)."""
    minted = scene.identity.short_lived_token("member-a", lifetime)
    scene.minted.append(minted["token"])
    ends = attacks.expires_at(minted)
    attacks.wait_until(lambda: ends - time.time() <= left,
                       f"the token to have {left:g} s left", timeout=lifetime + 10)
    return minted


def test_a_token_that_expires_during_a_job_fails_it_token_expired_and_cleans_up(scene):
    # The job may act for ACTING_WINDOW seconds: it asks for a snapshot, which takes
    # longer than that; it then stops, deletes the snapshot while its token is still
    # good, and names it.
    minted = _token_nearly_out(scene, lifetime=int(CLEANUP_TIMEOUT + ACTING_WINDOW + 6),
                               left=CLEANUP_TIMEOUT + ACTING_WINDOW)
    ctxt = context_of(scene.a, auth_token=minted["token"])
    records: list[dict[str, typing.Any]] = []

    def protect() -> dict[str, typing.Any]:
        records.append(scene.client.protect(ctxt, str(uuid.uuid4()), scene.share_a["id"],
                                            OPTIONS))
        return records[-1]

    row = run_attack(scene, "token expires during the job, no [service_user]",
                     {"protect A's share": protect}, expected="token_expired, cleaned up")
    [record] = records
    assert record["status"] == "failed", record
    assert record["error"]["code"] == "token_expired"
    details = record["error"]["details"]
    assert details["cleaned_up"] is True
    assert details["snapshot_id"]
    assert all(s["id"] != details["snapshot_id"]
               for s in scene.identity.snapshots(scene.share_a["id"]))
    # It made a snapshot and deleted it: two mutating requests, nothing left.
    assert row.mutating_reached == 2
    assert row.changed == 0
    assert minted["token"] not in repr(record)


def test_an_expired_token_is_refused_token_expired_before_anything_is_sent(scene):
    minted = scene.identity.short_lived_token("member-a", 1)
    scene.minted.append(minted["token"])
    ends = attacks.expires_at(minted)
    attacks.wait_until(lambda: time.time() > ends + 1, "the token to expire",
                       timeout=30)
    ctxt = context_of(scene.a, auth_token=minted["token"])
    row = run_attack(scene, "expired token at submission", {
        "protect A's share": lambda: scene.client.protect(
            ctxt, str(uuid.uuid4()), scene.share_a["id"], OPTIONS),
        "protect A's share (worker with [service_user])": lambda: scene.service_user_client
        .protect(ctxt, str(uuid.uuid4()), scene.share_a["id"], OPTIONS),
    })
    assert set(row.outcomes) == {"token_expired"}
    assert_refused(row)


def test_a_token_that_expires_during_a_job_is_carried_by_service_tokens(scene):
    # The token runs out while the worker waits for the snapshot; every request then
    # carries it with the worker's X-Service-Token, which Manila accepts.
    minted = _token_nearly_out(scene, lifetime=int(ACTING_WINDOW + 6), left=ACTING_WINDOW)
    ends = attacks.expires_at(minted)
    ctxt = context_of(scene.a, auth_token=minted["token"])
    records: list[dict[str, typing.Any]] = []
    mark = scene.identity.mark()

    def protect() -> dict[str, typing.Any]:
        records.append(scene.service_user_client.protect(
            ctxt, str(uuid.uuid4()), scene.share_a["id"], OPTIONS))
        return records[-1]

    row = run_attack(scene, "token expires during the job, with [service_user]",
                     {"protect A's share": protect}, expected="succeeded")
    [record] = records
    assert record["status"] == "succeeded", record
    after_expiry = [seen for seen in scene.identity.seen_since(mark)
                    if seen.time >= ends and seen.status < 300]
    print(f"requests served after the token expired: {len(after_expiry)}")
    row.outcomes.append(f"{len(after_expiry)} requests served after the token expired")
    assert after_expiry, "the token did not expire before the job's last request"
    snapshot_id = record["result"]["snapshot_id"]
    assert snapshot_id in {s["id"] for s in scene.identity.snapshots(scene.share_a["id"])}
    assert row.mutating_reached == 1
    assert row.changed == 1
    # Not an attack: the caller's own job, done. Remove its snapshot again.
    deleted = scene.client.delete(context_of(scene.a), str(uuid.uuid4()),
                                  scene.share_a["id"], record["result"])
    assert deleted["status"] == "succeeded", deleted


def test_no_token_or_password_reaches_a_worker_log(scene):
    secrets = [scene.a.token, scene.b.token, *scene.minted] + [
        user["password"] for user in scene.identity.env["users"].values()]
    for log in scene.logs:
        text = log.read_text(errors="replace")
        assert text, f"{log} is empty"
        leaked = [secret[:6] + "..." for secret in secrets if secret in text]
        assert not leaked, f"{log} holds {leaked}"
