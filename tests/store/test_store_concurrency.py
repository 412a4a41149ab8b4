"""Exactly once under concurrency: accepts of one job_id and adoptions of one dead worker,
raced by threads on every backend and by four processes on MariaDB and PostgreSQL."""

from __future__ import annotations

import collections
import concurrent.futures
import multiprocessing
import random
import threading
import uuid

import pytest

from manila_protector.worker.store import api as store_api

from support import store_child

RACERS = 4
JOBS = 30


def _one_creator_each(results, job_ids):
    """Every job was created by exactly one racer, and is owned by that racer."""
    creators = collections.defaultdict(list)
    owners = {}
    for racer, seen in results.items():
        assert [job_id for job_id, _, _ in seen] == [j for j in job_ids[racer]]
        for job_id, created, owner in seen:
            if created:
                creators[job_id].append(racer)
            owners.setdefault(job_id, set()).add(owner)
    assert {job_id: len(who) for job_id, who in creators.items()} == {
        job_id: 1 for job_id in job_ids[next(iter(job_ids))]}
    for job_id, who in creators.items():
        assert owners[job_id] == {who[0]}


def _shuffled(job_ids, racers):
    orders = {}
    for racer in racers:
        order = list(job_ids)
        random.Random(racer).shuffle(order)
        orders[racer] = order
    return orders


def test_threads_accepting_one_job_id_create_it_once(store, make_store):
    job_ids = [str(uuid.uuid4()) for _ in range(JOBS)]
    racers = [f"worker-{i}" for i in range(RACERS * 2)]
    orders = _shuffled(job_ids, racers)
    # Half the threads share one store object, half have their own (another "worker").
    stores = {racer: store if i % 2 else make_store() for i, racer in enumerate(racers)}
    barrier = threading.Barrier(len(racers))

    def race(racer):
        barrier.wait(timeout=60)
        seen = []
        for job_id in orders[racer]:
            _, created = stores[racer].accept(
                store_child.request(job_id), owner=racer, project_id="p", context={},
                auth_token=f"token-of-{racer}", host=racer, request_id=None)
            seen.append((job_id, created, store.load(job_id).owner))
        return seen

    with concurrent.futures.ThreadPoolExecutor(len(racers)) as pool:
        results = dict(zip(racers, pool.map(race, racers), strict=True))
    _one_creator_each(results, orders)
    for job_id in job_ids:
        stored = store.load(job_id)
        assert stored.auth_token in {f"token-of-{r}" for r in racers}


def _adopt_setup(store, dead):
    unfinished = []
    for index in range(JOBS):
        job = store_child.request()
        store.accept(job, owner=dead, project_id="p", context={}, auth_token="t", host="h",
                     request_id=None)
        if index % 3 == 0:
            store.finish(job.job_id, dead, result={})
        else:
            unfinished.append(job.job_id)
    return unfinished


def _each_job_once(store, unfinished, results):
    moved = [job_id for ids in results.values() for job_id in ids]
    assert sorted(moved) == sorted(unfinished)
    for adopter, ids in results.items():
        assert all(store.load(job_id).owner == adopter for job_id in ids)


@pytest.mark.parametrize("chunk", [None, 3], ids=["all-at-once", "in-chunks"])
def test_threads_adopting_one_dead_worker_take_each_job_once(store, make_store, chunk):
    unfinished = _adopt_setup(store, "dead")
    adopters = [f"alive-{i}" for i in range(RACERS)]
    stores = {adopter: make_store() for adopter in adopters}
    barrier = threading.Barrier(len(adopters))

    def race(adopter):
        barrier.wait(timeout=60)
        return store_child.adopt_all(stores[adopter], "dead", adopter, chunk)

    with concurrent.futures.ThreadPoolExecutor(len(adopters)) as pool:
        results = dict(zip(adopters, pool.map(race, adopters), strict=True))
    _each_job_once(store, unfinished, results)
    unsent = [r.job_id for a in adopters for r in store.unnotified(a)]
    assert len(unsent) == JOBS - len(unfinished)
    assert store.owners() == {a for a, ids in results.items() if ids} | {
        a for a in adopters if store.unnotified(a)}


