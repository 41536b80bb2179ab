"""Rendering shared by every dashboard page: templates, filters, headers, scope checks.

Each page is a Jinja2 template rendered with the page's content, the CSRF token of the browser
(set as a SameSite=Strict cookie on first sight) and a Content-Security-Policy that allows
scripts and styles from the server only. :func:`guard` turns the session's scope check into the
login redirect or a 403 page; :func:`action` does the same for a posted form and checks its
CSRF token.
"""

from __future__ import annotations

import functools
import importlib.resources
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode

import jinja2
import orjson
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

import watchkeeper
from watchkeeper.dashboard.session import (
    CSRF_COOKIE,
    ForbiddenError,
    LoginRequiredError,
    csrf_token,
    principal,
    read_form,
)
from watchkeeper.errors import NotFoundError, WatchkeeperError
from watchkeeper.report.formatting import format_p_value
from watchkeeper.server.auth import Principal
from watchkeeper.server.state import app_state

__all__ = ["ASSETS", "REPORT_CSP", "action", "asset", "error_page", "forbidden", "guard", "page"]

ASSETS: Final = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "plotly.min.js": "text/javascript; charset=utf-8",
}
_CSP: Final = (
    "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
# The report page is the batch report's self-contained HTML: its script and data are inline.
REPORT_CSP: Final = _CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'")


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
    if not isinstance(epoch, (int, float)) or isinstance(epoch, bool):
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


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """``template`` rendered with ``context``, the CSRF token and the security headers."""
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
def asset(name: str) -> bytes:
    """The bytes of a packaged asset (plotly.js from the installed ``plotly``)."""
    if name == "plotly.min.js":
        return (importlib.resources.files("plotly") / "package_data" / name).read_bytes()
    return (importlib.resources.files("watchkeeper.dashboard") / "assets" / name).read_bytes()


async def guard(request: Request, scope: str) -> Response | None:
    """None when the request may see a page of ``scope``; else the login redirect or a 403."""
    try:
        await principal(request, scope)
    except LoginRequiredError as missing:
        target = f"/login?{urlencode({'next': str(request.url.path), 'reason': missing.reason})}"
        return RedirectResponse(target, status_code=303)
    except ForbiddenError as refused:
        return forbidden(request, refused)
    return None


def forbidden(request: Request, refused: ForbiddenError) -> HTMLResponse:
    """The 403 page: a missing scope or a form without its CSRF token."""
    return page(request, "error.html.j2", status=403, title="Not allowed", message=str(refused))


async def action(request: Request, scope: str = "admin") -> tuple[Principal, dict[str, str]]:
    """Who posts a form allowed ``scope``, and the form, its CSRF token checked.

    Raises :class:`LoginRequiredError` or :class:`ForbiddenError` (see :func:`guard`).
    """
    who = await principal(request, scope)
    return who, await read_form(request)


def error_page(request: Request, error: WatchkeeperError) -> HTMLResponse:
    """A 404 (not found) or 400 (bad input) page with the error's message."""
    status = 404 if isinstance(error, NotFoundError) else 400
    return page(
        request,
        "error.html.j2",
        status=status,
        title="Not found" if status == 404 else "Bad request",
        message=str(error),
    )
