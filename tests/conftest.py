"""Fixtures shared by every test tier: the ones in ``support.fixtures`` and this one."""

from __future__ import annotations

import pytest

pytest_plugins = ["support.fixtures"]


@pytest.fixture(autouse=True, scope="session")
def _manilaclient_cache_dir(tmp_path_factory):
    # python-manilaclient writes shell-completion caches under ~/.cache otherwise.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MANILACLIENT_UUID_CACHE_DIR",
                     str(tmp_path_factory.mktemp("manilaclient-cache")))
        yield
