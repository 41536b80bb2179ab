"""Initial schema: models, versions, profiles, events, labels, feedback, window profiles, tokens.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _model_id(table: str) -> tuple[sa.Column[int], sa.ForeignKeyConstraint]:
    """The ``model_id`` column of ``table`` and its cascading foreign key to ``models``."""
    return (
        sa.Column("model_id", sa.Integer, primary_key=True),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=f"fk_{table}_model_id_models", ondelete="CASCADE"
        ),
    )


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_models"),
        sa.UniqueConstraint("name", name="uq_models_name"),
    )
    op.create_table(
        "model_versions",
        *_model_id("model_versions"),
        sa.Column("version", sa.String, primary_key=True),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("model_id", "version", name="pk_model_versions"),
    )
    op.create_table(
        "reference_profiles",
        *_model_id("reference_profiles"),
        sa.Column("profile", sa.LargeBinary, nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("model_id", name="pk_reference_profiles"),
    )
    op.create_table(
        "events",
        *_model_id("events"),
        sa.Column("event_id", sa.String, primary_key=True),
        sa.Column("version", sa.String, nullable=False),
        sa.Column("ts", sa.Double, nullable=False),
        sa.Column("segment", sa.String, nullable=False),
        sa.Column("features", sa.JSON, nullable=False),
        sa.Column("prediction", sa.JSON, nullable=True),
        sa.Column("proba", sa.JSON, nullable=True),
        sa.Column("latency_ms", sa.Double, nullable=True),
        sa.Column("error", sa.Boolean, nullable=False),
        sa.Column("ingested_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("model_id", "event_id", name="pk_events"),
    )
    op.create_index("ix_events_model_id_ts", "events", ["model_id", "ts"])
    op.create_table(
        "labels",
        *_model_id("labels"),
        sa.Column("event_id", sa.String, primary_key=True),
        sa.Column("label", sa.JSON, nullable=True),
        sa.Column("ts", sa.Double, nullable=False),
        sa.Column("received_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("model_id", "event_id", name="pk_labels"),
    )
    op.create_index("ix_labels_model_id_received_at", "labels", ["model_id", "received_at"])
    op.create_index("ix_labels_model_id_ts", "labels", ["model_id", "ts"])
    op.create_table(
        "feedback",
        *_model_id("feedback"),
        sa.Column("event_id", sa.String, primary_key=True),
        sa.Column("user_id", sa.String, primary_key=True),
        sa.Column("rating", sa.Integer, nullable=False),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("ts", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("model_id", "event_id", "user_id", name="pk_feedback"),
    )
    op.create_index("ix_feedback_model_id_ts", "feedback", ["model_id", "ts"])
    op.create_table(
        "window_profiles",
        *_model_id("window_profiles"),
        sa.Column("version", sa.String, primary_key=True),
        sa.Column("segment", sa.String, primary_key=True),
        sa.Column("window_seconds", sa.Integer, primary_key=True),
        sa.Column("window_start", sa.Double, primary_key=True),
        sa.Column("profile", sa.LargeBinary, nullable=False),
        sa.Column("event_count", sa.BigInteger, nullable=False),
        sa.Column("closed", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint(
            "model_id",
            "version",
            "segment",
            "window_seconds",
            "window_start",
            name="pk_window_profiles",
        ),
    )
    op.create_index("ix_window_profiles_closed_model_id", "window_profiles", ["closed", "model_id"])
    op.create_index(
        "ix_window_profiles_model_id_window_seconds_window_start",
        "window_profiles",
        ["model_id", "window_seconds", "window_start"],
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("token_hash", sa.String, nullable=False),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("revoked_at", sa.Double, nullable=True),
        sa.Column("last_used_at", sa.Double, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("name", name="uq_api_tokens_name"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )


def downgrade() -> None:
    for table in (
        "api_tokens",
        "window_profiles",
        "feedback",
        "labels",
        "events",
        "reference_profiles",
        "model_versions",
        "models",
    ):
        op.drop_table(table)
