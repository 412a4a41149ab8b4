"""What a fleet needs of one worker: jobs listed from the store, a bound on jobs waiting
here and on callers waiting for their end, housekeeping that adopts a dead worker's jobs."""

from __future__ import annotations

import threading
import uuid

import pytest
from oslo_context import context as oslo_context

from manila_protector import exception
from manila_protector.worker import housekeeping

from support import rabbit

OPTIONS = {"snapshot_name": "nightly", "description": "fleet", "force": False}


def new_id():
    return str(uuid.uuid4())


def test_list_jobs_pages_the_callers_jobs_newest_first(worker, client, ctxt, standin, project):
    shares = [standin.create_share(project, size=1) for _ in range(3)]
    made = [client.protect(ctxt, new_id(), share["id"], OPTIONS)["job_id"] for share in shares]
    stranger = oslo_context.RequestContext(auth_token=f"eve:{uuid.uuid4().hex}",
                                           project_id=uuid.uuid4().hex, user_id="eve")
    hers = client.protect(stranger, new_id(), shares[0]["id"], OPTIONS)  # fails: not hers
    assert hers["status"] == "failed"

    first = client.list_jobs(ctxt, limit=2)
    second = client.list_jobs(ctxt, limit=2, marker=first[-1]["job_id"])

    assert [r["job_id"] for r in first + second] == list(reversed(made))
    assert {r["project_id"] for r in first + second} == {project}
    only = client.list_jobs(ctxt, filters={"share_id": shares[1]["id"],
                                           "status": "succeeded"})
    assert [r["job_id"] for r in only] == [made[1]]
    assert [r["job_id"] for r in client.list_jobs(stranger)] == [hers["job_id"]]


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"filters": {"colour": "red"}}, "filters"),
    ({"filters": {"status": "sleeping"}}, "filters.status"),
    ({"filters": {"since": "yesterday"}}, "filters.since"),
    ({"limit": 0}, "limit"),
    ({"limit": 5000}, "limit"),
    ({"marker": "../x"}, "marker"),
])
def test_list_jobs_refuses_bad_filters_typed(worker, client, ctxt, kwargs, field):
    with pytest.raises(exception.InvalidRequest) as info:
        client.list_jobs(ctxt, **kwargs)
    assert info.value.details["field"] == field


def test_a_marker_of_another_projects_job_is_not_found(worker, client, ctxt, share, project):
    job_id = client.protect(ctxt, new_id(), share["id"], OPTIONS)["job_id"]
    other = uuid.uuid4().hex
    stranger = oslo_context.RequestContext(auth_token=f"eve:{other}", project_id=other,
                                           user_id="eve")
    with pytest.raises(exception.NotFound):
        client.list_jobs(stranger, marker=job_id)


def test_beyond_max_queued_jobs_new_jobs_are_refused_and_nothing_is_recorded(fresh, project):
    conf, standin = fresh.conf, fresh.standin
    conf.set_override("max_concurrent_jobs", 1, group="worker")
    conf.set_override("max_queued_jobs", 1, group="worker")
    standin.config.delays.snapshot_create = 3600  # the first job holds the only slot
    shares = [standin.create_share(project, size=1) for _ in range(3)]
    worker = fresh.make_worker()
    ctxt = oslo_context.RequestContext(auth_token=f"alice:{project}", project_id=project,
                                       user_id="alice", roles=["member"])
    running = new_id()
    fresh.client.protect(ctxt, running, shares[0]["id"], OPTIONS, cast=True)
    fresh.notifications.wait_for(lambda c: c.events(running))
    queued = fresh.client._client.call(ctxt, "protect", job_id=new_id(),
                                       share_id=shares[1]["id"], parameters=OPTIONS)
    assert queued["status"] == "accepted"
    refused = new_id()
    with pytest.raises(exception.WorkerBusy) as info:
        fresh.client._client.call(ctxt, "protect", job_id=refused, share_id=shares[2]["id"],
                                  parameters=OPTIONS)
    assert info.value.retryable
    with pytest.raises(exception.NotFound):
        fresh.client.get_job(ctxt, refused)
    assert worker.runner.load == {"running": 1, "queued": 1}
    # A resend of a job it has is still answered, whatever the load.
    again = fresh.client._client.call(ctxt, "protect", job_id=queued["job_id"],
                                      share_id=shares[1]["id"], parameters=OPTIONS)
    assert again["job_id"] == queued["job_id"]


