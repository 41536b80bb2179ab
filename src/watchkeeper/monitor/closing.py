"""The end of a window's life: closing due windows, folding late events into closed ones, and
retention of raw data and stored windows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from watchkeeper.monitor.state import ModelState, MonitorState
from watchkeeper.monitor.stored import persist, update_stored
from watchkeeper.monitor.windows import EventBatch, WindowKey, WindowProfile

__all__ = [
    "apply_retention",
    "fold_late",
    "note_changed",
    "note_closed",
    "tick",
]

_DAY = 86_400.0


def tick(shared: MonitorState, now: float) -> list[dict[str, Any]]:
    """Close every window whose end has passed: compute its signals and persist it."""
    closed: list[dict[str, Any]] = []
    with shared.persist_lock:
        due: list[tuple[str, WindowKey, WindowProfile]] = []
        with shared.lock:
            for name in list(shared.open.keys() | shared.marked.keys()):
                windows = shared.open.get(name, {})
                marked = shared.marked.get(name, set())
                for key in [k for k in windows.keys() | marked if k.end <= now]:
                    window = windows.pop(key, None)
                    marked.discard(key)
                    if window is not None:
                        # A checkpoint meanwhile must still hold it (see checkpoint).
                        shared.closing[name, key] = window
                    due.append((name, key, window if window is not None else None))  # type: ignore[arg-type]
            _expire_pending(shared, now)
        for position, (name, key, maybe_window) in enumerate(due):
            state = shared.models[name]
            window = maybe_window if maybe_window is not None else state.new_window()
            try:
                persist(shared, state, key, window, closed=True)
            except BaseException:
                _reopen(shared, due[position:])
                raise
            with shared.lock:
                shared.closing.pop((name, key), None)
            closed.append({"model": name, **key.to_dict(), "count": window.events})
            note_closed(shared, state, key)
    return closed


def fold_late(
    shared: MonitorState, state: ModelState, late: Sequence[tuple[WindowKey, EventBatch]]
) -> None:
    """Fold events of windows already closed into their stored profiles."""
    with shared.persist_lock:
        for key, part in late:
            fresh = state.new_window()
            fresh.fold(part)
            update_stored(shared, state, key, fresh.merge, fresh)
            note_closed(shared, state, key)


def note_closed(shared: MonitorState, state: ModelState, key: WindowKey) -> None:
    """Make a closed window of the smallest size the latest one if it is newer.

    Both closing paths come here — :func:`tick` and events arriving for a window that had
    already closed (a replay, or a client's backlog after an outage) — so that
    ``latest_samples`` (alerts, /metrics) sees every closed window.
    """
    if key.window_seconds != state.spec.windows[0].id:
        return
    name = state.spec.name
    with shared.lock:
        previous = shared.last_closed.get(name, -math.inf)
        shared.last_closed[name] = max(previous, key.window_start)
    note_changed(shared, state, key)


def note_changed(shared: MonitorState, state: ModelState, key: WindowKey) -> None:
    """Record that a closed window of the smallest size changed, for the alerting engine.

    The engine evaluates every changed window in event time (``Queries.changed_windows``), so
    labels that join a window days after it closed still reach the rules on performance. The
    note is stored (``changed_windows`` table) until the engine acknowledges the evaluation,
    so a restart in between loses none.
    """
    if key.window_seconds != state.spec.windows[0].id:
        return
    with shared.timed("note_changed_window"):
        shared.store.note_changed_window(state.model_id, key.window_start)


def _reopen(
    shared: MonitorState, due: Sequence[tuple[str, WindowKey, WindowProfile | None]]
) -> None:
    with shared.lock:
        for name, key, window in due:
            shared.closing.pop((name, key), None)
            if window is not None:
                shared.open.setdefault(name, {})[key] = window
            shared.marked.setdefault(name, set()).add(key)


def _expire_pending(shared: MonitorState, now: float) -> None:
    cutoff = now - shared.settings.label_grace_seconds
    for pending in shared.pending.values():
        for event_id in [e for e, received in pending.items() if received < cutoff]:
            del pending[event_id]


def apply_retention(shared: MonitorState, now: float) -> dict[str, dict[str, int]]:
    """Apply retention: raw data past ``retention_days``, windows past their own limit."""
    outcome: dict[str, dict[str, int]] = {}
    for spec in shared.specs():
        state = shared.model(spec.name)
        with shared.timed("apply_retention"):
            raw = shared.store.delete_events_before(
                state.model_id, now - spec.retention_days * _DAY
            )
            windows = shared.store.delete_windows_before(
                state.model_id, now - spec.profile_retention_days * _DAY
            )
        outcome[spec.name] = {
            "events": raw.events,
            "labels": raw.labels,
            "feedback": raw.feedback,
            "outcomes": raw.outcomes,
            "windows": windows,
        }
    return outcome
