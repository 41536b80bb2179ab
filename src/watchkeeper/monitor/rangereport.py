"""The ``watchkeeper.report/v1`` document of a time range, built from merged window profiles."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from watchkeeper.modelspec import ModelSpec
from watchkeeper.monitor.signals import drift_results
from watchkeeper.monitor.windows import ColumnPlan, WindowProfile
from watchkeeper.profiles import DatasetProfile, quality_summary
from watchkeeper.report.report import REPORT_SCHEMA
from watchkeeper.stats.drift import DEFAULT_DRIFT_SHARE
from watchkeeper.stats.quality import QualityThresholds

__all__ = ["range_report_document"]


def _role(plan: ColumnPlan, name: str) -> str:
    if name == plan.prediction:
        return "prediction"
    if name in plan.proba.values():
        return "proba"
    return "feature"


def _ranking_order(row: dict[str, Any]) -> tuple[float, str]:
    return -float(row["effect_size"] or 0.0), str(row["column"])


def range_report_document(
    *,
    spec: ModelSpec,
    plan: ColumnPlan,
    reference: DatasetProfile | None,
    window: WindowProfile,
    info: dict[str, Any],
) -> dict[str, Any]:
    """Drift, quality and realized performance of ``window`` (a merge of windows) as a report.

    The layout is that of :class:`watchkeeper.report.Report` (``docs/report-schema.md``);
    ``info`` (model, range, windows merged) goes under ``"window"``.
    """
    from watchkeeper import __version__

    current = window.dataset_profile() if window.reference_id is not None else None
    drift = drift_results(reference, current)
    columns = {
        name: {"role": _role(plan, name), **result.to_dict()} for name, result in drift.items()
    }
    features = [name for name in plan.features if name in drift]
    drifted = [name for name in features if drift[name].drift]
    tested = len(features)
    drift_share = len(drifted) / tested if tested else 0.0
    outputs = [name for name in drift if _role(plan, name) != "feature"]
    prediction_drift = any(drift[name].drift for name in outputs) if outputs else None
    ranking = sorted(
        (
            {
                "column": name,
                "effect_size": columns[name]["effect_size"],
                "drift": drift[name].drift,
            }
            for name in features
        ),
        key=_ranking_order,
    )
    skipped = {
        name: f"{kind.value} column: not tested for drift"
        for name, kind in spec.features.items()
        if not kind.is_monitored_for_drift
    }
    if reference is None:
        skipped |= {name: "no reference profile" for name in spec.features if name not in skipped}
    dataset_drift = tested > 0 and drift_share >= DEFAULT_DRIFT_SHARE

    column_quality: dict[str, Any] = {}
    if reference is not None and current is not None and current.rows > 0:
        summary = quality_summary(reference, current)
        column_quality = {
            name: entry["checks"]
            for name, entry in summary["columns"].items()  # type: ignore[attr-defined]
        }
    seen = window.events + window.rejected
    rejected_share = window.rejected / seen if seen else 0.0
    limit = QualityThresholds().max_non_numeric_share
    dataset_quality = {
        "rejected_share": {
            "name": "rejected_share",
            "reference": None,
            "current": rejected_share,
            "threshold": limit,
            "verdict": "fail" if rejected_share > limit else "ok",
            "details": {"rejected": window.rejected, "accepted": window.events},
        }
    }
    verdicts = [check["verdict"] for check in dataset_quality.values()] + [
        check["verdict"] for checks in column_quality.values() for check in checks.values()
    ]
    failures, warnings = verdicts.count("fail"), verdicts.count("warning")

    metrics = window.performance.metrics()
    performance = None
    headline = None
    if metrics.get("rows"):
        performance = {
            "task": spec.task.value,
            "target": "label",
            "prediction": spec.prediction,
            "reference": None,
            "current": metrics,
            "change": {},
        }
        metric = "accuracy" if spec.task.value == "classification" else "rmse"
        headline = {
            "metric": metric,
            "reference": None,
            "current": metrics.get(metric),
            "change": None,
            "relative_change": None,
        }
    reference_rows = 0 if reference is None else reference.rows
    current_rows = window.events
    return {
        "schema": REPORT_SCHEMA,
        "watchkeeper_version": __version__,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "reference": {"name": "reference", "rows": reference_rows, "columns": len(plan.kinds)},
        "current": {"name": info["name"], "rows": current_rows, "columns": len(plan.kinds)},
        "data_schema": {
            "features": {name: kind.value for name, kind in spec.features.items()},
            "outputs": {
                name: kind.value for name, kind in plan.kinds.items() if name not in spec.features
            },
            "target": "label",
            "target_kind": spec.label_kind.value,
            "prediction": spec.prediction,
            "proba": dict(spec.proba or {}),
            "task": spec.task.value,
        },
        "summary": {
            "dataset_drift": dataset_drift,
            "drift_share": drift_share,
            "drifted_columns": len(drifted),
            "tested_columns": tested,
            "prediction_drift": prediction_drift,
            "quality_passed": failures == 0,
            "quality_failures": failures,
            "quality_warnings": warnings,
            "performance": headline,
        },
        "drift": {
            "dataset_drift": dataset_drift,
            "drift_share": drift_share,
            "drift_share_threshold": DEFAULT_DRIFT_SHARE,
            "drifted_columns": len(drifted),
            "tested_columns": tested,
            "prediction_drift": prediction_drift,
            "ranking": ranking,
            "columns": columns,
            "skipped": skipped,
        },
        "quality": {
            "passed": failures == 0,
            "failures": failures,
            "warnings": warnings,
            "dataset": dataset_quality,
            "columns": column_quality,
        },
        "performance": performance,
        "window": info,
    }
