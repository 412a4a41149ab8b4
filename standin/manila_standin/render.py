"""What every JSON view needs: the caller, the microversion, link prefixes, time format.

The views themselves live beside their resources (``shares_api.share_detail``...);
each returns the dict Manila's view builder returns for the requested
microversion, with fields appearing at the version Manila added them. Callers
hold the state lock while rendering live records.
"""

from __future__ import annotations

import dataclasses
import datetime
import typing

from manila_standin import identity

if typing.TYPE_CHECKING:
    from manila_standin import state as state_mod

Version = tuple[int, int]


@dataclasses.dataclass(frozen=True)
class Render:
    """What a view needs besides the record.

    :param state: the model (for share types, rule states).
    :param ctx: the caller (admins see ``host``, ``share_server_id``...).
    :param version: the request microversion.
    :param link_base: URL prefix of resource links, e.g. ``http://h:p/v2``.
    :param bookmark_base: URL prefix of bookmark links, e.g. ``http://h:p``.
    """

    state: state_mod.StandInState
    ctx: identity.Context
    version: Version
    link_base: str
    bookmark_base: str

    def at_least(self, major: int, minor: int) -> bool:
        """Whether the request microversion is >= ``major.minor``."""
        return self.version >= (major, minor)

    def links(self, collection: str, resource_id: str) -> list[dict[str, str]]:
        """The ``self`` and ``bookmark`` links of a resource."""
        return [
            {"rel": "self", "href": f"{self.link_base}/{collection}/{resource_id}"},
            {"rel": "bookmark", "href": f"{self.bookmark_base}/{collection}/{resource_id}"},
        ]


def isotime(value: float | None) -> str | None:
    """Format a stand-in time like Manila (``2024-01-31T12:00:00.000000``)."""
    if value is None:
        return None
    # timezone.utc, not datetime.UTC: the stand-in runs on Python 3.10 as well.
    moment = datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc)  # noqa: UP017
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")
