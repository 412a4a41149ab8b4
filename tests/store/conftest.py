"""One contract suite for the job store, run on every backend: SQLite, MariaDB, PostgreSQL.

- ``sqlite``: files under pytest's temporary directory.
- ``mariadb``: ``$MANILA_PROTECTOR_MARIADB_URL`` (default ``mysql+pymysql://root@127.0.0.1:3306``).
- ``postgresql``: ``$MANILA_PROTECTOR_POSTGRESQL_URL`` (default
  ``postgresql+psycopg2://postgres@127.0.0.1:5432``).

The server backends carry the ``functional`` marker; when a server does not answer
their tests skip, and fail under ``CI=true`` (as tests/functional does).

Isolation: each test run creates its own database on each server (``mp_store_<random>``),
migrates it once and drops it at the end; after each test the rows are deleted.
Tests that need an empty database (migrations) get a fresh one of their own.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import typing
import uuid
import warnings

import pytest
import sqlalchemy as sa
from cryptography import fernet

from manila_protector.worker.store import api as store_api
from manila_protector.worker.store import models
from manila_protector.worker.store import schema

#: One key for the whole run (every "worker" of a test shares it, as a fleet must).
KEY = fernet.Fernet.generate_key().decode()


@dataclasses.dataclass
class Backend:
    """A database server (or SQLite directory) that makes and drops databases."""

    name: str
    base_url: str  # without a database name; for SQLite a directory
    made: list[str] = dataclasses.field(default_factory=list)

    @property
    def is_server(self) -> bool:
        return self.name != "sqlite"

    def url(self, database: str) -> str:
        if self.name == "sqlite":
            return f"sqlite:///{self.base_url}/{database}.sqlite"
        return f"{self.base_url}/{database}"

    def _admin(self) -> sa.Engine:
        admin = "postgres" if self.name == "postgresql" else ""
        connect_args = {"connect_timeout": 3}
        return sa.create_engine(f"{self.base_url}/{admin}", isolation_level="AUTOCOMMIT",
                                poolclass=sa.pool.NullPool, connect_args=connect_args)

    def probe(self) -> None:
        """Raise when the server does not answer."""
        if self.is_server:
            engine = self._admin()
            try:
                with engine.connect() as conn:
                    conn.exec_driver_sql("SELECT 1")
            finally:
                engine.dispose()

    def create(self) -> str:
        """A new, empty database; its URL."""
        database = f"mp_store_{uuid.uuid4().hex[:12]}"
        if self.is_server:
            engine = self._admin()
            try:
                with engine.connect() as conn:
                    conn.exec_driver_sql(f"CREATE DATABASE {database}")
            finally:
                engine.dispose()
        self.made.append(database)
        return self.url(database)

    def drop_all(self) -> None:
        if not self.is_server:
            return
        engine = self._admin()
        try:
            with engine.connect() as conn:
                for database in self.made:
                    force = " WITH (FORCE)" if self.name == "postgresql" else ""
                    conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {database}{force}")
        finally:
            engine.dispose()


def _unavailable(what: str, exc: BaseException) -> None:
    message = f"{what} is not available: {type(exc).__name__}: {exc}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


BACKENDS = [
    "sqlite",
    pytest.param("mariadb", marks=pytest.mark.functional),
    pytest.param("postgresql", marks=pytest.mark.functional),
]
SERVERS = [param for param in BACKENDS if not isinstance(param, str)]


def _backend(name: str, tmp_path_factory: pytest.TempPathFactory) -> typing.Iterator[Backend]:
    if name == "sqlite":
        base = str(tmp_path_factory.mktemp("store-sqlite"))
    elif name == "mariadb":
        base = os.environ.get("MANILA_PROTECTOR_MARIADB_URL",
                              "mysql+pymysql://root@127.0.0.1:3306")
    else:
        base = os.environ.get("MANILA_PROTECTOR_POSTGRESQL_URL",
                              "postgresql+psycopg2://postgres@127.0.0.1:5432")
    found = Backend(name, base.rstrip("/"))
    try:
        found.probe()
    except Exception as exc:  # noqa: BLE001 - any failure to answer means "not here"
        _unavailable(f"{name} at {sa.engine.make_url(found.base_url + '/x').host}", exc)
    yield found
    found.drop_all()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> typing.Iterator[Backend]:
    """Each backend in turn."""
    warnings.simplefilter("ignore", DeprecationWarning)
    yield from _backend(request.param, tmp_path_factory)


@pytest.fixture(scope="session", params=SERVERS)
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> typing.Iterator[Backend]:
    """MariaDB and PostgreSQL only (races between processes)."""
    yield from _backend(request.param, tmp_path_factory)


def _migrated(found: Backend) -> str:
    url = found.create()
    store = store_api.JobStore.from_url(url, token_keys=[KEY])
    try:
        schema.upgrade(store.database)
    finally:
        store.close()
    return url


@pytest.fixture(scope="session")
def store_url(backend: Backend) -> str:
    """The URL of this run's migrated database on the backend."""
    return _migrated(backend)


@pytest.fixture(scope="session")
def server_url(server: Backend) -> str:
    return _migrated(server)


def _wipe(url: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.delete(models.job_tokens))
            conn.execute(sa.delete(models.jobs))
    finally:
        engine.dispose()


@pytest.fixture
def make_store(store_url: str) -> typing.Iterator[typing.Callable[..., store_api.JobStore]]:
    """``make_store(keys=None, **options)``: another store on this run's database (another
    "worker"), with the run's key unless ``keys`` are given."""
    made: list[store_api.JobStore] = []

    def make(keys: list[str] | None = None, **options: typing.Any) -> store_api.JobStore:
        store = store_api.JobStore.from_url(store_url, token_keys=keys or [KEY], **options)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()
    _wipe(store_url)


@pytest.fixture
def store(make_store: typing.Callable[..., store_api.JobStore]) -> store_api.JobStore:
    """A store on this run's migrated database, emptied after the test."""
    return make_store()


@pytest.fixture
def store_key() -> str:
    """The Fernet key of this run's stores."""
    return KEY


@pytest.fixture
def empty_url(backend: Backend) -> str:
    """A fresh database that was never migrated."""
    return backend.create()


@pytest.fixture
def sqlite_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    """A directory for one SQLite store."""
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    return path
