"""Engines for the two backends, their connection settings, and error translation.

SQLite durability: the database runs in WAL mode with ``synchronous=FULL``, so every commit
fsyncs the write-ahead log before the store returns. ``NORMAL`` would already survive a killed
process (the WAL frames are in the OS page cache once ``write`` returns) but can lose the last
transactions on power loss or a kernel crash; since the service answers 2xx only after a commit,
the default is the setting that makes that answer true in both cases. Commits are per ingest
batch, so the fsync is paid once per batch, not once per event.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any, Final, Literal

import orjson
import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import StaticPool

from watchkeeper.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    StoreError,
    WatchkeeperError,
)

__all__ = [
    "JSON_OPTIONS",
    "SQLITE_CHECKPOINT_PAGES",
    "Backend",
    "SqliteSynchronous",
    "encode_json",
    "is_sqlite_memory",
    "make_engine",
    "normalise_url",
    "redact_url",
    "translate_error",
]

Backend = Literal["sqlite", "postgresql"]
SqliteSynchronous = Literal["FULL", "NORMAL"]

# An execution option that marks a connection whose transaction will write; on SQLite such a
# transaction starts with BEGIN IMMEDIATE so it takes the write lock up front instead of failing
# with SQLITE_BUSY when it upgrades from a read snapshot that another writer has moved past.
WRITE_OPTION = "watchkeeper_write"

JSON_OPTIONS: Final = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
_BUSY_TIMEOUT_MS = 30_000
# 16 KiB pages and a 64 MiB checkpoint threshold: event rows are ~0.5-1 KiB of JSON, and fewer,
# larger pages plus rarer checkpoints more than double bulk insert throughput over the defaults.
_SQLITE_PAGE_SIZE = 16_384
_SQLITE_AUTOCHECKPOINT_PAGES = 4_096
# Checkpoints run in a thread of the store (``checkpoint.py``) at the threshold above; the commits'
# own automatic checkpoint stays only as a safety net, at eight times that.
SQLITE_CHECKPOINT_PAGES: Final = _SQLITE_AUTOCHECKPOINT_PAGES
_SQLITE_SAFETY_CHECKPOINT_PAGES = 8 * _SQLITE_AUTOCHECKPOINT_PAGES
_SQLITE_CACHE_KIB = 32_768


def encode_json(value: Any) -> bytes:
    """Serialise a JSON value as every JSON column of the store is written (NaN becomes null).

    On SQLite the bytes are bound as a BLOB: a column declared ``JSON`` has NUMERIC affinity, so
    text such as ``1.0`` or ``12345678901234567890`` would be silently turned into numbers.
    """
    return orjson.dumps(value, option=JSON_OPTIONS)


def _encode_json_text(value: Any) -> str:
    return encode_json(value).decode()


def _decode_json(stored: str | bytes | float) -> Any:
    # Numbers appear only if a row was written as text by another tool (NUMERIC affinity).
    if isinstance(stored, int | float):
        return stored
    return orjson.loads(stored)


def normalise_url(url: str) -> URL:
    """Parse a store URL; plain paths mean SQLite files and ``postgresql://`` means psycopg 3.

    >>> normalise_url("postgresql://wk@db:5432/wk").drivername
    'postgresql+psycopg'
    >>> normalise_url("monitoring.db").render_as_string()
    'sqlite:///monitoring.db'
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(
            f"store URL must be a non-empty string, got {url!r}; use e.g. "
            "'sqlite:///watchkeeper.db' or 'postgresql://user@host/db'",
            key="db",
        )
    text = url.strip()
    if "://" not in text:
        return sa.make_url("sqlite:///" + text)
    try:
        parsed = sa.make_url(text)
    except sa_exc.ArgumentError as exc:
        raise ConfigError(
            f"cannot parse store URL {_scrub_text(text)!r}: {exc}", key="db"
        ) from None
    backend = parsed.get_backend_name()
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"unsupported store backend {backend!r} in {redact_url(parsed)!r}; "
            "watchkeeper stores data in SQLite (sqlite:///path.db) or PostgreSQL "
            "(postgresql://user@host/db)",
            key="db",
        )
    return parsed


