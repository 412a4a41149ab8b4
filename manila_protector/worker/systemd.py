"""systemd's readiness protocol (``Type=notify``), without a dependency for it.

:func:`notify` sends a state line (``READY=1``, ``STOPPING=1``) to the socket
systemd names in ``NOTIFY_SOCKET``; outside systemd it does nothing.
"""

from __future__ import annotations

import os
import socket


def notify(state: str) -> bool:
    """Tell systemd ``state``; False where no systemd listens (or the send failed)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
    except OSError:
        return False
    return True
