"""The batch report as one self-contained HTML page.

:func:`render_html` turns a ``watchkeeper.report/v1`` document (docs/report-schema.md) into a page
that reads offline: summary first, then the drift table sorted by effect size with per-column
reference-vs-current distributions, then data quality, then performance. Tables are plain HTML
(readable without JavaScript); plots are drawn by plotly.js from one compact JSON blob, lazily, when
a column's ``<details>`` is opened, so a 200-column page opens fast. Plots use the binned
``histogram`` data of the document only, never raw rows.

``plotly="inline"`` embeds the single copy of plotly.js shipped in the installed ``plotly`` package;
``plotly="cdn"`` references the same plotly.js version on ``cdn.plot.ly`` instead, which keeps the
file small but needs network access to draw plots.
"""

from __future__ import annotations

import functools
import importlib.resources
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import orjson
from markupsafe import Markup

from watchkeeper.errors import ConfigError, InputError
from watchkeeper.report.formatting import check_measure, drift_order, format_p_value
from watchkeeper.report.report import REPORT_SCHEMA

if TYPE_CHECKING:
    import jinja2

__all__ = ["plotly_cdn_url", "plotly_js_version", "render_html"]

# Distributions of the largest effects are opened (and drawn) on load; the rest wait for a click.
_EAGER_PLOTS = 3
# Shares keep four significant digits: plenty for a bar height, a third of the JSON size.
_SIGNIFICANT_DIGITS = 4
_LIST_PREVIEW = 10

_VERDICT_ORDER = {"fail": 0, "warning": 1, "ok": 2}
_PER_CLASS_ORDER = ("precision", "recall", "f1", "roc_auc", "support")
_HIGHER_IS_BETTER = frozenset(
    {"accuracy", "balanced_accuracy", "f1", "f1_macro", "f1_micro", "f1_weighted", "precision",
     "precision_macro", "precision_weighted", "recall", "recall_macro", "recall_weighted",
     "roc_auc", "pr_auc", "average_precision", "r2", "explained_variance"}
)  # fmt: skip
_LOWER_IS_BETTER = frozenset(
    {"log_loss", "brier", "brier_score", "mae", "mse", "rmse", "mape", "smape", "median_ae",
     "max_error", "error_rate"}
)  # fmt: skip


def render_html(
    report: Mapping[str, Any],
    *,
    plotly: Literal["inline", "cdn"] = "inline",
    title: str | None = None,
    plotly_url: str | None = None,
) -> str:
    """Render a ``watchkeeper.report/v1`` document as one self-contained HTML page.

    ``plotly="inline"`` embeds plotly.js (about 4.8 MB) so the page draws its plots offline;
    ``plotly="cdn"`` writes a ``<script src>`` to ``plotly_url`` (default :func:`plotly_cdn_url`)
    instead, e.g. the dashboard's own copy. ``title``
    defaults to "watchkeeper report: CURRENT vs REFERENCE".

    Raises :class:`ConfigError` for an unknown ``plotly`` mode and :class:`InputError` when the
    document is not a ``watchkeeper.report/v1`` report or its histograms are malformed.
    """
    if plotly not in ("inline", "cdn"):
        raise ConfigError(f"plotly must be 'inline' or 'cdn', got {plotly!r}", key="plotly")
    if not isinstance(report, Mapping):
        raise InputError(
            f"render_html needs the report document (a mapping), got {type(report).__name__}; "
            "pass ReportResult.to_dict() or the parsed JSON file"
        )
    if report.get("schema") != REPORT_SCHEMA:
        raise InputError(
            f"not a {REPORT_SCHEMA} document (schema: {report.get('schema')!r}); "
            "render a document written by this version of watchkeeper"
        )

    reference = _mapping(report.get("reference"))
    current = _mapping(report.get("current"))
    drift = _mapping(report.get("drift"))
    drift_rows, plots = _drift_rows(drift)
    context = {
        "title": title
        or f"watchkeeper report: {current.get('name', 'current')} vs "
        f"{reference.get('name', 'reference')}",
        "report": report,
        "reference": reference,
        "current": current,
        "summary": _summary(report),
        "drift": drift,
        "drift_rows": drift_rows,
        "skipped": sorted(_mapping(drift.get("skipped")).items()),
        "missing_columns": list(drift.get("missing_columns") or []),
        "quality": _quality(_mapping(report.get("quality"))),
        "performance": _performance(report.get("performance")),
        "plot_data": _json_for_script({"plots": plots}),
        "plotly_mode": plotly,
        "plotly_js": _plotly_js() if plotly == "inline" else None,
        "plotly_src": plotly_url or plotly_cdn_url(),
        "css": Markup(_asset("report.css")),
        "script": Markup(_asset("report.js")),
    }
    page: str = _environment().get_template("report.html.j2").render(context)
    return page


