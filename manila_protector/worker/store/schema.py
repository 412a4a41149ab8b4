"""The job store's schema: alembic migrations, ``db sync``, and the check a worker makes at start.

Invariants: the schema is created and changed by the migrations in
``migrations/versions`` only (never ``metadata.create_all``); :func:`upgrade` is
idempotent (a database at the head is left as it is); a worker runs on a
database at exactly this release's head revision and refuses any other
(:func:`check_current`), naming the command that fixes it.  Migrations run on a
connection handed to alembic, never on a URL, so the database password is
never in alembic's configuration.  alembic's errors are translated here.

A worker on an up-to-date database never imports alembic (about 11 MB of a
worker's resident memory): the check at start reads the revision table with
SQLAlchemy and compares it with :data:`REVISIONS`, the migrations' revisions in
order, which ``tests/store`` keeps equal to what alembic finds in
``migrations/versions``.  alembic is loaded only to migrate.
"""

from __future__ import annotations

import contextlib
import typing

import sqlalchemy as sa

from manila_protector import exception
from manila_protector.worker.store import engine as engine_mod

#: What an operator runs to bring the schema up to date.
SYNC_COMMAND = "manila-protector-manage db sync"
_SCRIPT_LOCATION = "manila_protector.worker.store:migrations"
#: The migrations' revisions, oldest first (``migrations/versions``); the last is the
#: head this release needs.
REVISIONS = ("0001", "0002")
#: alembic's revision table (its default name).
_VERSION_TABLE = sa.table("alembic_version", sa.column("version_num", sa.String(32)))


def _config(connection: sa.Connection | None = None) -> typing.Any:
    from alembic import config as alembic_config  # only to migrate (see the module doc)

    config = alembic_config.Config()
    config.set_main_option("script_location", _SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    """The revision this release needs (the migrations' single head)."""
    return REVISIONS[-1]


def _current(connection: sa.Connection) -> str | None:
    if not sa.inspect(connection).has_table(_VERSION_TABLE.name):
        return None
    found = connection.execute(sa.select(_VERSION_TABLE.c.version_num)).scalars().all()
    if len(found) > 1:
        raise exception.StoreSchemaOutdated(
            f"the job store's database has {len(found)} schema revisions ({', '.join(found)}); "
            f"this release needs exactly {head()}",
            details={"current": found, "required": head()})
    return found[0] if found else None


def current(database: engine_mod.Database) -> str | None:
    """The database's revision (None: never migrated).

    :raises exception.StoreUnavailable: the database cannot be reached.
    """
    with database.begin("reading the schema revision") as conn:
        return _current(conn)


def upgrade(database: engine_mod.Database, to: str = "head") -> tuple[str | None, str]:
    """Migrate the database to this release's head (``db sync``); idempotent.

    :param to: another revision to stop at (tests of a migration start there).
    :returns: the revisions before and after.
    :raises exception.StoreSchemaOutdated: the database is at a revision this release
        does not know (a newer release migrated it).
    :raises exception.StoreUnavailable: the database cannot be reached.
    """
    with database.begin("migrating the schema") as conn:
        before = _current(conn)
        if before == head() and to in ("head", head()):
            return before, before  # nothing to do: alembic stays unloaded
        from alembic import command  # only to migrate (see the module doc)

        with _alembic_failures_translated(before):
            command.upgrade(_config(conn), to)
        return before, typing.cast(str, _current(conn))


def check_current(database: engine_mod.Database) -> str:
    """Make sure the schema is this release's (a worker calls this at start).

    :returns: the revision.
    :raises exception.StoreSchemaOutdated: in one line naming :data:`SYNC_COMMAND`.
    :raises exception.StoreUnavailable: the database cannot be reached.
    """
    found = current(database)
    wanted = head()
    if found == wanted:
        return found
    details = {"current": found, "required": wanted}
    if found is not None and found not in REVISIONS:
        raise exception.StoreSchemaOutdated(
            f"the job store's database is at revision {found}, which this release does not "
            f"know (a newer release migrated it); this release needs {wanted}",
            details=details)
    shown = "empty (never migrated)" if found is None else f"at revision {found}"
    raise exception.StoreSchemaOutdated(
        f"the job store's database is {shown}; this release needs revision {wanted}: "
        f"run `{SYNC_COMMAND}`", details=details)


@contextlib.contextmanager
def _alembic_failures_translated(found: str | None) -> typing.Iterator[None]:
    """The one translation of alembic's errors (an unknown revision) into ours."""
    from alembic import util as alembic_util

    try:
        yield
    except alembic_util.CommandError as exc:
        raise exception.StoreSchemaOutdated(
            f"the job store's database is at revision {found}, which this release does not "
            f"know (a newer release migrated it); this release needs {head()}",
            details={"current": found, "required": head()}) from exc
