"""Reading the windows back: series of a signal, range reports, the latest samples for alerts
and /metrics, and the signal names a model has.

Closed windows come from the store (with the signals computed when they closed), open ones
from memory; windows merged for a query (versions or segments not given) have their signals
computed once and cached.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from watchkeeper.errors import ConfigError, NotFoundError
from watchkeeper.monitor.rangereport import range_report_document
from watchkeeper.monitor.signals import Signals, signal_names
from watchkeeper.monitor.state import ModelState, MonitorState
from watchkeeper.monitor.windows import WindowKey, WindowProfile, window_start

__all__ = ["Queries"]

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
        return signal_names(self._shared.model(model).plan)

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
        window_seconds: int | None,
        start: float | None,
        end: float | None,
    ) -> list[dict[str, Any]]:
        """One point per window of ``signal``; versions / segments not given are merged."""
        state = self._shared.model(model)
        if signal not in signal_names(state.plan):
            raise NotFoundError(
                f"model {model!r} has no signal {signal!r}; see signal_names()",
                kind="signal",
                name=signal,
            )
        size = _window_size(state, window_seconds)
        now = self._shared.clock()
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
        version: str | None,
        segment: str | None,
    ) -> dict[str, Any]:
        """A ``watchkeeper.report/v1`` document of every window (smallest size) in the range."""
        state = self._shared.model(model)
        if not end > start:
            raise ConfigError(f"end must be after start, got start={start}, end={end}", key="end")
        size = state.spec.windows[0]
        begin = window_start(start, size)
        found = self._collect(state, size, begin, end, version, segment)
        windows = [window for entries in found.values() for _, window, _, _ in entries]
        merged = _merge(windows, state) if windows else state.new_window()
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
        with self._shared.lock:
            latest = dict(self._shared.last_closed)
        samples: list[dict[str, Any]] = []
        for name, begin in sorted(latest.items()):
            samples += self._window_samples(name, begin)
        return samples

    def windows(self, model: str, *, start: float, end: float) -> list[dict[str, Any]]:
        """Every window of the smallest size starting in ``[start, end)``, merged over versions
        and segments, with all its signals: ``{"start", "end", "count", "signals"}``."""
        state = self._shared.model(model)
        if not end > start:
            raise ConfigError(f"end must be after start, got start={start}, end={end}", key="end")
        size = state.spec.windows[0]
        found = self._collect(state, size, window_start(start, size), end, None, None)
        windows = []
        for begin in sorted(found):
            signals, count = self._group_signals(state, size, found[begin])
            windows.append(
                {"start": begin, "end": begin + size, "count": count, "signals": signals}
            )
        return windows

    def changed_windows(self) -> list[dict[str, Any]]:
        """The closed windows (smallest size) that changed since the last call, oldest first.

        A window changes when it closes, when late events fold into it and when labels or
        feedback join it; each entry is ``{"model", "start", "end", "samples"}`` with the
        window's samples as :meth:`latest_samples` gives them, so the alerting engine can
        evaluate every window in event time. Reading empties the feed.
        """
        with self._shared.lock:
            changed = self._shared.changed
            self._shared.changed = {}
        windows: list[dict[str, Any]] = []
        for name, starts in sorted(changed.items()):
            for begin in sorted(starts):
                samples = self._window_samples(name, begin)
                if samples:
                    end = samples[0]["timestamp"]
                    windows.append({"model": name, "start": begin, "end": end, "samples": samples})
        windows.sort(key=lambda window: (window["end"], window["model"]))
        return windows

    def _window_samples(self, name: str, begin: float) -> list[dict[str, Any]]:
        """The samples of ``name``'s closed window (smallest size) starting at ``begin``, per
        version, stamped with the window's end (none once the model is deleted)."""
        try:
            state = self._shared.model(name)
        except NotFoundError:
            return []
        size = state.spec.windows[0]
        found = self._collect(state, size, begin, begin + size, None, None).get(begin, [])
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
                parts = signal.split(".")
                if len(parts) == 3 and parts[0] in ("drift", "quality"):
                    labels["feature"] = parts[1]
                samples.append({"labels": labels, "value": value, "timestamp": begin + size})
        return samples

    def _collect(
        self,
        state: ModelState,
        size: int,
        start: float,
        end: float,
        version: str | None,
        segment: str | None,
    ) -> dict[float, list[_Found]]:
        """Windows of ``size`` starting in ``[start, end)``: stored closed ones and open ones."""
        shared = self._shared
        with shared.timed("read_windows"):
            rows = shared.store.windows(
                state.model_id,
                window_seconds=size,
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
            key = WindowKey(row.version, row.segment, row.window_seconds, row.window_start)
            found.setdefault(key.window_start, []).append((key, window, row.updated_at, signals))
        with shared.lock:
            for key, window in shared.open.get(state.spec.name, {}).items():
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
        self, state: ModelState, size: int, entries: Sequence[_Found]
    ) -> tuple[Signals, int]:
        if len(entries) == 1 and entries[0][3]:
            return dict(entries[0][3]), entries[0][1].events
        cache_key = (
            state.spec.name,
            state.reference_id,
            size,
            tuple(sorted((key, token) for key, _, token, _ in entries)),
        )
        merged = _merge([window for _, window, _, _ in entries], state)
        with self._shared.lock:
            cached = self._signal_cache.get(cache_key)
            if cached is not None:
                self._signal_cache.move_to_end(cache_key)
                return cached, merged.events
        signals = state.signals(merged, size)
        with self._shared.lock:
            self._signal_cache[cache_key] = signals
            if len(self._signal_cache) > _SIGNAL_CACHE_SIZE:
                self._signal_cache.popitem(last=False)
        return signals, merged.events


def _window_size(state: ModelState, window_seconds: int | None) -> int:
    if window_seconds is None:
        return state.spec.windows[0]
    if window_seconds not in state.spec.windows:
        raise ConfigError(
            f"window_seconds: model {state.spec.name!r} keeps windows of "
            f"{list(state.spec.windows)} s, not {window_seconds}",
            key="window_seconds",
        )
    return window_seconds


def _merge(windows: Sequence[WindowProfile], state: ModelState) -> WindowProfile:
    usable = [w if w.reference_id == state.reference_id else w.without_profile() for w in windows]
    merged = usable[0]
    for window in usable[1:]:
        merged = merged.merge(window)
    return merged
