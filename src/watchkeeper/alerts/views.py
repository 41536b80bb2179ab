"""The JSON documents of the alerting API, built in one place.

The HTTP routes (:mod:`watchkeeper.server.alerts_routes`) answer with these documents and the
CLI builds the same ones when it works on a database instead of a server, so both paths print
the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from watchkeeper.alerts.model import AlertState

if TYPE_CHECKING:
    from watchkeeper.alerts.engine import AlertingEngine
    from watchkeeper.alerts.promexport import PrometheusExport
    from watchkeeper.alerts.routing import Silence
    from watchkeeper.alerts.rules import RuleSpec

__all__ = [
    "alerts_document",
    "history_document",
    "prometheus_document",
    "rules_document",
    "silence_document",
]


def rules_document(specs: Sequence[RuleSpec]) -> dict[str, Any]:
    """``{"rules": [rule, …]}``, the answer of ``GET /v1/rules``."""
    return {"rules": [spec.to_dict() for spec in specs]}


def silence_document(silence: Silence, now: float) -> dict[str, Any]:
    """One silence with its ``status`` at ``now``: active, pending or expired."""
    status = (
        "active" if silence.is_active(now) else "pending" if now < silence.starts_at else "expired"
    )
    return {**silence.to_dict(), "status": status}


def alerts_document(engine: AlertingEngine, state: str = "all") -> dict[str, Any]:
    """``{"alerts": […]}``: the engine's alerts of ``state`` (or all), each with ``muted``.

    An alert is muted when an active silence matches its labels (read from the database, so
    every process agrees) or, in the engine that routes it, when it is inhibited.
    """
    records = engine.alerts(None if state == "all" else AlertState(state))
    now = engine.now()
    silences = [silence for silence in engine.silences() if silence.is_active(now)]
    muted = engine.muted() | {
        record.fingerprint
        for record in records
        if any(silence.mutes(record.labels, now) for silence in silences)
    }
    return {"alerts": [record.to_dict(muted=record.fingerprint in muted) for record in records]}


def history_document(engine: AlertingEngine, limit: int) -> dict[str, Any]:
    """``{"history": […]}``: the latest ``limit`` alert state changes, newest first."""
    return {"history": [change.to_dict() for change in engine.history(limit)]}


def prometheus_document(export: PrometheusExport) -> dict[str, Any]:
    """The Prometheus rules file with the names of the rules exported and skipped (why)."""
    return {
        "yaml": export.yaml,
        "exported": list(export.exported),
        "skipped": [{"rule": name, "reason": reason} for name, reason in export.skipped],
    }
