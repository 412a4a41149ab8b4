"""What shares and snapshots serve alike: one record's GET and DELETE, and the admin actions.

``GET`` answers the record as its caller may see it (404 otherwise) and
``DELETE`` asks its collection to delete it. The admin actions
``force_delete`` and ``reset_status`` come, as in Manila, from one mixin for
every resource (``wsgi.AdminActionsMixin``); both are admin-only (a member gets
Manila's bare 403).
"""

from __future__ import annotations

import typing

from manila_standin import identity
from manila_standin import params
from manila_standin import render as render_mod
from manila_standin import routing

if typing.TYPE_CHECKING:
    from manila_standin import state as state_mod


class Records(typing.Protocol):
    """A collection served this way (shares, snapshots)."""

    def visible(self, ctx: identity.Context, resource_id: str) -> typing.Any:
        """The record, if the caller may see it (404 otherwise)."""
        ...

    def delete(self, ctx: identity.Context, resource_id: str, force: bool = False) -> None:
        """Delete the record."""
        ...

    def set_status(self, resource_id: str, status: str) -> None:
        """Force the record's status."""
        ...


def register(
    routes: routing.Routes,
    resource: str,
    collection: typing.Callable[[state_mod.StandInState], Records],
    key: str,
    view: typing.Callable[[render_mod.Render, typing.Any], dict[str, typing.Any]],
) -> None:
    """Serve ``GET`` and ``DELETE`` on ``resource`` and its admin actions.

    :param resource: the record's pattern, e.g. ``/shares/{share_id}``.
    :param collection: the collection of its records in the model.
    :param key: the answer's key (``share``).
    :param view: the record's detailed view.
    """

    def show(request: routing.ApiRequest, **ids: str) -> routing.Answer:
        (resource_id,) = ids.values()
        record = collection(request.state).visible(request.ctx, resource_id)
        return 200, {key: view(request.render, record)}

    def delete(request: routing.ApiRequest, **ids: str) -> routing.Answer:
        (resource_id,) = ids.values()
        collection(request.state).delete(request.ctx, resource_id)
        return 202, None

    def force_delete(
        request: routing.ApiRequest, resource_id: str, name: str, payload: typing.Any
    ) -> routing.Answer:
        collection(request.state).delete(request.ctx, resource_id, force=True)
        return 202, None

    def reset_status(
        request: routing.ApiRequest, resource_id: str, name: str, payload: typing.Any
    ) -> routing.Answer:
        identity.require_admin(request.ctx)
        status = params.reset_status(payload)
        records = collection(request.state)
        records.set_status(records.visible(request.ctx, resource_id).id, status)
        return 202, None

    routes.add("GET", resource, show)
    routes.add("DELETE", resource, delete)
    routes.action(resource, "os-force_delete", force_delete, "2.0", "2.6")
    routes.action(resource, "force_delete", force_delete, "2.7")
    routes.action(resource, "os-reset_status", reset_status, "2.0", "2.6")
    routes.action(resource, "reset_status", reset_status, "2.7")
