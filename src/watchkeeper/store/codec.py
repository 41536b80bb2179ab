"""Event batches encoded for one backend's event writer, wherever they are validated.

Encoding needs no store, so it happens where the batch is validated: in the ingest worker
processes of the server, or in-process. Each backend's writer has its codec
(``SqliteEventWriter.codec``, ``PostgresEventWriter.codec``), a small stateless object that
pickles by name; the store hands its own out as :attr:`Store.event_codec`, the monitor puts it in
every ``DecodeJob``, and the workers encode for the backend that will store the batch, so the
server process writes the values as they come.

Both codecs give eleven values per event in the ``events`` columns' order (after ``model_id``,
before ``ingested_at``): id, version, ts, segment, features, prediction, proba, latency_ms,
error, unit, arm — or the first nine, when no event of the batch has a unit or an arm
(``EncodedEvents.width``). They differ in the three JSON fields, the error flag and how a
missing unit or arm is bound: see each codec.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, ClassVar, Final

import msgspec
import orjson

from watchkeeper.errors import IngestError
from watchkeeper.store.engine import JSON_OPTIONS, Backend
from watchkeeper.store.records import EncodedEvents, EventId, StorableEvent

__all__ = [
    "POSTGRES_CODEC",
    "SQLITE_CODEC",
    "EventCodec",
    "PostgresEventCodec",
    "SqliteEventCodec",
    "codec_for",
    "encode_columns",
    "encode_events",
]

_ENCODER: Final = msgspec.json.Encoder()
# Every null JSON field of every SQLite batch is this one object: never mutate encoded values.
_NO_JSON: Final = bytearray()


@dataclass(frozen=True, slots=True)
class EventCodec(ABC):
    """Encodes event batches for :meth:`Store.insert_encoded` of one backend (see subclasses)."""

    backend: ClassVar[Backend]

    def encode_events(self, events: Sequence[StorableEvent]) -> EncodedEvents:
        """Encode ``events`` (see :meth:`encode_columns`)."""
        return self.encode_columns(
            ids=[event.event_id for event in events],
            versions=[event.version for event in events],
            ts=[event.ts for event in events],
            segments=[event.segment for event in events],
            features=[event.features for event in events],
            predictions=[event.prediction for event in events],
            probas=[event.proba for event in events],
            latency_ms=[event.latency_ms for event in events],
            errors=[event.error for event in events],
            units=[event.unit for event in events],
            arms=[event.arm for event in events],
        )

    def encode_columns(
        self,
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
        units: Sequence[str | None] | None = None,
        arms: Sequence[str | None] | None = None,
    ) -> EncodedEvents:
        """Encode a batch given as columns (one value per event in each; ``units`` and
        ``arms`` may be left out when no event has one).

        Raises :class:`IngestError` naming the first event and field that is not
        JSON-serialisable.
        """
        try:
            feature_texts = self._json_texts(features, nullable=False)
            prediction_texts = self._json_texts(predictions, nullable=True)
            proba_texts = self._json_texts(probas, nullable=True)
        except orjson.JSONEncodeError:
            raise _json_error(ids, features, predictions, probas) from None
        columns = [
            ids, versions, ts, segments, feature_texts, prediction_texts, proba_texts,
            latency_ms, self._flags(errors),
        ]  # fmt: skip
        if _named(units) or _named(arms):
            columns += [self._names(units, len(ids)), self._names(arms, len(ids))]
        rows = zip(*columns, strict=True)
        return EncodedEvents(list(chain.from_iterable(rows)), width=len(columns))

    @abstractmethod
    def _json_texts(self, values: Sequence[Any], *, nullable: bool) -> Sequence[Any]:
        """Each value as the backend's JSON text; with ``nullable`` None is its NULL."""

    @abstractmethod
    def _flags(self, errors: Sequence[bool]) -> Sequence[Any]:
        """The error flags as the backend binds them."""

    @abstractmethod
    def _names(self, names: Sequence[str | None] | None, size: int) -> Sequence[Any]:
        """Units or arms (None: the event has none) as the backend binds them, in a batch
        where some event has one."""


