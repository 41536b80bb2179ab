"""The dashboard's pages and actions, served by ``watchkeeper serve`` at ``/`` and below.

Pages: ``/`` (every model's health), ``/models/{name}`` (its signals over time),
``/models/{name}/report`` (one window or range: reference vs current distributions) and
``/alerts`` (alerts, their history and silences, with forms to add and expire silences); the
registry, rollout and backtest pages are in :mod:`watchkeeper.dashboard.operations`.
Assets come from the package (``/assets/…``, plotly.js from the installed ``plotly``), so the
dashboard works without internet access.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from watchkeeper.alerts.model import parse_duration
from watchkeeper.dashboard import operations, views
from watchkeeper.dashboard.render import ASSETS, REPORT_CSP, error_page, forbidden, guard
from watchkeeper.dashboard.render import asset as packaged_asset
from watchkeeper.dashboard.render import page as _page
from watchkeeper.dashboard.session import (
    TOKEN_COOKIE,
    ForbiddenError,
    principal,
    read_form,
)
from watchkeeper.errors import AuthError, ConfigError, WatchkeeperError
from watchkeeper.server.routes.signals import parse_instant
from watchkeeper.server.state import AppState, app_state

__all__ = ["dashboard_router"]


def dashboard_router() -> APIRouter:
    """The dashboard's routes (left out of the OpenAPI document: they answer HTML)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/assets/{name}")
    def asset(name: str) -> Response:
        media = ASSETS.get(name)
        if media is None:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(
            packaged_asset(name),
            media_type=media,
            headers={"cache-control": "public, max-age=86400"},
        )

    @router.get("/favicon.ico")
    def favicon() -> Response:
        # Browsers ask for it on every page (the report page too); no icon, and no 404 either.
        return Response(status_code=204)

    @router.get("/", response_class=HTMLResponse)
    async def overview(request: Request) -> Response:
        if (refused := await guard(request, "read")) is not None:
            return refused
        state = app_state(request)
        data = await run_in_threadpool(
            views.overview, state.service, state.alerting, state.model_registry, now=state.clock()
        )
        return _page(request, "overview.html.j2", title="Models", **data)

    @router.get("/models/{model}", response_class=HTMLResponse)
    async def model(
        request: Request,
        model: str,
        range: str | None = None,
        start: str | None = None,
        end: str | None = None,
        window: str | None = None,
        version: str | None = None,
        segment: str | None = None,
    ) -> Response:
        if (refused := await guard(request, "read")) is not None:
            return refused
        state = app_state(request)
        try:
            span = views.time_range(
                range,
                start=parse_instant(start, name="start"),
                end=parse_instant(end, name="end"),
                now=state.clock(),
            )
            data = await run_in_threadpool(
                lambda: views.model_page(
                    state.service,
                    state.alerting,
                    state.model_registry,
                    model,
                    span=span,
                    window=_window_form(window),
                    version=version or None,
                    segment=segment if segment else None,
                )
            )
        except WatchkeeperError as error:
            return error_page(request, error)
        return _page(request, "model.html.j2", title=model, ranges=list(views.RANGES), **data)

    @router.get("/models/{model}/report", response_class=HTMLResponse)
    async def window_report(
        request: Request,
        model: str,
        start: str | None = None,
        end: str | None = None,
        version: str | None = None,
        segment: str | None = None,
    ) -> Response:
        if (refused := await guard(request, "read")) is not None:
            return refused
        state = app_state(request)
        try:
            since = parse_instant(start, name="start")
            until = parse_instant(end, name="end")
            if since is None or until is None:
                raise ConfigError("start and end are required", key="start")
            html = await run_in_threadpool(
                _render_report, state, model, since, until, version or None, segment or None
            )
        except WatchkeeperError as error:
            return error_page(request, error)
        response = HTMLResponse(html)
        response.headers["content-security-policy"] = REPORT_CSP
        return response

    @router.get("/alerts", response_class=HTMLResponse)
    async def alerts(request: Request, error: str | None = None) -> Response:
        if (refused := await guard(request, "read")) is not None:
            return refused
        state = app_state(request)
        data = await run_in_threadpool(views.alerts_page, state.alerting)
        return _page(request, "alerts.html.j2", title="Alerts", error=error, **data)

    @router.post("/alerts/silences")
    async def add_silence(request: Request) -> Response:
        if (refused := await guard(request, "admin")) is not None:
            return refused
        state = app_state(request)
        try:
            form = await read_form(request)
            who = await principal(request, "admin")
            matchers = [
                line.strip() for line in form.get("matchers", "").splitlines() if line.strip()
            ]
            duration = parse_duration(form.get("duration", "").strip() or "missing", key="duration")
            await run_in_threadpool(
                lambda: state.alerting.add_silence(
                    matchers=matchers,
                    created_by=form.get("created_by", "").strip() or who.name,
                    comment=form.get("comment", ""),
                    duration=duration,
                )
            )
        except ForbiddenError as refused_form:
            return forbidden(request, refused_form)
        except WatchkeeperError as error:
            return RedirectResponse(f"/alerts?error={quote(str(error))}", status_code=303)
        return RedirectResponse("/alerts", status_code=303)

    @router.post("/alerts/silences/{silence_id}/expire")
    async def expire_silence(request: Request, silence_id: str) -> Response:
        if (refused := await guard(request, "admin")) is not None:
            return refused
        state = app_state(request)
        try:
            await read_form(request)
            await run_in_threadpool(state.alerting.expire_silence, silence_id)
        except ForbiddenError as refused_form:
            return forbidden(request, refused_form)
        except WatchkeeperError as error:
            return RedirectResponse(f"/alerts?error={quote(str(error))}", status_code=303)
        return RedirectResponse("/alerts", status_code=303)

    @router.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request, next: str = "/", reason: str = "") -> Response:
        return _page(request, "login.html.j2", title="Sign in", next=_local(next), reason=reason)

    @router.post("/login")
    async def login(request: Request) -> Response:
        state = app_state(request)
        try:
            form = await read_form(request)
        except ForbiddenError as refused_form:
            return forbidden(request, refused_form)
        token = form.get("token", "").strip()
        target = _local(form.get("next", "/"))
        try:
            await run_in_threadpool(state.authenticator.verify, token)
        except AuthError as error:
            return _page(
                request,
                "login.html.j2",
                status=401,
                title="Sign in",
                next=target,
                reason=str(error),
            )
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            TOKEN_COOKIE, token, httponly=True, samesite="strict", path="/",
            secure=request.url.scheme == "https",
        )  # fmt: skip
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        try:
            await read_form(request)
        except ForbiddenError as refused_form:
            return forbidden(request, refused_form)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(TOKEN_COOKIE, path="/")
        return response

    operations.add_routes(router)
    return router


def _local(target: str) -> str:
    """``target`` if it is a path on this server, else ``/`` (no open redirect)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _window_form(window: str | None) -> int | str | None:
    if not window:
        return None
    text = window.strip()
    return int(text) if text.isdigit() else text


def _render_report(
    state: AppState,
    model: str,
    start: float,
    end: float,
    version: str | None,
    segment: str | None,
) -> str:
    from watchkeeper.report.html import render_html

    document = state.service.range_report(
        model, start=start, end=end, version=version, segment=segment
    )
    return render_html(document, plotly="cdn", plotly_url="/assets/plotly.min.js")
