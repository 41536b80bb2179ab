"""Pydantic models of the HTTP boundary, and what each route answers.

Small bodies (tokens, silences) are parsed with these models after authentication (see
:func:`~watchkeeper.server.wire.read_model`). The batch bodies (events, labels, feedback) and
model configs are parsed by orjson and validated by :mod:`watchkeeper.ingest` and
:class:`~watchkeeper.ingest.spec.ModelSpec`, which report every problem with its index and
field; their models here only document the wire contract in the OpenAPI schema. The response
models document the answers too: routes build their JSON directly, and the schemathesis suite
checks that what they send matches (tests/server/test_schemathesis.py).

:func:`answers` gives a route's ``responses``: its success model and every error status it can
answer, each with :class:`ErrorBody`. The app adds what every route shares (401/403 where a
token is needed, 431) when it builds the OpenAPI document.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "ERROR_DESCRIPTIONS",
    "MODEL_CONFIG_SCHEMA_FILE",
    "ApproveRequest",
    "ErrorBody",
    "Event",
    "EventBatch",
    "Feedback",
    "FeedbackBatch",
    "IngestResponse",
    "Label",
    "LabelBatch",
    "ModelConfig",
    "ModelUpdated",
    "Outcome",
    "OutcomeBatch",
    "QualityConfig",
    "RetrainRequest",
    "TokenCreate",
    "TokenCreated",
    "TokenInfo",
    "answers",
    "model_config_schema",
]

Scalar = str | float | int | bool | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


QualityCheckName = Literal[
    "duplicate_rows", "missing_rate", "new_categories", "non_numeric_share", "out_of_range_share"
]


class QualityConfig(_Strict):
    """Data-quality thresholds of a model (see docs/quality.md); absent entries default."""

    alpha: float = Field(0.05, gt=0.0, lt=1.0, description="Significance level of the tests.")
    floors: dict[QualityCheckName, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        default_factory=dict, description="Check name → floor, a share in [0, 1]."
    )


class ModelConfig(_Strict):
    """A model registration (see docs/service.md)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
    task: Literal["classification", "regression"]
    features: dict[str, Literal["numeric", "categorical", "boolean", "datetime", "text"]]
    prediction: str | None = "prediction"
    proba: dict[str, str] | None = None
    target_kind: Literal["numeric", "categorical", "boolean", "datetime", "text"] | None = None
    windows: list[int | str] = Field(
        default=[3600, 86400],
        description=(
            "Window lengths, shortest first: seconds (3600), durations ('30m', '6h') aligned "
            "to the Unix epoch, or calendar units 'day', 'week' (ISO, from Monday) and 'month' "
            "in `timezone`."
        ),
        examples=[[3600, "day", "week", "month"]],
    )
    timezone: str = Field(
        default="UTC",
        description="IANA time zone of the calendar windows (fixed lengths ignore it).",
        examples=["Europe/Paris"],
    )
    segments: list[str] = []
    retention_days: int = 30
    profile_retention_days: int = 400
    quality: QualityConfig | None = None
    outcomes: dict[
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")],
        Literal["binary", "numeric"],
    ] = Field(
        default_factory=dict,
        max_length=32,
        description=(
            "Business outcomes the predictions may get (POST /v1/models/{name}/outcomes): "
            "name → 'binary' (a click, a conversion) or 'numeric' (revenue)."
        ),
        examples=[{"click": "binary", "revenue": "numeric"}],
        json_schema_extra={"additionalProperties": False},
    )
    retrain: dict[str, Any] | None = Field(
        default=None,
        description=(
            "How the model is retrained and when (docs/retraining.md): `trainer` "
            "('package.module:function'), data (`lookback`, `label_delay`, `min_rows`…), the "
            "gate (`metric`, `margin`, `alpha`), triggers (`schedule`, a cron expression; "
            "`min_interval`; `after_detections`), `max_retries`, `retry_backoff`, `mode` "
            "('automatic' or 'manual'), `canary` and `executor`."
        ),
        examples=[{"trainer": "mypkg.train:fit", "label_delay": "1d", "mode": "manual"}],
    )


MODEL_CONFIG_SCHEMA_FILE = "model-config.schema.json"
"""The JSON Schema of ``model.yaml`` shipped in ``watchkeeper/data`` (for editors and CI)."""


