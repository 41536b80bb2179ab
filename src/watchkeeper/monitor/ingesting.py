"""Events ingest: cardinality caps, then the store (one transaction), then the open windows.

Only the events the store newly inserted are folded (retries are harmless). Before the first
event of a window is stored, an empty "open" row is written for it, so that recovery knows the
window; events of a window that has already closed are folded into its stored profile.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from watchkeeper.ingest import Rejection
from watchkeeper.ingest.decode import DecodedEvents, DecodeJob
from watchkeeper.monitor.closing import fold_late
from watchkeeper.monitor.joins import join_pending
from watchkeeper.monitor.outcome import IngestOutcome
from watchkeeper.monitor.state import KnownValues, ModelState, MonitorState
from watchkeeper.monitor.stored import ensure_markers
from watchkeeper.monitor.windows import EventBatch, WindowKey

__all__ = ["decode_job", "ingest"]


@dataclass(frozen=True, slots=True)
class _OverCap:
    """Events of a batch refused by the cardinality caps: their rejections, and per event the
    version whose window counts it (``""`` when the version itself was refused)."""

    rejected: list[Rejection]
    versions: list[str]


def decode_job(shared: MonitorState, state: ModelState) -> DecodeJob:
    """What decoding a batch for the model of ``state`` needs now."""
    return DecodeJob(
        spec=state.spec,
        plan=state.plan,
        max_batch=shared.settings.max_batch_events,
        max_body_bytes=shared.settings.max_body_bytes,
        codec=shared.store.event_codec,
        # Events older than the raw-event retention are refused, never stored to be deleted.
        retention_seconds=state.spec.retention_days * 86_400.0,
        **shared.validation_window(),
    )


def ingest(
    shared: MonitorState, state: ModelState, decoded: DecodedEvents, seq: int
) -> IngestOutcome:
    """Store a decoded batch as call ``seq`` and fold its new events into their windows."""
    name = state.spec.name
    now = decoded.now
    decoded, over_cap = _within_caps(shared, state, decoded)
    rejected_versions = decoded.rejected_versions
    batch = decoded.batch
    groups = batch.groups(state.spec.windows)
    ensure_markers(shared, state, [key for key, _ in groups], now)
    with shared.timed("insert_events"):
        inserted = shared.store.insert_encoded(state.model_id, decoded.encoded, seq=seq)
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
    with shared.lock:
        windows = shared.open.setdefault(name, {})
        marked = shared.marked.setdefault(name, set())
        for key, part in parts:
            window = windows.get(key)
            if window is None:
                if key not in marked:
                    late.append((key, part))
                    continue
                window = windows[key] = state.new_window()
            window.fold(part)
        _fold_rejected(shared, state, rejected_versions, now)
        _fold_rejected(shared, state, over_cap.versions, now, over_cap=True)
        if len(batch):
            # What an absent-data rule measures silence from: the ingest time (the time
            # stored as the events' ``ingested_at``), not the events' own timestamps.
            last = shared.last_event.setdefault(name, {})
            for pair in set(zip(batch.versions, batch.segments, strict=True)):
                last[pair] = max(now, last.get(pair, now))
    if late:
        fold_late(shared, state, late)
    join_pending(shared, state, batch)
    rejected = len(rejected_versions) + len(over_cap.versions)
    duplicates = len(inserted.duplicate_ids)
    shared.count(
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


def _known_values(shared: MonitorState, state: ModelState) -> KnownValues:
    """The model's versions and segments, read from the store once per process."""
    name = state.spec.name
    with shared.lock:
        known = shared.known.get(name)
    if known is not None:
        return known
    with shared.timed("list_versions"):
        versions = {record.version for record in shared.store.list_versions(state.model_id)}
    with shared.timed("window_segments"):
        segments = shared.store.window_segments(state.model_id) - {""}
    with shared.lock:
        return shared.known.setdefault(name, KnownValues(versions, segments))


def _within_caps(
    shared: MonitorState, state: ModelState, decoded: DecodedEvents
) -> tuple[DecodedEvents, _OverCap]:
    """The batch without events that would take the model past ``max_versions_per_model``
    or ``max_segments_per_model``; those are rejected one by one with the reason.

    Decided under ``lock``, where admitted values become known at once, so concurrent
    batches never pass a cap together. A value admitted for a batch whose insert then fails
    stays counted (the client's retry of that batch needs it) until the next restart.
    """
    batch = decoded.batch
    known = _known_values(shared, state)
    settings = shared.settings
    refused: dict[tuple[str, str], str] = {}
    with shared.lock:
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
    encoded = decoded.encoded.take(keep)
    rejected = sorted([*decoded.rejected, *over_cap.rejected], key=lambda r: r.index)
    trimmed = dataclasses.replace(
        decoded,
        batch=batch.take(np.array(keep, dtype=np.intp)),
        encoded=encoded,
        rejected=rejected,
    )
    return trimmed, over_cap


def _fold_rejected(
    shared: MonitorState,
    state: ModelState,
    versions: Sequence[str],
    now: float,
    *,
    over_cap: bool = False,
) -> None:
    """Count rejected events in the windows of ``now`` (caller holds ``lock``).

    A version no stored event has (nor the caps admitted) is counted under ``""``: invalid
    events must not make windows for versions of their own either.
    """
    if not versions:
        return
    windows = shared.open.setdefault(state.spec.name, {})
    known = shared.known.get(state.spec.name)
    counts = Counter(
        version if known is None or version in known.versions else "" for version in versions
    )
    for version, count in counts.items():
        for size in state.spec.windows:
            key = WindowKey.at(version, "", size, now)
            window = windows.get(key)
            if window is None:
                window = windows[key] = state.new_window()
            window.fold_rejected(count, over_cap=count if over_cap else 0)


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
