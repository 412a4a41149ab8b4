"""Resource types and Karbor's resource object.

Inside Karbor the plugins hand back ``karbor.resource.Resource`` objects; where
Karbor is not installed (this package's worker, tests) an equivalent class with
the same fields, equality and ``to_dict`` is used.
"""

from __future__ import annotations

import typing

PROJECT_RESOURCE_TYPE = "OS::Keystone::Project"
SHARE_RESOURCE_TYPE = "OS::Manila::Share"
RESOURCE_TYPES = (PROJECT_RESOURCE_TYPE, SHARE_RESOURCE_TYPE)


class _Resource:
    """Karbor's ``Resource``: type, id, name and optional extra_info; immutable."""

    __slots__ = ("type", "id", "name", "extra_info")

    def __init__(
        self, type: str, id: str, name: str | None, extra_info: dict | None = None  # noqa: A002
    ) -> None:
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "extra_info", extra_info)

    def __setattr__(self, key: str, value: typing.Any) -> None:
        raise AttributeError(f"Resource.{key} is read-only")

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.type, self.id, self.name)

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Resource) and self.key == other.key

    def __repr__(self) -> str:
        return f"Resource(type={self.type!r}, id={self.id!r}, name={self.name!r})"

    def to_dict(self) -> dict[str, typing.Any]:
        return {item: getattr(self, item) for item in self.__slots__}


try:  # pragma: no cover - depends on whether Karbor is installed
    from karbor.resource import Resource  # type: ignore[import-not-found]
except ImportError:
    Resource = _Resource  # type: ignore[misc,assignment]
