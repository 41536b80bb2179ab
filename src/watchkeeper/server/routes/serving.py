"""Serving routes: predict through the router, and each model's routing config.

``POST /v1/models/{model}/predict`` (scope ``predict``) takes one row ``{"features": {...},
"unit": "u-1"}`` or a batch ``{"rows": [{"features": {...}, "unit": ...}, ...]}`` as JSON, or an
Arrow IPC stream (one column per feature, an optional ``unit`` column). A model's predictions
run on threads of their own, at most ``PREDICT_THREADS_PER_MODEL`` at a time per model, so a slow
model makes only its own requests wait: ingest and the other models keep their threads. The
routing config is read by ``read`` tokens and changed by ``admin`` ones.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import anyio
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from watchkeeper.errors import IngestError, NotFoundError
from watchkeeper.ingest import unwrap_batch
from watchkeeper.server.auth import Principal, require
from watchkeeper.server.errors import payload_too_large
from watchkeeper.server.schemas import answers, json_body
from watchkeeper.server.state import AppState, app_state
from watchkeeper.server.wire import (
    ARROW_STREAM,
    JSON,
    JsonResponse,
    parse_json,
    read_body,
    read_table,
    require_media,
)
from watchkeeper.serving import PredictRequest, Serving

__all__ = ["ARM_HEADER", "PREDICT_THREADS_PER_MODEL", "SERVING_MODELS", "router"]

router = APIRouter(tags=["serving"])

ARM_HEADER: Final = "x-watchkeeper-arm"
PREDICT_THREADS_PER_MODEL: Final = 4
Admin = Annotated[Principal, Depends(require("admin"))]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictRow(_Strict):
    """One row to predict: its features and the unit it is about."""

    features: dict[str, str | float | int | bool | None]
    unit: str | None = Field(None, description="User, session or account id: sticky A/B key.")


class PredictBody(_Strict):
    """``POST /v1/models/{model}/predict`` (JSON): one row, or ``rows`` for a batch."""

    features: dict[str, str | float | int | bool | None] | None = None
    unit: str | None = None
    rows: list[PredictRow] | None = None


class RoutingArm(_Strict):
    """An arm: a name, a version number or an alias, a weight."""

    name: str
    version: int | None = None
    alias: str | None = None
    weight: float = 1.0


class RoutingShadow(_Strict):
    """The shadow: a version or alias answering ``fraction`` of requests, logged only."""

    version: int | None = None
    alias: str | None = None
    fraction: float
    name: str = "shadow"


class RoutingBody(_Strict):
    """``PUT /v1/models/{model}/routing`` (docs/serving.md)."""

    arms: list[RoutingArm]
    sticky: bool = True
    salt: str = ""
    shadow: RoutingShadow | None = None
    override_header: bool = True
    reason: str = ""


class WeightsBody(_Strict):
    """``PATCH /v1/models/{model}/routing/weights``: new weights by arm name."""

    weights: dict[str, float]
    reason: str = ""


class PredictionItem(BaseModel):
    """One answer: the prediction id (for labels, feedback, outcomes), version, arm, output."""

    id: str
    version: int
    arm: str
    prediction: str | float | int | bool | None
    proba: dict[str, float] | None = None


class PredictAnswer(BaseModel):
    """One row's answer (the fields of :class:`PredictionItem`), or ``predictions`` for a
    batch."""

    model: str
    id: str | None = None
    version: int | None = None
    arm: str | None = None
    prediction: str | float | int | bool | None = None
    proba: dict[str, float] | None = None
    predictions: list[PredictionItem] | None = None


class RoutingDocument(BaseModel):
    """A model's routing config now (``config`` null and revision 0: the champion serves)."""

    model: str
    revision: int
    config: dict[str, Any] | None
    serves: str | None = None
    updated_by: str | None = None
    updated_at: float | None = None


class RoutingChange(BaseModel):
    """One change of a routing config."""

    revision: int
    config: dict[str, Any] | None
    changed_by: str
    changed_at: float
    reason: str


