"""Business outcomes of predictions (a click, a conversion, revenue), one per event and name,
and the index that finds a unit's latest prediction at or before a time (outcomes by unit).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "outcomes",
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("event_id", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("ts", sa.Double, nullable=False),
        sa.Column("unit", sa.String, nullable=True),
        sa.Column("received_at", sa.Double, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name="fk_outcomes_model_id_models", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("model_id", "event_id", "name", name="pk_outcomes"),
    )
    op.create_index("ix_outcomes_model_id_ts", "outcomes", ["model_id", "ts"])
    op.create_index("ix_outcomes_seq", "outcomes", ["seq"])
    op.create_index(
        "ix_events_model_id_unit_ts",
        "events",
        ["model_id", "unit", "ts"],
        sqlite_where=sa.text("unit IS NOT NULL"),
        postgresql_where=sa.text("unit IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_events_model_id_unit_ts", table_name="events")
    op.drop_index("ix_outcomes_seq", table_name="outcomes")
    op.drop_index("ix_outcomes_model_id_ts", table_name="outcomes")
    op.drop_table("outcomes")
