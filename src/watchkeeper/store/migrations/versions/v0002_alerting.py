"""Alerting: alert state, notification log, silences, outbox, rules and alert history.

The alerting tables of :mod:`watchkeeper.store.tables` (``ALERT_TABLES``). Before this
revision the alerting code created them itself (``create_all``) in databases already at
``0001``; a table that exists is therefore adopted as it is rather than created again.

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_TABLES = (
    "alert_state",
    "alert_notify_log",
    "alert_silence",
    "alert_outbox",
    "alert_rule",
    "alert_history",
)


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "alert_state" not in existing:
        op.create_table(
            "alert_state",
            sa.Column("fingerprint", sa.String, nullable=False),
            sa.Column("rule", sa.String, nullable=False),
            sa.Column("labels", sa.JSON, nullable=False),
            sa.Column("annotations", sa.JSON, nullable=False),
            sa.Column("state", sa.String, nullable=False),
            sa.Column("active_at", sa.Double, nullable=False),
            sa.Column("fired_at", sa.Double, nullable=True),
            sa.Column("resolved_at", sa.Double, nullable=True),
            sa.Column("keep_firing_since", sa.Double, nullable=True),
            sa.Column("last_value", sa.Double, nullable=True),
            sa.Column("last_sent", sa.Double, nullable=True),
            sa.PrimaryKeyConstraint("fingerprint", name="pk_alert_state"),
        )
        op.create_index("ix_alert_state_rule", "alert_state", ["rule"])
    if "alert_notify_log" not in existing:
        op.create_table(
            "alert_notify_log",
            sa.Column("id", sa.String, nullable=False),
            sa.Column("group_key", sa.Text, nullable=False),
            sa.Column("receiver", sa.String, nullable=False),
            sa.Column("firing", sa.JSON, nullable=False),
            sa.Column("resolved", sa.JSON, nullable=False),
            sa.Column("notified_at", sa.Double, nullable=False),
            sa.Column("sequence", sa.Integer, nullable=False),
            sa.Column("group_labels", sa.JSON, nullable=False),
            sa.PrimaryKeyConstraint("id", name="pk_alert_notify_log"),
        )
    if "alert_silence" not in existing:
        op.create_table(
            "alert_silence",
            sa.Column("id", sa.String, nullable=False),
            sa.Column("matchers", sa.JSON, nullable=False),
            sa.Column("starts_at", sa.Double, nullable=False),
            sa.Column("ends_at", sa.Double, nullable=False),
            sa.Column("created_by", sa.String, nullable=False),
            sa.Column("comment", sa.Text, nullable=False),
            sa.Column("updated_at", sa.Double, nullable=False),
            sa.PrimaryKeyConstraint("id", name="pk_alert_silence"),
        )
    if "alert_outbox" not in existing:
        op.create_table(
            "alert_outbox",
            sa.Column("key", sa.String, nullable=False),
            sa.Column("receiver", sa.String, nullable=False),
            sa.Column("integration", sa.Integer, nullable=False),
            sa.Column("payload", sa.JSON, nullable=False),
            sa.Column("created_at", sa.Double, nullable=False),
            sa.Column("status", sa.String, nullable=False),
            sa.Column("attempts", sa.Integer, nullable=False),
            sa.Column("next_attempt_at", sa.Double, nullable=False),
            sa.Column("delivered_at", sa.Double, nullable=True),
            sa.Column("last_error", sa.Text, nullable=True),
            sa.PrimaryKeyConstraint("key", name="pk_alert_outbox"),
        )
        op.create_index("ix_alert_outbox_due", "alert_outbox", ["status", "next_attempt_at"])
    if "alert_rule" not in existing:
        op.create_table(
            "alert_rule",
            sa.Column("name", sa.String, nullable=False),
            sa.Column("position", sa.Integer, nullable=False),
            sa.Column("spec", sa.JSON, nullable=False),
            sa.Column("updated_at", sa.Double, nullable=False),
            sa.PrimaryKeyConstraint("name", name="pk_alert_rule"),
        )
    if "alert_history" not in existing:
        op.create_table(
            "alert_history",
            sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
            sa.Column("fingerprint", sa.String, nullable=False),
            sa.Column("rule", sa.String, nullable=False),
            sa.Column("labels", sa.JSON, nullable=False),
            sa.Column("previous", sa.String, nullable=False),
            sa.Column("state", sa.String, nullable=False),
            sa.Column("at", sa.Double, nullable=False),
            sa.Column("value", sa.Double, nullable=True),
            sa.PrimaryKeyConstraint("id", name="pk_alert_history"),
        )
        op.create_index("ix_alert_history_fingerprint", "alert_history", ["fingerprint"])
        op.create_index("ix_alert_history_at", "alert_history", ["at"])


def downgrade() -> None:
    for table in reversed(_TABLES):
        op.drop_table(table)
