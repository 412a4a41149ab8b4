"""The release of manila_protector, as its installed distribution says (``--version``)."""

from __future__ import annotations

from importlib import metadata

#: The distribution name (setup.cfg ``[metadata] name``).
DISTRIBUTION = "manila-protector"


def version_string() -> str:
    """The installed release (``0.1.0``), or ``unknown`` when run from an uninstalled tree."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"
