"""Reading the windows back: series of a signal, range reports, the latest samples for alerts
and /metrics, and the signal names a model has.

Closed windows come from the store (with the signals computed when they closed), open ones
from memory; windows merged for a query (versions or segments not given) have their signals
computed once and cached.
"""

from __future__ import annotations

import difflib
import math
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from watchkeeper.errors import ConfigError, NotFoundError
from watchkeeper.monitor.rangereport import range_report_document
from watchkeeper.monitor.signals import Signals, signal_names
from watchkeeper.monitor.state import ModelState, MonitorState
from watchkeeper.monitor.windows import WindowKey, WindowProfile
from watchkeeper.signalkey import feature_of
from watchkeeper.store.records import ChangedWindow
from watchkeeper.windowing import WindowLength

__all__ = ["LAST_EVENT_SIGNAL", "SERIES_PAGE_LIMIT", "Queries"]

#: Points per page when :meth:`Queries.series` reads a whole series.
SERIES_PAGE_LIMIT = 1000

LAST_EVENT_SIGNAL = "last_event"
"""The sample of a model's newest event's ingest time, per version and segment."""

_SIGNAL_CACHE_SIZE = 4096

# A window found for a query: its key, profile, a token that changes when it does, and the
# signals stored with it (None for an open window).
_Found = tuple[WindowKey, WindowProfile, Any, Signals | None]


