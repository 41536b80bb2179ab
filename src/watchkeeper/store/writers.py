"""The event writers: how one backend stores an encoded batch, fast.

The store picks one when it is created, by dialect: :class:`SqliteEventWriter` (group commit,
multi-row ``INSERT ... VALUES``) or :class:`PostgresEventWriter` (``COPY``). Each has its
:class:`~watchkeeper.store.codec.EventCodec`, and takes the batch as that codec encoded it.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections import deque
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, ClassVar, Final, Protocol

from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine

from watchkeeper.errors import StoreError
from watchkeeper.store import tables as t
from watchkeeper.store.codec import POSTGRES_CODEC, SQLITE_CODEC, EventCodec
from watchkeeper.store.records import ENCODED_EVENT_VALUES, EncodedEvents, EventId, ModelId

__all__ = ["Connect", "EventWriter", "PostgresEventWriter", "SqliteEventWriter"]

# Every column but ``seq``, which is one value per call (the caller's ingest call number).
EVENT_COLUMNS: Final = tuple(column.name for column in t.events.columns if column.name != "seq")
_VERSION_COLUMNS: Final = ("model_id", "version", "created_at", "metadata")
_EMPTY_METADATA: Final = "{}"
_EVENT_VALUES: Final = ENCODED_EVENT_VALUES
# Position of the features (JSON, never null) in an event's values: its type tells which codec
# encoded a batch.
_FEATURES_VALUE: Final = 4
if (
    len(EVENT_COLUMNS) != _EVENT_VALUES + 2
    or EVENT_COLUMNS[0] != "model_id"
    or EVENT_COLUMNS[-1] != "ingested_at"
    or [EVENT_COLUMNS[1 + value] for value in (4, 5, 6, 8, 9, 10)]
    != ["features", "prediction", "proba", "error", "unit", "arm"]
):
    raise AssertionError(f"events columns changed; update EncodedEvents: {EVENT_COLUMNS}")


class Connect(Protocol):
    """The store's ``_connection``: one transaction, errors translated, closed store refused."""

    def __call__(self, operation: str, *, write: bool) -> AbstractContextManager[Connection]: ...


class EventWriter(Protocol):
    """Stores encoded event batches for one backend; what :class:`Store` calls per batch."""

    codec: ClassVar[EventCodec]

    def insert(
        self, model_id: ModelId, encoded: EncodedEvents, *, now: float, seq: int
    ) -> set[EventId]:
        """Store the batch (stored ids and repeats skipped) and its versions in one transaction;
        return the ids stored now, committed."""
        ...


def _check_codec(encoded: EncodedEvents, codec: EventCodec, expected: type) -> None:
    # One look per batch: a batch encoded for the other backend would be stored wrong or fail
    # deep in the driver.
    if not isinstance(encoded.values[_FEATURES_VALUE], expected):
        raise StoreError(
            f"this event batch was not encoded for the {codec.backend} store; encode it with "
            "the store's event_codec",
            backend=codec.backend,
        )


# Events go to SQLite as multi-row ``INSERT ... VALUES`` statements of fixed sizes (so a few
# prepared statements serve every batch), each run in one SQLite step with the GIL released:
# ``executemany`` took the GIL back after every row and, with another request running, waited
# for it each time (the GIL convoy), and one JSON parameter unpacked by ``json_each`` cost
# SQLite twice the CPU (it re-parses each row's text for every field). Parameter 1 is the
# model, 2 the ingest time, 3 the call's sequence number, then ``EncodedEvents.width`` values
# per event (encoded by ``SqliteEventCodec``: a null JSON field is the empty bytearray, which
# ``NULLIF`` turns back into NULL; in a batch with units or arms, a missing one is the empty
# string; in a batch with none, the statement leaves both columns out).
_SQLITE_CHUNKS: Final = (512, 256, 128, 64, 32, 16, 8, 4, 2, 1)
_NULLABLE_JSON_VALUES: Final = (5, 6)
_NULLABLE_NAME_VALUES: Final = (9, 10)


