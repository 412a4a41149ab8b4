"""The protection core's value types: what a request asks and what an operation returns.

Frozen dataclasses with explicit fields.  Requests coming from outside (Karbor's
parameters, RPC payloads, a checkpoint's saved info) are validated against the
schemas in :mod:`manila_protector.plugins.schemas` by the ``from_*``
constructors; nothing here talks to Manila.
"""

from __future__ import annotations

import dataclasses
import typing

from manila_protector.plugins import schemas

#: ``RestoreResult.mode`` of a restore into a new share.
MODE_NEW_SHARE = "new_share"
#: ``RestoreResult.mode`` of a revert of the original share in place.
MODE_REVERT = "revert"


@dataclasses.dataclass(frozen=True)
class AccessRule:
    """One access rule of a share, as saved and re-applied."""

    access_type: str
    access_to: str
    access_level: str
    metadata: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> tuple[str, str, str]:
        """What makes two rules the same rule (Manila refuses a duplicate)."""
        return (self.access_type, self.access_to, self.access_level)

    def to_dict(self) -> dict[str, typing.Any]:
        return {
            "access_type": self.access_type,
            "access_to": self.access_to,
            "access_level": self.access_level,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: typing.Mapping[str, typing.Any]) -> AccessRule:
        return cls(
            access_type=data["access_type"],
            access_to=data["access_to"],
            access_level=data["access_level"],
            metadata=tuple(sorted((data.get("metadata") or {}).items())),
        )


@dataclasses.dataclass(frozen=True)
class ProtectOptions:
    """A protect request's options (the spec's OPTIONS_SCHEMA)."""

    snapshot_name: str
    description: str
    force: bool = False

    @classmethod
    def from_parameters(cls, parameters: typing.Any) -> ProtectOptions:
        """Validate Karbor/RPC parameters (string booleans accepted).

        :raises exception.InvalidRequest: a schema violation, naming field and rule.
        """
        params = schemas.validate(schemas.OPTIONS_SCHEMA, parameters, "parameters")
        return cls(
            snapshot_name=params["snapshot_name"],
            description=params["description"],
            force=params["force"],
        )

    def to_parameters(self) -> dict[str, typing.Any]:
        """The options as the parameters :meth:`from_parameters` reads (for an RPC job)."""
        return {"snapshot_name": self.snapshot_name, "description": self.description,
                "force": self.force}


@dataclasses.dataclass(frozen=True)
class RestoreOptions:
    """A restore request's options (the spec's RESTORE_SCHEMA)."""

    target_share_id: str | None = None
    name: str | None = None
    description: str | None = None
    restore_access_rules: bool = True

    @classmethod
    def from_parameters(cls, parameters: typing.Any) -> RestoreOptions:
        """Validate Karbor/RPC restore parameters.

        :raises exception.InvalidRequest: a schema violation, naming field and rule.
        """
        params = schemas.validate(schemas.RESTORE_SCHEMA, parameters, "parameters")
        return cls(
            target_share_id=params.get("share_id") or None,
            name=params.get("restore_name"),
            description=params.get("restore_description"),
            restore_access_rules=params.get("restore_access_rules", True),
        )

    def to_parameters(self) -> dict[str, typing.Any]:
        """The options as the parameters :meth:`from_parameters` reads (for an RPC job)."""
        params: dict[str, typing.Any] = {"restore_access_rules": self.restore_access_rules}
        for key, value in (("share_id", self.target_share_id), ("restore_name", self.name),
                           ("restore_description", self.description)):
            if value is not None:
                params[key] = value
        return params


