"""Pydantic models of the HTTP boundary.

Small bodies (tokens) are parsed with these models. The batch bodies (events, labels, feedback)
and model configs are parsed by orjson and validated by :mod:`watchkeeper.ingest` and
:class:`~watchkeeper.ingest.spec.ModelSpec`, which report every problem with its index and field;
their models here only document the wire contract in the OpenAPI schema.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ErrorBody",
    "Event",
    "EventBatch",
    "Feedback",
    "FeedbackBatch",
    "IngestResponse",
    "Label",
    "LabelBatch",
    "ModelConfig",
    "TokenCreate",
    "TokenCreated",
    "TokenInfo",
]

Scalar = str | float | int | bool | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(_Strict):
    """A model registration (see docs/service.md)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
    task: Literal["classification", "regression"]
    features: dict[str, Literal["numeric", "categorical", "boolean", "datetime", "text"]]
    prediction: str | None = "prediction"
    proba: dict[str, str] | None = None
    target_kind: Literal["numeric", "categorical", "boolean", "datetime", "text"] | None = None
    windows: list[int] = [3600, 86400]
    segments: list[str] = []
    retention_days: int = 30
    profile_retention_days: int = 400


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


class Rejected(BaseModel):
    """One problem of one rejected item."""

    index: int
    field: str
    reason: str


class IngestResponse(BaseModel):
    """What a batch did: accepted ids in order, duplicates, and every rejection."""

    accepted: int
    duplicates: int
    ids: list[str]
    rejected: list[Rejected]


class ErrorDetail(BaseModel):
    """The error of a failed request."""

    type: str
    message: str
    field: str | None = None
    index: int | None = None


class ErrorBody(BaseModel):
    """Body of every 4xx/5xx response."""

    error: ErrorDetail


class TokenCreate(_Strict):
    """``POST /v1/tokens``."""

    name: str = Field(min_length=1, max_length=128)
    scopes: list[Literal["ingest", "read", "admin"]] = Field(min_length=1)


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


def json_body(model: type[BaseModel], *extra: str) -> dict[str, Any]:
    """``openapi_extra`` documenting a request body read by hand as ``model``."""
    content: dict[str, Any] = {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
    }
    for media_type in extra:
        content[media_type] = {"schema": {"type": "string", "format": "binary"}}
    return {"requestBody": {"required": True, "content": content}}


DOCUMENTED_MODELS: tuple[type[BaseModel], ...] = (
    ModelConfig,
    EventBatch,
    LabelBatch,
    FeedbackBatch,
)
