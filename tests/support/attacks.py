"""Two identity backends for the attack scenarios, and the attack table.

An :class:`IdentityBackend` is a Keystone and a Manila behind it, seen the same way
whichever they are:

* :class:`StandInIdentity` -- the Keystone stand-in and the Manila stand-in linked
  to it (``ManilaStandIn.use_keystone``), both served from the test process;
* :class:`RealIdentity` -- the session's real Keystone 30 and the Manila 23 API on
  Manila's unmodified keystone pipeline (``tools/real_manila.py up --keystone``).

Both answer with the accounts ``tools/real_keystone.py`` makes (``member-a`` in
``project-a``, ``member-b`` in ``project-b``, the service user ``protector``),
mint short-lived tokens, read what Manila holds as an administrator sees it, and
record the requests that reached Manila (the stand-in's request log; the real API's
access log, synchronised by a marker request).
"""

from __future__ import annotations

import dataclasses
import datetime
import pathlib
import re
import threading
import time
import typing
import uuid

import requests

from manila_standin import config as standin_config
from manila_standin import keystone as standin_keystone
from manila_standin import server as standin_server

from support import keystone
from support import manila_backends

MUTATING = frozenset({"POST", "PUT", "DELETE", "PATCH"})
#: Seconds a Manila read or a marker may take to show up.
SETTLE_TIMEOUT = 60.0


@dataclasses.dataclass(frozen=True)
class Seen:
    """One request that reached Manila's API."""

    method: str
    path: str
    status: int
    #: Seconds since the epoch (whole seconds on the real API's access log).
    time: float

    @property
    def mutating(self) -> bool:
        return self.method in MUTATING


class IdentityBackend:
    """A Keystone and a Manila behind it (see the module docstring)."""

    name: str
    #: The Keystone part of an ``env.json`` (``support.keystone``'s ``env``).
    env: dict[str, typing.Any]
    #: Share type whose snapshots take ``slow_snapshot_seconds``, and the default one.
    slow_type: str
    fast_type: str
    slow_snapshot_seconds: float

    def short_lived_token(self, user: str, expires_in: int) -> dict[str, typing.Any]:
        """A token of ``user`` in its project living ``expires_in`` seconds (``token``,
        ``expires_at``, ``user_id``, ``project_id``, ``roles``, ``catalog``)."""
        raise NotImplementedError

    def mark(self) -> typing.Any:
        """A point in the request record (see :meth:`seen_since`)."""
        raise NotImplementedError

    def seen_since(self, mark: typing.Any) -> list[Seen]:
        """The requests that reached Manila after ``mark``, every one of them."""
        raise NotImplementedError

    def snapshots(self, share_id: str) -> list[dict[str, typing.Any]]:
        raise NotImplementedError

    def shares(self, project_id: str) -> list[dict[str, typing.Any]]:
        raise NotImplementedError

    def close(self) -> None:
        """Stop what this backend started."""

    # -- common ---------------------------------------------------------------------------

    def login(self, user: str) -> keystone.Login:
        return keystone.login(self.env, user)

    def create_share(self, user: str, share_type: str) -> dict[str, typing.Any]:
        """A share of ``user``'s project, created by the user through the catalog."""
        manila = keystone.manila(self.login(user).session, self.env["region"])
        share = manila.shares.create("NFS", 1, name=f"attack-{uuid.uuid4().hex[:8]}",
                                     share_type=share_type)
        wait_until(lambda: self._status(manila, share.id) == "available",
                   f"share {share.id} to become available")
        return manila.shares.get(share.id).to_dict()

    @staticmethod
    def _status(manila: typing.Any, share_id: str) -> str:
        status = manila.shares.get(share_id).status
        assert status in ("creating", "available"), f"share {share_id} is {status}"
        return status

    def holdings(self, share_ids: typing.Iterable[str],
                 project_ids: typing.Iterable[str]) -> dict[str, typing.Any]:
        """What Manila holds of those shares and projects: snapshots (id, status) and
        share ids -- compared before and after an attack."""
        return {"snapshots": {share_id: sorted((s["id"], s["status"])
                                               for s in self.snapshots(share_id))
                              for share_id in share_ids},
                "shares": {project_id: sorted(s["id"] for s in self.shares(project_id))
                           for project_id in project_ids}}

    def worker_options(self, *, service_user: bool,
                       cleanup_timeout: float) -> dict[str, dict[str, typing.Any]]:
        """A worker's options: tokens validated with this Keystone as ``protector``,
        Manila found in the callers' catalogs, and (``service_user``) service tokens."""
        protector = self.env["users"]["protector"]
        auth = {"auth_type": "password", "auth_url": self.env["auth_url"],
                "username": protector["name"], "password": protector["password"],
                "user_domain_name": self.env["user_domain_name"],
                "project_name": protector["project"],
                "project_domain_name": self.env["project_domain_name"]}
        options: dict[str, dict[str, typing.Any]] = {
            "keystone_authtoken": dict(auth),
            "manila": {"cleanup_timeout": cleanup_timeout}}
        if service_user:
            options["service_user"] = {"send_service_user_token": "true", **auth}
        return options


