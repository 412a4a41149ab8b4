"""Options: registered on a passed-in ConfigOpts, listed for the generator, sample in sync."""

import pathlib
import subprocess
import sys

from oslo_config import cfg

from manila_protector import opts

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_importing_registers_nothing_on_the_global_conf():
    assert "worker" not in cfg.CONF
    assert "coordination" not in cfg.CONF


def test_fixed_option_names_are_registered_with_their_defaults():
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([])
    assert conf.worker.topic == "manila_protector"
    assert conf.worker.max_concurrent_jobs >= 1
    assert conf.coordination.backend_url is None  # file:// under state_path
    assert conf.coordination.lock_wait == 30
    assert conf.state_path
    assert conf.host
    assert conf.manila.service_type == "sharev2"
    assert conf.manila.poll_backoff_factor == 1.25
    assert conf.manila.endpoint_override is None
    assert conf.manila.auth_type is None


def test_registering_twice_is_harmless():
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    opts.register_opts(conf)
    opts.register_manila_opts(conf)
    conf([])
    assert conf.manila.list_page_size == 1000


def test_list_opts_covers_every_group():
    groups = {group for group, _ in opts.list_opts()}
    assert groups == {"DEFAULT", "worker", "coordination", "manila"}
    manila = dict(opts.list_opts())["manila"]
    names = {o.dest for o in manila}
    assert {"endpoint_override", "auth_type", "cafile", "timeout", "protect_timeout",
            "poll_initial_interval", "password", "username", "auth_url"} <= names


def test_generated_sample_config_is_in_sync(tmp_path):
    # A fresh interpreter: other tests change oslo.messaging's process-wide defaults.
    output = tmp_path / "sample.conf"
    subprocess.run(
        [sys.executable, "-m", "oslo_config.generator", "--config-file",
         str(ROOT / "etc/oslo-config-generator/manila-protector.conf"),
         "--output-file", str(output)], check=True, capture_output=True, timeout=120)
    committed = (ROOT / "etc/manila-protector.conf.sample").read_text()
    assert output.read_text() == committed, (
        "etc/manila-protector.conf.sample is stale: run `tox -e genconfig`")
