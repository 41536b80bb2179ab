"""Model routes: register, update, list, read, delete, set the reference data (versions:
registry.py)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from watchkeeper.alerts.defaults import pack_options
from watchkeeper.errors import ConfigError
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.server.auth import require
from watchkeeper.server.schemas import (
    ModelConfig,
    ModelList,
    ModelUpdated,
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


@router.put(
    "/v1/models/{model}",
    summary="Update a model's config (versioned)",
    response_model=None,
    responses=answers(ModelUpdated, 400, 404, 412, 413, 415, 422),
    openapi_extra=json_body(ModelConfig),
    dependencies=[Depends(require("admin"))],
)
async def update_model(model: str, request: Request) -> JsonResponse:
    """Replace ``model``'s config (spec, windows, thresholds) with the body, a full config as
    registered; the answer carries the new ``config_version`` (also as ``ETag``).

    With ``If-Match: "N"`` (N from GET's ``ETag`` or an earlier answer) the update applies
    only if the config is still at version N, else 412; without it the last update wins. Open
    windows, the reference and alert rules: see docs/service.md, "Updating a model".
    """
    state = app_state(request)
    require_media(request, JSON)
    expected = _expected_version(request.headers.get("if-match"))
    body = await read_body(
        request, limit=state.settings.max_admin_body_bytes, setting="max_admin_body_bytes"
    )
    spec = await run_in_threadpool(lambda: ModelSpec.from_dict(parse_json(body)))
    if spec.name != model:
        raise ConfigError(
            f"name: the body names model {spec.name!r} but the path {model!r}; a model's name "
            "cannot change (register the new name, delete the old one)",
            key="name",
        )
    previous = await run_in_threadpool(state.service.get_model, model)
    updated, version = await run_in_threadpool(
        lambda: state.service.update_model(spec, expected_version=expected)
    )
    await run_in_threadpool(
        lambda: state.alerting.on_model_updated(
            model, previous=pack_options(previous), current=pack_options(updated)
        )
    )
    return JsonResponse(
        {"model": updated.to_dict(), "config_version": version},
        headers={"ETag": f'"{version}"'},
    )


def _expected_version(header: str | None) -> int | None:
    """The config version an ``If-Match`` header names (``"3"``, ``W/"3"`` or ``3``)."""
    if header is None:
        return None
    text = header.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise ConfigError(
            f'If-Match: expected a config version such as "3" (the ETag of GET '
            f"/v1/models/{{model}}), got {header!r}",
            key="If-Match",
        )
    return int(text)


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
    """The config of ``model``, its config version as ``ETag``; 404 when unknown."""
    state = app_state(request)
    spec = await run_in_threadpool(state.service.get_model, model)
    version = await run_in_threadpool(state.service.config_version, model)
    return JsonResponse(spec.to_dict(), headers={"ETag": f'"{version}"'})


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
    spec = await run_in_threadpool(state.service.get_model, model)
    # Drift signals exist from now on: the default pack's drift rules join the model's rules.
    await run_in_threadpool(lambda: state.alerting.on_reference_set(model, **pack_options(spec)))
    return JsonResponse(summary)
