"""The Manila stand-in: a real HTTP server plus helpers for tests.

Example::

    with ManilaStandIn() as standin:
        sess = session.Session(auth=token_endpoint.Token(
            endpoint=standin.endpoint, token="user1:" + project_id))
        client = manilaclient.client.Client("2.98", session=sess)

The server is a stdlib ``ThreadingHTTPServer`` on a loopback port, serving in
a daemon thread; the helpers on :class:`ManilaStandIn` read and change the same
model directly (thread-safe) without HTTP.
"""

from __future__ import annotations

import http.server
import logging
import socket
import threading
import typing

from manila_standin import access_rules_api
from manila_standin import api as api_mod
from manila_standin import clock as clock_mod
from manila_standin import config as config_mod
from manila_standin import conflicts as conflicts_mod
from manila_standin import faults as faults_mod
from manila_standin import identity
from manila_standin import keystone as keystone_mod
from manila_standin import render as render_mod
from manila_standin import requestlog
from manila_standin import shares_api
from manila_standin import snapshots_api
from manila_standin import state as state_mod

LOG = logging.getLogger(__name__)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Adapts one HTTP connection to :meth:`api.ManilaApi.handle`."""

    protocol_version = "HTTP/1.1"
    server_version = "ManilaStandIn/1.0"
    sys_version = ""
    # Idle keep-alive connections are dropped after this many seconds.
    timeout = 300
    # Headers and body go out in separate writes; with Nagle's algorithm the body
    # waits for the client's delayed ACK (~40 ms a response). Manila's servers
    # answer without that delay, and so must we.
    disable_nagle_algorithm = True

    server: HttpServer

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length:
            return self.rfile.read(int(length))
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    def _serve(self) -> None:
        body = self._read_body()
        headers = {name.lower(): value for name, value in self.headers.items()}
        host, port = self.server.server_address[:2]
        reply = self.server.api.handle(
            self.command, self.path, headers, body, default_host=f"{host}:{port}"
        )
        try:
            self.send_response(reply.status)
            for name, value in reply.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD" and reply.body:
                self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (e.g. its timeout fired during a slow answer).
            LOG.debug("client went away before the answer to %s %s", self.command, self.path)
            self.close_connection = True

    # http.server dispatches on these names.
    def do_GET(self) -> None:  # noqa: N802
        self._serve()

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve()

    def do_POST(self) -> None:  # noqa: N802
        self._serve()

    def do_PUT(self) -> None:  # noqa: N802
        self._serve()

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve()

    def do_PATCH(self) -> None:  # noqa: N802
        self._serve()

    def log_message(self, format: str, *args: typing.Any) -> None:  # noqa: A002
        LOG.debug("%s - " + format, self.address_string(), *args)


class HttpServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server answering with ``api.handle`` (the Manila API, or the
    Keystone stand-in)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], api: typing.Any) -> None:
        self.api = api
        super().__init__(address, _Handler)

    def handle_error(self, request: typing.Any, client_address: typing.Any) -> None:
        LOG.debug("error serving %s", client_address, exc_info=True)


class ManilaStandIn:
    """A Manila v2 API stand-in served over HTTP.

    :param config: behaviour settings; defaults to :class:`StandInConfig()`.
    :param host: address to bind (loopback by default).
    :param port: port to bind; 0 picks a free one at :meth:`start`.
    :param clock: the clock of transitions; a :class:`clock.RealClock` running at
        ``config.time_scale`` when omitted (pass a :class:`ManualClock` to drive
        time from a test).
    """

    def __init__(
        self,
        config: config_mod.StandInConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: clock_mod.Clock | None = None,
    ) -> None:
        self.config = config if config is not None else config_mod.StandInConfig()
        self.clock: clock_mod.Clock = (
            clock if clock is not None else clock_mod.RealClock(self.config.time_scale)
        )
        self.faults = faults_mod.Faults(
            latency=self.config.latency,
            error_rate=self.config.error_rate,
            slow_rate=self.config.slow_rate,
            slow_delay=self.config.slow_delay,
            seed=self.config.seed,
        )
        self.state = state_mod.StandInState(self.config, self.clock, self.faults)
        self._log = requestlog.RequestLog()
        self.api = api_mod.ManilaApi(self.state, self.faults, self._log)
        self._host = host
        self._port = port
        self._server: HttpServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> ManilaStandIn:
        """Bind the port and serve in a daemon thread; returns ``self``.

        :raises RuntimeError: if already started.
        :raises OSError: if the port cannot be bound.
        """
        if self._server is not None:
            raise RuntimeError("the stand-in is already running")
        server = HttpServer((self._host, self._port), self.api)
        self._server = server
        self._port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},  # how fast stop() returns
            name=f"manila-standin-{self._port}",
            daemon=True,
        )
        self._thread.start()
        LOG.debug("Manila stand-in serving at %s", self.endpoint)
        return self

    def stop(self) -> None:
        """Stop serving and close the port (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ManilaStandIn:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the HTTP server is serving."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The bound port (0 before :meth:`start` when a free port was asked)."""
        return self._port

    @property
    def base_url(self) -> str:
        """``http://host:port`` (the unversioned root, where the versions are)."""
        host = self._host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self._port}"

    @property
    def endpoint(self) -> str:
        """The shared-file-system endpoint: ``http://host:port/v2``."""
        return f"{self.base_url}/v2"

    # -- tokens, types, networks, quotas ---------------------------------------

    def register_token(
        self, token: str, user_id: str, project_id: str, roles: typing.Iterable[str] = ()
    ) -> None:
        """Register a keystone-validated token; it is admin only with role ``admin``."""
        self.state.tokens.register(token, user_id, project_id, roles)

    def use_keystone(self, keystone: keystone_mod.KeystoneStandIn,
                     service_type: str = "sharev2", name: str = "manilav2") -> None:
        """Put this stand-in behind ``keystone`` as Manila's keystone pipeline is:
        every token is Keystone's (expired user tokens pass with a valid
        ``X-Service-Token`` of a user with the ``service`` role), a refusal is
        keystonemiddleware's 401, and noauth tokens stop working. The catalog of
        ``keystone`` gains this Manila (``<endpoint>/$(project_id)s``).
        """
        self.config.accept_noauth_tokens = False
        self.state.tokens.use_keystone(keystone, keystone.auth_url)
        keystone.add_service(service_type, name, self.endpoint + "/$(project_id)s")

    def revoke_token(self, token: str) -> None:
        """Invalidate ``token`` (also a noauth one): requests with it get 401."""
        self.state.tokens.revoke(token)

    def add_share_type(self, name: str, **capabilities: typing.Any) -> str:
        """Create a public share type; returns its id.

        :param capabilities: as :meth:`share_types.ShareTypes.add`: ``snapshot_support``,
            ``create_share_from_snapshot_support``, ``revert_to_snapshot_support`` (all
            True by default), ``mount_snapshot_support``, ``driver_handles_share_servers``
            (False), ``extra_specs``, ``description``.
        """
        return self.state.types.add(name, **capabilities)

    @property
    def default_share_type_id(self) -> str | None:
        """Id of the ``default`` share type."""
        return self.state.types.default_id

    def add_share_network(self, project_id: str) -> str:
        """Create an opaque share network owned by ``project_id``; returns its id."""
        return self.state.networks.add(project_id)

    def set_quota(
        self,
        project_id: str,
        snapshots: int | None = None,
        shares: int | None = None,
        gigabytes: int | None = None,
        snapshot_gigabytes: int | None = None,
    ) -> None:
        """Override quota limits of a project (None keeps a limit, -1 is unlimited)."""
        self.state.quotas.set(
            project_id,
            snapshots=snapshots,
            shares=shares,
            gigabytes=gigabytes,
            snapshot_gigabytes=snapshot_gigabytes,
        )

    def quota_usage(self, project_id: str) -> dict[str, int]:
        """What a project consumes: shares, gigabytes, snapshots, snapshot_gigabytes."""
        return self.state.quotas.usage(project_id)

    # -- direct resources ----------------------------------------------------

    def _render(self) -> render_mod.Render:
        ctx = identity.Context("standin", "standin", True)
        version = self.api.max_version
        return render_mod.Render(self.state, ctx, version, self.endpoint, self.base_url)

    def create_share(self, project_id: str, **fields: typing.Any) -> dict[str, typing.Any]:
        """Create a share directly (no API rules, no quota check, no transition).

        :param fields: as :meth:`shares.Shares.direct_create`: ``size`` (1),
            ``share_proto`` (NFS), ``name``, ``status`` (available), ``share_type``,
            ``share_network_id``, ``metadata``, ``is_public``, ``access_rules``
            (``{"access_type", "access_to", "access_level"}`` dicts or
            ``(type, to[, level])`` tuples, created ``active``)...
        :returns: the share as ``GET /shares/{id}`` shows it at the max version.
        """
        with self.state.lock:
            share = self.state.shares.direct_create(project_id, **fields)
            return shares_api.share_detail(self._render(), share)

    def create_shares(
        self, project_id: str, count: int, **kwargs: typing.Any
    ) -> list[str]:
        """Create ``count`` shares like :meth:`create_share`; returns their ids.

        A ``name`` containing ``{i}`` is formatted with the share's index.
        """
        name = kwargs.pop("name", None)
        ids = []
        with self.state.lock:
            for index in range(count):
                share_name = name.format(i=index) if name else None
                share = self.state.shares.direct_create(project_id, name=share_name, **kwargs)
                ids.append(share.id)
        return ids

    def create_snapshot(self, share_id: str, **fields: typing.Any) -> dict[str, typing.Any]:
        """Create a snapshot of ``share_id`` directly (no API rules, no transition).

        :param fields: as :meth:`snapshots.Snapshots.direct_create`: ``status``
            (available), ``name``, ``description``, ``metadata``.
        :raises KeyError: if the share does not exist.
        """
        with self.state.lock:
            snapshot = self.state.snapshots.direct_create(share_id, **fields)
            return snapshots_api.snapshot_detail(self._render(), snapshot)

    def share(self, share_id: str) -> dict[str, typing.Any] | None:
        """The share as an admin sees it at the max version, or None if gone."""
        with self.state.lock:
            self.state.settle()
            found = self.state.shares.by_id.get(share_id)
            return shares_api.share_detail(self._render(), found) if found is not None else None

    def snapshot(self, snapshot_id: str) -> dict[str, typing.Any] | None:
        """The snapshot as an admin sees it at the max version, or None if gone."""
        with self.state.lock:
            self.state.settle()
            found = self.state.snapshots.by_id.get(snapshot_id)
            if found is None:
                return None
            return snapshots_api.snapshot_detail(self._render(), found)

    def shares(self, project_id: str | None = None) -> list[dict[str, typing.Any]]:
        """Every share (of one project), oldest first."""
        with self.state.lock:
            render = self._render()
            return [shares_api.share_detail(render, s) for s in self.state.shares.every(project_id)]

    def snapshots(self, share_id: str | None = None) -> list[dict[str, typing.Any]]:
        """Every snapshot (of one share), oldest first."""
        with self.state.lock:
            render = self._render()
            return [
                snapshots_api.snapshot_detail(render, s)
                for s in self.state.snapshots.every(share_id)
            ]

    def access_rules(self, share_id: str) -> list[dict[str, typing.Any]]:
        """The access rules of a share (with ``share_id``), oldest first."""
        with self.state.lock:
            render = self._render()
            return [access_rules_api.access_detail(render, r)
                    for r in self.state.rules.of_share(share_id)]

    def set_share_status(self, share_id: str, status: str) -> None:
        """Force a share's status; a pending transition is cancelled.

        :raises KeyError: if the share does not exist.
        """
        self.state.shares.set_status(share_id, status)

    def set_snapshot_status(self, snapshot_id: str, status: str) -> None:
        """Force a snapshot's status; a pending transition is cancelled.

        :raises KeyError: if the snapshot does not exist.
        """
        self.state.snapshots.set_status(snapshot_id, status)

    # -- observation ------------------------------------------------------------

    def requests(self) -> list[requestlog.RecordedRequest]:
        """A copy of the request log, oldest first."""
        return self._log.entries()

    def reset_requests(self) -> None:
        """Empty the request log."""
        self._log.reset()

    def count_requests(
        self,
        method: str | None = None,
        path_prefix: str | None = None,
        mutating: bool | None = None,
    ) -> int:
        """Count logged requests (see :meth:`requestlog.RequestLog.count`)."""
        return self._log.count(method=method, path_prefix=path_prefix, mutating=mutating)

    def conflicts(self) -> list[conflicts_mod.Conflict]:
        """Overlapping mutations of one share recorded so far."""
        return self.state.conflicts()

    def reset_conflicts(self) -> None:
        """Forget the recorded conflicts."""
        self.state.reset_conflicts()


def free_port(host: str = "127.0.0.1") -> int:
    """Return a port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
