"""Why a run starts, as recorded in its trigger, and the lines of its log."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from watchkeeper.retrain.runs import TriggerKind

if TYPE_CHECKING:
    from watchkeeper.alerts.transitions import AlertTransition

__all__ = ["MAX_LOG_CHARS", "alert_trigger", "append_log", "describe_trigger", "log_line"]

#: The most of a run's log that is kept (its end).
MAX_LOG_CHARS: Final = 64_000


def alert_trigger(change: AlertTransition, *, detections: int) -> dict[str, Any]:
    """The trigger of a run started by an alert: its rule, labels, value and fingerprint."""
    return {
        "kind": TriggerKind.ALERT.value,
        "rule": change.rule,
        "labels": dict(change.labels),
        "value": change.value,
        "fingerprint": change.fingerprint,
        "at": change.at,
        "detections": detections,
    }


def describe_trigger(trigger: Mapping[str, Any]) -> str:
    """One line saying why a run started."""
    kind = trigger.get("kind")
    if kind == TriggerKind.ALERT.value:
        value = trigger.get("value")
        shown = "" if value is None else f" = {value:g}"
        signal = dict(trigger.get("labels") or {}).get("signal", "")
        return f"alert {trigger.get('rule')} fired ({signal}{shown})"
    if kind == TriggerKind.SCHEDULE.value:
        return f"schedule {trigger.get('schedule')!r}"
    reason = trigger.get("reason")
    return "manual" + (f": {reason}" if reason else "")


def log_line(at: float, text: str) -> str:
    """A line of a run's log, stamped with ``at`` (UTC)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
    return f"{stamp} {text}"


def append_log(log: str, text: str) -> str:
    """``text`` added to ``log`` on a new line; only the last :data:`MAX_LOG_CHARS` kept."""
    joined = f"{log}\n{text}" if log and text else log or text
    return joined[-MAX_LOG_CHARS:]
