"""The runner's job threads survive a failing job and stop within their deadline."""

import threading

from manila_protector.worker import pool as pool_mod


def test_a_failing_job_does_not_cost_a_worker_thread():
    done = []
    finished = threading.Event()

    def target(job_id):
        if job_id == "bad":
            raise RuntimeError("boom")
        done.append(job_id)
        if len(done) == 2:
            finished.set()

    pool = pool_mod.Pool(1, target)
    pool.start()
    for job_id in ("bad", "good-1", "good-2"):
        pool.put(job_id)
    assert finished.wait(10)
    assert done == ["good-1", "good-2"]
    assert pool.stop(5) == 0


def test_stop_reports_jobs_still_running_after_the_timeout():
    release = threading.Event()
    started = threading.Event()

    def target(job_id):
        started.set()
        release.wait(30)

    pool = pool_mod.Pool(2, target)
    pool.start()
    pool.put("slow")
    pool.put("queued-1")
    pool.put("queued-2")
    assert started.wait(10)
    still_running = pool.stop(0.05)
    release.set()
    assert still_running >= 1