def model_config_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a model config (``model.yaml``, ``POST /v1/models``).

    Every config watchkeeper accepts validates against it; watchkeeper's own check on load
    (:meth:`~watchkeeper.ingest.spec.ModelSpec.from_dict`) is stricter (reserved feature names,
    probabilities for classification only, window order, time zone names) and names the field
    of each problem. The copy shipped in the package is this function's output
    (``tests/ingest/test_model_config_schema.py`` keeps them equal).
    """
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **ModelConfig.model_json_schema(),
        "description": "A monitored model's config: model.yaml, or the body of POST /v1/models "
        "(docs/model-config.md).",
    }


class Event(_Strict):
    """One prediction event."""

    id: str | None = Field(None, description="Idempotency key; a UUID4 hex when absent.")
    timestamp: str | float | None = Field(
        None, description="ISO-8601 or epoch seconds; server time when absent."
    )
    version: str
    features: dict[str, Scalar]
    prediction: Scalar = None
    proba: dict[str, float] | None = None
    latency_ms: float | None = None
    error: bool = False
    segment: dict[str, str] | None = None
    unit: str | None = Field(
        None,
        description="The unit the prediction is about (a user, session or account id; 1-256 "
        "characters): sticky A/B assignment and outcomes by unit read it.",
    )
    arm: str | None = Field(
        None,
        description="The router arm that made the prediction (1-64 letters, digits, '_' or "
        "'-', starting with a letter); set by POST /v1/models/{model}/predict.",
    )


class EventBatch(_Strict):
    """``POST /v1/models/{model}/events`` (JSON form)."""

    events: list[Event]


class Label(_Strict):
    """A delayed label for the event ``id``."""

    id: str
    label: Scalar
    timestamp: str | float | None = None


class LabelBatch(_Strict):
    """``POST /v1/models/{model}/labels``."""

    labels: list[Label]


class Feedback(_Strict):
    """A user rating of the event ``id``."""

    id: str
    user_id: str
    rating: int = Field(ge=1, le=5)
    comment: str | None = None
    timestamp: str | float | None = None


class FeedbackBatch(_Strict):
    """``POST /v1/models/{model}/feedback``."""

    feedback: list[Feedback]


class Outcome(_Strict):
    """A business outcome ``name`` (declared in the model config) of the prediction ``id``, or
    of the latest prediction about ``unit`` at or before ``timestamp`` (one of the two)."""

    id: str | None = Field(None, description="The event id of the prediction.")
    unit: str | None = Field(
        None,
        description="Instead of id: the unit (user, session) whose latest prediction at or "
        "before the outcome's time it belongs to.",
    )
    name: str = Field(description="A declared outcome of the model (its config's `outcomes`).")
    value: bool | float = Field(
        description="true/false or 0/1 for a binary outcome, a finite number for a numeric one."
    )
    timestamp: str | float | None = Field(
        None, description="When it happened: ISO-8601 or epoch seconds; server time when absent."
    )


class OutcomeBatch(_Strict):
    """``POST /v1/models/{model}/outcomes``."""

    outcomes: list[Outcome]


class Rejected(BaseModel):
    """One problem of one rejected item."""

    index: int
    field: str
    reason: str


class IngestResponse(BaseModel):
    """What a batch did: accepted ids in order, duplicates, and every rejection; for labels and
    feedback also the conflicts (a different label or rating than the one kept for the id)."""

    accepted: int
    duplicates: int
    ids: list[str]
    rejected: list[Rejected]
    conflicts: list[Rejected] | None = None


class ErrorDetail(BaseModel):
    """The error of a failed request."""

    type: str
    message: str
    field: str | None = None
    index: int | None = None


class ErrorBody(BaseModel):
    """Body of every 4xx/5xx response."""

    error: ErrorDetail


class HealthStatus(BaseModel):
    """``/healthz`` and ``/readyz``: ``ok`` / ``ready``, or ``failed`` / ``not ready`` (503)
    with the reason (recovery progress, what failed)."""

    status: str = Field(examples=["ready"])
    reason: str | None = Field(
        default=None, examples=["recovering open windows: 1200 of 400000 events"]
    )
    store: str | None = Field(default=None, examples=["sqlite"])


class SilenceRequest(BaseModel):
    """``POST /v1/silences``."""

    matchers: list[str] = Field(min_length=1, examples=[['alertname="KeyFeatureDrift"']])
    duration: str | float | None = Field(default=None, examples=["2h"])
    starts_at: float | None = None
    ends_at: float | None = None
    created_by: str | None = None
    comment: str = ""


class TokenCreate(_Strict):
    """``POST /v1/tokens``."""

    name: str = Field(min_length=1, max_length=128)
    scopes: list[Literal["ingest", "read", "predict", "admin"]] = Field(min_length=1)


class TokenInfo(BaseModel):
    """A token's public fields (never the secret nor its hash)."""

    name: str
    scopes: list[str]
    created_at: float
    revoked_at: float | None
    last_used_at: float | None


