"""Who the CLI acts as: the request context it sends with every request.

Taken the way OpenStack's CLIs take it, through openstacksdk's configuration
loader (``openstack.config``: ``--os-cloud`` and ``clouds.yaml``, ``OS_*``
variables, ``--os-*`` options; the auth options themselves are keystoneauth's
loading options).  openstacksdk is used for that loader only -- it is the one
maintained reader of ``clouds.yaml`` (os-client-config is now a shim over it)
and already installed with python-manilaclient (through osc-lib).

Two forms:

* **With Keystone** (``password``, ``v3applicationcredential``, ``token``, ...):
  the CLI authenticates and sends the token with the user, project, roles and
  service catalog Keystone returned.
* **Without Keystone** (``--os-auth-type admin_token`` -- alias
  ``token_endpoint`` -- or ``none``): ``--os-token`` is sent as it is, with the
  project and user of ``--project-id`` / ``--user-id`` (by default read from a
  noauth token ``user:project``) and ``--role``; ``--os-endpoint`` (Manila's
  endpoint) travels as a one-entry service catalog, for workers without
  ``[manila] endpoint_override``.  The worker without ``[keystone_authtoken]``
  takes such a context as sent.

The token is never printed or logged.
"""

from __future__ import annotations

import argparse
import typing

from keystoneauth1 import exceptions as ks_exc
from openstack import config as os_config
from openstack import exceptions as os_exceptions

from manila_protector import exception
from manila_protector.rpc import context as rpc_context

#: Auth types that reach no Keystone: the token and endpoint are sent as given.
NO_KEYSTONE = frozenset({"admin_token", "token_endpoint", "none", "noauth"})
#: Manila's service type in a catalog.
SERVICE_TYPE = "sharev2"


def register_arguments(parser: argparse.ArgumentParser,
                       argv: list[str]) -> os_config.OpenStackConfig:
    """Add ``--os-cloud``, ``--os-auth-type`` and the auth type's ``--os-*`` options,
    and the no-Keystone identity options, to ``parser``.

    :returns: the loader (it has read ``clouds.yaml`` already).
    :raises exception.InvalidRequest: ``clouds.yaml`` cannot be read.
    """
    try:
        loader = os_config.OpenStackConfig()
        loader.register_argparse_arguments(parser, argv)
    except (os_exceptions.ConfigException, ks_exc.ClientException) as exc:
        raise exception.InvalidRequest(f"cloud configuration: {exc}") from None
    group = parser.add_argument_group(
        "identity without Keystone (with --os-auth-type admin_token or none)")
    group.add_argument("--project-id", metavar="<project>",
                       help="The project to act in (default: from a noauth token "
                            "'user:project').")
    group.add_argument("--user-id", metavar="<user>",
                       help="The user to act as (default: from a noauth token 'user:project').")
    group.add_argument("--role", metavar="<role>", action="append", dest="roles",
                       help="A role of the user (repeat for more; 'admin' sees every project).")
    return loader


def request_context(loader: os_config.OpenStackConfig,
                    options: argparse.Namespace) -> rpc_context.RequestContext:
    """The context to send, from ``options`` (parsed with :func:`register_arguments`).

    :raises exception.InvalidRequest: the cloud, the auth type or the options are wrong.
    :raises exception.NotAuthorized: Keystone refused the credentials.
    :raises exception.IdentityUnavailable: Keystone did not answer.
    """
    try:
        # Read first without loading the auth plugin: the no-Keystone form needs none
        # (keystoneauth's admin_token plugin would insist on an endpoint).
        region = loader.get_one(argparse=options, validate=False)
        auth_type = region.config.get("auth_type") or "password"
        if auth_type in NO_KEYSTONE:
            auth = dict(region.config.get("auth") or {})
            for key in ("token", "endpoint"):
                auth.setdefault(key, getattr(options, f"os_{key}", None))
            return _without_keystone(auth, options, region.get_region_name())
        region = loader.get_one(argparse=options, validate=True)
    except os_exceptions.ConfigException as exc:
        raise exception.InvalidRequest(f"cloud configuration: {exc}") from None
    except (ks_exc.ClientException, TypeError) as exc:  # an unknown auth type, a missing option
        raise exception.InvalidRequest(f"authentication options: {exc}") from None
    return _with_keystone(region)


def _without_keystone(auth: dict[str, typing.Any], options: argparse.Namespace,
                      region_name: str | None) -> rpc_context.RequestContext:
    token = auth.get("token")
    if not token:
        raise exception.InvalidRequest(
            "without Keystone, --os-token (or OS_TOKEN, or auth.token in clouds.yaml) is "
            "required", details={"field": "os_token"})
    user, _, project = token.partition(":") if ":" in token else (None, "", None)
    project = options.project_id or project or None
    user = options.user_id or user or None
    if not project:
        raise exception.InvalidRequest(
            "without Keystone, say which project to act in: --project-id (or a noauth "
            "token 'user:project')", details={"field": "project_id"})
    catalog = None
    endpoint = auth.get("endpoint")
    if endpoint:
        entry = {"interface": "public", "url": endpoint}
        if region_name:
            entry["region"] = entry["region_id"] = region_name
        catalog = [{"type": SERVICE_TYPE, "name": "manilav2", "endpoints": [entry]}]
    return rpc_context.RequestContext(auth_token=token, user_id=user, project_id=project,
                                      roles=list(options.roles or []),
                                      service_catalog=catalog)


def _with_keystone(region: typing.Any) -> rpc_context.RequestContext:
    try:
        session = region.get_session()
        access = session.auth.get_access(session)
    except ks_exc.Unauthorized as exc:
        raise exception.NotAuthorized(f"Keystone refused the credentials: {exc}") from None
    except (ks_exc.ConnectFailure, ks_exc.ConnectTimeout, ks_exc.DiscoveryFailure,
            ks_exc.SSLError) as exc:
        raise exception.IdentityUnavailable(
            f"Keystone could not be reached: {type(exc).__name__}") from None
    except (ks_exc.ClientException, os_exceptions.ConfigException) as exc:
        raise exception.InvalidRequest(f"authentication failed: {exc}") from None
    catalog = access.service_catalog.catalog if access.service_catalog else None
    return rpc_context.RequestContext(
        auth_token=access.auth_token, user_id=access.user_id, project_id=access.project_id,
        roles=list(access.role_names or []), service_catalog=catalog)