def plotly_js_version() -> str:
    """The version of plotly.js shipped in the installed ``plotly`` package, e.g. ``"4.1.1"``."""
    header = _plotly_js()[:512]
    match = re.search(r"plotly\.js v(\d+\.\d+\.\d+\S*)", header)
    if match is None:
        raise ConfigError(
            "cannot read the plotly.js version from plotly/package_data/plotly.min.js; "
            "reinstall the plotly package",
            key="plotly",
        )
    return match.group(1)


def plotly_cdn_url() -> str:
    """The ``cdn.plot.ly`` address of the plotly.js version that ``plotly="inline"`` embeds."""
    return f"https://cdn.plot.ly/plotly-{plotly_js_version()}.min.js"


@dataclass(frozen=True, slots=True)
class _DriftRow:
    """One row of the drift table, with the index of its plot in the JSON blob (or None)."""

    column: str
    kind: str
    role: str
    test: str
    statistic: Any
    p_value: Any
    effect_size: Any
    effect_measure: str
    psi: Any
    drift: bool | None
    reference_count: Any
    current_count: Any
    plot: int | None
    open: bool


def _drift_rows(drift: Mapping[str, Any]) -> tuple[list[_DriftRow], list[dict[str, Any]]]:
    columns = _mapping(drift.get("columns"))
    # The terminal summary's order (report/formatting.py): features by effect, then outputs.
    ordered = [(name, columns[name]) for name in drift_order(columns)]
    rows: list[_DriftRow] = []
    plots: list[dict[str, Any]] = []
    for name, raw_entry in ordered:
        entry = _mapping(raw_entry)
        plot = _plot_data(str(name), entry.get("histogram"))
        index = None
        if plot is not None:
            index = len(plots)
            plots.append(plot)
        rows.append(
            _DriftRow(
                column=str(name),
                kind=str(entry.get("kind") or "—"),
                role=str(entry.get("role") or "feature"),
                test=str(entry.get("test") or "—"),
                statistic=entry.get("statistic"),
                p_value=entry.get("p_value"),
                effect_size=entry.get("effect_size"),
                effect_measure=str(entry.get("effect_measure") or ""),
                psi=entry.get("psi"),
                drift=entry.get("drift"),
                reference_count=entry.get("reference_count"),
                current_count=entry.get("current_count"),
                plot=index,
                open=index is not None and index < _EAGER_PLOTS,
            )
        )
    return rows, plots


