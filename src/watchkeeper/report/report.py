"""The batch report: drift, data quality and performance of current data against a reference.

A :class:`Report` is configured once and run on any number of (reference, current) pairs::

    >>> import numpy as np, pandas as pd
    >>> from watchkeeper import Report
    >>> rng = np.random.default_rng(0)
    >>> reference = pd.DataFrame({"x": rng.normal(size=2000), "y": rng.normal(size=2000)})
    >>> current = pd.DataFrame({"x": rng.normal(0.5, 1, 2000), "y": rng.normal(size=2000)})
    >>> result = Report().run(reference, current)
    >>> result.drifted_columns
    ['x']

Each column is read once, its values sorted once, and every statistic is derived from that;
columns run in a thread pool (NumPy's sort releases the GIL, so both cores are used).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from watchkeeper.errors import ConfigError, EmptyDataError, SchemaError
from watchkeeper.frame import as_dataframe, category_counts, numeric_values
from watchkeeper.schema import (
    ColumnKind,
    ResolvedSchema,
    Schema,
    TaskType,
    infer_kind,
    infer_schema,
)

if TYPE_CHECKING:
    import pandas as pd

    from watchkeeper.stats.drift import DriftConfig
    from watchkeeper.stats.quality import QualityThresholds

__all__ = ["REPORT_SCHEMA", "Report", "ReportResult", "assemble_document"]

REPORT_SCHEMA = "watchkeeper.report/v1"

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class _ColumnOutcome:
    """What one column contributed: its drift entry (or why it was skipped) and its checks."""

    name: str
    role: str
    drift: dict[str, Any] | None
    skipped: str | None
    quality: dict[str, Any] = field(default_factory=dict)


class Report:
    """Drift + data quality + performance of ``current`` against ``reference``.

    Parameters
    ----------
    schema:
        Kinds, exclusions and the target / prediction / probability columns (all optional).
    drift:
        The drift configuration for every column unless overridden below.
    drift_by_kind:
        Per kind (``"numeric"``, ``"categorical"``, ``"boolean"``) configurations.
    drift_by_column:
        Per column configurations; these win over ``drift_by_kind`` and ``drift``.
    drift_share:
        Dataset drift is declared when at least this share of features drifted (default 0.5).
    quality:
        Thresholds of the data-quality verdicts (see docs/quality.md).
    workers:
        Threads used across columns (default: the number of CPUs).
    """

    def __init__(
        self,
        *,
        schema: Schema | None = None,
        drift: DriftConfig | None = None,
        drift_by_kind: Mapping[str, DriftConfig] | None = None,
        drift_by_column: Mapping[str, DriftConfig] | None = None,
        drift_share: float | None = None,
        quality: QualityThresholds | None = None,
        workers: int | None = None,
    ) -> None:
        from watchkeeper.stats.drift import DEFAULT_DRIFT_SHARE

        self.schema = schema or Schema()
        self.drift = drift
        self.drift_by_kind = {ColumnKind(k).value: v for k, v in (drift_by_kind or {}).items()}
        self.drift_by_column = dict(drift_by_column or {})
        self.drift_share = DEFAULT_DRIFT_SHARE if drift_share is None else drift_share
        if not 0.0 < self.drift_share <= 1.0:
            raise ConfigError(
                f"drift_share must be in (0, 1], got {self.drift_share}", key="drift_share"
            )
        self.quality = quality
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}", key="workers")
        for kind, config in self.drift_by_kind.items():
            config.validate_for(kind)

    def __repr__(self) -> str:
        return (
            f"Report(schema={self.schema!r}, drift={self.drift!r}, drift_share={self.drift_share})"
        )

    def run(
        self,
        reference: Any,
        current: Any,
        *,
        reference_name: str = "reference",
        current_name: str = "current",
        progress: ProgressCallback | None = None,
    ) -> ReportResult:
        """Compute the report; ``progress(done, total)`` is called as columns finish."""
        reference_frame = as_dataframe(reference, name=reference_name)
        current_frame = as_dataframe(current, name=current_name)
        resolved = infer_schema(reference_frame, self.schema)
        _check_roles_present(resolved, current_frame, current_name)
        self._check_drift_columns(resolved)

        columns = _monitored_columns(resolved, current_frame)
        if not any(role == "feature" for _, role in columns):
            raise SchemaError(
                f"no common columns to compare: {reference_name} has "
                f"{_preview(reference_frame.columns)}, {current_name} has "
                f"{_preview(current_frame.columns)}"
            )
        kinds = resolved.kinds
        total = len(columns) + 1
        done = 0

        def analyse(item: tuple[str, str]) -> _ColumnOutcome:
            name, role = item
            return self._analyse_column(
                name, role, kinds[name], reference_frame[name], current_frame[name]
            )

        outcomes: list[_ColumnOutcome] = []
        with ThreadPoolExecutor(max_workers=min(self.workers, len(columns) + 1)) as pool:
            # The data-set checks (row hashing, kinds of the current columns) are as long as a
            # few columns: they run beside the columns instead of after them.
            dataset_task = pool.submit(
                self._dataset_quality, reference_frame, current_frame, resolved
            )
            for outcome in pool.map(analyse, columns):
                outcomes.append(outcome)
                done += 1
                if progress is not None:
                    progress(done, total)
            dataset_quality = dataset_task.result()
        performance = (
            _performance(
                reference_frame,
                current_frame,
                resolved,
                positive_label_given=not isinstance(self.schema.proba, str),
            )
            if resolved.target is not None
            else None
        )
        if progress is not None:
            progress(total, total)

        document = self._assemble(
            outcomes,
            dataset_quality,
            performance,
            resolved,
            reference_info={
                "name": reference_name,
                "rows": len(reference_frame),
                "columns": len(reference_frame.columns),
            },
            current_info={
                "name": current_name,
                "rows": len(current_frame),
                "columns": len(current_frame.columns),
            },
            missing_columns=[name for name in resolved.features if name not in current_frame],
        )
        return ReportResult(document)

    def _check_drift_columns(self, resolved: ResolvedSchema) -> None:
        unknown = sorted(set(self.drift_by_column) - set(resolved.features))
        if unknown:
            raise ConfigError(
                f"drift_by_column names column(s) that are not features of the reference data: "
                f"{', '.join(unknown)} (features: {_preview(resolved.features)})",
                key="drift_by_column",
            )

    def _drift_config(self, name: str, kind: ColumnKind) -> DriftConfig | None:
        config = self.drift_by_column.get(name) or self.drift_by_kind.get(kind.value) or self.drift
        if config is not None and config.test is not None:
            config.validate_for(kind.value)
        return config

    def _analyse_column(
        self,
        name: str,
        role: str,
        kind: ColumnKind,
        reference: pd.Series,
        current: pd.Series,
    ) -> _ColumnOutcome:
        from watchkeeper.stats.drift import categorical_drift, numeric_drift
        from watchkeeper.stats.quality import categorical_column_quality, numeric_column_quality

        config = self._drift_config(name, kind)
        if kind is ColumnKind.NUMERIC:
            reference_values = numeric_values(reference)
            current_values = numeric_values(current)
            quality = numeric_column_quality(
                reference_values, current_values, self.quality, column=name
            )
            reference_finite = reference_values.finite
            current_finite = current_values.finite
            if reference_finite.size == 0:
                raise EmptyDataError(
                    f"column {name!r} has no numeric values in the reference data "
                    f"(all missing or non-numeric); exclude it with --exclude {name}",
                    column=name,
                )
            if current_finite.size == 0:
                return _ColumnOutcome(
                    name, role, None, "no numeric values in the current data", _checks(quality)
                )
            # The finite arrays are fresh copies owned here, so they may be sorted in place.
            drift = numeric_drift(
                reference_finite, current_finite, config, column=name, overwrite_input=True
            )
        else:
            reference_counts = category_counts(reference)
            current_counts = category_counts(current)
            quality = categorical_column_quality(
                reference_counts,
                current_counts,
                reference_rows=len(reference),
                current_rows=len(current),
                reference_missing=int(reference.isna().sum()),
                current_missing=int(current.isna().sum()),
                thresholds=self.quality,
                column=name,
            )
            if reference_counts.sum() == 0:
                raise EmptyDataError(
                    f"column {name!r} has no values in the reference data (all missing); "
                    f"exclude it with --exclude {name}",
                    column=name,
                )
            if current_counts.sum() == 0:
                return _ColumnOutcome(
                    name, role, None, "no values in the current data", _checks(quality)
                )
            labels = list(reference_counts.index)
            unseen = [label for label in current_counts.index if label not in reference_counts]
            all_labels = labels + unseen
            drift = categorical_drift(
                all_labels,
                reference_counts.reindex(all_labels, fill_value=0).to_numpy(dtype=np.int64),
                current_counts.reindex(all_labels, fill_value=0).to_numpy(dtype=np.int64),
                config,
                kind=kind.value,
                column=name,
            )
        entry = {"role": role, **drift.to_dict()}
        return _ColumnOutcome(name, role, entry, None, _checks(quality))

    def _dataset_quality(
        self,
        reference: pd.DataFrame,
        current: pd.DataFrame,
        resolved: ResolvedSchema,
    ) -> dict[str, Any]:
        from watchkeeper.stats.quality import dataset_quality

        current_kinds = {
            name: infer_kind(current[name], schema=self.schema)
            for name in current.columns
            if name not in self.schema.exclude
        }
        checks = dataset_quality(
            reference,
            current,
            reference_kinds=resolved.kinds,
            current_kinds=current_kinds,
            thresholds=self.quality,
        )
        return {name: check.to_dict() for name, check in checks.items()}

    def _assemble(
        self,
        outcomes: list[_ColumnOutcome],
        dataset_quality: dict[str, Any],
        performance: dict[str, Any] | None,
        resolved: ResolvedSchema,
        *,
        reference_info: dict[str, Any],
        current_info: dict[str, Any],
        missing_columns: list[str],
    ) -> dict[str, Any]:
        skipped = {o.name: o.skipped for o in outcomes if o.skipped is not None}
        for name, kind in resolved.features.items():
            if not kind.is_monitored_for_drift:
                skipped[name] = f"{kind.value} column: not tested for drift"
            elif name in missing_columns:
                skipped[name] = f"missing from the {current_info['name']} data: not tested"
        return assemble_document(
            drift_columns={o.name: o.drift for o in outcomes if o.drift is not None},
            skipped=skipped,
            column_quality={o.name: o.quality for o in outcomes if o.quality},
            dataset_quality=dataset_quality,
            performance=performance,
            headline=_headline(performance),
            data_schema=resolved.to_dict(),
            drift_share_threshold=self.drift_share,
            reference_info=reference_info,
            current_info=current_info,
            missing_columns=missing_columns,
        )


def assemble_document(
    *,
    drift_columns: Mapping[str, Mapping[str, Any]],
    skipped: Mapping[str, str],
    column_quality: Mapping[str, Any],
    dataset_quality: Mapping[str, Any],
    performance: Mapping[str, Any] | None,
    headline: Mapping[str, Any] | None,
    data_schema: Mapping[str, Any],
    drift_share_threshold: float,
    reference_info: Mapping[str, Any],
    current_info: Mapping[str, Any],
    missing_columns: Sequence[str] = (),
) -> dict[str, Any]:
    """The ``watchkeeper.report/v1`` document from per-column drift entries and checks.

    Shared by the batch :class:`Report` and the service's range reports, so the summary, the
    ranking and the verdict counts mean the same everywhere. ``drift_columns`` entries carry
    their ``role`` (feature, prediction, proba, target) next to the drift result's fields.
    ``missing_columns`` are features of the reference that the current data lacks: listed in
    the summary and under ``drift``, never silently dropped.
    """
    from watchkeeper import __version__

    features = {name: e for name, e in drift_columns.items() if e["role"] == "feature"}
    drifted = [name for name, entry in features.items() if entry["drift"]]
    tested = len(features)
    drift_share = len(drifted) / tested if tested else 0.0
    outputs = [e for e in drift_columns.values() if e["role"] in ("prediction", "proba")]
    prediction_drift = any(bool(e["drift"]) for e in outputs) if outputs else None
    ranking = sorted(
        (
            {"column": name, "effect_size": entry["effect_size"], "drift": entry["drift"]}
            for name, entry in features.items()
        ),
        key=lambda row: (-(row["effect_size"] or 0.0), row["column"]),
    )
    dataset_drift = tested > 0 and drift_share >= drift_share_threshold
    verdicts = [check["verdict"] for check in dataset_quality.values()] + [
        check["verdict"] for checks in column_quality.values() for check in checks.values()
    ]
    failures = verdicts.count("fail")
    warnings = verdicts.count("warning")
    return {
        "schema": REPORT_SCHEMA,
        "watchkeeper_version": __version__,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "reference": dict(reference_info),
        "current": dict(current_info),
        "data_schema": dict(data_schema),
        "summary": {
            "dataset_drift": dataset_drift,
            "drift_share": drift_share,
            "drifted_columns": len(drifted),
            "tested_columns": tested,
            "prediction_drift": prediction_drift,
            "quality_passed": failures == 0,
            "quality_failures": failures,
            "quality_warnings": warnings,
            "missing_columns": sorted(missing_columns),
            "performance": None if headline is None else dict(headline),
        },
        "drift": {
            "dataset_drift": dataset_drift,
            "drift_share": drift_share,
            "drift_share_threshold": drift_share_threshold,
            "drifted_columns": len(drifted),
            "tested_columns": tested,
            "prediction_drift": prediction_drift,
            "ranking": ranking,
            "columns": {name: dict(entry) for name, entry in drift_columns.items()},
            "skipped": dict(skipped),
            "missing_columns": sorted(missing_columns),
        },
        "quality": {
            "passed": failures == 0,
            "failures": failures,
            "warnings": warnings,
            "dataset": dict(dataset_quality),
            "columns": dict(column_quality),
        },
        "performance": None if performance is None else dict(performance),
    }


class ReportResult:
    """A computed report: the ``watchkeeper.report/v1`` document and ways to save it."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._document = document

    def __repr__(self) -> str:
        summary = self._document["summary"]
        return (
            f"ReportResult(dataset_drift={summary['dataset_drift']}, "
            f"drift_share={summary['drift_share']:.3f}, "
            f"quality_passed={summary['quality_passed']})"
        )

    @property
    def dataset_drift(self) -> bool:
        """Whether the share of drifted features reached the threshold."""
        return bool(self._document["drift"]["dataset_drift"])

    @property
    def drift_share(self) -> float:
        """Share of tested features that drifted."""
        return float(self._document["drift"]["drift_share"])

    @property
    def drifted_columns(self) -> list[str]:
        """Drifted features, largest effect first."""
        return [row["column"] for row in self._document["drift"]["ranking"] if row["drift"]]

    @property
    def summary(self) -> dict[str, Any]:
        """The headline numbers (a copy of the document's ``summary``)."""
        return dict(self._document["summary"])

    def to_dict(self) -> dict[str, Any]:
        """The report document (JSON-ready; see docs/report-schema.md)."""
        return self._document

    def to_json(self, *, indent: bool = False) -> str:
        """The report document as JSON text."""
        import orjson

        option = orjson.OPT_SERIALIZE_NUMPY | (orjson.OPT_INDENT_2 if indent else 0)
        return orjson.dumps(self._document, option=option).decode()

    def save_json(self, path: str | Path, *, indent: bool = True) -> Path:
        """Write the JSON document to ``path`` and return the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.to_json(indent=indent), encoding="utf-8")
        return target

    def to_html(self, *, plotly: str = "inline", title: str | None = None) -> str:
        """A self-contained HTML page (``plotly="cdn"`` references plotly.js instead)."""
        from watchkeeper.report.html import render_html

        if plotly not in ("inline", "cdn"):
            raise ConfigError(f"plotly must be 'inline' or 'cdn', got {plotly!r}", key="plotly")
        return render_html(self._document, plotly=plotly, title=title)  # type: ignore[arg-type]

    def save_html(
        self, path: str | Path, *, plotly: str = "inline", title: str | None = None
    ) -> Path:
        """Write the HTML page to ``path`` and return the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.to_html(plotly=plotly, title=title), encoding="utf-8")
        return target


