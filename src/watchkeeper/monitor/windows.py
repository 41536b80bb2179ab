"""Window profiles: everything one model · version · segment · time window needs for signals.

A :class:`WindowProfile` folds batches of events (as :class:`EventBatch` columns) into a
:class:`~watchkeeper.profiles.ProfileAccumulator` built on the reference profile's bin edges, a
KLL sketch of latencies (Karnin, Lang & Liberty 2016), counts of events, errors and rejected
events, a mergeable performance accumulator fed by joined labels, the moments of joined business
outcomes and counts of feedback ratings. Window profiles merge associatively, so a day is the
merge of its hours and "all segments" is the merge of the segments, computed at query time.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, NamedTuple

import datasketches
import numpy as np
import numpy.typing as npt
import orjson

from watchkeeper.errors import InputError
from watchkeeper.ingest import ValidColumns
from watchkeeper.monitor.outcomes import OutcomeMoments
from watchkeeper.monitor.performance import (
    ClassificationAccumulator,
    PerformanceAccumulator,
    RegressionAccumulator,
    performance_from_state,
)
from watchkeeper.profiles import DatasetProfile, ProfileAccumulator
from watchkeeper.schema import ColumnKind, TaskType
from watchkeeper.store.records import StorableEvent
from watchkeeper.windowing import WindowLength, describe_window_id

__all__ = [
    "LATENCY_KLL_K",
    "ColumnPlan",
    "EventBatch",
    "WindowKey",
    "WindowProfile",
]

LATENCY_KLL_K = 200
_FORMAT_VERSION = 1
_MAGIC = b"WKWINDOW"
_HEADER = struct.Struct("<8sH")
_PROFILED = frozenset({ColumnKind.NUMERIC, ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN})


class WindowKey(NamedTuple):
    """Identity of one window of one model: version, segment, length and bounds (epoch s).

    ``window_seconds`` is the length's stable id (:attr:`WindowLength.id`: the seconds of a
    fixed length, a negative number per calendar unit); build keys with :meth:`at` or
    :meth:`starting`, which take the bounds from the length.
    """

    version: str
    segment: str
    window_seconds: int
    window_start: float
    window_end: float

    @classmethod
    def at(cls, version: str, segment: str, length: WindowLength, ts: float) -> WindowKey:
        """The key of the ``length`` window holding instant ``ts`` (a window starting exactly
        at ``ts`` holds it)."""
        start, end = length.bounds(ts)
        return cls(version, segment, length.id, start, end)

    @classmethod
    def starting(cls, version: str, segment: str, length: WindowLength, start: float) -> WindowKey:
        """The key of the ``length`` window that starts at ``start``."""
        return cls(version, segment, length.id, float(start), float(length.end(start)))

    @property
    def end(self) -> float:
        """End of the window (exclusive)."""
        return self.window_end

    @property
    def seconds(self) -> float:
        """The real length of this window (a calendar day may have 23 or 25 hours)."""
        return self.window_end - self.window_start

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the length as in the spec (``window``), the bounds and the real
        length in seconds."""
        return {
            "version": self.version,
            "segment": self.segment,
            "window": describe_window_id(self.window_seconds),
            "window_seconds": self.seconds,
            "start": self.window_start,
            "end": self.end,
        }


@dataclass(frozen=True, slots=True)
class ColumnPlan:
    """Which profile column each event field feeds, and the kind of each profiled column.

    ``kinds`` holds the profiled features, the prediction (under ``prediction``) and the class
    probabilities (under the column names of ``proba``); only columns of the reference profile
    are profiled, so that every window shares its bin edges.
    """

    task: TaskType
    kinds: Mapping[str, ColumnKind]
    features: tuple[str, ...]
    prediction: str | None
    proba: Mapping[str, str]
    classes: tuple[str, ...]

    @classmethod
    def build(
        cls,
        *,
        task: TaskType,
        features: Mapping[str, ColumnKind],
        prediction: str | None,
        proba: Mapping[str, str] | None,
        reference: DatasetProfile | None,
    ) -> ColumnPlan:
        """The plan for a model; without a reference nothing is profiled."""
        available = {} if reference is None else reference.kinds
        kinds: dict[str, ColumnKind] = {}
        profiled_features = []
        for name, kind in features.items():
            if kind in _PROFILED and available.get(name) is kind:
                kinds[name] = kind
                profiled_features.append(name)
        prediction_kind = (
            ColumnKind.CATEGORICAL if task is TaskType.CLASSIFICATION else ColumnKind.NUMERIC
        )
        profiled_prediction = None
        if prediction is not None and available.get(prediction) is prediction_kind:
            kinds[prediction] = prediction_kind
            profiled_prediction = prediction
        profiled_proba = {}
        for label, column in (proba or {}).items():
            if available.get(column) is ColumnKind.NUMERIC and column not in kinds:
                kinds[column] = ColumnKind.NUMERIC
                profiled_proba[label] = column
        return cls(
            task=task,
            kinds=kinds,
            features=tuple(profiled_features),
            prediction=profiled_prediction,
            proba=profiled_proba,
            classes=tuple(proba or ()),
        )

    def new_performance(self) -> PerformanceAccumulator:
        """An empty performance accumulator for the task."""
        if self.task is TaskType.CLASSIFICATION:
            return ClassificationAccumulator(classes=self.classes)
        return RegressionAccumulator()


