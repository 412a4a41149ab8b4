"""The shared job store (SQLAlchemy with oslo.db, alembic migrations).

- :mod:`.api`: :class:`~.api.JobStore`, the public face: accept, begin, finish,
  adopt, list... and the invariants they keep.
- :mod:`.engine`: the database connection, its transactions and the one
  translation of database errors.
- :mod:`.listing`: the filters and pages of ``list_jobs``.
- :mod:`.tokens`: callers' tokens encrypted at rest.
- :mod:`.schema` and ``migrations/``: the schema, ``db sync`` and the start-up check.
- :mod:`.models`: the tables as SQLAlchemy Core sees them.

Worker-only: it needs the ``worker`` extra (oslo.db, SQLAlchemy 2, alembic,
cryptography, PyMySQL); the Karbor plugins never import it.
"""