def _checks(quality: Mapping[str, Any]) -> dict[str, Any]:
    return {name: check.to_dict() for name, check in quality.items()}


def _preview(columns: Any) -> str:
    names = [str(c) for c in columns]
    shown = ", ".join(names[:8])
    return f"[{shown}{', …' if len(names) > 8 else ''}]"


def _check_roles_present(resolved: ResolvedSchema, current: pd.DataFrame, label: str) -> None:
    roles = [("target", resolved.target), ("prediction", resolved.prediction)] + [
        ("probability", column) for column in resolved.proba.values()
    ]
    for role, column in roles:
        if column is not None and column not in current.columns:
            raise SchemaError(
                f"{role} column {column!r} is not in the {label} data "
                f"(columns: {_preview(current.columns)})",
                column=column,
            )
    if resolved.target is not None and resolved.prediction is None and not resolved.proba:
        raise SchemaError(
            f"target column {resolved.target!r} given without a prediction or probability "
            "column: add --prediction COL or --proba COL to compute performance",
            column=resolved.target,
        )


def _monitored_columns(resolved: ResolvedSchema, current: pd.DataFrame) -> list[tuple[str, str]]:
    present = set(current.columns)
    columns = [
        (name, "feature")
        for name, kind in resolved.features.items()
        if kind.is_monitored_for_drift and name in present
    ]
    if resolved.prediction is not None:
        columns.append((resolved.prediction, "prediction"))
    columns.extend(
        (column, "proba") for column in resolved.proba.values() if column != resolved.prediction
    )
    target_kind = resolved.target_kind
    if (
        resolved.target is not None
        and target_kind is not None
        and target_kind.is_monitored_for_drift
    ):
        columns.append((resolved.target, "target"))
    return columns


