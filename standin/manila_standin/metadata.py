"""Metadata of shares and snapshots: one implementation for both.

Manila serves ``/shares/{id}/metadata`` and ``/snapshots/{id}/metadata`` (2.73+)
with one controller mixin, ``manila.api.v2.metadata.MetadataController``,
parameterised by the resource's name; the share and snapshot controllers only
wrap its methods with their own policy names (``share:update_share_metadata``,
``share_snapshot:update_metadata``...). So does the stand-in: an
:class:`Owner` names the resource, and every operation below is the same for both:

* the record is looked up as the caller may see it, else 404
  ``"<Resource> not found."`` (``Share not found.``, ``Share_snapshot not found.``);
  snapshots are their project's only, shares may be public;
* a change is authorised on the record's project, else 403 (a member may read
  another project's public share's metadata, not change it);
* a change is a mutation of the record's share for the conflict detector
  (``share_metadata_set``, ``snapshot_metadata_set``...), as every other change
  of a share, its snapshots or its rules is.

One order differs from Manila's, as it always did for shares: the record is
looked up before the body is checked (a change has to know its share to be
recorded, refused or not), so a malformed body for a record the caller cannot
see answers 404 where Manila answers 400.

Access rules have their own, different metadata API (:mod:`manila_standin.access_rules`).
"""

from __future__ import annotations

import dataclasses
import typing

from manila_standin import errors
from manila_standin import identity
from manila_standin import params

if typing.TYPE_CHECKING:
    from manila_standin import routing
    from manila_standin import state as state_mod


class Record(typing.Protocol):
    """A share or a snapshot, as far as metadata is concerned."""

    id: str
    project_id: str
    metadata: dict[str, str]


@dataclasses.dataclass(frozen=True)
class Owner:
    """A kind of resource that carries metadata.

    :param resource_name: Manila's name of the resource (``share``, ``share_snapshot``).
    :param operation: the conflict detector's name for it (``share``, ``snapshot``).
    :param collection: the model's collection of its records (``shares``...).
    :param share_of: the record's attribute naming the share a change mutates.
    :param update_policy: the policy a change needs.
    :param delete_policy: the policy a deletion needs.
    """

    resource_name: str
    operation: str
    collection: str
    share_of: str
    update_policy: str
    delete_policy: str

    @property
    def not_found(self) -> str:
        """Manila's 404 text for a record the caller cannot see."""
        return f"{self.resource_name.capitalize()} not found."


SHARE = Owner("share", "share", "shares", "id",
              "share:update_share_metadata", "share:delete_share_metadata")
SNAPSHOT = Owner("share_snapshot", "snapshot", "snapshots", "share_id",
                 "share_snapshot:update_metadata", "share_snapshot:delete_metadata")
ITEM_NOT_FOUND = "Metadata item was not found."


