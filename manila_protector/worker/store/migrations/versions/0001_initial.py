"""The initial job store: jobs (claimed once by job_id, owned by a worker) and their tokens.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the column types of this revision (models.py may move on).
_JSON = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
_TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
_MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.String(36), primary_key=True),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("share_id", sa.String(255), nullable=False),
        sa.Column("project_id", sa.String(255), nullable=True),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request", _JSON, nullable=False),
        sa.Column("context", _JSON, nullable=False),
        sa.Column("result", _JSON, nullable=True),
        sa.Column("error", _JSON, nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("request_id", sa.String(255), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("started_at", _TIME, nullable=True),
        sa.Column("finished_at", _TIME, nullable=True),
        sa.Column("start_notified", sa.Boolean, nullable=False),
        sa.Column("end_notified", sa.Boolean, nullable=False),
        sa.Column("phase", sa.String(64), nullable=True),
        sa.Column("phase_started_at", _TIME, nullable=True),
        sa.Column("deadline", _TIME, nullable=True),
        sa.Column("leftover_kind", sa.String(16), nullable=True),
        sa.Column("leftover_id", sa.String(36), nullable=True),
        **_MYSQL,
    )
    op.create_index("jobs_owner_status", "jobs", ["owner", "status"])
    op.create_index("jobs_created", "jobs", ["created_at", "job_id"])
    op.create_index("jobs_project_created", "jobs", ["project_id", "created_at", "job_id"])
    op.create_index("jobs_share", "jobs", ["share_id"])
    op.create_index("jobs_finished", "jobs", ["finished_at"])
    op.create_index("jobs_leftover", "jobs", ["leftover_id"])
    op.create_table(
        "job_tokens",
        sa.Column("job_id", sa.String(36),
                  sa.ForeignKey("jobs.job_id", ondelete="CASCADE", name="job_tokens_job"),
                  primary_key=True),
        sa.Column("token", sa.Text, nullable=False),
        **_MYSQL,
    )
