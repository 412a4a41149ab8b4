"""The Manila v2 API of the stand-in, independent of the HTTP server.

:class:`ManilaApi` turns one HTTP request (method, target, headers, body) into
one :class:`Reply`. It does what Manila's paste pipeline and WSGI layer do:
transport fault injection, authentication (noauth ``user:project`` tokens and
registered tokens), microversion negotiation (400/406, version headers,
version-gated routes answering 404), routing, fault bodies and the request
log. Resource rules live in :mod:`manila_standin.state`.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import logging
import re
import threading
import time
import typing
import urllib.parse
import uuid

from manila_standin import errors
from manila_standin import faults as faults_mod
from manila_standin import state as state_mod
from manila_standin import views

LOG = logging.getLogger(__name__)

Version = tuple[int, int]
MAX = (99, 999)
MUTATING_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
VERSION_HEADER = "X-OpenStack-Manila-API-Version"
SERVICE_TYPE = "shared-file-system"
_VERSION_RE = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")
_PROJECT_RE = re.compile(r"^[0-9a-fA-F-]+$")


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    """One request as the stand-in saw it.

    :param method: HTTP method.
    :param path: the path as received, without query string.
    :param route: the path below ``/v2`` without a project id (``/shares/x``);
        the received path for unversioned requests.
    :param query: query parameters (last value wins).
    :param status: the HTTP status answered.
    :param project_id: the caller's project (None when not authenticated).
    :param microversion: the requested microversion (None: unversioned URL).
    :param mutating: whether the method is POST, PUT or DELETE.
    :param time: stand-in time of arrival.
    :param request_id: the ``req-...`` id answered in ``x-openstack-request-id``.
    :param injected: whether the answer was an injected fault.
    """

    method: str
    path: str
    route: str
    query: dict[str, str]
    status: int
    project_id: str | None
    microversion: str | None
    mutating: bool
    time: float
    request_id: str
    injected: bool = False


class RequestLog:
    """Thread-safe record of every request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[RecordedRequest] = []

    def record(self, entry: RecordedRequest) -> None:
        """Append one request."""
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[RecordedRequest]:
        """Return a copy of the log."""
        with self._lock:
            return list(self._entries)

    def reset(self) -> None:
        """Forget every recorded request."""
        with self._lock:
            self._entries.clear()

    def count(
        self,
        method: str | None = None,
        path_prefix: str | None = None,
        mutating: bool | None = None,
    ) -> int:
        """Count recorded requests matching every given criterion.

        :param method: HTTP method (case-insensitive).
        :param path_prefix: prefix of the received path or of the route
            (``"/shares"`` matches ``/v2/shares/x`` and ``/v2/<project>/shares``).
        :param mutating: only mutating (True) or only read-only (False) requests.
        """
        wanted_method = method.upper() if method else None
        with self._lock:
            entries = list(self._entries)
        total = 0
        for entry in entries:
            if wanted_method is not None and entry.method != wanted_method:
                continue
            if mutating is not None and entry.mutating != mutating:
                continue
            if path_prefix is not None and not (
                entry.path.startswith(path_prefix) or entry.route.startswith(path_prefix)
            ):
                continue
            total += 1
        return total


