"""Karbor 1.6.0's objects as a protection plugin sees them, and its provider loading.

Karbor itself runs in the Karbor tier (tests/karbor); these stand in for its bank,
checkpoint, Restore and Verification objects where a test drives the plugin hooks
in this process, exactly as karbor-contract.md records Karbor calling them.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import typing
import uuid

from oslo_config import cfg
from stevedore import driver

SHARE_TYPE = "OS::Manila::Share"
PROJECT_TYPE = "OS::Keystone::Project"
PROVIDER_FILE = pathlib.Path(__file__).parents[2] / "etc" / "providers.d" / "manila-share.conf"
HOOKS = ("on_prepare_begin", "on_prepare_finish", "on_main", "on_complete")

#: Karbor's own provider options (karbor/services/protection/provider.py, 1.6.0).
KARBOR_PROVIDER_OPTS = [
    cfg.MultiStrOpt("plugin", default=""),
    cfg.StrOpt("bank", default=""),
    cfg.StrOpt("description", default=""),
    cfg.StrOpt("name", default=""),
    cfg.StrOpt("id", default=""),
    cfg.BoolOpt("enabled", default=False),
]


class BankGetObjectFailed(KeyError):
    """What Karbor's bank raises for a missing object."""


class BankSection:
    """A checkpoint's section for one resource; objects are stored as JSON, as a bank does."""

    def __init__(self) -> None:
        self._objects: dict[str, str] = {}

    def update_object(self, key: str, value: typing.Any) -> None:
        self._objects[key] = json.dumps(value)

    def get_object(self, key: str) -> typing.Any:
        if key not in self._objects:
            raise BankGetObjectFailed(key)
        return json.loads(self._objects[key])

    def delete_object(self, key: str) -> None:
        self._objects.pop(key, None)

    def has(self, key: str) -> bool:
        return key in self._objects


class Checkpoint:
    def __init__(self) -> None:
        self.id = str(uuid.uuid4())
        self.sections: dict[str, BankSection] = {}

    def get_resource_bank_section(self, resource_id: str) -> BankSection:
        return self.sections.setdefault(resource_id, BankSection())


class Restore:
    """Karbor's Restore object: per-resource status, then save()."""

    def __init__(self) -> None:
        self.id = str(uuid.uuid4())
        self.calls: list[tuple] = []

    def update_resource_status(self, resource_type, resource_id, status, reason=None):
        self.calls.append(("update", resource_type, resource_id, status, reason))

    def save(self):
        self.calls.append(("save",))


class Verify:
    def __init__(self) -> None:
        self.id = str(uuid.uuid4())
        self.calls: list[tuple] = []

    def update_resource_status(self, resource_type, resource_id, status, reason=None):
        self.calls.append((resource_type, resource_id, status, reason))


@dataclasses.dataclass
class KarborContext:
    """The attributes of Karbor's RequestContext a plugin may read."""

    user_id: str
    project_id: str
    project_name: str
    roles: list[str]
    is_admin: bool
    auth_token: str | None
    service_catalog: list[dict[str, typing.Any]]
    auth_token_info: dict | None = None
    request_id: str = dataclasses.field(default_factory=lambda: f"req-{uuid.uuid4()}")

    def to_dict(self) -> dict[str, typing.Any]:
        """The keys Karbor 1.6.0's ``RequestContext.to_dict`` gives (what travels over RPC)."""
        return {
            "auth_token": self.auth_token, "user": self.user_id, "tenant": self.project_id,
            "is_admin": self.is_admin, "request_id": self.request_id,
            "user_id": self.user_id, "project_id": self.project_id,
            "project_name": self.project_name, "roles": list(self.roles),
            "read_deleted": "no", "remote_address": None, "quota_class": None,
            "timestamp": "2026-12-02T00:00:00.000000",
            "service_catalog": self.service_catalog, "auth_token_info": self.auth_token_info,
        }


class OperationLog:
    """Karbor passes its operation log object; plugins do not touch it."""


def run_hooks(operation, checkpoint, resource, context, parameters, **kwargs):
    """Call the four hooks in Karbor's order (one resource: no parents or children)."""
    for name in HOOKS:
        getattr(operation, name)(checkpoint, resource, context, parameters, **kwargs)


def sharev2_catalog(endpoint):
    return [
        {"type": "identity", "name": "keystone", "endpoints": [
            {"interface": "public", "region": "RegionOne", "region_id": "RegionOne",
             "url": "http://keystone.example.org/identity/v3"}]},
        {"type": "sharev2", "name": "manilav2", "endpoints": [
            {"interface": "admin", "region": "RegionOne", "region_id": "RegionOne",
             "url": "http://127.0.0.1:9/v2"},
            {"interface": "public", "region": "RegionOne", "region_id": "RegionOne",
             "url": endpoint}]},
    ]


def write_provider_file(tmp_path: pathlib.Path, manila_lines: typing.Iterable[str] = (),
                        sections: dict[str, dict[str, str]] | None = None) -> pathlib.Path:
    """A copy of etc/providers.d/manila-share.conf with ``manila_lines`` in ``[manila]``
    and ``sections`` ({section: {option: value}}) added."""
    text = PROVIDER_FILE.read_text()
    assert "\n[manila]\n" in text
    extra = "".join(f"{line}\n" for line in manila_lines)
    text = text.replace("\n[manila]\n", "\n[manila]\n" + extra)
    for section, options in (sections or {}).items():
        text += f"\n[{section}]\n" + "".join(f"{k} = {v}\n" for k, v in options.items())
    path = tmp_path / "manila-share.conf"
    path.write_text(text)
    return path


def karbor_provider_config(path):
    """Exactly what Karbor's ProviderRegistry does with a provider file."""
    provider_config = cfg.ConfigOpts()
    provider_config(args=["--config-file=" + str(path)])
    provider_config.register_opts(KARBOR_PROVIDER_OPTS, "provider")
    return provider_config


def load_protection_plugin(provider_config):
    """Karbor's provider: load the class by entry point, make the loading calls, build it."""
    plugin_class = None
    for name in provider_config.provider.plugin:
        plugin_class = driver.DriverManager("karbor.protections", name).driver
        for resource_type in plugin_class.get_supported_resources_types():
            plugin_class.get_options_schema(resource_type)
            plugin_class.get_restore_schema(resource_type)
            plugin_class.get_saved_info_schema(resource_type)
            plugin_class.get_verify_schema(resource_type)
    return plugin_class(provider_config)
