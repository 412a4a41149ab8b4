"""Every example in ``doc/usage.rst`` and ``doc/rpc.rst`` runs, as printed.

Each literal block of the two documents is taken from the .rst and run:

* ``python`` blocks are executed, in document order, against a worker process on the
  real RabbitMQ and the Manila stand-in; the names an example leaves to the reader
  (``transport_url``, ``token``, ``user``, ``project``, ``share_id``,
  ``manila_endpoint``) are the test's;
* the workers' ``ini`` block configures that worker, started with the document's own
  ``console`` command; the provider file's ``[dispatch]`` block is loaded into the
  protection plugin as Karbor loads it, and its hook's job runs on that worker;
* ``text`` blocks are what the reader is told to expect: the worker's log lines (each
  line's shape is found in the worker's log) and the job record (its keys are a real
  record's);
* the remaining ``console`` blocks install the package (from a checkout or its wheel,
  named for the distribution: it is on no package index) or are Karbor's CLI, which
  this machine has no karbor-api for: each
  command names one of the calls the Karbor tier (``tests/karbor``) drives through
  Karbor's own code.

A block no rule covers fails the test: a new example must come with a way to run it.

The worker is on a RabbitMQ vhost of the module's own, so that the examples run with
the client's defaults (exchange and topic ``manila_protector``) without meeting
another worker on the machine's broker.
"""

from __future__ import annotations

import configparser
import contextlib
import io
import os
import pathlib
import re
import shlex
import subprocess
import sys
import typing
import uuid

import pytest
from oslo_config import cfg

from manila_protector import exception
from manila_protector.plugins import resources
from manila_protector.rpc import api as rpc_api
from manila_standin import config as standin_config
from manila_standin import server as standin_server

from support import doc_blocks
from support import fixtures
from support import karbor_shapes
from support import rabbit

pytestmark = pytest.mark.functional

ROOT = pathlib.Path(__file__).resolve().parents[2]
USAGE = ROOT / "doc" / "usage.rst"
RPC = ROOT / "doc" / "rpc.rst"
#: Seconds to wait for the worker or for Manila.
WAIT = 60.0
#: The calls of python-karborclient the usage example makes, and what of Karbor the
#: Karbor tier runs for each (tests/karbor/driver.py).
KARBOR_COMMANDS = {
    "provider-list": "ProviderRegistry loading the provider file",
    "protectable-list": "protectables types",
    "protectable-list-instances": "protectables list",
    "plan-create": "PlansController's checks, Plan",
    "checkpoint-create": "protect",
    "checkpoint-show": "the checkpoint in the bank",
    "restore-create": "restore",
}
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _blocks(path: pathlib.Path, language: str) -> list[doc_blocks.Block]:
    return [b for b in doc_blocks.blocks(path) if b.language == language]


def _run(block: doc_blocks.Block, namespace: dict[str, typing.Any]) -> str:
    """Execute a python block in ``namespace``; returns what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block.text, block.where, "exec"), namespace)  # noqa: S102
    return out.getvalue()


def _rabbitmqctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, check=False)


@pytest.fixture(scope="module")
def vhost_url(rabbitmq_answers: None) -> typing.Iterator[str]:
    """A transport URL on a RabbitMQ vhost of this module's own (deleted afterwards)."""
    name = f"mp_doc_{uuid.uuid4().hex[:10]}"
    for args in (("add_vhost", name), ("set_permissions", "-p", name, "guest", ".*", ".*",
                                       ".*")):
        try:
            done = _rabbitmqctl(*args)
        except FileNotFoundError as exc:
            fixtures.unavailable(f"rabbitmqctl is needed for a vhost of the test's own: {exc}")
        if done.returncode != 0:
            fixtures.unavailable(f"rabbitmqctl {' '.join(args)} failed: {done.stderr}")
    yield f"rabbit://guest:guest@{rabbit.RABBIT_HOST}:{rabbit.RABBIT_PORT}/{name}"
    _rabbitmqctl("delete_vhost", name)


@pytest.fixture(scope="module")
def standin() -> typing.Iterator[standin_server.ManilaStandIn]:
    """The Manila stand-in of the module, without quotas."""
    config = standin_config.StandInConfig(quotas=standin_config.Quotas(
        shares=-1, gigabytes=-1, snapshots=-1, snapshot_gigabytes=-1))
    running = standin_server.ManilaStandIn(config).start()
    yield running
    running.stop()


