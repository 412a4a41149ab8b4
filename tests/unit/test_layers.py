"""The layers point one way: a wrong-way import fails this test.

plugins/ knows Manila and Karbor; rpc/ knows oslo.messaging; worker/ knows jobs,
locks and the journal.  Only the worker's service module wires rpc/ and worker/
together; the RPC client imports nothing of the server side, and in plugins/
only the dispatch module (Karbor's worker mode) uses it; no product module but
the demo imports the Manila stand-in.
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "manila_protector"

#: (importer prefix, forbidden import prefix, unless the importer is one of these)
_DISPATCH = frozenset({"manila_protector.plugins.dispatch"})

RULES: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("manila_protector.plugins", "manila_protector.rpc", _DISPATCH),
    ("manila_protector.plugins", "manila_protector.rpc.endpoint", frozenset()),
    ("manila_protector.plugins", "manila_protector.rpc.notifier", frozenset()),
    ("manila_protector.plugins", "manila_protector.worker", frozenset()),
    ("manila_protector.plugins", "manila_protector.jobs", _DISPATCH),
    ("manila_protector.rpc", "manila_protector.worker", frozenset()),
    ("manila_protector.worker", "manila_protector.rpc",
     frozenset({"manila_protector.worker.service"})),
    ("manila_protector.rpc.api", "manila_protector.rpc.endpoint", frozenset()),
    ("manila_protector.rpc.api", "manila_protector.rpc.notifier", frozenset()),
    ("manila_protector.rpc.context", "manila_protector.rpc.endpoint", frozenset()),
    ("manila_protector.rpc.contract", "manila_protector.rpc.endpoint", frozenset()),
    ("manila_protector", "manila_standin", frozenset({"manila_protector.demo"})),
    # The CLI is a client: the RPC API and nothing of the worker's side.
    ("manila_protector.cli", "manila_protector.worker", frozenset()),
    ("manila_protector.cli", "manila_protector.rpc.endpoint", frozenset()),
    ("manila_protector.cli", "manila_protector.rpc.notifier", frozenset()),
    ("manila_protector.cli", "manila_protector.plugins", frozenset()),
    ("manila_protector.plugins", "manila_protector.cli", frozenset()),
    ("manila_protector.worker", "manila_protector.cli", frozenset()),
)


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str) -> set[str]:
    """Every module a source file imports (``from x import y`` counts as ``x`` and ``x.y``)."""
    found: set[str] = set()
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(modules: dict[str, str]) -> list[str]:
    """``importer -> imported`` for every import the rules forbid."""
    found = []
    for module, source in sorted(modules.items()):
        for imported in sorted(imported_modules(source, module)):
            for importer, forbidden, allowed in RULES:
                if (_under(module, importer) and _under(imported, forbidden)
                        and module not in allowed):
                    found.append(f"{module} -> {imported}")
    return sorted(set(found))


def product_modules() -> dict[str, str]:
    return {module_name(path): path.read_text() for path in PACKAGE.rglob("*.py")}


def test_no_product_module_imports_the_wrong_way():
    assert violations(product_modules()) == []


@pytest.mark.parametrize(("module", "source", "expected"), [
    ("manila_protector.plugins.protect", "from manila_protector.worker import locks",
     "manila_protector.plugins.protect -> manila_protector.worker"),
    ("manila_protector.rpc.notifier", "import manila_protector.worker.runner",
     "manila_protector.rpc.notifier -> manila_protector.worker.runner"),
    ("manila_protector.worker.runner", "from manila_protector.rpc import endpoint",
     "manila_protector.worker.runner -> manila_protector.rpc"),
    ("manila_protector.rpc.api", "from . import endpoint",
     "manila_protector.rpc.api -> manila_protector.rpc.endpoint"),
    ("manila_protector.worker.runner", "import manila_standin",
     "manila_protector.worker.runner -> manila_standin"),
    ("manila_protector.plugins.dispatch", "from manila_protector.rpc import endpoint",
     "manila_protector.plugins.dispatch -> manila_protector.rpc.endpoint"),
    ("manila_protector.plugins.protect", "from manila_protector.rpc import api",
     "manila_protector.plugins.protect -> manila_protector.rpc"),
])
def test_a_wrong_way_import_is_reported(module, source, expected):
    assert expected in violations({module: source})


def test_the_wiring_module_may_import_both_sides():
    source = "from manila_protector.rpc import endpoint\nfrom manila_protector.worker import runner"
    assert violations({"manila_protector.worker.service": source}) == []


@pytest.mark.parametrize(("entry", "absent"), [
    # What Karbor and the CLI import: the client must not drag in the server side.
    ("manila_protector.rpc.api", ("manila_protector.worker", "manila_protector.rpc.endpoint",
                                  "manila_protector.rpc.notifier", "manila_standin", "tooz")),
    ("manila_protector.plugins.protection", ("manila_protector.worker",
                                             "manila_protector.rpc.endpoint", "manila_standin",
                                             "tooz")),
    ("manila_protector.plugins.protectable", ("manila_protector.worker", "manila_standin",
                                              "tooz", "prometheus_client")),
    # The plugins run inside Karbor, where prometheus_client need not be installed.
    ("manila_protector.plugins.runtime", ("manila_protector.worker", "prometheus_client")),
    ("manila_protector.cli.shell", ("manila_protector.worker", "manila_protector.rpc.endpoint",
                                    "manila_standin", "tooz", "oslo_db")),
])
def test_what_karbor_imports_loads_nothing_of_the_server_side(entry, absent):
    code = (f"import sys, {entry}\n"
            f"print('\\n'.join(m for m in {list(absent)!r} "
            f"if any(k == m or k.startswith(m + '.') for k in sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                            text=True, timeout=120).stdout.split()
    assert loaded == []
