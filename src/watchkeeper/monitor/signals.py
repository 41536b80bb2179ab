"""Signals of a window: the numbers that alert rules, series and ``/metrics`` read.

Names are shared with the alert rules (``docs/monitoring.md`` lists them with units). Drift
uses :func:`watchkeeper.profiles.drift_from_profiles` against the reference profile (the batch
core's tests and verdict policy, read off the shared bins) and decides the window's features as
one family (:func:`watchkeeper.stats.drift.family_verdicts`), quality uses
:func:`watchkeeper.profiles.quality_summary` with the model spec's thresholds
(``ModelSpec.quality``), performance the window's merged accumulator.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from watchkeeper.ingest.spec import OutcomeKind
from watchkeeper.monitor.outcomes import outcome_signal_names, outcome_signals
from watchkeeper.monitor.windows import ColumnPlan, WindowProfile
from watchkeeper.profiles import DatasetProfile, drift_from_profiles, quality_summary
from watchkeeper.schema import TaskType
from watchkeeper.signalkey import SignalKey
from watchkeeper.stats.drift import ColumnDrift, family_verdicts
from watchkeeper.stats.quality import QualityThresholds

__all__ = [
    "CLASSIFICATION_SIGNALS",
    "DUPLICATE_SIGNALS",
    "FEEDBACK_SIGNALS",
    "LABEL_SIGNALS",
    "REGRESSION_SIGNALS",
    "SERVICE_SIGNALS",
    "drift_results",
    "signal_names",
    "window_signals",
]

SERVICE_SIGNALS = (
    "count",
    "throughput",
    "error_rate",
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "quality.rejected_share",
    "quality.rejected_cardinality",
)
CLASSIFICATION_SIGNALS = (
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "roc_auc",
    "log_loss",
    "labeled_count",
    "label_coverage",
)
REGRESSION_SIGNALS = ("mae", "rmse", "mape", "r2", "mean_error", "labeled_count", "label_coverage")
#: Signals about the labels behind a window's performance, not performance itself.
LABEL_SIGNALS = ("labeled_count", "label_coverage")
FEEDBACK_SIGNALS = (
    "feedback_count",
    "feedback_mean_rating",
    "feedback_low_share",
    *(f"feedback_rating_{rating}_share" for rating in range(1, 6)),
)
_QUALITY_CHECKS = {
    "missing_rate": "missing_rate",
    "out_of_range_share": "out_of_range_share",
    "new_categories": "new_category_share",
}

# The checks calibrated to sample size (docs/quality.md) that make ``quality.<f>.failed``;
# ``constant`` counts only when tested (a window with no value has nothing to test).
_CALIBRATED_CHECKS = (
    "missing_rate",
    "non_numeric_share",
    "out_of_range_share",
    "new_categories",
    "constant",
)
#: Data-set quality signals of a window with profiled columns (docs/quality.md).
DUPLICATE_SIGNALS = ("quality.duplicate_share", "quality.duplicates_failed")

Signals = dict[str, float | None]


def _column(family: str, column: str, stat: str) -> str:
    """The name of a per-column signal (:class:`~watchkeeper.signalkey.SignalKey`)."""
    return SignalKey(stat, family, column).format()


def signal_names(plan: ColumnPlan, outcomes: Mapping[str, OutcomeKind] | None = None) -> list[str]:
    """Every signal a window of a model with this plan (and these declared ``outcomes``) can
    carry."""
    names = list(SERVICE_SIGNALS)
    if plan.features:
        names.append("drift_share")
        names += DUPLICATE_SIGNALS
    for feature in plan.features:
        names += [_column("drift", feature, part) for part in ("score", "detected", "p_value")]
    if plan.prediction is not None or plan.proba:
        names += ["prediction_drift.score", "prediction_drift.detected"]
    for feature in plan.features:
        names.append(_column("quality", feature, "missing_rate"))
        names.append(_column("quality", feature, "failed"))
        kind = plan.kinds[feature].value
        if kind == "numeric":
            names.append(_column("quality", feature, "out_of_range_share"))
        elif kind == "categorical":
            names.append(_column("quality", feature, "new_category_share"))
    names += CLASSIFICATION_SIGNALS if plan.task is TaskType.CLASSIFICATION else REGRESSION_SIGNALS
    names += FEEDBACK_SIGNALS
    names += outcome_signal_names(outcomes or {})
    return names


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def drift_results(
    reference: DatasetProfile | None, current: DatasetProfile | None
) -> dict[str, ColumnDrift]:
    """Drift of every profiled column (empty without a reference or without rows)."""
    if reference is None or current is None or current.rows == 0:
        return {}
    return drift_from_profiles(reference, current)


def window_signals(
    window: WindowProfile,
    *,
    plan: ColumnPlan,
    reference: DatasetProfile | None,
    window_seconds: float,
    quality: QualityThresholds | None = None,
    outcomes: Mapping[str, OutcomeKind] | None = None,
) -> Signals:
    """Every signal of ``window`` (a merged window of ``window_seconds`` length) by name.

    ``quality`` holds the thresholds of the quality verdicts (defaults when ``None``);
    ``outcomes`` the model's declared business outcomes
    (:mod:`~watchkeeper.monitor.outcomes`).
    """
    signals: Signals = {}
    events, rejected = window.events, window.rejected
    signals["count"] = float(events)
    signals["throughput"] = events / window_seconds
    signals["error_rate"] = window.errors / events if events else None
    p50, p95, p99 = window.latency_quantiles((0.5, 0.95, 0.99))
    signals |= {"latency_p50": p50, "latency_p95": p95, "latency_p99": p99}
    seen = events + rejected
    signals["quality.rejected_share"] = rejected / seen if seen else None
    signals["quality.rejected_cardinality"] = float(window.over_cap)

    current = window.dataset_profile() if window.reference_id is not None else None
    if reference is not None and current is not None and current.rows > 0:
        drift = drift_results(reference, current)
        _drift_signals(signals, drift, plan)
        _quality_signals(signals, quality_summary(reference, current, quality), plan)

    metrics = window.performance.metrics()
    wanted = CLASSIFICATION_SIGNALS if plan.task is TaskType.CLASSIFICATION else REGRESSION_SIGNALS
    for name in wanted:
        if name not in LABEL_SIGNALS:
            signals[name] = _number(metrics.get(name))
    labeled = float(metrics["labeled"])
    signals["labeled_count"] = labeled
    # Labelled rows per event of the window: how much of its traffic the performance covers.
    signals["label_coverage"] = labeled / events if events else None
    _feedback_signals(signals, window)
    signals |= outcome_signals(window.outcomes, outcomes or {}, events=events)
    return signals


def _drift_signals(signals: Signals, drift: Mapping[str, ColumnDrift], plan: ColumnPlan) -> None:
    """Drift signals; the features of the window are one family, the model's outputs another,
    each decided by :func:`~watchkeeper.stats.drift.family_verdicts` (Holm's correction), so a
    window of a healthy stream flags any feature with probability at most ``alpha`` however
    many features the model has."""
    features = family_verdicts({name: drift[name] for name in plan.features if name in drift})
    drifted = [name for name, result in features.items() if result.drift]
    signals["drift_share"] = len(drifted) / len(features) if features else None
    for name, result in features.items():
        signals[_column("drift", name, "score")] = _number(result.effect_size)
        signals[_column("drift", name, "detected")] = 1.0 if result.drift else 0.0
        signals[_column("drift", name, "p_value")] = _number(result.p_value)
    outputs = [plan.prediction] if plan.prediction is not None else list(plan.proba.values())
    output_results = list(
        family_verdicts(
            {name: drift[name] for name in outputs if name is not None and name in drift}
        ).values()
    )
    if output_results:
        scores = [r.effect_size for r in output_results if r.effect_size is not None]
        signals["prediction_drift.score"] = _number(max(scores)) if scores else None
        signals["prediction_drift.detected"] = 1.0 if any(r.drift for r in output_results) else 0.0


def _quality_signals(signals: Signals, summary: Mapping[str, Any], plan: ColumnPlan) -> None:
    columns = summary["columns"]
    for name in plan.features:
        column = columns.get(name)
        if column is None:
            continue
        checks = column["checks"]
        failed = any(
            checks[check]["verdict"] == "fail"
            and (check != "constant" or "p_value" in checks[check]["details"])
            for check in _CALIBRATED_CHECKS
            if check in checks
        )
        signals[_column("quality", name, "failed")] = 1.0 if failed else 0.0
        for check, signal in _QUALITY_CHECKS.items():
            if check in checks:
                signals[_column("quality", name, signal)] = _number(checks[check]["current"])
    duplicates = summary["dataset"].get("duplicate_rows")
    if duplicates is not None:
        signals["quality.duplicate_share"] = _number(duplicates["current"])
        signals["quality.duplicates_failed"] = 1.0 if duplicates["verdict"] == "fail" else 0.0


def _feedback_signals(signals: Signals, window: WindowProfile) -> None:
    counts = window.ratings
    total = int(counts.sum())
    signals["feedback_count"] = float(total)
    if total == 0:
        signals["feedback_mean_rating"] = None
        signals["feedback_low_share"] = None
        for rating in range(1, 6):
            signals[f"feedback_rating_{rating}_share"] = None
        return
    signals["feedback_mean_rating"] = float((counts * range(1, 6)).sum() / total)
    signals["feedback_low_share"] = float(counts[:2].sum() / total)
    for rating in range(1, 6):
        signals[f"feedback_rating_{rating}_share"] = float(counts[rating - 1] / total)