@functools.cache
def _sqlite_event_sql(rows: int, width: int) -> str:
    cells = []
    for row in range(rows):
        first = 4 + row * width
        values = ", ".join(
            f"NULLIF(?{first + offset}, X'')"
            if offset in _NULLABLE_JSON_VALUES
            else f"NULLIF(?{first + offset}, '')"
            if offset in _NULLABLE_NAME_VALUES
            else f"?{first + offset}"
            for offset in range(width)
        )
        cells.append(f"(?1, {values}, ?2, ?3)")
    columns = ", ".join(_stored_columns(width))
    return f"INSERT INTO events ({columns}, seq) VALUES {', '.join(cells)} ON CONFLICT DO NOTHING"


def _stored_columns(width: int) -> tuple[str, ...]:
    """The ``events`` columns a batch of ``width`` values per event fills (``seq`` aside)."""
    return (*EVENT_COLUMNS[: 1 + width], EVENT_COLUMNS[-1])


@dataclass(eq=False)
class _QueuedInsert:
    """One caller's event batch waiting for the next group commit (SQLite)."""

    model_id: ModelId
    values: list[Any]
    width: int
    versions: frozenset[str]
    now: float
    seq: int
    taken: bool = False
    done: bool = False
    inserted: set[EventId] = dataclass_field(default_factory=set)
    error: BaseException | None = None

    @property
    def count(self) -> int:
        return len(self.values) // self.width


class SqliteEventWriter:
    """SQLite: concurrent callers' batches share one transaction (group commit), each written
    as multi-row ``INSERT ... VALUES`` statements."""

    codec: ClassVar[EventCodec] = SQLITE_CODEC

    def __init__(self, *, engine: Engine, connect: Connect) -> None:
        self._connect = connect
        # Event batches of concurrent callers are committed together (see ``_group_commit``).
        self._insert_queue: deque[_QueuedInsert] = deque()
        self._insert_turn = threading.Condition()
        # The versions INSERT is compiled once: compiling it per batch cost about as much as
        # encoding the batch's JSON.
        versions = (
            sqlite_dialect.insert(t.model_versions)
            .on_conflict_do_nothing()
            .compile(dialect=engine.dialect, column_keys=list(_VERSION_COLUMNS))
        )
        if tuple(versions.positiontup or ()) != _VERSION_COLUMNS:
            raise StoreError("internal: unexpected version insert layout", backend="sqlite")
        self._version_sql = str(versions)

    def insert(
        self, model_id: ModelId, encoded: EncodedEvents, *, now: float, seq: int
    ) -> set[EventId]:
        """Store the batch with the batches queued behind the one writing (group commit)."""
        _check_codec(encoded, self.codec, bytearray)
        return self._group_commit(
            _QueuedInsert(
                model_id,
                encoded.values,
                encoded.width,
                encoded.versions,
                now,
                seq,
            )
        )

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
                                backend="sqlite",
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
        with self._connect(operation, write=True) as connection:
            for queued in group:
                inserted.append(self._insert_events(connection, queued))
            connection.exec_driver_sql(
                self._version_sql,
                [
                    (queued.model_id, version, queued.now, _EMPTY_METADATA)
                    for queued in group
                    for version in sorted(queued.versions)
                ],
            )
        for queued, ids in zip(group, inserted, strict=True):
            queued.inserted = ids

    def _insert_events(self, connection: Connection, queued: _QueuedInsert) -> set[EventId]:
        # ON CONFLICT DO NOTHING skips stored ids; when any was skipped, the new rows are found
        # by rowid: SQLite numbers a new row above the largest rowid in the table, and this
        # transaction holds the write lock (BEGIN IMMEDIATE), so the rows above the maximum
        # seen before the INSERT are exactly this batch's. The statements go straight to the
        # driver's cursor, inside the store's transaction: SQLAlchemy's execution context cost
        # about 60 µs per statement, a tenth of the events' insert.
        model_id, values = queued.model_id, queued.values
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        statement = "SELECT max(rowid) FROM events"
        try:
            before = cursor.execute(statement).fetchone()[0] or 0
            inserted = 0
            width, count = queued.width, queued.count
            position = 0
            while position < count:
                rows = next(size for size in _SQLITE_CHUNKS if size <= count - position)
                chunk = values[position * width : (position + rows) * width]
                statement = _sqlite_event_sql(rows, width)
                inserted += cursor.execute(
                    statement, (model_id, queued.now, queued.seq, *chunk)
                ).rowcount
                position += rows
            if inserted == count:
                # Every row went in: no id was stored before or repeated in the batch.
                return set(values[0::width])
            statement = "SELECT event_id FROM events WHERE rowid > ? AND model_id = ?"
            return {row[0] for row in cursor.execute(statement, (before, model_id))}
        except sqlite3.Error as exc:
            # Raised as SQLAlchemy would, so the store translates it like any other.
            raise sa_exc.DBAPIError.instance(
                statement, None, exc, sqlite3.Error, dialect=connection.dialect
            ) from exc
        finally:
            cursor.close()


