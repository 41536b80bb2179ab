"""The ``watchkeeper.report/v1`` document of a time range, built from merged window profiles."""

from __future__ import annotations

from typing import Any

from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor.signals import drift_results
from watchkeeper.monitor.windows import ColumnPlan, WindowProfile
from watchkeeper.profiles import DatasetProfile, quality_summary
from watchkeeper.report.report import assemble_document
from watchkeeper.stats.drift import DEFAULT_DRIFT_SHARE

__all__ = ["range_report_document"]


def _role(plan: ColumnPlan, name: str) -> str:
    if name == plan.prediction:
        return "prediction"
    if name in plan.proba.values():
        return "proba"
    return "feature"


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
    current = window.dataset_profile() if window.reference_id is not None else None
    drift = drift_results(reference, current)
    columns = {
        name: {"role": _role(plan, name), **result.to_dict()} for name, result in drift.items()
    }
    skipped = {
        name: f"{kind.value} column: not tested for drift"
        for name, kind in spec.features.items()
        if not kind.is_monitored_for_drift
    }
    if reference is None:
        skipped |= {name: "no reference profile" for name in spec.features if name not in skipped}

    column_quality: dict[str, Any] = {}
    duplicates: dict[str, Any] = {}
    if reference is not None and current is not None and current.rows > 0:
        summary = quality_summary(reference, current, spec.quality)
        column_quality = {
            name: entry["checks"]
            for name, entry in summary["columns"].items()  # type: ignore[attr-defined]
        }
        duplicates = dict(summary["dataset"])  # type: ignore[call-overload]
    seen = window.events + window.rejected
    rejected_share = window.rejected / seen if seen else 0.0
    limit = spec.quality.max_non_numeric_share
    dataset_quality = {
        "rejected_share": {
            "name": "rejected_share",
            "reference": None,
            "current": rejected_share,
            "threshold": limit,
            "verdict": "fail" if rejected_share > limit else "ok",
            "details": {"rejected": window.rejected, "accepted": window.events},
        },
        **duplicates,
    }

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
    document = assemble_document(
        drift_columns=columns,
        skipped=skipped,
        column_quality=column_quality,
        dataset_quality=dataset_quality,
        performance=performance,
        headline=headline,
        data_schema={
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
        drift_share_threshold=DEFAULT_DRIFT_SHARE,
        reference_info={"name": "reference", "rows": reference_rows, "columns": len(plan.kinds)},
        current_info={"name": info["name"], "rows": window.events, "columns": len(plan.kinds)},
    )
    document["window"] = info
    return document
