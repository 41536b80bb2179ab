"""Events carry their unit and router arm; each model's routing config and its changes.

``events.unit`` is the unit a prediction was about (a user, a session, an account: sticky A/B
assignment and outcomes by unit read it) and ``events.arm`` the router arm that made it; both
are null for events stored before this revision or sent without them. ``serving_routes`` holds
each model's routing config (``watchkeeper.serving``) and ``serving_route_changes`` every change
of one.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Nullable columns without a default: adding them rewrites no row on either backend.
    op.add_column("events", sa.Column("unit", sa.String, nullable=True))
    op.add_column("events", sa.Column("arm", sa.String, nullable=True))
    op.create_table(
        "serving_routes",
        sa.Column("model", sa.String, nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("updated_by", sa.String, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("model", name="pk_serving_routes"),
    )
    op.create_table(
        "serving_route_changes",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("model", sa.String, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("config", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("changed_by", sa.String, nullable=False),
        sa.Column("changed_at", sa.Double, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_serving_route_changes"),
    )
    op.create_index(
        "ix_serving_route_changes_model_changed_at",
        "serving_route_changes",
        ["model", "changed_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_serving_route_changes_model_changed_at", table_name="serving_route_changes")
    op.drop_table("serving_route_changes")
    op.drop_table("serving_routes")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("arm")
        batch.drop_column("unit")
