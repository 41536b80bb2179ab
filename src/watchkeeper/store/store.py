"""The durable metadata and event store: one synchronous, thread-safe API over SQLite or PostgreSQL.

The service calls it from a thread pool; every method runs in its own short transaction (on
SQLite, event batches of concurrent callers share one: group commit), and a method that writes
has committed when it returns.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from itertools import chain
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import msgspec
import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.util.exc import CommandError
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine, Row

from watchkeeper.errors import (
    ConfigError,
    ConflictError,
    IngestError,
    NotFoundError,
    StoreError,
)
from watchkeeper.store import tables as t
from watchkeeper.store.checkpoint import Checkpointer
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
from watchkeeper.store.records import (
    ENCODED_EVENT_VALUES,
    Checkpoint,
    CheckpointWindow,
    Conflict,
    EncodedEvents,
    EventId,
    EventRecord,
    FeedbackInsertResult,
    FeedbackRecord,
    InsertResult,
    LabelInsertResult,
    LabelRecord,
    ModelId,
    ModelRecord,
    NewFeedback,
    NewLabel,
    ReferenceProfileRecord,
    RetentionResult,
    StorableEvent,
    TokenRecord,
    VersionRecord,
    WindowRecord,
)

__all__ = ["MIGRATIONS_DIR", "Store", "encode_columns", "encode_events", "migrate_connection"]

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
# Any constant works; it only has to be the same in every process that migrates the database.
_MIGRATION_LOCK_KEY: Final = 0x5741_4B45
# Bound parameters per IN (...) list: far below SQLite's 32766 and PostgreSQL's 65535 limits.
_IN_CHUNK: Final = 500
# Alembic keeps the running migration in a module-level proxy (``alembic.context``), so two
# migrations in one process must not overlap, even on different databases.
_ALEMBIC_LOCK: Final = threading.Lock()
_EVENT_BATCH: Final = 5_000

# Every column but ``seq``, which is one value per call (the caller's ingest call number).
_EVENT_COLUMNS: Final = tuple(column.name for column in t.events.columns if column.name != "seq")
_VERSION_COLUMNS: Final = ("model_id", "version", "created_at", "metadata")
_EMPTY_METADATA: Final = "{}"
# Events go to SQLite as multi-row ``INSERT ... VALUES`` statements of fixed sizes (so a few
# prepared statements serve every batch), each run in one SQLite step with the GIL released:
# ``executemany`` took the GIL back after every row and, with another request running, waited
# for it each time (the GIL convoy), and one JSON parameter unpacked by ``json_each`` cost
# SQLite twice the CPU (it re-parses each row's text for every field). Parameter 1 is the
# model, 2 the ingest time, 3 the call's sequence number, then ``_EVENT_VALUES`` per event
# (``EncodedEvents.values``).
# Binding the ~10,000 parameters of a batch holds the GIL, and Python's sqlite3 binds only
# exact str, int, float and bytearray directly: bytes, None and bool go through its adapter
# registry first, five times slower per value. So the encoded JSON fields are bytearrays, a
# null JSON field is the empty one (``NULLIF`` turns it back into NULL; JSON text is never
# empty) and the error flag is 0 or 1.
_EVENT_VALUES: Final = ENCODED_EVENT_VALUES
_SQLITE_CHUNKS: Final = (512, 256, 128, 64, 32, 16, 8, 4, 2, 1)
# Positions in an event's values: its JSON fields, and which of them may be null.
_JSON_VALUES: Final = (4, 5, 6)
_NULLABLE_JSON_VALUES: Final = (5, 6)
_ERROR_VALUE: Final = 8
# Every null JSON field of every batch is this one object: never mutate encoded values.
_NO_JSON: Final = bytearray()
if (
    len(_EVENT_COLUMNS) != _EVENT_VALUES + 2
    or _EVENT_COLUMNS[0] != "model_id"
    or _EVENT_COLUMNS[-1] != "ingested_at"
    or [_EVENT_COLUMNS[1 + value] for value in (*_JSON_VALUES, _ERROR_VALUE)]
    != ["features", "prediction", "proba", "error"]
):
    raise AssertionError(f"events columns changed; update EncodedEvents: {_EVENT_COLUMNS}")


@functools.cache
def _sqlite_event_sql(rows: int) -> str:
    cells = []
    for row in range(rows):
        first = 4 + row * _EVENT_VALUES
        values = ", ".join(
            f"NULLIF(?{first + offset}, X'')"
            if offset in _NULLABLE_JSON_VALUES
            else f"?{first + offset}"
            for offset in range(_EVENT_VALUES)
        )
        cells.append(f"(?1, {values}, ?2, ?3)")
    return (
        f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}, seq) VALUES {', '.join(cells)} "
        "ON CONFLICT DO NOTHING"
    )


_PG_STAGING: Final = "watchkeeper_incoming_events"
_PG_STAGING_DDL: Final = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_PG_STAGING} "
    "(LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
# Rows are inserted in key order, as in every batch insert below: two transactions inserting
# overlapping ids in different orders would otherwise wait on each other's keys and deadlock.
_PG_MERGE: Final = (
    f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}, seq) "
    f"SELECT {', '.join(_EVENT_COLUMNS)}, %s FROM {_PG_STAGING} ORDER BY event_id "
    "ON CONFLICT (model_id, event_id) DO NOTHING RETURNING event_id"
)


# The replay after a checkpoint reads events as plain text SQL: SQLAlchemy's result processing
# (JSON columns decoded one value at a time) cost as much as the rest of the replay.
_EVENT_SELECT: Final = f"SELECT {', '.join(column.name for column in t.events.columns)} FROM events"
_EVENTS_AFTER: Final = sa.text(f"{_EVENT_SELECT} WHERE seq > :after ORDER BY seq LIMIT :limit")
_EVENTS_OF_CALL: Final = sa.text(f"{_EVENT_SELECT} WHERE seq = :seq")


def _json_value(stored: Any) -> Any:
    """A JSON column's value read as plain SQL: text or bytes on SQLite, already decoded (or a
    number written by another tool) otherwise."""
    if isinstance(stored, bytes | str):
        return orjson.loads(stored)
    return stored


def _raw_event(row: Sequence[Any]) -> EventRecord:
    (model_id, event_id, version, ts, segment, features, prediction, proba, latency_ms, error,
     ingested_at, seq) = row  # fmt: skip
    return EventRecord(
        model_id, event_id, version, ts, segment, _json_value(features), _json_value(prediction),
        _json_value(proba), latency_ms, bool(error), ingested_at, seq,
    )  # fmt: skip


def _chunks(items: Sequence[str], size: int = _IN_CHUNK) -> Iterator[Sequence[str]]:
    for offset in range(0, len(items), size):
        yield items[offset : offset + size]


def _first_occurrences(ids: Iterable[EventId]) -> list[EventId]:
    return list(dict.fromkeys(ids))


def _split_in_order(
    ids: Sequence[EventId], inserted: set[EventId]
) -> tuple[tuple[EventId, ...], tuple[EventId, ...]]:
    """Split ``ids`` (input order) into the first occurrence of each inserted id and the rest."""
    if len(inserted) == len(ids):
        return tuple(ids), ()
    accepted: list[EventId] = []
    duplicates: list[EventId] = []
    claimed: set[EventId] = set()
    for event_id in ids:
        if event_id in inserted and event_id not in claimed:
            claimed.add(event_id)
            accepted.append(event_id)
        else:
            duplicates.append(event_id)
    return tuple(accepted), tuple(duplicates)


def _split_repeats(
    keys: Sequence[str], values: Sequence[Any], inserted: set[str], stored: Mapping[str, Any]
) -> tuple[list[str], list[str], list[int]]:
    """Split items (``keys`` in input order) into the first copy of each key stored now, the
    repeats of the stored value (retries: duplicates) and the positions of repeats with another
    value than the stored one (conflicts: the first value of a key is kept)."""
    accepted: list[str] = []
    duplicates: list[str] = []
    conflicts: list[int] = []
    claimed: set[str] = set()
    for position, (key, value) in enumerate(zip(keys, values, strict=True)):
        if key in inserted and key not in claimed:
            claimed.add(key)
            accepted.append(key)
        elif key in stored and stored[key] != value:
            conflicts.append(position)
        else:
            duplicates.append(key)
    return accepted, duplicates, conflicts


@dataclass(eq=False)
class _QueuedInsert:
    """One caller's event batch waiting for the next group commit (SQLite)."""

    model_id: ModelId
    values: list[Any]
    unique_ids: list[EventId]
    versions: frozenset[str]
    now: float
    seq: int
    taken: bool = False
    done: bool = False
    inserted: set[EventId] = dataclass_field(default_factory=set)
    error: BaseException | None = None

    @property
    def count(self) -> int:
        return len(self.values) // _EVENT_VALUES


