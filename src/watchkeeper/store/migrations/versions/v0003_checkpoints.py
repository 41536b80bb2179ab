"""Checkpoints of open windows, and the store sequence that bounds the replay after one.

Every ingest call (a batch of events, labels or feedback) gets a number from one increasing
sequence, stored with its rows in ``seq``; rows stored before this revision keep 0. A checkpoint
holds the open windows as they were after every call up to ``checkpoints.seq``, so a restart
replays only the rows with a larger ``seq``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    for table in ("events", "labels", "feedback"):
        op.add_column(
            table, sa.Column("seq", sa.BigInteger, nullable=False, server_default=sa.text("0"))
        )
        op.create_index(f"ix_{table}_seq", table, ["seq"])
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("taken_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_checkpoints"),
    )
    op.create_table(
        "window_checkpoints",
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("version", sa.String, nullable=False),
        sa.Column("segment", sa.String, nullable=False),
        sa.Column("window_seconds", sa.Integer, nullable=False),
        sa.Column("window_start", sa.Double, nullable=False),
        sa.Column("profile", sa.LargeBinary, nullable=False),
        sa.Column("event_count", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name="fk_window_checkpoints_model_id_models",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "model_id",
            "version",
            "segment",
            "window_seconds",
            "window_start",
            name="pk_window_checkpoints",
        ),
    )


def downgrade() -> None:
    op.drop_table("window_checkpoints")
    op.drop_table("checkpoints")
    for table in ("feedback", "labels", "events"):
        op.drop_index(f"ix_{table}_seq", table_name=table)
        op.drop_column(table, "seq")