def test_beyond_max_waiting_calls_a_call_gets_the_accepted_record_and_get_job_answers(
        fresh, project):
    conf, standin = fresh.conf, fresh.standin
    conf.set_override("max_waiting_calls", 1, group="worker")
    standin.config.delays.snapshot_create = 3600
    shares = [standin.create_share(project, size=1) for _ in range(2)]
    fresh.make_worker()
    ctxt = oslo_context.RequestContext(auth_token=f"alice:{project}", project_id=project,
                                       user_id="alice", roles=["member"])
    first = new_id()
    waiting = threading.Thread(
        target=lambda: fresh.client.protect(ctxt, first, shares[0]["id"], OPTIONS),
        daemon=True)
    waiting.start()
    fresh.notifications.wait_for(lambda c: c.events(first))
    # The one waiting slot is taken: the next call is answered at once, not held.
    second = fresh.client.protect(ctxt, new_id(), shares[1]["id"], OPTIONS)
    assert second["status"] in ("accepted", "running")
    assert fresh.client.get_job(ctxt, first)["status"] in ("accepted", "running")
    snapshots = rabbit.wait_until(lambda: standin.snapshots(share_id=shares[0]["id"]), 60,
                                  "the first job's snapshot")
    standin.set_snapshot_status(snapshots[0]["id"], "available")
    waiting.join(60)
    assert not waiting.is_alive()


def test_jobs_waiting_on_a_busy_worker_run_on_one_with_room_and_their_callers_get_the_end(
        fresh, project, tmp_path):
    conf, standin = fresh.conf, fresh.standin
    conf.set_override("max_concurrent_jobs", 1, group="worker")
    conf.set_override("housekeeping_interval", 1, group="worker")
    # Two workers of one host: one job store (an SQLite file), a state_path each.
    conf.set_override("connection", f"sqlite:///{tmp_path / 'jobs.sqlite'}", group="database")
    conf.set_override("token_keys", "k" * 43 + "=", group="worker")
    standin.config.delays.snapshot_create = 3600  # a snapshot is made when the test says
    shares = [standin.create_share(project, size=1) for _ in range(3)]
    ctxt = oslo_context.RequestContext(auth_token=f"alice:{project}", project_id=project,
                                       user_id="alice", roles=["member"])
    busy = fresh.make_worker()
    running, waiting, last = new_id(), new_id(), new_id()
    fresh.client.protect(ctxt, running, shares[0]["id"], OPTIONS, cast=True)
    fresh.notifications.wait_for(lambda c: c.events(running))
    answer = {}
    caller = threading.Thread(  # waits for the end of a job queued on the busy worker
        target=lambda: answer.update(fresh.client.protect(ctxt, waiting, shares[1]["id"],
                                                          OPTIONS)), daemon=True)
    caller.start()
    fresh.notifications.wait_for(lambda c: c.events(waiting))
    fresh.client.protect(ctxt, last, shares[2]["id"], OPTIONS, cast=True)
    rabbit.wait_until(lambda: busy.runner.load == {"running": 1, "queued": 2}, 30,
                      "two jobs queued behind the busy worker's only slot")

    conf.set_override("host", f"idle-{uuid.uuid4().hex[:6]}")
    conf.set_override("state_path", str(tmp_path / "idle-state"))
    idle = fresh.make_worker()
    # The idle worker takes over the oldest waiting job (the busy one keeps one: its
    # max_concurrent_jobs) and runs it while the busy worker's slot is still taken.
    made = rabbit.wait_until(lambda: standin.snapshots(share_id=shares[1]["id"]), 30,
                             "the waiting job's snapshot, made by the idle worker")
    assert fresh.client.get_job(ctxt, waiting)["host"] == idle.host
    assert not standin.snapshots(share_id=shares[2]["id"])
    for share in shares[:2]:
        [snapshot] = standin.snapshots(share_id=share["id"])
        standin.set_snapshot_status(snapshot["id"], "available")
    fresh.notifications.wait_for(lambda c: c.terminal(waiting) and c.terminal(running))
    made = rabbit.wait_until(lambda: standin.snapshots(share_id=shares[2]["id"]), 30,
                             "the last job's snapshot, on the busy worker")
    standin.set_snapshot_status(made[0]["id"], "available")
    fresh.notifications.wait_for(lambda c: c.terminal(last))
    caller.join(30)

    # The caller that waited on the busy worker got the end the idle worker recorded.
    assert answer["status"] == "succeeded" and answer["host"] == idle.host
    ended = {job: fresh.notifications.terminal(job) for job in (running, waiting, last)}
    assert {job: [n["payload"]["host"] for n in notes] for job, notes in ended.items()} == {
        running: [busy.host], waiting: [idle.host], last: [busy.host]}
    assert all(len(standin.snapshots(share_id=share["id"])) == 1 for share in shares)