def _float_column(values: list[Any]) -> npt.NDArray[np.float64]:
    # NumPy turns None into NaN when the dtype is float.
    return np.array(values, dtype=np.float64)


def _object_column(values: list[Any]) -> npt.NDArray[np.object_]:
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


@dataclass(frozen=True, slots=True)
class EventBatch:
    """A batch of events as columns, built once and sliced per window."""

    ids: list[str]
    ts: npt.NDArray[np.float64]
    versions: list[str]
    segments: list[str]
    columns: dict[str, npt.NDArray[Any]]
    predictions: list[Any]
    probas: list[Mapping[str, float] | None]
    latency: npt.NDArray[np.float64]
    errors: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, events: Sequence[StorableEvent], plan: ColumnPlan) -> EventBatch:
        """Columns of ``events`` (validated or stored ones); one list comprehension per field,
        no per-value work."""
        feature_kinds = {name: plan.kinds[name] for name in plan.features}
        numeric = [n for n, k in feature_kinds.items() if k is ColumnKind.NUMERIC]
        columns: dict[str, npt.NDArray[Any]] = {}
        feature_maps = [event.features for event in events]
        if numeric:
            if len(numeric) == 1:
                matrix = _float_column([f.get(numeric[0]) for f in feature_maps])[:, None]
            else:
                getter = itemgetter(*numeric)
                rows = [getter(f) for f in feature_maps]
                matrix = np.array(rows, dtype=np.float64).reshape(len(events), len(numeric))
            for position, name in enumerate(numeric):
                columns[name] = np.ascontiguousarray(matrix[:, position])
        for name, kind in feature_kinds.items():
            if kind is not ColumnKind.NUMERIC:
                columns[name] = _object_column([f.get(name) for f in feature_maps])
        return cls._assemble(
            plan,
            columns,
            ids=[event.event_id for event in events],
            ts=[event.ts for event in events],
            versions=[event.version for event in events],
            segments=[event.segment for event in events],
            predictions=[event.prediction for event in events],
            probas=[event.proba for event in events],
            latency=[event.latency_ms for event in events],
            errors=[bool(event.error) for event in events],
        )

    @classmethod
    def of_columns(cls, valid: ValidColumns, plan: ColumnPlan) -> EventBatch:
        """The batch of validated columns (:class:`~watchkeeper.ingest.ValidColumns`): one
        array per profiled column, no per-event work."""
        columns = {
            name: (_float_column if plan.kinds[name] is ColumnKind.NUMERIC else _object_column)(
                valid.features[name]
            )
            for name in plan.features
        }
        return cls._assemble(
            plan,
            columns,
            ids=valid.ids,
            ts=valid.ts,
            versions=valid.versions,
            segments=valid.segments,
            predictions=valid.predictions,
            probas=list(valid.probas),
            latency=valid.latency_ms,
            errors=valid.errors,
        )

    @classmethod
    def _assemble(
        cls,
        plan: ColumnPlan,
        columns: dict[str, npt.NDArray[Any]],
        *,
        ids: list[str],
        ts: list[float],
        versions: list[str],
        segments: list[str],
        predictions: list[Any],
        probas: list[Mapping[str, float] | None],
        latency: list[float | None],
        errors: list[bool],
    ) -> EventBatch:
        """The batch from per-field lists and the profiled feature columns; adds the profiled
        prediction and probability columns."""
        if plan.prediction is not None:
            if plan.kinds[plan.prediction] is ColumnKind.NUMERIC:
                columns[plan.prediction] = _float_column(predictions)
            else:
                columns[plan.prediction] = _object_column(predictions)
        for label, column in plan.proba.items():
            columns[column] = _float_column([p.get(label) if p else None for p in probas])
        return cls(
            ids=ids,
            ts=np.array(ts, dtype=np.float64),
            versions=versions,
            segments=segments,
            columns=columns,
            predictions=predictions,
            probas=probas,
            latency=_float_column(latency),
            errors=np.array(errors, dtype=np.bool_),
        )

    def take(self, indices: npt.NDArray[np.intp]) -> EventBatch:
        """The rows at ``indices``."""
        positions = indices.tolist()
        return EventBatch(
            ids=[self.ids[i] for i in positions],
            ts=self.ts[indices],
            versions=[self.versions[i] for i in positions],
            segments=[self.segments[i] for i in positions],
            columns={name: column[indices] for name, column in self.columns.items()},
            predictions=[self.predictions[i] for i in positions],
            probas=[self.probas[i] for i in positions],
            latency=self.latency[indices],
            errors=self.errors[indices],
        )

    def groups(
        self, lengths: Sequence[WindowLength]
    ) -> list[tuple[WindowKey, npt.NDArray[np.intp]]]:
        """Row indices of each window (of every length) that the batch touches."""
        if not self.ids:
            return []
        pairs = list(zip(self.versions, self.segments, strict=True))
        distinct = {pair: code for code, pair in enumerate(dict.fromkeys(pairs))}
        keys = list(distinct)
        codes = np.array([distinct[pair] for pair in pairs], dtype=np.int64)
        result: list[tuple[WindowKey, npt.NDArray[np.intp]]] = []
        for length in lengths:
            starts = length.starts(self.ts)
            if len(keys) == 1 and starts[0] == starts[-1] and (starts == starts[0]).all():
                version, segment = keys[0]
                key = WindowKey.starting(version, segment, length, float(starts[0]))
                result.append((key, np.arange(len(self.ids))))
                continue
            bucket_starts, buckets = np.unique(starts, return_inverse=True)
            stacked = np.stack([codes, buckets.ravel()], axis=1)
            uniques, inverse = np.unique(stacked, axis=0, return_inverse=True)
            inverse = inverse.ravel()
            order = np.argsort(inverse, kind="stable")
            bounds = np.cumsum(np.bincount(inverse, minlength=len(uniques)))[:-1]
            for (code, bucket), rows in zip(uniques.tolist(), np.split(order, bounds), strict=True):
                version, segment = keys[code]
                start = float(bucket_starts[bucket])
                result.append((WindowKey.starting(version, segment, length, start), rows))
        return result


