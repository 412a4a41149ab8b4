"""A real Manila 23 for the contract tier: bringing it up with ``tools/real_manila.py``,
and the trusted-header gateway that lets the worker use it with a member's identity.

The worker acts on Manila with the caller's token (keystoneauth
``token_endpoint.Token`` sends only ``X-Auth-Token``). Manila's policy API in this tier
is the ``keystone`` pipeline without ``authtoken``: it trusts ``X-User-Id``,
``X-Project-Id`` and ``X-Roles``. :class:`TrustedHeaderGateway` sits in front of it and
does what keystonemiddleware's ``authtoken`` does in a real cloud: it maps a token it
knows (registered by the test, like ``ManilaStandIn.register_token``) to those headers,
drops any identity headers the client sent, and answers 401 for an unknown token.
Nothing in the worker knows it is there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import http.server
import json
import os
import pathlib
import subprocess
import sys
import threading
import typing
import urllib.parse

REPO = pathlib.Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "real_manila.py"

#: Exit status of the tool when this machine lacks a prerequisite.
EXIT_CANNOT_RUN = 2

#: Seconds the whole bring-up (cached install, setup, start) may take.
UP_TIMEOUT = 1800.0


class Unavailable(Exception):
    """The real Manila could not be brought up.

    :ivar cannot_run: this machine lacks a prerequisite (MariaDB, RabbitMQ, a package
        index) rather than Manila failing.
    """

    def __init__(self, message: str, cannot_run: bool) -> None:
        super().__init__(message)
        self.cannot_run = cannot_run


def _tool(*args: str, timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL, check=False)


def bring_up(name: str, keystone: bool = False) -> dict[str, typing.Any]:
    """Install (cached), set up and start instance ``name``; returns its env.

    :param keystone: also the real Keystone and Manila's keystone pipeline (``up
        --keystone``; added to an instance already running without them). The env then
        has ``keystone`` and ``keystone_api`` (see ``support.keystone``).
    :raises Unavailable: with the tool's explanation and the tail of the relevant log.
    """
    args = ["up", "--name", name] + (["--keystone"] if keystone else [])
    try:
        proc = _tool(*args, timeout=UP_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise Unavailable(f"tools/real_manila.py up did not finish in {UP_TIMEOUT:g} s",
                          cannot_run=False) from exc
    if proc.returncode != 0:
        raise Unavailable(
            f"tools/real_manila.py {' '.join(args)} exited {proc.returncode}:\n"
            f"{proc.stdout[-3000:]}{proc.stderr[-6000:]}",
            cannot_run=proc.returncode == EXIT_CANNOT_RUN)
    env_file = json.loads(_tool("paths", "--name", name, timeout=60).stdout)["env_file"]
    return json.loads(pathlib.Path(env_file).read_text())


def stop(name: str) -> str:
    """Stop instance ``name`` (only the processes the tool started); returns its report.

    :raises Unavailable: the tool could not stop it.
    """
    proc = _tool("stop", "--name", name, timeout=120)
    if proc.returncode != 0:
        raise Unavailable(f"tools/real_manila.py stop --name {name} exited {proc.returncode}:"
                          f"\n{proc.stdout}{proc.stderr}", cannot_run=False)
    return proc.stdout.strip()


@contextlib.contextmanager
def instance_lock(base: pathlib.Path, names: typing.Sequence[str]) -> typing.Iterator[str]:
    """Hold the first free name of ``names`` for this test session (an flock), so that two
    sessions on one machine never start, use or stop the same instance."""
    import fcntl

    base.mkdir(parents=True, exist_ok=True)
    for name in names:
        handle = open(base / f"{name}.session.lock", "a+")  # held until the session ends
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        try:
            yield name
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
        return
    raise Unavailable(f"every instance name is in use by other test sessions: {names}",
                      cannot_run=True)


def cache_base() -> pathlib.Path:
    """Where the tool keeps installs and run directories."""
    return pathlib.Path(json.loads(_tool("paths", timeout=60).stdout)["base"])


# -- the trusted-header gateway ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who a registered token is."""

    user_id: str
    project_id: str
    roles: tuple[str, ...]


