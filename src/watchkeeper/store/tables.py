"""The SQL schema of the store, as SQLAlchemy Core tables.

This is the schema the Alembic migrations produce; ``tests/store`` checks that the two agree.
Timestamps are ``DOUBLE`` epoch seconds (UTC); JSON columns hold the wire contract's values.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "ALERT_TABLES",
    "alert_history",
    "alert_notify_log",
    "alert_outbox",
    "alert_rule",
    "alert_silence",
    "alert_state",
    "api_tokens",
    "changed_windows",
    "checkpoints",
    "events",
    "feedback",
    "labels",
    "metadata",
    "model_versions",
    "models",
    "outcomes",
    "reference_profiles",
    "registry_alias_moves",
    "registry_aliases",
    "registry_versions",
    "retrain_runs",
    "rollout_events",
    "rollout_measurements",
    "rollouts",
    "serving_route_changes",
    "serving_routes",
    "window_checkpoints",
    "window_profiles",
]

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _model_fk() -> sa.ForeignKey:
    return sa.ForeignKey("models.id", ondelete="CASCADE")


def _seq() -> sa.Column[int]:
    """The number of the ingest call that stored the row (see ``checkpoints``); 0 before 0003."""
    return sa.Column("seq", sa.BigInteger, nullable=False, server_default=sa.text("0"))


# ``none_as_null`` stores a Python ``None`` as SQL NULL rather than the JSON text ``null``.
_JSON_NULLABLE = sa.JSON(none_as_null=True)

models = sa.Table(
    "models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String, nullable=False, unique=True),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    # 1 at registration, one more at every config update (optimistic concurrency, If-Match).
    sa.Column("config_version", sa.Integer, nullable=False, server_default=sa.text("1")),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("model_id", sa.Integer, _model_fk(), primary_key=True),
    sa.Column("version", sa.String, primary_key=True),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("metadata", sa.JSON, nullable=False),
)

reference_profiles = sa.Table(
    "reference_profiles",
    metadata,
    sa.Column("model_id", sa.Integer, _model_fk(), primary_key=True),
    sa.Column("profile", sa.LargeBinary, nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("model_id", sa.Integer, _model_fk(), primary_key=True),
    sa.Column("event_id", sa.String, primary_key=True),
    sa.Column("version", sa.String, nullable=False),
    sa.Column("ts", sa.Double, nullable=False),
    sa.Column("segment", sa.String, nullable=False),
    sa.Column("features", sa.JSON, nullable=False),
    sa.Column("prediction", _JSON_NULLABLE, nullable=True),
    sa.Column("proba", _JSON_NULLABLE, nullable=True),
    sa.Column("latency_ms", sa.Double, nullable=True),
    sa.Column("error", sa.Boolean, nullable=False),
    # The unit the prediction was about and the router arm that made it (0005; null when the
    # client sent none).
    sa.Column("unit", sa.String, nullable=True),
    sa.Column("arm", sa.String, nullable=True),
    sa.Column("ingested_at", sa.Double, nullable=False),
    _seq(),
    sa.Index(None, "model_id", "ts"),
    sa.Index(None, "seq"),
    # A unit's latest prediction at or before a time (outcomes by unit; 0006). Partial: most
    # events carry no unit, and their inserts skip the index.
    sa.Index(
        None,
        "model_id",
        "unit",
        "ts",
        sqlite_where=sa.text("unit IS NOT NULL"),
        postgresql_where=sa.text("unit IS NOT NULL"),
    ),
)

labels = sa.Table(
    "labels",
    metadata,
    sa.Column("model_id", sa.Integer, _model_fk(), primary_key=True),
    sa.Column("event_id", sa.String, primary_key=True),
    sa.Column("label", _JSON_NULLABLE, nullable=True),
    sa.Column("ts", sa.Double, nullable=False),
    sa.Column("received_at", sa.Double, nullable=False),
    _seq(),
    sa.Index(None, "model_id", "received_at"),
    sa.Index(None, "model_id", "ts"),
    sa.Index(None, "seq"),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("model_id", sa.Integer, _model_fk(), primary_key=True),
    sa.Column("event_id", sa.String, primary_key=True),
    sa.Column("user_id", sa.String, primary_key=True),
    sa.Column("rating", sa.Integer, nullable=False),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("ts", sa.Double, nullable=False),
    _seq(),
    sa.Index(None, "model_id", "ts"),
    sa.Index(None, "seq"),
)

outcomes = sa.Table(
    "outcomes",
    metadata,
    sa.Column("model_id", sa.Integer, _model_fk(), primary_key=True),
    sa.Column("event_id", sa.String, primary_key=True),
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("value", sa.Double, nullable=False),
    sa.Column("ts", sa.Double, nullable=False),
    # The unit the outcome was sent for (null: sent by prediction id).
    sa.Column("unit", sa.String, nullable=True),
    sa.Column("received_at", sa.Double, nullable=False),
    _seq(),
    sa.Index(None, "model_id", "ts"),
    sa.Index(None, "seq"),
)

window_profiles = sa.Table(
    "window_profiles",
    metadata,
    sa.Column("model_id", sa.Integer, _model_fk(), primary_key=True),
    sa.Column("version", sa.String, primary_key=True),
    sa.Column("segment", sa.String, primary_key=True),
    sa.Column("window_seconds", sa.Integer, primary_key=True),
    sa.Column("window_start", sa.Double, primary_key=True),
    sa.Column("profile", sa.LargeBinary, nullable=False),
    sa.Column("event_count", sa.BigInteger, nullable=False),
    sa.Column("closed", sa.Boolean, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Index(None, "closed", "model_id"),
    sa.Index(None, "model_id", "window_seconds", "window_start"),
)

# Closed windows (smallest size) that changed — closed, late events, labels or feedback — and
# that the alerting engine has not acknowledged evaluating; ``noted_at`` is the latest change.
changed_windows = sa.Table(
    "changed_windows",
    metadata,
    sa.Column("model_id", sa.Integer, _model_fk(), primary_key=True),
    sa.Column("window_start", sa.Double, primary_key=True),
    sa.Column("noted_at", sa.Double, nullable=False),
)

# The latest checkpoint of the open windows (one row, ``id`` 1): every ingest call numbered up to
# ``seq`` is in it, and a restart replays only the rows stored with a larger ``seq``.
checkpoints = sa.Table(
    "checkpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("taken_at", sa.Double, nullable=False),
)

window_checkpoints = sa.Table(
    "window_checkpoints",
    metadata,
    sa.Column("model_id", sa.Integer, _model_fk(), primary_key=True),
    sa.Column("version", sa.String, primary_key=True),
    sa.Column("segment", sa.String, primary_key=True),
    sa.Column("window_seconds", sa.Integer, primary_key=True),
    sa.Column("window_start", sa.Double, primary_key=True),
    sa.Column("profile", sa.LargeBinary, nullable=False),
    sa.Column("event_count", sa.BigInteger, nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String, nullable=False, unique=True),
    sa.Column("token_hash", sa.String, nullable=False, unique=True),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("revoked_at", sa.Double, nullable=True),
    sa.Column("last_used_at", sa.Double, nullable=True),
)

# The model registry (see watchkeeper.registry): versions keyed by model name and an integer,
# their artifact by sha256 (the bytes live in the artifact store), aliases and every move of one.
registry_versions = sa.Table(
    "registry_versions",
    metadata,
    sa.Column("model", sa.String, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("flavor", sa.String, nullable=False),
    sa.Column("artifact_sha256", sa.String, nullable=False),
    sa.Column("artifact_bytes", sa.BigInteger, nullable=False),
    sa.Column("trusted", sa.Boolean, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("signature", sa.JSON, nullable=False),
    sa.Column("reference_profile", sa.LargeBinary, nullable=True),
    sa.Column("code_revision", sa.String, nullable=True),
    sa.Column("registered_by", sa.String, nullable=False),
    sa.Column("registered_at", sa.Double, nullable=False),
)

registry_aliases = sa.Table(
    "registry_aliases",
    metadata,
    sa.Column("model", sa.String, primary_key=True),
    sa.Column("alias", sa.String, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
)

registry_alias_moves = sa.Table(
    "registry_alias_moves",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String, nullable=False),
    sa.Column("alias", sa.String, nullable=False),
    sa.Column("from_version", sa.Integer, nullable=True),
    sa.Column("to_version", sa.Integer, nullable=True),
    sa.Column("moved_by", sa.String, nullable=False),
    sa.Column("moved_at", sa.Double, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Index(None, "model", "alias", "moved_at"),
)

# Serving (see watchkeeper.serving): each model's routing config (arms, weights, sticky A/B,
# shadow) with a revision number, and every change of one (who, when, why), so "which split
# served at time T" has an answer like the aliases' history.
serving_routes = sa.Table(
    "serving_routes",
    metadata,
    sa.Column("model", sa.String, primary_key=True),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("updated_by", sa.String, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
)

serving_route_changes = sa.Table(
    "serving_route_changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("config", _JSON_NULLABLE, nullable=True),
    sa.Column("changed_by", sa.String, nullable=False),
    sa.Column("changed_at", sa.Double, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Index(None, "model", "changed_at"),
)

# -- alerting (revision 0002): alert state, notification log, silences, outbox, rules, history --

alert_state = sa.Table(
    "alert_state",
    metadata,
    sa.Column("fingerprint", sa.String, primary_key=True),
    sa.Column("rule", sa.String, nullable=False, index=True),
    sa.Column("labels", sa.JSON, nullable=False),
    sa.Column("annotations", sa.JSON, nullable=False),
    sa.Column("state", sa.String, nullable=False),
    sa.Column("active_at", sa.Double, nullable=False),
    sa.Column("fired_at", sa.Double),
    sa.Column("resolved_at", sa.Double),
    sa.Column("keep_firing_since", sa.Double),
    sa.Column("last_value", sa.Double),
    sa.Column("last_sent", sa.Double),
)

alert_notify_log = sa.Table(
    "alert_notify_log",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("group_key", sa.Text, nullable=False),
    sa.Column("receiver", sa.String, nullable=False),
    sa.Column("firing", sa.JSON, nullable=False),
    sa.Column("resolved", sa.JSON, nullable=False),
    sa.Column("notified_at", sa.Double, nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("group_labels", sa.JSON, nullable=False),
)

alert_silence = sa.Table(
    "alert_silence",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("matchers", sa.JSON, nullable=False),
    sa.Column("starts_at", sa.Double, nullable=False),
    sa.Column("ends_at", sa.Double, nullable=False),
    sa.Column("created_by", sa.String, nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
)

alert_outbox = sa.Table(
    "alert_outbox",
    metadata,
    sa.Column("key", sa.String, primary_key=True),
    sa.Column("receiver", sa.String, nullable=False),
    sa.Column("integration", sa.Integer, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.Double, nullable=False),
    sa.Column("delivered_at", sa.Double),
    sa.Column("last_error", sa.Text),
    sa.Index("ix_alert_outbox_due", "status", "next_attempt_at"),
)

alert_rule = sa.Table(
    "alert_rule",
    metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
)

alert_history = sa.Table(
    "alert_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("fingerprint", sa.String, nullable=False, index=True),
    sa.Column("rule", sa.String, nullable=False),
    sa.Column("labels", sa.JSON, nullable=False),
    sa.Column("previous", sa.String, nullable=False),
    sa.Column("state", sa.String, nullable=False),
    sa.Column("at", sa.Double, nullable=False, index=True),
    sa.Column("value", sa.Double),
)

# The tables of the alerting engine, in creation order (migration 0002 adopts them when they exist).
ALERT_TABLES = (
    alert_state,
    alert_notify_log,
    alert_silence,
    alert_outbox,
    alert_rule,
    alert_history,
)

# Rollouts (``watchkeeper.rollout``): one row per rollout with its state, every analysis
# measurement and every event of its history.
rollouts = sa.Table(
    "rollouts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
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
    sa.Index("ix_rollouts_model_state", "model", "state"),
)

rollout_measurements = sa.Table(
    "rollout_measurements",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "rollout_id", sa.Integer, sa.ForeignKey("rollouts.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("step_index", sa.Integer, nullable=False),
    sa.Column("at", sa.Double, nullable=False),
    sa.Column("metric", sa.String, nullable=False),
    sa.Column("outcome", sa.String, nullable=False),
    sa.Column("values", sa.JSON, nullable=False),
    sa.Index("ix_rollout_measurements_rollout_id_step_index", "rollout_id", "step_index"),
)

rollout_events = sa.Table(
    "rollout_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "rollout_id", sa.Integer, sa.ForeignKey("rollouts.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("at", sa.Double, nullable=False),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Index("ix_rollout_events_rollout_id", "rollout_id"),
)

# Retraining runs (``watchkeeper.retrain.runner``): one row per run with its trigger, status,
# timings, gate result, data summary and log.
retrain_runs = sa.Table(
    "retrain_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
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
    sa.Column("gate", _JSON_NULLABLE, nullable=True),
    sa.Column("data", _JSON_NULLABLE, nullable=True),
    sa.Column("champion_version", sa.Integer, nullable=True),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("rollout_id", sa.Integer, nullable=True),
    sa.Column("artifact", _JSON_NULLABLE, nullable=True),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Index("ix_retrain_runs_model_status", "model", "status"),
)
