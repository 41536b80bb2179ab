"""Windows' rows in the store: the "open" marker before a window's first event, the closed
profile with its signals, and the read-modify-write of a closed window that late events, labels
and feedback change."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from watchkeeper.monitor.state import ModelState, MonitorState
from watchkeeper.monitor.windows import WindowKey, WindowProfile

__all__ = ["ensure_markers", "persist", "put_window", "update_stored"]


def ensure_markers(
    shared: MonitorState, state: ModelState, keys: Sequence[WindowKey], now: float
) -> None:
    """Record in the store that these windows are open, before their first event is stored."""
    name = state.spec.name
    with shared.lock:
        marked = shared.marked.setdefault(name, set())
        missing = [key for key in keys if key.end > now and key not in marked]
    if not missing:
        return
    with shared.marker_lock:
        with shared.lock:
            missing = [key for key in missing if key not in marked]
        for key in missing:
            put_window(shared, state, key, b"", 0, closed=False)
            with shared.lock:
                marked.add(key)


def put_window(
    shared: MonitorState,
    state: ModelState,
    key: WindowKey,
    profile: bytes,
    events: int,
    *,
    closed: bool,
) -> None:
    """Store one window's row (insert or replace)."""
    with shared.timed("upsert_window"):
        shared.store.upsert_window(
            state.model_id,
            version=key.version,
            segment=key.segment,
            window_seconds=key.window_seconds,
            window_start=key.window_start,
            profile=profile,
            event_count=events,
            closed=closed,
        )


def persist(
    shared: MonitorState,
    state: ModelState,
    key: WindowKey,
    window: WindowProfile,
    *,
    closed: bool,
) -> None:
    """Store ``window`` with its signals."""
    signals = state.signals(window, key.seconds)
    put_window(shared, state, key, window.to_bytes(signals=signals), window.events, closed=closed)


def _read_stored(shared: MonitorState, state: ModelState, key: WindowKey) -> WindowProfile | None:
    with shared.timed("read_window"):
        rows = shared.store.windows(
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


def update_stored(
    shared: MonitorState,
    state: ModelState,
    key: WindowKey,
    change: Callable[[WindowProfile], WindowProfile | None],
    empty: WindowProfile | None = None,
) -> None:
    """Read-modify-write one closed window (caller holds ``persist_lock``).

    ``change`` updates the stored window in place or returns its replacement. ``empty`` is the
    window to store when none is (late events bring their own); without it, a window missing
    from the store starts empty and without a profile.
    """
    stored = _read_stored(shared, state, key)
    if stored is None:
        if empty is None:
            stored = state.new_window()
            stored.drop_profile()
        else:
            persist(shared, state, key, empty, closed=True)
            return
    if empty is not None and stored.reference_id != empty.reference_id:
        stored = stored.without_profile()
        empty.drop_profile()
    updated = change(stored)
    persist(shared, state, key, stored if updated is None else updated, closed=True)