class StandInIdentity(IdentityBackend):
    """The Keystone stand-in with the Manila stand-in behind it."""

    name = "standin"
    slow_type = "slow_snapshots"
    fast_type = "default"

    def __init__(self, slow_snapshot_seconds: float) -> None:
        self.slow_snapshot_seconds = slow_snapshot_seconds
        self.keystone = standin_keystone.KeystoneStandIn().start()
        self.env = self.keystone.bootstrap()
        # The stand-in's delays are global: every snapshot is as slow as the real
        # Manila's slow backend makes them.
        config = standin_config.StandInConfig(delays=standin_config.Delays(
            share_create=0.3, snapshot_create=slow_snapshot_seconds, snapshot_delete=0.2,
            share_delete=0.2), share_from_snapshot_status="creating")
        self.manila = standin_server.ManilaStandIn(config).start()
        self.manila.add_share_type(self.slow_type)
        self.manila.use_keystone(self.keystone)

    def short_lived_token(self, user: str, expires_in: int) -> dict[str, typing.Any]:
        return self.keystone.issue(user, expires_in=expires_in)

    def mark(self) -> int:
        return len(self.manila.requests())

    def seen_since(self, mark: int) -> list[Seen]:
        return [Seen(r.method, r.path, r.status, r.time) for r in self.manila.requests()[mark:]]

    def snapshots(self, share_id: str) -> list[dict[str, typing.Any]]:
        return self.manila.snapshots(share_id)

    def shares(self, project_id: str) -> list[dict[str, typing.Any]]:
        return self.manila.shares(project_id)

    def close(self) -> None:
        self.manila.stop()
        self.keystone.stop()


_ACCESS = re.compile(r'\[(?P<when>[^\]]+)\] "(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" '
                     r'(?P<status>\d{3})')


class RealIdentity(IdentityBackend):
    """The real Keystone 30 and Manila 23's keystone pipeline.

    :param env: ``tools/real_manila.py up --keystone``'s env.
    """

    name = "keystone30"
    slow_type = "mp_slow_snapshots"
    fast_type = "mp_default"

    def __init__(self, env: dict[str, typing.Any]) -> None:
        self.env = env["keystone"]
        self.slow_snapshot_seconds = float(env["slow_snapshot_seconds"])
        self._api = env["keystone_api"]
        self._access_log = pathlib.Path(env["logs"]["api-keystone"])
        # Reads as an administrator, on the noauth API (not counted: another process).
        self._reader = _NoauthReader(env["endpoint"])

    def short_lived_token(self, user: str, expires_in: int) -> dict[str, typing.Any]:
        return keystone.short_lived_token(self.env, user, expires_in)

    def mark(self) -> int:
        return self._access_log.stat().st_size

    def seen_since(self, mark: int) -> list[Seen]:
        # Every request before this one has been answered; its access line is written
        # once it is, so the marker's line comes after theirs.
        marker = f"/v2/attack-marker-{uuid.uuid4().hex}"
        requests.get(self._api["base_url"] + marker, timeout=30)

        def read() -> str | None:
            with open(self._access_log, "rb") as handle:
                handle.seek(mark)
                text = handle.read().decode("utf-8", "replace")
            return text if marker in text else None

        text = wait_until(read, "the marker request in Manila's access log")
        seen = []
        for line in text.splitlines():
            found = _ACCESS.search(line)
            if found is None or marker in line:
                continue
            when = datetime.datetime.strptime(found["when"], "%d/%b/%Y:%H:%M:%S %z")
            seen.append(Seen(found["method"], found["path"], int(found["status"]),
                             when.timestamp()))
        return seen

    def snapshots(self, share_id: str) -> list[dict[str, typing.Any]]:
        return self._reader.snapshots(share_id)

    def shares(self, project_id: str) -> list[dict[str, typing.Any]]:
        return self._reader.shares(project_id)


class _NoauthReader(manila_backends.Backend):
    """The contract backend's administrator reads, on a noauth endpoint."""

    def __init__(self, endpoint: str) -> None:
        super().__init__()
        self.endpoint = endpoint


def wait_until(predicate: typing.Callable[[], typing.Any], what: str,
               timeout: float = SETTLE_TIMEOUT) -> typing.Any:
    """Poll ``predicate`` until truthy (its value); AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        pause.wait(0.1)


def expires_at(minted: dict[str, typing.Any]) -> float:
    """A minted token's ``expires_at`` in seconds since the epoch."""
    return datetime.datetime.fromisoformat(minted["expires_at"].replace("Z", "+00:00")
                                           ).timestamp()


# -- the table ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Row:
    """One attack on one backend."""

    backend: str
    attack: str
    expected: str
    attempts: int = 0
    refused: int = 0
    outcomes: list[str] = dataclasses.field(default_factory=list)
    mutating_reached: int = 0
    changed: int = 0


ROWS: list[Row] = []
STARTED: dict[str, float] = {}


def table() -> list[str]:
    """The attacks recorded so far, as a Markdown table."""
    if not ROWS:
        return []
    lines = ["| backend | attack | attempts | refused | outcome | mutating requests that "
             "reached Manila | resources changed |",
             "|---|---|---:|---:|---|---:|---:|"]
    for row in ROWS:
        outcome = ", ".join(sorted(set(row.outcomes)))
        lines.append(f"| {row.backend} | {row.attack} | {row.attempts} | {row.refused} | "
                     f"{outcome} | {row.mutating_reached} | {row.changed} |")
    return lines