class RoutingHistory(BaseModel):
    """Every change of a model's routing config, newest first."""

    model: str
    changes: list[RoutingChange]


SERVING_MODELS: Final[tuple[type[BaseModel], ...]] = (PredictBody, RoutingBody, WeightsBody)


def _serving(state: AppState) -> Serving:
    if state.serving is None:
        raise NotFoundError("serving is not enabled on this server", kind="route", name="predict")
    return state.serving


def _request(state: AppState, body: bytes, kind: str) -> tuple[PredictRequest, bool]:
    """The rows of a body, and whether it was a single row (answered as one object)."""
    limit = state.settings.max_batch_events
    if kind == ARROW_STREAM:
        table = read_table(body, kind, max_rows=limit, max_bytes=state.settings.max_body_bytes)
        return PredictRequest.from_table(table), False
    document = parse_json(body)
    if isinstance(document, dict) and "rows" not in document:
        features = document.get("features")
        if not isinstance(features, dict) or not set(document) <= {"features", "unit"}:
            raise IngestError(
                'the body must be {"features": {...}, "unit": ...} or {"rows": [...]}',
                field="features",
            )
        return PredictRequest.from_rows([features], [document.get("unit")]), True
    rows = unwrap_batch(document, "rows")
    if len(rows) > limit:
        raise payload_too_large(
            f"the batch has {len(rows)} rows; the limit is {limit} "
            "(WATCHKEEPER_MAX_BATCH_EVENTS): split it",
            field="rows",
        )
    for index, row in enumerate(rows):
        if (
            not isinstance(row, dict)
            or not isinstance(row.get("features"), dict)
            or not set(row) <= {"features", "unit"}
        ):
            raise IngestError(
                f'rows[{index}]: expected {{"features": {{...}}, "unit": ...}}',
                index=index,
                field="rows",
            )
    return (
        PredictRequest.from_rows(
            [row["features"] for row in rows], [row.get("unit") for row in rows]
        ),
        False,
    )


def _limiter(request: Request, model: str) -> anyio.CapacityLimiter:
    """The threads ``model``'s predictions may use at a time (its own, not shared)."""
    limiters: dict[str, anyio.CapacityLimiter] = request.app.state.__dict__.setdefault(
        "predict_limiters", {}
    )
    limiter = limiters.get(model)
    if limiter is None:
        limiter = limiters.setdefault(model, anyio.CapacityLimiter(PREDICT_THREADS_PER_MODEL))
    return limiter


def _predict(state: AppState, model: str, body: bytes, kind: str, arm: str | None) -> Any:
    rows, single = _request(state, body, kind)
    answers_ = [answer.to_dict() for answer in _serving(state).predict(model, rows, arm=arm)]
    if single:
        return {"model": model, **answers_[0]}
    return {"model": model, "predictions": answers_}


@router.post(
    "/v1/models/{model}/predict",
    summary="Predict with the model's registry versions, through its router",
    response_model=None,
    responses=answers(PredictAnswer, 400, 404, 409, 413, 415, 422),
    openapi_extra=json_body(PredictBody, ARROW_STREAM),
    dependencies=[Depends(require("predict"))],
)
async def predict(model: str, request: Request) -> JsonResponse:
    """Predict one row or a batch; every prediction is logged to the monitor."""
    state = app_state(request)
    kind = require_media(request, JSON, ARROW_STREAM)
    body = await read_body(request, limit=state.settings.max_body_bytes, setting="max_body_bytes")
    arm = request.headers.get(ARM_HEADER)
    answer = await anyio.to_thread.run_sync(
        _predict, state, model, body, kind, arm, limiter=_limiter(request, model)
    )
    return JsonResponse(answer)


def _routing_document(serving: Serving, model: str) -> dict[str, Any]:
    record = serving.routing(model)
    if record is None:
        return {"model": model, "revision": 0, "config": None, "serves": "champion"}
    return {
        "model": model,
        "revision": record.revision,
        "config": dict(record.config),
        "updated_by": record.updated_by,
        "updated_at": record.updated_at,
    }