def _plot_data(column: str, histogram: Any) -> dict[str, Any] | None:
    """The compact plot record of one column's binned reference/current shares."""
    if not isinstance(histogram, Mapping):
        return None
    reference = _float_array(histogram.get("reference"))
    current = _float_array(histogram.get("current"))
    if reference.shape != current.shape:
        raise InputError(
            f"histogram of column {column!r} has {reference.size} reference and "
            f"{current.size} current shares; both must have one share per bin",
            column=column,
        )
    labels = histogram.get("labels")
    edges = histogram.get("edges")
    if labels is not None:
        if len(labels) != reference.size:
            raise InputError(
                f"histogram of column {column!r} has {len(labels)} labels for "
                f"{reference.size} shares; there must be one label per share",
                column=column,
            )
        return {
            "type": "categorical",
            "labels": [str(label) for label in labels],
            "reference": _round_significant(reference),
            "current": _round_significant(current),
        }
    if edges is not None:
        edge_values = _float_array(edges)
        if edge_values.size != reference.size + 1:
            raise InputError(
                f"histogram of column {column!r} has {edge_values.size} edges for "
                f"{reference.size} bins; numeric histograms need one more edge than bins",
                column=column,
            )
        return {
            "type": "numeric",
            "edges": _round_edges(edge_values),
            "reference": _round_significant(reference),
            "current": _round_significant(current),
        }
    return None


def _float_array(values: Any) -> np.ndarray:
    # NumPy reads the document's nulls (non-finite numbers) as NaN.
    return np.empty(0) if values is None else np.asarray(values, dtype=np.float64)


def _round_significant(values: np.ndarray) -> list[float | None]:
    """Values rounded to four significant digits; NaN becomes JSON null."""
    # Printing and parsing back gives the shortest float, unlike np.round's scaled arithmetic.
    rounded = np.char.mod(f"%.{_SIGNIFICANT_DIGITS - 1}e", values).astype(np.float64)
    return _with_nulls(rounded)


def _round_edges(edges: np.ndarray) -> list[float | None]:
    """Bin edges rounded to about a hundredth of the narrowest bin, so edges stay distinct.

    Open outer edges (null in the document, for ±inf) are placed one neighbouring bin width
    further out, so the outer bins keep a visible width.
    """
    edges = edges.copy()
    if edges.size > 2 and not np.isfinite(edges[0]):
        edges[0] = edges[1] - (edges[2] - edges[1])
    if edges.size > 2 and not np.isfinite(edges[-1]):
        edges[-1] = edges[-2] + (edges[-2] - edges[-3])
    widths = np.diff(edges)
    positive = widths[np.isfinite(widths) & (widths > 0)]
    if positive.size == 0:
        return _with_nulls(edges)
    decimals = max(0, 2 - math.floor(math.log10(float(positive.min()))))
    return _with_nulls(np.char.mod(f"%.{decimals}f", edges).astype(np.float64))


def _with_nulls(values: np.ndarray) -> list[float | None]:
    return [value if math.isfinite(value) else None for value in values.tolist()]


def _summary(report: Mapping[str, Any]) -> dict[str, Any]:
    summary = dict(_mapping(report.get("summary")))
    drift = _mapping(report.get("drift"))
    if summary.get("drift_share_threshold") is None:
        summary["drift_share_threshold"] = drift.get("drift_share_threshold")
    performance = summary.get("performance")
    summary["performance"] = _mapping(performance) if performance else None
    if summary["performance"]:
        metric = str(summary["performance"].get("metric", ""))
        summary["performance_tone"] = _change_tone(metric, summary["performance"].get("change"))
    return summary


@dataclass(frozen=True, slots=True)
class _CheckRow:
    """One quality check: where, what, the numbers and the details to show."""

    column: str | None
    name: str
    reference: Any
    current: Any
    threshold: Any
    verdict: str
    details: list[tuple[str, str]]
    measure: str | None


def _quality(quality: Mapping[str, Any]) -> dict[str, Any] | None:
    if not quality:
        return None
    dataset = [
        _check_row(None, str(name), check)
        for name, check in _mapping(quality.get("dataset")).items()
    ]
    flagged: list[tuple[int, int, list[_CheckRow]]] = []
    passing: list[_CheckRow] = []
    for position, (column, checks) in enumerate(_mapping(quality.get("columns")).items()):
        rows = [_check_row(str(column), str(name), check) for name, check in checks.items()]
        worst = min((_VERDICT_ORDER.get(row.verdict, 3) for row in rows), default=3)
        if worst < _VERDICT_ORDER["ok"]:
            flagged.append((worst, position, rows))
        else:
            passing.extend(rows)
    flagged.sort(key=lambda item: item[:2])
    return {
        "passed": quality.get("passed"),
        "failures": quality.get("failures", 0),
        "warnings": quality.get("warnings", 0),
        "dataset": dataset,
        "flagged": [row for _, _, rows in flagged for row in rows],
        "passing": passing,
        "passing_columns": len({row.column for row in passing}),
    }