class Metadata:
    """The metadata operations of one kind of record.

    :param state: the model.
    :param owner: which kind of record.
    """

    def __init__(self, state: state_mod.StandInState, owner: Owner) -> None:
        self._state = state
        self._owner = owner

    def _find(self, ctx: identity.Context, resource_id: str) -> Record:
        records = getattr(self._state, self._owner.collection)
        return records.visible(ctx, resource_id, message=self._owner.not_found)

    def show(self, ctx: identity.Context, resource_id: str) -> dict[str, str]:
        """All metadata of a record."""
        with self._state.lock:
            self._state.settle()
            return dict(self._find(ctx, resource_id).metadata)

    def show_item(self, ctx: identity.Context, resource_id: str, key: str) -> dict[str, str]:
        """One item, ``{key: value}``.

        :raises errors.ApiError: 404 for an unknown key.
        """
        metadata = self.show(ctx, resource_id)
        if key not in metadata:
            raise errors.not_found(ITEM_NOT_FOUND)
        return {key: metadata[key]}

    def _change(
        self,
        ctx: identity.Context,
        resource_id: str,
        action: str,
        policy: str,
        change: typing.Callable[[Record, typing.Callable[[], None]], dict[str, str] | None],
    ) -> dict[str, str] | None:
        """Look the record up and run ``change`` as one mutation of its share.

        ``change(record, authorize)`` validates the request (400), then calls
        ``authorize()`` (the policy check, 403), then applies it: Manila's order.
        """
        with self._state.lock:
            self._state.settle()
            record = self._find(ctx, resource_id)
            operation = f"{self._owner.operation}_metadata_{action}"
            share_id = getattr(record, self._owner.share_of)
            with self._state.mutation(ctx, operation, share_id) as scope:
                scope.status = 200
                return change(record, lambda: identity.authorize(ctx, record.project_id, policy))

    def set_all(
        self, ctx: identity.Context, resource_id: str, metadata: typing.Any, replace: bool
    ) -> dict[str, str]:
        """Merge (POST) or replace (PUT) a record's metadata; returns the result."""

        def change(record: Record, authorize: typing.Callable[[], None]) -> dict[str, str]:
            params.check_metadata(metadata)
            authorize()
            if replace:
                record.metadata = {}
            record.metadata.update(params.strings(metadata))
            return dict(record.metadata)

        result = self._change(ctx, resource_id, "replace" if replace else "set",
                              self._owner.update_policy, change)
        assert result is not None
        return result

    def set_item(
        self, ctx: identity.Context, resource_id: str, key: str, item: typing.Any
    ) -> dict[str, str]:
        """``PUT .../metadata/{key}`` with ``{key: value}``: set one item."""

        def change(record: Record, authorize: typing.Callable[[], None]) -> dict[str, str]:
            params.check_metadata(item)
            if key not in item:
                raise errors.bad_request("Request body and URI mismatch")
            if len(item) > 1:
                raise errors.bad_request("Request body contains too many items")
            authorize()
            record.metadata[key] = str(item[key])
            return {key: record.metadata[key]}

        result = self._change(ctx, resource_id, "set", self._owner.update_policy, change)
        assert result is not None
        return result

    def delete_item(self, ctx: identity.Context, resource_id: str, key: str) -> None:
        """``DELETE .../metadata/{key}``.

        :raises errors.ApiError: 404 for an unknown key.
        """

        def change(record: Record, authorize: typing.Callable[[], None]) -> None:
            authorize()
            if key not in record.metadata:
                raise errors.not_found(ITEM_NOT_FOUND)
            del record.metadata[key]

        self._change(ctx, resource_id, "delete", self._owner.delete_policy, change)


# -- HTTP ----------------------------------------------------------------------------


def register(routes: routing.Routes) -> None:
    """Serve the metadata of shares (every version) and snapshots (2.73 and later)."""
    for owner, resource, since in (
        (SHARE, "/shares/{resource_id}", "2.0"),
        (SNAPSHOT, "/snapshots/{resource_id}", "2.73"),
    ):
        _register(routes, owner, resource + "/metadata", since)


def _register(routes: routing.Routes, owner: Owner, path: str, since: str) -> None:
    def of(request: routing.ApiRequest) -> Metadata:
        return Metadata(request.state, owner)

    def show(request: routing.ApiRequest, resource_id: str) -> routing.Answer:
        return 200, {"metadata": of(request).show(request.ctx, resource_id)}

    def set_all(request: routing.ApiRequest, resource_id: str, replace: bool) -> routing.Answer:
        metadata = params.metadata_body(request.json())
        return 200, {"metadata": of(request).set_all(request.ctx, resource_id, metadata, replace)}

    def show_item(request: routing.ApiRequest, resource_id: str, key: str) -> routing.Answer:
        return 200, {"meta": of(request).show_item(request.ctx, resource_id, key)}

    def set_item(request: routing.ApiRequest, resource_id: str, key: str) -> routing.Answer:
        body = request.json()
        item = body.get("metadata", body.get("meta")) if isinstance(body, dict) else None
        if not isinstance(item, dict):
            raise errors.bad_request("Malformed request body")
        return 200, {"metadata": of(request).set_item(request.ctx, resource_id, key, item)}

    def delete_item(request: routing.ApiRequest, resource_id: str, key: str) -> routing.Answer:
        of(request).delete_item(request.ctx, resource_id, key)
        return 200, None

    routes.add("GET", path, show, since)
    routes.add("POST", path, lambda r, resource_id: set_all(r, resource_id, False), since)
    routes.add("PUT", path, lambda r, resource_id: set_all(r, resource_id, True), since)
    routes.add("GET", path + "/{key}", show_item, since)
    routes.add("PUT", path + "/{key}", set_item, since)
    routes.add("DELETE", path + "/{key}", delete_item, since)
