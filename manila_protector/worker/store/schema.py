"""The job store's schema: alembic migrations, ``db sync``, and the check a worker makes at start.

Invariants: the schema is created and changed by the migrations in
``migrations/versions`` only (never ``metadata.create_all``); :func:`upgrade` is
idempotent (a database at the head is left as it is); a worker runs on a
database at exactly this release's head revision and refuses any other
(:func:`check_current`), naming the command that fixes it.  Migrations run on a
connection handed to alembic, never on a URL, so the database password is
never in alembic's configuration.  alembic's errors are translated here.
"""

from __future__ import annotations

import contextlib
import typing

from alembic import command
from alembic import config as alembic_config
from alembic import script as alembic_script
from alembic import util as alembic_util
from alembic.runtime import migration
import sqlalchemy as sa

from manila_protector import exception
from manila_protector.worker.store import engine as engine_mod

#: What an operator runs to bring the schema up to date.
SYNC_COMMAND = "manila-protector-manage db sync"
_SCRIPT_LOCATION = "manila_protector.worker.store:migrations"


def _config(connection: sa.Connection | None = None) -> alembic_config.Config:
    config = alembic_config.Config()
    config.set_main_option("script_location", _SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    """The revision this release needs (the migrations' single head)."""
    heads = alembic_script.ScriptDirectory.from_config(_config()).get_heads()
    if len(heads) != 1:  # pragma: no cover - a packaging mistake
        raise exception.ProtectorError(f"the job store's migrations have {len(heads)} heads")
    return heads[0]


def _current(connection: sa.Connection) -> str | None:
    heads = migration.MigrationContext.configure(connection).get_current_heads()
    return heads[0] if heads else None


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
    if found is not None and found not in _known_revisions():
        raise exception.StoreSchemaOutdated(
            f"the job store's database is at revision {found}, which this release does not "
            f"know (a newer release migrated it); this release needs {wanted}",
            details=details)
    shown = "empty (never migrated)" if found is None else f"at revision {found}"
    raise exception.StoreSchemaOutdated(
        f"the job store's database is {shown}; this release needs revision {wanted}: "
        f"run `{SYNC_COMMAND}`", details=details)


def _known_revisions() -> set[str]:
    scripts = alembic_script.ScriptDirectory.from_config(_config())
    return {revision.revision for revision in scripts.walk_revisions()}


@contextlib.contextmanager
def _alembic_failures_translated(found: str | None) -> typing.Iterator[None]:
    """The one translation of alembic's errors (an unknown revision) into ours."""
    try:
        yield
    except alembic_util.CommandError as exc:
        raise exception.StoreSchemaOutdated(
            f"the job store's database is at revision {found}, which this release does not "
            f"know (a newer release migrated it); this release needs {head()}",
            details={"current": found, "required": head()}) from exc
