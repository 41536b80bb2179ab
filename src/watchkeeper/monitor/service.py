"""The live monitor: models, ingest, windows, label and feedback joins, signals and queries.

:class:`MonitorService` is the domain layer under the HTTP server (which calls it from a thread
pool). Raw events in the store are the source of truth: an ingested batch is committed in one
store transaction before the call returns, then only its newly inserted events are folded into
in-memory open windows. Before the first event of a window is stored, an empty "open" row is
written for the window, so :meth:`MonitorService.start` knows which windows to recover after a
crash. :meth:`MonitorService.tick` closes due windows (computing their signals and persisting
their profiles); labels and feedback update windows whether open or closed.

Checkpoints bound the recovery. Every ingest call (a batch of events, labels or feedback) gets
the next number of one sequence, stored with its rows (``seq``). :meth:`MonitorService.checkpoint`
stores the open windows together with the number of the last call they hold, and
:meth:`MonitorService.start` resumes from the latest checkpoint and replays only the rows
stored by later calls (without one, it rebuilds the open windows from all their raw events).
An ingest call holds the checkpoint gate (shared) from taking its number until its windows are
updated; a checkpoint takes it exclusively for as long as it copies the windows, so every call
is either wholly in the checkpoint or wholly after it.

Locks: ``_lock`` guards the in-memory state and is never held during store I/O on the ingest
path; ``_persist_lock`` serialises every read-modify-write of a stored window (closing, late
events, labels and feedback for closed windows), and is always taken before ``_lock``; the
checkpoint gate is taken before both.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import math
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from watchkeeper.config import Settings
from watchkeeper.errors import ConfigError, NotFoundError
from watchkeeper.frame import as_dataframe
from watchkeeper.ingest import (
    Rejection,
    validate_feedback,
    validate_labels,
)
from watchkeeper.ingest.decode import DecodedEvents, DecodeJob, decode_events, decode_table
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor.rangereport import range_report_document
from watchkeeper.monitor.signals import Signals, signal_names, window_signals
from watchkeeper.monitor.windows import (
    ColumnPlan,
    EventBatch,
    WindowKey,
    WindowProfile,
    window_start,
)
from watchkeeper.profiles import DatasetProfile, profile_frame
from watchkeeper.schema import ColumnKind, ResolvedSchema, Schema, infer_schema
from watchkeeper.store import (
    Checkpoint,
    CheckpointWindow,
    EncodedEvents,
    EventRecord,
    FeedbackInsertResult,
    FeedbackRecord,
    LabelInsertResult,
    LabelRecord,
    NewFeedback,
    NewLabel,
)
from watchkeeper.store.protocol import MonitorStore
from watchkeeper.store.records import ENCODED_EVENT_VALUES

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["IngestOutcome", "MonitorService"]

# Prometheus' default histogram buckets, in seconds.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
_SIGNAL_CACHE_SIZE = 4096
_DAY = 86_400.0
_PROFILED = frozenset({ColumnKind.NUMERIC, ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN})


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What happened to a batch: accepted (new) items, duplicates, ids and rejections.

    ``duplicates`` repeat what is stored (retries, harmless); ``conflicts`` (labels and
    feedback only) differ from the label or rating already stored for their key, which is
    kept: they are refused, with the index and a reason like ``rejected``.
    """

    accepted: int
    duplicates: int
    ids: list[str]
    rejected: list[Rejection]
    # The stored events (accepted and new), for callers that count them (not on the wire).
    stored: EventBatch | None = None
    conflicts: list[Rejection] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The wire response ``{"accepted", "duplicates", "ids", "rejected"}``, plus
        ``"conflicts"`` for labels and feedback."""
        answer: dict[str, Any] = {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "ids": list(self.ids),
            "rejected": [rejection.to_dict() for rejection in self.rejected],
        }
        if self.conflicts is not None:
            answer["conflicts"] = [conflict.to_dict() for conflict in self.conflicts]
        return answer


@dataclass(frozen=True, slots=True)
class _Model:
    spec: ModelSpec
    model_id: int
    reference: DatasetProfile | None
    reference_id: str | None
    plan: ColumnPlan

    @classmethod
    def of(
        cls,
        spec: ModelSpec,
        model_id: int,
        reference: DatasetProfile | None,
        reference_id: str | None,
    ) -> _Model:
        """A model's state; its plan follows from the spec and the reference."""
        plan = ColumnPlan.build(
            task=spec.task,
            features=spec.features,
            prediction=spec.prediction,
            proba=spec.proba,
            reference=reference,
        )
        return cls(spec, model_id, reference, reference_id, plan)


@dataclass(slots=True)
class _OperationTimes:
    count: int = 0
    total: float = 0.0
    buckets: list[int] = dataclasses.field(default_factory=lambda: [0] * len(_LATENCY_BUCKETS))

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        position = bisect.bisect_left(_LATENCY_BUCKETS, seconds)
        if position < len(self.buckets):
            self.buckets[position] += 1

    def to_dict(self) -> dict[str, Any]:
        cumulative = np.cumsum(self.buckets).tolist()
        return {
            "count": self.count,
            "sum": self.total,
            "buckets": dict(zip(_LATENCY_BUCKETS, cumulative, strict=True)),
        }


@dataclass(slots=True)
class _KnownValues:
    """The versions and segments a model's events have (``""`` not counted): the caps' count."""

    versions: set[str]
    segments: set[str]


@dataclass(frozen=True, slots=True)
class _OverCap:
    """Events of a batch refused by the cardinality caps: their rejections, and per event the
    version whose window counts it (``""`` when the version itself was refused)."""

    rejected: list[Rejection]
    versions: list[str]


@dataclass(frozen=True, slots=True)
class _Joined:
    """A label (or rating) joined to the prediction it belongs to."""

    ts: float
    version: str
    segment: str
    label: Any
    prediction: Any
    proba: Mapping[str, float] | None


