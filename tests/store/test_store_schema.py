"""The schema: alembic from an empty database, ``db sync`` twice, the start-up check's refusal."""

from __future__ import annotations

import datetime
import json
import pathlib
import subprocess
import sys

import pytest
import sqlalchemy as sa
from alembic import autogenerate
from alembic.runtime import migration

from manila_protector import exception
from manila_protector.worker import manage
from manila_protector.worker.store import api as store_api
from manila_protector.worker.store import models
from manila_protector.worker.store import schema

from support import store_child


def _config_file(tmp_path: pathlib.Path, url: str) -> str:
    path = tmp_path / "manila-protector.conf"
    # max_retries = 0: fail at once rather than after oslo.db's 10 x 10 s start-up retries.
    path.write_text(f"[DEFAULT]\nstate_path = {tmp_path / 'state'}\n\n"
                    f"[database]\nconnection = {url}\nmax_retries = 0\n")
    return str(path)


@pytest.fixture
def empty_store(empty_url, store_key):
    store = store_api.JobStore.from_url(empty_url, token_keys=[store_key])
    yield store
    store.close()


def test_a_worker_refuses_a_database_never_migrated_in_one_line(empty_store):
    with pytest.raises(exception.StoreSchemaOutdated) as caught:
        empty_store.check_schema()
    message = str(caught.value)
    assert "\n" not in message
    assert "`manila-protector-manage db sync`" in message
    assert caught.value.details == {"current": None, "required": schema.head()}


def test_db_sync_migrates_an_empty_database_and_twice_changes_nothing(
        empty_url, empty_store, tmp_path, capsys):
    config = _config_file(tmp_path, empty_url)
    assert manage.main(["--config-file", config, "db", "version"]) == 0
    assert "revision none (empty)" in capsys.readouterr().out
    assert manage.main(["--config-file", config, "db", "sync"]) == 0
    assert f"migrated from empty to revision {schema.head()}" in capsys.readouterr().out
    assert manage.main(["--config-file", config, "db", "sync"]) == 0
    assert f"already at revision {schema.head()}" in capsys.readouterr().out
    assert manage.main(["--config-file", config, "db", "version"]) == 0
    assert f"revision {schema.head()}; this release needs {schema.head()}" in (
        capsys.readouterr().out)
    assert empty_store.check_schema() == schema.head()
    record, created = empty_store.accept(store_child.request(), owner="w", project_id="p",
                                         context={}, auth_token="t", host="h",
                                         request_id=None)
    assert created and empty_store.get(record.job_id) == record


def test_the_migrated_schema_is_what_the_models_describe(empty_store):
    schema.upgrade(empty_store.database)
    with empty_store.database.engine().connect() as conn:
        context = migration.MigrationContext.configure(conn)
        differences = autogenerate.compare_metadata(context, models.metadata)
    assert differences == []


def test_a_store_of_the_first_release_keeps_its_jobs_through_the_upgrade(empty_store):
    schema.upgrade(empty_store.database, to="0001")
    with pytest.raises(exception.StoreSchemaOutdated, match="run `manila-protector-manage"):
        empty_store.check_schema()
    job = store_child.request()
    with empty_store.database.engine().begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO jobs (job_id, operation, share_id, project_id, owner, status, "
            "request, context, created_at, start_notified, end_notified, phase) VALUES "
            "(:job_id, 'protect', :share_id, 'p', 'w', 'accepted', :request, '{}', "
            ":created_at, :no, :no, 'queued')"),
            {"job_id": job.job_id, "share_id": job.share_id,
             "request": json.dumps(job.to_dict()), "no": False,
             "created_at": datetime.datetime(2026, 11, 1, 12, 0)})
    assert schema.upgrade(empty_store.database) == ("0001", schema.head())
    assert empty_store.check_schema() == schema.head()
    record = empty_store.get(job.job_id)
    assert (record.status, record.phase, record.phase_detail) == ("accepted", "queued", None)
    assert empty_store.begin(job.job_id, "w").request == job


def test_a_database_migrated_by_a_newer_release_is_refused(empty_store, tmp_path, empty_url,
                                                           capsys):
    schema.upgrade(empty_store.database)
    with empty_store.database.engine().begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'f00d'"))
    with pytest.raises(exception.StoreSchemaOutdated) as caught:
        empty_store.check_schema()
    assert "at revision f00d" in str(caught.value)
    assert manage.main(["--config-file", _config_file(tmp_path, empty_url), "db",
                        "sync"]) == manage.EXIT_FAILED
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "f00d" in error and "newer release" in error


def test_db_sync_names_an_unreachable_database_without_its_password(tmp_path, capsys):
    url = "mysql+pymysql://root:pa55-w0rd-xyz@127.0.0.1:1/nothing?connect_timeout=3"
    assert manage.main(["--config-file", _config_file(tmp_path, url), "db",
                        "sync"]) == manage.EXIT_FAILED
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert "cannot be reached" in captured.err
    assert "pa55-w0rd-xyz" not in captured.err + captured.out


def test_an_unreachable_database_is_a_retryable_store_unavailable(store_key):
    store = store_api.JobStore.from_url(
        "postgresql+psycopg2://postgres:pa55-w0rd-xyz@127.0.0.1:1/nothing",
        token_keys=[store_key])
    with pytest.raises(exception.StoreUnavailable) as caught:
        store.get("00000000-0000-0000-0000-000000000000")
    assert caught.value.retryable and caught.value.code == "store_unavailable"
    assert "pa55-w0rd-xyz" not in str(caught.value)
    assert "pa55-w0rd-xyz" not in store.database.safe_url


def test_the_revisions_the_worker_checks_are_the_migrations_alembic_runs():
    from alembic import config as alembic_config
    from alembic import script as alembic_script

    config = alembic_config.Config()
    config.set_main_option("script_location", "manila_protector.worker.store:migrations")
    scripts = alembic_script.ScriptDirectory.from_config(config)
    oldest_first = [r.revision for r in reversed(list(scripts.walk_revisions()))]
    assert tuple(oldest_first) == schema.REVISIONS
    assert scripts.get_heads() == [schema.head()]


def test_a_worker_on_an_up_to_date_store_never_loads_alembic(tmp_path):
    # alembic is ~11 MB of a worker's memory and is needed only to migrate.
    code = f"""
import sys
from manila_protector.worker.store import api, schema
store = api.JobStore.from_url("sqlite:///{tmp_path / 'jobs.sqlite'}",
                              key_file="{tmp_path / 'token.key'}")
loaded = "alembic" in sys.modules
schema.upgrade(store.database)            # a first start migrates: alembic loads
print(loaded, "alembic" in sys.modules)
"""
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, timeout=120)
    assert first.stdout.split() == ["False", "True"]
    again = code.replace("loaded = ", "store.check_schema(); loaded = ")
    second = subprocess.run([sys.executable, "-c", again], capture_output=True, text=True,
                            check=True, timeout=120)
    assert second.stdout.split() == ["False", "False"]
