"""The protectable core: which shares exist and which of them can be protected."""

from __future__ import annotations

import dataclasses
import typing

from manila_protector import exception
from manila_protector import identity
from manila_protector.plugins import manila_client
from manila_protector.plugins import statuses


@dataclasses.dataclass(frozen=True)
class ShareSummary:
    """What the protectable plugin reports of one share."""

    id: str
    name: str | None
    status: str
    project_id: str | None
    size: int | None
    share_proto: str | None
    availability_zone: str | None

    @classmethod
    def from_api(cls, share: typing.Mapping[str, typing.Any]) -> ShareSummary:
        return cls(
            id=share["id"],
            name=share.get("name"),
            status=share.get("status") or "",
            project_id=share.get("project_id"),
            size=share.get("size"),
            share_proto=share.get("share_proto"),
            availability_zone=share.get("availability_zone"),
        )

    @property
    def protectable(self) -> bool:
        return self.status not in statuses.SHARE_UNPROTECTABLE

    def to_dict(self) -> dict[str, typing.Any]:
        return dataclasses.asdict(self)


class ShareCatalog:
    """Lists and shows shares for the protectable plugin.

    :param manila: the client acting for the caller.
    :param page_size: shares per list request (lists are always paginated).
    """

    def __init__(self, manila: manila_client.ManilaClient, page_size: int) -> None:
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        self._manila = manila
        self._page_size = page_size

    def _protectable(self, search_opts: dict[str, typing.Any]) -> list[ShareSummary]:
        summaries = (ShareSummary.from_api(s)
                     for s in self._manila.list_shares(search_opts, self._page_size))
        return [s for s in summaries if s.protectable]

    def list_shares(self) -> list[ShareSummary]:
        """The caller's own protectable shares (never other projects' public ones)."""
        return self._protectable({})

    def show_share(self, share_id: str, *, caller: identity.Caller | None = None
                   ) -> ShareSummary:
        """One share.

        :param caller: when given (and no admin), another project's share -- a
            public one Manila lets the caller see -- is not found.
        :raises exception.NotFound: no such share (or not visible to the caller).
        :raises exception.InvalidStatus: the share's status forbids protecting it.
        """
        share = ShareSummary.from_api(self._manila.get_share(share_id))
        if (caller is not None and not caller.is_admin
                and share.project_id not in (None, caller.project_id)):
            # Manila shows other projects' public shares; they are not the caller's to protect.
            raise exception.NotFound(
                f"share {share_id} is not a share of project {caller.project_id}",
                details={"share_id": share_id},
            )
        if not share.protectable:
            raise exception.InvalidStatus(
                f"share {share_id} is {share.status!r} and cannot be protected",
                details={"share_id": share_id, "status": share.status},
            )
        return share

    def list_project_shares(self, project_id: str, *, caller: identity.Caller
                            ) -> list[ShareSummary]:
        """The protectable shares of ``project_id``, filtered by Manila, paginated.

        An admin asks Manila for that project across tenants; anyone else may
        only ask for their own project.

        :raises exception.NotAuthorized: a non-admin asked for another project.
        """
        if caller.is_admin:
            return self._protectable({"all_tenants": 1, "project_id": project_id})
        if project_id != caller.project_id:
            raise exception.NotAuthorized(
                f"project {caller.project_id} may not list the shares of project {project_id}",
                details={"project_id": project_id},
            )
        return self._protectable({})
