"""The two Manilas the contract suite runs against: the stand-in and a real Manila 23.

Tooz runs one API suite against every driver; we run one contract suite against
every Manila. A :class:`Backend` gives a scenario what it needs without saying which
Manila it is:

* ``endpoint`` -- the ``noauthv2`` API for the worker's ``[manila] endpoint_override``:
  the token ``<user>:<project>`` is an administrator of that project (Manila's noauth);
* ``policy_endpoint`` -- an API where Manila's policy decides, for tokens made with
  :meth:`Backend.policy_token` (the stand-in's registered tokens; for Manila 23 the
  keystone pipeline without authtoken, behind :class:`real_manila.TrustedHeaderGateway`);
* fresh projects, shares created through the API and waited for, and reads of shares,
  snapshots and access rules as Manila shows them to an administrator.

Everything goes through python-manilaclient over HTTP, on both backends alike.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import typing
import uuid

from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from manilaclient import client as manila_client
from manilaclient import exceptions as manila_exc

from manila_standin import config as standin_config
from manila_standin import server as standin_server

from support import real_manila

#: Microversion of the helpers' client (the newest python-manilaclient 6.3.0 knows).
API_VERSION = "2.98"
#: Seconds a helper waits for a share, snapshot or access rule to settle.
SETTLE_TIMEOUT = 60.0
MEMBER_ROLES = ("member", "reader")
ADMIN_ROLES = ("admin", "member", "reader")


@dataclasses.dataclass(frozen=True)
class Project:
    """A fresh project; ``token`` is its noauth token (an administrator of it)."""

    id: str
    user_id: str

    @property
    def token(self) -> str:
        return f"{self.user_id}:{self.id}"


@dataclasses.dataclass(frozen=True)
class ShareTypes:
    """Names of the backend's share types."""

    #: snapshots, shares from snapshots, revert.
    snapshots: str
    #: no snapshot support.
    no_snapshots: str
    #: like ``snapshots``, but a snapshot takes ``Backend.slow_snapshot_seconds``.
    slow_snapshots: str


def _client(endpoint: str, token: str) -> typing.Any:
    sess = ks_session.Session(auth=token_endpoint.Token(endpoint, token))
    return manila_client.Client(API_VERSION, session=sess, service_catalog_url=endpoint,
                                retries=0)


