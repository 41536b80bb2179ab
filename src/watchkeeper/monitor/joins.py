"""Labels, feedback and business outcomes: stored, then joined into the windows of their
predictions.

A label joins by event id into every window (one per size) of its prediction, open or closed;
a label stored before its prediction waits in ``pending`` and joins when the prediction arrives
(within ``label_grace_seconds``). A rating is counted in the window of the rating's time, with
the version and segment of the rated prediction. An outcome joins like a label, into the
windows of its prediction (its version, segment and event time), but only once the prediction
is stored: an outcome of an unknown prediction is refused, not kept waiting. An outcome sent
for a unit belongs to the unit's latest stored prediction at or before the outcome's time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from watchkeeper.ingest import Rejection
from watchkeeper.ingest.columns import ValidOutcome
from watchkeeper.ingest.feedback import validate_feedback, validate_labels, validate_outcomes
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
    NewOutcome,
    OutcomeInsertResult,
)

__all__ = [
    "Joined",
    "ingest_feedback",
    "ingest_labels",
    "ingest_outcomes",
    "join_pending",
    "joined",
    "label_columns",
]


G = TypeVar("G")


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

    def fold(window: WindowProfile, group: list[Joined]) -> None:
        window.fold_labels(*label_columns(group))

    _fold_into_predictions_windows(shared, state, groups, fold)


def _fold_into_predictions_windows(
    shared: MonitorState,
    state: ModelState,
    groups: Mapping[WindowKey, G],
    fold: Callable[[WindowProfile, G], None],
) -> None:
    """Fold each group into its window (one of its predictions'), open or closed."""
    with shared.persist_lock:
        closed: list[tuple[WindowKey, G]] = []
        with shared.lock:
            windows = shared.open.get(state.spec.name, {})
            for key, group in groups.items():
                window = windows.get(key)
                if window is None:
                    closed.append((key, group))
                else:
                    fold(window, group)
        for key, group in closed:

            def add(window: WindowProfile, group: G = group) -> None:
                fold(window, group)

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


def ingest_outcomes(
    shared: MonitorState, model: str, outcomes: list[Any], seq: int
) -> IngestOutcome:
    """Store business outcomes (as call ``seq``) and fold them into the windows of their
    predictions; an outcome of a prediction the store does not hold is refused.

    An outcome sent for a unit is the outcome of the unit's latest stored prediction at or
    before the outcome's time (and stored under that prediction's id, with the unit)."""
    state = shared.model(model)
    window = shared.validation_window()
    result = validate_outcomes(
        outcomes, state.spec, max_batch=shared.settings.max_batch_events, **window
    )
    by_unit = [(item.unit, item.ts) for item in result.accepted if item.unit is not None]
    attributed: dict[tuple[str, float], str] = {}
    if by_unit:
        with shared.timed("latest_predictions"):
            attributed = shared.store.latest_predictions(state.model_id, by_unit)
    ids = [
        item.id if item.unit is None else attributed.get((item.unit, item.ts))
        for item in result.accepted
    ]
    with shared.timed("events_by_ids"):
        events = shared.store.events_by_ids(state.model_id, [i for i in ids if i is not None])
    known: list[tuple[str, ValidOutcome]] = []
    unknown: list[Rejection] = []
    for event_id, item in zip(ids, result.accepted, strict=True):
        if event_id is not None and event_id in events:
            known.append((event_id, item))
        elif item.unit is not None:
            unknown.append(
                Rejection(
                    item.index,
                    "unit",
                    f"no prediction about unit {item.unit!r} at or before {item.ts!r} is "
                    f"stored for model {model!r}: send an outcome after its prediction",
                )
            )
        else:
            unknown.append(
                Rejection(
                    item.index,
                    "id",
                    f"no prediction {item.id!r} is stored for model {model!r}: send an outcome "
                    "after the event of its prediction",
                )
            )
    rows = [
        NewOutcome(event_id, item.name, item.value, item.ts, item.unit) for event_id, item in known
    ]
    with shared.timed("insert_outcomes"):
        inserted = shared.store.insert_outcomes(state.model_id, rows, seq=seq)
    groups: dict[WindowKey, dict[str, list[float]]] = {}
    for position in inserted.stored_positions:
        event_id, item = known[position]
        event = events[event_id]
        for size in state.spec.windows:
            key = WindowKey.at(event.version, event.segment, size, event.ts)
            groups.setdefault(key, {}).setdefault(item.name, []).append(item.value)

    def fold(window: WindowProfile, values: dict[str, list[float]]) -> None:
        window.fold_outcomes(values)

    _fold_into_predictions_windows(shared, state, groups, fold)
    conflicts = [
        Rejection(
            known[conflict.position][1].index,
            "value",
            f"the outcome {known[conflict.position][1].name!r} of event {conflict.event_id!r} "
            f"is already {conflict.kept!r}; the first value is kept and a different later one "
            "is refused",
        )
        for conflict in inserted.conflicts
    ]
    rejected = sorted([*result.rejected, *unknown], key=lambda rejection: rejection.index)
    return _outcome(shared, model, "outcomes", inserted, rejected, conflicts)


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
    inserted: LabelInsertResult | FeedbackInsertResult | OutcomeInsertResult,
    rejected: Sequence[Rejection],
    conflicts: list[Rejection],
) -> IngestOutcome:
    """Count a labels, feedback or outcomes batch and answer it in the wire form."""
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
