"""API tokens: creation, hashing, and the per-request scope check.

A token is ``wk_`` followed by 32 random bytes from :mod:`secrets` (URL-safe base64). Only its
SHA-256 hex digest is stored: with 256 bits of entropy a plain, unsalted hash cannot be
reversed by guessing, and it lets the store find a token by an index lookup. The lookup is by
digest, never by the secret, and the digests are then compared with
:func:`hmac.compare_digest`, so response time does not depend on how much of a guess was right.
Configured admin tokens (``WATCHKEEPER_ADMIN_TOKEN``) are compared the same way.

Scopes: ``ingest`` (events, labels, feedback), ``read`` (models, signals, reports, metrics),
``predict`` (``POST /v1/models/{model}/predict``: serving through the router), ``admin``
(register and delete models, references, tokens, routing configs); ``admin`` implies the others.
When ``Settings.auth`` is false (the loopback-only default) every request is allowed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from watchkeeper.config import Settings
from watchkeeper.errors import AuthError, ConfigError
from watchkeeper.server.errors import forbidden
from watchkeeper.store import Store, TokenRecord

__all__ = [
    "SCOPES",
    "Authenticator",
    "Principal",
    "check_scopes",
    "hash_token",
    "issue_token",
    "new_token",
    "require",
    "token_summary",
]

SCOPES: Final = ("ingest", "read", "predict", "admin")
_PREFIX: Final = "wk_"
_TOKEN_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
# Recording last use is a write; once a minute per token keeps it off the ingest hot path.
_TOUCH_INTERVAL_SECONDS: Final = 60.0


def new_token() -> str:
    """A fresh secret token: ``wk_`` + 256 random bits, URL-safe."""
    return _PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Validate scope names; ConfigError names the first unknown one."""
    chosen = tuple(dict.fromkeys(scopes))
    if not chosen:
        raise ConfigError(f"scopes: give at least one of {', '.join(SCOPES)}", key="scopes")
    for scope in chosen:
        if scope not in SCOPES:
            raise ConfigError(
                f"scopes: unknown scope {scope!r}; use {', '.join(SCOPES)}", key="scopes"
            )
    return chosen


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: a token name (``admin`` for the configured admin token) and scopes."""

    name: str
    scopes: tuple[str, ...]

    def allows(self, scope: str) -> bool:
        """Whether the principal may act with ``scope`` (admin may do everything)."""
        return scope in self.scopes or "admin" in self.scopes


_ANONYMOUS: Final = Principal(name="anonymous", scopes=SCOPES)


class Authenticator:
    """Resolves ``Authorization: Bearer`` headers to principals against the store."""

    def __init__(self, *, settings: Settings, store: Store) -> None:
        self._enabled = settings.auth
        self._admin_digest = (
            hash_token(settings.admin_token) if settings.admin_token is not None else None
        )
        self._store = store
        self._touched: dict[int, float] = {}
        self._touch_lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Whether requests need a token."""
        return self._enabled

    def verify(self, token: str) -> Principal:
        """The principal of ``token``; AuthError when it is unknown or revoked."""
        digest = hash_token(token)
        if self._admin_digest is not None and hmac.compare_digest(digest, self._admin_digest):
            return Principal(name="admin", scopes=("admin",))
        record = self._store.token_by_hash(digest)
        if record is None or not hmac.compare_digest(record.token_hash, digest):
            raise AuthError("unknown token; create one with `watchkeeper tokens create`")
        if record.revoked_at is not None:
            raise AuthError(f"token {record.name!r} was revoked; ask an admin for a new one")
        self._touch(record)
        return Principal(name=record.name, scopes=tuple(record.scopes))

    def _touch(self, record: TokenRecord) -> None:
        now = time.time()
        with self._touch_lock:
            if now - self._touched.get(record.id, 0.0) < _TOUCH_INTERVAL_SECONDS:
                return
            self._touched[record.id] = now
        self._store.touch_token(record.id, at=now)

    async def authenticate(
        self, credentials: HTTPAuthorizationCredentials | None, scope: str
    ) -> Principal:
        """Check a request's bearer token for ``scope``: 401 without a valid one, else 403."""
        if not self._enabled:
            return _ANONYMOUS
        token = credentials.credentials.strip() if credentials is not None else ""
        if not token:
            raise AuthError("missing credentials: send the header 'Authorization: Bearer <token>'")
        principal = await run_in_threadpool(self.verify, token)
        if not principal.allows(scope):
            raise forbidden(
                f"token {principal.name!r} lacks the {scope!r} scope needed here "
                f"(it has: {', '.join(principal.scopes)})"
            )
        return principal


# Declared as an OpenAPI security scheme, so the document says which routes need a token.
_BEARER: Final = HTTPBearer(
    scheme_name="bearer",
    description="A token from `watchkeeper tokens create` or WATCHKEEPER_ADMIN_TOKEN; needed "
    "when the server runs with WATCHKEEPER_AUTH=true.",
    auto_error=False,
)


def require(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency that admits requests carrying ``scope``."""

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
    ) -> Principal:
        authenticator: Authenticator = request.app.state.watchkeeper.authenticator
        return await authenticator.authenticate(credentials, scope)

    dependency.__name__ = f"require_{scope}"
    return dependency


def issue_token(store: Store, name: str, scopes: Iterable[str]) -> tuple[str, TokenRecord]:
    """Create a token: the secret (shown once, never stored) and its stored record."""
    if not _TOKEN_NAME.fullmatch(name):
        raise ConfigError(
            f"name: {name!r} is not a valid token name; use 1-128 letters, digits, '_', '.' or '-'",
            key="name",
        )
    chosen = check_scopes(scopes)
    secret = new_token()
    record = store.create_token(name, token_hash=hash_token(secret), scopes=chosen)
    return secret, record


def token_summary(record: TokenRecord) -> dict[str, object]:
    """A token's public fields: never its secret nor its hash."""
    return {
        "name": record.name,
        "scopes": list(record.scopes),
        "created_at": record.created_at,
        "revoked_at": record.revoked_at,
        "last_used_at": record.last_used_at,
    }