class Backend:
    """One Manila as the contract scenarios see it (see the module docstring)."""

    name: str
    endpoint: str
    policy_endpoint: str
    share_types: ShareTypes
    slow_snapshot_seconds: float

    def __init__(self) -> None:
        self._admin: typing.Any = None
        self.projects: list[Project] = []

    # -- to be provided by each backend ----------------------------------------------------

    def policy_token(self, project_id: str, user_id: str, roles: typing.Iterable[str]) -> str:
        """A token the policy endpoint takes for that user, project and roles."""
        raise NotImplementedError

    def _share_type_chosen(self, share_type: str) -> None:
        """Hook: a share of ``share_type`` is about to be created."""

    # -- projects and clients ---------------------------------------------------------------

    def new_project(self, user_id: str = "alice") -> Project:
        project = Project(uuid.uuid4().hex, user_id)
        self.projects.append(project)
        return project

    def client(self, token: str) -> typing.Any:
        """A python-manilaclient client on the noauth endpoint."""
        return _client(self.endpoint, token)

    @property
    def admin(self) -> typing.Any:
        """A client of an administrator of a project of its own (for reads)."""
        if self._admin is None:
            self._admin = self.client(f"contract-admin:{uuid.uuid4().hex}")
        return self._admin

    # -- making things -------------------------------------------------------------------

    def create_share(
        self,
        project: Project,
        *,
        share_type: str | None = None,
        size: int = 1,
        share_proto: str = "NFS",
        name: str | None = None,
        metadata: dict[str, str] | None = None,
        access_rules: typing.Iterable[tuple[str, str, str]] = (),
    ) -> dict[str, typing.Any]:
        """Create a share of ``project`` through the API, wait until it is ``available``
        and its ``(type, to, level)`` access rules are ``active``; returns the share."""
        share_type = share_type or self.share_types.snapshots
        self._share_type_chosen(share_type)
        manila = self.client(project.token)
        share = manila.shares.create(share_proto, size, name=name or f"contract-{project.id[:6]}",
                                     metadata=metadata or {}, share_type=share_type)
        self.wait_share(share.id, {"available"})
        for access_type, access_to, access_level in access_rules:
            manila.shares.allow(share.id, access_type, access_to, access_level)
        if access_rules:
            self._wait(f"access rules of share {share.id}",
                       lambda: all(r["state"] == "active" for r in self.access_rules(share.id)))
        return self.share(share.id)

    def put_share_in_error(self, share_id: str) -> None:
        """What an operator's ``manila reset-state`` does (an admin action)."""
        self.admin.shares.reset_state(share_id, "error")
        self.wait_share(share_id, {"error"})

    def put_snapshot_in_error(self, snapshot_id: str) -> None:
        """What an operator's ``manila snapshot-reset-state`` does (an admin action)."""
        self.admin.share_snapshots.reset_state(snapshot_id, "error")
        self.wait_snapshot(snapshot_id, {"error"})

    # -- reading what Manila shows -----------------------------------------------------------

    def share(self, share_id: str) -> dict[str, typing.Any] | None:
        try:
            return self.admin.shares.get(share_id).to_dict()
        except manila_exc.NotFound:
            return None

    def snapshot(self, snapshot_id: str) -> dict[str, typing.Any] | None:
        try:
            return self.admin.share_snapshots.get(snapshot_id).to_dict()
        except manila_exc.NotFound:
            return None

    def snapshots(self, share_id: str) -> list[dict[str, typing.Any]]:
        """Every snapshot of a share, whichever project made it, oldest first."""
        found = self.admin.share_snapshots.list(
            detailed=True, search_opts={"share_id": share_id, "all_tenants": 1})
        # python-manilaclient refuses sort_key=created_at for snapshots.
        return sorted((s.to_dict() for s in found), key=lambda s: (s["created_at"], s["id"]))

    def shares(self, project_id: str) -> list[dict[str, typing.Any]]:
        """Every share of a project, oldest first."""
        found = self.admin.shares.list(
            detailed=True, search_opts={"all_tenants": 1, "project_id": project_id},
            sort_key="created_at", sort_dir="asc")
        found = found[0] if isinstance(found, tuple) else found
        return [s.to_dict() for s in found]

    def access_rules(self, share_id: str) -> list[dict[str, typing.Any]]:
        return [r.to_dict() for r in self.admin.share_access_rules.access_list(share_id)]

    # -- waiting ---------------------------------------------------------------------------

    def _wait(self, what: str, predicate: typing.Callable[[], typing.Any],
              timeout: float = SETTLE_TIMEOUT) -> typing.Any:
        deadline = time.monotonic() + timeout
        pause = threading.Event()
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
            pause.wait(0.1)

    def wait_share(self, share_id: str, statuses: set[str],
                   timeout: float = SETTLE_TIMEOUT) -> dict[str, typing.Any]:
        """Wait until the share is in one of ``statuses``; a failed status fails at once."""
        def settled() -> dict[str, typing.Any] | None:
            share = self.share(share_id)
            status = share["status"] if share else "gone"
            if status in statuses:
                return share or {"status": "gone"}
            assert status in {"creating", "available", "reverting", "deleting"}, (
                f"share {share_id} is {status!r}, waiting for {sorted(statuses)}")
            return None
        return self._wait(f"share {share_id} to be {sorted(statuses)}", settled, timeout)

    def wait_snapshot(self, snapshot_id: str, statuses: set[str],
                      timeout: float = SETTLE_TIMEOUT) -> dict[str, typing.Any]:
        def settled() -> dict[str, typing.Any] | None:
            snapshot = self.snapshot(snapshot_id)
            status = snapshot["status"] if snapshot else "gone"
            return (snapshot or {"status": "gone"}) if status in statuses else None
        return self._wait(f"snapshot {snapshot_id} to be {sorted(statuses)}", settled, timeout)

    # -- cleaning up -----------------------------------------------------------------------

    def cleanup(self) -> None:
        """Delete what the test's projects left (snapshots first); best effort."""


