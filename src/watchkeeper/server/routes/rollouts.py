"""Rollout routes: start a rollout, read its state and history, promote, pause, resume, abort.

Reads take the ``read`` scope, changes ``admin``. The body of ``POST /v1/rollouts`` is a rollout
spec (docs/rollouts.md); its errors (422) name the field. A command the rollout's state does not
allow (promoting an aborted rollout, starting a second one for a model) is 409.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from watchkeeper.errors import ConfigError, NotFoundError
from watchkeeper.rollout.controller import RolloutController, describe
from watchkeeper.server.auth import Principal, require
from watchkeeper.server.schemas import answers, json_body
from watchkeeper.server.state import AppState, app_state
from watchkeeper.server.wire import (
    JsonResponse,
    read_document,
)

__all__ = ["ROLLOUT_MODELS", "apply_action", "router"]

router = APIRouter(tags=["rollouts"])
Admin = Annotated[Principal, Depends(require("admin"))]
_ACTIONS: Final = ("promote", "pause", "resume", "abort")


class RolloutBody(BaseModel):
    """``POST /v1/rollouts``: a rollout spec (docs/rollouts.md)."""

    model_config = ConfigDict(extra="allow")

    model: str
    baseline: str | int
    candidate: str | int
    steps: list[dict[str, Any]] | None = None
    step_weight: int | None = None
    max_weight: int | None = None
    analysis: dict[str, Any] | None = None


class ActionBody(BaseModel):
    """``POST /v1/rollouts/{id}/{action}``: why (recorded in the history); ``full`` promotes to
    100 % at once instead of skipping the current step."""

    model_config = ConfigDict(extra="forbid")

    reason: str = ""
    full: bool = False


class RolloutDocument(BaseModel):
    """A rollout's state (``GET /v1/rollouts/{id}`` adds ``events`` and ``measurements``)."""

    id: int
    model: str
    baseline: str
    candidate: str
    state: str
    reason: str
    step: int
    steps: int
    current_step: dict[str, Any] | None
    weights: dict[str, int]
    failures: int
    next_analysis_at: float | None
    spec: dict[str, Any]
    created_by: str
    created_at: float
    updated_at: float
    events: list[dict[str, Any]] | None = None
    measurements: list[dict[str, Any]] | None = None


class RolloutList(BaseModel):
    """Rollouts, oldest first."""

    rollouts: list[RolloutDocument]


ROLLOUT_MODELS: Final[tuple[type[BaseModel], ...]] = (RolloutBody, ActionBody)


def _checked(rollout_id: int) -> int:
    """Ids are positive 32-bit integers; any other number names no rollout."""
    if not 0 < rollout_id < 2**31:
        raise NotFoundError(f"no rollout {rollout_id}", kind="rollout", name=str(rollout_id))
    return rollout_id


def _controller(state: AppState) -> RolloutController:
    if state.rollouts is None:
        raise NotFoundError(
            "rollouts are not enabled on this server", kind="route", name="rollouts"
        )
    return state.rollouts


async def _json(request: Request, state: AppState, *, required: bool) -> Any:
    return await read_document(
        request,
        limit=state.settings.max_admin_body_bytes,
        setting="max_admin_body_bytes",
        required=required,
    )


@router.post(
    "/v1/rollouts",
    summary="Start a rollout of a candidate version against the baseline",
    status_code=201,
    response_model=None,
    responses=answers(RolloutDocument, 400, 404, 409, 413, 415, 422, status=201),
    openapi_extra=json_body(RolloutBody),
)
async def start_rollout(request: Request, principal: Admin) -> JsonResponse:
    """Start it: all traffic on the baseline, then its first step at once."""
    state = app_state(request)
    spec = await _json(request, state, required=True)
    controller = _controller(state)
    record = await run_in_threadpool(lambda: controller.start(spec, by=principal.name))
    return JsonResponse(describe(record), status_code=201)


@router.get(
    "/v1/rollouts",
    summary="List rollouts",
    response_model=None,
    responses=answers(RolloutList, 422),
    dependencies=[Depends(require("read"))],
)
async def list_rollouts(
    request: Request,
    model: Annotated[str | None, Query(description="Only this model's.")] = None,
    state_: Annotated[
        str | None, Query(alias="state", description="Only those in this state.")
    ] = None,
) -> JsonResponse:
    """Every rollout (of ``model``, in ``state``), oldest first."""
    state = app_state(request)
    states = None if state_ is None else [state_]
    records = await run_in_threadpool(lambda: state.store.rollouts(model=model, states=states))
    return JsonResponse({"rollouts": [describe(record) for record in records]})


@router.get(
    "/v1/rollouts/{rollout_id}",
    summary="A rollout with its history and every analysis measurement",
    response_model=None,
    responses=answers(RolloutDocument, 404, 422),
    dependencies=[Depends(require("read"))],
)
async def get_rollout(rollout_id: int, request: Request) -> JsonResponse:
    """Its state, events (started, weights set, paused, promoted, aborted…) and measurements."""
    controller = _controller(app_state(request))
    return JsonResponse(await run_in_threadpool(controller.status, _checked(rollout_id)))


@router.post(
    "/v1/rollouts/{rollout_id}/{action}",
    summary="Promote (skip the current step, or full), pause, resume or abort a rollout",
    response_model=None,
    responses=answers(RolloutDocument, 400, 404, 409, 413, 415, 422),
    openapi_extra=json_body(ActionBody),
)
async def act(rollout_id: int, action: str, request: Request, principal: Admin) -> JsonResponse:
    """Apply a manual command; abort puts all traffic back on the baseline."""
    if action not in _ACTIONS:
        raise NotFoundError(
            f"no rollout action {action!r}; the actions are {', '.join(_ACTIONS)}",
            kind="action",
            name=action,
        )
    _checked(rollout_id)
    state = app_state(request)
    document = await _json(request, state, required=False)
    try:
        body = ActionBody.model_validate(document)
    except ValueError as error:
        raise ConfigError(f"body: expected {{reason, full}}: {error}", key="body") from None
    controller = _controller(state)
    document = await run_in_threadpool(
        lambda: apply_action(
            controller, rollout_id, action, by=principal.name, reason=body.reason, full=body.full
        )
    )
    return JsonResponse(document)


def apply_action(
    controller: RolloutController,
    rollout_id: int,
    action: str,
    *,
    by: str,
    reason: str = "",
    full: bool = False,
) -> dict[str, Any]:
    """Apply a manual command (the API's and the dashboard's buttons); the rollout after it."""
    if action == "promote":
        record = controller.promote(rollout_id, full=full, by=by)
    elif action == "pause":
        record = controller.pause(rollout_id, by=by, reason=reason)
    elif action == "resume":
        record = controller.resume(rollout_id, by=by)
    elif action == "abort":
        record = controller.abort(rollout_id, by=by, reason=reason)
    else:
        raise NotFoundError(
            f"no rollout action {action!r}; the actions are {', '.join(_ACTIONS)}",
            kind="action",
            name=action,
        )
    return describe(record)
