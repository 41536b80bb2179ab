"""What goes into the store and what comes out of it.

Inputs that are built once per event on the ingest hot path (:class:`NewEvent`, :class:`NewLabel`,
:class:`NewFeedback`) are ``NamedTuple`` s: immutable, typed, and several times cheaper to build
than a frozen dataclass. Everything the store returns is a frozen dataclass.

Timestamps are float seconds since the Unix epoch, UTC, everywhere: the event clock of the wire
contract, cheap to compare and to bucket into windows, and identical on SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeAlias, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "ChangedWindow",
    "Checkpoint",
    "CheckpointWindow",
    "Conflict",
    "EncodedEvents",
    "EventId",
    "EventRecord",
    "FeedbackRecord",
    "InsertResult",
    "LabelInsertResult",
    "LabelRecord",
    "ModelId",
    "ModelRecord",
    "NewEvent",
    "NewFeedback",
    "NewLabel",
    "NewOutcome",
    "OutcomeInsertResult",
    "OutcomeRecord",
    "ReferenceProfileRecord",
    "RetentionResult",
    "StorableEvent",
    "TokenRecord",
    "VersionRecord",
    "WindowRecord",
    "canonical_segment",
    "record_from",
    "records_from",
]

ModelId: TypeAlias = int
EventId: TypeAlias = str

_Record = TypeVar("_Record", bound="DataclassInstance")


class NamedRow(Protocol):
    """A result row: values by position, and the names of its columns (SQLAlchemy's ``Row``)."""

    @property
    def _fields(self) -> tuple[str, ...]: ...
    def __getitem__(self, index: int, /) -> Any: ...


_BUILDERS: dict[tuple[type[Any], tuple[str, ...]], Callable[[NamedRow], Any]] = {}


def _builder(record_type: type[_Record], columns: tuple[str, ...]) -> Callable[[NamedRow], _Record]:
    """How to build ``record_type`` from rows with ``columns``: each field from the column of its
    name, found once per result shape (per row only indexing, as cheap as ``Record(*row)``)."""
    builder = _BUILDERS.get((record_type, columns))
    if builder is None:
        names = [field.name for field in dataclasses.fields(record_type)]
        present = [name for name in names if name in columns]
        get = operator.itemgetter(*[columns.index(name) for name in present])
        if present == names[: len(present)] and len(present) > 1:
            # Only trailing fields with defaults are missing: positional is by name here.
            def builder(row: NamedRow) -> Any:
                return record_type(*get(row))
        else:

            def builder(row: NamedRow) -> Any:
                values = get(row) if len(present) > 1 else (get(row),)
                return record_type(**dict(zip(present, values, strict=True)))

        _BUILDERS[record_type, columns] = builder
    return builder


def record_from(record_type: type[_Record], row: NamedRow) -> _Record:
    """Build a record dataclass from a result row by column name, not position.

    Columns the record has no field for are ignored, and a field with a default may be missing,
    so adding a column or reordering them can never shift values into the wrong field.

    >>> from collections import namedtuple
    >>> row = namedtuple("Row", "metadata version model_id created_at extra")({}, "v1", 1, 0.0, 9)
    >>> record_from(VersionRecord, row)
    VersionRecord(model_id=1, version='v1', created_at=0.0, metadata={})
    """
    return _builder(record_type, tuple(row._fields))(row)


def records_from(record_type: type[_Record], rows: Sequence[NamedRow]) -> list[_Record]:
    """:func:`record_from` for every row of one result (all with the same columns)."""
    if not rows:
        return []
    build = _builder(record_type, tuple(rows[0]._fields))
    return [build(row) for row in rows]


def canonical_segment(tags: Mapping[str, str] | None) -> str:
    """The canonical segment string of an event's tags: ``"k=v,k2=v2"`` sorted by key.

    >>> canonical_segment({"region": "eu", "device": "ios"})
    'device=ios,region=eu'
    >>> canonical_segment(None)
    ''
    """
    if not tags:
        return ""
    return ",".join(f"{key}={tags[key]}" for key in sorted(tags))


# Values per event in ``EncodedEvents.values`` (the ``events`` columns between ``model_id`` and
# ``ingested_at``), and in a batch where no event has a unit or an arm: those two are left out,
# as binding two empty values per event cost a tenth of the insert.
ENCODED_EVENT_VALUES = 11
NAMELESS_EVENT_VALUES = 9


class StorableEvent(Protocol):
    """What :meth:`Store.insert_events` reads of an event: :class:`NewEvent` has it, and so has
    the ingest path's validated event, which is stored as it is (no copy per event)."""

    @property
    def event_id(self) -> EventId: ...
    @property
    def version(self) -> str: ...
    @property
    def ts(self) -> float: ...
    @property
    def features(self) -> Mapping[str, Any]: ...
    @property
    def prediction(self) -> Any: ...
    @property
    def proba(self) -> Mapping[str, float] | None: ...
    @property
    def latency_ms(self) -> float | None: ...
    @property
    def error(self) -> bool: ...
    @property
    def segment(self) -> str: ...
    @property
    def unit(self) -> str | None: ...
    @property
    def arm(self) -> str | None: ...


class NewEvent(NamedTuple):
    """One prediction event to store; ``segment`` is canonical ``"k=v,k2=v2"`` or ``""``,
    ``unit`` the unit it is about and ``arm`` the router arm that made it (None: not sent)."""

    event_id: EventId
    version: str
    ts: float
    features: Mapping[str, Any]
    prediction: Any = None
    proba: Mapping[str, float] | None = None
    latency_ms: float | None = None
    error: bool = False
    segment: str = ""
    unit: str | None = None
    arm: str | None = None


class NewLabel(NamedTuple):
    """The ground truth for the event ``event_id``, observed at ``ts``."""

    event_id: EventId
    label: Any
    ts: float


class NewFeedback(NamedTuple):
    """A user's rating (1..5) of the prediction made in event ``event_id``."""

    event_id: EventId
    user_id: str
    rating: int
    ts: float
    comment: str | None = None


class NewOutcome(NamedTuple):
    """The business outcome ``name`` (1.0 / 0.0 when binary) of the prediction ``event_id``,
    observed at ``ts``; ``unit`` when it was sent for a unit (and attributed to ``event_id``)."""

    event_id: EventId
    name: str
    value: float
    ts: float
    unit: str | None = None


class Conflict(NamedTuple):
    """An item of a batch refused because its key already holds another value, which is kept.

    ``position`` indexes the input; ``kept`` is the stored value (a label, or a rating).
    """

    position: int
    event_id: EventId
    kept: Any


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """A registered model and its configuration (the wire contract's model config)."""

    id: ModelId
    name: str
    config: Mapping[str, Any]
    created_at: float
    updated_at: float
    config_version: int = 1


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """A version of a model, first seen at ``created_at``."""

    model_id: ModelId
    version: str
    created_at: float
    metadata: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ReferenceProfileRecord:
    """The serialised reference profile of a model, built from ``rows`` training rows."""

    model_id: ModelId
    profile: bytes
    rows: int
    created_at: float


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A stored prediction event."""

    model_id: ModelId
    event_id: EventId
    version: str
    ts: float
    segment: str
    features: Mapping[str, Any]
    prediction: Any
    proba: Mapping[str, float] | None
    latency_ms: float | None
    error: bool
    ingested_at: float
    # The number of the ingest call that stored it (0 for events stored before checkpoints).
    seq: int = 0
    # The unit the prediction was about and the router arm that made it (None: not sent).
    unit: str | None = None
    arm: str | None = None


@dataclass(frozen=True, slots=True)
class LabelRecord:
    """A stored label: observed at ``ts``, received by the store at ``received_at``."""

    model_id: ModelId
    event_id: EventId
    label: Any
    ts: float
    received_at: float
    seq: int = 0


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    """A stored user rating of a prediction."""

    model_id: ModelId
    event_id: EventId
    user_id: str
    rating: int
    comment: str | None
    ts: float
    seq: int = 0


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    """A stored business outcome of a prediction: observed at ``ts``, stored at
    ``received_at``."""

    model_id: ModelId
    event_id: EventId
    name: str
    value: float
    ts: float
    received_at: float
    seq: int = 0
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class WindowRecord:
    """A window profile: the serialised profile of one model · version · segment · window."""

    model_id: ModelId
    version: str
    segment: str
    window_seconds: int
    window_start: float
    profile: bytes
    event_count: int
    closed: bool
    updated_at: float


@dataclass(frozen=True, slots=True)
class ChangedWindow:
    """A closed window (smallest size) that changed at ``noted_at`` and awaits evaluation."""

    model_id: ModelId
    window_start: float
    noted_at: float


@dataclass(frozen=True, slots=True)
class CheckpointWindow:
    """One open window as a checkpoint holds it: its key and serialised profile."""

    model_id: ModelId
    version: str
    segment: str
    window_seconds: int
    window_start: float
    profile: bytes
    event_count: int


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The open windows after every ingest call numbered up to ``seq``, taken at ``taken_at``."""

    seq: int
    taken_at: float
    windows: tuple[CheckpointWindow, ...]


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """An API token; only the hash of the secret is stored."""

    id: int
    name: str
    token_hash: str
    scopes: tuple[str, ...]
    created_at: float
    revoked_at: float | None
    last_used_at: float | None

    @property
    def active(self) -> bool:
        """Whether the token has not been revoked."""
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class EncodedEvents:
    """An event batch encoded for one backend's writer by its codec (``Store.event_codec``).

    ``values`` holds ``width`` values per event, flat: id, version, ts, segment, features,
    prediction, proba, latency_ms, error, then unit and arm — eleven, or nine when no event of
    the batch has a unit or an arm (stored as NULL). How the JSON fields, the flag and a missing
    unit or arm are encoded is the codec's (``watchkeeper.store.codec``). Encoding needs no
    store, so it can happen in another process and travel (it pickles cheaply): the ingest
    workers of the server encode, the server stores.
    """

    values: list[Any]
    width: int = ENCODED_EVENT_VALUES

    def __post_init__(self) -> None:
        if self.width not in (ENCODED_EVENT_VALUES, NAMELESS_EVENT_VALUES) or (
            len(self.values) % self.width
        ):
            raise ValueError(f"encoded events: {len(self.values)} values of width {self.width}")

    @property
    def count(self) -> int:
        """How many events the batch holds."""
        return len(self.values) // self.width

    @property
    def ids(self) -> list[EventId]:
        """The events' ids, in batch order."""
        ids: list[EventId] = self.values[0 :: self.width]
        return ids

    @property
    def versions(self) -> frozenset[str]:
        """The model versions in the batch."""
        return frozenset(self.values[1 :: self.width])

    def take(self, rows: Sequence[int]) -> EncodedEvents:
        """The events at ``rows`` (positions in the batch), in that order."""
        width, values = self.width, self.values
        return EncodedEvents(
            [value for row in rows for value in values[row * width : (row + 1) * width]], width
        )


@dataclass(frozen=True, slots=True)
class InsertResult:
    """Which ids of a batch were stored now and which were already there (in input order)."""

    inserted_ids: tuple[EventId, ...]
    duplicate_ids: tuple[EventId, ...]


@dataclass(frozen=True, slots=True)
class FeedbackInsertResult:
    """Outcome of storing ratings: ids in input order, and which input items were stored.

    One event can be rated by several users, so event ids alone cannot say which rating was
    new; ``stored_positions`` are the indices (into the input) of the ratings stored now.
    ``duplicate_ids`` repeat a stored rating exactly (retries); ``conflicts`` are a user's
    later, different ratings of the same event, refused (the first one is kept).
    """

    inserted_ids: tuple[EventId, ...]
    duplicate_ids: tuple[EventId, ...]
    stored_positions: tuple[int, ...]
    conflicts: tuple[Conflict, ...] = ()


@dataclass(frozen=True, slots=True)
class LabelInsertResult:
    """Outcome of storing labels; ``unmatched_ids`` are stored labels with no event yet.

    ``duplicate_ids`` repeat the stored label exactly (retries); ``conflicts`` are labels that
    differ from the one stored for their id, refused (the first label of an id is kept).
    """

    inserted_ids: tuple[EventId, ...]
    duplicate_ids: tuple[EventId, ...]
    unmatched_ids: tuple[EventId, ...]
    conflicts: tuple[Conflict, ...] = ()


@dataclass(frozen=True, slots=True)
class OutcomeInsertResult:
    """Outcome of storing business outcomes; ``stored_positions`` index the input items stored
    now (one per ``(event_id, name)``), ``duplicate_ids`` (event ids) repeat a stored value
    exactly (retries), ``conflicts`` differ from it and are refused (the first value is kept)."""

    inserted_ids: tuple[EventId, ...]
    duplicate_ids: tuple[EventId, ...]
    stored_positions: tuple[int, ...]
    conflicts: tuple[Conflict, ...] = ()


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """How many raw rows a retention pass deleted."""

    events: int
    labels: int
    feedback: int
    outcomes: int = 0