class DocWorker:
    """The worker the usage document describes, started with its own command."""

    def __init__(self, root: pathlib.Path, transport_url: str, endpoint: str) -> None:
        [worker_ini] = [b for b in _blocks(USAGE, "ini") if "[worker]" in b.text]
        [command] = [b for b in _blocks(USAGE, "console")
                     if "manila-protector-worker" in b.text]
        parsed = configparser.ConfigParser(interpolation=None)
        parsed.read_string(worker_ini.text)
        # The document's placeholders (example.org) become this machine's services.
        parsed["DEFAULT"]["transport_url"] = transport_url
        parsed["DEFAULT"]["state_path"] = str(root / "state")
        parsed["coordination"]["backend_url"] = rabbit.REDIS_URL
        # The rpc.rst examples send contexts without a catalog (the document says
        # endpoint_override is the other way), and the stand-in settles quickly.
        parsed["manila"] = {"endpoint_override": endpoint, "poll_max_interval": "0.5"}
        self.path = root / "manila-protector.conf"
        with open(self.path, "w") as out:
            parsed.write(out)
        self.topic = parsed["worker"]["topic"]
        self.log_path = root / "worker.log"
        argv = shlex.split(command.text.strip().removeprefix("$ "))
        assert argv[0] == "manila-protector-worker" and argv[1] == "--config-file", argv
        argv[0] = str(pathlib.Path(sys.executable).parent / argv[0])
        argv[2] = str(self.path)
        self._log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL,
                                      env=dict(os.environ, PYTHONUNBUFFERED="1"))

    def wait_ready(self, client: rpc_api.ProtectorAPI) -> None:
        ctxt = fixtures.member_context("probe")

        def answers() -> bool:
            assert self.popen.poll() is None, f"the worker exited:\n{self.log()}"
            try:
                client.get_job(ctxt, str(uuid.uuid4()))
            except exception.NotFound:
                return True
            except exception.WorkerUnavailable:
                return False
            return False

        rabbit.wait_until(answers, WAIT, "the documented worker to answer")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.popen.terminate()
        try:
            self.popen.wait(rabbit.TEARDOWN_KILL_AFTER)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        self._log.close()


@pytest.fixture(scope="module")
def doc_worker(vhost_url, standin, redis_answers,
               tmp_path_factory) -> typing.Iterator[DocWorker]:
    worker = DocWorker(tmp_path_factory.mktemp("doc-worker"), vhost_url, standin.endpoint)
    conf = _caller_conf()
    transport = rpc_api.get_transport(conf, vhost_url)
    try:
        worker.wait_ready(rpc_api.ProtectorAPI(transport, timeout=2))
        yield worker
    finally:
        transport.cleanup()
        worker.stop()
        print(f"---- the documented worker's log\n{worker.log()[-4000:]}")


def _caller_conf() -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    rpc_api.prepare_conf(conf)
    conf([])
    return conf


@pytest.fixture
def rpc_namespace(doc_worker, vhost_url, standin, project) -> dict[str, typing.Any]:
    """What ``doc/rpc.rst``'s first block leaves the reader: its names, after running it
    with this test's ``transport_url`` and caller."""
    namespace = {"transport_url": vhost_url, "token": f"alice:{project}", "user": "alice",
                 "project": project}
    [setup] = [b for b in _blocks(RPC, "python") if "api.ProtectorAPI(" in b.text]
    _run(setup, namespace)
    yield namespace
    namespace["transport"].cleanup()


def test_every_rpc_example_runs_against_a_worker_as_printed(rpc_namespace, standin, project):
    share = standin.create_share(project, size=1, name="doc", access_rules=[
        {"access_type": "ip", "access_to": "10.0.0.0/24", "access_level": "rw"}])
    namespace = dict(rpc_namespace, share_id=share["id"])
    setup, *examples = _blocks(RPC, "python")
    assert "api.ProtectorAPI(" in setup.text

    printed = "".join(_run(block, namespace) for block in examples)

    # A protect, a restore into a new share (rules back), a revert, a job asked twice.
    restored = standin.share(namespace["new_share_id"])
    assert (restored["name"], restored["status"]) == ("restored", "available")
    assert [r["access_to"] for r in standin.access_rules(restored["id"])] == ["10.0.0.0/24"]
    assert [s["name"] for s in standin.snapshots(share_id=share["id"])
            if s["name"] == "once"] == ["once"]
    # list_jobs printed the share's jobs, newest first: the job asked twice, once.
    listed = [line.split() for line in printed.splitlines()]
    assert listed[0] == [namespace["job_id"], "protect", "succeeded"]
    assert [row[0] for row in listed].count(namespace["job_id"]) == 1
    # The delete by cast: the first snapshot goes.
    saved = namespace["saved_info"]
    rabbit.wait_until(lambda: all(s["id"] != saved["snapshot_id"]
                                  for s in standin.snapshots(share_id=share["id"])),
                      WAIT, "the cast delete to delete the snapshot")
    # The job record's documented keys are a record's keys.
    [record_block] = [b for b in _blocks(RPC, "text") if b.text.startswith('{"job_id"')]
    documented = set(re.findall(r'"(\w+)":', record_block.text))
    assert documented == set(namespace["first"])


