"""Read routes: signal names, signal time series and range reports."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from watchkeeper.errors import InputError
from watchkeeper.server.auth import require
from watchkeeper.server.schemas import RangeReport, SignalNames, SignalSeries, answers
from watchkeeper.server.state import app_state
from watchkeeper.server.wire import JsonResponse

__all__ = ["parse_instant", "router"]

router = APIRouter(tags=["signals"])

_DAY = 86_400.0
DEFAULT_SERIES_LIMIT = 1000
MAX_SERIES_LIMIT = 10_000

Instant = Annotated[
    str | None,
    Query(description="Epoch seconds or ISO-8601 (naive means UTC)."),
]


def parse_instant(value: str | None, *, name: str) -> float | None:
    """Epoch seconds from a query value: a number or an ISO-8601 string."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            raise InputError(f"{name}: must be a finite time, got {value!r}", column=name)
        return number
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"{name}: expected epoch seconds or an ISO-8601 time, got {value!r}", column=name
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def report_range(start: str | None, end: str | None, *, now: float) -> tuple[float, float]:
    """``[start, end)`` of a range report from query values: the last 24 hours by default."""
    until = parse_instant(end, name="end")
    until = now if until is None else until
    since = parse_instant(start, name="start")
    since = until - _DAY if since is None else since
    if since >= until:
        raise InputError(f"start ({since}) must be before end ({until})", column="start")
    return since, until


def window_form(window: str | None) -> int | str | None:
    """A ``window`` query value as the spec writes it: digits are seconds."""
    if window is None:
        return None
    text = window.strip()
    return int(text) if text.isdigit() else text


@router.get(
    "/v1/models/{model}/signals",
    summary="List the signals monitored for a model",
    response_model=None,
    responses=answers(SignalNames, 404),
    dependencies=[Depends(require("read"))],
)
async def signal_names(model: str, request: Request) -> JsonResponse:
    """Names such as ``count``, ``drift.<feature>.score``, ``accuracy``."""
    state = app_state(request)
    names = await run_in_threadpool(state.service.signal_names, model)
    return JsonResponse({"model": model, "signals": names})


@router.get(
    "/v1/models/{model}/signals/{signal}",
    summary="Time series of one signal",
    response_model=None,
    responses=answers(SignalSeries, 404, 422),
    dependencies=[Depends(require("read"))],
)
async def signal_series(
    model: str,
    signal: str,
    request: Request,
    version: Annotated[str | None, Query()] = None,
    segment: Annotated[str | None, Query(description="Canonical 'k=v,k2=v2' segment.")] = None,
    window: Annotated[
        str | None,
        Query(
            description="A window length of the model: seconds ('3600'), a duration ('6h'), "
            "'day', 'week' or 'month'; default the shortest."
        ),
    ] = None,
    start: Instant = None,
    end: Instant = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_SERIES_LIMIT, description="Most points in this page.")
    ] = DEFAULT_SERIES_LIMIT,
) -> JsonResponse:
    """One point per window (open ones included) overlapping ``[start, end)``, oldest first:
    start, end, value, version, segment, count.

    Without ``start`` the series begins at the oldest stored window; without ``end`` it runs to
    the open windows. A page holds at most ``limit`` points; when more remain, ``next`` is the
    ``start`` of the next page (null on the last one), so nothing is left out silently.
    """
    state = app_state(request)
    page = await run_in_threadpool(
        lambda: state.service.series_page(
            model,
            signal,
            version=version,
            segment=segment,
            window_seconds=window_form(window),
            start=parse_instant(start, name="start"),
            end=parse_instant(end, name="end"),
            limit=limit,
        )
    )
    return JsonResponse({"model": model, "signal": signal, **page})


@router.get(
    "/v1/models/{model}/report",
    summary="Report over a time range (watchkeeper.report/v1)",
    response_model=None,
    responses=answers(RangeReport, 404, 422),
    dependencies=[Depends(require("read"))],
)
async def range_report(
    model: str,
    request: Request,
    start: Instant = None,
    end: Instant = None,
    version: Annotated[str | None, Query()] = None,
    segment: Annotated[str | None, Query()] = None,
) -> JsonResponse:
    """Drift, quality and performance of ``[start, end)`` (default: the last 24 hours).

    The report merges the windows of the longest length that tiles the range exactly, else the
    shortest windows overlapping it; ``window.start`` / ``window.end`` and the name give the
    range covered, ``window.requested`` the range asked for, ``window.exact`` whether they match.
    """
    state = app_state(request)
    since, until = report_range(start, end, now=state.clock())
    report = await run_in_threadpool(
        lambda: state.service.range_report(
            model, start=since, end=until, version=version, segment=segment
        )
    )
    return JsonResponse(report)
