"""A worker caps glibc's malloc arenas before its threads start, unless the operator
chose otherwise in the environment."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

CODE = "from manila_protector.worker import threads; print(threads.limit_malloc_arenas())"


def _run(env_extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")}
    env.update(env_extra)
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                          env=env, check=True, timeout=120)
    return done.stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_the_arenas_are_capped_on_glibc():
    assert _run({}) == "True"


@pytest.mark.parametrize("env", [{"MALLOC_ARENA_MAX": "4"},
                                 {"GLIBC_TUNABLES": "glibc.malloc.arena_max=4"}])
def test_the_operators_own_setting_is_left_alone(env):
    assert _run(env) == "False"