def _performance(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    resolved: ResolvedSchema,
    *,
    positive_label_given: bool,
) -> dict[str, Any]:
    from watchkeeper.stats.performance import (
        classification_metrics,
        compare_metrics,
        regression_metrics,
    )

    assert resolved.target is not None
    target = resolved.target

    prediction = resolved.prediction

    def metrics(frame: pd.DataFrame) -> dict[str, Any]:
        y_true = frame[target].to_numpy()
        y_pred = None if prediction is None else frame[prediction].to_numpy()
        if resolved.task is TaskType.REGRESSION:
            if prediction is None:
                raise SchemaError("a regression target needs --prediction", column=target)
            return dict(
                regression_metrics(
                    numeric_values(frame[target]).values,
                    numeric_values(frame[prediction]).values,
                )
            )
        if not resolved.proba:
            return classification_metrics(y_true, y_pred)
        if len(resolved.proba) == 1:
            # One column holds the positive-class probability; its label is the one the user
            # named, or else the last class of the target (``1`` for 0/1 targets).
            ((label, column),) = resolved.proba.items()
            return classification_metrics(
                y_true,
                y_pred,
                numeric_values(frame[column]).values,
                positive_label=label if positive_label_given else None,
            )
        proba = np.column_stack(
            [numeric_values(frame[column]).values for column in resolved.proba.values()]
        )
        return classification_metrics(y_true, y_pred, proba, classes=list(resolved.proba))

    reference_metrics = metrics(reference)
    current_metrics = metrics(current)
    return {
        "task": None if resolved.task is None else resolved.task.value,
        "target": target,
        "prediction": resolved.prediction,
        "reference": reference_metrics,
        "current": current_metrics,
        "change": compare_metrics(reference_metrics, current_metrics),
    }


def _headline(performance: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if performance is None:
        return None
    metric = "accuracy" if performance["task"] == TaskType.CLASSIFICATION.value else "rmse"
    change = performance["change"].get(metric)
    if change is None:
        return None
    return {"metric": metric, **change}
