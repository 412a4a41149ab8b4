"""Every error code a caller can meet is in doc/notifications.rst's table, with its
retryability as the code has it."""

from __future__ import annotations

import os
import re

from manila_protector import exception

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "doc", "notifications.rst")
#: Codes no caller ever receives: the worker acts on them itself.
INTERNAL = {"not_owner"}
ROW = re.compile(r"^``(?P<code>[a-z_]+)``\s+(?P<retryable>yes|no)\s+\S")


def _documented() -> dict[str, bool]:
    with open(DOC, encoding="utf-8") as handle:
        text = handle.read()
    table = text.split("Error codes\n===========\n", 1)[1]
    return {m["code"]: m["retryable"] == "yes"
            for m in map(ROW.match, table.splitlines()) if m}


def _raised() -> dict[str, bool]:
    found: dict[str, bool] = {}
    pending: list[type[exception.ProtectorError]] = [exception.ProtectorError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls is not exception.GuardRefused and cls.code not in INTERNAL:
            found[cls.code] = cls.retryable
    return found


def test_every_error_code_is_documented_with_its_retryability():
    documented = _documented()
    assert documented == _raised()
