"""The route table: which handler answers a method, path and microversion.

Each resource module declares its routes on a :class:`Routes` table
(``register(routes)``): ``GET /shares/{share_id}`` with the microversions that
serve it, and the actions of ``POST /shares/{share_id}/action``. Like Manila's
router, the table answers 404 for an unknown path and for a method or
microversion a known path does not serve. A handler takes the
:class:`ApiRequest` and the path's parameters and returns (status, payload).
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
import urllib.parse

from manila_standin import errors
from manila_standin import identity
from manila_standin import render as render_mod
from manila_standin import versions

if typing.TYPE_CHECKING:
    from manila_standin import state as state_mod

Answer = tuple[int, typing.Any]
Handler = typing.Callable[..., Answer]
#: ``handler(request, resource_id, action_name, payload)``
ActionHandler = typing.Callable[["ApiRequest", str, str, typing.Any], Answer]
_PROJECT_RE = re.compile(r"^[0-9a-fA-F-]+$")


@dataclasses.dataclass
class ApiRequest:
    """One routed request as handlers see it."""

    method: str
    ctx: identity.Context
    version: versions.Version
    query: dict[str, str]
    raw_body: bytes
    render: render_mod.Render

    @property
    def state(self) -> state_mod.StandInState:
        """The model the request acts on."""
        return self.render.state

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


@dataclasses.dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    min_version: versions.Version
    max_version: versions.Version


@dataclasses.dataclass(frozen=True)
class _Action:
    handler: ActionHandler
    min_version: versions.Version
    max_version: versions.Version


def split_project(below_v2: str) -> tuple[str | None, str]:
    """Split ``/<project_id>/shares`` into the project id and ``/shares``.

    Like Manila's noauth routing, a first segment is a project id only when it
    is hex/dashes and followed by a resource.
    """
    segments = [s for s in below_v2.split("/") if s]
    project = None
    if len(segments) >= 2 and _PROJECT_RE.match(segments[0]):
        project = segments.pop(0)
    return project, "/" + "/".join(segments)


def _bounds(low: str, high: str | None) -> tuple[versions.Version, versions.Version]:
    return versions.parse_version(low), versions.parse_version(high) if high else versions.MAX


class Routes:
    """The stand-in's routes, in the order they were added."""

    def __init__(self) -> None:
        self._routes: list[_Route] = []
        self._actions: dict[str, dict[str, _Action]] = {}

    def add(
        self,
        method: str,
        pattern: str,
        handler: Handler,
        min_version: str = "2.0",
        max_version: str | None = None,
    ) -> None:
        """Serve ``method`` on ``pattern`` (``/shares/{share_id}``) in a version range.

        A more specific pattern must come before a general one it overlaps
        (``/shares/detail`` before ``/shares/{share_id}``).
        """
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")
        self._routes.append(_Route(method, regex, handler, *_bounds(min_version, max_version)))

    def action(
        self,
        resource: str,
        name: str,
        handler: ActionHandler,
        min_version: str = "2.0",
        max_version: str | None = None,
    ) -> None:
        """Serve the action ``name`` of ``POST {resource}/action`` in a version range.

        :param resource: the resource's pattern, e.g. ``/shares/{share_id}``.
        """
        table = self._actions.get(resource)
        if table is None:
            table = self._actions[resource] = {}
            self.add("POST", resource + "/action",
                     lambda request, **ids: self._act(request, table, *ids.values()))
        table[name] = _Action(handler, *_bounds(min_version, max_version))

    @staticmethod
    def _act(request: ApiRequest, table: dict[str, _Action], resource_id: str) -> Answer:
        body = request.json()
        if not isinstance(body, dict) or len(body) != 1:
            raise errors.bad_request("Malformed request body")
        name, payload = next(iter(body.items()))
        found = table.get(name)
        if found is None:
            raise errors.bad_request(f"There is no such action: {name}")
        if not found.min_version <= request.version <= found.max_version:
            raise errors.not_found()
        return found.handler(request, resource_id, name, payload)

    def route(self, request: ApiRequest, resource_path: str) -> Answer:
        """Answer ``request`` for ``resource_path`` (below ``/v2``, no project id).

        :raises errors.ApiError: 404 when no route serves it; whatever the handler raises.
        """
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