def _named(names: Sequence[str | None] | None) -> bool:
    """Whether any event has a unit (or an arm): otherwise the batch leaves both out."""
    return names is not None and any(names)


@dataclass(frozen=True, slots=True)
class SqliteEventCodec(EventCodec):
    """JSON fields as encoded text in a bytearray (the empty one for null), the error flag 0/1,
    a missing unit or arm the empty string (never valid, so the writer's ``NULLIF`` reads it as
    NULL).

    Binding the ~10,000 parameters of a batch holds the GIL, and Python's sqlite3 binds only
    exact str, int, float and bytearray directly: bytes, None and bool go through its adapter
    registry first, five times slower per value. The writer's ``NULLIF`` turns the empty
    bytearray back into NULL (JSON text is never empty). JSON text is stored as a BLOB, as in
    every JSON column: a ``JSON`` column has NUMERIC affinity and would turn text such as ``1.0``
    into a number.
    """

    backend: ClassVar[Backend] = "sqlite"

    def _json_texts(self, values: Sequence[Any], *, nullable: bool) -> list[bytearray]:
        return _json_bytearrays(values, nullable=nullable)

    def _flags(self, errors: Sequence[bool]) -> list[int]:
        return [1 if error else 0 for error in errors]

    def _names(self, names: Sequence[str | None] | None, size: int) -> list[str]:
        if names is None:
            return [""] * size
        return ["" if name is None else name for name in names]


@dataclass(frozen=True, slots=True)
class PostgresEventCodec(EventCodec):
    """JSON fields as text (None for null), the error flag a bool, a missing unit or arm None:
    what ``COPY`` sends as is (bytes would go as ``bytea``)."""

    backend: ClassVar[Backend] = "postgresql"

    def _json_texts(self, values: Sequence[Any], *, nullable: bool) -> list[str | None]:
        encode = _ENCODER.encode
        try:
            return [
                None if nullable and value is None else encode(value).decode() for value in values
            ]
        except (TypeError, ValueError, msgspec.EncodeError):
            # As for SQLite: what msgspec does not take goes through orjson, which also names
            # what cannot be stored at all.
            return [None if nullable and value is None else _orjson_text(value) for value in values]

    def _flags(self, errors: Sequence[bool]) -> list[bool]:
        return [bool(error) for error in errors]

    def _names(self, names: Sequence[str | None] | None, size: int) -> Sequence[str | None]:
        return [None] * size if names is None else names


SQLITE_CODEC: Final[EventCodec] = SqliteEventCodec()
POSTGRES_CODEC: Final[EventCodec] = PostgresEventCodec()


def codec_for(backend: Backend) -> EventCodec:
    """The codec of ``backend``'s event writer."""
    return SQLITE_CODEC if backend == "sqlite" else POSTGRES_CODEC


def _orjson_text(value: Any) -> str:
    return orjson.dumps(value, option=JSON_OPTIONS).decode()


def _json_bytearrays(values: Sequence[Any], *, nullable: bool = True) -> list[bytearray]:
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
    present = _json_bytearrays([value for value in values if value is not None], nullable=False)
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
    units: Sequence[str | None] | None = None,
    arms: Sequence[str | None] | None = None,
    backend: Backend = "sqlite",
) -> EncodedEvents:
    """Encode a batch given as columns for :meth:`Store.insert_encoded` of a ``backend`` store
    (``store.event_codec`` is the store's own codec)."""
    return codec_for(backend).encode_columns(
        ids=ids, versions=versions, ts=ts, segments=segments, features=features,
        predictions=predictions, probas=probas, latency_ms=latency_ms, errors=errors,
        units=units, arms=arms,
    )  # fmt: skip


def encode_events(events: Sequence[StorableEvent], *, backend: Backend = "sqlite") -> EncodedEvents:
    """Encode ``events`` for :meth:`Store.insert_encoded` of a ``backend`` store."""
    return codec_for(backend).encode_events(events)
