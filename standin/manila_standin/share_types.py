"""Share types and share networks: what a new share is made of.

A share type is a name and string-valued extra specs; a share copies the
capabilities it needs (``snapshot_support``, ``revert_to_snapshot_support``...)
from its type when it is created. The ``default`` type supports snapshots,
shares from snapshots and reverts. Share networks are opaque ids owned by a
project. HTTP handlers: :mod:`manila_standin.share_types_api`.
"""

from __future__ import annotations

import dataclasses
import typing
import uuid

from manila_standin import collection
from manila_standin import errors
from manila_standin import identity

if typing.TYPE_CHECKING:
    from manila_standin import state as state_mod

DEFAULT_SHARE_TYPE_NAME = "default"


@dataclasses.dataclass(eq=False)
class ShareType:
    """A share type with its (string valued) extra specs."""

    id: str
    name: str
    extra_specs: dict[str, str]
    description: str | None = None
    is_public: bool = True

    def flag(self, key: str) -> bool:
        """Return a boolean extra spec (absent means False)."""
        value = self.extra_specs.get(key, "False").strip().lower()
        return value in ("true", "1", "yes", "<is> true")


class ShareTypes(collection.Collection):
    """Every share type, and which one is the default."""

    def __init__(self, state: state_mod.StandInState) -> None:
        super().__init__(state)
        self.by_id: dict[str, ShareType] = {}
        self.default_id: str | None = self.add(
            DEFAULT_SHARE_TYPE_NAME,
            snapshot_support=True,
            create_share_from_snapshot_support=True,
            revert_to_snapshot_support=True,
        )

    def add(
        self,
        name: str,
        snapshot_support: bool = True,
        create_share_from_snapshot_support: bool = True,
        revert_to_snapshot_support: bool = True,
        mount_snapshot_support: bool = False,
        driver_handles_share_servers: bool = False,
        extra_specs: typing.Mapping[str, str] | None = None,
        description: str | None = None,
    ) -> str:
        """Create a public share type from capability flags; returns its id.

        :raises ValueError: a share type of that name exists.
        """
        specs = {
            "driver_handles_share_servers": str(driver_handles_share_servers),
            "snapshot_support": str(snapshot_support),
            "create_share_from_snapshot_support": str(create_share_from_snapshot_support),
            "revert_to_snapshot_support": str(revert_to_snapshot_support),
            "mount_snapshot_support": str(mount_snapshot_support),
        }
        specs.update(extra_specs or {})
        return self.create(name, specs, description=description).id

    def create(
        self,
        name: str,
        extra_specs: typing.Mapping[str, typing.Any],
        is_public: bool = True,
        description: str | None = None,
    ) -> ShareType:
        """Create a share type with exactly these extra specs (``POST /types``).

        :raises ValueError: a share type of that name exists.
        """
        with self.state.lock:
            if any(t.name == name for t in self.by_id.values()):
                raise ValueError(f"share type {name!r} exists")
            found = ShareType(str(uuid.uuid4()), name,
                              {str(k): str(v) for k, v in extra_specs.items()}, description,
                              is_public)
            self.by_id[found.id] = found
            return found

    def find(self, name_or_id: str) -> ShareType | None:
        """Find a share type by id or name."""
        with self.state.lock:
            found = self.by_id.get(name_or_id)
            if found is not None:
                return found
            for share_type in self.by_id.values():
                if share_type.name == name_or_id:
                    return share_type
            return None

    @property
    def default(self) -> ShareType | None:
        """The default share type, if there is one."""
        return self.by_id.get(self.default_id) if self.default_id else None


class ShareNetworks(collection.Collection):
    """Share networks: opaque ids, each owned by a project."""

    def __init__(self, state: state_mod.StandInState) -> None:
        super().__init__(state)
        self._owners: dict[str, str] = {}

    def add(self, project_id: str) -> str:
        """Create a share network of ``project_id`` and return its id."""
        network_id = str(uuid.uuid4())
        with self.state.lock:
            self._owners[network_id] = project_id
        return network_id

    def check(self, ctx: identity.Context, network_id: str) -> None:
        """Refuse a share network the caller may not use.

        :raises errors.ApiError: 404 when unknown or another project's.
        """
        owner = self._owners.get(network_id)
        if owner is None or not ctx.owns(owner):
            raise errors.not_found(f"Share network {network_id} could not be found.")
