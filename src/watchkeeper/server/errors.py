"""The one place where errors become HTTP responses.

Domain code raises the exceptions of :mod:`watchkeeper.errors` and never knows HTTP; this module
maps each one to a status code and the error body every route shares::

    {"error": {"type": "not_found", "message": "...", "field": null, "index": null}}

Conditions that only exist at the HTTP layer (an oversized body, malformed JSON, a token that
lacks a scope) are raised through the helpers below, so every status code the service sends is
decided here. Messages never carry secrets: store errors are reduced to their backend name.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any, Final

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Route

from watchkeeper.errors import (
    AuthError,
    ConfigError,
    ConflictError,
    DeliveryError,
    DriftError,
    IngestError,
    InputError,
    NotFoundError,
    StaleVersionError,
    StoreError,
    WatchkeeperError,
)
from watchkeeper.server.responses import JsonResponse

__all__ = [
    "allowed_methods",
    "error_body",
    "forbidden",
    "install_error_handlers",
    "malformed_body",
    "malformed_json",
    "payload_too_large",
    "status_of",
    "unsupported_media_type",
]

logger = logging.getLogger("watchkeeper.server")

# Most specific class first: the first match wins.
_STATUS: Final[tuple[tuple[type[WatchkeeperError], int, str], ...]] = (
    (NotFoundError, 404, "not_found"),
    (StaleVersionError, 412, "precondition_failed"),
    (ConflictError, 409, "conflict"),
    (AuthError, 401, "unauthorized"),
    (IngestError, 422, "invalid_batch"),
    (ConfigError, 422, "invalid_config"),
    (InputError, 422, "invalid_input"),
    (DriftError, 422, "invalid_input"),
    (StoreError, 503, "store_unavailable"),
    (DeliveryError, 502, "delivery_failed"),
)
_DEFAULT_TYPES: Final = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    412: "precondition_failed",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "unavailable",
}


def error_body(
    error_type: str, message: str, *, field: str | None = None, index: int | None = None
) -> dict[str, Any]:
    """The shared error document."""
    return {"error": {"type": error_type, "message": message, "field": field, "index": index}}


def status_of(error: WatchkeeperError) -> tuple[int, str]:
    """HTTP status and error type of a domain error."""
    for cls, status, error_type in _STATUS:
        if isinstance(error, cls):
            return status, error_type
    return 500, "internal_error"


def _http_error(
    status: int, error_type: str, message: str, *, field: str | None = None
) -> HTTPException:
    return HTTPException(status, detail=error_body(error_type, message, field=field))


def payload_too_large(message: str, *, field: str = "body") -> HTTPException:
    """413: the body or the batch is larger than the configured limit."""
    return _http_error(413, "payload_too_large", message, field=field)


def malformed_json(error: json.JSONDecodeError) -> HTTPException:
    """400: the body is not JSON; the message gives the position of the first problem."""
    message = (
        f"malformed JSON at line {error.lineno}, column {error.colno} (byte {error.pos}): "
        f"{error.msg}"
    )
    return _http_error(400, "malformed_json", message, field="body")


def malformed_body(message: str) -> HTTPException:
    """400: the body cannot be decoded in its declared format."""
    return _http_error(400, "malformed_body", message, field="body")


def unsupported_media_type(content_type: str, supported: tuple[str, ...]) -> HTTPException:
    """415: a content type the route does not read."""
    return _http_error(
        415,
        "unsupported_media_type",
        f"content-type {content_type!r} is not supported here; send one of {', '.join(supported)}",
        field="content-type",
    )


def forbidden(message: str) -> HTTPException:
    """403: a valid token without the scope the route needs."""
    return _http_error(403, "forbidden", message, field="authorization")


def _respond(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return JsonResponse(body, status_code=status, headers=headers)


async def _domain_error(request: Request, error: Exception) -> Any:
    assert isinstance(error, WatchkeeperError)
    status, error_type = status_of(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(error, StoreError):
        # Driver messages can carry hosts, users and SQL; the log keeps the detail.
        logger.error("store error on %s %s: %s", request.method, request.url.path, error)
        return _respond(
            status,
            error_body(
                error_type,
                f"the {error.backend or 'metadata'} store failed; retry later, and see the "
                "server log for the cause",
            ),
        )
    if status == 500:
        logger.exception("unexpected %s", type(error).__name__, exc_info=error)
    field = getattr(error, "field", None) or getattr(error, "key", None)
    field = field or getattr(error, "column", None)
    if status == 401:
        field = field or "authorization"
    index = getattr(error, "index", None)
    return _respond(status, error_body(error_type, str(error), field=field, index=index), headers)


async def _http_exception(request: Request, error: Exception) -> Any:
    assert isinstance(error, StarletteHTTPException)
    if isinstance(error.detail, dict) and "error" in error.detail:
        body = error.detail
    else:
        body = error_body(_DEFAULT_TYPES.get(error.status_code, "error"), str(error.detail))
    headers = dict(error.headers or {})
    if error.status_code == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    if error.status_code == 405:
        # Starlette names the methods of the first route that matched the path; a path served
        # by several routes (GET and POST /v1/models) allows all of theirs.
        allowed = allowed_methods(request.app.routes, request.url.path)
        headers["Allow"] = ", ".join(allowed)
        body = error_body(
            "method_not_allowed",
            f"{request.method} is not allowed on {request.url.path}; use {', '.join(allowed)}",
        )
    return _respond(error.status_code, body, headers or None)


async def _validation_error(request: Request, error: Exception) -> Any:
    assert isinstance(error, RequestValidationError)
    problems = error.errors()
    first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
    location = [str(part) for part in first.get("loc", ())]
    # ("body", "scopes", 0) → field "scopes", index 0; ("query", "start") → field "start".
    index = next((int(part) for part in location[1:] if part.isdigit()), None)
    field = ".".join(part for part in location[1:] if not part.isdigit()) or None
    message = f"{field or 'request'}: {first.get('msg', 'invalid value')}"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problems)"
    return _respond(422, error_body("invalid_request", message, field=field, index=index))


async def _unexpected(request: Request, error: Exception) -> Any:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    # The server drops the connection after an unhandled error; saying so keeps clients that
    # reuse connections from sending their next request into a closed socket.
    return _respond(
        500,
        error_body("internal_error", "internal server error; see the server log"),
        {"Connection": "close"},
    )


def allowed_methods(routes: Iterable[BaseRoute], path: str) -> list[str]:
    """Every method that some route of ``routes`` (included routers too) serves at ``path``."""
    methods: set[str] = set()
    for route in routes:
        # Newer FastAPI versions keep an included router as one route that holds it.
        included = getattr(route, "original_router", None)
        if included is not None:
            methods.update(allowed_methods(included.routes, path))
        elif isinstance(route, Route) and route.methods and route.path_regex.match(path):
            methods.update(route.methods)
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    """Route every error raised while serving a request through this module."""
    app.add_exception_handler(WatchkeeperError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
