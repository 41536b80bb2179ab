"""Start-up recovery of the open windows, checkpoints, and the numbering of ingest calls.

Raw events in the store are the source of truth; checkpoints bound the recovery. Every ingest
call (a batch of events, labels, feedback or outcomes) gets the next number of one sequence,
stored with its rows (``seq``). :meth:`Recovery.checkpoint` stores the open windows together
with the number of the last call they hold, and :meth:`Recovery.start` resumes from the latest
checkpoint and replays only the rows stored by later calls (without one, it rebuilds the open
windows from all their raw events). An ingest call holds the checkpoint gate (shared) from
taking its number until its windows are updated (:meth:`Recovery.ingest_call`); a checkpoint
takes it exclusively for as long as it copies the windows, so every call is either wholly in the
checkpoint or wholly after it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from watchkeeper.monitor.joins import Joined, joined, label_columns
from watchkeeper.monitor.state import ModelState, MonitorState
from watchkeeper.monitor.windows import EventBatch, WindowKey, WindowProfile
from watchkeeper.store.records import (
    Checkpoint,
    CheckpointWindow,
    FeedbackRecord,
    LabelRecord,
    OutcomeRecord,
)

__all__ = ["Recovery"]

# Per model id: its recovered open windows.
_Recovered = dict[int, dict[WindowKey, WindowProfile]]


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
    """Recovery was interrupted by :meth:`Recovery.close`."""


class Recovery:
    """Recovers ``shared``'s open windows at start, checkpoints them, numbers ingest calls."""

    def __init__(self, shared: MonitorState) -> None:
        self._shared = shared
        self._gate = _Gate()
        self._checkpoint_lock = threading.Lock()
        self._seq = 0
        self._seq_known = False
        self._progress = (0, 0)
        self._recovered = False
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ ingest calls

    @contextmanager
    def ingest_call(self) -> Iterator[int]:
        """Hold the gate (shared) for one ingest call; yields the call's number."""
        with self._gate.shared():
            yield self._next_seq()

    def _next_seq(self) -> int:
        """The number of a new ingest call (the caller holds the gate, shared)."""
        shared = self._shared
        if not self._seq_known:
            last = shared.store.last_seq()
            with shared.lock:
                self._seq = max(self._seq, last)
                self._seq_known = True
        with shared.lock:
            self._seq += 1
            return self._seq

    # ------------------------------------------------------------------ checkpoints

    def checkpoint(self) -> int:
        """Store the open windows with the number of the last ingest call they hold.

        Ingest calls wait only while the windows are copied (the calls in progress finish
        first); serialising and storing them happens after. Returns the number of windows
        (none before :meth:`start` has recovered them).
        """
        if not self._recovered:
            # Windows not recovered yet would be stored as if empty.
            return 0
        shared = self._shared
        with self._checkpoint_lock:
            with self._gate.exclusive(), shared.lock:
                seq = self._seq
                taken = [
                    (shared.models[name].model_id, key, window.snapshot())
                    for name, windows in shared.open.items()
                    for key, window in windows.items()
                ]
                taken += [
                    (shared.models[name].model_id, key, window.snapshot())
                    for (name, key), window in shared.closing.items()
                    if name in shared.models
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
            with shared.timed("put_checkpoint"):
                shared.store.put_checkpoint(seq, windows)
        return len(windows)

    def close(self) -> None:
        """Checkpoint the open windows (they stay open and resume on start); interrupt a
        recovery in progress instead (its windows are incomplete)."""
        if not self._recovered:
            self._stopping.set()
            return
        self.checkpoint()

    # ------------------------------------------------------------------ recovery

    def start(self) -> None:
        """Recover the open windows, then checkpoint them.

        Each window left open in the store resumes from the latest checkpoint, and the events,
        labels and feedback stored after it are replayed; without a checkpoint the windows are
        rebuilt from all their raw events and labels. :meth:`progress` counts the events
        replayed; :meth:`close` from another thread interrupts the recovery.
        """
        shared = self._shared
        states = [shared.model(record.name) for record in shared.store.list_models()]
        by_id = {state.model_id: state for state in states}
        with shared.timed("open_windows"):
            open_records = shared.store.open_windows()
        windows: _Recovered = {}
        for row in open_records:
            if row.model_id in by_id:
                length = by_id[row.model_id].spec.window(row.window_seconds)
                key = WindowKey.starting(row.version, row.segment, length, row.window_start)
                windows.setdefault(row.model_id, {})[key] = by_id[row.model_id].new_window()
        with shared.timed("read_checkpoint"):
            checkpoint = shared.store.checkpoint()
        last = shared.store.last_seq()
        try:
            if checkpoint is None:
                self._rebuild_all(by_id, windows)
            else:
                self._resume(by_id, windows, checkpoint)
        except _StoppedError:
            return
        now = shared.clock()
        with shared.lock:
            self._seq = max(self._seq, last)
            self._seq_known = True
            for model_id, recovered in windows.items():
                name = by_id[model_id].spec.name
                shared.open.setdefault(name, {}).update(recovered)
                shared.marked.setdefault(name, set()).update(recovered)
        for state in states:
            self._recover_pending(state, now)
            self._recover_last_closed(state, now)
        self._recovered = True
        self.checkpoint()

    @property
    def recovered(self) -> bool:
        """Whether :meth:`start` has finished: the open windows are in memory from then on."""
        return self._recovered

    def progress(self) -> tuple[int, int]:
        """Events replayed so far by :meth:`start`, and how many it replays in all."""
        return self._progress

    def _advance(self, events: int) -> None:
        if self._stopping.is_set():
            raise _StoppedError
        done, total = self._progress
        self._progress = (done + events, max(total, done + events))

    def _rebuild_all(self, by_id: Mapping[int, ModelState], windows: _Recovered) -> None:
        """Rebuild every open window from all its raw events, labels and feedback."""
        store = self._shared.store
        total = sum(
            store.count_events(
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
        self, by_id: Mapping[int, ModelState], windows: _Recovered, checkpoint: Checkpoint
    ) -> None:
        """Resume the open windows from ``checkpoint`` and replay what was stored after it."""
        for saved in checkpoint.windows:
            open_here = windows.get(saved.model_id)
            if not open_here:
                continue
            length = by_id[saved.model_id].spec.window(saved.window_seconds)
            key = WindowKey.starting(saved.version, saved.segment, length, saved.window_start)
            if key in open_here:
                state = by_id[saved.model_id]
                open_here[key] = WindowProfile.resume(
                    saved.profile,
                    plan=state.plan,
                    reference=state.reference,
                    reference_id=state.reference_id,
                )
        self._progress = (0, self._shared.store.count_events_after(checkpoint.seq))
        self._replay_events(by_id, windows, checkpoint.seq)
        self._replay_labels(by_id, windows, checkpoint.seq)
        self._replay_feedback(by_id, windows, checkpoint.seq)
        self._replay_outcomes(by_id, windows, checkpoint.seq)

    def _replay_events(
        self, by_id: Mapping[int, ModelState], windows: _Recovered, after: int
    ) -> None:
        """Fold the events stored after call ``after``, with their labels, into the windows."""
        store = self._shared.store
        grace = self._shared.settings.label_grace_seconds
        labels = {
            (label.model_id, label.event_id): label for label in store.labels_of_events_after(after)
        }
        for records in store.iter_events_after(after):
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
                items = [
                    joined(record, label.label)
                    for record, label in found
                    # As in _rebuild: a label that came first joins within the grace period.
                    if record.ingested_at - label.received_at <= grace
                ]
                _fold_recovered_labels(state, recovered, items)
            self._advance(len(records))

    def _replay_labels(
        self, by_id: Mapping[int, ModelState], windows: _Recovered, after: int
    ) -> None:
        """Fold labels stored after call ``after`` for predictions stored up to it (the labels
        of later predictions joined them in :meth:`_replay_events`)."""
        store = self._shared.store
        for model_id, labels in _by_model(store.labels_after(after)).items():
            state, recovered = by_id.get(model_id), windows.get(model_id)
            if state is None or recovered is None:
                continue
            events = store.events_by_ids(model_id, [label.event_id for label in labels])
            items = [
                joined(events[label.event_id], label.label)
                for label in labels
                if label.event_id in events and events[label.event_id].seq <= after
            ]
            _fold_recovered_labels(state, recovered, items)

    def _replay_feedback(
        self, by_id: Mapping[int, ModelState], windows: _Recovered, after: int
    ) -> None:
        """Count feedback stored after call ``after`` as ingest counted it: in the window of
        the rating's time, when the rated prediction was stored before the rating."""
        store = self._shared.store
        for model_id, feedback in _by_model(store.feedback_after(after)).items():
            state, recovered = by_id.get(model_id), windows.get(model_id)
            if state is None or recovered is None:
                continue
            events = store.events_by_ids(model_id, [item.event_id for item in feedback])
            for item in feedback:
                event = events.get(item.event_id)
                if event is None or event.seq >= item.seq:
                    continue
                for size in state.spec.windows:
                    key = WindowKey.at(event.version, event.segment, size, item.ts)
                    window = recovered.get(key)
                    if window is not None:
                        window.fold_ratings([item.rating])

    def _replay_outcomes(
        self, by_id: Mapping[int, ModelState], windows: _Recovered, after: int
    ) -> None:
        """Fold outcomes stored after call ``after`` into the windows of their predictions
        (stored before them: ingest refuses an outcome of an unknown prediction)."""
        store = self._shared.store
        for model_id, outcomes in _by_model(store.outcomes_after(after)).items():
            state, recovered = by_id.get(model_id), windows.get(model_id)
            if state is None or recovered is None:
                continue
            events = store.events_by_ids(model_id, [item.event_id for item in outcomes])
            groups: dict[WindowKey, dict[str, list[float]]] = {}
            for item in outcomes:
                event = events.get(item.event_id)
                if event is None:
                    continue
                for size in state.spec.windows:
                    key = WindowKey.at(event.version, event.segment, size, event.ts)
                    if key in recovered:
                        groups.setdefault(key, {}).setdefault(item.name, []).append(item.value)
            for key, values in groups.items():
                recovered[key].fold_outcomes(values)

    def _recover_pending(self, state: ModelState, now: float) -> None:
        shared = self._shared
        wall = time.time()
        grace = shared.settings.label_grace_seconds
        labels = shared.store.labels_received_between(state.model_id, wall - grace, wall + 1.0)
        if not labels:
            return
        found = shared.store.events_by_ids(state.model_id, [label.event_id for label in labels])
        waiting = {label.event_id: now for label in labels if label.event_id not in found}
        if waiting:
            with shared.lock:
                shared.pending.setdefault(state.spec.name, {}).update(waiting)

    def _recover_last_closed(self, state: ModelState, now: float) -> None:
        shared = self._shared
        size = state.spec.windows[0]
        rows = shared.store.windows(
            state.model_id, window_seconds=size.id, start=now - 48 * size.nominal_seconds, end=now
        )
        starts = [row.window_start for row in rows if row.closed]
        if starts:
            with shared.lock:
                shared.last_closed[state.spec.name] = max(starts)

    def _rebuild(self, state: ModelState, key: WindowKey) -> WindowProfile:
        """A window recomputed from the raw events, labels and feedback in the store."""
        store = self._shared.store
        window = state.new_window()
        grace = self._shared.settings.label_grace_seconds
        for records in store.iter_event_batches(
            state.model_id, key.window_start, key.end, version=key.version, segment=key.segment
        ):
            batch = EventBatch.build(records, state.plan)
            window.fold(batch)
            labels = store.labels_for(state.model_id, batch.ids)
            found = [
                (labels[r.event_id].label, r.prediction, r.proba)
                for r in records
                if r.event_id in labels
                # A label that came before its prediction joins only within the grace period.
                and r.ingested_at - labels[r.event_id].received_at <= grace
            ]
            if found:
                window.fold_labels(*map(list, zip(*found, strict=True)))
            values: dict[str, list[float]] = {}
            for outcome in store.outcomes_for(state.model_id, batch.ids):
                values.setdefault(outcome.name, []).append(outcome.value)
            if values:
                window.fold_outcomes(values)
            self._advance(len(records))
        feedback = store.feedback_between(state.model_id, key.window_start, key.end)
        if feedback:
            events = store.events_by_ids(state.model_id, [f.event_id for f in feedback])
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


def _by_model(
    rows: Sequence[LabelRecord] | Sequence[FeedbackRecord] | Sequence[OutcomeRecord],
) -> dict[int, list[Any]]:
    """Rows grouped by model, in their order."""
    groups: dict[int, list[Any]] = {}
    for row in rows:
        groups.setdefault(row.model_id, []).append(row)
    return groups


def _fold_recovered_labels(
    state: ModelState, windows: Mapping[WindowKey, WindowProfile], items: Sequence[Joined]
) -> None:
    """Fold labels into the recovered windows of their predictions (closed ones have them)."""
    groups: dict[WindowKey, list[Joined]] = {}
    for item in items:
        for size in state.spec.windows:
            key = WindowKey.at(item.version, item.segment, size, item.ts)
            if key in windows:
                groups.setdefault(key, []).append(item)
    for key, group in groups.items():
        windows[key].fold_labels(*label_columns(group))
