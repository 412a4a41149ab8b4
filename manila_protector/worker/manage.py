"""``manila-protector-manage``: the operator's commands for the worker's job store.

Console script::

    manila-protector-manage --config-file /etc/manila-protector/manila-protector.conf db sync
    manila-protector-manage --config-file /etc/manila-protector/manila-protector.conf db version

``db sync`` migrates the job store's database (``[database] connection``) to this
release's schema; it is idempotent, so run it at every install or upgrade before
starting the workers (a worker refuses a database that is not at this release's
revision).  ``db version`` prints the database's revision and this release's.

Exit status: 0 done, 1 failed (one line on stderr, never the database password),
2 bad usage, 78 a configuration that cannot be read (one line naming the option).
"""

from __future__ import annotations

# First: keeps eventlet out of the process (see the module).
from manila_protector.worker import threads  # noqa: F401

import sys
import typing

from oslo_config import cfg

from manila_protector import exception
from manila_protector import opts
from manila_protector import version
from manila_protector.worker.store import engine as engine_mod
from manila_protector.worker.store import schema

EXIT_FAILED = 1
#: A configuration that cannot be read (EX_CONFIG, as the worker's).
EXIT_CONFIG = 78


def _add_commands(subparsers: typing.Any) -> None:
    db = subparsers.add_parser("db", help="the job store's database")
    actions = db.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    actions.add_parser("sync", help="migrate the database to this release's schema "
                                    "(idempotent)")
    actions.add_parser("version", help="print the database's schema revision and this "
                                       "release's")


def prepare_conf(conf: cfg.ConfigOpts) -> None:
    """Register the options and the commands of ``manila-protector-manage`` on ``conf``."""
    opts.register_opts(conf)
    conf.register_cli_opt(cfg.SubCommandOpt("category", title="Commands",
                                            handler=_add_commands))


def _sync(database: engine_mod.Database) -> str:
    before, after = schema.upgrade(database)
    if before == after:
        return f"job store at {database.safe_url}: schema already at revision {after}"
    return (f"job store at {database.safe_url}: schema migrated from "
            f"{before or 'empty'} to revision {after}")


def _version(database: engine_mod.Database) -> str:
    found = schema.current(database)
    return (f"job store at {database.safe_url}: revision {found or 'none (empty)'}; "
            f"this release needs {schema.head()}")


def run(conf: cfg.ConfigOpts) -> str:
    """Run the parsed command on ``conf``; returns what to print.

    :raises exception.ProtectorError: the database failed or refused.
    """
    database = engine_mod.Database(conf.database.connection,
                                    engine_mod.facade_options(conf.database))
    try:
        if conf.category.action == "sync":
            return _sync(database)
        return _version(database)
    finally:
        database.dispose()


def main(argv: list[str] | None = None) -> int:
    """``manila-protector-manage``."""
    conf = cfg.ConfigOpts()
    prepare_conf(conf)
    try:
        conf(sys.argv[1:] if argv is None else argv, project="manila-protector",
             prog="manila-protector-manage", version=version.version_string())
        invalid = opts.first_invalid_value(conf)
    except cfg.Error as exc:
        invalid = opts.one_line(exc)
    if invalid:
        print(f"manila-protector-manage: {invalid}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        print(run(conf))
    except exception.ProtectorError as exc:
        print(f"manila-protector-manage: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
