"""The default rule pack a newly registered model gets (documented in docs/alerts.md)."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from watchkeeper.alerts.model import Severity
from watchkeeper.alerts.rules import (
    AbsentCondition,
    Condition,
    Op,
    RuleSpec,
    ThresholdCondition,
)
from watchkeeper.errors import ConfigError

if TYPE_CHECKING:
    from watchkeeper.ingest.spec import ModelSpec

__all__ = ["default_rules", "pack_options", "rule_prefix"]


def rule_prefix(model: str) -> str:
    """The rule-name prefix of ``model``'s pack: its alphanumeric runs capitalised and joined
    (``credit-risk`` and ``credit.v2`` → ``CreditRisk``, ``CreditV2``), ``Model`` in front when
    it would start with a digit, so every valid model name gives valid rule names."""
    prefix = "".join(part[:1].upper() + part[1:] for part in re.findall(r"[A-Za-z0-9]+", model))
    return prefix if prefix[:1].isalpha() else f"Model{prefix}"


def pack_options(spec: ModelSpec) -> dict[str, float]:
    """The options of ``spec``'s default pack: ``window_seconds``, its smallest window (a
    calendar window by its nominal length: a day 86,400 s, a week 604,800 s, a month 31 days)."""
    return {"window_seconds": float(spec.windows[0].nominal_seconds)}


def default_rules(
    model: str,
    *,
    drift_share: float = 0.5,
    accuracy_floor: float = 0.8,
    error_rate: float = 0.05,
    latency_p99_ms: float = 500.0,
    absent_for: float = 1800.0,
    window_seconds: float = 3600.0,
    min_labels: int = 100,
) -> list[RuleSpec]:
    """Six rules for ``model``: drift share, feature drift, accuracy drop, error rate, p99 latency
    and absent data. Names are prefixed with the model so packs of several models can coexist.

    Feature drift is the calibrated verdict of each window (``drift.<feature>.detected``: the
    column's test is significant after Holm's correction over the window's features *and* its
    effect size passes the floor, see docs/drift.md), so a window of a healthy stream flags any
    feature with probability at most 5 % however many features there are. Both drift rules
    fire only when that holds for two windows in a row (``for`` is one window,
    ``window_seconds``, the model's smallest window, in event time): a real shift persists,
    noise seldom does, which brings false pages of a healthy stream with hourly windows to about
    ``24 · 0.05² / features`` a day (measured in docs/alerts.md). Dataset drift fires when half
    of the features drift (Evidently's default share). Accuracy is judged per window once it has
    ``min_labels`` labels (100: the 95 % confidence interval of a window's accuracy is then at
    most ±0.098 wide, ±0.078 near 0.8, so one window below the floor is evidence, not noise) and
    fires on the first such window (no ``for``: the label minimum is its guard, and a ``for``
    would cost a whole window more of delay after labels that may already be weeks late).
    Latency 500 ms p99 and 5 % errors are Flagger's builtin canary checks' orders of magnitude;
    tune all of them per model.

    ``NoData`` fires when the model has accepted no event for ``absent_for`` seconds, measured
    from the ingest time of its last event; a model that has never had an event is not
    alerted (see docs/alerts.md).
    """
    if not math.isfinite(window_seconds) or window_seconds <= 0:
        raise ConfigError(
            f"window_seconds: expected a positive number of seconds, got {window_seconds!r}",
            key="window_seconds",
        )
    prefix = rule_prefix(model)

    def rule(
        name: str,
        signal: str,
        condition: Condition,
        *,
        severity: Severity,
        summary: str,
        for_: float = 0.0,
        keep_firing_for: float = 0.0,
        min_labels: int | None = None,
    ) -> RuleSpec:
        return RuleSpec(
            name=f"{prefix}{name}",
            model=model,
            signal=signal,
            condition=condition,
            for_=for_,
            keep_firing_for=keep_firing_for,
            min_labels=min_labels,
            severity=severity,
            annotations={"summary": summary},
        )

    return [
        rule(
            "DriftShareHigh",
            "drift_share",
            ThresholdCondition(op=Op.GE, threshold=drift_share),
            for_=window_seconds,
            keep_firing_for=900.0,
            severity=Severity.WARNING,
            summary='{{ labels.model }}: drift share {{ value | printf("%.2f") }} of features',
        ),
        rule(
            "FeatureDrift",
            "drift.*.detected",
            ThresholdCondition(op=Op.GE, threshold=1.0),
            for_=window_seconds,
            keep_firing_for=900.0,
            severity=Severity.WARNING,
            summary="{{ labels.model }}: {{ labels.feature }} drifted in two windows in a row "
            "(significant after Holm's correction over the features, effect above its floor)",
        ),
        rule(
            "AccuracyDrop",
            "accuracy",
            ThresholdCondition(op=Op.LT, threshold=accuracy_floor),
            min_labels=min_labels,
            severity=Severity.CRITICAL,
            summary='{{ labels.model }} accuracy {{ value | printf("%.3f") }} '
            "is below {{ threshold }}",
        ),
        rule(
            "ErrorRateHigh",
            "error_rate",
            ThresholdCondition(op=Op.GT, threshold=error_rate),
            for_=300.0,
            severity=Severity.CRITICAL,
            summary='{{ labels.model }} error rate {{ value | printf("%.4f") }}',
        ),
        rule(
            "LatencyP99High",
            "latency_p99",
            ThresholdCondition(op=Op.GT, threshold=latency_p99_ms),
            for_=600.0,
            severity=Severity.WARNING,
            summary='{{ labels.model }} p99 latency {{ value | printf("%.0f") }} ms',
        ),
        rule(
            "NoData",
            "absent",
            AbsentCondition(period=absent_for),
            severity=Severity.WARNING,
            summary="{{ labels.model }} sent no data for a while",
        ),
    ]
