"""The dashboard's registry, rollout and backtest pages and their actions.

- ``/models/{name}/versions``: registered versions with metadata, metrics and lineage, every
  alias with its full history, and a *roll back* button per alias;
- ``/rollouts`` and ``/rollouts/{id}``: rollouts, one with its steps, weights, every analysis
  measurement (table and a chart per metric), events, and promote / pause / resume / abort;
- ``/models/{name}/backtest``: the alerts a rule set would have raised on a stored range;
- ``/retrain/runs``: retraining runs with their trigger, status, timings and gate result, and
  an *approve* button for a run awaiting approval.

Views need the ``read`` scope; every button posts a form with the CSRF token and needs
``admin``, and calls the same code as the API (``Registry.rollback``,
:func:`watchkeeper.server.routes.rollouts.apply_action`, ``RetrainRunner.approve``). The
backtest changes nothing: it needs ``read`` and the CSRF token (it is a POST so a link cannot
start one).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from watchkeeper.dashboard import backtest, ops_views, views
from watchkeeper.dashboard.render import action, error_page, forbidden, guard, page
from watchkeeper.dashboard.session import ForbiddenError, LoginRequiredError
from watchkeeper.errors import NotFoundError, WatchkeeperError
from watchkeeper.rollout.controller import RolloutController
from watchkeeper.server.auth import Principal
from watchkeeper.server.routes.rollouts import apply_action
from watchkeeper.server.routes.signals import parse_instant
from watchkeeper.server.state import AppState, app_state

__all__ = ["add_routes"]

Form = dict[str, str]


def _controller(state: AppState) -> RolloutController:
    if state.rollouts is None:
        raise NotFoundError(
            "rollouts are not enabled on this server", kind="route", name="rollouts"
        )
    return state.rollouts


def _back(target: str, **query: str) -> RedirectResponse:
    shown = {key: value for key, value in query.items() if value}
    return RedirectResponse(f"{target}?{urlencode(shown)}" if shown else target, status_code=303)


async def _post(
    request: Request, back: str, act: Callable[[Principal, Form], str], *, scope: str = "admin"
) -> Response:
    """Run a form's action (CSRF and ``scope`` checked) in a thread; back to ``back`` with
    what it did (``done``) or the error naming the field (``error``)."""
    try:
        who, form = await action(request, scope)
    except LoginRequiredError as missing:
        return _back("/login", next=back, reason=missing.reason)
    except ForbiddenError as refused:
        return forbidden(request, refused)
    except WatchkeeperError as error:
        return _back(back, error=str(error))
    try:
        done = await run_in_threadpool(act, who, form)
    except WatchkeeperError as error:
        return _back(back, error=str(error))
    return _back(back, done=done)


async def _view(
    request: Request, render: Callable[[AppState], Awaitable[Response]], scope: str = "read"
) -> Response:
    if (refused := await guard(request, scope)) is not None:
        return refused
    try:
        return await render(app_state(request))
    except WatchkeeperError as error:
        return error_page(request, error)


def add_routes(router: APIRouter) -> None:
    """Add the registry, rollout and backtest pages and actions to the dashboard's router."""

    @router.get("/models/{model}/versions", response_class=HTMLResponse)
    async def registry(request: Request, model: str, done: str = "", error: str = "") -> Response:
        async def render(state: AppState) -> Response:
            data = await run_in_threadpool(ops_views.registry_page, state.model_registry, model)
            return page(
                request, "registry.html.j2", title=f"{model} versions", done=done, error=error,
                **data,
            )  # fmt: skip

        return await _view(request, render)

    @router.post("/models/{model}/aliases/{alias}/rollback")
    async def rollback(request: Request, model: str, alias: str) -> Response:
        registry_ = app_state(request).model_registry

        def act(who: Principal, form: Form) -> str:
            move = registry_.rollback(
                model, alias, moved_by=who.name, reason=form.get("reason", "").strip()
            )
            before = "unset" if move.from_version is None else f"v{move.from_version}"
            return f"{model}@{alias} rolled back from {before} to v{move.to_version}"

        return await _post(request, f"/models/{quote(model)}/versions", act)

    @router.get("/rollouts", response_class=HTMLResponse)
    async def rollouts(request: Request, model: str | None = None) -> Response:
        async def render(state: AppState) -> Response:
            data = await run_in_threadpool(
                lambda: ops_views.rollouts_page(state.store, model=model or None)
            )
            return page(request, "rollouts.html.j2", title="Rollouts", **data)

        return await _view(request, render)

    @router.get("/rollouts/{rollout_id}", response_class=HTMLResponse)
    async def rollout(
        request: Request, rollout_id: str, done: str = "", error: str = ""
    ) -> Response:
        async def render(state: AppState) -> Response:
            controller = _controller(state)
            data = await run_in_threadpool(ops_views.rollout_page, controller, _id(rollout_id))
            return page(
                request, "rollout.html.j2", title=f"Rollout {data['id']}", done=done,
                error=error, **data,
            )  # fmt: skip

        return await _view(request, render)

    @router.post("/rollouts/{rollout_id}/{command}")
    async def rollout_action(request: Request, rollout_id: str, command: str) -> Response:
        state = app_state(request)

        def act(who: Principal, form: Form) -> str:
            number = _id(rollout_id)
            document = apply_action(
                _controller(state),
                number,
                command,
                by=who.name,
                reason=form.get("reason", "").strip(),
                full=form.get("full", "") == "true",
            )
            return f"{command}: rollout {number} is {document['state']}"

        return await _post(request, f"/rollouts/{quote(rollout_id)}", act)

    @router.get("/retrain/runs", response_class=HTMLResponse)
    async def runs(
        request: Request, model: str | None = None, done: str = "", error: str = ""
    ) -> Response:
        async def render(state: AppState) -> Response:
            data = await run_in_threadpool(
                lambda: ops_views.runs_page(state.store, state.service, model=model or None)
            )
            return page(
                request, "runs.html.j2", title="Retraining runs", done=done, error=error, **data
            )

        return await _view(request, render)

    @router.post("/retrain/runs/{run_id}/approve")
    async def approve(request: Request, run_id: str) -> Response:
        state = app_state(request)

        def act(who: Principal, form: Form) -> str:
            if state.retrain is None:
                raise NotFoundError(
                    "retraining is not enabled on this server", kind="route", name="retrain"
                )
            number = _run_id(run_id)
            reason = form.get("reason", "").strip()
            # Recorded as the API records it: the approver, and why in brackets.
            by = who.name + (f" ({reason})" if reason else "")
            record = state.retrain.approve(number, by=by)
            return f"run {number} approved: canary rollout {record.rollout_id} started"

        return await _post(request, "/retrain/runs", act)

    @router.get("/models/{model}/backtest", response_class=HTMLResponse)
    async def backtest_form(request: Request, model: str) -> Response:
        async def render(state: AppState) -> Response:
            state.service.get_model(model)  # 404 for an unknown model
            return page(
                request, "backtest.html.j2", title=f"{model} backtest", name=model,
                form=_form_defaults(), ranges=list(views.RANGES), result=None, error="",
                limits=_limits(),
            )  # fmt: skip

        return await _view(request, render)

    @router.post("/models/{model}/backtest", response_class=HTMLResponse)
    async def backtest_run(request: Request, model: str) -> Response:
        back = f"/models/{quote(model)}/backtest"
        try:
            _, form = await action(request, "read")
        except LoginRequiredError as missing:
            return _back("/login", next=back, reason=missing.reason)
        except ForbiddenError as refused:
            return forbidden(request, refused)
        except WatchkeeperError as error:
            return error_page(request, error)
        state = app_state(request)
        shown = {**_form_defaults(), **form}
        try:
            now = state.clock()
            span = views.time_range(
                shown.get("range") or None,
                start=parse_instant(shown.get("start") or None, name="start"),
                end=parse_instant(shown.get("end") or None, name="end"),
                now=now,
            )
            result = await run_in_threadpool(
                lambda: backtest.run(
                    state.service, state.alerting, model, start=span.start, end=span.end,
                    rules_text=shown.get("rules", ""), now=now,
                )
            )  # fmt: skip
        except NotFoundError as error:
            return error_page(request, error)
        except WatchkeeperError as error:
            return page(
                request, "backtest.html.j2", status=400, title=f"{model} backtest", name=model,
                form=shown, ranges=list(views.RANGES), result=None, error=str(error),
                limits=_limits(),
            )  # fmt: skip
        return page(
            request, "backtest.html.j2", title=f"{model} backtest", name=model, form=shown,
            ranges=list(views.RANGES), result=result, error="", limits=_limits(),
        )  # fmt: skip


def _id(text: str) -> int:
    """A rollout id from the path: a positive 32-bit integer, else no such rollout."""
    if not text.isdigit() or not 0 < int(text) < 2**31:
        raise NotFoundError(f"no rollout {text!r}", kind="rollout", name=text)
    return int(text)


def _run_id(text: str) -> int:
    """A retraining run id from the path, as :func:`_id`."""
    if not text.isdigit() or not 0 < int(text) < 2**31:
        raise NotFoundError(f"no retraining run {text!r}", kind="retrain run", name=text)
    return int(text)


def _form_defaults() -> dict[str, str]:
    return {"range": "7d", "start": "", "end": "", "rules": ""}


def _limits() -> dict[str, Any]:
    return {
        "days": int(backtest.MAX_RANGE_SECONDS // 86_400),
        "windows": backtest.MAX_WINDOWS,
        "rules_bytes": backtest.MAX_RULES_BYTES,
    }
