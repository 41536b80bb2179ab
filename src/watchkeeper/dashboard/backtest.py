"""Backtest: the alerts a rule set would have raised on a stored range of a model's windows.

The rules (the stored ones, or a YAML rule set pasted in the page) run in a scratch
:class:`~watchkeeper.alerts.engine.AlertingEngine` on a temporary SQLite file, over the model's
stored windows in event time, exactly as the live engine evaluates changed windows: the same
evaluator, ``for:`` durations and resolution, each transition at its window's end. Nothing is
sent and no rule action (rollback) runs: the scratch engine has no receivers and no actions.
The windows' signals are read as stored now, so labels that joined a window late count as if
they had been there when it closed (``watchkeeper replay`` replays the label delay from raw
events).

One click must not hog the server: the range is at most :data:`MAX_RANGE_SECONDS`, at most
:data:`MAX_WINDOWS` windows, a pasted rule set at most :data:`MAX_RULES_BYTES`, and one
backtest runs at a time (another gets :class:`~watchkeeper.errors.ConflictError`).
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import yaml

from watchkeeper._yaml import load_yaml
from watchkeeper.alerts.conditions import ABSENT_SIGNAL
from watchkeeper.alerts.config import parse_rules
from watchkeeper.alerts.rulespec import check_rule_references
from watchkeeper.dashboard import charts
from watchkeeper.errors import ConfigError, ConflictError

if TYPE_CHECKING:
    from watchkeeper.alerts.engine import AlertingEngine
    from watchkeeper.alerts.rulespec import RuleSpec
    from watchkeeper.monitor.service import MonitorService

__all__ = ["MAX_RANGE_SECONDS", "MAX_RULES_BYTES", "MAX_WINDOWS", "parse_rule_text", "run"]

MAX_RANGE_SECONDS: Final = 90 * 86_400.0
MAX_WINDOWS: Final = 2_200
MAX_RULES_BYTES: Final = 64_000
_ONE_AT_A_TIME: Final = threading.Lock()


def parse_rule_text(text: str, catalog: Mapping[str, Sequence[str]]) -> list[RuleSpec]:
    """A pasted rule set (YAML: ``rules:`` list or a bare list), validated as the API does:
    errors name the field (``rules[0].condition``) or the unknown model or signal."""
    if len(text.encode()) > MAX_RULES_BYTES:
        raise ConfigError(
            f"rules: the rule set is {len(text.encode())} bytes; at most {MAX_RULES_BYTES}",
            key="rules",
        )
    try:
        data = load_yaml(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"rules: not valid YAML ({error})", key="rules") from None
    if data is None:
        raise ConfigError("rules: the rule set is empty", key="rules")
    specs = parse_rules(data)
    if not specs:
        raise ConfigError("rules: the rule set has no rules", key="rules")
    check_rule_references(specs, catalog)
    return specs


def run(
    service: MonitorService,
    alerting: AlertingEngine,
    model: str,
    *,
    start: float,
    end: float,
    rules_text: str,
    now: float,
) -> dict[str, Any]:
    """Evaluate the rules over ``model``'s closed windows starting in ``[start, end)``.

    ``rules_text`` empty: the stored rules. Returns the windows evaluated, the rules used, every
    transition (oldest first), the alerts (fired → resolved) and their timeline figure.
    """
    spec = service.get_model(model)
    end = min(end, now)
    if not start < end:
        raise ConfigError(
            f"start: must be before end and now (start {start}, end {end})", key="start"
        )
    if end - start > MAX_RANGE_SECONDS:
        raise ConfigError(
            f"start: a backtest covers at most {MAX_RANGE_SECONDS / 86_400:.0f} days; "
            f"this range is {(end - start) / 86_400:.1f} days",
            key="start",
        )
    size = spec.windows[0]
    expected = (end - size.start(start)) / size.nominal_seconds
    if expected > MAX_WINDOWS:
        raise ConfigError(
            f"start: the range holds about {expected:.0f} windows of {size.to_json()}; a "
            f"backtest evaluates at most {MAX_WINDOWS}: shorten the range",
            key="start",
        )
    if rules_text.strip():
        rules = parse_rule_text(rules_text, service.signal_catalog())
        source = "pasted"
    else:
        rules = alerting.rules()
        source = "stored"
    # ``absent`` rules watch the wall clock for silence, not windows: they have no backtest.
    skipped = [rule.name for rule in rules if rule.signal == ABSENT_SIGNAL]
    used = [rule for rule in rules if rule.signal != ABSENT_SIGNAL]
    if not _ONE_AT_A_TIME.acquire(blocking=False):
        raise ConflictError("a backtest is already running on this server; try again shortly")
    try:
        windows = [
            window
            for window in service.window_samples(model, start=start, end=end)
            if window["end"] <= now
        ]
        transitions = _evaluate(used, windows, end)
    finally:
        _ONE_AT_A_TIME.release()
    alerts = _alerts(transitions)
    return {
        "name": model,
        "start": start,
        "end": end,
        "window": size.to_json(),
        "windows": len(windows),
        "source": source,
        "rules": [rule.to_dict() for rule in used],
        "skipped": skipped,
        "transitions": transitions,
        "alerts": alerts,
        "fired": sum(1 for change in transitions if change["state"] == "firing"),
        "timeline": charts.backtest_timeline(alerts, start=start, end=end) if alerts else None,
    }


def _evaluate(
    rules: Sequence[RuleSpec], windows: Sequence[Mapping[str, Any]], end: float
) -> list[dict[str, Any]]:
    """The transitions a scratch engine with ``rules`` records over ``windows``."""
    from watchkeeper.alerts.engine import AlertingEngine

    if not rules or not windows:
        return []
    with tempfile.TemporaryDirectory(prefix="watchkeeper-backtest-") as scratch:
        clock = [float(windows[0]["end"])]
        engine = AlertingEngine(
            db=f"sqlite:///{Path(scratch) / 'backtest.db'}", clock=lambda: clock[0]
        )
        try:
            engine.apply_rules(rules)
            clock[0] = end
            report = engine.evaluate(end, [], windows=windows)
        finally:
            engine.close()
    changes = [change.to_dict() for change in report.transitions]
    changes.sort(key=lambda change: change["at"])
    return changes


def _alerts(transitions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each firing as ``{"row", "rule", "severity", "fired_at", "resolved_at", "value"}``."""
    open_: dict[str, dict[str, Any]] = {}
    alerts: list[dict[str, Any]] = []
    for change in transitions:
        labels = change["labels"]
        key = change["fingerprint"]
        if change["state"] == "firing" and key not in open_:
            extra = [
                f"{name}={labels[name]}" for name in ("version", "feature") if labels.get(name)
            ]
            entry = {
                "row": " ".join([str(labels.get("alertname", change["rule"])), *extra]),
                "rule": change["rule"],
                "severity": labels.get("severity", "warning"),
                "fired_at": change["at"],
                "resolved_at": None,
                "value": change["value"],
                "labels": dict(labels),
            }
            open_[key] = entry
            alerts.append(entry)
        elif change["state"] in ("resolved", "inactive") and key in open_:
            open_.pop(key)["resolved_at"] = change["at"]
    return alerts