#: Keystone's default role inference: each role implies the next.
_ROLE_CHAIN = ("admin", "manager", "member", "reader")


def implied_roles(roles: typing.Iterable[str]) -> tuple[str, ...]:
    """``roles`` and every role they imply under keystone's default inference rules."""
    found = list(dict.fromkeys(roles))
    for index, role in enumerate(_ROLE_CHAIN):
        if role in found:
            found.extend(r for r in _ROLE_CHAIN[index + 1:] if r not in found)
    return tuple(found)


#: Identity headers a client may not set itself (authtoken removes them too).
_IDENTITY_PREFIXES = ("x-user", "x-project", "x-tenant", "x-role", "x-identity-status",
                      "x-service", "x-domain", "x-is-admin-project", "x-system-scope")
#: Hop-by-hop headers are not forwarded.
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
               "trailers", "transfer-encoding", "upgrade", "host", "content-length"}


class _GatewayHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 300
    server: _GatewayServer

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        token = self.headers.get("X-Auth-Token")
        identity = self.server.gateway.identity(token)
        headers = {name: value for name, value in self.headers.items()
                   if name.lower() not in _HOP_BY_HOP
                   and not name.lower().startswith(_IDENTITY_PREFIXES)}
        # The unversioned root (version discovery) needs no identity, as in a real cloud;
        # everything else without a known token is refused, as authtoken refuses it.
        if identity is None and urllib.parse.urlsplit(self.path).path.rstrip("/") != "":
            self._answer(401, [("Content-Type", "application/json")], json.dumps(
                {"error": {"code": 401, "title": "Unauthorized",
                           "message": "The request you have made requires authentication."}}
            ).encode())
            return
        if identity is not None:
            headers.update({"X-Identity-Status": "Confirmed", "X-User-Id": identity.user_id,
                            "X-Project-Id": identity.project_id,
                            "X-Roles": ",".join(identity.roles)})
        # Manila builds its links from Host: keep the gateway's, so they point here.
        headers["Host"] = self.headers.get("Host") or self.server.gateway.netloc
        upstream = http.client.HTTPConnection(*self.server.gateway.upstream, timeout=120)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            payload = answer.read()
            forwarded = [(k, v) for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP]
            self._answer(answer.status, forwarded, payload)
        except OSError as exc:
            self._answer(502, [("Content-Type", "text/plain")],
                         f"gateway: Manila did not answer: {exc}".encode())
        finally:
            upstream.close()

    def _answer(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        try:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _forward  # noqa: N815

    def log_message(self, format: str, *args: typing.Any) -> None:  # noqa: A002
        pass


class _GatewayServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, gateway: TrustedHeaderGateway) -> None:
        self.gateway = gateway
        super().__init__(("127.0.0.1", 0), _GatewayHandler)


class TrustedHeaderGateway:
    """An ``authtoken`` stand-in in front of a Manila API that trusts identity headers.

    :param upstream_base_url: that API's root, e.g. ``http://127.0.0.1:8787``.
    """

    def __init__(self, upstream_base_url: str) -> None:
        parsed = urllib.parse.urlsplit(upstream_base_url)
        self.upstream = (parsed.hostname, parsed.port)
        self._tokens: dict[str, Identity] = {}
        self._lock = threading.Lock()
        self._server: _GatewayServer | None = None
        self._thread: threading.Thread | None = None

    def register(self, token: str, user_id: str, project_id: str,
                 roles: typing.Iterable[str]) -> None:
        """Make ``token`` stand for that user, project and roles -- with the roles those
        imply, as keystone puts them in a token (Manila's policy reads need ``reader``)."""
        with self._lock:
            self._tokens[token] = Identity(user_id, project_id, implied_roles(roles))

    def identity(self, token: str | None) -> Identity | None:
        with self._lock:
            return self._tokens.get(token) if token else None

    def start(self) -> TrustedHeaderGateway:
        self._server = _GatewayServer(self)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="trusted-header-gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    @property
    def netloc(self) -> str:
        assert self._server is not None, "the gateway is not started"
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.netloc}"

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/v2"
