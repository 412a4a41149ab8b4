"""Karbor's hooks in ``[dispatch] mode = worker``: each hook's job runs on the worker.

The protection plugin is loaded and built as Karbor builds it (entry point, the
provider file's ConfigOpts) with a ``[dispatch]`` section naming the worker's bus;
its hooks are called as Karbor calls them, with a Karbor-shaped context.  The
worker runs in this process on the same in-memory transport, against the Manila
stand-in over HTTP.
"""

from __future__ import annotations

import uuid

import pytest

from manila_protector import exception
from manila_protector.plugins import dispatch
from manila_protector.plugins import resources

from support import karbor_shapes as karbor

PARAMETERS = {"snapshot_name": "nightly", "description": "worker mode", "force": "False"}


def karbor_context(standin, project, catalog=None):
    return karbor.KarborContext(
        user_id="karbor-user", project_id=project, project_name="demo",
        roles=["member", "reader"], is_admin=False, auth_token=f"karbor-user:{project}",
        service_catalog=catalog if catalog is not None
        else karbor.sharev2_catalog(standin.endpoint))


def worker_mode_plugin(tmp_path, conf, bus_url, **dispatch_options):
    """The plugin, loaded as Karbor loads it, in worker mode on ``conf``'s bus."""
    dispatch_section = {"mode": "worker", "transport_url": bus_url,
                        "topic": conf.worker.topic, "exchange": conf.control_exchange,
                        "call_monitor_timeout": 30, **dispatch_options}
    path = karbor.write_provider_file(tmp_path, ["poll_initial_interval = 0.01"],
                                      sections={"dispatch": dispatch_section})
    return karbor.load_protection_plugin(karbor.karbor_provider_config(path))


@pytest.fixture
def plugin_for(tmp_path, conf, transport_url):
    """``plugin_for(**dispatch_options)``: the plugin in worker mode, on the shared worker."""
    return lambda **options: worker_mode_plugin(tmp_path, conf, transport_url, **options)


def run(plugin, operation, checkpoint, resource, context, parameters=None, **kwargs):
    hooks = getattr(plugin, f"get_{operation}_operation")(resource)
    karbor.run_hooks(hooks, checkpoint, resource, context, parameters or {},
                     operation_log=karbor.OperationLog(), **kwargs)


def test_every_hook_runs_its_job_on_the_worker_and_writes_the_bank_as_direct_mode(
        worker, plugin_for, standin, project, share, notifications):
    plugin = plugin_for()
    context = karbor_context(standin, project)
    resource = resources.Resource(karbor.SHARE_TYPE, share["id"], share["name"])
    checkpoint = karbor.Checkpoint()

    run(plugin, "protect", checkpoint, resource, context, PARAMETERS)
    section = checkpoint.get_resource_bank_section(share["id"])
    assert section.get_object("status") == "available"
    saved = section.get_object("metadata")
    [snapshot] = standin.snapshots(share_id=share["id"])
    assert saved["snapshot_id"] == snapshot["id"] and snapshot["name"] == "nightly"

    restore, new_resources = karbor.Restore(), {}
    run(plugin, "restore", checkpoint, resource, context, {"restore_name": "back"},
        restore=restore, new_resources=new_resources)
    new_id = new_resources[share["id"]]
    assert standin.share(new_id)["name"] == "back"
    assert [r["access_to"] for r in standin.access_rules(new_id)] == ["10.1.0.0/16"]
    assert restore.calls == [("update", karbor.SHARE_TYPE, new_id, "available", None),
                             ("save",)]

    verify = karbor.Verify()
    run(plugin, "verify", checkpoint, resource, context, verify=verify)
    assert verify.calls == [(karbor.SHARE_TYPE, share["id"], "available", None)]

    run(plugin, "delete", checkpoint, resource, context)
    assert section.get_object("status") == "deleted" and not section.has("metadata")
    assert standin.snapshots(share_id=share["id"]) == []

    # Each hook was one job on the worker, named after Karbor's objects.
    job_ids = [dispatch.karbor_job_id("protect", checkpoint, share["id"]),
               dispatch.karbor_job_id("restore", restore, share["id"]),
               dispatch.karbor_job_id("verify", verify, share["id"]),
               dispatch.karbor_job_id("delete", checkpoint, share["id"])]
    notifications.wait_for(lambda c: all(c.terminal(j) for j in job_ids))
    for job_id, operation in zip(job_ids, ("protect", "restore", "verify", "delete")):
        assert [n["event_type"] for n in notifications.for_job(job_id)] == [
            f"manila_protector.{operation}.start", f"manila_protector.{operation}.end"]
        # The caller's request id followed the job.
        assert notifications.terminal(job_id)[0]["payload"]["request_id"] == context.request_id


