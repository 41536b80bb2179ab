"""Rollouts: their state, every analysis measurement and every event of their history.

Revision ID: 0009
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("model", sa.String, nullable=False),
        sa.Column("baseline", sa.String, nullable=False),
        sa.Column("candidate", sa.String, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("step_index", sa.Integer, nullable=False),
        sa.Column("step_started_at", sa.Double, nullable=False),
        sa.Column("analysis_since", sa.Double, nullable=False),
        sa.Column("looks", sa.Integer, nullable=False),
        sa.Column("next_analysis_at", sa.Double, nullable=True),
        sa.Column("weights", sa.JSON, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.String, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rollouts"),
    )
    op.create_index("ix_rollouts_model_state", "rollouts", ["model", "state"])
    for name, columns in (
        (
            "rollout_measurements",
            [
                sa.Column("step_index", sa.Integer, nullable=False),
                sa.Column("at", sa.Double, nullable=False),
                sa.Column("metric", sa.String, nullable=False),
                sa.Column("outcome", sa.String, nullable=False),
                sa.Column("values", sa.JSON, nullable=False),
            ],
        ),
        (
            "rollout_events",
            [
                sa.Column("at", sa.Double, nullable=False),
                sa.Column("kind", sa.String, nullable=False),
                sa.Column("reason", sa.Text, nullable=False),
                sa.Column("details", sa.JSON, nullable=False),
            ],
        ),
    ):
        op.create_table(
            name,
            sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
            sa.Column("rollout_id", sa.Integer, nullable=False),
            *columns,
            sa.ForeignKeyConstraint(
                ["rollout_id"],
                ["rollouts.id"],
                name=f"fk_{name}_rollout_id_rollouts",
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("id", name=f"pk_{name}"),
        )
    op.create_index(
        "ix_rollout_measurements_rollout_id_step_index",
        "rollout_measurements",
        ["rollout_id", "step_index"],
    )
    op.create_index("ix_rollout_events_rollout_id", "rollout_events", ["rollout_id"])


def downgrade() -> None:
    op.drop_index("ix_rollout_events_rollout_id", table_name="rollout_events")
    op.drop_index(
        "ix_rollout_measurements_rollout_id_step_index", table_name="rollout_measurements"
    )
    op.drop_table("rollout_events")
    op.drop_table("rollout_measurements")
    op.drop_index("ix_rollouts_model_state", table_name="rollouts")
    op.drop_table("rollouts")
