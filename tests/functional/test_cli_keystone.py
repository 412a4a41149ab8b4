"""The operator CLI with Keystone: a user's password becomes a token and a catalog, which a
worker validating tokens with Keystone (``[keystone_authtoken]``) accepts and follows.

The Keystone stand-in (the same accounts and answers as the real Keystone 30, checked by
``tests/contract/test_keystone_fidelity.py``) with the Manila stand-in behind it on
keystonemiddleware's rules; the worker has no ``[manila] endpoint_override``: Manila is
found in the catalog Keystone answers for the CLI's token.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import typing
import uuid

import pytest
from oslo_context import context as oslo_context

from support import attacks
from support import rabbit

pytestmark = pytest.mark.functional

#: Seconds a CLI command may take (it starts a Python process and talks to the worker).
COMMAND_TIMEOUT = 120.0


class _CatalogOnly:
    """No ``[manila] endpoint_override``: the caller's catalog names Manila."""

    endpoint = ""


@pytest.fixture(scope="module")
def identity() -> typing.Iterator[attacks.StandInIdentity]:
    found = attacks.StandInIdentity(slow_snapshot_seconds=0.5)
    yield found
    found.close()


@pytest.fixture
def keystone_worker(identity, broker, names, tmp_path):
    """One worker validating tokens with the Keystone stand-in; its configuration file."""
    login = identity.login("member-a")
    ctxt = oslo_context.RequestContext(auth_token=login.token, user_id=login.user_id,
                                       project_id=login.project_id, roles=list(login.roles))
    workers = rabbit.Workers(broker, names, tmp_path / "workers", ctxt)
    config = workers.configure(_CatalogOnly(), options=identity.worker_options(
        service_user=False, cleanup_timeout=30))
    workers.start(config)
    yield config
    workers.stop_all()
    for worker in {w.host: w for w in workers.started}.values():
        print(f"---- tail of {worker.config.log_path}")
        print(worker.log_tail())


def _cli(config_path: pathlib.Path, identity: attacks.StandInIdentity, user: str,
         password: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("OS_")}
    account = identity.env["users"][user]
    argv = [sys.executable, "-m", "manila_protector.cli.shell",
            "--config-file", str(config_path),
            "--os-auth-type", "password", "--os-auth-url", identity.env["auth_url"],
            "--os-username", user, "--os-password", password,
            "--os-project-name", account["project"],
            "--os-user-domain-name", identity.env["user_domain_name"],
            "--os-project-domain-name", identity.env["project_domain_name"],
            "--os-region-name", identity.env["region"], *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
                          env=env, stdin=subprocess.DEVNULL)
    # Neither the password nor a token is ever shown.
    assert password not in done.stdout + done.stderr
    return done


def test_a_password_login_protects_and_lists_the_users_own_share(identity, keystone_worker):
    share = identity.create_share("member-a", identity.fast_type)
    password = identity.env["users"]["member-a"]["password"]
    job_id = str(uuid.uuid4())

    protected = _cli(keystone_worker.path, identity, "member-a", password,
                     "protect", share["id"], "--name", "nightly", "--job-id", job_id,
                     "-f", "json")

    assert protected.returncode == 0, protected.stderr
    record = json.loads(protected.stdout)
    assert record["status"] == "succeeded", record
    # The project is Keystone's answer for member-a's token, not something the CLI made up.
    assert record["project_id"] == identity.env["users"]["member-a"]["project_id"]
    assert [s["id"] for s in identity.snapshots(share["id"])] == [
        record["result"]["snapshot_id"]]
    listed = _cli(keystone_worker.path, identity, "member-a", password,
                  "job", "list", "-f", "json")
    assert listed.returncode == 0, listed.stderr
    assert [job["Job ID"] for job in json.loads(listed.stdout)] == [job_id]
    # Another project's user sees none of it.
    other = _cli(keystone_worker.path, identity, "member-b",
                 identity.env["users"]["member-b"]["password"], "job", "list", "-f", "json")
    assert other.returncode == 0, other.stderr
    assert json.loads(other.stdout) == []


def test_a_wrong_password_exits_2_with_one_line_and_sends_nothing(identity, keystone_worker):
    share = identity.create_share("member-a", identity.fast_type)
    mark = identity.mark()

    refused = _cli(keystone_worker.path, identity, "member-a", "not-the-password",
                   "protect", share["id"], "--name", "nightly")

    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "Keystone refused the credentials" in lines[0], refused.stderr
    assert "Traceback" not in refused.stderr
    assert [seen for seen in identity.seen_since(mark) if seen.mutating] == []
    assert identity.snapshots(share["id"]) == []