class StandInBackend(Backend):
    """A Manila stand-in of this test, served from the test process."""

    name = "standin"

    def __init__(self) -> None:
        super().__init__()
        config = standin_config.StandInConfig(
            # About what Manila 23 with its dummy driver at 0.1 s a call takes, so that
            # scenarios pass through the same transitional states on both backends.
            delays=standin_config.Delays(share_create=0.5, snapshot_create=0.3,
                                         snapshot_delete=0.2, share_delete=0.2, revert=0.3,
                                         access_apply=0.5, access_status_lag=0.1),
            # The dummy driver creates shares from snapshots synchronously.
            share_from_snapshot_status="creating",
            quotas=standin_config.Quotas(shares=-1, gigabytes=-1, snapshots=-1,
                                         snapshot_gigabytes=-1))
        self.standin = standin_server.ManilaStandIn(config).start()
        self.standin.add_share_type("no_snapshots", snapshot_support=False,
                                    create_share_from_snapshot_support=False,
                                    revert_to_snapshot_support=False)
        self.standin.add_share_type("slow_snapshots")
        self.endpoint = self.policy_endpoint = self.standin.endpoint
        self.share_types = ShareTypes(snapshots="default", no_snapshots="no_snapshots",
                                      slow_snapshots="slow_snapshots")
        self.slow_snapshot_seconds = 3.0

    def policy_token(self, project_id: str, user_id: str, roles: typing.Iterable[str]) -> str:
        token = f"policy-{uuid.uuid4().hex}"
        self.standin.register_token(token, user_id, project_id, roles)
        return token

    def _share_type_chosen(self, share_type: str) -> None:
        # The stand-in's delays are global, not per backend: this test's stand-in makes
        # every snapshot slow once a share of the slow type exists.
        if share_type == self.share_types.slow_snapshots:
            self.standin.config.delays.snapshot_create = self.slow_snapshot_seconds

    def cleanup(self) -> None:
        self.standin.stop()


class RealManilaBackend(Backend):
    """The session's real Manila 23 (``tools/real_manila.py``), one fresh project per use.

    :param env: what ``tools/real_manila.py env`` prints.
    :param gateway: the trusted-header gateway in front of its policy API.
    """

    name = "manila23"

    def __init__(self, env: dict[str, typing.Any],
                 gateway: real_manila.TrustedHeaderGateway) -> None:
        super().__init__()
        self.env = env
        self._gateway = gateway
        self.endpoint = env["endpoint"]
        self.policy_endpoint = gateway.endpoint
        self.share_types = ShareTypes(snapshots="mp_default", no_snapshots="mp_no_snapshots",
                                      slow_snapshots="mp_slow_snapshots")
        self.slow_snapshot_seconds = float(env["slow_snapshot_seconds"])

    def policy_token(self, project_id: str, user_id: str, roles: typing.Iterable[str]) -> str:
        token = f"policy-{uuid.uuid4().hex}"
        self._gateway.register(token, user_id, project_id, roles)
        return token

    def cleanup(self) -> None:
        """Delete the test's snapshots (whoever made them) and shares, so that the
        instance's database stays small across runs; problems are only printed."""
        try:
            shares = [s for p in self.projects for s in self.shares(p.id)]
            snapshots = [snap for s in shares for snap in self.snapshots(s["id"])]
            for snap in snapshots:
                # Manila deletes a snapshot only once it is made.
                settled = self.wait_snapshot(snap["id"], {"available", "error", "gone"},
                                             timeout=30)
                if settled["status"] != "gone":
                    self.admin.share_snapshots.delete(snap["id"])
            for snap in snapshots:
                self.wait_snapshot(snap["id"], {"gone", "error_deleting"}, timeout=30)
            for share in shares:
                if share["status"] in ("available", "error"):
                    self.admin.shares.delete(share["id"])
        except (manila_exc.ClientException, AssertionError) as exc:
            print(f"cleanup on {self.name} left something behind: {exc}")
