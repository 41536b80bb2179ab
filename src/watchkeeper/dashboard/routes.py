"""The dashboard's pages and actions, served by ``watchkeeper serve`` at ``/`` and below.

Pages: ``/`` (every model's health), ``/models/{name}`` (its signals over time),
``/models/{name}/report`` (one window or range: reference vs current distributions) and
``/alerts`` (alerts, their history and silences, with forms to add and expire silences).
Assets come from the package (``/assets/…``, plotly.js from the installed ``plotly``), so the
dashboard works without internet access.
"""

from __future__ import annotations

import functools
import importlib.resources
from typing import Any, Final
from urllib.parse import quote, urlencode

import jinja2
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

import watchkeeper
from watchkeeper.alerts.model import parse_duration
from watchkeeper.dashboard import views
from watchkeeper.dashboard.session import (
    CSRF_COOKIE,
    TOKEN_COOKIE,
    ForbiddenError,
    LoginRequiredError,
    csrf_token,
    principal,
    read_form,
)
from watchkeeper.errors import AuthError, ConfigError, NotFoundError, WatchkeeperError
from watchkeeper.report.formatting import format_p_value
from watchkeeper.server.routes.signals import parse_instant
from watchkeeper.server.state import AppState, app_state

__all__ = ["dashboard_router"]

_ASSETS: Final = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "plotly.min.js": "text/javascript; charset=utf-8",
}
_CSP: Final = (
    "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
# The report page is the batch report's self-contained HTML: its script and data are inline.
_REPORT_CSP: Final = _CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'")


@functools.cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("watchkeeper.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        when=_when, num=_num, pct=_pct, pvalue=format_p_value, tojson_script=_json_for_script
    )
    return environment


def _when(epoch: Any) -> str:
    from datetime import UTC, datetime

    if not isinstance(epoch, (int, float)):
        return "—"
    return datetime.fromtimestamp(float(epoch), UTC).strftime("%Y-%m-%d %H:%M UTC")


def _num(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "—"
    return f"{value:,.4g}" if isinstance(value, float) else f"{value:,}"


def _pct(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "—"
    return f"{100.0 * value:.1f} %"


def _json_for_script(data: Any) -> Markup:
    """JSON for a ``<script type="application/json">`` block (``<``, ``>``, ``&`` escaped, so
    no string can close the element)."""
    text = orjson.dumps(data).decode()
    safe = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(safe)


def _page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    token = csrf_token(request)
    state = app_state(request)
    html = (
        _environment()
        .get_template(template)
        .render(
            version=watchkeeper.__version__,
            csrf=token,
            auth=state.authenticator.enabled,
            path=request.url.path,
            **context,
        )
    )
    response = HTMLResponse(html, status_code=status)
    response.headers["content-security-policy"] = _CSP
    response.headers["x-content-type-options"] = "nosniff"
    response.headers["referrer-policy"] = "same-origin"
    if request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", path="/")
    return response


@functools.cache
def _asset(name: str) -> bytes:
    if name == "plotly.min.js":
        return (importlib.resources.files("plotly") / "package_data" / name).read_bytes()
    return (importlib.resources.files("watchkeeper.dashboard") / "assets" / name).read_bytes()


async def _guard(request: Request, scope: str) -> Response | None:
    """None when the request may see a page of ``scope``; else the login redirect or a 403."""
    try:
        await principal(request, scope)
    except LoginRequiredError as missing:
        target = f"/login?{urlencode({'next': str(request.url.path), 'reason': missing.reason})}"
        return RedirectResponse(target, status_code=303)
    except ForbiddenError as refused:
        return _page(
            request, "error.html.j2", status=403, title="Not allowed", message=str(refused)
        )
    return None


def _error(request: Request, error: WatchkeeperError) -> HTMLResponse:
    status = 404 if isinstance(error, NotFoundError) else 400
    return _page(
        request,
        "error.html.j2",
        status=status,
        title="Not found" if status == 404 else "Bad request",
        message=str(error),
    )


def dashboard_router() -> APIRouter:
    """The dashboard's routes (left out of the OpenAPI document: they answer HTML)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/assets/{name}")
    def asset(name: str) -> Response:
        media = _ASSETS.get(name)
        if media is None:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(
            _asset(name),
            media_type=media,
            headers={"cache-control": "public, max-age=86400"},
        )

    @router.get("/favicon.ico")
    def favicon() -> Response:
        # Browsers ask for it on every page (the report page too); no icon, and no 404 either.
        return Response(status_code=204)

    @router.get("/", response_class=HTMLResponse)
    async def overview(request: Request) -> Response:
        if (refused := await _guard(request, "read")) is not None:
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
        if (refused := await _guard(request, "read")) is not None:
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
            return _error(request, error)
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
        if (refused := await _guard(request, "read")) is not None:
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
            return _error(request, error)
        response = HTMLResponse(html)
        response.headers["content-security-policy"] = _REPORT_CSP
        return response

    @router.get("/alerts", response_class=HTMLResponse)
    async def alerts(request: Request, error: str | None = None) -> Response:
        if (refused := await _guard(request, "read")) is not None:
            return refused
        state = app_state(request)
        data = await run_in_threadpool(views.alerts_page, state.alerting)
        return _page(request, "alerts.html.j2", title="Alerts", error=error, **data)

    @router.post("/alerts/silences")
    async def add_silence(request: Request) -> Response:
        if (refused := await _guard(request, "admin")) is not None:
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
            return _page(
                request, "error.html.j2", status=403, title="Not allowed", message=str(refused_form)
            )
        except WatchkeeperError as error:
            return RedirectResponse(f"/alerts?error={quote(str(error))}", status_code=303)
        return RedirectResponse("/alerts", status_code=303)

    @router.post("/alerts/silences/{silence_id}/expire")
    async def expire_silence(request: Request, silence_id: str) -> Response:
        if (refused := await _guard(request, "admin")) is not None:
            return refused
        state = app_state(request)
        try:
            await read_form(request)
            await run_in_threadpool(state.alerting.expire_silence, silence_id)
        except ForbiddenError as refused_form:
            return _page(
                request, "error.html.j2", status=403, title="Not allowed", message=str(refused_form)
            )
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
            return _page(
                request, "error.html.j2", status=403, title="Not allowed", message=str(refused_form)
            )
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
            return _page(
                request, "error.html.j2", status=403, title="Not allowed", message=str(refused_form)
            )
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(TOKEN_COOKIE, path="/")
        return response

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
