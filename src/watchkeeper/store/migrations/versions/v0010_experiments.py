"""Experiments: A/B tests of a model's versions, their arms, metrics and routing to restore.

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
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("model", sa.String, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("previous_routing", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("routing_revision", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.String, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("stopped_by", sa.String, nullable=True),
        sa.Column("stopped_at", sa.Double, nullable=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_experiments"),
    )
    op.create_index("ix_experiments_model_state", "experiments", ["model", "state"])


def downgrade() -> None:
    op.drop_index("ix_experiments_model_state", table_name="experiments")
    op.drop_table("experiments")
