"""The plugins' composition root: settings read once from ``[manila]``, and the
objects built from them for each request (a Manila client, the protection core,
the share catalog).

Karbor's adapters (``protection.py``, ``protectable.py``) and the worker both
build their core objects through a :class:`PluginRuntime`.
"""

from __future__ import annotations

import dataclasses
import random
import typing

from manila_protector import identity
from manila_protector import progress as progress_mod
from manila_protector.plugins import client_factory
from manila_protector.plugins import manila_client
from manila_protector.plugins import observe
from manila_protector.plugins import share_catalog
from manila_protector.plugins import share_protector
from manila_protector.plugins import values
from manila_protector.plugins import waiting


@dataclasses.dataclass(frozen=True)
class PluginSettings:
    """How the core polls, how long each operation may take, how big a list page is.

    The defaults here are the ``[manila]`` options' defaults (``opts.py`` reads them).
    """

    wait_policy: waiting.WaitPolicy = waiting.WaitPolicy()
    timeouts: values.Timeouts = values.Timeouts()
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
            timeouts=values.Timeouts(
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

    :param settings: waits, deadlines, page size.
    :param factory: builds Manila clients.
    :param clock: the waits' clock (default: the system's; tests drive a virtual one).
    :param rng: the waits' jitter (default: a fresh ``random.Random``).
    :param observer: told of every wait's polls (the worker's metrics; default: nothing).
    """

    def __init__(
        self,
        settings: PluginSettings,
        factory: client_factory.ClientFactory,
        clock: waiting.Clock | None = None,
        rng: random.Random | None = None,
        observer: observe.Observer = observe.NOTHING,
    ) -> None:
        self.settings = settings
        self.factory = factory
        self.clock = clock or waiting.SystemClock()
        self._rng = rng
        self._observer = observer
        # What each kind of change usually takes, learnt across this process's jobs.
        self.expected = waiting.Expected()

    @classmethod
    def from_conf(cls, conf: typing.Any, group: str = "manila",
                  observer: observe.Observer = observe.NOTHING) -> PluginRuntime:
        """Settings and client factory from ``[group]``; ``observer`` sees every Manila
        response and every wait."""
        return cls(PluginSettings.from_conf(conf, group),
                   client_factory.ClientFactory.from_conf(conf, group, observer=observer),
                   observer=observer)

    def client(self, caller: identity.Caller) -> manila_client.ManilaClient:
        """A Manila client acting for ``caller``, with the caller's token."""
        return self.factory.for_caller(caller)

    def protector(
        self,
        manila: manila_client.ManilaClient,
        guard: typing.Callable[[str], None] | None = None,
        token_expires_in: float | None = None,
        progress: progress_mod.Observer = progress_mod.SILENT,
    ) -> share_protector.ShareProtector:
        """The core acting through ``manila``; ``guard`` runs before each mutating request;
        ``token_expires_in`` bounds the job by the caller's token; ``progress`` hears its
        phases."""
        return share_protector.ShareProtector(
            manila, waiting.Waiter(self.settings.wait_policy, self.clock, self._rng,
                                    observer=self._observer, expected=self.expected),
            self.settings.timeouts, guard=guard, token_expires_in=token_expires_in,
            progress=progress,
        )

    def catalog(self, manila: manila_client.ManilaClient) -> share_catalog.ShareCatalog:
        return share_catalog.ShareCatalog(manila, self.settings.list_page_size)
