"""Alembic migrations of the job store (``manila-protector-manage db sync``)."""