class Queries:
    """The queries over ``shared``'s models and windows, with a cache of merged signals."""

    def __init__(self, shared: MonitorState) -> None:
        self._shared = shared
        self._signal_cache: OrderedDict[tuple[Any, ...], Signals] = OrderedDict()

    def signal_names(self, model: str) -> list[str]:
        """Every signal name ``model``'s windows can carry."""
        state = self._shared.model(model)
        return signal_names(state.plan, state.spec.outcomes)

    def signal_catalog(self) -> dict[str, list[str]]:
        """Every registered model (in the store, whoever registered it) → its signal names."""
        return {spec.name: self.signal_names(spec.name) for spec in self._shared.specs()}

    def series(
        self,
        model: str,
        signal: str,
        *,
        version: str | None,
        segment: str | None,
        window_seconds: int | str | None,
        start: float | None,
        end: float | None,
    ) -> list[dict[str, Any]]:
        """One point per window of ``signal``, every window of the range (all pages of
        :meth:`series_page`); versions / segments not given are merged."""
        points: list[dict[str, Any]] = []
        cursor = start
        while True:
            page = self.series_page(
                model,
                signal,
                version=version,
                segment=segment,
                window_seconds=window_seconds,
                start=cursor,
                end=end,
                limit=SERIES_PAGE_LIMIT,
            )
            points += page["points"]
            if page["next"] is None:
                return points
            cursor = page["next"]

    def series_page(
        self,
        model: str,
        signal: str,
        *,
        version: str | None,
        segment: str | None,
        window_seconds: int | str | None,
        start: float | None,
        end: float | None,
        limit: int,
    ) -> dict[str, Any]:
        """At most ``limit`` points of ``signal``, oldest first, and the cursor of the rest.

        The windows are those of length ``window_seconds`` (a length of the spec: seconds,
        ``"day"``, ``"week"``, ``"month"``; default its shortest) that overlap ``[start, end)``;
        ``start`` None begins at the oldest stored window, ``end`` None includes the open ones.
        ``next`` is None on the last page, else the ``start`` of the next page.
        """
        state = self._shared.model(model)
        names = signal_names(state.plan, state.spec.outcomes)
        if signal not in names:
            close = difflib.get_close_matches(signal, names, n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise NotFoundError(
                f"model {model!r} has no signal {signal!r}; {hint}it has {len(names)} signals "
                f"({', '.join(names[:6])}, …; all of them: GET /v1/models/{model}/signals)",
                kind="signal",
                name=signal,
            )
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigError(f"limit: must be a positive integer, got {limit!r}", key="limit")
        length = _window_length(state, window_seconds)
        begin = -math.inf if start is None else length.start(_finite(start, key="start"))
        stop = math.inf if end is None else _finite(end, key="end")
        if start is not None and not stop > start:
            raise ConfigError(f"end must be after start, got start={start}, end={end}", key="end")
        starts = self._starts(state, length, begin, stop, version, segment, limit + 1)
        following = starts[limit] if len(starts) > limit else None
        found = self._collect(
            state, length, begin, stop if following is None else following, version, segment
        )
        points = []
        for window_begin in sorted(found):
            signals, count = self._group_signals(state, length, found[window_begin])
            points.append(
                {
                    "start": window_begin,
                    "end": found[window_begin][0][0].end,
                    "value": signals.get(signal),
                    "version": version,
                    "segment": segment,
                    "count": count,
                }
            )
        return {"window": length.to_json(), "points": points, "next": following}

    def range_report(
        self,
        model: str,
        *,
        start: float,
        end: float,
        version: str | None,
        segment: str | None,
    ) -> dict[str, Any]:
        """A ``watchkeeper.report/v1`` document of the windows covering ``[start, end)``.

        It merges the windows of the longest length of the spec whose windows tile the range
        exactly; when none does, those of the shortest length that overlap it. ``window.start``
        / ``window.end`` (and the name) give the range covered, ``window.requested`` the one
        asked for and ``window.exact`` whether they are the same.
        """
        state = self._shared.model(model)
        start, end = _finite(start, key="start"), _finite(end, key="end")
        if not end > start:
            raise ConfigError(f"end must be after start, got start={start}, end={end}", key="end")
        length = _covering_length(state.spec.windows, start, end)
        begin = length.start(start)
        last = length.start(end)
        stop = end if last == end else length.end(last)
        found = self._collect(state, length, begin, stop, version, segment)
        windows = [window for entries in found.values() for _, window, _, _ in entries]
        merged = _merge(windows, state) if windows else state.new_window()
        info = {
            "name": f"{model} [{_iso(begin)}, {_iso(stop)})",
            "model": model,
            "start": begin,
            "end": stop,
            "exact": begin == start and stop == end,
            "requested": {"start": start, "end": end},
            "window": length.to_json(),
            "timezone": state.spec.timezone,
            "windows": len(found),
            "version": version,
            "segment": segment,
        }
        return range_report_document(
            spec=state.spec, plan=state.plan, reference=state.reference, window=merged, info=info
        )

    def latest_samples(self) -> list[dict[str, Any]]:
        """Signals of the latest closed window (smallest size) of each model, per version, and
        the :meth:`last_events` samples."""
        with self._shared.lock:
            latest = dict(self._shared.last_closed)
        samples: list[dict[str, Any]] = []
        for name, begin in sorted(latest.items()):
            samples += self._window_samples(name, begin)
        return samples + self.last_events()

    def windows(
        self,
        model: str,
        *,
        start: float,
        end: float,
        window: int | str | None = None,
        version: str | None = None,
        segment: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every window of one length (default the smallest) starting in ``[start, end)``,
        merged over versions and segments unless ``version`` / ``segment`` pick one, with all
        its signals: ``{"start", "end", "count", "signals"}``."""
        state = self._shared.model(model)
        if not end > start:
            raise ConfigError(f"end must be after start, got start={start}, end={end}", key="end")
        size = _window_length(state, window)
        found = self._collect(state, size, size.start(start), end, version, segment)
        windows = []
        for begin in sorted(found):
            signals, count = self._group_signals(state, size, found[begin])
            windows.append(
                {"start": begin, "end": size.end(begin), "count": count, "signals": signals}
            )
        return windows

    def changed_windows(self) -> list[dict[str, Any]]:
        """The closed windows (smallest size) that changed since the last call, oldest first.

        A window changes when it closes, when late events fold into it and when labels or
        feedback join it; each entry is ``{"model", "start", "end", "samples"}`` with the
        window's samples as :meth:`latest_samples` gives them, so the alerting engine can
        evaluate every window in event time. Reading empties the feed; the changes stay in the
        store until :meth:`acknowledge_windows` (after the evaluation), so those of a process
        that stopped first are read again after the restart.
        """
        shared = self._shared
        names = {shared.model(spec.name).model_id: spec.name for spec in shared.specs()}
        stored = shared.store.changed_windows()
        with shared.lock:
            fresh = [
                change
                for change in stored
                if shared.delivered.get((change.model_id, change.window_start)) != change.noted_at
            ]
            for change in fresh:
                shared.delivered[change.model_id, change.window_start] = change.noted_at
        windows: list[dict[str, Any]] = []
        for change in fresh:
            name = names.get(change.model_id)
            samples = [] if name is None else self._window_samples(name, change.window_start)
            if samples:
                end = samples[0]["timestamp"]
                windows.append(
                    {"model": name, "start": change.window_start, "end": end, "samples": samples}
                )
        windows.sort(key=lambda window: (window["end"], window["model"]))
        return windows

    def acknowledge_windows(self) -> None:
        """Forget the changes read so far: the engine has evaluated them. A window that
        changed again since stays in the feed."""
        shared = self._shared
        with shared.lock:
            delivered, shared.delivered = shared.delivered, {}
        shared.store.forget_changed_windows(
            [
                ChangedWindow(model_id, start, noted)
                for (model_id, start), noted in delivered.items()
            ]
        )

    def _window_samples(self, name: str, begin: float) -> list[dict[str, Any]]:
        """The samples of ``name``'s closed window (smallest size) starting at ``begin``, per
        version, stamped with the window's end (none once the model is deleted)."""
        try:
            state = self._shared.model(name)
        except NotFoundError:
            return []
        size = state.spec.windows[0]
        found = self._collect(state, size, begin, size.end(begin), None, None).get(begin, [])
        return self._samples(state, size, begin, found)

    def window_samples(self, model: str, *, start: float, end: float) -> list[dict[str, Any]]:
        """The windows (smallest size) starting in ``[start, end)`` as the alerting engine
        reads them: ``{"model", "start", "end", "samples"}`` each (as :meth:`changed_windows`),
        oldest first, an open window as it is so far; a backtest evaluates rules over them."""
        state = self._shared.model(model)
        size = state.spec.windows[0]
        found = self._collect(state, size, size.start(start), end, None, None)
        windows = []
        for begin in sorted(found):
            samples = self._samples(state, size, begin, found[begin])
            if samples:
                windows.append(
                    {"model": model, "start": begin, "end": size.end(begin), "samples": samples}
                )
        return windows

    def _samples(
        self, state: ModelState, size: WindowLength, begin: float, found: list[_Found]
    ) -> list[dict[str, Any]]:
        """One window's signals as samples, per version, stamped with the window's end."""
        name = state.spec.name
        by_version: dict[str, list[_Found]] = {}
        for entry in found:
            by_version.setdefault(entry[0].version, []).append(entry)
        samples: list[dict[str, Any]] = []
        for version, entries in sorted(by_version.items()):
            signals, _ = self._group_signals(state, size, entries)
            for signal, value in signals.items():
                if value is None:
                    continue
                labels = {"model": name, "version": version, "segment": "*", "signal": signal}
                feature = feature_of(signal)
                if feature is not None:
                    labels["feature"] = feature
                samples.append({"labels": labels, "value": value, "timestamp": size.end(begin)})
        return samples

    def version_health(self, model: str, *, in_memory: bool) -> dict[str, dict[str, Any]]:
        """Each version's live health: ``events`` (in its windows of the shortest length, the
        open ones included), ``last_event`` (ingest time of its newest event) and ``window``
        (its latest closed window with that window's signals, segments merged; None before one
        closed).

        The open windows are counted in memory (``in_memory``: the process runs them), else as
        the latest checkpoint holds them (a process that runs no windows, the CLI on a
        database).
        """
        state = self._shared.model(model)
        size = state.spec.windows[0]
        with self._shared.timed("read_window_totals"):
            totals = self._shared.store.version_window_totals(
                state.model_id, window_seconds=size.id
            )
        opened = self._open_events(state, size, in_memory=in_memory)
        last: dict[str, float] = {}
        for sample in self.last_events():
            labels = sample["labels"]
            if labels["model"] == model:
                version = labels["version"]
                last[version] = max(last.get(version, sample["value"]), sample["value"])
        health: dict[str, dict[str, Any]] = {}
        for version in sorted({version for version, _ in totals} | opened.keys() | last.keys()):
            closed_events, latest = totals.get((version, True), (0, None))
            health[version] = {
                "events": closed_events + opened.get(version, 0),
                "last_event": last.get(version),
                "window": None if latest is None else self._window(state, size, latest, version),
            }
        return health

    def _open_events(
        self, state: ModelState, size: WindowLength, *, in_memory: bool
    ) -> dict[str, int]:
        """Events per version in the open windows of ``size``: in memory, or checkpointed."""
        if in_memory:
            with self._shared.lock:
                windows = [
                    (key.version, key.window_seconds, window.events)
                    for key, window in self._shared.open.get(state.spec.name, {}).items()
                ]
        else:
            with self._shared.timed("read_checkpoint"):
                checkpoint = self._shared.store.checkpoint()
            windows = [
                (window.version, window.window_seconds, window.event_count)
                for window in (checkpoint.windows if checkpoint is not None else ())
                if window.model_id == state.model_id
            ]
        opened: dict[str, int] = {}
        for version, seconds, count in windows:
            if seconds == size.id:
                opened[version] = opened.get(version, 0) + count
        return opened

    def _window(
        self, state: ModelState, size: WindowLength, begin: float, version: str
    ) -> dict[str, Any] | None:
        """One version's closed window of ``size`` starting at ``begin`` with its signals."""
        found = self._collect(state, size, begin, size.end(begin), version, None).get(begin)
        if not found:
            return None
        signals, count = self._group_signals(state, size, found)
        return {"start": begin, "end": size.end(begin), "count": count, "signals": signals}

    def last_events(self) -> list[dict[str, Any]]:
        """One ``last_event`` sample per model, version and segment that has had an event: the
        ingest time of its newest accepted event (epoch seconds, also the sample's timestamp),
        what absent-data rules measure silence from.

        Times of events ingested by this process are kept in memory (on the service's clock);
        for versions and segments without one, the newest ``ingested_at`` the store holds is
        read once per model, so a restart neither forgets a stream that stopped nor revives
        one. The store stamps ``ingested_at`` with the wall clock: a simulated clock (a replay
        in local mode) sees those times only for streams it has not sent to since it started.
        """
        shared = self._shared
        for spec in shared.specs():
            with shared.lock:
                if spec.name in shared.stored_last_event:
                    continue
            try:
                state = shared.model(spec.name)
            except NotFoundError:
                continue
            with shared.timed("last_ingested"):
                stored = shared.store.last_ingested(state.model_id)
            with shared.lock:
                shared.stored_last_event.setdefault(spec.name, stored)
        with shared.lock:
            known = {
                name: {**shared.stored_last_event.get(name, {}), **shared.last_event.get(name, {})}
                for name in shared.stored_last_event.keys() | shared.last_event.keys()
            }
        return [
            {
                "labels": {
                    "model": name,
                    "version": version,
                    "segment": segment,
                    "signal": LAST_EVENT_SIGNAL,
                },
                "value": at,
                "timestamp": at,
            }
            for name, last in sorted(known.items())
            for (version, segment), at in sorted(last.items())
        ]

    def _starts(
        self,
        state: ModelState,
        length: WindowLength,
        start: float,
        end: float,
        version: str | None,
        segment: str | None,
        limit: int,
    ) -> list[float]:
        """The first ``limit`` starts of ``length`` windows in ``[start, end)``, stored or open."""
        shared = self._shared
        with shared.timed("read_windows"):
            stored = shared.store.window_starts(
                state.model_id,
                window_seconds=length.id,
                start=start,
                end=end,
                version=version,
                segment=segment,
                limit=limit,
            )
        with shared.lock:
            opened = {
                key.window_start
                for key in shared.open.get(state.spec.name, {})
                if _selected(key, length, start, end, version, segment)
            }
        return sorted(opened.union(stored))[:limit]

    def _collect(
        self,
        state: ModelState,
        length: WindowLength,
        start: float,
        end: float,
        version: str | None,
        segment: str | None,
    ) -> dict[float, list[_Found]]:
        """Windows of ``length`` starting in ``[start, end)``: stored closed ones and open ones."""
        shared = self._shared
        with shared.timed("read_windows"):
            rows = shared.store.windows(
                state.model_id,
                window_seconds=length.id,
                start=start,
                end=end,
                version=version,
                segment=segment,
            )
        found: dict[float, list[_Found]] = {}
        for row in rows:
            if not row.closed or not row.profile:
                continue
            window, signals = WindowProfile.from_bytes(row.profile)
            key = WindowKey.starting(row.version, row.segment, length, row.window_start)
            found.setdefault(key.window_start, []).append((key, window, row.updated_at, signals))
        with shared.lock:
            for key, window in shared.open.get(state.spec.name, {}).items():
                if _selected(key, length, start, end, version, segment):
                    copy = window.merge(
                        WindowProfile(plan=state.plan, reference=None, reference_id=None)
                    )
                    found.setdefault(key.window_start, []).append(
                        (key, copy, ("open", id(window), window.revision), None)
                    )
        return found

    def _group_signals(
        self, state: ModelState, length: WindowLength, entries: Sequence[_Found]
    ) -> tuple[Signals, int]:
        """The signals of one window (all its entries merged) and its event count."""
        if len(entries) == 1 and entries[0][3]:
            return dict(entries[0][3]), entries[0][1].events
        cache_key = (
            state.spec.name,
            state.reference_id,
            length.id,
            tuple(sorted((key, token) for key, _, token, _ in entries)),
        )
        merged = _merge([window for _, window, _, _ in entries], state)
        with self._shared.lock:
            cached = self._signal_cache.get(cache_key)
            if cached is not None:
                self._signal_cache.move_to_end(cache_key)
                return cached, merged.events
        signals = state.signals(merged, entries[0][0].seconds)
        with self._shared.lock:
            self._signal_cache[cache_key] = signals
            if len(self._signal_cache) > _SIGNAL_CACHE_SIZE:
                self._signal_cache.popitem(last=False)
        return signals, merged.events


def _window_length(state: ModelState, window: int | str | None) -> WindowLength:
    return state.spec.windows[0] if window is None else state.spec.window(window)


def _covering_length(lengths: Sequence[WindowLength], start: float, end: float) -> WindowLength:
    """The longest length whose windows tile ``[start, end)``, else the shortest."""
    for length in reversed(lengths):
        if length.start(start) == start and length.start(end) == end:
            return length
    return lengths[0]


def _selected(
    key: WindowKey,
    length: WindowLength,
    start: float,
    end: float,
    version: str | None,
    segment: str | None,
) -> bool:
    return (
        key.window_seconds == length.id
        and start <= key.window_start < end
        and (version is None or key.version == version)
        and (segment is None or key.segment == segment)
    )


def _finite(value: float, *, key: str) -> float:
    if not math.isfinite(value):
        raise ConfigError(f"{key}: must be a finite time, got {value!r}", key=key)
    return value


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat().replace("+00:00", "Z")


def _merge(windows: Sequence[WindowProfile], state: ModelState) -> WindowProfile:
    usable = [w if w.reference_id == state.reference_id else w.without_profile() for w in windows]
    merged = usable[0]
    for window in usable[1:]:
        merged = merged.merge(window)
    return merged
