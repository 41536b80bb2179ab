"""Who is looking at the dashboard, and proof that a form was posted from it.

A browser cannot attach ``Authorization: Bearer`` to a page load, so with authentication on the
dashboard asks for a token once (``/login``) and keeps it in an HttpOnly, SameSite=Strict
cookie; every page checks it with the same :class:`~watchkeeper.server.auth.Authenticator` and
the same scopes as the API (``read`` to view, ``admin`` to act). Without authentication (the
loopback default) everyone is the anonymous admin, as on the API.

Every action is a POST that carries a CSRF token: a random value kept in a SameSite=Strict
cookie and repeated in the form (double submit). A page from another site can neither read
the cookie nor make the browser send it, so it cannot forge an action.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Final
from urllib.parse import parse_qs

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from watchkeeper.errors import AuthError, InputError
from watchkeeper.server.auth import Principal
from watchkeeper.server.state import app_state
from watchkeeper.server.wire import read_body

__all__ = [
    "CSRF_COOKIE",
    "TOKEN_COOKIE",
    "LoginRequiredError",
    "csrf_token",
    "principal",
    "read_form",
]

TOKEN_COOKIE: Final = "watchkeeper_token"
CSRF_COOKIE: Final = "watchkeeper_csrf"
_ANONYMOUS: Final = Principal(name="anonymous", scopes=("admin",))


class LoginRequiredError(Exception):
    """The page needs a token the request does not carry (or carries a bad one)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ForbiddenError(Exception):
    """The token is valid but lacks the scope, or a form's CSRF token does not match."""


async def principal(request: Request, scope: str) -> Principal:
    """The principal of a dashboard request, allowed ``scope``.

    Raises :class:`LoginRequiredError` without a valid token and :class:`ForbiddenError` without the
    scope.
    """
    authenticator = app_state(request).authenticator
    if not authenticator.enabled:
        return _ANONYMOUS
    token = request.cookies.get(TOKEN_COOKIE, "").strip()
    if not token:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if not token:
        raise LoginRequiredError("sign in with a token to view the dashboard")
    try:
        found = await run_in_threadpool(authenticator.verify, token)
    except AuthError as error:
        raise LoginRequiredError(str(error)) from None
    if not found.allows(scope):
        raise ForbiddenError(
            f"token {found.name!r} lacks the {scope!r} scope needed here "
            f"(it has: {', '.join(found.scopes)})"
        )
    return found


def csrf_token(request: Request) -> str:
    """The CSRF token of this browser: its cookie's value, or a new one to set."""
    current = request.cookies.get(CSRF_COOKIE, "")
    return current if len(current) >= 32 else secrets.token_urlsafe(32)


async def read_form(request: Request) -> dict[str, str]:
    """A posted ``application/x-www-form-urlencoded`` form, its CSRF token checked.

    Raises :class:`ForbiddenError` when the form's ``csrf`` field does not match the cookie.
    """
    state = app_state(request)
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise InputError(
            f"content-type: expected application/x-www-form-urlencoded, got {media or 'none'!r}",
            column="content-type",
        )
    body = await read_body(
        request, limit=state.settings.max_admin_body_bytes, setting="max_admin_body_bytes"
    )
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise InputError("form: the body is not UTF-8", column="form") from None
    form = {key: values[-1] for key, values in parsed.items()}
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = form.pop("csrf", "")
    if not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise ForbiddenError("the form's CSRF token does not match; reload the page and try again")
    return form
