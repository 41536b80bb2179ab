"""Ingest routes: prediction events (JSON, Arrow IPC, Parquet), delayed labels and feedback.

The answer is sent only after the service has committed the accepted items, so a 2xx means
durable. Per-item problems come back in ``rejected``; only an unusable envelope (not JSON, not
``{"events": [...]}``, too large) fails the whole request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from watchkeeper.ingest import unwrap_batch
from watchkeeper.server.auth import require
from watchkeeper.server.errors import payload_too_large, unsupported_media_type
from watchkeeper.server.schemas import (
    ErrorBody,
    EventBatch,
    FeedbackBatch,
    IngestResponse,
    LabelBatch,
    json_body,
)
from watchkeeper.server.state import AppState, app_state
from watchkeeper.server.wire import (
    ARROW_STREAM,
    JSON,
    PARQUET,
    JsonResponse,
    media_type,
    parse_json,
    read_body,
    read_table,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from watchkeeper.monitor.service import IngestOutcome

__all__ = ["router"]

router = APIRouter(tags=["ingest"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 403, 404, 413, 415, 422)
}


def _check_size(state: AppState, count: int, what: str) -> None:
    limit = state.settings.max_batch_events
    if count > limit:
        raise payload_too_large(
            f"the batch has {count} {what}; the limit is {limit} "
            "(WATCHKEEPER_MAX_BATCH_EVENTS): split it into smaller batches",
            field=what,
        )


def _accepted_rows(size: int, outcome: IngestOutcome, ids: Sequence[Any] | None) -> np.ndarray:
    """Which rows of the batch were stored: neither rejected nor duplicates."""
    mask = np.ones(size, dtype=bool)
    mask[[rejection.index for rejection in outcome.rejected]] = False
    if outcome.duplicates and ids is not None:
        # Rare (client retries): the first occurrence of each accepted id was stored.
        stored = set(outcome.ids)
        for row in np.flatnonzero(mask).tolist():
            event_id = ids[row]
            if event_id is None:
                continue
            if event_id in stored:
                stored.discard(event_id)
            else:
                mask[row] = False
    return mask


def _events_from_json(state: AppState, model: str, body: bytes) -> IngestOutcome:
    events = unwrap_batch(parse_json(body), "events")
    _check_size(state, len(events), "events")
    outcome = state.service.ingest_events(model, events)
    if outcome.accepted:
        ids = [event.get("id") if isinstance(event, dict) else None for event in events]
        rows = np.flatnonzero(_accepted_rows(len(events), outcome, ids)).tolist()
        stored = [events[row] for row in rows]
        state.meter.record_events(
            model,
            versions=np.array([event["version"] for event in stored], dtype=object),
            errors=np.array([bool(event.get("error")) for event in stored], dtype=bool),
            latency_ms=np.array([event.get("latency_ms") for event in stored], dtype=np.float64),
        )
    return outcome


def _column(table: pa.Table, name: str, rows: np.ndarray, fill: Any) -> np.ndarray:
    """Column ``name`` at ``rows`` with nulls (or an absent column) replaced by ``fill``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if name not in table.column_names or pa.types.is_null(table.column(name).type):
        return np.full(int(rows.sum()), fill)
    column = table.column(name).filter(pa.array(rows))
    if isinstance(fill, float):
        column = column.cast(pa.float64())
    values: np.ndarray = pc.fill_null(column, fill).to_numpy(zero_copy_only=False)
    return values


def _events_from_table(state: AppState, model: str, body: bytes, kind: str) -> IngestOutcome:
    table = read_table(body, kind)
    _check_size(state, table.num_rows, "events")
    outcome = state.service.ingest_table(model, table)
    size = table.num_rows
    if outcome.accepted:
        ids = table.column("id").to_pylist() if "id" in table.column_names else None
        rows = _accepted_rows(size, outcome, ids)
        state.meter.record_events(
            model,
            versions=_column(table, "version", rows, "").astype(str),
            errors=_column(table, "error", rows, False).astype(bool),
            latency_ms=_column(table, "latency_ms", rows, np.nan).astype(np.float64),
        )
    return outcome


@router.post(
    "/v1/models/{model}/events",
    summary="Ingest prediction events (JSON, Arrow IPC stream or Parquet)",
    response_model=None,
    responses={200: {"model": IngestResponse}, **_ERRORS},
    openapi_extra=json_body(EventBatch, ARROW_STREAM, PARQUET),
    dependencies=[Depends(require("ingest"))],
)
async def ingest_events(model: str, request: Request) -> JsonResponse:
    """Store a batch of events; valid ones are kept even when others are rejected."""
    state = app_state(request)
    body = await read_body(request, limit=state.settings.max_body_bytes)
    kind = media_type(request)
    if kind == JSON:
        outcome = await run_in_threadpool(_events_from_json, state, model, body)
    else:
        outcome = await run_in_threadpool(_events_from_table, state, model, body, kind)
    return JsonResponse(outcome.to_dict())


def _batch(
    state: AppState,
    model: str,
    body: bytes,
    key: str,
    ingest: Callable[[str, list[Any]], IngestOutcome],
) -> IngestOutcome:
    items = unwrap_batch(parse_json(body), key)
    _check_size(state, len(items), key)
    return ingest(model, items)


@router.post(
    "/v1/models/{model}/labels",
    summary="Ingest delayed labels (joined to events by id)",
    response_model=None,
    responses={200: {"model": IngestResponse}, **_ERRORS},
    openapi_extra=json_body(LabelBatch),
    dependencies=[Depends(require("ingest"))],
)
async def ingest_labels(model: str, request: Request) -> JsonResponse:
    """Store labels ``{"labels": [{"id", "label", "timestamp"?}]}``."""
    state = app_state(request)
    _require_json(request)
    body = await read_body(request, limit=state.settings.max_body_bytes)
    outcome = await run_in_threadpool(
        _batch, state, model, body, "labels", state.service.ingest_labels
    )
    return JsonResponse(outcome.to_dict())


@router.post(
    "/v1/models/{model}/feedback",
    summary="Ingest user feedback (ratings 1-5)",
    response_model=None,
    responses={200: {"model": IngestResponse}, **_ERRORS},
    openapi_extra=json_body(FeedbackBatch),
    dependencies=[Depends(require("ingest"))],
)
async def ingest_feedback(model: str, request: Request) -> JsonResponse:
    """Store ratings ``{"feedback": [{"id", "user_id", "rating", "comment"?, "timestamp"?}]}``."""
    state = app_state(request)
    _require_json(request)
    body = await read_body(request, limit=state.settings.max_body_bytes)
    outcome = await run_in_threadpool(
        _batch, state, model, body, "feedback", state.service.ingest_feedback
    )
    return JsonResponse(outcome.to_dict())


def _require_json(request: Request) -> None:
    kind = media_type(request)
    if kind != JSON:
        raise unsupported_media_type(kind, (JSON,))
