"""Model routes: register, list, read, delete, set the reference data (versions: registry.py)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from watchkeeper.alerts.defaults import pack_options
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.server.auth import require
from watchkeeper.server.schemas import (
    ModelConfig,
    ModelList,
    ReferenceSummary,
    answers,
    json_body,
)
from watchkeeper.server.state import app_state
from watchkeeper.server.wire import (
    CSV,
    JSON,
    PARQUET,
    JsonResponse,
    parse_json,
    read_body,
    read_frame,
    require_media,
)

__all__ = ["router"]

router = APIRouter(tags=["models"])


@router.post(
    "/v1/models",
    summary="Register a model",
    status_code=201,
    response_model=None,
    responses=answers(ModelConfig, 400, 409, 413, 415, 422, status=201),
    openapi_extra=json_body(ModelConfig),
    dependencies=[Depends(require("admin"))],
)
async def register_model(request: Request) -> JsonResponse:
    """Register a model from its config; 409 when the name is taken."""
    state = app_state(request)
    require_media(request, JSON)
    body = await read_body(
        request, limit=state.settings.max_admin_body_bytes, setting="max_admin_body_bytes"
    )
    spec = await run_in_threadpool(lambda: ModelSpec.from_dict(parse_json(body)))
    registered = await run_in_threadpool(state.service.register_model, spec)
    # Every new model starts with the documented default rule pack (docs/alerts.md).
    await run_in_threadpool(
        lambda: state.alerting.on_model_registered(registered.name, **pack_options(registered))
    )
    return JsonResponse(registered.to_dict(), status_code=201)


@router.get(
    "/v1/models",
    summary="List registered models",
    response_model=None,
    responses=answers(ModelList),
    dependencies=[Depends(require("read"))],
)
async def list_models(request: Request) -> JsonResponse:
    """Every registered model's config, by name."""
    state = app_state(request)
    specs = await run_in_threadpool(state.service.list_models)
    return JsonResponse({"models": [spec.to_dict() for spec in specs]})


@router.get(
    "/v1/models/{model}",
    summary="Read a model's config",
    response_model=None,
    responses=answers(ModelConfig, 404),
    dependencies=[Depends(require("read"))],
)
async def get_model(model: str, request: Request) -> JsonResponse:
    """The config of ``model``; 404 when unknown."""
    state = app_state(request)
    spec = await run_in_threadpool(state.service.get_model, model)
    return JsonResponse(spec.to_dict())


@router.delete(
    "/v1/models/{model}",
    summary="Delete a model and all its data",
    status_code=204,
    response_class=Response,
    responses=answers(None, 404, status=204, description="Deleted"),
    dependencies=[Depends(require("admin"))],
)
async def delete_model(model: str, request: Request) -> Response:
    """Delete ``model`` with its versions, profiles, events, labels and feedback."""
    state = app_state(request)
    await run_in_threadpool(state.service.delete_model, model)
    return Response(status_code=204)


@router.put(
    "/v1/models/{model}/reference",
    summary="Set the reference data (CSV, Parquet or JSON records)",
    response_model=None,
    responses=answers(ReferenceSummary, 400, 404, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                CSV: {"schema": {"type": "string"}},
                PARQUET: {"schema": {"type": "string", "format": "binary"}},
                "application/json": {
                    "schema": {"type": "array", "items": {"type": "object"}},
                },
            },
        }
    },
    dependencies=[Depends(require("admin"))],
)
async def set_reference(model: str, request: Request) -> JsonResponse:
    """Profile the uploaded reference data; drift is measured against it from now on."""
    state = app_state(request)
    kind = require_media(request, CSV, PARQUET, JSON)
    body = await read_body(request, limit=state.settings.max_body_bytes, setting="max_body_bytes")
    frame = await run_in_threadpool(read_frame, body, kind)
    summary = await run_in_threadpool(state.service.set_reference, model, frame)
    return JsonResponse(summary)
