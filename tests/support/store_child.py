"""Job store clients in other processes: racers (multiprocessing) and a worker to kill -9.

Racers run in spawned processes (``multiprocessing`` with the ``spawn`` start
method); each builds its own :class:`JobStore` on the URL, waits on a barrier so
that all of them start together, and returns what it observed.

Run as a module, it is a worker-like process for the token-on-disk tests::

    python -m support.store_child URL OWNER MODE   # key in $MP_STORE_TEST_KEY

It prints one JSON line per job it accepted (``job_id``, ``token``, ``ciphertext``
as stored) and then:

- ``hold``: finishes two jobs, accepts and begins a third, prints
  ``{"holding": job_id}`` and waits (to be killed mid-job);
- ``loop``: accepts, begins and finishes jobs until it is killed.
"""

from __future__ import annotations

import json
import os
import sys
import typing
import uuid
import warnings

import sqlalchemy as sa

from manila_protector import jobs
from manila_protector.worker.store import api as store_api
from manila_protector.worker.store import models

KEY_ENV = "MP_STORE_TEST_KEY"


SHARE_ID = "00000000-0000-4000-8000-000000000001"


def request(job_id: str | None = None, share_id: str = SHARE_ID) -> jobs.JobRequest:
    """A protect request (what a worker would have validated)."""
    return jobs.JobRequest.build(job_id=job_id or str(uuid.uuid4()), operation=jobs.PROTECT,
                                 share_id=share_id, parameters={}, max_bytes=1 << 20)


def accept_race(url: str, key: str, job_ids: list[str], owner: str,
                barrier: typing.Any) -> list[tuple[str, bool, str]]:
    """Accept every job of ``job_ids`` as ``owner``; ``(job_id, created, record owner)`` each."""
    warnings.simplefilter("ignore")
    store = store_api.JobStore.from_url(url, token_keys=[key])
    try:
        seen = []
        barrier.wait(timeout=60)
        for job_id in job_ids:
            record, created = store.accept(
                request(job_id), owner=owner, project_id="project-race", context={},
                auth_token=f"token-of-{owner}", host=owner, request_id=None)
            seen.append((job_id, created, store.load(job_id).owner))
            assert record.job_id == job_id
        return seen
    finally:
        store.close()


def adopt_race(url: str, key: str, dead_owner: str, new_owner: str, chunk: int | None,
               barrier: typing.Any) -> list[str]:
    """Adopt ``dead_owner``'s jobs as ``new_owner``, ``chunk`` at a time until none is
    left (None: all at once); the ids moved."""
    warnings.simplefilter("ignore")
    store = store_api.JobStore.from_url(url, token_keys=[key])
    try:
        barrier.wait(timeout=60)
        return adopt_all(store, dead_owner, new_owner, chunk)
    finally:
        store.close()


def adopt_all(store: store_api.JobStore, dead_owner: str, new_owner: str,
              chunk: int | None) -> list[str]:
    """What housekeeping does round after round: adopt ``chunk`` jobs until none is left."""
    moved: list[str] = []
    while True:
        ids = store.adopt(dead_owner, new_owner, limit=chunk)
        moved.extend(ids)
        if chunk is None or not ids:
            return moved


def reporting(name: str, target: typing.Callable[..., typing.Any],
              arguments: tuple[typing.Any, ...],
              barrier: typing.Any, results: typing.Any) -> None:
    """Run ``target(*arguments, barrier)`` and put ``(name, ok, value)`` on ``results``."""
    try:
        results.put((name, True, target(*arguments, barrier)))
    except BaseException as exc:  # noqa: BLE001 - reported to the test, which fails
        results.put((name, False, f"{type(exc).__name__}: {exc}"))


def stored_ciphertext(store: store_api.JobStore, job_id: str) -> str | None:
    """The token's ciphertext as the database holds it."""
    with store.database.engine().connect() as conn:
        return conn.execute(sa.select(models.job_tokens.c.token)
                            .where(models.job_tokens.c.job_id == job_id)).scalar_one_or_none()


def _say(value: dict[str, typing.Any]) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def _one_job(store: store_api.JobStore, owner: str, *, finish: bool) -> str:
    job = request()
    token = f"secret-token-{uuid.uuid4().hex}"
    store.accept(job, owner=owner, project_id="project-disk", context={"user_id": "alice"},
                 auth_token=token, host="child", request_id=None)
    _say({"job_id": job.job_id, "token": token,
          "ciphertext": stored_ciphertext(store, job.job_id)})
    stored = store.begin(job.job_id, owner)
    assert stored.auth_token == token
    if finish:
        store.finish(job.job_id, owner, result={"ok": True})
        store.mark_notified(job.job_id, terminal=True)
    return job.job_id


def main(argv: list[str]) -> int:
    warnings.simplefilter("ignore")
    url, owner, mode = argv
    store = store_api.JobStore.from_url(url, token_keys=[os.environ[KEY_ENV]])
    if mode == "hold":
        for _ in range(2):
            _one_job(store, owner, finish=True)
        held = _one_job(store, owner, finish=False)
        _say({"holding": held})
        sys.stdin.read()  # until killed
        return 0
    while True:
        _one_job(store, owner, finish=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