def encode_events(events: Sequence[StorableEvent]) -> EncodedEvents:
    """Encode ``events`` for :meth:`Store.insert_encoded` (see :func:`encode_columns`)."""
    return encode_columns(
        ids=[event.event_id for event in events],
        versions=[event.version for event in events],
        ts=[event.ts for event in events],
        segments=[event.segment for event in events],
        features=[event.features for event in events],
        predictions=[event.prediction for event in events],
        probas=[event.proba for event in events],
        latency_ms=[event.latency_ms for event in events],
        errors=[event.error for event in events],
    )


def encode_columns(
    *,
    ids: Sequence[EventId],
    versions: Sequence[str],
    ts: Sequence[float],
    segments: Sequence[str],
    features: Sequence[Mapping[str, Any]],
    predictions: Sequence[Any],
    probas: Sequence[Mapping[str, float] | None],
    latency_ms: Sequence[float | None],
    errors: Sequence[bool],
) -> EncodedEvents:
    """Encode a batch given as columns (one value per event in each) for
    :meth:`Store.insert_encoded`: ``_EVENT_VALUES`` values per event in the ``events`` table's
    column order (after ``model_id``, before ``ingested_at``), JSON fields as encoded text in a
    bytearray (the empty one for null), the error flag as 0 or 1. JSON text is stored as a
    BLOB, as in every JSON column: a ``JSON`` column has NUMERIC affinity and would turn text
    such as ``1.0`` into a number.

    Raises :class:`IngestError` naming the first event and field that is not JSON-serialisable.
    """
    try:
        feature_texts = _json_texts(features, nullable=False)
        prediction_texts = _json_texts(predictions)
        proba_texts = _json_texts(probas)
    except orjson.JSONEncodeError:
        raise _json_error(ids, features, predictions, probas) from None
    flags = [1 if error else 0 for error in errors]
    rows = zip(
        ids, versions, ts, segments, feature_texts, prediction_texts, proba_texts, latency_ms,
        flags, strict=True,
    )  # fmt: skip
    return EncodedEvents(values=list(chain.from_iterable(rows)))


_ENCODER: Final = msgspec.json.Encoder()


def _json_texts(values: Sequence[Any], *, nullable: bool = True) -> list[bytearray]:
    """Each value as JSON text in a bytearray; with ``nullable`` None is the empty bytearray
    (SQL NULL once stored).

    msgspec encodes one small object several times faster than orjson, whose per-call cost
    dominates here; the values it does not take (NumPy scalars, non-string keys) go through
    orjson with the store's options, which also names what cannot be stored at all.
    """
    if not nullable:
        encode_into = _ENCODER.encode_into
        texts: list[bytearray] = []
        try:
            for value in values:
                text = bytearray()
                encode_into(value, text)
                texts.append(text)
        except (TypeError, ValueError, msgspec.EncodeError):
            return [bytearray(orjson.dumps(value, option=JSON_OPTIONS)) for value in values]
        return texts
    present = _json_texts([value for value in values if value is not None], nullable=False)
    if len(present) == len(values):
        return present
    found = iter(present)
    return [_NO_JSON if value is None else next(found) for value in values]


