"""The job store's database: oslo.db's enginefacade, the transactions, and the one
place where database errors become ours.

Invariants:

- Every store operation is **one transaction** (:meth:`Database.transaction`; purge
  takes one per batch).
  When the database reports a deadlock, a lock wait timeout or a lost insert
  race (a duplicate key), the whole transaction is rolled back and run again
  (at most :data:`ATTEMPTS` times, after a random pause that doubles with each
  attempt); every attempt rereads what it decides on, so
  a retried operation decides on the winner's committed state.  Galera's
  certification failures arrive as deadlocks and are handled the same way.
- **SQLite** (one host): every transaction starts with ``BEGIN IMMEDIATE``, so
  writers are serialized from their first statement and never deadlock on a lock
  upgrade; ``busy_timeout`` bounds the wait.  The journal is a rollback journal
  (``journal_mode=DELETE``, not WAL) and ``secure_delete`` is on: a committed
  delete overwrites the deleted bytes in the database file and leaves no older
  copy of the page beside it (a WAL keeps old page images until a checkpoint).
  ``synchronous=FULL``: a committed job survives a power cut.  The file and its
  directory are created 0600 / 0700.
- **MariaDB / PostgreSQL**: the server's default isolation (REPEATABLE READ /
  READ COMMITTED).  Every read that decides a write is a locking read
  (``SELECT ... FOR UPDATE``), which reads the latest committed row in both.
  A row that may not exist yet is inserted first (:func:`insert_new`), never
  looked for with a locking read: on MariaDB that read of an absent key takes a
  gap lock, and transactions inserting different keys into the same gap
  deadlock one another (``bench.fleet``: 35 of 200 accepts at once, then 6 of
  400 with the retry pauses below).
- **Errors**: oslo.db and SQLAlchemy exceptions are translated here and nowhere
  else (:func:`_failures_translated`), into :class:`exception.StoreUnavailable`
  (retryable: the database is down, busy or contended) or a plain
  :class:`exception.ProtectorError`.  Their messages are built from the DBAPI's
  own message with the URL's secrets scrubbed; the engine hides statement
  parameters (``hide_parameters``), so no token ciphertext reaches a message or
  a log line either.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
import typing

from oslo_db import exception as db_exc
from oslo_db.sqlalchemy import enginefacade
import sqlalchemy as sa

from manila_protector import exception
from manila_protector.worker import backend_url

LOG = logging.getLogger(__name__)

#: Runs of one transaction when the database reports contention (see the module doc).
ATTEMPTS = 10
#: Seconds: a contended transaction runs again after a random pause of up to
#: ``RETRY_PAUSE * 2**(attempt - 1)``, at most ``RETRY_MAX_PAUSE``.
RETRY_PAUSE = 0.02
RETRY_MAX_PAUSE = 1.0
#: Milliseconds an SQLite transaction waits for another one's lock.
SQLITE_BUSY_TIMEOUT_MS = 30000

_T = typing.TypeVar("_T")

#: oslo.db's ``[database]`` options that its enginefacade takes (the rest are ignored;
#: ``slave_connection`` too: every read must see the latest committed write).
_FACADE_OPTIONS = (
    "connection", "mysql_sql_mode", "mysql_wsrep_sync_wait",
    "connection_recycle_time", "connection_debug", "max_pool_size", "max_overflow",
    "pool_timeout", "sqlite_synchronous", "connection_trace", "max_retries",
    "retry_interval", "connection_parameters",
)


class _Contention(exception.StoreUnavailable):
    """A transaction lost a race (deadlock, lock wait timeout, duplicate key): run it again."""


class _FacadeContext:
    """The object enginefacade keeps its per-thread transaction state on."""


def facade_options(database_group: typing.Any) -> dict[str, typing.Any]:
    """The enginefacade settings of a parsed ``[database]`` group (oslo.db's options)."""
    return {name: getattr(database_group, name) for name in _FACADE_OPTIONS
            if hasattr(database_group, name)}


def is_sqlite(url: str) -> bool:
    """Whether ``url`` names an SQLite database."""
    return sa.engine.make_url(url).get_backend_name() == "sqlite"


def sqlite_directory(url: str) -> str | None:
    """The directory of an SQLite database file (None: not a file, or not SQLite)."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database \
            or parsed.database == ":memory:":
        return None
    return os.path.dirname(os.path.abspath(parsed.database))


def _prepare_sqlite_file(url: sa.engine.URL) -> None:
    path = url.database
    if not path or path == ":memory:":
        return
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    # Created 0600 before SQLite opens it; its rollback journal gets the same mode.
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _on_sqlite_connect(dbapi_connection: typing.Any, _record: typing.Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS:d}")
        cursor.execute("PRAGMA journal_mode = DELETE")
        cursor.execute("PRAGMA secure_delete = ON")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _on_sqlite_begin(connection: sa.Connection) -> None:
    # NOTE: oslo.db emits a plain (deferred) BEGIN for SQLite from its own "begin"
    # listener, which runs before this one.  Nothing has run in that transaction
    # yet, so it is swapped for one that takes the write lock at once: two
    # writers then never both hold a read lock and deadlock upgrading it (SQLite
    # answers that with an immediate "database is locked", busy_timeout or not).
    if connection.info.get("in_transaction"):
        connection.exec_driver_sql("ROLLBACK")
    connection.exec_driver_sql("BEGIN IMMEDIATE")
    connection.info["in_transaction"] = True  # oslo.db's mark: it emits no BEGIN of its own


def insert_new(conn: sa.Connection, statement: sa.Insert) -> bool:
    """Run ``statement``, an INSERT of a row whose key may be taken already.

    The insert runs in a savepoint, so the transaction goes on either way (a
    failed statement aborts a PostgreSQL transaction otherwise).

    :returns: True when the row was inserted, False when its key was taken (the
        caller then reads the existing row with a locking read: it exists).
    """
    try:
        with conn.begin_nested():
            conn.execute(statement)
    except db_exc.DBDuplicateEntry:
        return False
    return True


def _on_engine_create(engine: sa.Engine) -> None:
    # No statement parameter (a token's ciphertext) in an exception's text or a log line.
    engine.hide_parameters = True
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _on_sqlite_connect)
        sa.event.listen(engine, "begin", _on_sqlite_begin)


class Database:
    """A connection to the job store's database, through oslo.db's enginefacade.

    :param url: the SQLAlchemy URL (``[database] connection``); a secret.
    :param options: further enginefacade settings (:func:`facade_options`).
    """

    def __init__(self, url: str, options: typing.Mapping[str, typing.Any] | None = None
                 ) -> None:
        self._secrets = backend_url.secrets_of(url)
        self.dialect: str | None = None
        with self._failures_translated("opening the job store"):
            parsed = sa.engine.make_url(url)
        self.dialect = parsed.get_backend_name()
        #: The URL with its password masked: what may be logged.
        self.safe_url = parsed.render_as_string(hide_password=True)
        if self.dialect == "sqlite":
            _prepare_sqlite_file(parsed)
        settings = dict(options or {})
        settings["connection"] = url
        settings.setdefault("max_retries", 0)
        settings["sqlite_fk"] = True
        # NOTE: every setting is passed explicitly, so the facade never reads the
        # global cfg.CONF's [database] values (it only registers its options there).
        self._facade = enginefacade.transaction_context()
        self._facade.configure(**settings)
        self._facade.append_on_engine_create(_on_engine_create)
        self._context = _FacadeContext()

    def engine(self) -> sa.Engine:
        """The engine (created on first use).

        :raises exception.StoreUnavailable: the database cannot be reached.
        """
        with self._failures_translated("connecting to the job store"):
            return typing.cast(sa.Engine, self._facade.writer.get_engine())

    @contextlib.contextmanager
    def begin(self, what: str) -> typing.Iterator[sa.Connection]:
        """A connection in one transaction (committed at the end), errors translated;
        for migrations, which run their own statements on it."""
        with self._failures_translated(what), self.engine().begin() as conn:
            yield conn

    def transaction(self, what: str, body: typing.Callable[[sa.Connection], _T]) -> _T:
        """Run ``body(connection)`` in one transaction, again if the database says it lost a race.

        :param what: what the transaction does (for messages).
        :raises exception.StoreUnavailable: the database is unreachable or stayed contended.
        :raises exception.ProtectorError: another database failure.
        """
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self._failures_translated(what), self._facade.writer.connection.using(
                        self._context) as conn:
                    return body(conn)
            except _Contention:
                if attempt == ATTEMPTS:
                    raise
                LOG.debug("job store: %s lost a race (attempt %d); running it again", what,
                          attempt)
                # Run again at once, the same transactions meet again: under a burst of
                # accepts on MariaDB ten immediate runs all deadlocked (bench.fleet).
                time.sleep(random.uniform(0, min(RETRY_MAX_PAUSE,
                                                 RETRY_PAUSE * 2 ** (attempt - 1))))
        raise AssertionError("unreachable")  # pragma: no cover

    def dispose(self) -> None:
        """Close the pooled connections (the store can be used again afterwards)."""
        if self._facade.is_started:
            self._facade.dispose_pool()

    @contextlib.contextmanager
    def _failures_translated(self, what: str) -> typing.Iterator[None]:
        """The one translation of oslo.db / SQLAlchemy errors into ours."""
        try:
            yield
        except (db_exc.DBDeadlock, db_exc.DBDuplicateEntry) as exc:
            raise _Contention(f"job store: {what} was contended: {self._describe(exc)}",
                              details={"dialect": self.dialect}) from exc
        except db_exc.DBConnectionError as exc:
            raise exception.StoreUnavailable(
                f"job store: {what} failed: the database cannot be reached: "
                f"{self._describe(exc)}", details={"dialect": self.dialect}) from exc
        except (sa.exc.OperationalError, sa.exc.TimeoutError) as exc:
            # Not a disconnect: "database is locked", a full disk, a pool timeout.
            raise exception.StoreUnavailable(
                f"job store: {what} failed: {self._describe(exc)}",
                details={"dialect": self.dialect}) from exc
        except (db_exc.DBError, db_exc.CantStartEngineError, sa.exc.SQLAlchemyError) as exc:
            raise exception.ProtectorError(
                f"job store: {what} failed: {self._describe(exc)}") from exc

    def _describe(self, exc: BaseException) -> str:
        """A one-line description of a database error: its DBAPI message, secrets scrubbed."""
        inner: BaseException = exc
        while True:
            nested = getattr(inner, "inner_exception", None) or getattr(inner, "orig", None)
            if not isinstance(nested, BaseException) or nested is inner:
                break
            inner = nested
        if isinstance(inner, sa.exc.ArgumentError):
            # Its text may quote the whole URL (with its password).
            return f"{type(inner).__name__}: the connection URL is not valid"
        text = str(inner).strip().splitlines()[0] if str(inner).strip() else ""
        return backend_url.redact(f"{type(inner).__name__}: {text}"[:300], self._secrets)
