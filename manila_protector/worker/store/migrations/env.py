"""Alembic environment: runs on the connection the caller put in ``config.attributes``.

Only :mod:`manila_protector.worker.store.schema` runs migrations; it hands over an
open connection (never a URL), so the database credentials never pass through
alembic's configuration or logs.
"""

from __future__ import annotations

from alembic import context

from manila_protector.worker.store import models


def _run() -> None:
    connection = context.config.attributes["connection"]
    context.configure(connection=connection, target_metadata=models.metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


_run()