class _Gate:
    """Shared for ingest calls, exclusive for a checkpoint; a waiting checkpoint goes first.

    Never taken twice by one thread: a shared acquire behind a waiting checkpoint would wait
    for itself.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._sharing = 0
        self._exclusive = False
        self._waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._changed:
            while self._exclusive or self._waiting:
                self._changed.wait()
            self._sharing += 1
        try:
            yield
        finally:
            with self._changed:
                self._sharing -= 1
                if not self._sharing:
                    self._changed.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._changed:
            self._waiting += 1
            try:
                while self._exclusive or self._sharing:
                    self._changed.wait()
            finally:
                self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._changed:
                self._exclusive = False
                self._changed.notify_all()


class _StoppedError(Exception):
    """Recovery was interrupted by :meth:`MonitorService.close`."""


def _canonical_categories(series: pd.Series) -> pd.Series:
    """Reference categories by their canonical labels, as live events name them (``True`` →
    ``"1"``, ``2.0`` → ``"2"``; :mod:`watchkeeper.labels`)."""
    import pandas as pd

    from watchkeeper.labels import canonical_labels

    return pd.Series(canonical_labels(series), index=series.index, dtype=object)


def _reference_profile(spec: ModelSpec, frame: pd.DataFrame) -> DatasetProfile:
    features = {
        name: kind
        for name, kind in spec.features.items()
        if kind in _PROFILED and name in frame.columns
    }
    outputs: dict[str, ColumnKind] = {}
    if spec.prediction is not None and spec.prediction in frame.columns:
        outputs[spec.prediction] = spec.prediction_kind
    for column in (spec.proba or {}).values():
        if column in frame.columns and column not in features:
            outputs[column] = ColumnKind.NUMERIC
    kinds = features | outputs
    if not kinds:
        raise ConfigError(
            f"reference data of model {spec.name!r} holds none of its features "
            f"({', '.join(list(spec.features)[:10])}); upload the training data with those columns",
            key="reference",
        )
    selected = frame[list(kinds)].copy()
    for name, kind in kinds.items():
        if kind is ColumnKind.CATEGORICAL:
            selected[name] = _canonical_categories(selected[name])
    resolved = ResolvedSchema(
        features=features,
        outputs=outputs,
        target=None,
        target_kind=None,
        prediction=spec.prediction if spec.prediction in outputs else None,
        proba={},
        task=spec.task,
    )
    return profile_frame(selected, resolved)


def _inferred_spec(spec: ModelSpec, frame: pd.DataFrame) -> ModelSpec:
    """``spec`` with its features inferred from the reference data when none were given."""
    if spec.features:
        return spec
    roles = {spec.prediction, *(spec.proba or {}).values()} & {str(c) for c in frame.columns}
    resolved = infer_schema(frame, Schema(exclude=frozenset(c for c in roles if c)))
    return dataclasses.replace(spec, features=dict(resolved.features))


class MonitorService:
    """Live monitoring of registered models over a :class:`~watchkeeper.store.Store`.

    ``clock`` returns the current epoch seconds (tests pass a fake one). Thread-safe: the
    server calls every method from a thread pool.
    """

    def __init__(
        self, store: MonitorStore, *, settings: Settings, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._lock = threading.RLock()
        self._persist_lock = threading.RLock()
        self._marker_lock = threading.Lock()
        self._models: dict[str, _Model] = {}
        self._open: dict[str, dict[WindowKey, WindowProfile]] = {}
        self._marked: dict[str, set[WindowKey]] = {}
        self._pending: dict[str, dict[str, float]] = {}
        self._known: dict[str, _KnownValues] = {}
        self._last_closed: dict[str, float] = {}
        self._counts: dict[str, dict[str, int]] = {}
        self._operations: dict[str, _OperationTimes] = {}
        self._signal_cache: OrderedDict[tuple[Any, ...], Signals] = OrderedDict()
        # Checkpoints and recovery (see the module docstring).
        self._gate = _Gate()
        self._checkpoint_lock = threading.Lock()
        self._seq = 0
        self._seq_known = False
        # Windows ``tick`` has taken out of ``_open`` and not yet stored as closed.
        self._closing: dict[tuple[str, WindowKey], WindowProfile] = {}
        self._progress = (0, 0)
        self._recovered = False
        self._stopping = threading.Event()

    def __repr__(self) -> str:
        return f"MonitorService(store={self._store!r})"

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _timed(self, operation: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            with self._lock:
                self._operations.setdefault(operation, _OperationTimes()).observe(elapsed)

    def _count(self, model: str, **increments: int) -> None:
        with self._lock:
            counts = self._counts.setdefault(model, {})
            for name, value in increments.items():
                counts[name] = counts.get(name, 0) + value

    def _model(self, name: str) -> _Model:
        with self._lock:
            state = self._models.get(name)
        if state is not None:
            return state
        with self._timed("get_model"):
            record = self._store.get_model(name)
        spec = ModelSpec.from_dict(record.config)
        state = _Model.of(spec, record.id, *self._load_reference(record.id))
        with self._lock:
            return self._models.setdefault(name, state)

    def _load_reference(self, model_id: int) -> tuple[DatasetProfile | None, str | None]:
        try:
            with self._timed("get_reference_profile"):
                record = self._store.get_reference_profile(model_id)
        except NotFoundError:
            return None, None
        return DatasetProfile.from_bytes(record.profile), _profile_id(record.profile)

    def _new_window(self, state: _Model) -> WindowProfile:
        return WindowProfile(
            plan=state.plan, reference=state.reference, reference_id=state.reference_id
        )

    def _validation_window(self) -> dict[str, float]:
        return {
            "now": self._clock(),
            "max_age_seconds": self._settings.max_event_age_seconds,
            "max_future_seconds": self._settings.max_event_future_seconds,
        }

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Recover the open windows, then checkpoint them.

        Each window left open in the store resumes from the latest checkpoint, and the events,
        labels and feedback stored after it are replayed; without a checkpoint the windows are
        rebuilt from all their raw events and labels. :meth:`recovery_progress` counts the
        events replayed; :meth:`close` from another thread interrupts the recovery.
        """
        states = [self._model(record.name) for record in self._store.list_models()]
        by_id = {state.model_id: state for state in states}
        with self._timed("open_windows"):
            open_records = self._store.open_windows()
        windows: dict[int, dict[WindowKey, WindowProfile]] = {}
        for row in open_records:
            if row.model_id in by_id:
                key = WindowKey(row.version, row.segment, row.window_seconds, row.window_start)
                windows.setdefault(row.model_id, {})[key] = self._new_window(by_id[row.model_id])
        with self._timed("read_checkpoint"):
            checkpoint = self._store.checkpoint()
        last = self._store.last_seq()
        try:
            if checkpoint is None:
                self._rebuild_all(by_id, windows)
            else:
                self._resume(by_id, windows, checkpoint)
        except _StoppedError:
            return
        now = self._clock()
        with self._lock:
            self._seq = max(self._seq, last)
            self._seq_known = True
            for model_id, recovered in windows.items():
                name = by_id[model_id].spec.name
                self._open.setdefault(name, {}).update(recovered)
                self._marked.setdefault(name, set()).update(recovered)
        for state in states:
            self._recover_pending(state, now)
            self._recover_last_closed(state, now)
        self._recovered = True
        self.checkpoint()

    def recovery_progress(self) -> tuple[int, int]:
        """Events replayed so far by :meth:`start`, and how many it replays in all."""
        return self._progress

    def _advance(self, events: int) -> None:
        if self._stopping.is_set():
            raise _StoppedError
        done, total = self._progress
        self._progress = (done + events, max(total, done + events))

    def _rebuild_all(
        self, by_id: Mapping[int, _Model], windows: dict[int, dict[WindowKey, WindowProfile]]
    ) -> None:
        """Rebuild every open window from all its raw events, labels and feedback."""
        total = sum(
            self._store.count_events(
                model_id,
                start=key.window_start,
                end=key.end,
                version=key.version,
                segment=key.segment,
            )
            for model_id, keys in windows.items()
            for key in keys
        )
        self._progress = (0, total)
        for model_id, keys in windows.items():
            for key in keys:
                keys[key] = self._rebuild(by_id[model_id], key)

    def _resume(
        self,
        by_id: Mapping[int, _Model],
        windows: dict[int, dict[WindowKey, WindowProfile]],
        checkpoint: Checkpoint,
    ) -> None:
        """Resume the open windows from ``checkpoint`` and replay what was stored after it."""
        for saved in checkpoint.windows:
            open_here = windows.get(saved.model_id, {})
            key = WindowKey(saved.version, saved.segment, saved.window_seconds, saved.window_start)
            if key in open_here:
                state = by_id[saved.model_id]
                open_here[key] = WindowProfile.resume(
                    saved.profile,
                    plan=state.plan,
                    reference=state.reference,
                    reference_id=state.reference_id,
                )
        self._progress = (0, self._store.count_events_after(checkpoint.seq))
        self._replay_events(by_id, windows, checkpoint.seq)
        self._replay_labels(by_id, windows, checkpoint.seq)
        self._replay_feedback(by_id, windows, checkpoint.seq)

    def _replay_events(
        self,
        by_id: Mapping[int, _Model],
        windows: Mapping[int, dict[WindowKey, WindowProfile]],
        after: int,
    ) -> None:
        """Fold the events stored after call ``after``, with their labels, into the windows."""
        grace = self._settings.label_grace_seconds
        labels = {
            (label.model_id, label.event_id): label
            for label in self._store.labels_of_events_after(after)
        }
        for records in self._store.iter_events_after(after):
            state = by_id.get(records[0].model_id)
            recovered = windows.get(records[0].model_id)
            if state is not None and recovered is not None:
                batch = EventBatch.build(records, state.plan)
                for key, positions in batch.groups(state.spec.windows):
                    window = recovered.get(key)
                    if window is not None:
                        window.fold(
                            batch if len(positions) == len(batch) else batch.take(positions)
                        )
                found = [
                    (record, label)
                    for record in records
                    if (label := labels.get((record.model_id, record.event_id))) is not None
                ]
                joined = [
                    _joined(record, label.label)
                    for record, label in found
                    # As in _rebuild: a label that came first joins within the grace period.
                    if record.ingested_at - label.received_at <= grace
                ]
                _fold_recovered_labels(state, recovered, joined)
            self._advance(len(records))

    def _replay_labels(
        self,
        by_id: Mapping[int, _Model],
        windows: Mapping[int, dict[WindowKey, WindowProfile]],
        after: int,
    ) -> None:
        """Fold labels stored after call ``after`` for predictions stored up to it (the labels
        of later predictions joined them in :meth:`_replay_events`)."""
        for model_id, labels in _by_model(self._store.labels_after(after)).items():
            state, recovered = by_id.get(model_id), windows.get(model_id)
            if state is None or recovered is None:
                continue
            events = self._store.events_by_ids(model_id, [label.event_id for label in labels])
            joined = [
                _joined(events[label.event_id], label.label)
                for label in labels
                if label.event_id in events and events[label.event_id].seq <= after
            ]
            _fold_recovered_labels(state, recovered, joined)

    def _replay_feedback(
        self,
        by_id: Mapping[int, _Model],
        windows: Mapping[int, dict[WindowKey, WindowProfile]],
        after: int,
    ) -> None:
        """Count feedback stored after call ``after`` as ingest counted it: in the window of
        the rating's time, when the rated prediction was stored before the rating."""
        for model_id, feedback in _by_model(self._store.feedback_after(after)).items():
            state, recovered = by_id.get(model_id), windows.get(model_id)
            if state is None or recovered is None:
                continue
            events = self._store.events_by_ids(model_id, [item.event_id for item in feedback])
            for item in feedback:
                event = events.get(item.event_id)
                if event is None or event.seq >= item.seq:
                    continue
                for size in state.spec.windows:
                    key = WindowKey(event.version, event.segment, size, window_start(item.ts, size))
                    window = recovered.get(key)
                    if window is not None:
                        window.fold_ratings([item.rating])

    def _recover_pending(self, state: _Model, now: float) -> None:
        wall = time.time()
        grace = self._settings.label_grace_seconds
        labels = self._store.labels_received_between(state.model_id, wall - grace, wall + 1.0)
        if not labels:
            return
        found = self._store.events_by_ids(state.model_id, [label.event_id for label in labels])
        waiting = {label.event_id: now for label in labels if label.event_id not in found}
        if waiting:
            with self._lock:
                self._pending.setdefault(state.spec.name, {}).update(waiting)

    def _recover_last_closed(self, state: _Model, now: float) -> None:
        size = state.spec.windows[0]
        rows = self._store.windows(
            state.model_id, window_seconds=size, start=now - 48 * size, end=now
        )
        starts = [row.window_start for row in rows if row.closed]
        if starts:
            with self._lock:
                self._last_closed[state.spec.name] = max(starts)

    def _rebuild(self, state: _Model, key: WindowKey) -> WindowProfile:
        """A window recomputed from the raw events, labels and feedback in the store."""
        window = self._new_window(state)
        grace = self._settings.label_grace_seconds
        for records in self._store.iter_event_batches(
            state.model_id, key.window_start, key.end, version=key.version, segment=key.segment
        ):
            batch = EventBatch.build(records, state.plan)
            window.fold(batch)
            labels = self._store.labels_for(state.model_id, batch.ids)
            joined = [
                (labels[r.event_id].label, r.prediction, r.proba)
                for r in records
                if r.event_id in labels
                # A label that came before its prediction joins only within the grace period.
                and r.ingested_at - labels[r.event_id].received_at <= grace
            ]
            if joined:
                window.fold_labels(*map(list, zip(*joined, strict=True)))
            self._advance(len(records))
        feedback = self._store.feedback_between(state.model_id, key.window_start, key.end)
        if feedback:
            events = self._store.events_by_ids(state.model_id, [f.event_id for f in feedback])
            ratings = [
                f.rating
                for f in feedback
                if f.event_id in events
                and events[f.event_id].version == key.version
                and events[f.event_id].segment == key.segment
            ]
            if ratings:
                window.fold_ratings(ratings)
        return window

    def checkpoint(self) -> int:
        """Store the open windows with the number of the last ingest call they hold.

        Ingest calls wait only while the windows are copied (the calls in progress finish
        first); serialising and storing them happens after. Returns the number of windows
        (none before :meth:`start` has recovered them).
        """
        if not self._recovered:
            # Windows not recovered yet would be stored as if empty.
            return 0
        with self._checkpoint_lock:
            with self._gate.exclusive(), self._lock:
                seq = self._seq
                taken = [
                    (self._models[name].model_id, key, window.snapshot())
                    for name, windows in self._open.items()
                    for key, window in windows.items()
                ]
                taken += [
                    (self._models[name].model_id, key, window.snapshot())
                    for (name, key), window in self._closing.items()
                    if name in self._models
                ]
            windows = [
                CheckpointWindow(
                    model_id=model_id,
                    version=key.version,
                    segment=key.segment,
                    window_seconds=key.window_seconds,
                    window_start=key.window_start,
                    profile=window.to_bytes(),
                    event_count=window.events,
                )
                for model_id, key, window in taken
            ]
            with self._timed("put_checkpoint"):
                self._store.put_checkpoint(seq, windows)
        return len(windows)

    def close(self) -> None:
        """Checkpoint the open windows (they stay open and resume on start); interrupt a
        recovery in progress instead (its windows are incomplete)."""
        if not self._recovered:
            self._stopping.set()
            return
        self.checkpoint()

    def _next_seq(self) -> int:
        """The number of a new ingest call (the caller holds the gate, shared)."""
        if not self._seq_known:
            last = self._store.last_seq()
            with self._lock:
                self._seq = max(self._seq, last)
                self._seq_known = True
        with self._lock:
            self._seq += 1
            return self._seq

    # ------------------------------------------------------------------ models

    def register_model(
        self, spec: ModelSpec, *, reference: pd.DataFrame | None = None
    ) -> ModelSpec:
        """Register ``spec``; features are inferred from ``reference`` when empty.

        Raises ConflictError when the name is taken.
        """
        profile: DatasetProfile | None = None
        if reference is not None:
            frame = as_dataframe(reference, name="reference")
            spec = _inferred_spec(spec, frame)
            profile = _reference_profile(spec, frame)
        elif not spec.features:
            raise ConfigError(
                "features: give the feature kinds, or reference data to infer them from",
                key="features",
            )
        with self._timed("create_model"):
            record = self._store.create_model(spec.name, spec.to_dict())
        reference_id = None
        if profile is not None:
            data = profile.to_bytes()
            with self._timed("put_reference_profile"):
                self._store.put_reference_profile(record.id, data, rows=profile.rows)
            reference_id = _profile_id(data)
        state = _Model.of(spec, record.id, profile, reference_id)
        with self._lock:
            self._models[spec.name] = state
        return spec

    def set_reference(self, model: str, reference: pd.DataFrame) -> dict[str, Any]:
        """Replace the reference data of ``model``; returns a summary of the new profile.

        Windows open at this moment stop profiling features (their bins belong to the old
        reference) and so carry no drift or quality signals; later windows use the new one.
        """
        state = self._model(model)
        frame = as_dataframe(reference, name="reference")
        profile = _reference_profile(state.spec, frame)
        data = profile.to_bytes()
        with self._timed("put_reference_profile"):
            self._store.put_reference_profile(state.model_id, data, rows=profile.rows)
        updated = _Model.of(state.spec, state.model_id, profile, _profile_id(data))
        with self._lock:
            self._models[model] = updated
            for window in self._open.get(model, {}).values():
                window.drop_profile()
        return {
            "model": model,
            "rows": profile.rows,
            "columns": {name: kind.value for name, kind in profile.kinds.items()},
            "reference_id": updated.reference_id,
        }

    def get_model(self, model: str) -> ModelSpec:
        """The spec of ``model``; NotFoundError when it is not registered."""
        return self._model(model).spec

    def list_models(self) -> list[ModelSpec]:
        """Every registered model, by name."""
        with self._timed("list_models"):
            records = self._store.list_models()
        return [ModelSpec.from_dict(record.config) for record in records]

    def delete_model(self, model: str) -> None:
        """Delete ``model`` with its versions, events, labels, feedback and windows."""
        with self._timed("delete_model"):
            self._store.delete_model(model)
        with self._lock:
            for table in (self._models, self._open, self._marked, self._pending, self._last_closed):
                table.pop(model, None)
            self._known.pop(model, None)

    def list_versions(self, model: str) -> list[dict[str, Any]]:
        """Versions of ``model`` seen in events (or recorded), oldest first."""
        state = self._model(model)
        with self._timed("list_versions"):
            records = self._store.list_versions(state.model_id)
        return [
            {"version": r.version, "created_at": r.created_at, "metadata": dict(r.metadata)}
            for r in records
        ]

    # ------------------------------------------------------------------ ingest

    def decode_job(self, model: str) -> DecodeJob:
        """What decoding a batch for ``model`` needs now (NotFoundError for an unknown model)."""
        state = self._model(model)
        return DecodeJob(
            spec=state.spec,
            plan=state.plan,
            max_batch=self._settings.max_batch_events,
            max_body_bytes=self._settings.max_body_bytes,
            codec=self._store.event_codec,
            **self._validation_window(),
        )

    def ingest_events(self, model: str, events: list[Any]) -> IngestOutcome:
        """Validate, store (one transaction) and fold a JSON batch; committed on return."""
        return self._decode_and_ingest(model, lambda job: decode_events(events, job))

    def ingest_table(self, model: str, table: pa.Table) -> IngestOutcome:
        """The columnar path of :meth:`ingest_events` (Arrow or Parquet bodies)."""
        return self._decode_and_ingest(model, lambda job: decode_table(table, job))

    def _decode_and_ingest(
        self, model: str, decode: Callable[[DecodeJob], DecodedEvents]
    ) -> IngestOutcome:
        # Through ingest_decoded like a worker's batch: a reference set while the batch was
        # decoded changes the plan, and the batch is decoded again with the new one.
        while True:
            outcome = self.ingest_decoded(model, decode(self.decode_job(model)))
            if outcome is not None:
                return outcome

    def ingest_decoded(self, model: str, decoded: DecodedEvents) -> IngestOutcome | None:
        """Store and fold a batch decoded elsewhere (:func:`~watchkeeper.ingest.decode.
        decode_body` in an ingest worker); committed on return.

        Returns None, storing nothing, when the model's plan changed since the job was taken
        (a reference was set meanwhile): the caller decodes the batch again.
        """
        state = self._model(model)
        if decoded.plan != state.plan:
            return None
        with self._gate.shared():
            return self._ingest(state, decoded, self._next_seq())

    def _ingest(self, state: _Model, decoded: DecodedEvents, seq: int) -> IngestOutcome:
        name = state.spec.name
        now = decoded.now
        decoded, over_cap = self._within_caps(state, decoded)
        rejected_versions = decoded.rejected_versions
        batch = decoded.batch
        groups = batch.groups(state.spec.windows)
        self._ensure_markers(state, [key for key, _ in groups], now)
        with self._timed("insert_events"):
            inserted = self._store.insert_encoded(state.model_id, decoded.encoded, seq=seq)
        if len(inserted.inserted_ids) < len(batch):
            fresh = set(inserted.inserted_ids)
            keep: list[int] = []
            for position, event_id in enumerate(batch.ids):
                if event_id in fresh:
                    fresh.discard(event_id)
                    keep.append(position)
            batch = batch.take(np.array(keep, dtype=np.intp))
            groups = batch.groups(state.spec.windows)
        parts = [
            (key, batch if len(positions) == len(batch) else batch.take(positions))
            for key, positions in groups
        ]
        late: list[tuple[WindowKey, EventBatch]] = []
        with self._lock:
            windows = self._open.setdefault(name, {})
            marked = self._marked.setdefault(name, set())
            for key, part in parts:
                window = windows.get(key)
                if window is None:
                    if key not in marked:
                        late.append((key, part))
                        continue
                    window = windows[key] = self._new_window(state)
                window.fold(part)
            self._fold_rejected(state, rejected_versions, now)
            self._fold_rejected(state, over_cap.versions, now, over_cap=True)
        if late:
            self._fold_late(state, late)
        self._join_pending(state, batch)
        rejected = len(rejected_versions) + len(over_cap.versions)
        duplicates = len(inserted.duplicate_ids)
        self._count(
            name,
            accepted=len(inserted.inserted_ids),
            duplicates=duplicates,
            rejected=rejected,
            **{
                f"over_cap_{field}": count
                for field, count in Counter(r.field for r in over_cap.rejected).items()
            },
        )
        return IngestOutcome(
            accepted=len(inserted.inserted_ids),
            duplicates=duplicates,
            ids=list(inserted.inserted_ids),
            rejected=list(decoded.rejected),
            stored=batch,
        )

    def _known_values(self, state: _Model) -> _KnownValues:
        """The model's versions and segments, read from the store once per process."""
        name = state.spec.name
        with self._lock:
            known = self._known.get(name)
        if known is not None:
            return known
        with self._timed("list_versions"):
            versions = {record.version for record in self._store.list_versions(state.model_id)}
        with self._timed("window_segments"):
            segments = self._store.window_segments(state.model_id) - {""}
        with self._lock:
            return self._known.setdefault(name, _KnownValues(versions, segments))

    def _within_caps(self, state: _Model, decoded: DecodedEvents) -> tuple[DecodedEvents, _OverCap]:
        """The batch without events that would take the model past ``max_versions_per_model``
        or ``max_segments_per_model``; those are rejected one by one with the reason.

        Decided under ``_lock``, where admitted values become known at once, so concurrent
        batches never pass a cap together. A value admitted for a batch whose insert then fails
        stays counted (the client's retry of that batch needs it) until the next restart.
        """
        batch = decoded.batch
        known = self._known_values(state)
        settings = self._settings
        refused: dict[tuple[str, str], str] = {}
        with self._lock:
            if known.versions.issuperset(batch.versions) and known.segments.issuperset(
                segment for segment in set(batch.segments) if segment
            ):
                return decoded, _OverCap([], [])
            for version, segment in dict.fromkeys(zip(batch.versions, batch.segments, strict=True)):
                new_version = version not in known.versions
                new_segment = bool(segment) and segment not in known.segments
                if new_version and len(known.versions) >= settings.max_versions_per_model:
                    refused[version, segment] = "version"
                elif new_segment and len(known.segments) >= settings.max_segments_per_model:
                    refused[version, segment] = "segment"
                else:
                    known.versions.add(version)
                    if new_segment:
                        known.segments.add(segment)
        if not refused:
            return decoded, _OverCap([], [])
        positions = _batch_positions(len(batch), decoded.rejected)
        keep: list[int] = []
        over_cap = _OverCap([], [])
        for row, pair in enumerate(zip(batch.versions, batch.segments, strict=True)):
            field = refused.get(pair)
            if field is None:
                keep.append(row)
                continue
            over_cap.rejected.append(
                Rejection(positions[row], field, _over_cap_reason(state.spec.name, field, pair))
            )
            over_cap.versions.append("" if field == "version" else pair[0])
        values = decoded.encoded.values
        width = ENCODED_EVENT_VALUES
        encoded = EncodedEvents(
            [v for row in keep for v in values[row * width : (row + 1) * width]]
        )
        rejected = sorted([*decoded.rejected, *over_cap.rejected], key=lambda r: r.index)
        trimmed = dataclasses.replace(
            decoded,
            batch=batch.take(np.array(keep, dtype=np.intp)),
            encoded=encoded,
            rejected=rejected,
        )
        return trimmed, over_cap

    def _ensure_markers(self, state: _Model, keys: Sequence[WindowKey], now: float) -> None:
        """Record in the store that these windows are open, before their first event is stored."""
        name = state.spec.name
        with self._lock:
            marked = self._marked.setdefault(name, set())
            missing = [key for key in keys if key.end > now and key not in marked]
        if not missing:
            return
        with self._marker_lock:
            with self._lock:
                missing = [key for key in missing if key not in marked]
            for key in missing:
                self._put_window(state, key, b"", 0, closed=False)
                with self._lock:
                    marked.add(key)

    def _fold_rejected(
        self, state: _Model, versions: Sequence[str], now: float, *, over_cap: bool = False
    ) -> None:
        """Count rejected events in the windows of ``now`` (caller holds ``_lock``).

        A version no stored event has (nor the caps admitted) is counted under ``""``: invalid
        events must not make windows for versions of their own either.
        """
        if not versions:
            return
        windows = self._open.setdefault(state.spec.name, {})
        known = self._known.get(state.spec.name)
        counts = Counter(
            version if known is None or version in known.versions else "" for version in versions
        )
        for version, count in counts.items():
            for size in state.spec.windows:
                key = WindowKey(version, "", size, window_start(now, size))
                window = windows.get(key)
                if window is None:
                    window = windows[key] = self._new_window(state)
                window.fold_rejected(count, over_cap=count if over_cap else 0)

    def _fold_late(self, state: _Model, late: Sequence[tuple[WindowKey, EventBatch]]) -> None:
        """Fold events of windows already closed into their stored profiles."""
        with self._persist_lock:
            for key, part in late:
                fresh = self._new_window(state)
                fresh.fold(part)
                self._update_stored(state, key, fresh.merge, fresh)
                self._note_closed(state, key)

    def _read_stored(self, state: _Model, key: WindowKey) -> WindowProfile | None:
        with self._timed("read_window"):
            rows = self._store.windows(
                state.model_id,
                window_seconds=key.window_seconds,
                start=key.window_start,
                end=key.window_start + 1e-3,
                version=key.version,
                segment=key.segment,
            )
        if not rows or not rows[0].profile or not rows[0].closed:
            return None
        window, _ = WindowProfile.from_bytes(rows[0].profile)
        return window

    def _update_stored(
        self,
        state: _Model,
        key: WindowKey,
        change: Callable[[WindowProfile], WindowProfile | None],
        empty: WindowProfile | None = None,
    ) -> None:
        """Read-modify-write one closed window (caller holds ``_persist_lock``)."""
        stored = self._read_stored(state, key)
        if stored is None:
            if empty is None:
                stored = self._new_window(state)
                stored.drop_profile()
            else:
                self._persist(state, key, empty, closed=True)
                return
        if empty is not None and stored.reference_id != empty.reference_id:
            stored = stored.without_profile()
            empty.drop_profile()
        updated = change(stored)
        self._persist(state, key, stored if updated is None else updated, closed=True)

    def _persist(
        self, state: _Model, key: WindowKey, window: WindowProfile, *, closed: bool
    ) -> None:
        signals = self._signals_of(state, window, key.window_seconds)
        self._put_window(state, key, window.to_bytes(signals=signals), window.events, closed=closed)

    def _put_window(
        self, state: _Model, key: WindowKey, profile: bytes, events: int, *, closed: bool
    ) -> None:
        """Store one window's row (insert or replace)."""
        with self._timed("upsert_window"):
            self._store.upsert_window(
                state.model_id,
                version=key.version,
                segment=key.segment,
                window_seconds=key.window_seconds,
                window_start=key.window_start,
                profile=profile,
                event_count=events,
                closed=closed,
            )

    def _signals_of(self, state: _Model, window: WindowProfile, window_seconds: float) -> Signals:
        current = window if window.reference_id == state.reference_id else window.without_profile()
        return window_signals(
            current, plan=state.plan, reference=state.reference, window_seconds=window_seconds
        )

    # ------------------------------------------------------------------ labels and feedback

    def _join_pending(self, state: _Model, batch: EventBatch) -> None:
        """Join labels that arrived before these (newly stored) predictions."""
        name = state.spec.name
        with self._lock:
            pending = self._pending.get(name)
            if not pending:
                return
            matched = [
                event_id for event_id in batch.ids if pending.pop(event_id, None) is not None
            ]
        if not matched:
            return
        with self._timed("labels_for"):
            labels = self._store.labels_for(state.model_id, matched)
        position = {event_id: index for index, event_id in enumerate(batch.ids)}
        joined = [
            _Joined(
                ts=float(batch.ts[position[event_id]]),
                version=batch.versions[position[event_id]],
                segment=batch.segments[position[event_id]],
                label=label.label,
                prediction=batch.predictions[position[event_id]],
                proba=batch.probas[position[event_id]],
            )
            for event_id, label in labels.items()
        ]
        self._fold_joined(state, joined)

    def _fold_joined(self, state: _Model, joined: Sequence[_Joined]) -> None:
        """Fold labels into the windows of their predictions, open or closed."""
        groups: dict[WindowKey, list[_Joined]] = {}
        for item in joined:
            for size in state.spec.windows:
                key = WindowKey(item.version, item.segment, size, window_start(item.ts, size))
                groups.setdefault(key, []).append(item)
        with self._persist_lock:
            closed: list[tuple[WindowKey, list[_Joined]]] = []
            with self._lock:
                windows = self._open.get(state.spec.name, {})
                for key, items in groups.items():
                    window = windows.get(key)
                    if window is None:
                        closed.append((key, items))
                    else:
                        window.fold_labels(*_label_columns(items))
            for key, items in closed:

                def add(window: WindowProfile, items: list[_Joined] = items) -> None:
                    window.fold_labels(*_label_columns(items))

                self._update_stored(state, key, add)

    def ingest_labels(self, model: str, labels: list[Any]) -> IngestOutcome:
        """Store delayed labels and update the performance of their predictions' windows."""
        with self._gate.shared():
            return self._ingest_labels(model, labels, self._next_seq())

    def _ingest_labels(self, model: str, labels: list[Any], seq: int) -> IngestOutcome:
        state = self._model(model)
        window = self._validation_window()
        result = validate_labels(
            labels, state.spec, max_batch=self._settings.max_batch_events, **window
        )
        rows = [NewLabel(label.id, label.label, label.ts) for label in result.accepted]
        with self._timed("insert_labels"):
            inserted = self._store.insert_labels(state.model_id, rows, seq=seq)
        unmatched = set(inserted.unmatched_ids)
        matched = [event_id for event_id in inserted.inserted_ids if event_id not in unmatched]
        if unmatched:
            with self._lock:
                pending = self._pending.setdefault(model, {})
                for event_id in unmatched:
                    pending[event_id] = window["now"]
        if matched:
            values: dict[str, Any] = {}
            for label in result.accepted:
                values.setdefault(label.id, label.label)
            with self._timed("events_by_ids"):
                events = self._store.events_by_ids(state.model_id, matched)
            self._fold_joined(
                state, [_joined(events[i], values[i]) for i in matched if i in events]
            )
        conflicts = [
            Rejection(
                result.accepted[conflict.position].index,
                "label",
                f"event {conflict.event_id!r} is already labelled {conflict.kept!r}; the first "
                "label of an event is kept and a different later one is refused",
            )
            for conflict in inserted.conflicts
        ]
        return self._outcome(model, "labels", inserted, result.rejected, conflicts)

    def _outcome(
        self,
        model: str,
        kind: str,
        inserted: LabelInsertResult | FeedbackInsertResult,
        rejected: Sequence[Rejection],
        conflicts: list[Rejection],
    ) -> IngestOutcome:
        """Count a labels or feedback batch and answer it in the wire form."""
        self._count(
            model,
            **{
                f"{kind}_accepted": len(inserted.inserted_ids),
                f"{kind}_duplicates": len(inserted.duplicate_ids),
                f"{kind}_rejected": len({rejection.index for rejection in rejected}),
                f"{kind}_conflicts": len(conflicts),
            },
        )
        return IngestOutcome(
            accepted=len(inserted.inserted_ids),
            duplicates=len(inserted.duplicate_ids),
            ids=list(inserted.inserted_ids),
            rejected=list(rejected),
            conflicts=conflicts,
        )

    def ingest_feedback(self, model: str, feedback: list[Any]) -> IngestOutcome:
        """Store user ratings and count them in the window of the rating's time.

        The window's version and segment are those of the rated prediction; ratings of unknown
        predictions are stored but not counted in any window.
        """
        with self._gate.shared():
            return self._ingest_feedback(model, feedback, self._next_seq())

    def _ingest_feedback(self, model: str, feedback: list[Any], seq: int) -> IngestOutcome:
        state = self._model(model)
        window = self._validation_window()
        now = window["now"]
        result = validate_feedback(
            feedback, state.spec, max_batch=self._settings.max_batch_events, **window
        )
        rows = [NewFeedback(f.id, f.user_id, f.rating, f.ts, f.comment) for f in result.accepted]
        with self._timed("insert_feedback"):
            inserted = self._store.insert_feedback(state.model_id, rows, seq=seq)
        stored = [result.accepted[position] for position in inserted.stored_positions]
        if stored:
            with self._timed("events_by_ids"):
                events = self._store.events_by_ids(state.model_id, [item.id for item in stored])
            groups: dict[WindowKey, list[int]] = {}
            for item in stored:
                event = events.get(item.id)
                if event is None:
                    continue
                for size in state.spec.windows:
                    key = WindowKey(event.version, event.segment, size, window_start(item.ts, size))
                    groups.setdefault(key, []).append(item.rating)
            self._fold_ratings(state, groups, now)
        conflicts = [
            Rejection(
                result.accepted[conflict.position].index,
                "rating",
                f"user {result.accepted[conflict.position].user_id!r} already rated event "
                f"{conflict.event_id!r} {conflict.kept}; a user's first rating of an event is "
                "kept and a different later one is refused",
            )
            for conflict in inserted.conflicts
        ]
        return self._outcome(model, "feedback", inserted, result.rejected, conflicts)

    def _fold_ratings(
        self, state: _Model, groups: Mapping[WindowKey, list[int]], now: float
    ) -> None:
        self._ensure_markers(state, list(groups), now)
        with self._persist_lock:
            closed: list[tuple[WindowKey, list[int]]] = []
            with self._lock:
                windows = self._open.setdefault(state.spec.name, {})
                marked = self._marked.setdefault(state.spec.name, set())
                for key, ratings in groups.items():
                    window = windows.get(key)
                    if window is None and key in marked:
                        window = windows[key] = self._new_window(state)
                    if window is None:
                        closed.append((key, ratings))
                    else:
                        window.fold_ratings(ratings)
            for key, ratings in closed:

                def add(window: WindowProfile, ratings: list[int] = ratings) -> None:
                    window.fold_ratings(ratings)

                self._update_stored(state, key, add)

    # ------------------------------------------------------------------ windows

    def tick(self, now: float | None = None) -> list[dict[str, Any]]:
        """Close every window whose end has passed: compute its signals and persist it."""
        now = self._clock() if now is None else now
        closed: list[dict[str, Any]] = []
        with self._persist_lock:
            due: list[tuple[str, WindowKey, WindowProfile]] = []
            with self._lock:
                for name in list(self._open.keys() | self._marked.keys()):
                    windows = self._open.get(name, {})
                    marked = self._marked.get(name, set())
                    for key in [k for k in windows.keys() | marked if k.end <= now]:
                        window = windows.pop(key, None)
                        marked.discard(key)
                        if window is not None:
                            # A checkpoint meanwhile must still hold it (see checkpoint).
                            self._closing[name, key] = window
                        due.append((name, key, window if window is not None else None))  # type: ignore[arg-type]
                self._expire_pending(now)
            for position, (name, key, maybe_window) in enumerate(due):
                state = self._models[name]
                window = maybe_window if maybe_window is not None else self._new_window(state)
                try:
                    self._persist(state, key, window, closed=True)
                except BaseException:
                    self._reopen(due[position:])
                    raise
                with self._lock:
                    self._closing.pop((name, key), None)
                closed.append({"model": name, **key.to_dict(), "count": window.events})
                self._note_closed(state, key)
        return closed

    def _note_closed(self, state: _Model, key: WindowKey) -> None:
        """Make a closed window of the smallest size the latest one if it is newer.

        Both closing paths come here — ``tick`` and events arriving for a window that had
        already closed (a replay, or a client's backlog after an outage) — so that
        ``latest_samples`` (alerts, /metrics) sees every closed window.
        """
        if key.window_seconds != state.spec.windows[0]:
            return
        name = state.spec.name
        with self._lock:
            previous = self._last_closed.get(name, -math.inf)
            self._last_closed[name] = max(previous, key.window_start)

    def _reopen(self, due: Sequence[tuple[str, WindowKey, WindowProfile | None]]) -> None:
        with self._lock:
            for name, key, window in due:
                self._closing.pop((name, key), None)
                if window is not None:
                    self._open.setdefault(name, {})[key] = window
                self._marked.setdefault(name, set()).add(key)

    def _expire_pending(self, now: float) -> None:
        cutoff = now - self._settings.label_grace_seconds
        for pending in self._pending.values():
            for event_id in [e for e, received in pending.items() if received < cutoff]:
                del pending[event_id]

    def apply_retention(self, now: float | None = None) -> dict[str, dict[str, int]]:
        """Apply retention: raw data past ``retention_days``, windows past their own limit."""
        now = self._clock() if now is None else now
        outcome: dict[str, dict[str, int]] = {}
        for spec in self.list_models():
            state = self._model(spec.name)
            with self._timed("apply_retention"):
                raw = self._store.delete_events_before(
                    state.model_id, now - spec.retention_days * _DAY
                )
                windows = self._store.delete_windows_before(
                    state.model_id, now - spec.profile_retention_days * _DAY
                )
            outcome[spec.name] = {
                "events": raw.events,
                "labels": raw.labels,
                "feedback": raw.feedback,
                "windows": windows,
            }
        return outcome

    # ------------------------------------------------------------------ queries

    def signal_names(self, model: str) -> list[str]:
        """Every signal name ``model``'s windows can carry."""
        return signal_names(self._model(model).plan)

    def signal_catalog(self) -> dict[str, list[str]]:
        """Every registered model (in the store, whoever registered it) → its signal names."""
        return {spec.name: self.signal_names(spec.name) for spec in self.list_models()}

    def _window_size(self, state: _Model, window_seconds: int | None) -> int:
        if window_seconds is None:
            return state.spec.windows[0]
        if window_seconds not in state.spec.windows:
            raise ConfigError(
                f"window_seconds: model {state.spec.name!r} keeps windows of "
                f"{list(state.spec.windows)} s, not {window_seconds}",
                key="window_seconds",
            )
        return window_seconds

    def _collect(
        self,
        state: _Model,
        size: int,
        start: float,
        end: float,
        version: str | None,
        segment: str | None,
    ) -> dict[float, list[tuple[WindowKey, WindowProfile, Any, Signals | None]]]:
        """Windows of ``size`` starting in ``[start, end)``: stored closed ones and open ones."""
        with self._timed("read_windows"):
            rows = self._store.windows(
                state.model_id,
                window_seconds=size,
                start=start,
                end=end,
                version=version,
                segment=segment,
            )
        found: dict[float, list[tuple[WindowKey, WindowProfile, Any, Signals | None]]] = {}
        for row in rows:
            if not row.closed or not row.profile:
                continue
            window, signals = WindowProfile.from_bytes(row.profile)
            key = WindowKey(row.version, row.segment, row.window_seconds, row.window_start)
            found.setdefault(key.window_start, []).append((key, window, row.updated_at, signals))
        with self._lock:
            for key, window in self._open.get(state.spec.name, {}).items():
                if (
                    key.window_seconds == size
                    and start <= key.window_start < end
                    and (version is None or key.version == version)
                    and (segment is None or key.segment == segment)
                ):
                    copy = window.merge(
                        WindowProfile(plan=state.plan, reference=None, reference_id=None)
                    )
                    found.setdefault(key.window_start, []).append(
                        (key, copy, ("open", id(window), window.revision), None)
                    )
        return found

    def _group_signals(
        self,
        state: _Model,
        size: int,
        entries: Sequence[tuple[WindowKey, WindowProfile, Any, Signals | None]],
    ) -> tuple[Signals, int]:
        if len(entries) == 1 and entries[0][3]:
            return dict(entries[0][3]), entries[0][1].events
        cache_key = (
            state.spec.name,
            state.reference_id,
            size,
            tuple(sorted((key, token) for key, _, token, _ in entries)),
        )
        merged = self._merge([window for _, window, _, _ in entries], state)
        with self._lock:
            cached = self._signal_cache.get(cache_key)
            if cached is not None:
                self._signal_cache.move_to_end(cache_key)
                return cached, merged.events
        signals = self._signals_of(state, merged, size)
        with self._lock:
            self._signal_cache[cache_key] = signals
            if len(self._signal_cache) > _SIGNAL_CACHE_SIZE:
                self._signal_cache.popitem(last=False)
        return signals, merged.events

    @staticmethod
    def _merge(windows: Sequence[WindowProfile], state: _Model) -> WindowProfile:
        usable = [
            w if w.reference_id == state.reference_id else w.without_profile() for w in windows
        ]
        merged = usable[0]
        for window in usable[1:]:
            merged = merged.merge(window)
        return merged

    def series(
        self,
        model: str,
        signal: str,
        *,
        version: str | None = None,
        segment: str | None = None,
        window_seconds: int | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> list[dict[str, Any]]:
        """One point per window of ``signal``; versions / segments not given are merged."""
        state = self._model(model)
        if signal not in signal_names(state.plan):
            raise NotFoundError(
                f"model {model!r} has no signal {signal!r}; see signal_names()",
                kind="signal",
                name=signal,
            )
        size = self._window_size(state, window_seconds)
        now = self._clock()
        end = now + size if end is None else end
        start = end - 48 * size if start is None else start
        found = self._collect(state, size, window_start(start, size), end, version, segment)
        points = []
        for begin in sorted(found):
            signals, count = self._group_signals(state, size, found[begin])
            points.append(
                {
                    "start": begin,
                    "end": begin + size,
                    "value": signals.get(signal),
                    "version": version,
                    "segment": segment,
                    "count": count,
                }
            )
        return points

    def range_report(
        self,
        model: str,
        *,
        start: float,
        end: float,
        version: str | None = None,
        segment: str | None = None,
    ) -> dict[str, Any]:
        """A ``watchkeeper.report/v1`` document of every window (smallest size) in the range."""
        state = self._model(model)
        if not end > start:
            raise ConfigError(f"end must be after start, got start={start}, end={end}", key="end")
        size = state.spec.windows[0]
        begin = window_start(start, size)
        found = self._collect(state, size, begin, end, version, segment)
        windows = [window for entries in found.values() for _, window, _, _ in entries]
        merged = self._merge(windows, state) if windows else self._new_window(state)
        info = {
            "name": f"{model} [{begin:.0f}, {end:.0f})",
            "model": model,
            "start": begin,
            "end": end,
            "window_seconds": size,
            "windows": len(windows),
            "version": version,
            "segment": segment,
        }
        return range_report_document(
            spec=state.spec, plan=state.plan, reference=state.reference, window=merged, info=info
        )

    def latest_samples(self) -> list[dict[str, Any]]:
        """Signals of the latest closed window (smallest size) of each model, per version."""
        with self._lock:
            latest = dict(self._last_closed)
        samples: list[dict[str, Any]] = []
        for name, begin in sorted(latest.items()):
            try:
                state = self._model(name)
            except NotFoundError:
                continue
            size = state.spec.windows[0]
            found = self._collect(state, size, begin, begin + size, None, None).get(begin, [])
            by_version: dict[str, list[Any]] = {}
            for entry in found:
                by_version.setdefault(entry[0].version, []).append(entry)
            for version, entries in sorted(by_version.items()):
                signals, _ = self._group_signals(state, size, entries)
                for signal, value in signals.items():
                    if value is None:
                        continue
                    labels = {"model": name, "version": version, "segment": "*", "signal": signal}
                    parts = signal.split(".")
                    if len(parts) == 3 and parts[0] in ("drift", "quality"):
                        labels["feature"] = parts[1]
                    samples.append({"labels": labels, "value": value, "timestamp": begin + size})
        return samples

    def counters(self) -> dict[str, Any]:
        """Ingest totals per model and store operation latencies (cumulative histograms)."""
        with self._lock:
            return {
                "models": {name: dict(counts) for name, counts in self._counts.items()},
                "store_operations": {
                    name: times.to_dict() for name, times in self._operations.items()
                },
                "open_windows": {name: len(windows) for name, windows in self._open.items()},
            }

    def system_signals(self) -> dict[str, float]:
        """Process CPU and memory (psutil), and GPU use when pynvml is importable."""
        import psutil

        process = psutil.Process()
        memory = psutil.virtual_memory()
        signals = {
            "process_cpu_percent": float(process.cpu_percent(interval=None)),
            "process_rss_bytes": float(process.memory_info().rss),
            "process_threads": float(process.num_threads()),
            "system_memory_total_bytes": float(memory.total),
            "system_memory_available_bytes": float(memory.available),
            "system_memory_percent": float(memory.percent),
            "system_cpu_percent": float(psutil.cpu_percent(interval=None)),
        }
        signals |= _gpu_signals()
        return signals


def _gpu_signals() -> dict[str, float]:
    try:
        import pynvml
    except ImportError:
        return {}
    try:
        pynvml.nvmlInit()
    except Exception:
        return {}
    signals: dict[str, float] = {}
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            use = pynvml.nvmlDeviceGetUtilizationRates(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            signals[f"gpu_{index}_utilization_percent"] = float(use.gpu)
            signals[f"gpu_{index}_memory_used_bytes"] = float(memory.used)
    except Exception:
        return signals
    finally:
        pynvml.nvmlShutdown()
    return signals


def _batch_positions(accepted: int, rejected: Sequence[Rejection]) -> list[int]:
    """Each accepted event's position in the batch as sent: decoding keeps the batch order and
    every event is either accepted or named by a rejection."""
    refused = {rejection.index for rejection in rejected}
    positions = [p for p in range(accepted + len(refused)) if p not in refused]
    return positions[:accepted]


def _over_cap_reason(model: str, field: str, pair: tuple[str, str]) -> str:
    """Why an event was refused by a cardinality cap, and what to do about it."""
    version, segment = pair
    if field == "version":
        setting, kind, value = "max_versions_per_model", "versions", version
    else:
        setting, kind, value = "max_segments_per_model", "segment value combinations", segment
    return (
        f"{field} {value!r} would exceed the cap of model "
        f"{model!r} on distinct {kind} ({setting}, env WATCHKEEPER_{setting.upper()}); raise "
        f"the cap if it is real, or keep per-request values out of the {field}"
    )


def _profile_id(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _joined(event: EventRecord, label: Any) -> _Joined:
    return _Joined(
        ts=event.ts,
        version=event.version,
        segment=event.segment,
        label=label,
        prediction=event.prediction,
        proba=event.proba,
    )


def _label_columns(
    items: Sequence[_Joined],
) -> tuple[list[Any], list[Any], list[Mapping[str, float] | None]]:
    return (
        [item.label for item in items],
        [item.prediction for item in items],
        [item.proba for item in items],
    )


def _by_model(rows: Sequence[LabelRecord] | Sequence[FeedbackRecord]) -> dict[int, list[Any]]:
    """Rows grouped by model, in their order."""
    groups: dict[int, list[Any]] = {}
    for row in rows:
        groups.setdefault(row.model_id, []).append(row)
    return groups


def _fold_recovered_labels(
    state: _Model, windows: Mapping[WindowKey, WindowProfile], joined: Sequence[_Joined]
) -> None:
    """Fold labels into the recovered windows of their predictions (closed ones have them)."""
    groups: dict[WindowKey, list[_Joined]] = {}
    for item in joined:
        for size in state.spec.windows:
            key = WindowKey(item.version, item.segment, size, window_start(item.ts, size))
            if key in windows:
                groups.setdefault(key, []).append(item)
    for key, items in groups.items():
        windows[key].fold_labels(*_label_columns(items))