def test_the_usage_examples_for_the_worker_and_for_python_run_as_printed(
        rpc_namespace, standin, project):
    share = standin.create_share(project, size=1, name="usage")
    through_worker, directly = _blocks(USAGE, "python")
    namespace = dict(rpc_namespace, share_id=share["id"])

    _run(through_worker, namespace)

    restored = standin.share(namespace["restored"]["result"]["share_id"])
    assert restored["status"] == "available"
    assert standin.snapshots(share_id=share["id"]) == []

    namespace = {"manila_endpoint": standin.endpoint, "token": f"alice:{project}",
                 "project": project, "share_id": share["id"]}
    _run(directly, namespace)

    assert standin.share(namespace["result"].share_id)["name"] == "restored"
    assert standin.snapshots(share_id=share["id"]) == []


def test_the_provider_files_dispatch_section_sends_karbors_hook_to_the_worker(
        doc_worker, vhost_url, standin, project, tmp_path):
    [dispatch_block] = [b for b in _blocks(USAGE, "ini") if "[dispatch]" in b.text]
    parsed = configparser.ConfigParser(interpolation=None)
    parsed.read_string(dispatch_block.text)
    section = dict(parsed["dispatch"])
    assert (section["mode"], section["topic"]) == ("worker", doc_worker.topic)
    section["transport_url"] = vhost_url  # the document's placeholder: this machine's
    plugin = karbor_shapes.load_protection_plugin(karbor_shapes.karbor_provider_config(
        karbor_shapes.write_provider_file(tmp_path, sections={"dispatch": section})))
    share = standin.create_share(project, size=1, name="karbor")
    context = karbor_shapes.KarborContext(
        user_id="alice", project_id=project, project_name="demo", roles=["member", "reader"],
        is_admin=False, auth_token=f"alice:{project}",
        service_catalog=karbor_shapes.sharev2_catalog(standin.endpoint))
    checkpoint = karbor_shapes.Checkpoint()
    resource = resources.Resource(karbor_shapes.SHARE_TYPE, share["id"], share["name"])

    try:
        karbor_shapes.run_hooks(plugin.get_protect_operation(resource), checkpoint, resource,
                                context,
                                {"snapshot_name": "n", "description": "", "force": "False"},
                                operation_log=karbor_shapes.OperationLog())
    finally:
        plugin.dispatch.close()

    assert checkpoint.get_resource_bank_section(share["id"]).get_object("status") == "available"
    [snapshot] = standin.snapshots(share_id=share["id"])
    # What the operator is told the worker logs, for this very job.
    [log_block] = [b for b in _blocks(USAGE, "text") if "protect accepted" in b.text]
    log = doc_worker.log()
    for documented in log_block.text.strip().splitlines():
        shape = UUID.join(re.escape(part) for part in re.split(UUID, documented.strip()))
        assert re.search(shape, log), f"no line like {documented!r} in the worker's log"
    assert f"(share {share['id']}): protect accepted" in log
    assert f"(share {share['id']}): protect succeeded" in log
    assert snapshot["id"] in log


def test_the_remaining_console_examples_name_the_package_and_karbors_calls():
    console = [b for b in _blocks(USAGE, "console") if "manila-protector-worker" not in b.text]
    setup_cfg = configparser.ConfigParser(interpolation=None)
    setup_cfg.read(ROOT / "setup.cfg")
    commands = []
    for block in console:
        # A command continued over lines is one command.
        for command in block.text.replace("\\\n", " ").splitlines():
            commands.append(shlex.split(command.split("#")[0].removeprefix("$ ")))
    installs = [c for c in commands if c[0].endswith("/pip") and c[1] == "install"]
    karbor = [c for c in commands if c[0] == "karbor"]

    assert len(installs) + len(karbor) == len(commands), commands
    # Not on a package index: from a checkout (a directory named for the distribution)
    # or from the wheel a checkout builds (named for the distribution's package).
    name = setup_cfg["metadata"]["name"]
    wheel = name.replace("-", "_") + "-"
    assert [(c[2].endswith("/" + name), c[2].startswith(wheel) and c[2].endswith(".whl"))
            for c in installs] == [(True, False), (False, True)]
    assert {c[1] for c in karbor} == set(KARBOR_COMMANDS)


def test_every_literal_block_of_the_two_documents_has_a_rule_above():
    known = {("usage.rst", "console"), ("usage.rst", "ini"), ("usage.rst", "text"),
             ("usage.rst", "python"), ("rpc.rst", "python"), ("rpc.rst", "text")}
    found = [(b.document, b.language, b.where) for path in (USAGE, RPC)
             for b in doc_blocks.blocks(path)]

    assert [f for f in found if f[:2] not in known] == []
    # The counts the tests above run: a new block needs a rule there.
    assert len(_blocks(USAGE, "python")) == 2 and len(_blocks(RPC, "python")) == 6
    assert len(_blocks(USAGE, "ini")) == 2 and len(_blocks(USAGE, "console")) == 4
    assert len(_blocks(USAGE, "text")) == 1 and len(_blocks(RPC, "text")) == 1