def _new_latency_sketch() -> Any:
    return datasketches.kll_doubles_sketch(LATENCY_KLL_K)


def _copy_sketch(sketch: Any) -> Any:
    return datasketches.kll_doubles_sketch.deserialize(sketch.serialize())


class WindowProfile:
    """The mergeable state of one window; open windows fold events, closed ones are bytes.

    ``reference_id`` names the reference profile whose bin edges the feature profiles use;
    profiles of different references are never merged.
    """

    __slots__ = (
        "_accumulator",
        "_encoded",
        "_latency",
        "_profile",
        "errors",
        "events",
        "outcomes",
        "over_cap",
        "performance",
        "ratings",
        "reference_id",
        "rejected",
        "revision",
    )

    def __init__(
        self,
        *,
        plan: ColumnPlan,
        reference: DatasetProfile | None,
        reference_id: str | None,
    ) -> None:
        self._accumulator: ProfileAccumulator | None = (
            ProfileAccumulator(kinds=plan.kinds, reference=reference)
            if reference is not None and plan.kinds
            else None
        )
        self._profile: DatasetProfile | None = None
        # A stored profile not decoded yet: its base64 text as read, or its bytes.
        self._encoded: bytes | str | None = None
        self.reference_id = reference_id if self._accumulator is not None else None
        self._latency: Any = _new_latency_sketch()
        self.events = 0
        self.errors = 0
        self.rejected = 0
        self.over_cap = 0
        self.performance: PerformanceAccumulator = plan.new_performance()
        self.ratings = np.zeros(5, dtype=np.int64)
        self.outcomes: dict[str, OutcomeMoments] = {}
        self.revision = 0

    def fold(self, batch: EventBatch) -> None:
        """Fold in a batch of events that all belong to this window."""
        if self._profile is not None or self._encoded is not None:
            raise InputError("a merged or decoded window profile cannot fold events")
        if self._accumulator is not None:
            self._accumulator.update(batch.columns)
        latency = batch.latency[~np.isnan(batch.latency)]
        if latency.size:
            self._latency.update(np.ascontiguousarray(latency))
        self.events += len(batch)
        self.errors += int(np.count_nonzero(batch.errors))
        self.revision += 1

    def fold_rejected(self, count: int, *, over_cap: int = 0) -> None:
        """Count events of this window that were rejected: ``count`` in all, ``over_cap`` of
        them for a version or segment beyond the model's cardinality cap."""
        self.rejected += count
        self.over_cap += over_cap
        self.revision += 1

    def fold_labels(
        self,
        labels: Sequence[object],
        predictions: Sequence[object],
        probas: Sequence[Mapping[str, float] | None],
    ) -> None:
        """Fold in labels joined to predictions made in this window."""
        self.performance.update(labels, predictions, probas)
        self.revision += 1

    def fold_ratings(self, ratings: Sequence[int]) -> None:
        """Count feedback ratings (1..5)."""
        values = np.asarray(ratings, dtype=np.int64)
        if values.size and ((values < 1) | (values > 5)).any():
            raise InputError("ratings must be integers from 1 to 5")
        self.ratings += np.bincount(values - 1, minlength=5)[:5]
        self.revision += 1

    def fold_outcomes(self, values: Mapping[str, Sequence[float]]) -> None:
        """Fold in business outcomes (outcome name → values) of predictions made in this
        window."""
        for name, found in values.items():
            self.outcomes[name] = self.outcomes.get(name, OutcomeMoments()).merge(
                OutcomeMoments.of(found)
            )
        self.revision += 1

    @property
    def latency_count(self) -> int:
        """Events with a latency."""
        return int(self._latency.n)

    def latency_quantiles(self, levels: Sequence[float]) -> list[float | None]:
        """KLL estimates of latency quantiles in milliseconds (None without latencies)."""
        if self._latency.is_empty():
            return [None] * len(levels)
        return [float(value) for value in self._latency.get_quantiles(list(levels))]

    def dataset_profile(self) -> DatasetProfile | None:
        """The feature / output profile (a snapshot), or None when nothing is profiled."""
        if self._accumulator is not None:
            return self._accumulator.profile()
        if self._encoded is not None:
            # Decoded on first use: series of stored signals never pay for the profile.
            self._profile = DatasetProfile.from_bytes(_decoded(self._encoded))
            self._encoded = None
        return self._profile

    def drop_profile(self) -> None:
        """Stop profiling features (the reference changed while the window was open)."""
        self._accumulator = None
        self._profile = None
        self._encoded = None
        self.reference_id = None
        self.revision += 1

    def snapshot(self) -> WindowProfile:
        """A copy as it is now, which later folds do not change (to serialise it unlocked)."""
        twin = self._blank()
        twin._copy_counts_from(self)
        twin._profile = self.dataset_profile()
        twin.reference_id = self.reference_id
        twin.revision = self.revision
        return twin

    @classmethod
    def resume(
        cls,
        data: bytes,
        *,
        plan: ColumnPlan,
        reference: DatasetProfile | None,
        reference_id: str | None,
    ) -> WindowProfile:
        """An open window that goes on from ``data``, a checkpoint (:meth:`to_bytes`) of one.

        A checkpoint profiled on another reference than ``reference_id`` (it changed since)
        resumes without feature profiles, as the open window had dropped them.
        """
        window, _ = cls.from_bytes(data)
        encoded, window._encoded = window._encoded, None
        if encoded is not None and reference is not None and window.reference_id == reference_id:
            profile = DatasetProfile.from_bytes(_decoded(encoded))
            if profile.kinds == dict(plan.kinds):
                window._accumulator = ProfileAccumulator.resume(profile)
                return window
        window.reference_id = None
        return window

    def without_profile(self) -> WindowProfile:
        """A copy without feature profiles (for windows of an older reference)."""
        twin = self._blank()
        twin._copy_counts_from(self)
        return twin

    def _blank(self) -> WindowProfile:
        twin = WindowProfile.__new__(WindowProfile)
        twin._accumulator = None
        twin._profile = None
        twin._encoded = None
        twin.reference_id = None
        twin._latency = _new_latency_sketch()
        twin.events = twin.errors = twin.rejected = twin.over_cap = twin.revision = 0
        twin.ratings = np.zeros(5, dtype=np.int64)
        twin.outcomes = {}
        twin.performance = RegressionAccumulator()
        return twin

    def _copy_counts_from(self, other: WindowProfile) -> None:
        self._latency = _copy_sketch(other._latency)
        self.events, self.errors, self.rejected = other.events, other.errors, other.rejected
        self.over_cap = other.over_cap
        self.ratings = other.ratings.copy()
        self.outcomes = dict(other.outcomes)
        self.performance = performance_from_state(other.performance.to_state())

    def merge(self, other: WindowProfile) -> WindowProfile:
        """A window holding both; neither input changes. Profiles must share a reference."""
        mine, theirs = self.dataset_profile(), other.dataset_profile()
        if mine is not None and theirs is not None and self.reference_id != other.reference_id:
            raise InputError(
                "cannot merge window profiles built on different reference profiles; "
                "strip the older ones with without_profile()"
            )
        merged = self._blank()
        if mine is not None and theirs is not None:
            merged._profile = mine.merge(theirs)
        else:
            merged._profile = mine if mine is not None else theirs
        merged.reference_id = self.reference_id if mine is not None else other.reference_id
        merged._latency = _copy_sketch(self._latency)
        merged._latency.merge(other._latency)
        merged.events = self.events + other.events
        merged.errors = self.errors + other.errors
        merged.rejected = self.rejected + other.rejected
        merged.over_cap = self.over_cap + other.over_cap
        merged.ratings = self.ratings + other.ratings
        merged.outcomes = dict(self.outcomes)
        for name, moments in other.outcomes.items():
            merged.outcomes[name] = merged.outcomes.get(name, OutcomeMoments()).merge(moments)
        merged.performance = self.performance.merge(other.performance)  # type: ignore[arg-type]
        return merged

    def to_bytes(self, *, signals: Mapping[str, float | None] | None = None) -> bytes:
        """Versioned bytes (with the window's computed ``signals``) for the store."""
        profile = None if self._encoded is not None else self.dataset_profile()
        encoded = self._encoded if profile is None else profile.to_bytes()
        if isinstance(encoded, bytes):
            encoded = base64.b64encode(encoded).decode("ascii")
        document = {
            "events": self.events,
            "errors": self.errors,
            "rejected": self.rejected,
            "over_cap": self.over_cap,
            "ratings": self.ratings.tolist(),
            "outcomes": {name: moments.to_state() for name, moments in self.outcomes.items()},
            "reference_id": self.reference_id,
            "profile": encoded,
            "latency": base64.b64encode(self._latency.serialize()).decode("ascii"),
            "performance": self.performance.to_state(),
            "signals": dict(signals or {}),
        }
        return _HEADER.pack(_MAGIC, _FORMAT_VERSION) + orjson.dumps(document)

    @classmethod
    def from_bytes(cls, data: bytes) -> tuple[WindowProfile, dict[str, float | None]]:
        """Read :meth:`to_bytes` output: the window and its stored signals."""
        raw = bytes(data)
        if len(raw) < _HEADER.size or raw[: len(_MAGIC)] != _MAGIC:
            raise InputError("not a watchkeeper window profile (bad magic bytes)")
        _, version = _HEADER.unpack_from(raw)
        if version != _FORMAT_VERSION:
            raise InputError(f"window profile format {version} is not supported")
        try:
            document = orjson.loads(raw[_HEADER.size :])
            window = WindowProfile.__new__(WindowProfile)
            window._accumulator = None
            window._profile = None
            # Kept as text until a profile is needed: a window read for its stored signals (a
            # series, a dashboard page) never decodes its feature profiles.
            encoded = document["profile"]
            if encoded is not None and not isinstance(encoded, str):
                raise TypeError("profile: expected base64 text")
            window._encoded = encoded
            window.reference_id = document["reference_id"]
            window._latency = datasketches.kll_doubles_sketch.deserialize(
                base64.b64decode(document["latency"])
            )
            window.events = int(document["events"])
            window.errors = int(document["errors"])
            window.rejected = int(document["rejected"])
            window.over_cap = int(document.get("over_cap", 0))  # absent before the caps
            window.ratings = np.array(document["ratings"], dtype=np.int64)
            window.outcomes = {  # absent before outcomes
                str(name): OutcomeMoments.from_state(state)
                for name, state in (document.get("outcomes") or {}).items()
            }
            window.performance = performance_from_state(document["performance"])
            window.revision = 0
            signals = dict(document.get("signals") or {})
        except (KeyError, TypeError, ValueError, orjson.JSONDecodeError) as error:
            raise InputError(f"corrupt window profile ({type(error).__name__}: {error})") from None
        return window, signals


def _decoded(encoded: bytes | str) -> bytes:
    """The bytes of a stored profile kept as base64 text (or already bytes)."""
    if isinstance(encoded, bytes):
        return encoded
    try:
        return base64.b64decode(encoded, validate=True)
    except ValueError as error:
        raise InputError(f"corrupt window profile (profile: {error})") from None