def test_threads_stealing_from_one_busy_worker_take_each_job_once(store, make_store):
    waiting = []
    for _ in range(JOBS):
        job = store_child.request()
        store.accept(job, owner="victim", project_id="p", context={}, auth_token="t",
                     host="h", request_id=None)
        waiting.append(job.job_id)
    thieves = [f"thief-{i}" for i in range(RACERS)]
    stores = {thief: make_store() for thief in thieves}
    barrier = threading.Barrier(len(thieves))

    def race(thief):
        barrier.wait(timeout=60)
        # A few each: the victim stays the busiest (a thief that became busier
        # would lawfully lose jobs it has not begun to the next one).
        return stores[thief].steal(thief, limit=3, keep=0)

    with concurrent.futures.ThreadPoolExecutor(len(thieves)) as pool:
        results = dict(zip(thieves, pool.map(race, thieves), strict=True))
    moved = [job_id for ids in results.values() for job_id in ids]
    assert len(moved) == len(set(moved)) and set(moved) <= set(waiting)
    assert len(moved) == 3 * RACERS
    for thief, ids in results.items():
        assert all(store.load(job_id).owner == thief for job_id in ids)
    assert store.counts(owner="victim")["accepted"] == JOBS - len(moved)


def _in_processes(target, arguments):
    """Run ``target(*arguments[name], barrier)`` in one spawned process per name."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(arguments))
    results = context.Queue()
    processes = [context.Process(target=store_child.reporting,
                                 args=(name, target, args, barrier, results))
                 for name, args in arguments.items()]
    for process in processes:
        process.start()
    try:
        reported = [results.get(timeout=240) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=60)
    failures = [value for _, ok, value in reported if not ok]
    assert not failures
    return {name: value for name, _, value in reported}


def test_processes_accepting_one_job_id_create_it_once(server_url, store_key):
    job_ids = [str(uuid.uuid4()) for _ in range(JOBS)]
    racers = [f"process-{i}" for i in range(RACERS)]
    orders = _shuffled(job_ids, racers)
    results = _in_processes(store_child.accept_race, {
        racer: (server_url, store_key, orders[racer], racer) for racer in racers})
    _one_creator_each(results, orders)


@pytest.mark.parametrize("chunk", [None, 3], ids=["all-at-once", "in-chunks"])
def test_processes_adopting_one_dead_worker_take_each_job_once(server_url, store_key, chunk):
    store = store_api.JobStore.from_url(server_url, token_keys=[store_key])
    try:
        dead = f"dead-{uuid.uuid4().hex[:8]}"
        unfinished = _adopt_setup(store, dead)
        adopters = [f"alive-{uuid.uuid4().hex[:8]}" for _ in range(RACERS)]
        results = _in_processes(store_child.adopt_race, {
            adopter: (server_url, store_key, dead, adopter, chunk) for adopter in adopters})
        _each_job_once(store, unfinished, results)
    finally:
        store.close()


def test_many_callers_running_distinct_jobs_at_once_are_all_accepted(server_url, store_key):
    # Found by bench.fleet: 10,000 casts to 4 workers on MariaDB; accepts of different
    # job ids deadlocked on InnoDB's gap locks (a locking read of an absent key, then
    # the insert), ran again at once, deadlocked again, and 35 of 200 were refused.
    callers = 16
    stores = [store_api.JobStore.from_url(server_url, token_keys=[store_key])
              for _ in range(4)]
    barrier = threading.Barrier(callers)

    def accept_many(caller):
        barrier.wait(timeout=60)
        store = stores[caller % len(stores)]
        created = 0
        owner = f"worker-{caller % 4}"
        for _ in range(JOBS):
            job = store_child.request()
            _, new = store.accept(job, owner=owner, project_id="p", context={},
                                  auth_token="t", host=owner, request_id=None)
            created += new
            # The rest of a job's life runs beside the other callers' accepts.
            store.mark_notified(job.job_id, terminal=False)
            store.begin(job.job_id, owner)
            store.finish(job.job_id, owner, result={})
            store.mark_notified(job.job_id, terminal=True)
            store.unfinished(owner)
        return created

    try:
        with concurrent.futures.ThreadPoolExecutor(callers) as pool:
            assert list(pool.map(accept_many, range(callers))) == [JOBS] * callers
    finally:
        for store in stores:
            store.close()
