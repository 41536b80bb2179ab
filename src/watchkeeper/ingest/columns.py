"""The ingest contract's data: one :class:`Rejection`, and accepted events as one batch type.

Validation returns :class:`ValidBatch`: the accepted events as :class:`ValidColumns` (one list per
field, in batch order, no object per event: the monitor folds and the store encodes them as
columns) and every problem of the rejected ones as :class:`Rejection` (index, field, reason).
:class:`ValidEvent` is the row view of the same columns, for callers that want one object per
event; labels and feedback are small and come back as :class:`ValidLabel` / :class:`ValidFeedback`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = [
    "FeatureValue",
    "Prediction",
    "Rejection",
    "ValidBatch",
    "ValidColumns",
    "ValidEvent",
    "ValidFeedback",
    "ValidLabel",
    "ValidationResult",
]

FeatureValue = float | str | bool | None
Prediction = str | float | None
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Rejection:
    """One problem of one item: its ``index`` in the batch, a dotted ``field`` and the reason."""

    index: int
    field: str
    reason: str

    def to_dict(self) -> dict[str, object]:
        """The wire form ``{"index", "field", "reason"}``."""
        return {"index": self.index, "field": self.field, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class ValidEvent:
    """An accepted prediction event with canonical values.

    ``ts`` is epoch seconds, ``segment`` the canonical ``"k=v,..."`` string (``""`` for none),
    ``unit`` the unit id (user, session, account) and ``arm`` the router arm, when sent;
    ``features`` maps every declared feature to a float (numeric, datetime as epoch seconds),
    a string (categorical, text), a bool (boolean) or ``None`` (missing).
    """

    index: int
    id: str
    ts: float
    version: str
    features: dict[str, FeatureValue]
    prediction: Prediction = None
    proba: dict[str, float] | None = None
    latency_ms: float | None = None
    error: bool = False
    segment: str = ""
    unit: str | None = None
    arm: str | None = None

    @property
    def event_id(self) -> str:
        """``id`` under the store's name for it: a validated event is stored as it is."""
        return self.id


@dataclass(frozen=True, slots=True)
class ValidColumns:
    """Accepted prediction events as columns, in batch order: what :class:`ValidEvent` holds
    per event, one list per field (``index`` is each event's position in the batch).

    ``features`` has one column of canonical values per declared feature. ``rows`` holds the
    events' feature objects when the validator already has them (a JSON batch whose objects
    hold exactly the canonical values); :meth:`feature_rows` builds them otherwise. The
    monitor folds and stores these columns without building an object per event.
    """

    index: list[int]
    ids: list[str]
    ts: list[float]
    versions: list[str]
    features: dict[str, list[FeatureValue]]
    predictions: list[Prediction]
    probas: list[dict[str, float] | None]
    latency_ms: list[float | None]
    errors: list[bool]
    segments: list[str]
    units: list[str | None]
    arms: list[str | None]
    rows: list[dict[str, FeatureValue]] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def feature_rows(self) -> list[dict[str, FeatureValue]]:
        """One ``{feature: value}`` object per event."""
        if self.rows is not None:
            return self.rows
        names = list(self.features)
        if not names:
            return [{} for _ in self.ids]
        return [
            dict(zip(names, row, strict=True)) for row in zip(*self.features.values(), strict=True)
        ]

    def events(self) -> list[ValidEvent]:
        """The same events as :class:`ValidEvent` objects."""
        return [
            ValidEvent(
                index=index,
                id=event_id,
                ts=ts,
                version=version,
                features=features,
                prediction=prediction,
                proba=proba,
                latency_ms=latency,
                error=error,
                segment=segment,
                unit=unit,
                arm=arm,
            )
            for (index, event_id, ts, version, features, prediction, proba, latency, error,
                 segment, unit, arm)
            in zip(
                self.index,
                self.ids,
                self.ts,
                self.versions,
                self.feature_rows(),
                self.predictions,
                self.probas,
                self.latency_ms,
                self.errors,
                self.segments,
                self.units,
                self.arms,
                strict=True,
            )
        ]  # fmt: skip

    def take(self, positions: Sequence[int]) -> ValidColumns:
        """The events at ``positions`` (ascending positions in these columns)."""

        def pick(column: Sequence[Any]) -> list[Any]:
            return [column[position] for position in positions]

        return ValidColumns(
            index=pick(self.index),
            ids=pick(self.ids),
            ts=pick(self.ts),
            versions=pick(self.versions),
            features={name: pick(column) for name, column in self.features.items()},
            predictions=pick(self.predictions),
            probas=pick(self.probas),
            latency_ms=pick(self.latency_ms),
            errors=pick(self.errors),
            segments=pick(self.segments),
            units=pick(self.units),
            arms=pick(self.arms),
            rows=None if self.rows is None else pick(self.rows),
        )


@dataclass(frozen=True, slots=True)
class ValidBatch:
    """The outcome of validating a batch of events: accepted ones as columns, and every
    problem of the rejected ones."""

    accepted: ValidColumns
    rejected: list[Rejection]

    def result(self) -> ValidationResult[ValidEvent]:
        """The same outcome with one :class:`ValidEvent` per accepted event."""
        return ValidationResult(accepted=self.accepted.events(), rejected=self.rejected)


@dataclass(frozen=True, slots=True)
class ValidLabel:
    """An accepted delayed label for the event ``id`` (canonical like a prediction)."""

    index: int
    id: str
    label: str | float | bool
    ts: float


@dataclass(frozen=True, slots=True)
class ValidFeedback:
    """An accepted user rating (1-5) of the event ``id``."""

    index: int
    id: str
    user_id: str
    rating: int
    comment: str | None
    ts: float


@dataclass(frozen=True, slots=True)
class ValidationResult(Generic[T]):
    """Accepted items in batch order, and every problem of the rejected ones."""

    accepted: list[T] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def rejected_indices(self) -> list[int]:
        """Indices of the rejected items, ascending and distinct."""
        return sorted({rejection.index for rejection in self.rejected})
