"""Labels and feedback: stored, then joined into the windows of their predictions.

A label joins by event id into every window (one per size) of its prediction, open or closed;
a label stored before its prediction waits in ``pending`` and joins when the prediction arrives
(within ``label_grace_seconds``). A rating is counted in the window of the rating's time, with
the version and segment of the rated prediction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from watchkeeper.ingest import Rejection
from watchkeeper.ingest.feedback import validate_feedback, validate_labels
from watchkeeper.monitor.closing import note_changed
from watchkeeper.monitor.outcome import IngestOutcome
from watchkeeper.monitor.state import ModelState, MonitorState
from watchkeeper.monitor.stored import ensure_markers, update_stored
from watchkeeper.monitor.windows import EventBatch, WindowKey, WindowProfile
from watchkeeper.store.records import (
    EventRecord,
    FeedbackInsertResult,
    LabelInsertResult,
    NewFeedback,
    NewLabel,
)

__all__ = [
    "Joined",
    "ingest_feedback",
    "ingest_labels",
    "join_pending",
    "joined",
    "label_columns",
]


@dataclass(frozen=True, slots=True)
class Joined:
    """A label (or rating) joined to the prediction it belongs to."""

    ts: float
    version: str
    segment: str
    label: Any
    prediction: Any
    proba: Mapping[str, float] | None


def joined(event: EventRecord, label: Any) -> Joined:
    """``label`` joined to the stored prediction ``event``."""
    return Joined(
        ts=event.ts,
        version=event.version,
        segment=event.segment,
        label=label,
        prediction=event.prediction,
        proba=event.proba,
    )


def label_columns(
    items: Sequence[Joined],
) -> tuple[list[Any], list[Any], list[Mapping[str, float] | None]]:
    """The labels, predictions and probabilities of ``items``, as ``fold_labels`` takes them."""
    return (
        [item.label for item in items],
        [item.prediction for item in items],
        [item.proba for item in items],
    )


def join_pending(shared: MonitorState, state: ModelState, batch: EventBatch) -> None:
    """Join labels that arrived before these (newly stored) predictions."""
    name = state.spec.name
    with shared.lock:
        pending = shared.pending.get(name)
        if not pending:
            return
        matched = [event_id for event_id in batch.ids if pending.pop(event_id, None) is not None]
    if not matched:
        return
    with shared.timed("labels_for"):
        labels = shared.store.labels_for(state.model_id, matched)
    position = {event_id: index for index, event_id in enumerate(batch.ids)}
    found = [
        Joined(
            ts=float(batch.ts[position[event_id]]),
            version=batch.versions[position[event_id]],
            segment=batch.segments[position[event_id]],
            label=label.label,
            prediction=batch.predictions[position[event_id]],
            proba=batch.probas[position[event_id]],
        )
        for event_id, label in labels.items()
    ]
    _fold_joined(shared, state, found)


def _fold_joined(shared: MonitorState, state: ModelState, items: Sequence[Joined]) -> None:
    """Fold labels into the windows of their predictions, open or closed."""
    groups: dict[WindowKey, list[Joined]] = {}
    for item in items:
        for size in state.spec.windows:
            key = WindowKey.at(item.version, item.segment, size, item.ts)
            groups.setdefault(key, []).append(item)
    with shared.persist_lock:
        closed: list[tuple[WindowKey, list[Joined]]] = []
        with shared.lock:
            windows = shared.open.get(state.spec.name, {})
            for key, group in groups.items():
                window = windows.get(key)
                if window is None:
                    closed.append((key, group))
                else:
                    window.fold_labels(*label_columns(group))
        for key, group in closed:

            def add(window: WindowProfile, group: list[Joined] = group) -> None:
                window.fold_labels(*label_columns(group))

            update_stored(shared, state, key, add)
            note_changed(shared, state, key)


def ingest_labels(shared: MonitorState, model: str, labels: list[Any], seq: int) -> IngestOutcome:
    """Store delayed labels (as call ``seq``) and update the performance of their predictions'
    windows."""
    state = shared.model(model)
    window = shared.validation_window()
    result = validate_labels(
        labels, state.spec, max_batch=shared.settings.max_batch_events, **window
    )
    rows = [NewLabel(label.id, label.label, label.ts) for label in result.accepted]
    with shared.timed("insert_labels"):
        inserted = shared.store.insert_labels(state.model_id, rows, seq=seq)
    unmatched = set(inserted.unmatched_ids)
    matched = [event_id for event_id in inserted.inserted_ids if event_id not in unmatched]
    if unmatched:
        with shared.lock:
            pending = shared.pending.setdefault(model, {})
            for event_id in unmatched:
                pending[event_id] = window["now"]
    if matched:
        values: dict[str, Any] = {}
        for label in result.accepted:
            values.setdefault(label.id, label.label)
        with shared.timed("events_by_ids"):
            events = shared.store.events_by_ids(state.model_id, matched)
        _fold_joined(shared, state, [joined(events[i], values[i]) for i in matched if i in events])
    conflicts = [
        Rejection(
            result.accepted[conflict.position].index,
            "label",
            f"event {conflict.event_id!r} is already labelled {conflict.kept!r}; the first "
            "label of an event is kept and a different later one is refused",
        )
        for conflict in inserted.conflicts
    ]
    return _outcome(shared, model, "labels", inserted, result.rejected, conflicts)


def ingest_feedback(
    shared: MonitorState, model: str, feedback: list[Any], seq: int
) -> IngestOutcome:
    """Store user ratings (as call ``seq``) and count them in the window of the rating's time.

    The window's version and segment are those of the rated prediction; ratings of unknown
    predictions are stored but not counted in any window.
    """
    state = shared.model(model)
    window = shared.validation_window()
    now = window["now"]
    result = validate_feedback(
        feedback, state.spec, max_batch=shared.settings.max_batch_events, **window
    )
    rows = [NewFeedback(f.id, f.user_id, f.rating, f.ts, f.comment) for f in result.accepted]
    with shared.timed("insert_feedback"):
        inserted = shared.store.insert_feedback(state.model_id, rows, seq=seq)
    stored = [result.accepted[position] for position in inserted.stored_positions]
    if stored:
        with shared.timed("events_by_ids"):
            events = shared.store.events_by_ids(state.model_id, [item.id for item in stored])
        groups: dict[WindowKey, list[int]] = {}
        for item in stored:
            event = events.get(item.id)
            if event is None:
                continue
            for size in state.spec.windows:
                key = WindowKey.at(event.version, event.segment, size, item.ts)
                groups.setdefault(key, []).append(item.rating)
        _fold_ratings(shared, state, groups, now)
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
    return _outcome(shared, model, "feedback", inserted, result.rejected, conflicts)


def _fold_ratings(
    shared: MonitorState, state: ModelState, groups: Mapping[WindowKey, list[int]], now: float
) -> None:
    ensure_markers(shared, state, list(groups), now)
    with shared.persist_lock:
        closed: list[tuple[WindowKey, list[int]]] = []
        with shared.lock:
            windows = shared.open.setdefault(state.spec.name, {})
            marked = shared.marked.setdefault(state.spec.name, set())
            for key, ratings in groups.items():
                window = windows.get(key)
                if window is None and key in marked:
                    window = windows[key] = state.new_window()
                if window is None:
                    closed.append((key, ratings))
                else:
                    window.fold_ratings(ratings)
        for key, ratings in closed:

            def add(window: WindowProfile, ratings: list[int] = ratings) -> None:
                window.fold_ratings(ratings)

            update_stored(shared, state, key, add)
            note_changed(shared, state, key)


def _outcome(
    shared: MonitorState,
    model: str,
    kind: str,
    inserted: LabelInsertResult | FeedbackInsertResult,
    rejected: Sequence[Rejection],
    conflicts: list[Rejection],
) -> IngestOutcome:
    """Count a labels or feedback batch and answer it in the wire form."""
    shared.count(
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