def _json_error(
    ids: Sequence[EventId],
    features: Sequence[Any],
    predictions: Sequence[Any],
    probas: Sequence[Any],
) -> IngestError:
    """Name the first event field that cannot be serialised as JSON."""
    columns = {"features": features, "prediction": predictions, "proba": probas}
    for index, event_id in enumerate(ids):
        for field, column in columns.items():
            try:
                orjson.dumps(column[index], option=JSON_OPTIONS)
            except orjson.JSONEncodeError as exc:
                return IngestError(
                    f"event {index} ({event_id!r}): {field} is not JSON-serialisable "
                    f"({exc}); send numbers, strings, booleans, null, lists or objects",
                    index=index,
                    field=field,
                )
    return IngestError("an event is not JSON-serialisable")


def _json_object(value: Mapping[str, Any], *, key: str) -> dict[str, Any]:
    """A copy of ``value`` after checking that it can be stored as JSON."""
    try:
        orjson.dumps(value, option=JSON_OPTIONS)
    except orjson.JSONEncodeError as exc:
        raise ConfigError(f"{key} must be JSON-serialisable: {exc}", key=key) from None
    return dict(value)


def _token(row: Row[Any]) -> TokenRecord:
    return TokenRecord(
        id=row.id,
        name=row.name,
        token_hash=row.token_hash,
        scopes=tuple(row.scopes),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


_MIGRATION_ATTEMPTS: Final = 6


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


class Store:
    """Models, versions, profiles, events, labels, feedback, window profiles and API tokens.

    ``url`` is a SQLAlchemy URL or a plain path (a SQLite file): ``sqlite:///watchkeeper.db``,
    ``sqlite:///:memory:``, ``postgresql://user@host:5432/db`` (psycopg 3 is used for plain
    ``postgresql://`` and ``postgres://`` URLs). ``Store(url)`` connects lazily and does not
    migrate; :meth:`open` also brings the schema to the newest revision.

    >>> from watchkeeper.store import NewEvent
    >>> with Store.open("sqlite:///:memory:") as store:
    ...     model = store.create_model("churn", {"name": "churn", "task": "classification"})
    ...     event = NewEvent("e1", "v1", 1_700_000_000.0, {"age": 41})
    ...     store.insert_events(model.id, [event, event]).duplicate_ids
    ('e1',)
    """

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
        # Event batches of concurrent callers are committed together (see ``_group_commit``).
        self._insert_queue: deque[_QueuedInsert] = deque()
        self._insert_turn = threading.Condition()
        self._sqlite_version_sql = ""
        if self.backend == "sqlite":
            # The versions INSERT is compiled once: compiling it per batch cost about as much as
            # encoding the batch's JSON.
            versions = (
                sqlite_dialect.insert(t.model_versions)
                .on_conflict_do_nothing()
                .compile(dialect=self._engine.dialect, column_keys=list(_VERSION_COLUMNS))
            )
            if tuple(versions.positiontup or ()) != _VERSION_COLUMNS:
                raise StoreError("internal: unexpected version insert layout", backend="sqlite")
            self._sqlite_version_sql = str(versions)

    @classmethod
    def open(cls, url: str, *, sqlite_synchronous: SqliteSynchronous = "FULL") -> Store:
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

    # ------------------------------------------------------------------ plumbing

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

    # ------------------------------------------------------------------ models

    def create_model(self, name: str, config: Mapping[str, Any]) -> ModelRecord:
        """Register a model; :class:`ConflictError` when the name is taken."""
        config = _json_object(config, key="config")
        now = time.time()
        try:
            with self._connection(f"create model {name!r}", write=True) as connection:
                model_id = connection.execute(
                    t.models.insert()
                    .values(name=name, config=dict(config), created_at=now, updated_at=now)
                    .returning(t.models.c.id)
                ).scalar_one()
        except ConflictError:
            raise ConflictError(
                f"a model named {name!r} already exists; update its config or pick another name"
            ) from None
        return ModelRecord(
            id=model_id, name=name, config=dict(config), created_at=now, updated_at=now
        )

    def get_model(self, name: str) -> ModelRecord:
        """The model called ``name``; :class:`NotFoundError` when there is none."""
        with self._connection(f"read model {name!r}", write=False) as connection:
            row = connection.execute(sa.select(t.models).where(t.models.c.name == name)).first()
        if row is None:
            raise NotFoundError(
                f"no model named {name!r}; register it first", kind="model", name=name
            )
        return ModelRecord(*row)

    def model_by_id(self, model_id: ModelId) -> ModelRecord:
        """The model with id ``model_id``; :class:`NotFoundError` when there is none."""
        with self._connection(f"read model {model_id}", write=False) as connection:
            row = connection.execute(sa.select(t.models).where(t.models.c.id == model_id)).first()
        if row is None:
            raise NotFoundError(f"no model with id {model_id}", kind="model", name=str(model_id))
        return ModelRecord(*row)

    def list_models(self) -> list[ModelRecord]:
        """Every registered model, by name."""
        with self._connection("list models", write=False) as connection:
            rows = connection.execute(sa.select(t.models).order_by(t.models.c.name)).all()
        return [ModelRecord(*row) for row in rows]

    def update_model_config(self, name: str, config: Mapping[str, Any]) -> ModelRecord:
        """Replace the config of model ``name``."""
        config = _json_object(config, key="config")
        now = time.time()
        with self._connection(f"update model {name!r}", write=True) as connection:
            row = connection.execute(
                t.models.update()
                .where(t.models.c.name == name)
                .values(config=dict(config), updated_at=now)
                .returning(*t.models.columns)
            ).first()
        if row is None:
            raise NotFoundError(
                f"no model named {name!r}; register it first", kind="model", name=name
            )
        return ModelRecord(*row)

    def delete_model(self, name: str) -> None:
        """Delete model ``name`` with all its versions, profiles, events, labels and feedback."""
        with self._connection(f"delete model {name!r}", write=True) as connection:
            deleted = connection.execute(t.models.delete().where(t.models.c.name == name)).rowcount
        if not deleted:
            raise NotFoundError(f"no model named {name!r}", kind="model", name=name)

    # ------------------------------------------------------------------ versions and reference

    def upsert_version(
        self, model_id: ModelId, version: str, *, metadata: Mapping[str, Any] | None = None
    ) -> VersionRecord:
        """Record ``version``; replaces its metadata when given, keeps ``created_at``."""
        if metadata is not None:
            metadata = _json_object(metadata, key="metadata")
        insert = self._insert(t.model_versions).values(
            model_id=model_id,
            version=version,
            created_at=time.time(),
            metadata=dict(metadata or {}),
        )
        if metadata is None:
            statement = insert.on_conflict_do_nothing()
        else:
            statement = insert.on_conflict_do_update(
                index_elements=[t.model_versions.c.model_id, t.model_versions.c.version],
                set_={"metadata": insert.excluded["metadata"]},
            )
        key = (t.model_versions.c.model_id == model_id) & (t.model_versions.c.version == version)
        with self._connection(f"record version {version!r}", write=True) as connection:
            connection.execute(statement)
            row = connection.execute(sa.select(t.model_versions).where(key)).one()
        return VersionRecord(*row)

    def list_versions(self, model_id: ModelId) -> list[VersionRecord]:
        """The versions of a model, oldest first."""
        with self._connection("list versions", write=False) as connection:
            rows = connection.execute(
                sa.select(t.model_versions)
                .where(t.model_versions.c.model_id == model_id)
                .order_by(t.model_versions.c.created_at, t.model_versions.c.version)
            ).all()
        return [VersionRecord(*row) for row in rows]

    def put_reference_profile(
        self, model_id: ModelId, profile: bytes, *, rows: int
    ) -> ReferenceProfileRecord:
        """Store (or replace) the serialised reference profile of a model."""
        record = ReferenceProfileRecord(
            model_id=model_id, profile=bytes(profile), rows=rows, created_at=time.time()
        )
        insert = self._insert(t.reference_profiles).values(
            model_id=model_id, profile=record.profile, rows=rows, created_at=record.created_at
        )
        statement = insert.on_conflict_do_update(
            index_elements=[t.reference_profiles.c.model_id],
            set_={
                "profile": insert.excluded.profile,
                "rows": insert.excluded.rows,
                "created_at": insert.excluded.created_at,
            },
        )
        with self._connection("store reference profile", write=True) as connection:
            connection.execute(statement)
        return record

    def get_reference_profile(self, model_id: ModelId) -> ReferenceProfileRecord:
        """The reference profile of a model; :class:`NotFoundError` when none was stored."""
        with self._connection("read reference profile", write=False) as connection:
            row = connection.execute(
                sa.select(t.reference_profiles).where(t.reference_profiles.c.model_id == model_id)
            ).first()
        if row is None:
            raise NotFoundError(
                f"model {model_id} has no reference profile; upload its training data first",
                kind="reference_profile",
                name=str(model_id),
            )
        return ReferenceProfileRecord(*row)

    # ------------------------------------------------------------------ events

    def insert_events(self, model_id: ModelId, events: Sequence[StorableEvent]) -> InsertResult:
        """Store a batch in one transaction; ids already stored (or repeated) are duplicates.

        Idempotent on ``(model_id, event_id)``: the first copy of an id wins. The versions seen
        are recorded too. Everything is committed when this returns.
        """
        return self.insert_encoded(model_id, encode_events(events))

    def insert_encoded(
        self, model_id: ModelId, encoded: EncodedEvents, *, seq: int = 0
    ) -> InsertResult:
        """:meth:`insert_events` for a batch already encoded by :func:`encode_events`.

        ``seq`` is the caller's number for this call, stored with every event (see
        :meth:`put_checkpoint`).
        """
        ids = encoded.ids
        if not ids:
            return InsertResult(inserted_ids=(), duplicate_ids=())
        now = time.time()
        if self.backend == "sqlite":
            inserted = self._group_commit(
                _QueuedInsert(
                    model_id,
                    encoded.values,
                    _first_occurrences(ids),
                    encoded.versions,
                    now,
                    seq,
                )
            )
        else:
            with self._connection(f"insert {len(ids)} events", write=True) as connection:
                inserted = self._insert_events_postgresql(connection, model_id, encoded, now, seq)
                connection.execute(
                    self._insert(t.model_versions)
                    .on_conflict_do_nothing()
                    .values(
                        [
                            {"model_id": model_id, "version": v, "created_at": now, "metadata": {}}
                            for v in sorted(encoded.versions)
                        ]
                    )
                )
        accepted, duplicates = _split_in_order(ids, inserted)
        return InsertResult(inserted_ids=accepted, duplicate_ids=duplicates)

    def _group_commit(self, request: _QueuedInsert) -> set[EventId]:
        """Insert ``request`` in one transaction with every batch queued behind the one writing.

        Group commit (as in LevelDB's writer queue): the caller at the head of the queue writes
        the batches of all queued callers in one transaction, so one fsync covers them, and each
        caller returns once the transaction holding its batch has committed. When a shared
        transaction fails, each batch is retried alone, so one bad batch fails only its caller.
        """
        turn = self._insert_turn
        with turn:
            self._insert_queue.append(request)
            try:
                while not request.done and self._insert_queue[0] is not request:
                    turn.wait()
            except BaseException:
                # Interrupted (Ctrl-C) before a writer took the batch: leave the queue, or the
                # callers behind would wait for a head that never writes.
                if not request.taken:
                    self._insert_queue.remove(request)
                    turn.notify_all()
                raise
            group = [] if request.done else list(self._insert_queue)
            for queued in group:
                queued.taken = True
        if group:
            try:
                self._write_group(group)
            finally:
                with turn:
                    for queued in group:
                        self._insert_queue.popleft()
                        if not queued.done:
                            queued.error = StoreError(
                                f"insert {queued.count} events: interrupted while another "
                                "caller was writing the batch; send it again",
                                backend=self.backend,
                            )
                            queued.done = True
                    turn.notify_all()
        if request.error is not None:
            raise request.error
        return request.inserted

    def _write_group(self, group: list[_QueuedInsert]) -> None:
        count = sum(queued.count for queued in group)
        try:
            self._write_batches(f"insert {count} events", group)
        except Exception as error:
            if len(group) == 1:
                group[0].error = error
            else:
                for queued in group:
                    try:
                        self._write_batches(f"insert {queued.count} events", [queued])
                    except Exception as alone:
                        queued.error = alone
        for queued in group:
            queued.done = True

    def _write_batches(self, operation: str, group: list[_QueuedInsert]) -> None:
        inserted: list[set[EventId]] = []
        with self._connection(operation, write=True) as connection:
            for queued in group:
                inserted.append(self._insert_events_sqlite(connection, queued))
            connection.exec_driver_sql(
                self._sqlite_version_sql,
                [
                    (queued.model_id, version, queued.now, _EMPTY_METADATA)
                    for queued in group
                    for version in sorted(queued.versions)
                ],
            )
        for queued, ids in zip(group, inserted, strict=True):
            queued.inserted = ids

    def _insert_events_sqlite(self, connection: Connection, queued: _QueuedInsert) -> set[EventId]:
        # ON CONFLICT DO NOTHING skips stored ids; when any was skipped, the new rows are found
        # by rowid: SQLite numbers a new row above the largest rowid in the table, and this
        # transaction holds the write lock (BEGIN IMMEDIATE), so the rows above the maximum
        # seen before the INSERT are exactly this batch's.
        model_id, values, unique_ids = queued.model_id, queued.values, queued.unique_ids
        before = connection.exec_driver_sql("SELECT max(rowid) FROM events").scalar() or 0
        inserted = 0
        count = len(values) // _EVENT_VALUES
        position = 0
        while position < count:
            rows = next(size for size in _SQLITE_CHUNKS if size <= count - position)
            chunk = values[position * _EVENT_VALUES : (position + rows) * _EVENT_VALUES]
            result = connection.exec_driver_sql(
                _sqlite_event_sql(rows), (model_id, queued.now, queued.seq, *chunk)
            )
            inserted += result.rowcount
            position += rows
        if inserted == len(unique_ids):
            return set(unique_ids)
        return set(
            connection.exec_driver_sql(
                "SELECT event_id FROM events WHERE rowid > ? AND model_id = ?", (before, model_id)
            ).scalars()
        )

    def _insert_events_postgresql(
        self,
        connection: Connection,
        model_id: ModelId,
        encoded: EncodedEvents,
        now: float,
        seq: int,
    ) -> set[EventId]:
        # COPY into a per-session staging table, then one INSERT ... SELECT: a multi-row VALUES
        # statement is re-parsed by the driver on every batch and is several times slower.
        import psycopg

        connection.exec_driver_sql(_PG_STAGING_DDL)
        first: dict[EventId, tuple[Any, ...]] = {}
        values = encoded.values
        for start in range(0, len(values), _EVENT_VALUES):
            cells = values[start : start + _EVENT_VALUES]
            # JSON fields as text (COPY would send bytes as bytea), empty ones as NULL.
            for field in _JSON_VALUES:
                cells[field] = cells[field].decode() or None
            cells[_ERROR_VALUE] = bool(cells[_ERROR_VALUE])
            first.setdefault(cells[0], tuple(cells))
        driver_connection = connection.connection.driver_connection
        if not isinstance(driver_connection, psycopg.Connection):
            raise StoreError(
                "PostgreSQL event ingest needs the psycopg 3 driver; use a postgresql:// or "
                "postgresql+psycopg:// URL",
                backend=self.backend,
            )
        try:
            with (
                driver_connection.cursor() as cursor,
                cursor.copy(f"COPY {_PG_STAGING} ({', '.join(_EVENT_COLUMNS)}) FROM STDIN") as copy,
            ):
                for row in first.values():
                    copy.write_row((model_id, *row, now))
        except psycopg.Error as exc:
            raise sa_exc.DBAPIError(f"COPY {_PG_STAGING}", None, exc) from exc
        return set(connection.exec_driver_sql(_PG_MERGE, (seq,)).scalars())

    def _existing_event_ids(
        self, connection: Connection, model_id: ModelId, ids: Sequence[EventId]
    ) -> set[EventId]:
        found: set[EventId] = set()
        for chunk in _chunks(ids):
            found.update(
                connection.execute(
                    sa.select(t.events.c.event_id).where(
                        t.events.c.model_id == model_id, t.events.c.event_id.in_(chunk)
                    )
                ).scalars()
            )
        return found

    def _event_filter(
        self,
        model_id: ModelId,
        start: float | None,
        end: float | None,
        version: str | None,
        segment: str | None,
    ) -> list[sa.ColumnElement[bool]]:
        conditions: list[sa.ColumnElement[bool]] = [t.events.c.model_id == model_id]
        if start is not None:
            conditions.append(t.events.c.ts >= start)
        if end is not None:
            conditions.append(t.events.c.ts < end)
        if version is not None:
            conditions.append(t.events.c.version == version)
        if segment is not None:
            conditions.append(t.events.c.segment == segment)
        return conditions

    def iter_event_batches(
        self,
        model_id: ModelId,
        start: float,
        end: float,
        *,
        version: str | None = None,
        segment: str | None = None,
        batch_size: int = _EVENT_BATCH,
    ) -> Iterator[list[EventRecord]]:
        """Events with ``start <= ts < end`` in ``(ts, event_id)`` order, ``batch_size`` at a time.

        Each batch is its own short query (keyset pagination), so a slow consumer never holds a
        transaction open and writers are never blocked by a reader.
        """
        if batch_size < 1:
            raise StoreError(f"batch_size must be >= 1, got {batch_size}", backend=self.backend)
        base = self._event_filter(model_id, start, end, version, segment)
        ts, event_id = t.events.c.ts, t.events.c.event_id
        after: tuple[float, str] | None = None
        while True:
            conditions = list(base)
            if after is not None:
                conditions.append((ts > after[0]) | ((ts == after[0]) & (event_id > after[1])))
            statement = (
                sa.select(t.events).where(*conditions).order_by(ts, event_id).limit(batch_size)
            )
            with self._connection("read events", write=False) as connection:
                rows = connection.execute(statement).all()
            if rows:
                yield [EventRecord(*row) for row in rows]
            if len(rows) < batch_size:
                return
            after = (rows[-1].ts, rows[-1].event_id)

    def events_between(
        self,
        model_id: ModelId,
        start: float,
        end: float,
        *,
        version: str | None = None,
        segment: str | None = None,
    ) -> Iterator[EventRecord]:
        """Events with ``start <= ts < end``, in ``(ts, event_id)`` order, read in chunks."""
        for batch in self.iter_event_batches(
            model_id, start, end, version=version, segment=segment
        ):
            yield from batch

    def events_by_ids(
        self, model_id: ModelId, ids: Sequence[EventId]
    ) -> dict[EventId, EventRecord]:
        """The stored events among ``ids``, keyed by id (unknown ids are left out)."""
        found: dict[EventId, EventRecord] = {}
        unique = _first_occurrences(ids)
        with self._connection("read events by id", write=False) as connection:
            for chunk in _chunks(unique):
                for row in connection.execute(
                    sa.select(t.events).where(
                        t.events.c.model_id == model_id, t.events.c.event_id.in_(chunk)
                    )
                ):
                    found[row.event_id] = EventRecord(*row)
        return found

    def count_events(
        self,
        model_id: ModelId,
        *,
        start: float | None = None,
        end: float | None = None,
        version: str | None = None,
        segment: str | None = None,
    ) -> int:
        """How many events match; ``start``/``end`` bound ``ts`` as ``start <= ts < end``."""
        conditions = self._event_filter(model_id, start, end, version, segment)
        with self._connection("count events", write=False) as connection:
            return int(
                connection.execute(
                    sa.select(sa.func.count()).select_from(t.events).where(*conditions)
                ).scalar_one()
            )

    def delete_events_before(self, model_id: ModelId, cutoff: float) -> RetentionResult:
        """Retention: delete events, labels and feedback of a model with ``ts < cutoff``."""
        with self._connection("apply retention", write=True) as connection:
            counts = [
                connection.execute(
                    table.delete().where(table.c.model_id == model_id, table.c.ts < cutoff)
                ).rowcount
                for table in (t.events, t.labels, t.feedback)
            ]
        return RetentionResult(events=counts[0], labels=counts[1], feedback=counts[2])

    # ------------------------------------------------------------------ labels and feedback

    def insert_labels(
        self, model_id: ModelId, labels: Sequence[NewLabel], *, seq: int = 0
    ) -> LabelInsertResult:
        """Store labels, idempotently: the first label of an id is kept; ``seq`` as for events.

        A repeat of the stored label is a duplicate (a retry); a different label for an id
        already labelled is not stored and comes back in ``conflicts`` with the kept label.
        Labels may arrive before their events; they are kept, and listed in ``unmatched_ids``.
        """
        if not labels:
            return LabelInsertResult(inserted_ids=(), duplicate_ids=(), unmatched_ids=())
        for index, label in enumerate(labels):
            try:
                orjson.dumps(label.label, option=JSON_OPTIONS)
            except orjson.JSONEncodeError as exc:
                raise IngestError(
                    f"label {index} ({label.event_id!r}) is not JSON-serialisable ({exc})",
                    index=index,
                    field="label",
                ) from None
        now = time.time()
        ids = [label.event_id for label in labels]
        first = {label.event_id: label for label in reversed(labels)}
        rows = [
            {
                "model_id": model_id,
                "event_id": label.event_id,
                "label": label.label,
                "ts": label.ts,
                "received_at": now,
                "seq": seq,
            }
            for label in sorted(first.values(), key=lambda label: label.event_id)
        ]
        statement = (
            self._insert(t.labels)
            .on_conflict_do_nothing(index_elements=[t.labels.c.model_id, t.labels.c.event_id])
            .returning(t.labels.c.event_id)
        )
        c = t.labels.c
        with self._connection(f"insert {len(labels)} labels", write=True) as connection:
            inserted = set(connection.execute(statement, rows).scalars())
            matched = self._existing_event_ids(connection, model_id, sorted(inserted))
            stored = {event_id: first[event_id].label for event_id in inserted}
            for chunk in _chunks(sorted(first.keys() - inserted)):
                stored.update(
                    (event_id, label)
                    for event_id, label in connection.execute(
                        sa.select(c.event_id, c.label).where(
                            c.model_id == model_id, c.event_id.in_(chunk)
                        )
                    )
                )
        accepted, duplicates, conflicting = _split_repeats(
            ids, [label.label for label in labels], inserted, stored
        )
        unmatched = tuple(event_id for event_id in accepted if event_id not in matched)
        return LabelInsertResult(
            inserted_ids=tuple(accepted),
            duplicate_ids=tuple(duplicates),
            unmatched_ids=unmatched,
            conflicts=tuple(Conflict(p, ids[p], stored[ids[p]]) for p in conflicting),
        )

    def labels_for(self, model_id: ModelId, ids: Sequence[EventId]) -> dict[EventId, LabelRecord]:
        """The stored labels among ``ids``, keyed by event id."""
        found: dict[EventId, LabelRecord] = {}
        with self._connection("read labels", write=False) as connection:
            for chunk in _chunks(_first_occurrences(ids)):
                for row in connection.execute(
                    sa.select(t.labels).where(
                        t.labels.c.model_id == model_id, t.labels.c.event_id.in_(chunk)
                    )
                ):
                    found[row.event_id] = LabelRecord(*row)
        return found

    def labels_received_between(
        self, model_id: ModelId, start: float, end: float
    ) -> list[LabelRecord]:
        """Labels the store received with ``start <= received_at < end``, oldest first."""
        c = t.labels.c
        with self._connection("read labels", write=False) as connection:
            rows = connection.execute(
                sa.select(t.labels)
                .where(c.model_id == model_id, c.received_at >= start, c.received_at < end)
                .order_by(c.received_at, c.event_id)
            ).all()
        return [LabelRecord(*row) for row in rows]

    def insert_feedback(
        self, model_id: ModelId, feedback: Sequence[NewFeedback], *, seq: int = 0
    ) -> FeedbackInsertResult:
        """Store ratings, idempotently per ``(event_id, user_id)``; result ids are event ids;
        ``seq`` as for events.

        A user's first rating of an event is kept: a repeat of it (same rating and comment) is
        a duplicate, a different one is not stored and comes back in ``conflicts``.
        """
        for index, item in enumerate(feedback):
            if not 1 <= item.rating <= 5:
                raise IngestError(
                    f"feedback rating must be an integer from 1 to 5, got {item.rating!r}",
                    index=index,
                    field="rating",
                )
        if not feedback:
            return FeedbackInsertResult(inserted_ids=(), duplicate_ids=(), stored_positions=())
        keys = [f"{item.event_id}\x00{item.user_id}" for item in feedback]
        first: dict[str, NewFeedback] = {}
        for key, item in zip(keys, feedback, strict=True):
            first.setdefault(key, item)
        rows = [
            {
                "model_id": model_id,
                "event_id": item.event_id,
                "user_id": item.user_id,
                "rating": int(item.rating),
                "comment": item.comment,
                "ts": item.ts,
                "seq": seq,
            }
            for _, item in sorted(first.items())
        ]
        c = t.feedback.c
        statement = (
            self._insert(t.feedback)
            .on_conflict_do_nothing(index_elements=[c.model_id, c.event_id, c.user_id])
            .returning(c.event_id, c.user_id)
        )
        with self._connection(f"insert {len(feedback)} feedback", write=True) as connection:
            inserted = {f"{e}\x00{u}" for e, u in connection.execute(statement, rows)}
            stored = {key: (first[key].rating, first[key].comment) for key in inserted}
            repeated = first.keys() - inserted
            for chunk in _chunks(sorted({first[key].event_id for key in repeated})):
                for event_id, user_id, rating, comment in connection.execute(
                    sa.select(c.event_id, c.user_id, c.rating, c.comment).where(
                        c.model_id == model_id, c.event_id.in_(chunk)
                    )
                ):
                    key = f"{event_id}\x00{user_id}"
                    if key in repeated:
                        stored[key] = (rating, comment)
        accepted, duplicates, conflicting = _split_repeats(
            keys, [(int(item.rating), item.comment) for item in feedback], inserted, stored
        )
        positions: list[int] = []
        for position, key in enumerate(keys):
            if key in inserted:
                inserted.discard(key)  # only the first copy of a key was stored
                positions.append(position)
        return FeedbackInsertResult(
            inserted_ids=tuple(key.partition("\x00")[0] for key in accepted),
            duplicate_ids=tuple(key.partition("\x00")[0] for key in duplicates),
            stored_positions=tuple(positions),
            conflicts=tuple(
                Conflict(p, feedback[p].event_id, stored[keys[p]][0]) for p in conflicting
            ),
        )

    def feedback_between(self, model_id: ModelId, start: float, end: float) -> list[FeedbackRecord]:
        """Feedback with ``start <= ts < end``, oldest first."""
        c = t.feedback.c
        with self._connection("read feedback", write=False) as connection:
            rows = connection.execute(
                sa.select(t.feedback)
                .where(c.model_id == model_id, c.ts >= start, c.ts < end)
                .order_by(c.ts, c.event_id, c.user_id)
            ).all()
        return [FeedbackRecord(*row) for row in rows]

    # ------------------------------------------------------------------ window profiles

    def upsert_window(
        self,
        model_id: ModelId,
        *,
        version: str,
        segment: str,
        window_seconds: int,
        window_start: float,
        profile: bytes,
        event_count: int,
        closed: bool,
    ) -> WindowRecord:
        """Create or replace the profile of one window (profile, count and closed flag)."""
        record = WindowRecord(
            model_id=model_id,
            version=version,
            segment=segment,
            window_seconds=int(window_seconds),
            window_start=float(window_start),
            profile=bytes(profile),
            event_count=int(event_count),
            closed=bool(closed),
            updated_at=time.time(),
        )
        c = t.window_profiles.c
        insert = self._insert(t.window_profiles).values(
            {column.name: getattr(record, column.name) for column in t.window_profiles.columns}
        )
        statement = insert.on_conflict_do_update(
            index_elements=[c.model_id, c.version, c.segment, c.window_seconds, c.window_start],
            set_={
                name: insert.excluded[name]
                for name in ("profile", "event_count", "closed", "updated_at")
            },
        )
        with self._connection("store window profile", write=True) as connection:
            connection.execute(statement)
        return record

    def windows(
        self,
        model_id: ModelId,
        *,
        window_seconds: int,
        start: float,
        end: float,
        version: str | None = None,
        segment: str | None = None,
    ) -> list[WindowRecord]:
        """Window profiles with ``start <= window_start < end``, by start, version, segment."""
        c = t.window_profiles.c
        conditions = [
            c.model_id == model_id,
            c.window_seconds == window_seconds,
            c.window_start >= start,
            c.window_start < end,
        ]
        if version is not None:
            conditions.append(c.version == version)
        if segment is not None:
            conditions.append(c.segment == segment)
        with self._connection("read window profiles", write=False) as connection:
            rows = connection.execute(
                sa.select(t.window_profiles)
                .where(*conditions)
                .order_by(c.window_start, c.version, c.segment)
            ).all()
        return [WindowRecord(*row) for row in rows]

    def window_segments(self, model_id: ModelId) -> set[str]:
        """The distinct segments of a model's stored windows, open or closed (``""`` included)."""
        c = t.window_profiles.c
        with self._connection("read window segments", write=False) as connection:
            rows = connection.execute(
                sa.select(c.segment).where(c.model_id == model_id).distinct()
            ).scalars()
            return set(rows)

    def open_windows(self, model_id: ModelId | None = None) -> list[WindowRecord]:
        """Windows not yet closed (of one model, or of all), e.g. to resume after a restart."""
        c = t.window_profiles.c
        conditions: list[sa.ColumnElement[bool]] = [c.closed.is_(False)]
        if model_id is not None:
            conditions.append(c.model_id == model_id)
        with self._connection("read open windows", write=False) as connection:
            rows = connection.execute(
                sa.select(t.window_profiles)
                .where(*conditions)
                .order_by(c.model_id, c.window_seconds, c.window_start, c.version, c.segment)
            ).all()
        return [WindowRecord(*row) for row in rows]

    def delete_windows_before(self, model_id: ModelId, cutoff: float) -> int:
        """Profile retention: delete window profiles of a model with ``window_start < cutoff``."""
        c = t.window_profiles.c
        with self._connection("apply profile retention", write=True) as connection:
            return int(
                connection.execute(
                    t.window_profiles.delete().where(
                        c.model_id == model_id, c.window_start < cutoff
                    )
                ).rowcount
            )

    # ------------------------------------------------------------------ checkpoints

    def put_checkpoint(
        self, seq: int, windows: Sequence[CheckpointWindow], *, taken_at: float | None = None
    ) -> None:
        """Replace the checkpoint with ``windows``, the open windows after every ingest call
        numbered up to ``seq``, in one transaction (a crash keeps the old one or the new one).

        Windows of models deleted meanwhile are left out.
        """
        c = t.window_checkpoints.c
        with self._connection("store checkpoint", write=True) as connection:
            models = set(connection.execute(sa.select(t.models.c.id)).scalars())
            connection.execute(t.window_checkpoints.delete())
            rows = [
                {column.name: getattr(window, column.name) for column in c}
                for window in windows
                if window.model_id in models
            ]
            if rows:
                connection.execute(t.window_checkpoints.insert(), rows)
            mark = self._insert(t.checkpoints).values(
                id=1, seq=int(seq), taken_at=time.time() if taken_at is None else taken_at
            )
            connection.execute(
                mark.on_conflict_do_update(
                    index_elements=[t.checkpoints.c.id],
                    set_={"seq": mark.excluded.seq, "taken_at": mark.excluded.taken_at},
                )
            )

    def checkpoint(self) -> Checkpoint | None:
        """The latest checkpoint, or None when none was taken."""
        with self._connection("read checkpoint", write=False) as connection:
            mark = connection.execute(
                sa.select(t.checkpoints.c.seq, t.checkpoints.c.taken_at).where(
                    t.checkpoints.c.id == 1
                )
            ).first()
            if mark is None:
                return None
            rows = connection.execute(sa.select(t.window_checkpoints)).all()
        return Checkpoint(
            seq=int(mark.seq),
            taken_at=float(mark.taken_at),
            windows=tuple(CheckpointWindow(*row) for row in rows),
        )

    def last_seq(self) -> int:
        """The largest ingest call number stored (events, labels, feedback or checkpoint)."""
        with self._connection("read sequence", write=False) as connection:
            largest = [
                connection.execute(sa.select(sa.func.max(table.c.seq))).scalar()
                for table in (t.events, t.labels, t.feedback, t.checkpoints)
            ]
        return max((int(value) for value in largest if value is not None), default=0)

    def count_events_after(self, seq: int) -> int:
        """How many events (of every model) were stored by ingest calls numbered above ``seq``."""
        with self._connection("count events", write=False) as connection:
            return int(
                connection.execute(
                    sa.select(sa.func.count()).select_from(t.events).where(t.events.c.seq > seq)
                ).scalar_one()
            )

    def iter_events_after(
        self, seq: int, *, batch_size: int = _EVENT_BATCH
    ) -> Iterator[list[EventRecord]]:
        """Events (of every model) stored by ingest calls numbered above ``seq``, one call's
        events at a time or several calls together, in call order; each batch of one model.

        Each batch is its own short query, so writers are never blocked by this reader.
        """
        after = seq
        while True:
            with self._connection("read events", write=False) as connection:
                rows = connection.execute(
                    _EVENTS_AFTER, {"after": after, "limit": batch_size}
                ).all()
                if len(rows) == batch_size:
                    # The last call may go on past the limit: read it whole on its own.
                    last = rows[-1].seq
                    rows = [row for row in rows if row.seq != last]
                    if not rows:
                        rows = connection.execute(_EVENTS_OF_CALL, {"seq": last}).all()
            if not rows:
                return
            start = 0
            for position in range(1, len(rows) + 1):
                if position == len(rows) or rows[position].model_id != rows[start].model_id:
                    yield [_raw_event(row) for row in rows[start:position]]
                    start = position
            after = rows[-1].seq

    def labels_of_events_after(self, seq: int) -> list[LabelRecord]:
        """The labels of the events stored by ingest calls numbered above ``seq`` (whenever
        the labels came)."""
        c, e = t.labels.c, t.events.c
        with self._connection("read labels", write=False) as connection:
            rows = connection.execute(
                sa.select(t.labels)
                .join(t.events, (e.model_id == c.model_id) & (e.event_id == c.event_id))
                .where(e.seq > seq)
            ).all()
        return [LabelRecord(*row) for row in rows]

    def labels_after(self, seq: int) -> list[LabelRecord]:
        """Labels (of every model) stored by ingest calls numbered above ``seq``, in call order."""
        with self._connection("read labels", write=False) as connection:
            rows = connection.execute(
                sa.select(t.labels).where(t.labels.c.seq > seq).order_by(t.labels.c.seq)
            ).all()
        return [LabelRecord(*row) for row in rows]

    def feedback_after(self, seq: int) -> list[FeedbackRecord]:
        """Feedback (of every model) stored by ingest calls numbered above ``seq``, in call
        order."""
        with self._connection("read feedback", write=False) as connection:
            rows = connection.execute(
                sa.select(t.feedback).where(t.feedback.c.seq > seq).order_by(t.feedback.c.seq)
            ).all()
        return [FeedbackRecord(*row) for row in rows]

    # ------------------------------------------------------------------ API tokens

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
