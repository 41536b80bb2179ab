"""Retraining runs: their trigger, status, attempts, timings, gate result, data summary and log.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    nullable_json = sa.JSON(none_as_null=True)
    op.create_table(
        "retrain_runs",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("model", sa.String, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("trigger", sa.JSON, nullable=False),
        sa.Column("mode", sa.String, nullable=False),
        sa.Column("executor", sa.String, nullable=False),
        sa.Column("as_of", sa.Double, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("interruptions", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Double, nullable=False),
        sa.Column("created_by", sa.String, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("started_at", sa.Double, nullable=True),
        sa.Column("finished_at", sa.Double, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("log", sa.Text, nullable=False),
        sa.Column("gate", nullable_json, nullable=True),
        sa.Column("data", nullable_json, nullable=True),
        sa.Column("champion_version", sa.Integer, nullable=True),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("rollout_id", sa.Integer, nullable=True),
        sa.Column("artifact", nullable_json, nullable=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_retrain_runs"),
    )
    op.create_index("ix_retrain_runs_model_status", "retrain_runs", ["model", "status"])


def downgrade() -> None:
    op.drop_index("ix_retrain_runs_model_status", table_name="retrain_runs")
    op.drop_table("retrain_runs")