class _Membership:
    def __init__(self, live):
        self.live = set(live)
        self.joined = []

    def join(self, group, capabilities):
        self.joined.append((group, capabilities))

    def members(self, group):
        return {member: {} for member in self.live}


class _Store:
    def __init__(self, owners):
        self._owners = set(owners)

    def owners(self):
        return set(self._owners)

    def purge(self, older_than):
        return 0


class _Runner:
    def __init__(self):
        self.adopted = []

    def adopt(self, owner):
        self.adopted.append(owner)
        return 2

    def resend_notifications(self):
        return 0

    def sweep_leftovers(self):
        return 0

    def wants_work(self):
        return False


def test_a_worker_missing_for_takeover_after_has_its_jobs_adopted_once():
    now = [1000.0]
    runner, membership = _Runner(), _Membership(live={"me", "alive"})
    keeper = housekeeping.Housekeeper(
        runner=runner, store=_Store({"me", "alive", "gone"}), membership=membership,
        group="g", host="me", capabilities={"store": "x"}, interval=60, takeover_after=300,
        retention=0, clock=lambda: now[0])

    assert keeper.take_over() == []       # first seen missing now
    now[0] += 299
    assert keeper.take_over() == []       # not missing long enough yet
    now[0] += 2
    assert keeper.take_over() == ["gone"]
    assert runner.adopted == ["gone"]     # never the live one, never ourselves


class _ChunkedRunner(_Runner):
    """Adopts ``chunk`` of a dead owner's ``left`` jobs per call, as the store does."""

    def __init__(self, store, left, chunk):
        super().__init__()
        self._store, self.left, self._chunk = store, dict(left), chunk

    def adopt(self, owner):
        moved = min(self._chunk, self.left[owner])
        self.left[owner] -= moved
        if not self.left[owner]:
            self._store._owners.discard(owner)
        self.adopted.append((owner, moved))
        return moved


def test_a_dead_workers_jobs_are_adopted_a_chunk_per_round_until_none_is_left(caplog):
    now = [1000.0]
    store = _Store({"me", "gone"})
    runner = _ChunkedRunner(store, {"gone": 20}, chunk=8)
    keeper = housekeeping.Housekeeper(
        runner=runner, store=store, membership=_Membership(live={"me"}), group="g",
        host="me", capabilities={}, interval=60, takeover_after=300, retention=0,
        clock=lambda: now[0])
    keeper.take_over()
    now[0] += 301
    with caplog.at_level("INFO"):
        rounds = [keeper.take_over() for _ in range(4)]

    # The takeover is not started again after each chunk: no new takeover_after wait.
    assert rounds == [["gone"], ["gone"], ["gone"], []]
    assert runner.adopted == [("gone", 8), ("gone", 8), ("gone", 4)]
    assert caplog.text.count("adopting its unfinished jobs") == 1
    assert "worker gone has no job left to adopt" in caplog.text


def test_housekeeping_takes_the_next_chunk_every_adopt_period_not_every_interval():
    store = _Store({"me", "gone"})
    runner = _ChunkedRunner(store, {"gone": 30}, chunk=10)
    adopted_all = threading.Event()
    adopt = runner.adopt

    def adopt_and_tell(owner):
        moved = adopt(owner)
        if not runner.left[owner]:
            adopted_all.set()
        return moved

    runner.adopt = adopt_and_tell
    keeper = housekeeping.Housekeeper(
        runner=runner, store=store, membership=_Membership(live={"me"}), group="g",
        host="me", capabilities={}, interval=3600, takeover_after=0, retention=0)
    keeper.take_over()             # the first chunk, as the first round would
    keeper.start()
    try:
        # With an interval of an hour, only the takeover rounds can adopt the rest.
        assert adopted_all.wait(timeout=30)
    finally:
        keeper.stop()
    assert [moved for _, moved in runner.adopted] == [10, 10, 10]


