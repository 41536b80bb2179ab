"""The changed-windows feed of the alerting engine, kept across restarts.

A closed window (smallest size) that changes — it closes, late events fold into it, labels
or feedback join it — gets a row here until the alerting engine has evaluated it, so a
window that changed just before a restart is still evaluated after it.

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "changed_windows",
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("window_start", sa.Double, nullable=False),
        sa.Column("noted_at", sa.Double, nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name="fk_changed_windows_model_id_models",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_id", "window_start", name="pk_changed_windows"),
    )


def downgrade() -> None:
    op.drop_table("changed_windows")