def _scrub_text(text: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", text)


def redact_url(url: URL) -> str:
    """Render ``url`` with its password hidden."""
    return url.render_as_string(hide_password=True)


def is_sqlite_memory(url: URL) -> bool:
    """Whether ``url`` names a private in-memory SQLite database."""
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def make_engine(url: URL, *, sqlite_synchronous: SqliteSynchronous = "FULL") -> Engine:
    """Create the engine for ``url`` with the store's connection settings."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, sqlite_synchronous)
    return sa.create_engine(
        url,
        json_serializer=_encode_json_text,
        json_deserializer=_decode_json,
        pool_pre_ping=True,
    )


def _sqlite_engine(url: URL, synchronous: SqliteSynchronous) -> Engine:
    memory = is_sqlite_memory(url)
    if memory:
        # One connection shared by every thread: the only way several threads (and Alembic) see
        # the same private in-memory database; the Store serialises access with a lock.
        engine = sa.create_engine(
            "sqlite://",
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
            json_serializer=encode_json,
            json_deserializer=_decode_json,
        )
    else:
        if url.database:
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False},
            json_serializer=encode_json,
            json_deserializer=_decode_json,
        )

    @sa_event.listens_for(engine, "connect")
    def _configure(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # Python's sqlite3 would open transactions implicitly and only before DML; the store
        # begins them itself (see ``_begin``) so reads and writes get the right lock mode.
        dbapi_connection.isolation_level = None
        pragmas = [
            f"busy_timeout={_BUSY_TIMEOUT_MS}",
            "foreign_keys=ON",
            f"page_size={_SQLITE_PAGE_SIZE}",
            f"cache_size=-{_SQLITE_CACHE_KIB}",
        ]
        if not memory:
            pragmas += [
                "journal_mode=WAL",
                f"synchronous={synchronous}",
                f"wal_autocheckpoint={_SQLITE_SAFETY_CHECKPOINT_PAGES}",
                f"journal_size_limit={_SQLITE_PAGE_SIZE * _SQLITE_AUTOCHECKPOINT_PAGES}",
            ]
        cursor = dbapi_connection.cursor()
        try:
            for pragma in pragmas:
                cursor.execute("PRAGMA " + pragma)
        finally:
            cursor.close()

    @sa_event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _constraint_kind(exc: sa_exc.IntegrityError) -> Literal["unique", "foreign_key", "other"]:
    orig = exc.orig
    code = str(getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", ""))
    if code in ("23505", "SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
        return "unique"
    if code in ("23503", "SQLITE_CONSTRAINT_FOREIGNKEY"):
        return "foreign_key"
    return "other"


def translate_error(
    exc: sa_exc.SQLAlchemyError, *, backend: Backend, operation: str, url: URL
) -> WatchkeeperError:
    """Map a SQLAlchemy/driver error to watchkeeper's tree, with no password in the message."""
    detail = str(exc.orig) if isinstance(exc, sa_exc.DBAPIError) else str(exc)
    detail = detail.strip().splitlines()[0] if detail.strip() else type(exc).__name__
    if url.password:
        detail = detail.replace(str(url.password), "***")
    detail = _scrub_text(detail)
    if isinstance(exc, sa_exc.IntegrityError):
        kind = _constraint_kind(exc)
        if kind == "unique":
            return ConflictError(f"{operation}: already exists ({detail})")
        if kind == "foreign_key":
            return NotFoundError(
                f"{operation}: the model does not exist ({detail}); register it first",
                kind="model",
            )
    sqlstate = str(getattr(getattr(exc, "orig", None), "sqlstate", "") or "")
    sqlite_name = str(getattr(getattr(exc, "orig", None), "sqlite_errorname", "") or "")
    if sqlstate.startswith("40") or sqlite_name.startswith("SQLITE_BUSY"):
        hint = "a concurrent transaction got in the way; retry the operation"
    elif backend == "sqlite":
        hint = "check that the database file is writable and not on a network filesystem"
    else:
        hint = "check that the PostgreSQL server is reachable and the URL is right"
    return StoreError(
        f"{backend} store at {redact_url(url)} failed during {operation}: {detail}; {hint}",
        backend=backend,
    )
