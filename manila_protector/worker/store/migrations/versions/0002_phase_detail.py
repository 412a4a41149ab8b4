"""Job progress: what a job's phase is about (``phase_detail``).

``phase``, ``phase_started_at`` and ``deadline`` came with 0001 (unused until
this release); the phase's detail is new.  Adding a nullable column changes no
existing row: jobs accepted before the upgrade simply show no detail.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("phase_detail", sa.String(255), nullable=True))
