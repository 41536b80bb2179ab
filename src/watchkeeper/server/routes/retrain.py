"""Retraining routes: start a run, list and read runs, approve one, post a trained artifact.

Reads take the ``read`` scope, changes ``admin``. Starting a run answers 202 with the queued
run: the work happens in a worker process (docs/retraining.md). A run the model's state does
not allow (a second active run, within ``min_interval``, approving a run that is not awaiting
approval) is 409; a model without a ``retrain:`` configuration is 400, naming it.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from watchkeeper.errors import ConfigError, NotFoundError
from watchkeeper.registry.flavors import flavor_from_path
from watchkeeper.retrain.runner import RetrainRunner
from watchkeeper.retrain.runs import RunStatus, TriggerKind
from watchkeeper.server.auth import Principal, require
from watchkeeper.server.schemas import ApproveRequest, RetrainRequest, answers, json_body
from watchkeeper.server.state import AppState, app_state
from watchkeeper.server.wire import (
    JsonResponse,
    read_body,
    read_document,
    require_media,
)

__all__ = ["router"]

router = APIRouter(tags=["retraining"])
Admin = Annotated[Principal, Depends(require("admin"))]
ARTIFACT: Final = "application/octet-stream"


class RetrainRunDocument(BaseModel):
    """A retraining run (docs/retraining.md)."""

    id: int
    model: str
    status: str
    trigger: dict[str, Any]
    mode: str
    executor: str
    as_of: float
    attempts: int
    max_attempts: int
    interruptions: int
    next_attempt_at: float
    created_by: str
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    reason: str
    error: str
    log: str
    gate: dict[str, Any] | None
    data: dict[str, Any] | None
    champion_version: int | None
    version: int | None
    rollout_id: int | None
    artifact: dict[str, Any] | None
    revision: int


class RetrainRunList(BaseModel):
    """Runs, oldest first."""

    runs: list[RetrainRunDocument]


def _runner(state: AppState) -> RetrainRunner:
    if state.retrain is None:
        raise NotFoundError(
            "retraining is not enabled on this server", kind="route", name="retrain"
        )
    return state.retrain


def _checked(run_id: int) -> int:
    """Ids are positive 32-bit integers; any other number names no run."""
    if not 0 < run_id < 2**31:
        raise NotFoundError(f"no retraining run {run_id}", kind="retrain run", name=str(run_id))
    return run_id


async def _body(request: Request, state: AppState) -> Any:
    return await read_document(
        request,
        limit=state.settings.max_admin_body_bytes,
        setting="max_admin_body_bytes",
        required=False,
    )


@router.post(
    "/v1/models/{model}/retrain",
    summary="Start a retraining run of a model (queued; it runs in a worker process)",
    status_code=202,
    response_model=None,
    responses=answers(RetrainRunDocument, 400, 404, 409, 413, 415, 422, status=202),
    openapi_extra={
        **json_body(RetrainRequest),
        "requestBody": {**json_body(RetrainRequest)["requestBody"], "required": False},
    },
)
async def start_run(model: str, request: Request, principal: Admin) -> JsonResponse:
    """Queue a run (trigger ``manual``); 409 when the model has one active or ran within its
    ``min_interval``."""
    state = app_state(request)
    runner = _runner(state)
    try:
        body = RetrainRequest.model_validate(await _body(request, state))
    except ValueError as error:
        raise ConfigError(f"body: expected {{reason, as_of}}: {error}", key="body") from None
    trigger = {"kind": TriggerKind.MANUAL.value, "reason": body.reason, "by": principal.name}
    record = await run_in_threadpool(
        lambda: runner.request(model, trigger, by=principal.name, as_of=body.as_of)
    )
    return JsonResponse(record.to_dict(), status_code=202)


@router.get(
    "/v1/retrain/runs",
    summary="List retraining runs",
    response_model=None,
    responses=answers(RetrainRunList, 422),
    dependencies=[Depends(require("read"))],
)
async def list_runs(
    request: Request,
    model: Annotated[str | None, Query(description="Only this model's.")] = None,
    status: Annotated[str | None, Query(description="Only those with this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="The newest this many.")] = 100,
) -> JsonResponse:
    """Runs (of ``model``, with ``status``), oldest first."""
    state = app_state(request)
    if status is not None and status not in set(RunStatus):
        raise ConfigError(
            f"status: expected one of {', '.join(RunStatus)}, got {status!r}", key="status"
        )
    statuses = None if status is None else [status]
    records = await run_in_threadpool(
        lambda: state.store.retrain_runs(model=model, statuses=statuses, limit=limit)
    )
    return JsonResponse({"runs": [record.to_dict() for record in records]})


@router.get(
    "/v1/retrain/runs/{run_id}",
    summary="A retraining run: status, trigger, timings, gate result, log",
    response_model=None,
    responses=answers(RetrainRunDocument, 404, 422),
    dependencies=[Depends(require("read"))],
)
async def get_run(run_id: int, request: Request) -> JsonResponse:
    """The run as stored."""
    state = app_state(request)
    record = await run_in_threadpool(state.store.retrain_run, _checked(run_id))
    return JsonResponse(record.to_dict())


@router.post(
    "/v1/retrain/runs/{run_id}/approve",
    summary="Approve a run awaiting approval: its candidate goes to a canary rollout",
    response_model=None,
    responses=answers(RetrainRunDocument, 400, 404, 409, 413, 415, 422),
    openapi_extra={
        **json_body(ApproveRequest),
        "requestBody": {**json_body(ApproveRequest)["requestBody"], "required": False},
    },
)
async def approve_run(run_id: int, request: Request, principal: Admin) -> JsonResponse:
    """Start the canary; 409 when the run is not awaiting approval or the rollout cannot
    start (another rollout of the model in progress)."""
    state = app_state(request)
    runner = _runner(state)
    _checked(run_id)
    try:
        body = ApproveRequest.model_validate(await _body(request, state))
    except ValueError as error:
        raise ConfigError(f"body: expected {{reason}}: {error}", key="body") from None
    who = principal.name + (f" ({body.reason})" if body.reason else "")
    record = await run_in_threadpool(lambda: runner.approve(run_id, by=who))
    return JsonResponse(record.to_dict())


@router.post(
    "/v1/retrain/runs/{run_id}/artifact",
    summary="Post the candidate an orchestrator trained for a run awaiting its artifact",
    status_code=202,
    response_model=None,
    responses=answers(RetrainRunDocument, 400, 404, 409, 413, 415, 422, status=202),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {ARTIFACT: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def post_artifact(
    run_id: int,
    request: Request,
    principal: Admin,
    flavor: Annotated[
        str | None,
        Query(description="sklearn, pickle, onnx, xgboost or lightgbm; default: `filename`'s."),
    ] = None,
    filename: Annotated[
        str | None, Query(description="The artifact's file name (its suffix gives the flavor).")
    ] = None,
    trust: Annotated[
        bool, Query(description="Allow a pickle (or untrusted skops types): loading it runs code.")
    ] = False,
) -> JsonResponse:
    """Store the artifact; the run is queued again, and the worker gates and registers it
    (202: read the run for the outcome)."""
    state = app_state(request)
    runner = _runner(state)
    _checked(run_id)
    require_media(request, ARTIFACT)
    if flavor is None and filename is None:
        raise ConfigError(
            "flavor: give the artifact's flavor (flavor=…) or its file name (filename=…)",
            key="flavor",
        )
    chosen = flavor_from_path(filename or "artifact", flavor)
    body = await read_body(
        request, limit=state.settings.max_artifact_bytes, setting="max_artifact_bytes"
    )
    if not body:
        raise ConfigError(
            "body: the artifact is empty; send the model file as the body", key="body"
        )
    record = await run_in_threadpool(
        lambda: runner.receive_artifact(
            run_id, body, flavor=chosen, trusted=trust, by=principal.name
        )
    )
    return JsonResponse(record.to_dict(), status_code=202)
