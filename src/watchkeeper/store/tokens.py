"""API tokens in the store: only the hash of a secret is kept."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from watchkeeper.errors import ConflictError, NotFoundError
from watchkeeper.store import tables as t
from watchkeeper.store.base import StoreBase
from watchkeeper.store.records import TokenRecord

__all__ = ["TokenStore"]


def _token(row: Row[Any]) -> TokenRecord:
    """The token of a row of ``api_tokens`` (scopes as a tuple)."""
    return TokenRecord(
        id=row.id,
        name=row.name,
        token_hash=row.token_hash,
        scopes=tuple(row.scopes),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


class TokenStore(StoreBase):
    """Create, find, list, revoke and touch API tokens."""

    def create_token(self, name: str, *, token_hash: str, scopes: Sequence[str]) -> TokenRecord:
        """Store a new token (its hash only); :class:`ConflictError` on a taken name or hash."""
        now = time.time()
        try:
            with self._connection(f"create token {name!r}", write=True) as connection:
                row = connection.execute(
                    t.api_tokens.insert()
                    .values(name=name, token_hash=token_hash, scopes=list(scopes), created_at=now)
                    .returning(*t.api_tokens.columns)
                ).one()
        except ConflictError:
            raise ConflictError(
                f"a token named {name!r} (or with the same secret) already exists; "
                "pick another name or revoke the old token"
            ) from None
        return _token(row)

    def token_by_hash(self, token_hash: str) -> TokenRecord | None:
        """The token whose secret hashes to ``token_hash`` (revoked ones too), or None."""
        with self._connection("read token", write=False) as connection:
            row = connection.execute(
                sa.select(t.api_tokens).where(t.api_tokens.c.token_hash == token_hash)
            ).first()
        return None if row is None else _token(row)

    def list_tokens(self) -> list[TokenRecord]:
        """Every token, revoked ones included, by name."""
        with self._connection("list tokens", write=False) as connection:
            rows = connection.execute(sa.select(t.api_tokens).order_by(t.api_tokens.c.name)).all()
        return [_token(row) for row in rows]

    def revoke_token(self, name: str) -> TokenRecord:
        """Revoke token ``name``; revoking twice keeps the first revocation time."""
        c = t.api_tokens.c
        with self._connection(f"revoke token {name!r}", write=True) as connection:
            connection.execute(
                t.api_tokens.update()
                .where(c.name == name, c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
            row = connection.execute(sa.select(t.api_tokens).where(c.name == name)).first()
        if row is None:
            raise NotFoundError(f"no token named {name!r}", kind="token", name=name)
        return _token(row)

    def touch_token(self, token_id: int, *, at: float | None = None) -> None:
        """Record that token ``token_id`` was just used."""
        with self._connection("touch token", write=True) as connection:
            connection.execute(
                t.api_tokens.update()
                .where(t.api_tokens.c.id == token_id)
                .values(last_used_at=time.time() if at is None else at)
            )
