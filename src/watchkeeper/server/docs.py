"""The API's interactive docs, served from the package so they work offline.

FastAPI's default /docs and /redoc pages load Swagger UI and ReDoc from a CDN, which leaves a
blank page on a machine without internet access (most production networks). The assets come
from the ``fastapi-offline`` distribution (Swagger UI, ReDoc and FastAPI's favicon, with their
licences) and are served under ``/static/docs/``. ``/`` is the dashboard's.
"""

from __future__ import annotations

from importlib import resources
from typing import Final

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

__all__ = ["ASSETS", "docs_router"]

_PREFIX: Final = "/static/docs"
# The files served, with their media types; nothing else of the package is reachable.
ASSETS: Final = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}


def _asset(name: str) -> bytes:
    return (resources.files("fastapi_offline") / "static" / name).read_bytes()


def docs_router(app: FastAPI) -> APIRouter:
    """/docs (Swagger UI), /redoc (ReDoc) and their assets."""
    router = APIRouter(include_in_schema=False)
    title = f"{app.title} {app.version}"

    @router.get("/docs", response_class=HTMLResponse)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{title} — API",
            swagger_js_url=f"{_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{_PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{_PREFIX}/favicon.png",
        )

    @router.get("/redoc", response_class=HTMLResponse)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{title} — API reference",
            redoc_js_url=f"{_PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{_PREFIX}/favicon.png",
            with_google_fonts=False,
        )

    @router.get(_PREFIX + "/{name}")
    def asset(name: str) -> Response:
        media_type = ASSETS.get(name)
        if media_type is None:
            raise HTTPException(404, f"no docs asset named {name!r}; assets: {sorted(ASSETS)}")
        return Response(
            _asset(name),
            media_type=media_type,
            headers={"cache-control": "public, max-age=86400"},
        )

    return router
