"""Migration scripts, one revision each (alembic skips this file)."""
