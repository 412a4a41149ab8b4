"""Talking to Manila: the calls the plugins make, and the one place where every
Manila, keystoneauth and requests error is translated into the project's
exception tree (:func:`translate_errors`).

The rest of the project calls :class:`ManilaClient` (built by
:class:`~manila_protector.plugins.client_factory.ClientFactory`) and never
manilaclient.
"""

from __future__ import annotations

import contextlib
import logging
import typing

from keystoneauth1 import exceptions as ks_exc
from manilaclient import api_versions
from manilaclient import exceptions as manila_exc
import requests

from manila_protector import exception
from manila_protector.plugins import values

LOG = logging.getLogger(__name__)

#: Microversions at which the features we use appear.
REVERT_VERSION = api_versions.APIVersion("2.27")
ACCESS_RULES_API_VERSION = api_versions.APIVersion("2.45")
SNAPSHOT_METADATA_VERSION = api_versions.APIVersion("2.73")
SHARE_TYPE_ID_VERSION = api_versions.APIVersion("2.6")

#: The newest microversion this python-manilaclient knows.
CLIENT_MAX_VERSION = api_versions.APIVersion(api_versions.MAX_VERSION)


def _request_id(exc: BaseException) -> str | None:
    return getattr(exc, "request_id", None)


def _http_message(exc: manila_exc.ClientException) -> str:
    # HttpError.message is the fault body's message; never the request headers.
    message = getattr(exc, "message", None) or exc.__class__.__name__
    status = getattr(exc, "http_status", None) or getattr(exc, "code", None)
    return f"{message} (HTTP {status})" if status else str(message)


_ErrorMapping = tuple[tuple[type[Exception], ...], type[exception.ProtectorError], str]

#: Manila's HTTP errors and what they mean here: (its classes, ours, message prefix).
_HTTP_ERRORS: tuple[_ErrorMapping, ...] = (
    ((manila_exc.NotFound,), exception.NotFound, "not found: "),
    ((manila_exc.Unauthorized, manila_exc.Forbidden), exception.NotAuthorized,
     "refused by Manila: "),
    ((manila_exc.Conflict,), exception.Conflict, ""),
    ((manila_exc.RequestEntityTooLarge,), exception.QuotaExceeded, "over quota: "),
    ((manila_exc.UnprocessableEntity, manila_exc.NotAcceptable), exception.Unsupported, ""),
    ((manila_exc.BadRequest,), exception.InvalidRequest, "Manila refused the request: "),
    ((manila_exc.HttpServerError,), exception.ManilaUnavailable, "Manila server error: "),
)


@contextlib.contextmanager
def translate_errors(what: str) -> typing.Iterator[None]:
    """Re-raise any Manila/keystoneauth/requests error as a :class:`ProtectorError`.

    :param what: a short description of the call ("get share 123"), used in messages.
    """
    try:
        yield
    except exception.ProtectorError:
        raise
    except manila_exc.HttpError as exc:
        for classes, ours, prefix in _HTTP_ERRORS:
            if isinstance(exc, classes):
                raise ours(f"{what}: {prefix}{_http_message(exc)}",
                           request_id=_request_id(exc)) from exc
        # Any other 4xx: Manila found the request itself wrong.
        raise exception.InvalidRequest(f"{what}: {_http_message(exc)}",
                                       request_id=_request_id(exc)) from exc
    except manila_exc.UnsupportedVersion as exc:
        raise exception.Unsupported(f"{what}: {exc}") from exc
    except manila_exc.ClientException as exc:
        # Other HTTP 4xx, and client-side errors (CommandError on a bad access rule).
        raise exception.InvalidRequest(
            f"{what}: {_http_message(exc)}", request_id=_request_id(exc)
        ) from exc
    except (ks_exc.EndpointNotFound, ks_exc.CatalogException) as exc:
        raise exception.Unsupported(f"{what}: no Manila endpoint: {exc}") from exc
    except (ks_exc.Unauthorized, ks_exc.AuthorizationFailure,
            ks_exc.AuthPluginException) as exc:
        # AuthPluginException: [manila] names an unknown auth plugin or lacks its options;
        # a misconfiguration, which retrying will not cure.
        raise exception.NotAuthorized(f"{what}: authentication failed: {exc}") from exc
    except (ks_exc.ConnectionError, ks_exc.RetriableConnectionFailure) as exc:
        raise exception.ManilaUnavailable(f"{what}: cannot reach Manila: {exc}") from exc
    except ks_exc.ClientException as exc:
        raise exception.ManilaUnavailable(f"{what}: {exc}") from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise exception.ManilaUnavailable(f"{what}: cannot reach Manila: {exc}") from exc