class _IdleRunner(_Runner):
    """Has room; finds ``found`` jobs waiting elsewhere per steal, one batch after another."""

    def __init__(self, found):
        super().__init__()
        self.found = list(found)
        self.stolen = []
        self.done = threading.Event()

    def wants_work(self):
        return True

    def steal(self):
        taken = self.found.pop(0) if self.found else 0
        self.stolen.append(taken)
        if not self.found:
            self.done.set()
        return taken


def test_a_nudge_balances_at_once_and_again_while_jobs_are_found_not_every_interval():
    runner = _IdleRunner([5, 3, 0])
    keeper = housekeeping.Housekeeper(
        runner=runner, store=_Store({"me"}), membership=_Membership(live={"me"}), group="g",
        host="me", capabilities={}, interval=3600, takeover_after=300, retention=0)
    keeper.start()
    try:
        keeper.nudge()  # a job ended here with few behind it
        assert runner.done.wait(timeout=30)
    finally:
        keeper.stop()
    # Looked again while it found some, and stopped looking once it found none.
    assert runner.stolen == [5, 3, 0]


def test_a_busy_worker_does_not_look_for_jobs_elsewhere():
    runner = _Runner()  # wants_work() is False
    keeper = housekeeping.Housekeeper(
        runner=runner, store=_Store({"me"}), membership=_Membership(live={"me"}), group="g",
        host="me", capabilities={}, interval=3600, takeover_after=300, retention=0)
    assert keeper.balance() == 0


def test_a_worker_that_comes_back_is_not_adopted():
    now = [1000.0]
    runner, membership = _Runner(), _Membership(live={"me"})
    keeper = housekeeping.Housekeeper(
        runner=runner, store=_Store({"me", "flaky"}), membership=membership, group="g",
        host="me", capabilities={}, interval=60, takeover_after=300, retention=0,
        clock=lambda: now[0])
    keeper.take_over()
    now[0] += 200
    membership.live.add("flaky")
    keeper.take_over()
    now[0] += 200
    membership.live.discard("flaky")
    assert keeper.take_over() == []       # its absence starts over
    assert runner.adopted == []


def test_housekeeping_runs_every_step_even_when_one_fails(caplog):
    class Broken(_Membership):
        def members(self, group):
            raise exception.LockUnavailable("backend down")

    runner, membership = _Runner(), Broken(live=())
    keeper = housekeeping.Housekeeper(
        runner=runner, store=_Store({"x"}), membership=membership, group="g", host="me",
        capabilities={"a": 1}, interval=60, takeover_after=10, retention=0)
    keeper.run_once()
    assert membership.joined == [("g", {"a": 1})]   # rejoin ran before takeover failed
    assert "take_over failed" in caplog.text


def test_the_sweeper_deletes_what_a_failed_job_left_with_the_service_credentials(fresh,
                                                                                project):
    from keystoneauth1 import loading as ks_loading

    conf, standin = fresh.conf, fresh.standin
    conf.set_override("auth_type", "admin_token", group="manila")
    conf.register_opts(ks_loading.get_auth_plugin_conf_options("admin_token"), group="manila")
    conf.set_override("endpoint", standin.endpoint, group="manila")
    conf.set_override("token", "sweeper:service-project", group="manila")
    conf.set_override("cleanup_timeout", 2, group="manila")
    share = standin.create_share(project, size=1)
    worker = fresh.make_worker()
    ctxt = oslo_context.RequestContext(auth_token=f"alice:{project}", project_id=project,
                                       user_id="alice", roles=["member"])
    standin.faults.snapshot_error(share["id"])
    standin.faults.fail_next(10_000, 503, method="DELETE")

    record = fresh.client.protect(ctxt, new_id(), share["id"], OPTIONS)

    assert record["status"] == "failed"
    assert record["error"]["details"]["cleaned_up"] is False
    left = record["error"]["details"]["snapshot_id"]
    [leftover] = worker.store.leftovers()
    assert (leftover.kind, leftover.resource_id) == ("snapshot", left)
    standin.faults.clear()
    assert worker.runner.sweep_leftovers() == 1
    assert standin.snapshot(left) is None
    assert worker.store.leftovers() == []
    # The failed job's record still names what it had left.
    assert fresh.client.get_job(ctxt, record["job_id"])["error"]["details"]["snapshot_id"] == left
