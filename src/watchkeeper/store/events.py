"""Prediction events in the store: batches written by the backend's event writer, reads.

Writing goes through the writer the store picked for its backend (``writers.py``), which takes
batches encoded by its codec (``codec.py``); reading is plain SQLAlchemy Core, except for the
replay after a checkpoint (:meth:`EventStore.iter_events_after`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final

import orjson
import sqlalchemy as sa

from watchkeeper.errors import StoreError
from watchkeeper.store import tables as t
from watchkeeper.store.base import StoreBase, chunks, first_occurrences
from watchkeeper.store.records import (
    EncodedEvents,
    EventId,
    EventRecord,
    InsertResult,
    ModelId,
    RetentionResult,
    StorableEvent,
    records_from,
)

__all__ = ["EventStore"]

_EVENT_BATCH: Final = 5_000
# The replay after a checkpoint reads events as plain text SQL: SQLAlchemy's result processing
# (JSON columns decoded one value at a time) cost as much as the rest of the replay. It names
# the columns in the order of ``EventRecord``'s fields, so rows unpack into records by position
# whatever the table's column order.
_EVENT_FIELDS: Final = tuple(field.name for field in dataclasses.fields(EventRecord))
_EVENT_SELECT: Final = f"SELECT {', '.join(_EVENT_FIELDS)} FROM events"
_EVENTS_AFTER: Final = sa.text(f"{_EVENT_SELECT} WHERE seq > :after ORDER BY seq LIMIT :limit")
_EVENTS_OF_CALL: Final = sa.text(f"{_EVENT_SELECT} WHERE seq = :seq")


def _json_value(stored: Any) -> Any:
    """A JSON column's value read as plain SQL on SQLite: text or bytes (or a number written
    by another tool)."""
    if isinstance(stored, bytes | str):
        return orjson.loads(stored)
    return stored


def _decoded(stored: Any) -> Any:
    """A JSON column's value read as plain SQL on PostgreSQL: the driver decoded it already (a
    JSON string such as a class label comes back as a Python string, not as JSON text)."""
    return stored


def _raw_event(row: Sequence[Any], json_value: Callable[[Any], Any]) -> EventRecord:
    (model_id, event_id, version, ts, segment, features, prediction, proba, latency_ms, error,
     ingested_at, seq, unit, arm) = row  # fmt: skip
    return EventRecord(
        model_id, event_id, version, ts, segment, json_value(features), json_value(prediction),
        json_value(proba), latency_ms, bool(error), ingested_at, seq, unit, arm,
    )  # fmt: skip


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


class EventStore(StoreBase):
    """Store event batches idempotently, read them by time, id or ingest call, apply retention."""

    def insert_events(self, model_id: ModelId, events: Sequence[StorableEvent]) -> InsertResult:
        """Store a batch in one transaction; ids already stored (or repeated) are duplicates.

        Idempotent on ``(model_id, event_id)``: the first copy of an id wins. The versions seen
        are recorded too. Everything is committed when this returns.
        """
        return self.insert_encoded(model_id, self.event_codec.encode_events(events))

    def insert_encoded(
        self, model_id: ModelId, encoded: EncodedEvents, *, seq: int = 0
    ) -> InsertResult:
        """:meth:`insert_events` for a batch already encoded by this store's
        :attr:`event_codec`.

        ``seq`` is the caller's number for this call, stored with every event (see
        :meth:`put_checkpoint`).
        """
        ids = encoded.ids
        if not ids:
            return InsertResult(inserted_ids=(), duplicate_ids=())
        inserted = self._event_writer.insert(model_id, encoded, now=time.time(), seq=seq)
        accepted, duplicates = _split_in_order(ids, inserted)
        return InsertResult(inserted_ids=accepted, duplicate_ids=duplicates)

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
                yield records_from(EventRecord, rows)
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
        unique = first_occurrences(ids)
        with self._connection("read events by id", write=False) as connection:
            for chunk in chunks(unique):
                rows = connection.execute(
                    sa.select(t.events).where(
                        t.events.c.model_id == model_id, t.events.c.event_id.in_(chunk)
                    )
                ).all()
                found.update(
                    (record.event_id, record) for record in records_from(EventRecord, rows)
                )
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

    def last_ingested(self, model_id: ModelId) -> dict[tuple[str, str], float]:
        """When the newest stored event of each (version, segment) of a model was ingested."""
        column = t.events.c
        query = (
            sa.select(column.version, column.segment, sa.func.max(column.ingested_at))
            .where(column.model_id == model_id)
            .group_by(column.version, column.segment)
        )
        with self._connection("read last ingest times", write=False) as connection:
            return {
                (str(version), str(segment)): float(last)
                for version, segment, last in connection.execute(query)
            }

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
        json_value = _json_value if self.backend == "sqlite" else _decoded
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
                    yield [_raw_event(row, json_value) for row in rows[start:position]]
                    start = position
            after = rows[-1].seq
