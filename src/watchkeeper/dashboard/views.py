"""What each dashboard page shows, assembled from the monitor, the alert engine and the registry.

Pages are rendered on the server from these plain dicts (templates in ``templates/``), and the
charts are Plotly figure specs (:mod:`watchkeeper.dashboard.charts`) drawn by plotly.js in the
browser. Nothing here talks HTTP, so a page's content is tested without a server.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from watchkeeper.dashboard import charts
from watchkeeper.errors import ConfigError, NotFoundError
from watchkeeper.signalkey import feature_of

if TYPE_CHECKING:
    from watchkeeper.alerts.engine import AlertingEngine
    from watchkeeper.alerts.state import AlertRecord
    from watchkeeper.monitor.service import MonitorService
    from watchkeeper.registry import Registry

__all__ = ["RANGES", "TimeRange", "alerts_page", "model_page", "overview", "time_range"]

#: The time-range picker's choices: label → seconds back from now.
RANGES: Final = {
    "6h": 6 * 3_600.0,
    "24h": 86_400.0,
    "7d": 7 * 86_400.0,
    "30d": 30 * 86_400.0,
    "90d": 90 * 86_400.0,
}
_SEVERITY_RANK: Final = {"critical": 3, "warning": 2, "info": 1}


@dataclass(frozen=True, slots=True)
class TimeRange:
    """``[start, end)`` in epoch seconds, with the picker's label (``custom`` for explicit)."""

    start: float
    end: float
    label: str


def time_range(
    choice: str | None, *, start: float | None, end: float | None, now: float
) -> TimeRange:
    """The range a model page shows: a picker label (default ``7d``) or explicit bounds."""
    if start is not None or end is not None:
        until = now if end is None else end
        since = until - RANGES["7d"] if start is None else start
        if not (math.isfinite(since) and math.isfinite(until)) or since >= until:
            raise ConfigError(f"range: start ({since}) must be before end ({until})", key="start")
        return TimeRange(since, until, "custom")
    label = choice or "7d"
    if label not in RANGES:
        raise ConfigError(f"range: expected one of {', '.join(RANGES)}, got {label!r}", key="range")
    return TimeRange(now - RANGES[label], now, label)


def _severity(record: AlertRecord) -> str:
    return str(record.labels.get("severity", "warning"))


def _worst(records: Sequence[AlertRecord]) -> str:
    """The health of a set of open alerts: ``ok`` or the highest severity among them."""
    firing = [record for record in records if record.state.value == "firing"]
    if not firing:
        return "pending" if records else "ok"
    return max((_severity(record) for record in firing), key=lambda s: _SEVERITY_RANK.get(s, 0))


def _open_alerts(alerting: AlertingEngine) -> dict[str, list[AlertRecord]]:
    by_model: dict[str, list[AlertRecord]] = {}
    for record in alerting.alerts():
        if record.state.value in ("firing", "pending"):
            by_model.setdefault(str(record.labels.get("model", "")), []).append(record)
    return by_model


def _champion(registry: Registry | None, model: str) -> int | None:
    if registry is None:
        return None
    try:
        return registry.alias_version(model, "champion")
    except NotFoundError:
        return None


def _active_rollout(registry: Registry | None, model: str) -> dict[str, Any] | None:
    """The model's rollout in progress (progressing or paused), if any: what the table says."""
    if registry is None:
        return None
    from watchkeeper.rollout.controller import ACTIVE_STATES

    active = registry.store.rollouts(model=model, states=ACTIVE_STATES)
    if not active:
        return None
    record = active[-1]
    return {
        "id": record.id,
        "state": record.state,
        "candidate": record.candidate,
        "baseline": record.baseline,
        "weights": dict(record.weights),
    }


def overview(
    service: MonitorService,
    alerting: AlertingEngine,
    registry: Registry | None,
    *,
    now: float,
) -> dict[str, Any]:
    """Every model with its health (worst open alert), traffic, champion, rollout in progress
    and open alerts."""
    open_by_model = _open_alerts(alerting)
    rows: list[dict[str, Any]] = []
    for spec in service.list_models():
        recent = service.windows(spec.name, start=now - 86_400.0, end=now + 1.0)
        events_24h = sum(int(window["count"]) for window in recent)
        last = recent[-1] if recent else None
        alerts = open_by_model.get(spec.name, [])
        rows.append(
            {
                "name": spec.name,
                "task": spec.task.value,
                "health": _worst(alerts),
                "events_24h": events_24h,
                "throughput": None if last is None else last["signals"].get("throughput"),
                "drift_share": None if last is None else last["signals"].get("drift_share"),
                "champion": _champion(registry, spec.name),
                "rollout": _active_rollout(registry, spec.name),
                "open_alerts": len(alerts),
                "alert_names": _alert_names(alerts),
                "traffic": charts.sparkline([w["count"] for w in recent]),
            }
        )
    rows.sort(key=lambda row: (-_SEVERITY_RANK.get(row["health"], 0), row["name"]))
    return {"models": rows, "firing": sum(len(v) for v in open_by_model.values())}