@router.get(
    "/v1/models/{model}/routing",
    summary="The model's routing config (null: it serves its champion alias)",
    response_model=None,
    responses=answers(RoutingDocument, 404),
    dependencies=[Depends(require("read"))],
)
async def get_routing(model: str, request: Request) -> JsonResponse:
    """Where the model's predict requests go."""
    serving = _serving(app_state(request))
    return JsonResponse(await anyio.to_thread.run_sync(_routing_document, serving, model))


@router.put(
    "/v1/models/{model}/routing",
    summary="Set the model's routing config (arms, weights, sticky A/B, shadow)",
    response_model=None,
    responses=answers(RoutingDocument, 400, 404, 409, 413, 415, 422),
    openapi_extra=json_body(RoutingBody),
)
async def put_routing(model: str, request: Request, principal: Admin) -> JsonResponse:
    """Replace the routing config; it takes effect at the next request."""
    state = app_state(request)
    require_media(request, JSON)
    body = await read_body(
        request, limit=state.settings.max_admin_body_bytes, setting="max_admin_body_bytes"
    )
    document = parse_json(body)
    reason = document.pop("reason", "") if isinstance(document, dict) else ""
    serving = _serving(state)

    def change() -> dict[str, Any]:
        serving.set_routing(model, document, changed_by=principal.name, reason=str(reason))
        return _routing_document(serving, model)

    return JsonResponse(await anyio.to_thread.run_sync(change))


@router.patch(
    "/v1/models/{model}/routing/weights",
    summary="Change the weights of the model's arms",
    response_model=None,
    responses=answers(RoutingDocument, 400, 404, 409, 413, 415, 422),
    openapi_extra=json_body(WeightsBody),
)
async def patch_weights(model: str, request: Request, principal: Admin) -> JsonResponse:
    """New weights for the arms named; the others keep theirs."""
    state = app_state(request)
    require_media(request, JSON)
    body = await read_body(
        request, limit=state.settings.max_admin_body_bytes, setting="max_admin_body_bytes"
    )
    document = parse_json(body)
    if not isinstance(document, dict) or not isinstance(document.get("weights"), dict):
        raise IngestError('the body must be {"weights": {"arm": number, ...}}', field="weights")
    serving = _serving(state)

    def change() -> dict[str, Any]:
        serving.set_weights(
            model,
            document["weights"],
            changed_by=principal.name,
            reason=str(document.get("reason", "")),
        )
        return _routing_document(serving, model)

    return JsonResponse(await anyio.to_thread.run_sync(change))


@router.delete(
    "/v1/models/{model}/routing",
    summary="Remove the model's routing config: its champion alias serves everything",
    response_model=None,
    responses=answers(RoutingDocument, 404),
)
async def delete_routing(model: str, request: Request, principal: Admin) -> JsonResponse:
    """Back to the champion for every request."""
    serving = _serving(app_state(request))

    def change() -> dict[str, Any]:
        serving.set_routing(model, None, changed_by=principal.name, reason="routing removed")
        return _routing_document(serving, model)

    return JsonResponse(await anyio.to_thread.run_sync(change))


@router.get(
    "/v1/models/{model}/routing/history",
    summary="Every change of the model's routing config, newest first",
    response_model=None,
    responses=answers(RoutingHistory, 404, 422),
    dependencies=[Depends(require("read"))],
)
async def routing_history(
    model: str, request: Request, limit: int = Query(100, ge=1, le=1000)
) -> JsonResponse:
    """Who changed the routing, when, why, and to what."""
    serving = _serving(app_state(request))

    def read() -> dict[str, Any]:
        changes = serving.routing_history(model, limit=limit)
        return {
            "model": model,
            "changes": [
                {
                    "revision": change.revision,
                    "config": None if change.config is None else dict(change.config),
                    "changed_by": change.changed_by,
                    "changed_at": change.changed_at,
                    "reason": change.reason,
                }
                for change in changes
            ],
        }

    return JsonResponse(await anyio.to_thread.run_sync(read))