def _check_row(column: str | None, name: str, check: Any) -> _CheckRow:
    check = _mapping(check)
    return _CheckRow(
        column=column,
        name=str(check.get("name") or name),
        reference=check.get("reference"),
        current=check.get("current"),
        threshold=check.get("threshold"),
        verdict=str(check.get("verdict") or "n/a"),
        # The measure is said once, next to the check's name (report/formatting.py).
        details=_detail_items(
            {
                key: value
                for key, value in _mapping(check.get("details")).items()
                if key != "measure"
            }
        ),
        measure=check_measure(check),
    )


def _detail_items(details: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Details as (label, text) pairs; empty values are left out, long lists are cut short."""
    items = []
    for key, value in details.items():
        if value is None or (isinstance(value, str | list | tuple | Mapping) and not value):
            continue
        items.append((str(key).replace("_", " "), _describe(value)))
    return items


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        parts = []
        for key, inner in value.items():
            if isinstance(inner, Mapping) and {"reference", "current"} <= set(inner):
                verdict = f" ({inner['verdict']})" if inner.get("verdict") else ""
                parts.append(f"{key}: {inner['reference']} → {inner['current']}{verdict}")
            else:
                parts.append(f"{key}: {_describe(inner)}")
        return "; ".join(parts)
    if isinstance(value, list | tuple):
        shown = ", ".join(_describe(item) for item in value[:_LIST_PREVIEW])
        more = len(value) - _LIST_PREVIEW
        return f"{shown}, … ({more} more)" if more > 0 else shown
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _format_number(value)
    return str(value)


def _performance(performance: Any) -> dict[str, Any] | None:
    if not isinstance(performance, Mapping):
        return None
    reference = _mapping(performance.get("reference"))
    current = _mapping(performance.get("current"))
    change = _mapping(performance.get("change"))
    names = [name for name, value in reference.items() if _is_scalar(value)]
    names += [name for name, value in current.items() if _is_scalar(value) and name not in names]
    metrics = []
    for name in names:
        compared = _mapping(change.get(name))
        ref_value = compared.get("reference", reference.get(name))
        cur_value = compared.get("current", current.get(name))
        delta = compared.get("change")
        if delta is None and _is_number(ref_value) and _is_number(cur_value):
            delta = cur_value - ref_value
        metrics.append(
            {
                "name": name,
                "reference": ref_value,
                "current": cur_value,
                "change": delta,
                "relative_change": compared.get("relative_change"),
                "tone": _change_tone(name, delta),
            }
        )
    matrices = [
        (label, _confusion(_mapping(side.get("confusion_matrix"))))
        for label, side in (("Reference", reference), ("Current", current))
        if side.get("confusion_matrix")
    ]
    return {
        "task": performance.get("task"),
        "target": performance.get("target"),
        "prediction": performance.get("prediction"),
        "metrics": metrics,
        "confusion": matrices,
        "per_class": _per_class(
            _mapping(reference.get("per_class")), _mapping(current.get("per_class"))
        ),
    }


def _confusion(confusion: Mapping[str, Any]) -> dict[str, Any]:
    """Confusion matrix cells with a shade from the share of their true-label row."""
    labels = [str(label) for label in confusion.get("labels") or []]
    matrix = np.array(confusion.get("matrix") or [], dtype=np.float64)
    if matrix.shape != (len(labels), len(labels)):
        raise InputError(
            f"confusion matrix of shape {matrix.shape} for {len(labels)} labels; "
            "it must be square with one row and one column per label"
        )
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    rows = [
        {
            "label": label,
            "cells": [
                {"count": int(count), "share": share, "diagonal": i == j}
                for j, (count, share) in enumerate(
                    zip(matrix[i].tolist(), shares[i].tolist(), strict=True)
                )
            ],
        }
        for i, label in enumerate(labels)
    ]
    return {"labels": labels, "rows": rows}


def _per_class(reference: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any] | None:
    """Per-class rows and the metrics they hold, the usual ones first."""
    if not reference and not current:
        return None
    labels = list(reference) + [label for label in current if label not in reference]
    entries = [_mapping(side.get(label)) for side in (reference, current) for label in labels]
    found = {key for entry in entries for key, value in entry.items() if _is_scalar(value)}
    metrics = [key for key in _PER_CLASS_ORDER if key in found]
    metrics += sorted(found.difference(_PER_CLASS_ORDER))
    rows = [
        {
            "label": str(label),
            "reference": _mapping(reference.get(label)),
            "current": _mapping(current.get(label)),
        }
        for label in labels
    ]
    return {"metrics": metrics, "rows": rows}


def _change_tone(metric: str, change: Any) -> str:
    """``better``/``worse``/``neutral`` for a metric change, by the metric's direction."""
    if not _is_number(change) or change == 0:
        return "neutral"
    if metric in _HIGHER_IS_BETTER:
        return "better" if change > 0 else "worse"
    if metric in _LOWER_IS_BETTER:
        return "better" if change < 0 else "worse"
    return "neutral"


def _format_number(value: Any) -> str:
    """A number for a table cell: four significant digits, thousands separated, ``—`` for null."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if not isinstance(value, float):
        return str(value)
    if not math.isfinite(value):
        return "—"
    magnitude = abs(value)
    if magnitude >= 1e4:
        return f"{value:,.0f}"
    if magnitude >= 1e-3 or value == 0:
        return f"{value:.4g}"
    return f"{value:.2e}"


def _format_percent(value: Any) -> str:
    if not _is_number(value):
        return "—"
    return f"{value * 100:.1f}%"


def _format_change(value: Any) -> str:
    if not _is_number(value):
        return "—"
    text = _format_number(float(value))
    return text if value <= 0 else f"+{text}"


def _cell_shade(share: float) -> str:
    """A background for a confusion-matrix cell (a CSS custom property, read by the stylesheet)."""
    return f"--share:{min(max(share, 0.0), 1.0):.3f}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_scalar(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _json_for_script(data: Any) -> Markup:
    """JSON for a ``<script type="application/json">`` block.

    ``<``, ``>`` and ``&`` are written as JSON unicode escapes, so no string in the data can
    close the script element or open a comment; ``JSON.parse`` reads them back unchanged.
    """
    text = orjson.dumps(data).decode()
    escaped = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(escaped)


@functools.cache
def _plotly_js() -> Markup:
    source = importlib.resources.files("plotly") / "package_data" / "plotly.min.js"
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise ConfigError(
            "plotly/package_data/plotly.min.js is missing from the installed plotly package; "
            "reinstall plotly",
            key="plotly",
        ) from error
    # Inside a string or regex "<\/" equals "</"; in raw HTML "</script" would end the element.
    return Markup(re.sub(r"</(script)", r"<\\/\1", text, flags=re.IGNORECASE))


@functools.cache
def _asset(name: str) -> str:
    return (importlib.resources.files("watchkeeper.report") / "templates" / name).read_text(
        encoding="utf-8"
    )


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("watchkeeper.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        num=_format_number,
        pvalue=lambda value: format_p_value(value if _is_number(value) else None),
        percent=_format_percent,
        change=_format_change,
        shade=_cell_shade,
        yesno=lambda value: "—" if value is None else ("yes" if value else "no"),
    )
    return environment
