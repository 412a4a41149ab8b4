"""List queries shared by shares and snapshots: filters, sorting, paging.

Manila lists shares and snapshots the same way: filters on name and description
(exact or ``~`` for "contains"), status and metadata; a sort key and direction;
``limit`` and ``offset``; ``with_count``. The resource modules add their own
filters on top of :class:`ListQuery` and parse them with the helpers here.
"""

from __future__ import annotations

import dataclasses
import typing

from manila_standin import errors
from manila_standin import params


@dataclasses.dataclass
class ListQuery:
    """Parsed filters common to share and snapshot listings."""

    all_tenants: bool = False
    project_id: str | None = None
    name: str | None = None
    name_like: str | None = None
    description: str | None = None
    description_like: str | None = None
    status: str | None = None
    metadata: dict[str, typing.Any] | None = None
    sort_key: str = "created_at"
    sort_dir: str = "desc"
    limit: int | None = None
    offset: int = 0


class Listed(typing.Protocol):
    """A record the common filters apply to."""

    name: str | None
    description: str | None
    status: str
    metadata: dict[str, str]
    created_at: float


# -- parsing (API layer) -------------------------------------------------------


def parse_paging(opts: dict[str, str], query: ListQuery) -> None:
    """Move ``limit`` and ``offset`` from ``opts`` into ``query``."""
    if "limit" in opts:
        query.limit = params.non_negative_int("limit", opts.pop("limit"))
    if "offset" in opts:
        query.offset = params.non_negative_int("offset", opts.pop("offset"))


def parse_with_count(opts: dict[str, str], honoured: bool) -> bool:
    """Pop ``with_count``; it only counts where the microversion ``honoured`` it."""
    if "with_count" not in opts:
        return False
    raw = opts.pop("with_count")
    return params.query_bool("with_count", raw) if honoured else False


def parse_text_filters(opts: dict[str, str], query: ListQuery, with_like: bool) -> None:
    """Move name and description filters (and their ``display_`` aliases) into ``query``.

    :param with_like: also the "contains" filters (``name~``, ``description~``).
    """
    query.name = opts.pop("name", opts.pop("display_name", None))
    query.description = opts.pop("description", opts.pop("display_description", None))
    if with_like:
        query.name_like = opts.pop("name~", opts.pop("display_name~", None))
        query.description_like = opts.pop(
            "description~", opts.pop("display_description~", None)
        )


# -- matching, sorting, paging (model) -------------------------------------------


def _like(value: str | None, needle: str) -> bool:
    return value is not None and needle.lower() in value.lower()


def metadata_matches(have: dict[str, str], wanted: dict[str, typing.Any]) -> bool:
    """Whether every wanted item is in ``have`` (values compared as strings)."""
    return all(key in have and have[key] == str(value) for key, value in wanted.items())


def matches(record: Listed, q: ListQuery) -> bool:
    """Whether ``record`` passes the common filters of ``q``."""
    if q.name is not None and record.name != q.name:
        return False
    if q.name_like is not None and not _like(record.name, q.name_like):
        return False
    if q.description is not None and record.description != q.description:
        return False
    if q.description_like is not None and not _like(record.description, q.description_like):
        return False
    if q.status is not None and record.status != q.status:
        return False
    if q.metadata and not metadata_matches(record.metadata, q.metadata):
        return False
    return True


def check_sort(q: ListQuery, sort_key: str, allowed: typing.Container[str]) -> None:
    """Refuse an unknown sort key (``sort_key`` after aliasing) or direction.

    :raises errors.ApiError: 400 worded like Manila's ``InvalidInput``.
    """
    if sort_key not in allowed:
        raise errors.invalid_input(f"Wrong sorting key provided - '{q.sort_key}'")
    if q.sort_dir not in ("asc", "desc"):
        raise errors.invalid_input(
            f"Wrong sorting data provided: sort key is '{q.sort_key}' and sort "
            f"direction is '{q.sort_dir}'"
        )


def sort_and_page(
    matched: list[typing.Any],
    q: ListQuery,
    sort_key: str,
    attributes: typing.Mapping[str, str],
) -> tuple[int, list[typing.Any]]:
    """Sort ``matched`` and cut the page ``q`` asks for.

    :param sort_key: the (validated) key; ``attributes`` maps API names to record
        attributes. Ties, and records without a value, are ordered by creation.
    :returns: (number matched, the page).
    """
    attr = attributes.get(sort_key, sort_key)
    if attr == "created_at":
        def key(record: typing.Any) -> typing.Any:
            return record.created_at
    else:
        def key(record: typing.Any) -> typing.Any:
            value = getattr(record, attr)
            return (value is not None, value if value is not None else ""), record.created_at
    matched.sort(key=key, reverse=q.sort_dir == "desc")
    page = matched[q.offset:]
    if q.limit is not None:
        page = page[: q.limit]
    return len(matched), page