@dataclasses.dataclass(frozen=True)
class SavedInfo:
    """What protect records so that restore, verify and delete can work later."""

    snapshot_id: str
    share_id: str
    size: int
    share_proto: str
    share_type: str | None = None
    share_network_id: str | None = None
    availability_zone: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    access_rules: tuple[AccessRule, ...] = ()
    snapshot_name: str | None = None
    created_at: str | None = None
    job_tag: str | None = None

    def to_dict(self) -> dict[str, typing.Any]:
        return {
            "snapshot_id": self.snapshot_id,
            "share_id": self.share_id,
            "size": self.size,
            "share_proto": self.share_proto,
            "share_type": self.share_type,
            "share_network_id": self.share_network_id,
            "availability_zone": self.availability_zone,
            "metadata": dict(self.metadata),
            "access_rules": [rule.to_dict() for rule in self.access_rules],
            "snapshot_name": self.snapshot_name,
            "created_at": self.created_at,
            "job_tag": self.job_tag,
        }

    @classmethod
    def from_dict(cls, data: typing.Any) -> SavedInfo:
        """Validate and load saved info (as stored in a checkpoint or sent over RPC).

        :raises exception.InvalidRequest: a schema violation, naming field and rule.
        """
        data = schemas.validate(schemas.SAVED_INFO_SCHEMA, data, "saved_info")
        return cls(
            snapshot_id=data["snapshot_id"],
            share_id=data["share_id"],
            size=data["size"],
            share_proto=data["share_proto"],
            share_type=data.get("share_type"),
            share_network_id=data.get("share_network_id"),
            availability_zone=data.get("availability_zone"),
            metadata=tuple(sorted((data.get("metadata") or {}).items())),
            access_rules=tuple(AccessRule.from_dict(r) for r in data.get("access_rules") or ()),
            snapshot_name=data.get("snapshot_name"),
            created_at=data.get("created_at"),
            job_tag=data.get("job_tag"),
        )


@dataclasses.dataclass(frozen=True)
class RestoreResult:
    """The share a restore produced (a new one, or the original after a revert)."""

    share_id: str
    mode: str  # MODE_NEW_SHARE or MODE_REVERT
    status: str
    name: str | None
    size: int | None
    share_proto: str | None
    share_type: str | None
    access_rules: tuple[AccessRule, ...] = ()

    @classmethod
    def from_share(cls, share: typing.Mapping[str, typing.Any], mode: str,
                   rules: tuple[AccessRule, ...]) -> RestoreResult:
        """The result for ``share`` as Manila last showed it."""
        return cls(
            share_id=share["id"],
            mode=mode,
            status=share["status"],
            name=share.get("name"),
            size=share.get("size"),
            share_proto=share.get("share_proto"),
            share_type=share.get("share_type"),
            access_rules=rules,
        )

    @classmethod
    def from_dict(cls, data: typing.Mapping[str, typing.Any]) -> RestoreResult:
        """A restore job's result (:meth:`to_dict`) as the value."""
        return cls(
            share_id=data["share_id"], mode=data["mode"], status=data["status"],
            name=data.get("name"), size=data.get("size"), share_proto=data.get("share_proto"),
            share_type=data.get("share_type"),
            access_rules=tuple(AccessRule.from_dict(r) for r in data.get("access_rules") or ()),
        )

    def to_dict(self) -> dict[str, typing.Any]:
        return {
            "share_id": self.share_id,
            "mode": self.mode,
            "status": self.status,
            "name": self.name,
            "size": self.size,
            "share_proto": self.share_proto,
            "share_type": self.share_type,
            "access_rules": [rule.to_dict() for rule in self.access_rules],
        }


@dataclasses.dataclass(frozen=True)
class DeleteResult:
    """The outcome of a delete: whether the snapshot was still there to delete."""

    snapshot_id: str
    already_gone: bool

    @classmethod
    def from_dict(cls, data: typing.Mapping[str, typing.Any]) -> DeleteResult:
        return cls(snapshot_id=data["snapshot_id"], already_gone=bool(data["already_gone"]))

    def to_dict(self) -> dict[str, typing.Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class VerifyResult:
    """A verified snapshot."""

    snapshot_id: str
    share_id: str
    status: str
    size: int | None

    @classmethod
    def from_dict(cls, data: typing.Mapping[str, typing.Any]) -> VerifyResult:
        return cls(snapshot_id=data["snapshot_id"], share_id=data["share_id"],
                   status=data["status"], size=data.get("size"))

    def to_dict(self) -> dict[str, typing.Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Timeouts:
    """The deadline of each operation, in seconds (all waits of an operation share it).

    These defaults are the ``[manila] *_timeout`` options' defaults (``opts.py``
    reads them from here).
    """

    protect: float = 3600.0
    restore: float = 3600.0
    delete: float = 1800.0
    verify: float = 300.0
    #: How long a failed job may spend deleting the snapshot or share it made.
    cleanup: float = 300.0
