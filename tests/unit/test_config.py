"""Options: registered on a passed-in ConfigOpts, listed for the generator, sample in sync."""

import pathlib
import subprocess
import sys

from oslo_config import cfg

from manila_protector import opts
from manila_protector.plugins import runtime
from manila_protector.worker import service

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
    assert groups == {"DEFAULT", "worker", "coordination", "manila", "service_user",
                      "keystone_authtoken", "metrics"}
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


def test_listing_options_changes_no_default_of_the_process():
    # A fresh interpreter: nothing else in it may have touched oslo.messaging's defaults.
    code = ("import oslo_messaging\n"
            "from oslo_config import cfg\n"
            "from manila_protector import opts\n"
            "opts.list_opts()\n"
            "conf = cfg.ConfigOpts()\n"
            "oslo_messaging.get_rpc_transport  # the library is loaded\n"
            "from oslo_messaging import opts as om\n"
            "for group, options in om.list_opts():\n"
            "    conf.register_opts(options, group=group)\n"
            "conf([])\n"
            "print(conf.control_exchange, conf.oslo_messaging_rabbit.amqp_durable_queues)\n")
    shown = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                           text=True, timeout=120).stdout.split()
    assert shown == ["openstack", "False"]


def test_the_sample_shows_the_workers_own_messaging_defaults():
    conf = cfg.ConfigOpts()
    service.prepare_conf(conf)
    conf([])
    sample = (ROOT / "etc/manila-protector.conf.sample").read_text().splitlines()
    assert f"#control_exchange = {conf.control_exchange}" in sample
    durable = str(conf.oslo_messaging_rabbit.amqp_durable_queues).lower()
    assert f"#amqp_durable_queues = {durable}" in sample
    assert conf.control_exchange == "manila_protector" and durable == "true"


def test_option_defaults_are_the_value_types_defaults():
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([])
    settings = runtime.PluginSettings.from_conf(conf)
    assert settings == runtime.PluginSettings()


def _sample_values() -> dict[tuple[str, str], str]:
    """``{(section, option): default as written}`` of the committed sample."""
    values, section = {}, None
    for line in (ROOT / "etc/manila-protector.conf.sample").read_text().splitlines():
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif line.startswith("#") and not line.startswith("# ") and (
                " = " in line or line.endswith(" =")):
            name, _, value = line[1:].partition(" =")
            value = value.strip()
            if len(value) > 1 and value[0] == value[-1] == '"':  # kept spaces are quoted
                value = value[1:-1]
            if name.isidentifier():
                values[(section, name)] = value
    return values


def test_the_sample_shows_every_default_the_worker_sets_itself():
    # Every option the worker reads, with the default the worker gives it (its own or the
    # library's), is written in the sample as that default: the sample cannot show
    # oslo.messaging's `amqp_durable_queues = false` while the worker declares durable queues.
    conf = cfg.ConfigOpts()
    service.prepare_conf(conf)
    sample = _sample_values()
    groups = [name for name in conf if isinstance(conf[name], cfg.ConfigOpts.GroupAttr)]
    names = {"DEFAULT": [name for name in conf if name not in groups]}
    names.update((group, list(conf[group])) for group in groups)
    checked, wrong = 0, []
    for group, options in names.items():
        for name in options:
            info = conf._get_opt_info(name, None if group == "DEFAULT" else group)
            opt = info["opt"]
            written = sample.get((group, opt.name))
            if (written is None or opt.sample_default is not None
                    or isinstance(opt, cfg.MultiStrOpt)):
                continue  # not in the sample's namespaces, or a placeholder (<current hostname>)

            def value(raw, opt=opt):
                return None if raw in (None, "<None>") else (
                    opt.type(raw) if isinstance(raw, str) else raw)

            checked += 1
            if value(written) != value(info.get("default", opt.default)):
                wrong.append(f"[{group}] {opt.name}: sample {written!r}, worker "
                             f"{info.get('default', opt.default)!r}")
    assert wrong == [], "run `tox -e genconfig` after wiring opts.set_lib_defaults"
    assert checked > 100
    assert sample[("oslo_messaging_rabbit", "amqp_durable_queues")] == "true"
    assert sample[("oslo_messaging_notifications", "driver")] == "messagingv2"