def test_the_same_checkpoint_run_again_is_answered_by_the_same_job(
        worker, plugin_for, standin, project, share):
    plugin = plugin_for()
    context = karbor_context(standin, project)
    resource = resources.Resource(karbor.SHARE_TYPE, share["id"], share["name"])
    checkpoint = karbor.Checkpoint()

    run(plugin, "protect", checkpoint, resource, context, PARAMETERS)
    again = karbor.Checkpoint()
    again.id = checkpoint.id  # Karbor runs the same checkpoint's flow again
    run(plugin, "protect", again, resource, context, PARAMETERS)

    assert len(standin.snapshots(share_id=share["id"])) == 1
    assert (again.get_resource_bank_section(share["id"]).get_object("metadata")
            == checkpoint.get_resource_bank_section(share["id"]).get_object("metadata"))


def test_a_failed_job_fails_the_hook_with_its_code_and_message(
        worker, plugin_for, standin, project):
    plugin = plugin_for()
    context = karbor_context(standin, project)
    missing = str(uuid.uuid4())
    resource = resources.Resource(karbor.SHARE_TYPE, missing, "gone")
    checkpoint = karbor.Checkpoint()

    with pytest.raises(exception.NotFound) as info:
        run(plugin, "protect", checkpoint, resource, context, PARAMETERS)

    assert missing in info.value.message
    assert checkpoint.get_resource_bank_section(missing).get_object("status") == "error"


def test_a_keystonemiddleware_catalog_travels_to_a_worker_without_an_endpoint(
        fresh, tmp_path, transport_url, project):
    standin = fresh.standin
    share = standin.create_share(project, size=1)
    fresh.conf.clear_override("endpoint_override", group="manila")
    fresh.make_worker()
    v2_catalog = [{"type": "sharev2", "name": "manilav2", "endpoints": [
        {"region": "RegionOne", "publicURL": standin.endpoint,
         "internalURL": standin.endpoint, "adminURL": standin.endpoint}]}]
    context = karbor_context(standin, project, catalog=v2_catalog)
    resource = resources.Resource(karbor.SHARE_TYPE, share["id"], share["name"])
    checkpoint = karbor.Checkpoint()

    run(worker_mode_plugin(tmp_path, fresh.conf, transport_url), "protect", checkpoint,
        resource, context, PARAMETERS)

    assert checkpoint.get_resource_bank_section(share["id"]).get_object("status") == "available"
    assert len(standin.snapshots(share_id=share["id"])) == 1


def test_worker_mode_without_a_transport_url_is_refused_naming_the_option(
        plugin_for, standin, project, share):
    plugin = plugin_for(transport_url="")
    context = karbor_context(standin, project)
    resource = resources.Resource(karbor.SHARE_TYPE, share["id"], share["name"])

    with pytest.raises(exception.Unsupported, match=r"\[dispatch\] transport_url"):
        run(plugin, "protect", karbor.Checkpoint(), resource, context, PARAMETERS)
    assert standin.count_requests(mutating=True) == 0


def test_no_worker_on_the_topic_is_a_retryable_worker_unavailable(
        conf, plugin_for, standin, project, share):
    plugin = plugin_for(topic=f"nobody-{uuid.uuid4().hex[:8]}", call_monitor_timeout=1,
                        call_timeout=2)
    context = karbor_context(standin, project)
    resource = resources.Resource(karbor.SHARE_TYPE, share["id"], share["name"])

    with pytest.raises(exception.WorkerUnavailable) as info:
        run(plugin, "protect", karbor.Checkpoint(), resource, context, PARAMETERS)
    assert info.value.retryable
    assert standin.count_requests(mutating=True) == 0
