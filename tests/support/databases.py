"""A job-store database of its own on the machine's MariaDB, for a fleet of worker processes.

Used by the functional fleet test (the ``fleet_store`` fixture) and by
``bench.fleet``: it creates ``mp_fleet_<random>`` on the server, migrates it as
``manila-protector-manage db sync`` does, hands out its URL and the Fernet key every
worker of the fleet shares, and drops the database again.
"""

from __future__ import annotations

import dataclasses
import os
import uuid

import sqlalchemy as sa
from cryptography import fernet

from manila_protector.worker.store import api as store_api
from manila_protector.worker.store import schema

#: The server (without a database name); ``$MANILA_PROTECTOR_MARIADB_URL`` overrides it.
MARIADB_URL = os.environ.get("MANILA_PROTECTOR_MARIADB_URL",
                             "mysql+pymysql://root@127.0.0.1:3306").rstrip("/")


def _admin(base_url: str) -> sa.Engine:
    return sa.create_engine(f"{base_url}/", isolation_level="AUTOCOMMIT",
                            poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 3})


@dataclasses.dataclass
class SharedStore:
    """A migrated database of its own (``url``) and the fleet's token key (``key``)."""

    base_url: str
    name: str
    key: str

    @property
    def url(self) -> str:
        return f"{self.base_url}/{self.name}"

    @classmethod
    def missing(cls, base_url: str = MARIADB_URL) -> str | None:
        """Why the server cannot be used (None: it answers)."""
        engine = _admin(base_url)
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except Exception as exc:  # noqa: BLE001 - any failure to answer means "not here"
            return f"{sa.engine.make_url(base_url + '/x').host}: {type(exc).__name__}: {exc}"
        finally:
            engine.dispose()
        return None

    @classmethod
    def create(cls, base_url: str = MARIADB_URL, prefix: str = "mp_fleet") -> SharedStore:
        """Create and migrate a new database; :meth:`drop` it afterwards."""
        found = cls(base_url, f"{prefix}_{uuid.uuid4().hex[:12]}",
                    fernet.Fernet.generate_key().decode())
        engine = _admin(base_url)
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE {found.name}")
        finally:
            engine.dispose()
        store = found.open()
        try:
            schema.upgrade(store.database)
        finally:
            store.close()
        return found

    def open(self) -> store_api.JobStore:
        """A store on the database (this process's view of what the workers recorded)."""
        return store_api.JobStore.from_url(self.url, token_keys=[self.key])

    def worker_options(self) -> dict[str, dict[str, str]]:
        """What each worker's config needs to share the store."""
        return {"database": {"connection": self.url}, "worker": {"token_keys": self.key}}

    def drop(self) -> None:
        engine = _admin(self.base_url)
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {self.name}")
        finally:
            engine.dispose()
