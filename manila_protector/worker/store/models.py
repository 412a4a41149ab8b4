"""The job store's tables, as SQLAlchemy Core sees them.

The schema itself is created and changed by the alembic migrations only
(``migrations/versions``); these definitions must describe the schema at the
head revision, and ``tests/store`` checks that they do (a fresh ``db sync``
reflected and compared).

- ``jobs``: one row per ``job_id`` (the primary key: a job is claimed once
  across the fleet). ``owner`` is the worker member that runs it.  JSON values
  (the request, the context without secrets, the result, the error) are TEXT,
  MEDIUMTEXT on MariaDB/MySQL (TEXT there stops at 64 KiB).  Timestamps are
  naive UTC with microseconds (``DATETIME(6)`` on MariaDB).
  ``leftover_kind``/``leftover_id`` name what a failed job made and could not
  delete, until the sweeper has deleted it.  ``phase``, ``phase_detail``,
  ``phase_started_at`` and ``deadline`` are an unfinished job's progress
  (``manila_protector.progress``), cleared when it finishes.
- ``job_tokens``: the caller's token of an unfinished job, Fernet-encrypted;
  never in ``jobs``, deleted when the job finishes.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

#: JSON documents: unbounded TEXT, MEDIUMTEXT (16 MiB) on MariaDB/MySQL.
JSON_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
#: Naive UTC timestamps with microseconds (paging compares them for equality).
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

_MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}

metadata = sa.MetaData()

jobs = sa.Table(
    "jobs", metadata,
    sa.Column("job_id", sa.String(36), primary_key=True),
    sa.Column("operation", sa.String(16), nullable=False),
    sa.Column("share_id", sa.String(255), nullable=False),
    sa.Column("project_id", sa.String(255), nullable=True),
    sa.Column("owner", sa.String(255), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("request", JSON_TEXT, nullable=False),
    sa.Column("context", JSON_TEXT, nullable=False),
    sa.Column("result", JSON_TEXT, nullable=True),
    sa.Column("error", JSON_TEXT, nullable=True),
    sa.Column("host", sa.String(255), nullable=True),
    sa.Column("request_id", sa.String(255), nullable=True),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("started_at", TIMESTAMP, nullable=True),
    sa.Column("finished_at", TIMESTAMP, nullable=True),
    sa.Column("start_notified", sa.Boolean, nullable=False),
    sa.Column("end_notified", sa.Boolean, nullable=False),
    sa.Column("phase", sa.String(64), nullable=True),
    sa.Column("phase_started_at", TIMESTAMP, nullable=True),
    sa.Column("deadline", TIMESTAMP, nullable=True),
    # What the phase is about ("snapshot <id>"); revision 0002.
    sa.Column("phase_detail", sa.String(255), nullable=True),
    # What a failed job made and could not delete ("snapshot"/"share" and its id),
    # until the sweeper deleted it.
    sa.Column("leftover_kind", sa.String(16), nullable=True),
    sa.Column("leftover_id", sa.String(36), nullable=True),
    sa.Index("jobs_owner_status", "owner", "status"),
    sa.Index("jobs_leftover", "leftover_id"),
    sa.Index("jobs_created", "created_at", "job_id"),
    sa.Index("jobs_project_created", "project_id", "created_at", "job_id"),
    sa.Index("jobs_share", "share_id"),
    sa.Index("jobs_finished", "finished_at"),
    **_MYSQL,
)

job_tokens = sa.Table(
    "job_tokens", metadata,
    sa.Column("job_id", sa.String(36),
              sa.ForeignKey("jobs.job_id", ondelete="CASCADE", name="job_tokens_job"),
              primary_key=True),
    sa.Column("token", sa.Text, nullable=False),
    **_MYSQL,
)
