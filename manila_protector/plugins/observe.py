"""What the plugin core reports as it works, for whoever wants to count it.

The core knows nothing of metrics: it calls an :class:`Observer`, whose methods
do nothing.  The worker hands in one that feeds its Prometheus metrics
(``worker/metrics.py``); Karbor's adapters keep the default, so the plugins
import no metrics library.
"""

from __future__ import annotations


class Observer:
    """Hooks the core calls; each does nothing here (subclass to count)."""

    def manila_request(self, method: str, status: int) -> None:
        """An HTTP response from Manila (or Keystone, on the Manila client's session).

        :param method: the HTTP method (``GET``, ``POST``...).
        :param status: the HTTP status code.
        """

    def wait_finished(self, polls: int, outcome: str) -> None:
        """A wait for a Manila status ended.

        :param polls: how many times the status was read.
        :param outcome: ``done``, ``deadline`` (the deadline passed) or ``error``.
        """


#: The observer used where none is given.
NOTHING = Observer()