class TokenCreated(TokenInfo):
    """A new token: ``token`` is shown this once."""

    token: str


class ModelList(BaseModel):
    """``GET /v1/models``."""

    models: list[ModelConfig]


class ReferenceSummary(BaseModel):
    """The profile made from new reference data."""

    model: str
    rows: int
    columns: dict[str, str] = Field(description="Column name → kind.")
    reference_id: str


class RegisteredVersion(BaseModel):
    """A version in the model registry (docs/registry.md)."""

    model: str
    version: int
    flavor: str
    artifact: dict[str, Any] = Field(description="`sha256` and `bytes` of the artifact.")
    trusted: bool
    description: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    tags: dict[str, Any]
    signature: dict[str, Any] = Field(description="`features`: name → kind, in input order.")
    has_reference_profile: bool
    code_revision: str | None
    registered_by: str
    registered_at: float
    aliases: list[str] = Field(description="Aliases that point at this version now.")


class LiveWindow(BaseModel):
    """A version's latest closed window (shortest length, segments merged)."""

    start: float
    end: float
    count: int
    signals: dict[str, float | None]


class LiveHealth(BaseModel):
    """How a version does in production, from the monitor."""

    events: int = Field(description="Events in its windows of the shortest length.")
    last_event: float | None = Field(description="Ingest time of its newest event.")
    window: LiveWindow | None
    alerts: list[dict[str, Any]] = Field(description="Its pending and firing alerts.")


class ModelUpdated(BaseModel):
    """``PUT /v1/models/{model}``: the model's new config and its config version."""

    model: dict[str, Any] = Field(description="The config now in force (as GET returns it).")
    config_version: int = Field(
        description="1 at registration, one more at every update; send it back as If-Match."
    )


class VersionInfo(BaseModel):
    """A model version: seen in events, registered, or both (joined by name: events of
    version `"2"` are registry version 2)."""

    version: str
    created_at: float = Field(description="First seen in events, else registered.")
    metadata: dict[str, Any] = Field(description="Metadata recorded with its events.")
    registered: bool
    monitored: bool
    registry: RegisteredVersion | None = Field(description="Its registration, when registered.")
    live: LiveHealth | None = Field(description="Its live health, when it has had events.")


class VersionList(BaseModel):
    """``GET /v1/models/{model}/versions``."""

    model: str
    versions: list[VersionInfo]


class SignalNames(BaseModel):
    """``GET /v1/models/{model}/signals``."""

    model: str
    signals: list[str]


class SignalPoint(BaseModel):
    """One closed window of a signal."""

    start: float
    end: float
    value: float | None
    version: str | None
    segment: str | None
    count: int


class SignalSeries(BaseModel):
    """``GET /v1/models/{model}/signals/{signal}``: one page of the series, oldest first."""

    model: str
    signal: str
    window: int | str = Field(description="The window length, as in the model's `windows`.")
    points: list[SignalPoint]
    next: float | None = Field(
        description=(
            "Null on the last page; else more windows remain: repeat the request with "
            "`start` set to this value to read the next page."
        )
    )


class RangeReport(BaseModel):
    """A ``watchkeeper.report/v1`` document over a time range (see docs/report.md)."""

    model_config = ConfigDict(extra="allow")

    schema_: str = Field(alias="schema", examples=["watchkeeper.report/v1"])


class TokenList(BaseModel):
    """``GET /v1/tokens``."""

    tokens: list[TokenInfo]


class RuleSet(BaseModel):
    """The alert rules in force, as rules-file entries (docs/alerts.md)."""

    rules: list[dict[str, Any]]


class RulesApplied(RuleSet):
    """``PUT /v1/rules``: how many rules the body held, and the rules in force now."""

    applied: int


class RulesAdded(RuleSet):
    """``POST /v1/models/{model}/rules/defaults``: names of the rules added."""

    added: list[str]


class SkippedRule(BaseModel):
    """A rule Prometheus cannot evaluate, and why."""

    rule: str
    reason: str


