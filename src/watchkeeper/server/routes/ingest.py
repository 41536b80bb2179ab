"""Ingest routes: prediction events (JSON, Arrow IPC, Parquet), delayed labels, feedback and
business outcomes.

The answer is sent only after the service has committed the accepted items, so a 2xx means
durable. Per-item problems come back in ``rejected``; only an unusable envelope (not JSON, not
``{"events": [...]}``, too large) fails the whole request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import numpy as np
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from watchkeeper.errors import NotFoundError
from watchkeeper.ingest.json import unwrap_batch
from watchkeeper.server.auth import require
from watchkeeper.server.errors import payload_too_large
from watchkeeper.server.schemas import (
    EventBatch,
    FeedbackBatch,
    IngestResponse,
    LabelBatch,
    OutcomeBatch,
    answers,
    json_body,
)
from watchkeeper.server.service_metrics import max_class_probability
from watchkeeper.server.state import AppState, app_state
from watchkeeper.server.wire import (
    ARROW_STREAM,
    JSON,
    PARQUET,
    JsonResponse,
    parse_json,
    read_body,
    read_table,
    require_media,
)

if TYPE_CHECKING:
    from watchkeeper.monitor.service import IngestOutcome

__all__ = ["router"]

router = APIRouter(tags=["ingest"])

_ANSWERS = answers(IngestResponse, 400, 404, 413, 415, 422)


def _check_size(state: AppState, count: int, what: str) -> None:
    limit = state.settings.max_batch_events
    if count > limit:
        raise payload_too_large(
            f"the batch has {count} {what}; the limit is {limit} "
            "(WATCHKEEPER_MAX_BATCH_EVENTS): split it into smaller batches",
            field=what,
        )


def _count_stored(state: AppState, model: str, outcome: IngestOutcome) -> IngestOutcome:
    """Feed the batch's size and its stored events (neither rejected nor duplicates) to the
    Prometheus meter."""
    state.meter.record_batch(model, "events", _items(outcome))
    stored = outcome.stored
    if stored is not None and len(stored):
        state.meter.record_events(
            model,
            versions=np.asarray(stored.versions, dtype=object),
            errors=stored.errors,
            latency_ms=stored.latency,
            confidence=max_class_probability(stored, state.service.get_model(model).proba),
        )
    return outcome


def _items(outcome: IngestOutcome) -> int:
    """How many items the request carried, whatever became of them."""
    return (
        outcome.accepted + outcome.duplicates + len(outcome.rejected) + len(outcome.conflicts or ())
    )


def _events_in_worker(state: AppState, model: str, body: bytes, kind: str) -> IngestOutcome | None:
    """The batch decoded by an ingest worker, then stored and folded here; None when it was not
    (no workers, an unknown model, a body the worker could not decode, a plan that changed)."""
    if state.workers is None:
        return None
    try:
        job = state.service.decode_job(model)
    except NotFoundError:
        return None
    decoded = state.workers.decode(body, kind, job)
    if decoded is None:
        return None
    outcome = state.service.ingest_decoded(model, decoded)
    return None if outcome is None else _count_stored(state, model, outcome)


def _events(state: AppState, model: str, body: bytes, kind: str) -> IngestOutcome:
    outcome = _events_in_worker(state, model, body, kind)
    if outcome is not None:
        return outcome
    if kind == JSON:
        return _events_from_json(state, model, body)
    return _events_from_table(state, model, body, kind)


def _events_from_json(state: AppState, model: str, body: bytes) -> IngestOutcome:
    events = unwrap_batch(parse_json(body), "events")
    _check_size(state, len(events), "events")
    return _count_stored(state, model, state.service.ingest_events(model, events))


def _events_from_table(state: AppState, model: str, body: bytes, kind: str) -> IngestOutcome:
    settings = state.settings
    table = read_table(
        body, kind, max_rows=settings.max_batch_events, max_bytes=settings.max_body_bytes
    )
    _check_size(state, table.num_rows, "events")
    return _count_stored(state, model, state.service.ingest_table(model, table))


@router.post(
    "/v1/models/{model}/events",
    summary="Ingest prediction events (JSON, Arrow IPC stream or Parquet)",
    response_model=None,
    responses=_ANSWERS,
    openapi_extra=json_body(EventBatch, ARROW_STREAM, PARQUET),
    dependencies=[Depends(require("ingest"))],
)
async def ingest_events(model: str, request: Request) -> JsonResponse:
    """Store a batch of events; valid ones are kept even when others are rejected."""
    state = app_state(request)
    kind = require_media(request, JSON, ARROW_STREAM, PARQUET)
    body = await read_body(request, limit=state.settings.max_body_bytes, setting="max_body_bytes")
    outcome = await anyio.to_thread.run_sync(
        _events, state, model, body, kind, limiter=_event_limiter(state)
    )
    return JsonResponse(outcome.to_dict())


def _event_limiter(state: AppState) -> anyio.CapacityLimiter:
    """How many event batches are decoded and stored at a time; the others wait for a turn here.

    One more than the ingest workers keeps every worker decoding while the server stores the
    batch before (at least two: storing overlaps decoding in the server process too). More at
    once only makes the server's threads take turns on the GIL: a backlog was drained slower
    (measured: eight batches in flight ingested 7-18 % fewer events per second than two).
    """
    if state.ingest_limiter is None:
        total = state.settings.ingest_concurrency
        if total is None:
            total = max(2, (state.workers.processes if state.workers else 0) + 1)
        state.ingest_limiter = anyio.CapacityLimiter(total)
    return state.ingest_limiter


def _batch(
    state: AppState,
    model: str,
    body: bytes,
    key: str,
    ingest: Callable[[str, list[Any]], IngestOutcome],
) -> IngestOutcome:
    items = unwrap_batch(parse_json(body), key)
    _check_size(state, len(items), key)
    outcome = ingest(model, items)
    state.meter.record_batch(model, key, _items(outcome))
    return outcome


def _json_batch_route(key: str, *, summary: str, schema: type[BaseModel], description: str) -> None:
    """Add ``POST /v1/models/{model}/<key>``: a JSON ``{"<key>": [...]}`` batch stored by the
    service's ``ingest_<key>`` (labels, feedback and outcomes share this shape)."""

    async def endpoint(model: str, request: Request) -> JsonResponse:
        state = app_state(request)
        require_media(request, JSON)
        body = await read_body(
            request, limit=state.settings.max_body_bytes, setting="max_body_bytes"
        )
        ingest = getattr(state.service, f"ingest_{key}")
        outcome = await run_in_threadpool(_batch, state, model, body, key, ingest)
        return JsonResponse(outcome.to_dict())

    router.add_api_route(
        f"/v1/models/{{model}}/{key}",
        endpoint,
        methods=["POST"],
        name=f"ingest_{key}",
        summary=summary,
        description=description,
        response_model=None,
        responses=_ANSWERS,
        openapi_extra=json_body(schema),
        dependencies=[Depends(require("ingest"))],
    )


_json_batch_route(
    "labels",
    summary="Ingest delayed labels (joined to events by id)",
    schema=LabelBatch,
    description='Store labels ``{"labels": [{"id", "label", "timestamp"?}]}``.',
)
_json_batch_route(
    "feedback",
    summary="Ingest user feedback (ratings 1-5)",
    schema=FeedbackBatch,
    description=(
        'Store ratings ``{"feedback": [{"id", "user_id", "rating", "comment"?, "timestamp"?}]}``.'
    ),
)
_json_batch_route(
    "outcomes",
    summary="Ingest business outcomes of predictions (a click, a conversion, revenue)",
    schema=OutcomeBatch,
    description=(
        'Store outcomes ``{"outcomes": [{"id" | "unit", "name", "value", "timestamp"?}]}``.'
    ),
)
