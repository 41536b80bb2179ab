"""What every part of the store shares: the engine, one transaction per call, migrations.

:class:`StoreBase` opens the engine for a URL, picks the event writer of its backend, and runs
each call in its own short transaction (:meth:`StoreBase._connection`); the parts of
:class:`~watchkeeper.store.Store` (models, events, labels, windows, tokens) build on it.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine

from watchkeeper.errors import ConfigError, StoreError
from watchkeeper.store.checkpoint import Checkpointer
from watchkeeper.store.codec import EventCodec
from watchkeeper.store.engine import (
    JSON_OPTIONS,
    SQLITE_CHECKPOINT_PAGES,
    WRITE_OPTION,
    Backend,
    SqliteSynchronous,
    is_sqlite_memory,
    make_engine,
    normalise_url,
    redact_url,
    translate_error,
)
from watchkeeper.store.records import EventId
from watchkeeper.store.writers import EventWriter, PostgresEventWriter, SqliteEventWriter

__all__ = ["MIGRATIONS_DIR", "StoreBase", "engine_backend", "migrate_connection", "upgrade_engine"]

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
# Any constant works; it only has to be the same in every process that migrates the database.
_MIGRATION_LOCK_KEY: Final = 0x5741_4B45
_MIGRATION_ATTEMPTS: Final = 6
# Alembic keeps the running migration in a module-level proxy (``alembic.context``), so two
# migrations in one process must not overlap, even on different databases.
_ALEMBIC_LOCK: Final = threading.Lock()
# Bound parameters per IN (...) list: far below SQLite's 32766 and PostgreSQL's 65535 limits.
_IN_CHUNK: Final = 500


def chunks(items: Sequence[str], size: int = _IN_CHUNK) -> Iterator[Sequence[str]]:
    """``items`` in slices small enough for one ``IN (...)`` list."""
    for offset in range(0, len(items), size):
        yield items[offset : offset + size]


def first_occurrences(ids: Iterable[EventId]) -> list[EventId]:
    """``ids`` without repeats, in first-seen order."""
    return list(dict.fromkeys(ids))


def json_object(value: Mapping[str, Any], *, key: str) -> dict[str, Any]:
    """A copy of ``value`` after checking that it can be stored as JSON."""
    try:
        orjson.dumps(value, option=JSON_OPTIONS)
    except orjson.JSONEncodeError as exc:
        raise ConfigError(f"{key} must be JSON-serialisable: {exc}", key=key) from None
    return dict(value)


def _sqlite_locked(exc: StoreError) -> bool:
    """Whether ``exc`` wraps SQLite's SQLITE_BUSY / SQLITE_LOCKED (any extended code)."""
    cause = exc.__cause__
    original = getattr(cause, "orig", cause)
    code = getattr(original, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def migrate_connection(connection: Connection) -> None:
    """Run the Alembic migrations to head on ``connection``, inside its transaction.

    Every component that migrates a watchkeeper database goes through here, so they share the
    locks: a PostgreSQL advisory lock serialises concurrent first starts across processes, and
    a process-wide lock guards Alembic's global context across threads. Raises Alembic's
    ``CommandError`` (e.g. a database created by a newer watchkeeper) for the caller to word.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection.dialect.name == "postgresql":
        # Released when the transaction ends.
        connection.execute(
            sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
        )
    config.attributes["connection"] = connection
    with _ALEMBIC_LOCK:
        command.upgrade(config, "head")


@functools.cache
def _head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def engine_backend(engine: Engine) -> Backend:
    """The backend of ``engine``; a ``ConfigError`` for a database the store does not support."""
    name = engine.dialect.name
    if name == "sqlite":
        return "sqlite"
    if name == "postgresql":
        return "postgresql"
    raise ConfigError(f"watchkeeper stores data in SQLite or PostgreSQL, not {name!r}", key="db")


def upgrade_engine(engine: Engine) -> None:
    """Migrate the database of ``engine`` to the newest revision, as :meth:`StoreBase.upgrade`.

    For components handed an engine rather than a URL (the alerting engine and its stores):
    the same scripts and locks (:func:`migrate_connection`), on a connection of ``engine`` (so
    an in-memory SQLite engine is migrated in place), and the same error translation. A
    database already at the newest revision costs one query.
    """
    backend = engine_backend(engine)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
        if current == _head_revision():
            return
        with engine.connect() as connection:
            connection.execution_options(**{WRITE_OPTION: True})
            with connection.begin():
                migrate_connection(connection)
    except sa_exc.SQLAlchemyError as exc:
        raise translate_error(
            exc, backend=backend, operation="migrate schema", url=engine.url
        ) from exc
    except CommandError as exc:
        raise StoreError(
            f"migrating the {backend} store at {redact_url(engine.url)} failed: {exc}; the "
            "database may have been created by a newer watchkeeper",
            backend=backend,
        ) from exc


class StoreBase:
    """The engine of one database, its event writer, and one short transaction per call."""

    def __init__(self, url: str, *, sqlite_synchronous: SqliteSynchronous = "FULL") -> None:
        if sqlite_synchronous not in ("FULL", "NORMAL"):
            raise ConfigError(
                f"sqlite_synchronous must be 'FULL' or 'NORMAL', got {sqlite_synchronous!r}",
                key="sqlite_synchronous",
            )
        self._url = normalise_url(url)
        name = self._url.get_backend_name()
        self.backend: Final[Backend] = "sqlite" if name == "sqlite" else "postgresql"
        self._engine = make_engine(self._url, sqlite_synchronous=sqlite_synchronous)
        memory = is_sqlite_memory(self._url)
        # An in-memory database is one shared connection: every use is serialised. A SQLite file
        # allows one writer at a time anyway; queueing writers on a lock here wakes them faster
        # than SQLite's busy handler, which still guards against other processes.
        self._all_lock: threading.RLock | None = threading.RLock() if memory else None
        self._write_lock: threading.Lock | None = (
            threading.Lock() if self.backend == "sqlite" and not memory else None
        )
        self._closed = False
        self._checkpointer: Checkpointer | None = None
        self._event_writer: EventWriter = (
            SqliteEventWriter(engine=self._engine, connect=self._connection)
            if self.backend == "sqlite"
            else PostgresEventWriter(connect=self._connection)
        )

    @classmethod
    def open(cls, url: str, *, sqlite_synchronous: SqliteSynchronous = "FULL") -> Self:
        """Connect to ``url`` and migrate the schema to the newest revision."""
        store = cls(url, sqlite_synchronous=sqlite_synchronous)
        try:
            store.upgrade()
        except BaseException:
            store.close()
            raise
        if store.backend == "sqlite" and not is_sqlite_memory(store._url):
            store._checkpointer = Checkpointer(
                str(store._url.database), restart_pages=SQLITE_CHECKPOINT_PAGES
            ).start()
        return store

    @property
    def url(self) -> str:
        """The store URL with any password hidden."""
        return redact_url(self._url)

    @property
    def event_codec(self) -> EventCodec:
        """How event batches are encoded for this store (picklable: workers encode with it)."""
        return self._event_writer.codec

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for components that keep their own tables in the same DB."""
        return self._engine

    def close(self) -> None:
        """Close every pooled connection; an in-memory database is gone afterwards."""
        self._closed = True
        if self._checkpointer is not None:
            self._checkpointer.close()
        self._engine.dispose()

    @contextmanager
    def _connection(self, operation: str, *, write: bool) -> Iterator[Connection]:
        if self._closed:
            raise StoreError(
                f"{operation}: the store at {self.url} is closed; open a new Store",
                backend=self.backend,
            )
        lock = self._all_lock or (self._write_lock if write else None)
        with lock or nullcontext():
            try:
                with self._engine.connect() as connection:
                    if write:
                        connection.execution_options(**{WRITE_OPTION: True})
                    with connection.begin():
                        yield connection
            except sa_exc.SQLAlchemyError as exc:
                raise translate_error(
                    exc, backend=self.backend, operation=operation, url=self._url
                ) from exc

    def _insert(self, table: sa.Table) -> sqlite_dialect.Insert | pg_dialect.Insert:
        if self.backend == "sqlite":
            return sqlite_dialect.insert(table)
        return pg_dialect.insert(table)

    def upgrade(self) -> None:
        """Migrate the schema to the newest revision; does nothing when it is already there."""
        for attempt in range(_MIGRATION_ATTEMPTS):
            try:
                self._upgrade_once()
                return
            except StoreError as exc:
                # Several processes or threads opening a brand-new SQLite file at once can get
                # SQLITE_BUSY straight away while one of them switches it to WAL (that step
                # does not always wait on the busy timeout). Migrating is idempotent, so a
                # short back-off and a new attempt is the whole remedy.
                if not _sqlite_locked(exc) or attempt == _MIGRATION_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * 2**attempt)

    def _upgrade_once(self) -> None:
        with self._connection("migrate schema", write=True) as connection:
            try:
                migrate_connection(connection)
            except CommandError as exc:
                raise StoreError(
                    f"migrating the {self.backend} store at {self.url} failed: {exc}; the "
                    "database may have been created by a newer watchkeeper",
                    backend=self.backend,
                ) from exc

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at, or None before the first migration."""
        with self._connection("read schema revision", write=False) as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def ping(self) -> None:
        """Run a trivial query; raises :class:`StoreError` when the database is unreachable."""
        with self._connection("ping", write=False) as connection:
            connection.execute(sa.text("SELECT 1"))