_PG_STAGING: Final = "watchkeeper_incoming_events"
_PG_STAGING_DDL: Final = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_PG_STAGING} "
    "(LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
# Rows are inserted in key order, as in every batch insert of the store: two transactions
# inserting overlapping ids in different orders would otherwise wait on each other's keys and
# deadlock.
_PG_MERGE: Final = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}, seq) "
    f"SELECT {', '.join(EVENT_COLUMNS)}, %s FROM {_PG_STAGING} ORDER BY event_id "
    "ON CONFLICT (model_id, event_id) DO NOTHING RETURNING event_id"
)


class PostgresEventWriter:
    """PostgreSQL: ``COPY`` into a per-session staging table, then one ``INSERT ... SELECT``
    (a multi-row VALUES statement is re-parsed by the driver on every batch and is several
    times slower)."""

    codec: ClassVar[EventCodec] = POSTGRES_CODEC

    def __init__(self, *, connect: Connect) -> None:
        self._connect = connect

    def insert(
        self, model_id: ModelId, encoded: EncodedEvents, *, now: float, seq: int
    ) -> set[EventId]:
        """Store the batch and its versions in one transaction."""
        _check_codec(encoded, self.codec, str)
        operation = f"insert {encoded.count} events"
        with self._connect(operation, write=True) as connection:
            inserted = self._insert_events(connection, model_id, encoded, now, seq)
            connection.execute(
                pg_dialect.insert(t.model_versions)
                .on_conflict_do_nothing()
                .values(
                    [
                        {"model_id": model_id, "version": v, "created_at": now, "metadata": {}}
                        for v in sorted(encoded.versions)
                    ]
                )
            )
        return inserted

    def _insert_events(
        self,
        connection: Connection,
        model_id: ModelId,
        encoded: EncodedEvents,
        now: float,
        seq: int,
    ) -> set[EventId]:
        import psycopg

        connection.exec_driver_sql(_PG_STAGING_DDL)
        # The first copy of an id wins, as on SQLite.
        values, width = encoded.values, encoded.width
        first: dict[EventId, Sequence[Any]] = {}
        for start in range(0, len(values), width):
            first.setdefault(values[start], values[start : start + width])
        driver_connection = connection.connection.driver_connection
        if not isinstance(driver_connection, psycopg.Connection):
            raise StoreError(
                "PostgreSQL event ingest needs the psycopg 3 driver; use a postgresql:// or "
                "postgresql+psycopg:// URL",
                backend="postgresql",
            )
        try:
            with (
                driver_connection.cursor() as cursor,
                cursor.copy(
                    f"COPY {_PG_STAGING} ({', '.join(_stored_columns(width))}) FROM STDIN"
                ) as copy,
            ):
                for row in first.values():
                    copy.write_row((model_id, *row, now))
        except psycopg.Error as exc:
            raise sa_exc.DBAPIError(f"COPY {_PG_STAGING}", None, exc) from exc
        return set(connection.exec_driver_sql(_PG_MERGE, (seq,)).scalars())
