"""The Manila v2 API of the stand-in, independent of the HTTP server.

:class:`ManilaApi` turns one HTTP request (method, target, headers, body) into
one :class:`Reply`. It does what Manila's paste pipeline and WSGI layer do:
transport fault injection, authentication (:mod:`~manila_standin.identity`),
microversion negotiation (:mod:`~manila_standin.versions`), routing to the
resource modules (:mod:`~manila_standin.routing`), fault bodies and the request
log (:mod:`~manila_standin.requestlog`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import typing
import urllib.parse
import uuid

from manila_standin import access_rules_api
from manila_standin import errors
from manila_standin import faults as faults_mod
from manila_standin import identity
from manila_standin import metadata
from manila_standin import render as render_mod
from manila_standin import requestlog
from manila_standin import revert
from manila_standin import routing
from manila_standin import share_types_api
from manila_standin import shares_api
from manila_standin import snapshots_api
from manila_standin import state as state_mod
from manila_standin import versions

LOG = logging.getLogger(__name__)

MUTATING_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
#: Every resource module, each registering its routes.
RESOURCES = (shares_api, metadata, access_rules_api, revert, snapshots_api, share_types_api)


@dataclasses.dataclass
class Reply:
    """An HTTP answer: status, headers and body bytes."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class ManilaApi:
    """Answer Manila v2 API requests from a :class:`~manila_standin.state.StandInState`.

    :param state: the model.
    :param faults: transport fault injection.
    :param request_log: where every request is recorded.
    """

    def __init__(
        self,
        state: state_mod.StandInState,
        faults: faults_mod.Faults,
        request_log: requestlog.RequestLog,
    ) -> None:
        self.state = state
        self.faults = faults
        self.request_log = request_log
        self.min_version = versions.parse_version(state.config.min_version)
        self.max_version = versions.parse_version(state.config.max_version)
        self.routes = routing.Routes()
        for resource in RESOURCES:
            resource.register(self.routes)

    def handle(
        self,
        method: str,
        target: str,
        headers: typing.Mapping[str, str],
        body: bytes,
        default_host: str = "127.0.0.1",
    ) -> Reply:
        """Answer one HTTP request.

        :param method: HTTP method.
        :param target: the request target (path and query string).
        :param headers: request headers with **lower-case** names.
        :param body: the request body.
        :param default_host: ``host:port`` used for links without a Host header.
        """
        method = method.upper()
        request_id = f"req-{uuid.uuid4()}"
        split = urllib.parse.urlsplit(target)
        path = split.path or "/"
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        arrived = self.state.now()
        decision = self.faults.decide(method, path)
        if decision.delay_before > 0:
            time.sleep(decision.delay_before)

        versioned = path == "/v2" or path.startswith("/v2/")
        requested = versions.requested_version(headers) if versioned else None
        ctx = self.state.tokens.resolve(headers.get("x-auth-token"), request_id,
                                        headers.get("x-service-token"))
        route = path
        version: versions.Version | None = None
        version_error: errors.ApiError | None = None
        if versioned:
            route = routing.split_project(path[len("/v2"):])[1]
            version, version_error = versions.negotiate(
                requested, self.min_version, self.max_version)

        def finish(status: int, payload: typing.Any, extra: dict[str, str],
                   injected: bool = False) -> Reply:
            self.request_log.record(requestlog.RecordedRequest(
                method=method,
                path=path,
                route=route,
                query=query,
                status=status,
                project_id=ctx.project_id if ctx else None,
                microversion=(requested or "2.0") if versioned else None,
                mutating=method in MUTATING_METHODS,
                time=arrived,
                request_id=request_id,
                injected=injected,
            ))
            reply_headers = [
                ("x-openstack-request-id", request_id),
                ("x-compute-request-id", request_id),
            ]
            if version is not None:
                reply_headers += versions.version_headers(versions.format_version(version))
            elif version_error is not None and version_error.status == 406 and requested:
                reply_headers += versions.version_headers(requested)
            reply_headers += list(extra.items())
            data = b""
            if payload is not None:
                data = json.dumps(payload).encode("utf-8")
                reply_headers.append(("Content-Type", "application/json"))
            return Reply(status, reply_headers, data)

        if decision.status is not None:
            fault = errors.ApiError(
                decision.status, "Injected fault: " + errors.DEFAULT_MESSAGES.get(
                    decision.status, "the server failed the request.")
            )
            LOG.debug("injecting %s for %s %s", decision.status, method, path)
            return finish(fault.status, fault.body(), fault.headers, injected=True)

        base_url = f"http://{headers.get('host') or default_host}"
        try:
            status, payload = self._dispatch(
                method, path, query, body, ctx, version, version_error, base_url
            )
            extra: dict[str, str] = {}
        except errors.ApiError as exc:
            status, payload, extra = exc.status, exc.body(), exc.headers
        except Exception:  # the stand-in must answer like a server, not crash
            LOG.exception("unexpected error answering %s %s", method, path)
            fault = errors.ApiError(500)
            status, payload, extra = 500, fault.body(), {}
        reply = finish(status, payload, extra)
        if decision.delay_after > 0:
            time.sleep(decision.delay_after)
        return reply

    def _dispatch(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        body: bytes,
        ctx: identity.Context | None,
        version: versions.Version | None,
        version_error: errors.ApiError | None,
        base_url: str,
    ) -> routing.Answer:
        cfg = self.state.config
        if path in ("/", ""):
            if method != "GET":
                raise errors.not_found()
            return 300, versions.document(base_url, cfg.min_version, cfg.max_version, "all")
        if not (path == "/v2" or path.startswith("/v2/")):
            raise errors.not_found()
        if ctx is None:
            uri = self.state.tokens.keystone_uri
            if uri is None:
                raise errors.ApiError(401)
            # keystonemiddleware's auth_token answers before Manila sees the request.
            raise errors.KeystoneUnauthorized(uri)
        if version_error is not None:
            raise version_error
        assert version is not None
        project_in_url, resource_path = routing.split_project(path[len("/v2"):])
        link_base, bookmark_base = f"{base_url}/v2", base_url
        if project_in_url is not None:
            if project_in_url != ctx.project_id:
                raise errors.bad_request("Malformed request url")
            link_base = f"{base_url}/v2/{project_in_url}"
            bookmark_base = f"{base_url}/{project_in_url}"
        if resource_path == "/":
            if method != "GET":
                raise errors.not_found()
            return 200, versions.document(base_url, cfg.min_version, cfg.max_version, "v2")
        with self.state.lock:
            self.state.settle()
            render = render_mod.Render(self.state, ctx, version, link_base, bookmark_base)
            request = routing.ApiRequest(method, ctx, version, query, body, render)
            return self.routes.route(request, resource_path)
