"""The Manila stand-in is a tool of this repository, not part of the product.

It lives in its own distribution (standin/, manila-protector-standin) and the
product's wheel does not carry it. That only the demo imports it is a layering
rule: tests/unit/test_layers.py.
"""

import configparser
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_product_package_holds_no_standin():
    assert not (ROOT / "manila_protector" / "standin").exists()
    assert (ROOT / "standin" / "manila_standin" / "__init__.py").exists()


def test_every_standin_module_loads_without_the_product():
    probe = (
        "import importlib, pkgutil, sys, manila_standin\n"
        "for found in pkgutil.walk_packages(manila_standin.__path__, 'manila_standin.'):\n"
        "    importlib.import_module(found.name)\n"
        "print(sorted(name for name in sys.modules if name.startswith('manila_protector')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_the_product_names_the_standin_only_in_its_test_and_demo_extras():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    extras = {name: value.split() for name, value in setup["options.extras_require"].items()}
    assert {name for name, reqs in extras.items() if "manila-protector-standin" in reqs} == {
        "test", "demo"}
    assert "manila-protector-standin" not in setup["options"]["install_requires"]
    assert "standin" not in setup["options.entry_points"]["console_scripts"]


def test_the_demo_and_test_extras_bring_everything_the_worker_extra_does():
    # The demo runs a whole worker (its job store included): `pip install .[demo]` alone
    # must be enough for manila-protector-demo.
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    extras = {name: set(value.split()) for name, value in
              setup["options.extras_require"].items()}
    assert extras["worker"] <= extras["demo"]
    assert extras["worker"] <= extras["test"]
