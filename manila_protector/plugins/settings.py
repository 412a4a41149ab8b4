"""The plugin core's settings, read once from a ``[manila]`` option group."""

from __future__ import annotations

import dataclasses
import typing

from manila_protector.plugins import manila_client
from manila_protector.plugins import share_catalog
from manila_protector.plugins import share_protector
from manila_protector.plugins import waiting


@dataclasses.dataclass(frozen=True)
class PluginSettings:
    """How the core polls, how long each operation may take, how big a list page is."""

    wait_policy: waiting.WaitPolicy = waiting.WaitPolicy()
    timeouts: share_protector.Timeouts = share_protector.Timeouts()
    list_page_size: int = 1000

    @classmethod
    def from_conf(cls, conf: typing.Any, group: str = "manila") -> PluginSettings:
        """Read the settings registered by ``opts.register_manila_opts``."""
        section = getattr(conf, group)
        return cls(
            wait_policy=waiting.WaitPolicy(
                initial_interval=section.poll_initial_interval,
                backoff_factor=section.poll_backoff_factor,
                max_interval=max(section.poll_max_interval, section.poll_initial_interval),
                jitter=section.poll_jitter,
                first_delay=section.poll_first_delay,
            ),
            timeouts=share_protector.Timeouts(
                protect=section.protect_timeout,
                restore=section.restore_timeout,
                delete=section.delete_timeout,
                verify=section.verify_timeout,
                cleanup=section.cleanup_timeout,
            ),
            list_page_size=section.list_page_size,
        )


class PluginRuntime:
    """What the plugins share: settings, a client factory and a clock.

    Builds the core objects (:class:`ShareProtector`, :class:`ShareCatalog`) for
    a request context.  Karbor's adapters and the worker both use it.
    """

    def __init__(
        self,
        settings: PluginSettings,
        factory: manila_client.ClientFactory,
        clock: waiting.Clock | None = None,
    ) -> None:
        self.settings = settings
        self.factory = factory
        self.clock = clock or waiting.SystemClock()

    @classmethod
    def from_conf(cls, conf: typing.Any, group: str = "manila") -> PluginRuntime:
        return cls(PluginSettings.from_conf(conf, group),
                   manila_client.ClientFactory.from_conf(conf, group))

    def client(self, context: typing.Any) -> manila_client.ManilaClient:
        """A Manila client acting for ``context`` (Karbor's or an oslo.context one)."""
        return self.factory.for_context(
            auth_token=getattr(context, "auth_token", None),
            service_catalog=getattr(context, "service_catalog", None),
            is_admin=bool(getattr(context, "is_admin", False)),
        )

    def protector(
        self,
        manila: manila_client.ManilaClient,
        guard: typing.Callable[[str], None] | None = None,
    ) -> share_protector.ShareProtector:
        """The core acting through ``manila``; ``guard`` runs before each mutating request."""
        return share_protector.ShareProtector(
            manila, waiting.Waiter(self.settings.wait_policy, self.clock), self.settings.timeouts,
            guard=guard,
        )

    def catalog(self, manila: manila_client.ManilaClient) -> share_catalog.ShareCatalog:
        return share_catalog.ShareCatalog(manila, self.settings.list_page_size)
