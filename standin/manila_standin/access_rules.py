"""Share access rules: the model, its rules and its transitions.

A rule is added ``queued_to_apply`` and becomes ``active`` after
``Delays.access_apply`` (showing ``applying`` in the second half of the delay);
a denied rule goes ``queued_to_deny`` (``denying``) and is gone after the same
delay. The share's ``access_rules_status`` is ``syncing`` while any rule
changes and for ``Delays.access_status_lag`` after. Rule metadata has its own
small API (Manila's ``ShareAccessMetadataController``, not the share/snapshot
metadata controller). HTTP handlers and views: :mod:`manila_standin.access_rules_api`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import typing
import uuid

from manila_standin import collection
from manila_standin import errors
from manila_standin import identity
from manila_standin import params
from manila_standin import transitions

if typing.TYPE_CHECKING:
    from manila_standin import shares as shares_mod
    from manila_standin import state as state_mod

ACCESS_TYPES = ("ip", "user", "cert", "cephx")
ACCESS_LEVELS = ("rw", "ro")
_USER_RE = re.compile(r"^[\w\.\-_\`;'\{\}\[\]\\]{4,255}$")
_CEPHX_RE = re.compile(r"^[a-zA-Z0-9\-_\.]+$")


@dataclasses.dataclass(eq=False)
class AccessRule:
    """A share access rule as the stand-in stores it."""

    id: str
    share_id: str
    access_type: str
    access_to: str
    access_level: str
    state: str
    access_key: str | None
    metadata: dict[str, str]
    created_at: float
    updated_at: float | None = None
    transition: transitions.Transition | None = None


def validate_access(
    access_type: typing.Any, access_to: typing.Any, enable_ceph: bool, enable_ipv6: bool
) -> None:
    """Check a rule's type and target like Manila's ``validate_access``.

    :raises errors.ApiError: 400 with Manila's wording for each kind of rule.
    """
    allowed = ACCESS_TYPES if enable_ceph else ACCESS_TYPES[:3]
    if not access_type or not isinstance(access_type, str) or not access_to or not isinstance(
        access_to, str
    ):
        raise errors.bad_request("Required parameter access_type or access_to is empty.")
    if access_type not in allowed:
        names = ", ".join(f"'{a}'" for a in allowed)
        raise errors.bad_request(f"Only {names} access types are supported.")
    if access_type == "ip":
        try:
            network = ipaddress.ip_network(access_to, strict=False)
        except ValueError:
            raise errors.bad_request(
                f"Invalid IP access: {access_to} is not a valid IP address or CIDR."
            ) from None
        if network.version == 6 and not enable_ipv6:
            raise errors.bad_request(
                f"Invalid IP access: IPv6 is not supported before 2.38 ({access_to})."
            )
    elif access_type == "user":
        if not _USER_RE.match(access_to):
            raise errors.bad_request(
                "Invalid user or group name. Must be 4-255 characters and consist of "
                "alphanumeric characters and special characters $]{[_-.`;'}"
            )
    elif access_type == "cert":
        if len(access_to) > 64:
            raise errors.bad_request("Invalid CN (common name). Must be 1-64 chars long.")
    elif access_type == "cephx" and not _CEPHX_RE.match(access_to):
        raise errors.bad_request(
            "Invalid cephx id: it may contain only letters, digits, '-', '_' and '.'."
        )


class AccessRules(collection.Collection):
    """Every access rule, by id and by share; the :class:`Lifecycle` of rules."""

    def __init__(self, state: state_mod.StandInState) -> None:
        super().__init__(state)
        self.by_id: dict[str, AccessRule] = {}
        self._by_share: collection.Index = {}

    # -- lifecycle (transitions.Lifecycle) ------------------------------------

    def complete(self, rule: AccessRule, transition: transitions.Transition) -> None:
        """Reach the transition's state, or remove the rule; the share syncs a moment later."""
        share = self.state.shares.by_id.get(rule.share_id)
        if share is not None:
            share.access_synced_at = max(
                share.access_synced_at,
                transition.ready_at + self.state.config.delays.access_status_lag,
            )
        if transition.target is None:
            self.remove(rule)
            return
        rule.state = transition.target
        rule.updated_at = transition.ready_at

    # -- records ---------------------------------------------------------------

    def _store(self, rule: AccessRule) -> AccessRule:
        self.by_id[rule.id] = rule
        self._by_share.setdefault(rule.share_id, {})[rule.id] = None
        return rule

    def remove(self, rule: AccessRule) -> None:
        """Forget a rule that is gone."""
        self.by_id.pop(rule.id, None)
        collection.unindex(self._by_share, rule.share_id, rule.id)
        transitions.cancel(rule)

    def remove_all(self, share_id: str) -> None:
        """Drop every rule of a share that is gone."""
        for rule_id in list(self._by_share.pop(share_id, {})):
            rule = self.by_id.pop(rule_id, None)
            if rule is not None:
                transitions.cancel(rule)

    def visible(self, ctx: identity.Context, access_id: str) -> AccessRule:
        """Return a rule whose share the caller may see, or raise 404."""
        message = f"Share access rule {access_id} not found."
        rule = self.by_id.get(access_id)
        if rule is None:
            raise errors.not_found(message)
        self.state.shares.visible(ctx, rule.share_id, message)
        return rule

    @collection.settled
    def of_share(self, share_id: str) -> list[AccessRule]:
        """Return the access rules of a share, oldest first."""
        return self.members(self._by_share, share_id)

    def shown_state(self, rule: AccessRule) -> str:
        """Return the rule state shown now (``applying``/``denying`` mid-way)."""
        transition = rule.transition
        if transition is None:
            return rule.state
        span = transition.ready_at - transition.started_at
        # Second half of the delay: the share manager is working on the rule.
        if 0 < span < transitions.INFINITY and self.now() >= transition.started_at + span / 2:
            return "applying" if rule.state == "queued_to_apply" else "denying"
        return rule.state

    def share_status(self, share: shares_mod.Share) -> str:
        """Return the share's ``access_rules_status``: ``syncing`` while any rule changes."""
        for rule_id in self._by_share.get(share.id, {}):
            rule = self.by_id[rule_id]
            if rule.transition is not None:
                return "syncing"
            if rule.state == "error":
                return "error"
        if self.now() < share.access_synced_at:
            return "syncing"
        return "active"

    # -- API operations ----------------------------------------------------------

    @collection.settled
    def allow(
        self,
        ctx: identity.Context,
        share_id: str,
        access_type: typing.Any,
        access_to: typing.Any,
        access_level: typing.Any = None,
        metadata: dict[str, str] | None = None,
        *,
        enable_ceph: bool = True,
        enable_ipv6: bool = True,
        allow_on_error_state: bool = False,
    ) -> AccessRule:
        """Add an access rule (``allow_access`` action): ``queued_to_apply`` first."""
        shares = self.state.shares
        share = shares.visible(ctx, share_id, errors.NOT_FOUND_TRANSLATED)
        with self.state.mutation(ctx, "access_allow", share.id) as scope:
            scope.status = 200
            validate_access(access_type, access_to, enable_ceph, enable_ipv6)
            if access_level not in (*ACCESS_LEVELS, None):
                raise errors.bad_request(
                    f"Invalid access rule: Invalid share access level: {access_level}."
                )
            params.check_metadata(metadata)
            shares.authorize(ctx, share, "allow_access")
            for rule_id in self._by_share.get(share.id, {}):
                rule = self.by_id[rule_id]
                if rule.access_type == access_type and rule.access_to == access_to:
                    raise errors.bad_request(f"Share access {access_type}:{access_to} exists.")
            invalid = ("deleting", "migrating_to", "error_deleting")
            if not share.host or share.status in invalid or (
                share.status == "error" and not allow_on_error_state
            ):
                raise errors.invalid_share(
                    "New access rules cannot be applied while the share or any of its "
                    "replicas or migration copies lacks a valid host or is in an "
                    "invalid state"
                )
            rule = self._store(AccessRule(
                id=str(uuid.uuid4()),
                share_id=share.id,
                access_type=access_type,
                access_to=access_to,
                access_level=access_level or "rw",
                state="queued_to_apply",
                access_key=f"AQ{uuid.uuid4().hex}==" if access_type == "cephx" else None,
                metadata=params.strings(metadata),
                created_at=self.state.timeline.stamp(),
            ))
            delay = self.state.config.delays.access_apply
            self.state.timeline.begin(self, rule, "active", delay, scope, [share.id])
            return rule

    @collection.settled
    def deny(
        self, ctx: identity.Context, share_id: str, access_id: typing.Any,
        allow_on_error_state: bool = False,
    ) -> None:
        """Remove an access rule (``deny_access`` action): gone after the delay."""
        shares = self.state.shares
        share = shares.visible(ctx, share_id)
        with self.state.mutation(ctx, "access_deny", share.id) as scope:
            if not isinstance(access_id, str) or not access_id:
                raise errors.bad_request("Required parameter access_id is empty.")
            rule = self.by_id.get(access_id)
            if rule is None or rule.share_id != share.id:
                raise errors.not_found(f"Access rule {access_id} not found.")
            shares.authorize(ctx, share, "deny_access")
            if not share.host or share.status in ("deleting", "migrating_to") or (
                share.status == "error" and not allow_on_error_state
            ):
                raise errors.invalid_share(
                    "Access rules cannot be denied while the share, any of its replicas "
                    "or migration copies lacks a valid host or is in an invalid state"
                )
            transitions.cancel(rule)
            rule.state = "queued_to_deny"
            rule.updated_at = self.now()
            delay = self.state.config.delays.access_apply
            self.state.timeline.begin(self, rule, None, delay, scope, [share.id])

    @collection.settled
    def set_metadata(
        self, ctx: identity.Context, access_id: str, metadata: typing.Any
    ) -> dict[str, str]:
        """``PUT /share-access-rules/{id}/metadata``: merge metadata of a rule."""
        rule = self.visible(ctx, access_id)
        with self.state.mutation(ctx, "access_metadata_set", rule.share_id) as scope:
            scope.status = 200
            params.check_metadata(metadata)
            rule.metadata.update(params.strings(metadata))
            rule.updated_at = self.now()
            return dict(rule.metadata)

    @collection.settled
    def delete_metadata(self, ctx: identity.Context, access_id: str, key: str) -> None:
        """``DELETE /share-access-rules/{id}/metadata/{key}``."""
        rule = self.visible(ctx, access_id)
        with self.state.mutation(ctx, "access_metadata_delete", rule.share_id) as scope:
            scope.status = 200
            if key not in rule.metadata:
                raise errors.not_found(f"Metadata item {key} not found.")
            del rule.metadata[key]

    # -- direct helpers (no API rules, no conflicts) --------------------------------

    def direct_create(self, share: shares_mod.Share, spec: typing.Any) -> AccessRule:
        """Add an ``active`` rule from ``{"access_type", "access_to", "access_level"}``
        or ``(type, to[, level])``. The caller holds the state lock."""
        if isinstance(spec, dict):
            access_type = spec["access_type"]
            access_to = spec["access_to"]
            level = spec.get("access_level", "rw")
            metadata = spec.get("metadata", {})
        else:
            access_type, access_to, *rest = spec
            level = rest[0] if rest else "rw"
            metadata = {}
        return self._store(AccessRule(
            id=str(uuid.uuid4()),
            share_id=share.id,
            access_type=access_type,
            access_to=access_to,
            access_level=level,
            state="active",
            access_key=None,
            metadata=dict(metadata),
            created_at=self.state.timeline.stamp(),
        ))