class PrometheusExport(BaseModel):
    """The rules as a Prometheus rules file."""

    yaml: str
    exported: list[str]
    skipped: list[SkippedRule]


class Alert(BaseModel):
    """One alert of one rule and label set."""

    fingerprint: str
    rule: str
    state: Literal["pending", "firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str]
    active_at: float | None
    fired_at: float | None
    resolved_at: float | None
    value: float | None
    muted: bool


class AlertList(BaseModel):
    """``GET /v1/alerts``."""

    alerts: list[Alert]


class AlertHistory(BaseModel):
    """``GET /v1/alerts/history``: state changes, newest first."""

    history: list[dict[str, Any]]


class AlertGroup(BaseModel):
    """Alerts notified together."""

    key: str
    receiver: str
    labels: dict[str, str]
    next_flush: float | None
    fingerprints: list[str]


class AlertGroups(BaseModel):
    """``GET /v1/alerts/groups``."""

    groups: list[AlertGroup]


class Notification(BaseModel):
    """A notification and its delivery."""

    key: str
    receiver: str
    integration: str = Field(
        description="The kind of the receiver's integration: webhook, slack, email, pagerduty, "
        "alertmanager (unknown once the receiver is no longer configured)"
    )
    integration_index: int = Field(description="Its position in the receiver's integrations")
    status: Literal["pending", "delivered", "dead"]
    attempts: int
    created_at: float
    delivered_at: float | None
    last_error: str | None
    message: dict[str, Any]


class Notifications(BaseModel):
    """``GET /v1/alerts/notifications``."""

    notifications: list[Notification]


class SilenceInfo(BaseModel):
    """A silence and whether it mutes alerts now."""

    id: str
    matchers: list[str]
    starts_at: float
    ends_at: float
    created_by: str | None
    comment: str
    updated_at: float | None
    status: Literal["active", "pending", "expired"]


class SilenceList(BaseModel):
    """``GET /v1/silences``."""

    silences: list[SilenceInfo]


ERROR_DESCRIPTIONS: Final[dict[int, str]] = {
    400: "The body is not readable in its content type (the message says where).",
    401: "Missing, unknown or revoked token.",
    403: "The token lacks the scope this route needs.",
    404: "No such model, token, silence or signal.",
    409: "It already exists.",
    412: "If-Match names a config version that is no longer the current one; read it again.",
    413: "The body passed its limit; the message names the limit and its setting.",
    415: "The body's content type is not read here; the message lists those that are.",
    422: "A value is invalid; the error names the field (and the index in a batch).",
    431: "The request target and headers passed WATCHKEEPER_MAX_HEADER_BYTES.",
    503: "The store does not answer; retry later.",
}


def answers(
    success: Any, *errors: int, status: int = 200, description: str = "Success"
) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses``: ``success`` (a model, or None for no body) at ``status``, and
    ``errors`` plus 503 (every route reads the store) with :class:`ErrorBody`."""
    success_answer: dict[str, Any] = {"description": description}
    if success is not None:
        success_answer["model"] = success
    documented: dict[int | str, dict[str, Any]] = {status: success_answer}
    for code in sorted({*errors, 503}):
        documented[code] = {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[code]}
    return documented


def json_body(model: type[BaseModel], *extra: str) -> dict[str, Any]:
    """``openapi_extra`` documenting a request body read by hand as ``model``."""
    content: dict[str, Any] = {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
    }
    for media_type in extra:
        content[media_type] = {"schema": {"type": "string", "format": "binary"}}
    return {"requestBody": {"required": True, "content": content}}


class RetrainRequest(_Strict):
    """``POST /v1/models/{name}/retrain``: why (recorded in the run's trigger), and the time
    the data are assembled at (default now; never later)."""

    reason: str = Field(default="", max_length=1000)
    as_of: float | None = Field(
        default=None, description="Epoch seconds: the 'now' of the run's data (default: now)."
    )


class ApproveRequest(_Strict):
    """``POST /v1/retrain/runs/{id}/approve``: an optional note for the run's log."""

    reason: str = Field(default="", max_length=1000)


DOCUMENTED_MODELS: tuple[type[BaseModel], ...] = (
    ModelConfig,
    EventBatch,
    LabelBatch,
    FeedbackBatch,
    OutcomeBatch,
    TokenCreate,
    SilenceRequest,
    ErrorBody,
    RetrainRequest,
    ApproveRequest,
)