def _alert_names(records: Sequence[AlertRecord]) -> list[dict[str, Any]]:
    """Open alerts by name, most severe first: ``{"name", "severity", "count"}``."""
    grouped: dict[str, dict[str, Any]] = {}
    for record in records:
        name = str(record.labels.get("alertname", record.rule))
        entry = grouped.setdefault(name, {"name": name, "severity": _severity(record), "count": 0})
        entry["count"] += 1
    return sorted(
        grouped.values(), key=lambda e: (-_SEVERITY_RANK.get(e["severity"], 0), e["name"])
    )


def _alert_row(record: AlertRecord, *, muted: bool = False) -> dict[str, Any]:
    labels = dict(record.labels)
    return {
        "name": labels.get("alertname", ""),
        "severity": labels.get("severity", "warning"),
        "state": record.state.value,
        "model": labels.get("model", ""),
        "labels": labels,
        "summary": record.annotations.get("summary") or record.annotations.get("description", ""),
        "value": record.last_value,
        "starts_at": record.active_at,
        "fired_at": record.fired_at,
        "ends_at": record.resolved_at,
        "fingerprint": record.fingerprint,
        "muted": muted,
    }


def model_page(
    service: MonitorService,
    alerting: AlertingEngine,
    registry: Registry | None,
    model: str,
    *,
    span: TimeRange,
    window: int | str | None = None,
    version: str | None = None,
    segment: str | None = None,
) -> dict[str, Any]:
    """A model's signals over ``span``: drift heatmap, prediction drift, quality, performance
    with label coverage, traffic and latency, feedback; with the filters it was drawn for."""
    spec = service.get_model(model)
    length = spec.windows[0] if window is None else spec.window(window)
    windows = service.windows(
        model,
        start=span.start,
        end=span.end,
        window=length.to_json(),
        version=version or None,
        segment=segment,
    )
    features = list(spec.features)
    figures = charts.model_figures(windows, features=features, task=spec.task.value)
    alerts = [
        _alert_row(record)
        for record in alerting.alerts()
        if record.labels.get("model") == model and record.state.value in ("firing", "pending")
    ]
    return {
        "name": model,
        "spec": spec.to_dict(),
        "task": spec.task.value,
        "features": features,
        "windows": len(windows),
        "figures": figures,
        "empty": not windows,
        "alerts": alerts,
        "health": _worst(
            [
                r
                for r in alerting.alerts()
                if r.labels.get("model") == model and r.state.value != "inactive"
            ]
        ),
        "champion": _champion(registry, model),
        "registry_versions": _registry_versions(registry, model),
        "filters": {
            "range": span.label,
            "start": span.start,
            "end": span.end,
            "window": length.to_json(),
            "windows": [w.to_json() for w in spec.windows],
            "version": version or "",
            "versions": [row["version"] for row in service.list_versions(model)],
            "segment": segment if segment is not None else "",
            "segments": [s for s in service.list_segments(model) if s],
        },
    }


def _registry_versions(registry: Registry | None, model: str) -> list[dict[str, Any]]:
    if registry is None:
        return []
    aliases: dict[int, list[str]] = {}
    for alias in registry.aliases(model):
        aliases.setdefault(alias.version, []).append(alias.alias)
    return [
        {
            "version": record.version,
            "flavor": record.flavor,
            "registered_at": record.registered_at,
            "registered_by": record.registered_by,
            "metrics": dict(record.metrics),
            "aliases": sorted(aliases.get(record.version, [])),
        }
        for record in registry.versions(model)
    ]


def alerts_page(alerting: AlertingEngine, *, history: int = 200) -> dict[str, Any]:
    """Firing, pending and resolved alerts with their values, recent changes and silences."""
    now = alerting.now()
    silences = alerting.silences()
    active = [silence for silence in silences if silence.is_active(now)]
    muted = alerting.muted()
    rows = []
    for record in alerting.alerts():
        is_muted = record.fingerprint in muted or any(
            silence.mutes(record.labels, now) for silence in active
        )
        rows.append(_alert_row(record, muted=is_muted))
    order = {"firing": 0, "pending": 1, "resolved": 2, "inactive": 3}
    rows.sort(key=lambda row: (order.get(row["state"], 4), -row["starts_at"]))
    return {
        "alerts": rows,
        "counts": {state: sum(row["state"] == state for row in rows) for state in order},
        "history": [change.to_dict() for change in alerting.history(history)],
        "silences": [_silence_row(silence, now) for silence in reversed(silences)],
        "now": now,
    }


def _silence_row(silence: Any, now: float) -> dict[str, Any]:
    status = (
        "active" if silence.is_active(now) else "pending" if now < silence.starts_at else "expired"
    )
    return {**silence.to_dict(), "status": status}


def drift_features(signals: Mapping[str, Any]) -> list[str]:
    """The features a window's signals carry drift scores for, in signal order."""
    seen: dict[str, None] = {}
    for name in signals:
        if name.startswith("drift.") and name.endswith(".score"):
            feature = feature_of(name)
            if feature is not None:
                seen[feature] = None
    return list(seen)
