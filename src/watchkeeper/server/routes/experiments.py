"""Experiment routes: create an A/B test of a model's versions, list and read experiments, read
their results (recomputed on every request), stop one.

Reads take the ``read`` scope, changes ``admin``. The body of ``POST /v1/experiments`` is an
experiment spec (docs/experiments.md); its errors (422) name the field. A second running
experiment of a model, one while a rollout of it is in progress, or stopping a stopped one is
409.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from watchkeeper.errors import ConfigError, NotFoundError
from watchkeeper.rollout.experiments import Experiments, checked_id, describe
from watchkeeper.server.auth import Principal, require
from watchkeeper.server.schemas import answers, json_body
from watchkeeper.server.state import AppState, app_state
from watchkeeper.server.wire import (
    JsonResponse,
    read_document,
)

__all__ = ["EXPERIMENT_MODELS", "router"]

router = APIRouter(tags=["experiments"])
Admin = Annotated[Principal, Depends(require("admin"))]


class ExperimentBody(BaseModel):
    """``POST /v1/experiments``: an experiment spec (docs/experiments.md). ``arms``: a list of
    ``{name, version, weight}`` (the first is the control; weights in percent summing to 100,
    or none for an equal split); ``metrics``: signal names or ``{signal, name, direction,
    min_samples}``; ``method``: ``always_valid`` (default) or ``fixed``."""

    model_config = ConfigDict(extra="forbid")

    model: str
    name: str = ""
    arms: list[dict[str, Any]]
    metrics: list[str | dict[str, Any]]
    alpha: float = 0.05
    method: str = "always_valid"
    srm_alpha: float = 0.001
    tuning_samples: int = 5000


class StopBody(BaseModel):
    """``POST /v1/experiments/{id}/stop``: why (recorded with the experiment)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = ""


class ExperimentDocument(BaseModel):
    """An experiment: its definition and state."""

    id: int
    model: str
    name: str
    state: str
    reason: str
    arms: list[dict[str, Any]]
    metrics: list[dict[str, Any]]
    alpha: float
    method: str
    srm_alpha: float
    tuning_samples: int
    created_by: str
    created_at: float
    stopped_by: str | None
    stopped_at: float | None


class ExperimentList(BaseModel):
    """Experiments, oldest first."""

    experiments: list[ExperimentDocument]


class ExperimentResults(BaseModel):
    """An experiment's results, computed from its arms' windows since it started.

    ``verdict``: ``analysed``, ``stopped`` (sample-ratio mismatch: no metric has a verdict) or
    ``no_data``. Each metric lists its arms' ``estimate`` and ``n`` and a comparison of each
    treatment arm with the control: ``effect``, ``ci_low``/``ci_high``, ``p_value`` (of the
    experiment's method), ``lift`` with its delta-method interval, ``fixed_horizon`` and
    ``always_valid`` details, and ``verdict`` (``better``, ``worse``, ``different``,
    ``no_difference``, ``insufficient_data``, ``stopped``)."""

    experiment: ExperimentDocument
    since: float
    until: float
    computed_at: float
    verdict: str
    reason: str
    method: str
    alpha: float
    sample_ratio: dict[str, Any]
    metrics: list[dict[str, Any]]


EXPERIMENT_MODELS: Final[tuple[type[BaseModel], ...]] = (ExperimentBody, StopBody)


def _experiments(state: AppState) -> Experiments:
    if state.experiments is None:
        raise NotFoundError(
            "experiments are not enabled on this server", kind="route", name="experiments"
        )
    return state.experiments


async def _json(request: Request, state: AppState, *, required: bool) -> Any:
    return await read_document(
        request,
        limit=state.settings.max_admin_body_bytes,
        setting="max_admin_body_bytes",
        required=required,
    )


@router.post(
    "/v1/experiments",
    summary="Start an A/B experiment: route the model's traffic to its arms, sticky",
    status_code=201,
    response_model=None,
    responses=answers(ExperimentDocument, 400, 404, 409, 413, 415, 422, status=201),
    openapi_extra=json_body(ExperimentBody),
)
async def create_experiment(request: Request, principal: Admin) -> JsonResponse:
    """Check the spec, set the routing split to the arms and store the experiment."""
    state = app_state(request)
    document = await _json(request, state, required=True)
    experiments = _experiments(state)
    record = await run_in_threadpool(lambda: experiments.create(document, by=principal.name))
    return JsonResponse(describe(record), status_code=201)


@router.get(
    "/v1/experiments",
    summary="List experiments",
    response_model=None,
    responses=answers(ExperimentList, 422),
    dependencies=[Depends(require("read"))],
)
async def list_experiments(
    request: Request,
    model: Annotated[str | None, Query(description="Only this model's.")] = None,
) -> JsonResponse:
    """Every experiment (of ``model``), oldest first."""
    experiments = _experiments(app_state(request))
    records = await run_in_threadpool(lambda: experiments.experiments(model=model))
    return JsonResponse({"experiments": [describe(record) for record in records]})


@router.get(
    "/v1/experiments/{experiment_id}",
    summary="An experiment: its arms, metrics, method and state",
    response_model=None,
    responses=answers(ExperimentDocument, 404, 422),
    dependencies=[Depends(require("read"))],
)
async def get_experiment(experiment_id: int, request: Request) -> JsonResponse:
    """The experiment's definition and state."""
    experiments = _experiments(app_state(request))
    record = await run_in_threadpool(experiments.get, checked_id(experiment_id))
    return JsonResponse(describe(record))


@router.get(
    "/v1/experiments/{experiment_id}/results",
    summary="An experiment's results, recomputed from the stored data",
    response_model=None,
    responses=answers(ExperimentResults, 404, 422),
    dependencies=[Depends(require("read"))],
)
async def experiment_results(experiment_id: int, request: Request) -> JsonResponse:
    """Per metric: each arm's estimate and n, and each treatment against the control."""
    experiments = _experiments(app_state(request))
    return JsonResponse(await run_in_threadpool(experiments.results, checked_id(experiment_id)))


@router.post(
    "/v1/experiments/{experiment_id}/stop",
    summary="Stop an experiment and restore the routing it replaced",
    response_model=None,
    responses=answers(ExperimentDocument, 400, 404, 409, 413, 415, 422),
    openapi_extra=json_body(StopBody),
)
async def stop_experiment(experiment_id: int, request: Request, principal: Admin) -> JsonResponse:
    """Stop it: the routing config it replaced is put back (unless changed since)."""
    checked_id(experiment_id)
    state = app_state(request)
    document = await _json(request, state, required=False)
    try:
        body = StopBody.model_validate(document)
    except ValueError as error:
        raise ConfigError(f"body: expected {{reason}}: {error}", key="body") from None
    experiments = _experiments(state)
    record = await run_in_threadpool(
        lambda: experiments.stop(experiment_id, by=principal.name, reason=body.reason)
    )
    return JsonResponse(describe(record))
