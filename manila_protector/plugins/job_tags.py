"""Job tags: how a snapshot or share names the job that made it.

A protect tags its snapshot (snapshot metadata at microversion >= 2.73, a
marker in the description below), a restore tags its new share (share
metadata).  Before creating anything an operation looks for a resource carrying
its tag and adopts it, so a repeated or resumed job never makes a second
snapshot or share.
"""

from __future__ import annotations

import typing

from manila_protector.plugins import statuses

#: Metadata key (snapshot and share) holding the tag of the job that made it.
KEY = "manila_protector_job"
#: Share metadata key recording that a job is about to revert the share (``<tag>``)
#: or that Manila accepted its revert (``<tag> sent``): a revert is sent at most once.
REVERT_KEY = "manila_protector_revert"
_SENT = " sent"


def revert_intent(tag: str, *, sent: bool) -> dict[str, str]:
    """The share metadata recording job ``tag``'s revert (about to be sent, or sent)."""
    return {REVERT_KEY: tag + (_SENT if sent else "")}


def revert_state(share: Resource, tag: str) -> str | None:
    """What the share says of job ``tag``'s revert: None (nothing), ``"intended"``
    (it was about to be sent), or ``"sent"`` (Manila accepted it)."""
    value = (share.get("metadata") or {}).get(REVERT_KEY)
    if value == tag:
        return "intended"
    if value == tag + _SENT:
        return "sent"
    return None

_MARKER_PREFIX = "[" + KEY + "="
_MARKER_SUFFIX = "]"

Resource = typing.Mapping[str, typing.Any]


def marker(tag: str) -> str:
    """The description marker of ``tag`` (for snapshots without metadata)."""
    return f"{_MARKER_PREFIX}{tag}{_MARKER_SUFFIX}"


def tagged_description(description: str, tag: str | None) -> str:
    """``description`` with ``tag``'s marker appended (unchanged without a tag)."""
    if not tag:
        return description
    return f"{description} {marker(tag)}" if description else marker(tag)


def metadata(tag: str | None) -> dict[str, str]:
    """The metadata that tags a resource with ``tag`` (empty without a tag)."""
    return {KEY: tag} if tag else {}


def tag_of(resource: Resource) -> str | None:
    """The job tag a snapshot or share carries (metadata, or the description's marker)."""
    tag = (resource.get("metadata") or {}).get(KEY)
    if tag:
        return str(tag)
    description = resource.get("description") or ""
    start = description.rfind(_MARKER_PREFIX)
    if start < 0:
        return None
    end = description.find(_MARKER_SUFFIX, start)
    return description[start + len(_MARKER_PREFIX):end] if end > 0 else None


def _carries(resource: Resource, tag: str) -> bool:
    return ((resource.get("metadata") or {}).get(KEY) == tag
            or marker(tag) in (resource.get("description") or ""))


def _oldest_first(resource: Resource) -> tuple[str, str]:
    return (resource.get("created_at") or "", resource["id"])


def snapshots_of(snapshots: typing.Iterable[Resource], tag: str) -> list[Resource]:
    """The snapshots made by job ``tag`` that are not being deleted, oldest first."""
    return sorted((snap for snap in snapshots
                   if _carries(snap, tag) and snap.get("status") not in statuses.SNAPSHOT_DELETING),
                  key=_oldest_first)


def shares_of(shares: typing.Iterable[Resource], tag: str) -> list[Resource]:
    """The shares made by job ``tag`` that are not being deleted, oldest first."""
    return sorted((share for share in shares
                   if (share.get("metadata") or {}).get(KEY) == tag
                   and share.get("status") not in statuses.SHARE_DELETING),
                  key=_oldest_first)
