"""The installed release of manila_protector (what ``--version`` and ``ping`` show)."""

from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "manila-protector"


def version_string() -> str:
    """The installed distribution's version, or ``unknown`` for an uninstalled tree."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"
