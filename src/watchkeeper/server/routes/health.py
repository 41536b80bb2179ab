"""Liveness, readiness and the Prometheus exposition."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from watchkeeper.errors import StoreError
from watchkeeper.server.auth import require
from watchkeeper.server.lifecycle import not_ready_reason
from watchkeeper.server.schemas import HealthStatus
from watchkeeper.server.state import app_state
from watchkeeper.server.wire import JsonResponse

__all__ = ["router"]

router = APIRouter(tags=["health"])


_HEALTH_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": HealthStatus, "description": "Live (healthz) or ready (readyz)"},
    503: {"model": HealthStatus, "description": "Not ready (with the reason), or failed"},
}


@router.get(
    "/healthz",
    summary="Liveness: the process answers",
    response_model=None,
    responses=_HEALTH_ANSWERS,
)
async def healthz(request: Request) -> JsonResponse:
    """200 while the server runs, recovery included; 503 once recovery has failed."""
    state = app_state(request)
    if state.start_error is not None:
        return JsonResponse({"status": "failed", "reason": state.start_error}, status_code=503)
    return JsonResponse({"status": "ok"})


@router.get(
    "/readyz",
    summary="Readiness: the store answers and the monitor has recovered",
    response_model=None,
    responses=_HEALTH_ANSWERS,
)
async def readyz(request: Request) -> JsonResponse:
    """200 when ready; 503 with the reason (recovery progress, failure) otherwise."""
    state = app_state(request)
    if not state.started:
        return JsonResponse(
            {"status": "not ready", "reason": not_ready_reason(state)}, status_code=503
        )
    try:
        await run_in_threadpool(state.store.ping)
    except StoreError:
        return JsonResponse(
            {"status": "not ready", "reason": f"the {state.store.backend} store does not answer"},
            status_code=503,
        )
    return JsonResponse({"status": "ready", "store": state.store.backend})


@router.get(
    "/metrics",
    summary="Prometheus text exposition",
    response_class=Response,
    dependencies=[Depends(require("read"))],
)
async def metrics(request: Request) -> Response:
    """Counters, histograms and the latest signal values (see docs/service.md)."""
    state = app_state(request)
    payload = await run_in_threadpool(generate_latest, state.registry)
    return Response(payload, media_type=CONTENT_TYPE_LATEST)