@dataclasses.dataclass
class Reply:
    """An HTTP answer: status, headers and body bytes."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclasses.dataclass
class ApiRequest:
    """One routed request as handlers see it."""

    method: str
    ctx: state_mod.Context
    version: Version
    query: dict[str, str]
    raw_body: bytes
    render: views.Render

    def at_least(self, major: int, minor: int) -> bool:
        """Whether the request microversion is >= ``major.minor``."""
        return self.version >= (major, minor)

    def json(self) -> typing.Any:
        """Return the decoded JSON body (None when empty).

        :raises errors.ApiError: 400 "Malformed request body" on bad JSON.
        """
        if not self.raw_body.strip():
            return None
        try:
            return json.loads(self.raw_body)
        except (ValueError, UnicodeDecodeError):
            raise errors.bad_request("Malformed request body") from None


Handler = typing.Callable[..., tuple[int, typing.Any]]


@dataclasses.dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    min_version: Version
    max_version: Version


@dataclasses.dataclass(frozen=True)
class _Action:
    handler: Handler
    min_version: Version
    max_version: Version


def parse_version(text: str) -> Version:
    """Parse ``"2.73"`` into ``(2, 73)``.

    :raises ValueError: if ``text`` is not ``major.minor``.
    """
    match = _VERSION_RE.match(text.strip())
    if not match:
        raise ValueError(text)
    return int(match.group(1)), int(match.group(2))


def format_version(version: Version) -> str:
    """Format ``(2, 73)`` as ``"2.73"``."""
    return f"{version[0]}.{version[1]}"


def _requested_version(headers: typing.Mapping[str, str]) -> str | None:
    value = headers.get(VERSION_HEADER.lower())
    if value:
        return value.strip()
    value = headers.get("openstack-api-version")
    if value:
        for part in value.split(","):
            service, _, version = part.strip().partition(" ")
            if service.lower() == SERVICE_TYPE:
                return version.strip()
    return None


def _split_project(below_v2: str) -> tuple[str | None, str]:
    """Split ``/<project_id>/shares`` into the project id and ``/shares``.

    Like Manila's noauth routing, a first segment is a project id only when it
    is hex/dashes and followed by a resource.
    """
    segments = [s for s in below_v2.split("/") if s]
    project = None
    if len(segments) >= 2 and _PROJECT_RE.match(segments[0]):
        project = segments.pop(0)
    return project, "/" + "/".join(segments)


def _strict_bool(name: str, value: str) -> bool:
    text = value.strip().lower()
    if text in ("1", "t", "true", "on", "y", "yes"):
        return True
    if text in ("0", "f", "false", "off", "n", "no"):
        return False
    raise errors.invalid_input(
        f"Unrecognized value '{value}' for {name}, acceptable values are: "
        "'0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"
    )


def _non_negative_int(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise errors.bad_request(f"{name} param must be an integer") from None
    if number < 0:
        raise errors.bad_request(f"{name} param must be positive")
    return number


def _literal_dict(name: str, value: str) -> dict[str, typing.Any]:
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        raise errors.bad_request(f"Invalid value for {name} filter.") from None
    if not isinstance(parsed, dict):
        raise errors.invalid_input(f"Wrong {name} filter provided: {value}.")
    return parsed


_SHARE_USER_FILTERS = frozenset({
    "name", "display_name", "status", "share_server_id", "volume_type_id", "share_type_id",
    "share_type", "snapshot_id", "host", "share_network_id", "is_public", "metadata",
    "extra_specs", "sort_key", "sort_dir", "share_group_id", "share_group_snapshot_id",
    "export_location_id", "export_location_path", "name~", "description~", "description",
    "display_name~", "display_description~", "display_description", "limit", "offset",
    "is_soft_deleted", "with_count", "availability_zone", "source_backup_id",
})
_SNAPSHOT_USER_FILTERS = frozenset({
    "name", "display_name", "status", "share_id", "size", "name~", "description~",
    "description", "display_name~", "display_description~", "display_description",
    "metadata", "limit", "offset", "sort_key", "sort_dir", "with_count",
})
_RESET_STATUSES = frozenset({
    "creating", "available", "deleting", "error", "error_deleting", "migrating",
    "migrating_to", "server_migrating",
})


class ManilaApi:
    """Answer Manila v2 API requests from a :class:`~state.StandInState`.

    :param state: the model.
    :param faults: transport fault injection.
    :param request_log: where every request is recorded.
    """

    def __init__(
        self,
        state: state_mod.StandInState,
        faults: faults_mod.Faults,
        request_log: RequestLog,
    ) -> None:
        self.state = state
        self.faults = faults
        self.request_log = request_log
        self.min_version = parse_version(state.config.min_version)
        self.max_version = parse_version(state.config.max_version)
        self._routes: list[_Route] = []
        self._share_actions: dict[str, _Action] = {}
        self._snapshot_actions: dict[str, _Action] = {}
        self._build_routes()

    # -- entry point ------------------------------------------------------

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
        requested = _requested_version(headers) if versioned else None
        ctx = self.state.resolve_token(headers.get("x-auth-token"), request_id)
        route = path
        version: Version | None = None
        version_error: errors.ApiError | None = None
        if versioned:
            route, version, version_error = self._negotiate(path, requested)

        def finish(status: int, payload: typing.Any, extra: dict[str, str],
                   injected: bool = False) -> Reply:
            self.request_log.record(RecordedRequest(
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
            shown_text: str | None = None
            if version is not None:
                shown_text = format_version(version)
            elif version_error is not None and version_error.status == 406:
                shown_text = requested
            if shown_text is not None:
                reply_headers += [
                    (VERSION_HEADER, shown_text),
                    ("OpenStack-API-Version", f"{SERVICE_TYPE} {shown_text}"),
                    ("Vary", f"{VERSION_HEADER}, OpenStack-API-Version"),
                ]
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

        host = headers.get("host") or default_host
        base_url = f"http://{host}"
        try:
            status, payload = self._dispatch(
                method, path, route, query, body, ctx, version, version_error, base_url
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

    def _negotiate(
        self, path: str, requested: str | None
    ) -> tuple[str, Version | None, errors.ApiError | None]:
        route = _split_project(path[len("/v2"):])[1]
        if requested is None:
            return route, (2, 0), None
        if requested.lower() == "latest":
            return route, self.max_version, None
        try:
            version = parse_version(requested)
        except ValueError:
            return route, None, errors.bad_request(
                f"API Version String {requested} is of invalid format. Must be of format "
                "MajorNum.MinorNum."
            )
        if not self.min_version <= version <= self.max_version:
            return route, None, errors.ApiError(
                406,
                f"Version {requested} is not supported by the API. Minimum is "
                f"{format_version(self.min_version)} and maximum is "
                f"{format_version(self.max_version)}.",
            )
        return route, version, None

    def _dispatch(
        self,
        method: str,
        path: str,
        route: str,
        query: dict[str, str],
        body: bytes,
        ctx: state_mod.Context | None,
        version: Version | None,
        version_error: errors.ApiError | None,
        base_url: str,
    ) -> tuple[int, typing.Any]:
        cfg = self.state.config
        if path in ("/", ""):
            if method != "GET":
                raise errors.not_found()
            return 300, views.versions(base_url, cfg.min_version, cfg.max_version, "all")
        if not (path == "/v2" or path.startswith("/v2/")):
            raise errors.not_found()
        if ctx is None:
            raise errors.ApiError(401)
        if version_error is not None:
            raise version_error
        assert version is not None
        project_in_url, resource_path = _split_project(path[len("/v2"):])
        link_base, bookmark_base = f"{base_url}/v2", base_url
        if project_in_url is not None:
            if project_in_url != ctx.project_id:
                raise errors.bad_request("Malformed request url")
            link_base = f"{base_url}/v2/{project_in_url}"
            bookmark_base = f"{base_url}/{project_in_url}"
        if resource_path == "/":
            if method != "GET":
                raise errors.not_found()
            return 200, views.versions(base_url, cfg.min_version, cfg.max_version, "v2")
        with self.state.lock:
            self.state.settle()
            render = views.Render(self.state, ctx, version, link_base, bookmark_base)
            request = ApiRequest(method, ctx, version, query, body, render)
            return self._route(request, resource_path)

    def _route(self, request: ApiRequest, resource_path: str) -> tuple[int, typing.Any]:
        # Manila's router answers 404 both for unknown paths and for methods
        # or microversions a known path does not serve.
        for candidate in self._routes:
            if candidate.method != request.method:
                continue
            match = candidate.pattern.match(resource_path)
            if match is None:
                continue
            if not candidate.min_version <= request.version <= candidate.max_version:
                continue
            params = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
            return candidate.handler(request, **params)
        raise errors.not_found()

    # -- routing table ------------------------------------------------------

    def _add(
        self,
        method: str,
        pattern: str,
        handler: Handler,
        min_version: str = "2.0",
        max_version: str | None = None,
    ) -> None:
        regex = re.compile(
            "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$"
        )
        self._routes.append(_Route(
            method,
            regex,
            handler,
            parse_version(min_version),
            parse_version(max_version) if max_version else MAX,
        ))

    def _build_routes(self) -> None:
        add = self._add
        add("GET", "/shares", lambda r: self._list_shares(r, detail=False))
        add("GET", "/shares/detail", lambda r: self._list_shares(r, detail=True))
        add("POST", "/shares", self._create_share)
        add("GET", "/shares/{share_id}", self._show_share)
        add("PUT", "/shares/{share_id}", self._update_share)
        add("DELETE", "/shares/{share_id}", self._delete_share)
        add("POST", "/shares/{share_id}/action", self._share_action)
        add("GET", "/shares/{share_id}/export_locations", self._list_export_locations, "2.9")
        add("GET", "/shares/{share_id}/export_locations/{el_id}", self._show_export_location,
            "2.9")

        add("GET", "/snapshots", lambda r: self._list_snapshots(r, detail=False))
        add("GET", "/snapshots/detail", lambda r: self._list_snapshots(r, detail=True))
        add("POST", "/snapshots", self._create_snapshot)
        add("GET", "/snapshots/{snapshot_id}", self._show_snapshot)
        add("PUT", "/snapshots/{snapshot_id}", self._update_snapshot)
        add("DELETE", "/snapshots/{snapshot_id}", self._delete_snapshot)
        add("POST", "/snapshots/{snapshot_id}/action", self._snapshot_action)

        # Share and snapshot metadata: one implementation, as Manila's MetadataController.
        for owner, resource, since in (
            (state_mod.SHARE_METADATA, "/shares/{resource_id}", "2.0"),
            (state_mod.SNAPSHOT_METADATA, "/snapshots/{resource_id}", "2.73"),
        ):
            self._add_metadata_routes(owner, resource + "/metadata", since)

        add("GET", "/share-access-rules", self._list_access_rules, "2.45")
        add("GET", "/share-access-rules/{access_id}", self._show_access_rule, "2.45")
        add("PUT", "/share-access-rules/{access_id}/metadata", self._set_rule_metadata, "2.45")
        add("DELETE", "/share-access-rules/{access_id}/metadata/{key}",
            self._delete_rule_metadata, "2.45")

        add("GET", "/types", self._list_types)
        add("POST", "/types", self._create_type)
        add("GET", "/types/default", self._default_type)
        add("GET", "/types/{type_id}", self._show_type)
        add("GET", "/types/{type_id}/extra_specs", self._type_extra_specs)
        add("GET", "/availability-zones", self._availability_zones, "2.7")
        add("GET", "/os-availability-zone", self._availability_zones, "2.0", "2.6")

        def action(table: dict[str, _Action], name: str, handler: Handler,
                   low: str = "2.0", high: str | None = None) -> None:
            table[name] = _Action(
                handler, parse_version(low), parse_version(high) if high else MAX
            )

        shares, snaps = self._share_actions, self._snapshot_actions
        action(shares, "os-allow_access", self._allow_access, "2.0", "2.6")
        action(shares, "allow_access", self._allow_access, "2.7")
        action(shares, "os-deny_access", self._deny_access, "2.0", "2.6")
        action(shares, "deny_access", self._deny_access, "2.7")
        action(shares, "os-access_list", self._legacy_access_list, "2.0", "2.6")
        action(shares, "access_list", self._legacy_access_list, "2.7", "2.44")
        action(shares, "os-force_delete", self._force_delete_share, "2.0", "2.6")
        action(shares, "force_delete", self._force_delete_share, "2.7")
        action(shares, "os-reset_status", self._reset_share_status, "2.0", "2.6")
        action(shares, "reset_status", self._reset_share_status, "2.7")
        action(shares, "revert", self._revert, "2.27")
        action(snaps, "os-force_delete", self._force_delete_snapshot, "2.0", "2.6")
        action(snaps, "force_delete", self._force_delete_snapshot, "2.7")
        action(snaps, "os-reset_status", self._reset_snapshot_status, "2.0", "2.6")
        action(snaps, "reset_status", self._reset_snapshot_status, "2.7")

    @staticmethod
    def _pick_action(
        request: ApiRequest, table: dict[str, _Action]
    ) -> tuple[_Action, str, typing.Any]:
        body = request.json()
        if not isinstance(body, dict) or len(body) != 1:
            raise errors.bad_request("Malformed request body")
        name, payload = next(iter(body.items()))
        found = table.get(name)
        if found is None:
            raise errors.bad_request(f"There is no such action: {name}")
        if not found.min_version <= request.version <= found.max_version:
            raise errors.not_found()
        return found, name, payload

    # -- shares ---------------------------------------------------------------

    def _list_shares(self, request: ApiRequest, detail: bool) -> tuple[int, typing.Any]:
        opts = dict(request.query)
        if not request.ctx.is_admin:
            opts = {k: v for k, v in opts.items() if k in _SHARE_USER_FILTERS}
        query = state_mod.ShareQuery()
        if "limit" in opts:
            query.limit = _non_negative_int("limit", opts.pop("limit"))
        cap = self.state.config.max_limit
        if cap is not None and (query.limit is None or query.limit > cap):
            query.limit = cap
        if "offset" in opts:
            query.offset = _non_negative_int("offset", opts.pop("offset"))
        query.sort_key = opts.pop("sort_key", "created_at")
        query.sort_dir = opts.pop("sort_dir", "desc")
        with_count = False
        if "with_count" in opts:
            raw = opts.pop("with_count")
            if request.at_least(2, 42):
                with_count = _strict_bool("with_count", raw)
        if "all_tenants" in opts:
            query.all_tenants = _strict_bool("all_tenants", opts.pop("all_tenants"))
        query.is_public = _strict_bool("is_public", opts.pop("is_public", "false"))
        query.project_id = opts.pop("project_id", None)
        query.name = opts.pop("name", opts.pop("display_name", None))
        query.description = opts.pop("description", opts.pop("display_description", None))
        if request.at_least(2, 36):
            query.name_like = opts.pop("name~", opts.pop("display_name~", None))
            query.description_like = opts.pop(
                "description~", opts.pop("display_description~", None)
            )
        query.status = opts.pop("status", None)
        query.snapshot_id = opts.pop("snapshot_id", None)
        query.share_network_id = opts.pop("share_network_id", None)
        query.host = opts.pop("host", None)
        if request.at_least(2, 97):
            query.availability_zone = opts.pop("availability_zone", None)
        type_ref = opts.pop("share_type_id", opts.pop("share_type", None))
        if type_ref is not None:
            found = self.state.find_share_type(type_ref)
            query.share_type_id = found.id if found is not None else type_ref
        if "metadata" in opts:
            query.metadata = _literal_dict("metadata", opts.pop("metadata"))
        query.export_location_id = opts.pop("export_location_id", None)
        total, page = self.state.list_shares(request.ctx, query)
        render = request.render
        view = views.share_detail if detail else views.share_summary
        payload: dict[str, typing.Any] = {"shares": [view(render, s) for s in page]}
        if with_count and total:
            payload["count"] = total
        return 200, payload

    def _create_share(self, request: ApiRequest) -> tuple[int, typing.Any]:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("share"), dict):
            raise errors.unprocessable()
        data = body["share"]
        if "share_type" in data and "volume_type" in data:
            raise errors.bad_request("Cannot specify both share_type and volume_type")
        name = data.get("name") or data.get("display_name")
        description = data.get("description") or data.get("display_description")
        for field, value in (("name", name), ("description", description)):
            if value is not None and len(str(value)) > 255:
                raise errors.bad_request(f"{field} has more than 255 characters.")
        if "size" not in data or "share_proto" not in data:
            raise errors.invalid_input("'size' and 'share_proto' are required")
        is_public = data.get("is_public", False)
        if not isinstance(is_public, bool):
            is_public = _strict_bool("is_public", str(is_public))
        share = self.state.create_share(
            request.ctx,
            share_proto=data.get("share_proto"),
            size=data.get("size"),
            name=name,
            description=description,
            snapshot_id=data.get("snapshot_id"),
            share_network_id=data.get("share_network_id"),
            share_type=data.get("share_type", data.get("volume_type")),
            is_public=is_public,
            availability_zone=data.get("availability_zone"),
            metadata=data.get("metadata"),
            check_create_from_snapshot_support=request.at_least(2, 24),
        )
        return 200, {"share": views.share_detail(request.render, share)}

    def _show_share(self, request: ApiRequest, share_id: str) -> tuple[int, typing.Any]:
        share = self.state.visible_share(request.ctx, share_id)
        return 200, {"share": views.share_detail(request.render, share)}

    def _update_share(self, request: ApiRequest, share_id: str) -> tuple[int, typing.Any]:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("share"), dict):
            raise errors.unprocessable()
        data = body["share"]
        fields: dict[str, typing.Any] = {}
        for key, alias in (("name", "display_name"), ("description", "display_description")):
            if alias in data:
                fields[key] = data[alias]
            elif key in data:
                fields[key] = data[key]
        if "is_public" in data:
            fields["is_public"] = data["is_public"]
        share = self.state.update_share(request.ctx, share_id, fields)
        return 200, {"share": views.share_detail(request.render, share)}

    def _delete_share(self, request: ApiRequest, share_id: str) -> tuple[int, typing.Any]:
        self.state.delete_share(request.ctx, share_id)
        return 202, None

    def _share_action(self, request: ApiRequest, share_id: str) -> tuple[int, typing.Any]:
        found, name, payload = self._pick_action(request, self._share_actions)
        return found.handler(request, share_id, name, payload)

    def _allow_access(
        self, request: ApiRequest, share_id: str, name: str, payload: typing.Any
    ) -> tuple[int, typing.Any]:
        if not isinstance(payload, dict):
            raise errors.bad_request("Malformed request body")
        for required in ("access_type", "access_to"):
            if required not in payload:
                raise errors.bad_request(f"Required parameter {required} not found.")
        metadata = payload.get("metadata") if request.at_least(2, 45) else None
        rule = self.state.allow_access(
            request.ctx,
            share_id,
            payload.get("access_type"),
            payload.get("access_to"),
            payload.get("access_level"),
            metadata,
            enable_ceph=request.at_least(2, 13),
            enable_ipv6=request.at_least(2, 38),
            allow_on_error_state=request.at_least(2, 74),
        )
        return 200, {"access": views.access_detail(request.render, rule)}

    def _deny_access(
        self, request: ApiRequest, share_id: str, name: str, payload: typing.Any
    ) -> tuple[int, typing.Any]:
        if not isinstance(payload, dict) or "access_id" not in payload:
            raise errors.bad_request("Malformed request body")
        self.state.deny_access(
            request.ctx, share_id, payload["access_id"],
            allow_on_error_state=request.at_least(2, 74),
        )
        return 202, None

    def _legacy_access_list(
        self, request: ApiRequest, share_id: str, name: str, payload: typing.Any
    ) -> tuple[int, typing.Any]:
        share = self.state.visible_share(request.ctx, share_id)
        rules = self.state.rules_of(share.id)
        return 200, {"access_list": [views.access_summary(request.render, r) for r in rules]}

    def _force_delete_share(
        self, request: ApiRequest, share_id: str, name: str, payload: typing.Any
    ) -> tuple[int, typing.Any]:
        self.state.delete_share(request.ctx, share_id, force=True)
        return 202, None

    def _reset_share_status(
        self, request: ApiRequest, share_id: str, name: str, payload: typing.Any
    ) -> tuple[int, typing.Any]:
        status = self._reset_target(request, payload, "share")
        share = self.state.visible_share(request.ctx, share_id)
        self.state.set_share_status(share.id, status)
        return 202, None

    @staticmethod
    def _reset_target(request: ApiRequest, payload: typing.Any, kind: str) -> str:
        if not request.ctx.is_admin:
            raise errors.forbidden(errors.ACCESS_DENIED)
        if not isinstance(payload, dict) or "status" not in payload:
            raise errors.bad_request("Must specify 'status'")
        status = payload["status"]
        if status not in _RESET_STATUSES:
            raise errors.bad_request(
                "Invalid state. Valid states: " + ", ".join(sorted(_RESET_STATUSES)) + "."
            )
        return str(status)

    def _revert(
        self, request: ApiRequest, share_id: str, name: str, payload: typing.Any
    ) -> tuple[int, typing.Any]:
        if not isinstance(payload, dict):
            raise errors.bad_request("Malformed request body")
        self.state.revert(request.ctx, share_id, payload.get("snapshot_id"))
        return 202, None

    def _list_export_locations(
        self, request: ApiRequest, share_id: str
    ) -> tuple[int, typing.Any]:
        share = self.state.visible_share(request.ctx, share_id)
        locations = []
        if share.export_location_id is not None:
            locations.append(views.export_location(request.render, share))
        return 200, {"export_locations": locations}

    def _show_export_location(
        self, request: ApiRequest, share_id: str, el_id: str
    ) -> tuple[int, typing.Any]:
        share = self.state.visible_share(request.ctx, share_id)
        if share.export_location_id != el_id:
            raise errors.not_found(f"Export location {el_id} could not be found.")
        return 200, {"export_location": views.export_location(request.render, share, True)}

    # -- snapshots --------------------------------------------------------------

    def _list_snapshots(self, request: ApiRequest, detail: bool) -> tuple[int, typing.Any]:
        opts = dict(request.query)
        if not request.ctx.is_admin:
            opts = {k: v for k, v in opts.items() if k in _SNAPSHOT_USER_FILTERS}
        if not request.at_least(2, 36):
            for key in ("name~", "description~", "description"):
                opts.pop(key, None)
        query = state_mod.SnapshotQuery()
        if "limit" in opts:
            query.limit = _non_negative_int("limit", opts.pop("limit"))
        if "offset" in opts:
            query.offset = _non_negative_int("offset", opts.pop("offset"))
        with_count = False
        if "with_count" in opts:
            raw = opts.pop("with_count")
            if request.at_least(2, 79):
                with_count = _strict_bool("with_count", raw)
        for key, value in opts.items():
            if value == "" and key != "metadata":
                raise errors.invalid_input(f"Wrong '{key}' filter provided: ''")
        query.sort_key = opts.pop("sort_key", "created_at")
        query.sort_dir = opts.pop("sort_dir", "desc")
        query.all_tenants = bool(opts.pop("all_tenants", None))
        query.project_id = opts.pop("project_id", None)
        query.share_id = opts.pop("share_id", None)
        query.name = opts.pop("name", opts.pop("display_name", None))
        query.description = opts.pop("description", opts.pop("display_description", None))
        query.name_like = opts.pop("name~", opts.pop("display_name~", None))
        query.description_like = opts.pop(
            "description~", opts.pop("display_description~", None)
        )
        query.status = opts.pop("status", None)
        if "size" in opts:
            query.size = _non_negative_int("size", opts.pop("size"))
        if "metadata" in opts:
            raw_metadata = opts.pop("metadata")
            if request.at_least(2, 73):
                query.metadata = _literal_dict("metadata", raw_metadata)
        total, page = self.state.list_snapshots(request.ctx, query)
        view = views.snapshot_detail if detail else views.snapshot_summary
        payload: dict[str, typing.Any] = {
            "snapshots": [view(request.render, s) for s in page]
        }
        if with_count:
            payload["count"] = total
        return 200, payload

    def _create_snapshot(self, request: ApiRequest) -> tuple[int, typing.Any]:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("snapshot"), dict):
            raise errors.unprocessable()
        data = body["snapshot"]
        share_id = data.get("share_id")
        if not isinstance(share_id, str) or not share_id:
            raise errors.unprocessable("Required parameter share_id not found.")
        metadata = data.get("metadata") if request.at_least(2, 73) else None
        if metadata is not None and not isinstance(metadata, dict):
            raise errors.bad_request("Malformed request body")
        snapshot = self.state.create_snapshot(
            request.ctx,
            share_id,
            name=data.get("name", data.get("display_name")),
            description=data.get("description", data.get("display_description")),
            metadata=metadata,
        )
        return 202, {"snapshot": views.snapshot_detail(request.render, snapshot)}

    def _show_snapshot(self, request: ApiRequest, snapshot_id: str) -> tuple[int, typing.Any]:
        snapshot = self.state.visible_snapshot(request.ctx, snapshot_id)
        return 200, {"snapshot": views.snapshot_detail(request.render, snapshot)}

    def _update_snapshot(self, request: ApiRequest, snapshot_id: str) -> tuple[int, typing.Any]:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("snapshot"), dict):
            raise errors.unprocessable()
        data = body["snapshot"]
        fields: dict[str, typing.Any] = {}
        for key, alias in (("name", "display_name"), ("description", "display_description")):
            if alias in data:
                fields[key] = data[alias]
            elif key in data:
                fields[key] = data[key]
        snapshot = self.state.update_snapshot(request.ctx, snapshot_id, fields)
        return 200, {"snapshot": views.snapshot_detail(request.render, snapshot)}

    def _delete_snapshot(self, request: ApiRequest, snapshot_id: str) -> tuple[int, typing.Any]:
        self.state.delete_snapshot(request.ctx, snapshot_id)
        return 202, None

    def _snapshot_action(self, request: ApiRequest, snapshot_id: str) -> tuple[int, typing.Any]:
        found, name, payload = self._pick_action(request, self._snapshot_actions)
        return found.handler(request, snapshot_id, name, payload)

    def _force_delete_snapshot(
        self, request: ApiRequest, snapshot_id: str, name: str, payload: typing.Any
    ) -> tuple[int, typing.Any]:
        self.state.delete_snapshot(request.ctx, snapshot_id, force=True)
        return 202, None

    def _reset_snapshot_status(
        self, request: ApiRequest, snapshot_id: str, name: str, payload: typing.Any
    ) -> tuple[int, typing.Any]:
        status = self._reset_target(request, payload, "share_snapshot")
        snapshot = self.state.visible_snapshot(request.ctx, snapshot_id)
        self.state.set_snapshot_status(snapshot.id, status)
        return 202, None

    # -- metadata of shares and snapshots ------------------------------------------

    def _add_metadata_routes(
        self, owner: state_mod.MetadataOwner, path: str, since: str
    ) -> None:
        state = self.state

        def show(request: ApiRequest, resource_id: str) -> tuple[int, typing.Any]:
            return 200, {"metadata": state.metadata(request.ctx, owner, resource_id)}

        def set_all(
            request: ApiRequest, resource_id: str, replace: bool
        ) -> tuple[int, typing.Any]:
            body = request.json()
            if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
                raise errors.bad_request("Malformed request body")
            result = state.set_metadata(request.ctx, owner, resource_id, body["metadata"],
                                        replace=replace)
            return 200, {"metadata": result}

        def show_item(request: ApiRequest, resource_id: str, key: str) -> tuple[int, typing.Any]:
            metadata = state.metadata(request.ctx, owner, resource_id)
            if key not in metadata:
                raise errors.not_found("Metadata item was not found.")
            return 200, {"meta": {key: metadata[key]}}

        def set_item(request: ApiRequest, resource_id: str, key: str) -> tuple[int, typing.Any]:
            body = request.json()
            item = body.get("metadata", body.get("meta")) if isinstance(body, dict) else None
            if not isinstance(item, dict):
                raise errors.bad_request("Malformed request body")
            result = state.update_metadata_item(request.ctx, owner, resource_id, key, item)
            return 200, {"metadata": result}

        def delete_item(
            request: ApiRequest, resource_id: str, key: str
        ) -> tuple[int, typing.Any]:
            state.delete_metadata(request.ctx, owner, resource_id, key)
            return 200, None

        add = self._add
        add("GET", path, show, since)
        add("POST", path, lambda r, resource_id: set_all(r, resource_id, False), since)
        add("PUT", path, lambda r, resource_id: set_all(r, resource_id, True), since)
        add("GET", path + "/{key}", show_item, since)
        add("PUT", path + "/{key}", set_item, since)
        add("DELETE", path + "/{key}", delete_item, since)

    # -- access rules (>= 2.45) ----------------------------------------------

    def _list_access_rules(self, request: ApiRequest) -> tuple[int, typing.Any]:
        opts = dict(request.query)
        share_id = opts.pop("share_id", None)
        if share_id is None:
            raise errors.bad_request("The field 'share_id' has to be specified.")
        wanted: dict[str, typing.Any] = {}
        if "metadata" in opts:
            wanted = _literal_dict("metadata", opts.pop("metadata"))
        try:
            share = self.state.visible_share(request.ctx, share_id)
        except errors.ApiError:
            raise errors.bad_request(f"Share {share_id} not found.") from None
        rules = [
            r for r in self.state.rules_of(share.id)
            if all(r.metadata.get(k) == str(v) for k, v in wanted.items())
        ]
        return 200, {"access_list": [views.access_summary(request.render, r) for r in rules]}

    def _show_access_rule(self, request: ApiRequest, access_id: str) -> tuple[int, typing.Any]:
        rule = self.state.visible_rule(request.ctx, access_id)
        return 200, {"access": views.access_detail(request.render, rule)}

    def _set_rule_metadata(self, request: ApiRequest, access_id: str) -> tuple[int, typing.Any]:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
            raise errors.bad_request("Malformed request body")
        result = self.state.set_rule_metadata(request.ctx, access_id, body["metadata"])
        return 200, {"metadata": result}

    def _delete_rule_metadata(
        self, request: ApiRequest, access_id: str, key: str
    ) -> tuple[int, typing.Any]:
        self.state.delete_rule_metadata(request.ctx, access_id, key)
        return 200, None

    # -- share types and zones ---------------------------------------------

    def _list_types(self, request: ApiRequest) -> tuple[int, typing.Any]:
        listed = [views.share_type(request.render, t) for t in self.state.share_types.values()]
        return 200, {"share_types": listed, "volume_types": listed}

    def _create_type(self, request: ApiRequest) -> tuple[int, typing.Any]:
        # Creating share types is an administrator's business (Manila's policy: 403).
        if not request.ctx.is_admin:
            raise errors.forbidden(errors.ACCESS_DENIED)
        body = request.json()
        spec = body.get("share_type", body.get("volume_type")) if isinstance(body, dict) else None
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"]:
            raise errors.bad_request("Malformed request body")
        extra_specs = spec.get("extra_specs") or {}
        if not isinstance(extra_specs, dict):
            raise errors.bad_request("Malformed request body")
        if "driver_handles_share_servers" not in extra_specs:
            raise errors.bad_request(
                "Invalid extra_spec: Required extra specs missing: "
                "driver_handles_share_servers.")
        is_public = spec.get("share_type_access:is_public",
                             spec.get("os-share-type-access:is_public", True))
        try:
            created = self.state.create_share_type(
                spec["name"], extra_specs,
                is_public=(is_public if isinstance(is_public, bool)
                           else _strict_bool("is_public", str(is_public))),
                description=spec.get("description"))
        except ValueError:
            raise errors.conflict(f"Share Type {spec['name']} already exists.") from None
        shown = views.share_type(request.render, created)
        return 200, {"share_type": shown, "volume_type": shown}

    def _default_type(self, request: ApiRequest) -> tuple[int, typing.Any]:
        type_id = self.state.default_share_type_id
        if type_id is None:
            raise errors.not_found("Default share type not found.")
        shown = views.share_type(request.render, self.state.share_types[type_id])
        return 200, {"share_type": shown, "volume_type": shown}

    def _show_type(self, request: ApiRequest, type_id: str) -> tuple[int, typing.Any]:
        found = self.state.share_types.get(type_id)
        if found is None:
            raise errors.not_found(f"Share type {type_id} could not be found.")
        shown = views.share_type(request.render, found)
        return 200, {"share_type": shown, "volume_type": shown}

    def _type_extra_specs(self, request: ApiRequest, type_id: str) -> tuple[int, typing.Any]:
        found = self.state.share_types.get(type_id)
        if found is None:
            raise errors.not_found(f"Share type {type_id} could not be found.")
        return 200, {"extra_specs": dict(found.extra_specs)}

    def _availability_zones(self, request: ApiRequest) -> tuple[int, typing.Any]:
        zones = [
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"manila-standin-az:{name}")),
                "name": name,
                "created_at": "2015-08-27T11:33:21.000000",
                "updated_at": None,
            }
            for name in self.state.config.availability_zones
        ]
        return 200, {"availability_zones": zones}