class ManilaClient:
    """The Manila calls the plugins make, at one negotiated microversion.

    Every method returns plain dicts (the API's JSON) and raises only
    :class:`exception.ProtectorError` subclasses.
    """

    def __init__(self, client: typing.Any, version: api_versions.APIVersion) -> None:
        self._client = client
        self.version = version

    # -- features -------------------------------------------------------------

    @property
    def supports_revert(self) -> bool:
        return self.version >= REVERT_VERSION

    @property
    def supports_access_rules_api(self) -> bool:
        return self.version >= ACCESS_RULES_API_VERSION

    @property
    def supports_snapshot_metadata(self) -> bool:
        return self.version >= SNAPSHOT_METADATA_VERSION

    # -- shares ---------------------------------------------------------------

    def get_share(self, share_id: str) -> dict[str, typing.Any]:
        with translate_errors(f"get share {share_id}"):
            return _as_dict(self._client.shares.get(share_id))

    def list_shares(
        self, search_opts: dict[str, typing.Any], page_size: int
    ) -> typing.Iterator[dict[str, typing.Any]]:
        """Yield shares page by page (``limit``/``offset``, oldest first).

        ``is_public`` defaults to False here: python-manilaclient otherwise adds
        ``is_public=True`` and lists other projects' public shares.

        A page shorter than ``page_size`` ends the list only once a longer page
        was seen: a Manila that caps pages below ``page_size`` (older releases
        cap every list at ``osapi_max_limit``) answers short pages all along,
        and stopping at the first would silently drop shares from protection.
        So a list that fits in one page costs one more (empty) request.
        """
        offset = 0
        longest = 0
        while True:
            opts = {"is_public": False, **search_opts, "limit": page_size, "offset": offset}
            with translate_errors("list shares"):
                # The page as Manila's JSON: building a manilaclient Resource per share
                # (setattr per field) was a third of the client's time on big lists.
                page = self._client.shares.list(
                    detailed=True, search_opts=opts, sort_key="created_at", sort_dir="asc",
                    return_raw=True,
                )
            if isinstance(page, tuple):  # with_count answers (shares, count)
                page = page[0]
            yield from page
            if not page or len(page) < min(longest, page_size):
                return
            longest = max(longest, len(page))
            offset += len(page)

    def create_share(
        self,
        *,
        share_proto: str,
        size: int,
        snapshot_id: str,
        name: str | None,
        description: str | None,
        metadata: dict[str, str],
        share_network_id: str | None,
        share_type: str | None,
        availability_zone: str | None,
    ) -> dict[str, typing.Any]:
        with translate_errors(f"create share from snapshot {snapshot_id}"):
            share = self._client.shares.create(
                share_proto,
                size,
                snapshot_id=snapshot_id,
                name=name,
                description=description,
                metadata=metadata,
                share_network=share_network_id,
                share_type=share_type,
                availability_zone=availability_zone,
            )
            return _as_dict(share)

    def delete_share(self, share_id: str) -> None:
        with translate_errors(f"delete share {share_id}"):
            self._client.shares.delete(share_id)

    def set_share_metadata(self, share_id: str, metadata: dict[str, str]) -> None:
        """Add or replace these metadata items of a share (the others stay)."""
        with translate_errors(f"set metadata of share {share_id}"):
            self._client.shares.set_metadata(share_id, metadata)

    def delete_share_metadata(self, share_id: str, key: str) -> None:
        with translate_errors(f"delete metadata {key} of share {share_id}"):
            self._client.shares.delete_metadata(share_id, [key])

    def revert_share(self, share_id: str, snapshot_id: str) -> None:
        with translate_errors(f"revert share {share_id} to snapshot {snapshot_id}"):
            self._client.shares.revert_to_snapshot(share_id, snapshot_id)

    def find_shares_by_metadata(self, metadata: dict[str, str]) -> list[dict[str, typing.Any]]:
        """The caller's own shares carrying all of ``metadata`` (filtered by Manila)."""
        with translate_errors("find shares by metadata"):
            found = self._client.shares.list(
                detailed=True, search_opts={"is_public": False, "metadata": metadata}
            )
        found = found[0] if isinstance(found, tuple) else found
        result = [_as_dict(s) for s in found]
        # Be strict: a server that ignores the filter must not make us adopt a stranger.
        return [s for s in result if all((s.get("metadata") or {}).get(k) == v
                                         for k, v in metadata.items())]

    # -- snapshots ------------------------------------------------------------

    def get_snapshot(self, snapshot_id: str) -> dict[str, typing.Any]:
        with translate_errors(f"get snapshot {snapshot_id}"):
            return _as_dict(self._client.share_snapshots.get(snapshot_id))

    def list_snapshots(self, share_id: str) -> list[dict[str, typing.Any]]:
        """All snapshots of one share (a share has at most a quota's worth)."""
        with translate_errors(f"list snapshots of share {share_id}"):
            snaps = self._client.share_snapshots.list(
                detailed=True, search_opts={"share_id": share_id}
            )
        return [_as_dict(s) for s in snaps]

    def create_snapshot(
        self,
        *,
        share_id: str,
        force: bool,
        name: str,
        description: str,
        metadata: dict[str, str] | None,
    ) -> dict[str, typing.Any]:
        with translate_errors(f"snapshot share {share_id}"):
            if self.supports_snapshot_metadata:
                snap = self._client.share_snapshots.create(
                    share_id, force=force, name=name, description=description,
                    metadata=metadata or {},
                )
            else:
                snap = self._client.share_snapshots.create(
                    share_id, force=force, name=name, description=description
                )
            return _as_dict(snap)

    def delete_snapshot(self, snapshot_id: str) -> None:
        with translate_errors(f"delete snapshot {snapshot_id}"):
            self._client.share_snapshots.delete(snapshot_id)

    # -- access rules ---------------------------------------------------------

    def list_access_rules(self, share_id: str) -> list[dict[str, typing.Any]]:
        with translate_errors(f"list access rules of share {share_id}"):
            if self.supports_access_rules_api:
                rules = self._client.share_access_rules.access_list(share_id)
            else:
                rules = self._client.shares.access_list(share_id)
        return [_rule_to_dict(r) for r in rules]

    def allow_access(self, share_id: str, rule: values.AccessRule) -> dict[str, typing.Any]:
        with translate_errors(f"allow {rule.access_type} access to share {share_id}"):
            kwargs: dict[str, typing.Any] = {}
            if self.supports_access_rules_api and rule.metadata:
                kwargs["metadata"] = dict(rule.metadata)
            return dict(self._client.shares.allow(
                share_id, rule.access_type, rule.access_to, rule.access_level, **kwargs
            ))


def _as_dict(resource: typing.Any) -> dict[str, typing.Any]:
    """A manilaclient resource as the API's JSON object.

    NOTE: ``Resource.to_dict()`` deep-copies the resource's JSON; listing a
    project's 5,000 shares spent over half its time there.  The resource is
    dropped right after, so a shallow copy of its JSON is just as safe.
    """
    info = getattr(resource, "_info", None)
    return dict(info) if isinstance(info, dict) else resource.to_dict()


def _rule_to_dict(rule: typing.Any) -> dict[str, typing.Any]:
    if hasattr(rule, "to_dict"):
        return _as_dict(rule)
    if hasattr(rule, "_asdict"):
        return dict(rule._asdict())
    return dict(rule)
