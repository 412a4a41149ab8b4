"""The job store's contract, on every backend: claim once, fence, adopt, notify once, purge."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from cryptography import fernet

from manila_protector import exception
from manila_protector import jobs
from manila_protector.worker.store import api as store_api
from manila_protector.worker.store import models

from support import store_child

SHARE_1 = "00000000-0000-4000-8000-000000000001"
SHARE_2 = "00000000-0000-4000-8000-000000000002"
SHARE_9 = "00000000-0000-4000-8000-000000000009"


def accept(store, job=None, *, owner="worker-a", project_id="project-1", token="token-1",
           context=None):
    job = job or store_child.request()
    return store.accept(job, owner=owner, project_id=project_id,
                        context=context if context is not None else {"user_id": "alice"},
                        auth_token=token, host="host-a", request_id="req-1")


def test_a_new_job_is_recorded_accepted_and_owned(store):
    job = store_child.request()
    record, created = accept(store, job)
    assert created
    assert (record.job_id, record.operation, record.share_id, record.project_id,
            record.status, record.host, record.request_id) == (
        job.job_id, "protect", SHARE_1, "project-1", "accepted", "host-a", "req-1")
    assert record.created_at.endswith("+00:00")
    stored = store.load(job.job_id)
    assert stored.owner == "worker-a"
    assert stored.request == job
    assert stored.context == {"user_id": "alice"}
    assert stored.auth_token == "token-1"
    assert store.get(job.job_id) == record


def test_the_same_job_id_again_returns_the_existing_job(store):
    job = store_child.request()
    first, _ = accept(store, job)
    again, created = accept(store, job, owner="worker-b")
    assert not created
    assert again == first
    assert store.load(job.job_id).owner == "worker-a"


def test_a_job_id_reused_for_another_share_is_a_conflict(store):
    job = store_child.request()
    accept(store, job)
    other = store_child.request(job.job_id, share_id=SHARE_2)
    with pytest.raises(exception.JobConflict) as caught:
        accept(store, other)
    assert caught.value.details == {"job_id": job.job_id, "operation": "protect",
                                    "share_id": SHARE_1}
    assert store.get(job.job_id).share_id == SHARE_1


def test_a_resend_of_an_unfinished_job_refreshes_its_token(store):
    job = store_child.request()
    accept(store, job, token="old-token")
    accept(store, job, token="new-token")
    assert store.load(job.job_id).auth_token == "new-token"


def test_a_resend_by_another_project_does_not_replace_the_token(store):
    job = store_child.request()
    accept(store, job, token="own-token")
    accept(store, job, project_id="project-2", token="foreign-token")
    assert store.load(job.job_id).auth_token == "own-token"


def test_a_resend_of_a_finished_job_stores_no_token(store):
    job = store_child.request()
    accept(store, job)
    store.finish(job.job_id, "worker-a", result={})
    accept(store, job, token="late-token")
    assert store.load(job.job_id).auth_token is None


def test_a_job_without_a_token_has_none(store):
    job = store_child.request()
    accept(store, job, token=None)
    assert store.load(job.job_id).auth_token is None


def test_a_context_carrying_a_token_is_refused(store):
    with pytest.raises(ValueError):
        accept(store, context={"auth_token": "leaked"})


def test_begin_marks_running_and_start_is_notified_apart(store):
    job = store_child.request()
    accept(store, job)
    assert not store.load(job.job_id).start_notified
    stored = store.begin(job.job_id, "worker-a")
    assert stored.record.status == "running"
    assert stored.record.started_at is not None
    assert stored.auth_token == "token-1"
    # Recorded only once the broker confirmed the .start notification.
    assert not store.load(job.job_id).start_notified and not stored.start_notified
    store.mark_notified(job.job_id, terminal=False)
    assert store.load(job.job_id).start_notified
    again = store.begin(job.job_id, "worker-a")  # a resumed job keeps its first start
    assert again.record.started_at == stored.record.started_at
    assert again.start_notified   # a resumed job does not announce its start again


def test_begin_by_a_worker_that_does_not_own_the_job_is_refused(store):
    job = store_child.request()
    accept(store, job)
    with pytest.raises(exception.NotOwner) as caught:
        store.begin(job.job_id, "worker-b")
    assert caught.value.details["owner"] == "worker-a"
    assert store.get(job.job_id).status == "accepted"


def test_finish_records_the_outcome_once_and_forgets_the_token(store):
    job = store_child.request()
    accept(store, job)
    store.begin(job.job_id, "worker-a")
    record = store.finish(job.job_id, "worker-a", result={"snapshot_id": "s-1"})
    assert (record.status, record.result, record.error) == ("succeeded",
                                                            {"snapshot_id": "s-1"}, None)
    assert record.finished_at is not None
    assert store.load(job.job_id).auth_token is None
    error = exception.ManilaUnavailable("down").to_dict()
    again = store.finish(job.job_id, "worker-a", error=error)
    assert again == record


def test_a_failed_job_keeps_its_error(store):
    job = store_child.request()
    accept(store, job)
    error = exception.ShareBusy("busy", details={"share_id": SHARE_1}).to_dict()
    record = store.finish(job.job_id, "worker-a", error=error)
    assert record.status == "failed"
    assert record.error == error
    assert exception.from_dict(record.error).retryable


def test_finish_by_a_worker_that_lost_the_job_changes_nothing(store):
    job = store_child.request()
    accept(store, job)
    store.begin(job.job_id, "worker-a")
    assert store.adopt("worker-a", "worker-b") == [job.job_id]
    with pytest.raises(exception.NotOwner):
        store.finish(job.job_id, "worker-a", result={})
    stored = store.load(job.job_id)
    assert (stored.record.status, stored.owner, stored.auth_token) == (
        "running", "worker-b", "token-1")
    with pytest.raises(exception.NotOwner):
        store.begin(job.job_id, "worker-a")
    assert store.begin(job.job_id, "worker-b").auth_token == "token-1"
    assert store.finish(job.job_id, "worker-b", result={}).status == "succeeded"


def test_a_finished_job_is_returned_by_begin_unchanged_whoever_asks(store):
    job = store_child.request()
    accept(store, job)
    record = store.finish(job.job_id, "worker-a", result={})
    assert store.begin(job.job_id, "worker-z").record == record


def test_unknown_jobs_are_not_found(store):
    unknown = str(uuid.uuid4())
    for call in (lambda: store.get(unknown), lambda: store.load(unknown),
                 lambda: store.begin(unknown, "w"), lambda: store.finish(unknown, "w"),
                 lambda: store.mark_notified(unknown, terminal=True)):
        with pytest.raises(exception.NotFound):
            call()


def test_unfinished_and_unnotified_list_one_owners_jobs(store):
    done, running, waiting, elsewhere = (store_child.request() for _ in range(4))
    for job in (done, running, waiting):
        accept(store, job)
    accept(store, elsewhere, owner="worker-b")
    store.begin(running.job_id, "worker-a")
    store.finish(done.job_id, "worker-a", result={})
    assert store.unfinished("worker-a") == sorted(
        [running.job_id, waiting.job_id], key=lambda i: store.get(i).created_at)
    assert [r.job_id for r in store.unnotified("worker-a")] == [done.job_id]
    assert store.owners() == {"worker-a", "worker-b"}
    store.mark_notified(done.job_id, terminal=True)
    assert store.unnotified("worker-a") == []
    assert store.counts() == {"accepted": 2, "running": 1, "succeeded": 1}
    assert store.counts(owner="worker-b") == {"accepted": 1}


def test_adopt_moves_unfinished_jobs_and_unsent_notifications(store):
    unfinished, unsent, sent = (store_child.request() for _ in range(3))
    for job in (unfinished, unsent, sent):
        accept(store, job, owner="dead")
    store.finish(unsent.job_id, "dead", result={})
    store.finish(sent.job_id, "dead", result={})
    store.mark_notified(sent.job_id, terminal=True)
    assert store.adopt("dead", "alive") == [unfinished.job_id]
    assert store.unfinished("alive") == [unfinished.job_id]
    assert [r.job_id for r in store.unnotified("alive")] == [unsent.job_id]
    assert store.load(sent.job_id).owner == "dead"
    assert store.owners() == {"alive"}
    assert store.adopt("dead", "other") == []


def test_adopt_with_a_limit_moves_the_oldest_unfinished_jobs_a_chunk_at_a_time(store):
    unfinished = [store_child.request() for _ in range(5)]
    unsent = store_child.request()
    for job in (*unfinished, unsent):
        accept(store, job, owner="dead")
    store.finish(unsent.job_id, "dead", result={})
    ids = [job.job_id for job in unfinished]

    assert store.adopt("dead", "alive-1", limit=2) == ids[:2]
    # Every unsent notification goes with the first chunk.
    assert [r.job_id for r in store.unnotified("alive-1")] == [unsent.job_id]
    assert store.adopt("dead", "alive-2", limit=2) == ids[2:4]
    assert store.unfinished("dead") == ids[4:]
    assert store.owners() >= {"dead", "alive-1", "alive-2"}
    assert store.adopt("dead", "alive-1", limit=2) == ids[4:]
    assert store.adopt("dead", "alive-2", limit=2) == []
    assert "dead" not in store.owners()
    assert [store.load(j).record.host for j in ids] == ["alive-1"] * 2 + ["alive-2"] * 2 + [
        "alive-1"]


def test_a_worker_cannot_adopt_itself_nor_adopt_nothing(store):
    with pytest.raises(ValueError):
        store.adopt("worker-a", "worker-a")
    with pytest.raises(ValueError):
        store.adopt("dead", "worker-a", limit=0)


def test_steal_takes_half_the_difference_of_the_busiest_workers_oldest_waiting_jobs(store):
    busy = [store_child.request() for _ in range(10)]
    for job in busy:
        accept(store, job, owner="worker-a")
    for _ in range(2):
        accept(store, owner="worker-b")
    accept(store, owner="worker-c")
    store.begin(busy[0].job_id, "worker-a")  # begun: never moves
    waiting = [job.job_id for job in busy[1:]]

    # worker-a has 9 waiting, worker-c 1: half the difference moves, oldest first.
    taken = store.steal("worker-c", limit=10, keep=2)
    assert taken == waiting[:4]
    assert {store.load(j).owner for j in taken} == {"worker-c"}
    assert {store.get(j).host for j in taken} == {"worker-c"}
    # Its old owner finds it gone when it comes to run it; the new one runs it.
    with pytest.raises(exception.NotOwner):
        store.begin(taken[0], "worker-a")
    assert store.begin(taken[0], "worker-c").record.status == "running"
    # Balanced now (5 and 4 waiting): nothing moves; the owner keeps ``keep`` of them.
    assert store.steal("worker-c", limit=10, keep=2) == []
    assert store.steal("worker-d", limit=10, keep=4) == waiting[4:5]
    # worker-a and worker-c have 4 waiting each now: one of them gives its oldest.
    [last] = store.steal("worker-d", limit=1, keep=0)
    assert last in (waiting[5], taken[1])
    assert store.counts(owner="worker-a")["running"] == 1
    assert store.counts(owner="worker-d") == {"accepted": 2}


def test_steal_finds_nothing_without_other_workers_waiting_jobs_and_refuses_nonsense(store):
    accept(store, owner="worker-a")
    assert store.steal("worker-a", limit=5, keep=0) == []
    assert store.steal("worker-b", limit=5, keep=1) == []
    for limit, keep in ((0, 1), (1, -1)):
        with pytest.raises(ValueError):
            store.steal("worker-b", limit=limit, keep=keep)


def test_purge_forgets_only_finished_notified_jobs_past_retention(store):
    old, unsent, running = (store_child.request() for _ in range(3))
    for job in (old, unsent, running):
        accept(store, job)
    store.finish(old.job_id, "worker-a", result={})
    store.mark_notified(old.job_id, terminal=True)
    store.finish(unsent.job_id, "worker-a", result={})
    assert store.purge(3600) == 0
    assert store.purge(0) == 1
    with pytest.raises(exception.NotFound):
        store.get(old.job_id)
    assert {store.get(j.job_id).status for j in (unsent, running)} == {"succeeded",
                                                                       "accepted"}


def test_purge_forgets_many_jobs_batch_by_batch(store, monkeypatch):
    monkeypatch.setattr(store_api, "PURGE_BATCH", 2)
    for _ in range(5):
        job = store_child.request()
        accept(store, job)
        store.finish(job.job_id, "worker-a", result={})
        store.mark_notified(job.job_id, terminal=True)
    assert store.purge(0) == 5
    assert store.counts() == {}


def test_a_large_request_and_context_are_stored_whole(store):
    big = {"description": "x" * 1_500_000, "nested": [{"k": i} for i in range(1000)]}
    job = jobs.JobRequest.build(job_id=str(uuid.uuid4()), operation="restore",
                                share_id=SHARE_1, parameters=big,
                                saved_info={"share_id": SHARE_1, "blob": "y" * 500_000},
                                max_bytes=1 << 23)
    accept(store, job, context={"user_id": "alice", "roles": ["r"] * 20000})
    stored = store.begin(job.job_id, "worker-a")
    assert stored.request == job
    assert len(stored.context["roles"]) == 20000
    result = {"blob": "z" * 1_000_000}
    assert store.finish(job.job_id, "worker-a", result=result).result == result


def test_the_jobs_table_never_holds_the_token(store):
    job = store_child.request()
    accept(store, job, token="needle-token-123")
    store.begin(job.job_id, "worker-a")
    ciphertext = store_child.stored_ciphertext(store, job.job_id)
    assert ciphertext and "needle-token-123" not in ciphertext
    with store.database.engine().connect() as conn:
        row = conn.execute(sa.select(models.jobs)).one()
    assert not any("needle-token-123" in str(v) or ciphertext in str(v) for v in row)
    assert "needle-token-123" not in repr(store.load(job.job_id))
    store.finish(job.job_id, "worker-a", result={})
    assert store_child.stored_ciphertext(store, job.job_id) is None


def test_a_token_no_configured_key_decrypts_is_dropped_with_a_warning(store, make_store,
                                                                       caplog):
    job = store_child.request()
    accept(store, job, token="rotated-away")
    other = make_store(keys=[fernet.Fernet.generate_key().decode()])
    with caplog.at_level("WARNING"):
        stored = other.begin(job.job_id, "worker-a")
    assert stored.auth_token is None
    assert job.job_id in caplog.text
    assert "rotated-away" not in caplog.text


def test_a_new_key_put_first_still_decrypts_tokens_made_with_the_old_one(store, make_store,
                                                                         store_key):
    old_job, new_job = store_child.request(), store_child.request()
    accept(store, old_job, token="made-with-old")
    rotated = make_store(keys=[fernet.Fernet.generate_key().decode(), store_key])
    accept(rotated, new_job, token="made-with-new")
    assert rotated.load(old_job.job_id).auth_token == "made-with-old"
    assert rotated.load(new_job.job_id).auth_token == "made-with-new"
    assert store.load(new_job.job_id).auth_token is None  # the old key alone cannot


def test_no_token_reaches_a_log_line_or_an_error(store, caplog):
    job = store_child.request()
    with caplog.at_level("DEBUG"):
        accept(store, job, token="needle-token-456")
        accept(store, job, token="needle-token-456")
        with pytest.raises(exception.NotOwner) as not_owner:
            store.begin(job.job_id, "intruder")
        with pytest.raises(exception.JobConflict) as conflict:
            accept(store, store_child.request(job.job_id, share_id=SHARE_9),
                   token="needle-token-456")
        store.adopt("worker-a", "worker-b")
        store.finish(job.job_id, "worker-b", result={})
    for text in (caplog.text, str(not_owner.value), str(conflict.value),
                 repr(not_owner.value.to_dict()), repr(conflict.value.to_dict())):
        assert "needle-token-456" not in text


def test_an_adopted_unfinished_job_names_its_new_owner_and_a_finished_one_keeps_its_host(
        store):
    running = store_child.request()
    accept(store, running, owner="dead")
    store.begin(running.job_id, "dead")
    unsent = store_child.request(share_id=SHARE_2)
    accept(store, unsent, owner="dead")
    store.finish(unsent.job_id, "dead", result={"snapshot_id": "s"})

    assert store.adopt("dead", "alive") == [running.job_id]

    assert store.get(running.job_id).host == "alive"
    assert store.finish(running.job_id, "alive", result={}).host == "alive"
    assert store.get(unsent.job_id).host == "host-a"
    assert unsent.job_id in [r.job_id for r in store.unnotified("alive")]
    assert store.end_notified(unsent.job_id) is False
    store.mark_notified(unsent.job_id, terminal=True)
    assert store.end_notified(unsent.job_id) is True
