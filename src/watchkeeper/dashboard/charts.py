"""Plotly figure specs (plain dicts) for the dashboard's charts, from a model's windows.

plotly.js draws them in the browser; the specs are built here so what a chart shows is decided
in one tested place. Every chart's x axis is the windows' start times (UTC); a window without
a value leaves a gap, never a zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from watchkeeper.signalkey import feature_of

__all__ = ["backtest_timeline", "model_figures", "rollout_figures", "sparkline"]

_CLASSIFICATION: Final = ("accuracy", "f1_macro", "roc_auc")
_REGRESSION: Final = ("mae", "rmse", "r2")
_LAYOUT: Final = {
    "margin": {"l": 60, "r": 20, "t": 10, "b": 40},
    "height": 260,
    "hovermode": "x unified",
    "legend": {"orientation": "h", "y": -0.25},
    "xaxis": {"type": "date"},
}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _values(windows: Sequence[Mapping[str, Any]], signal: str) -> list[float | None]:
    return [_number(window["signals"].get(signal)) for window in windows]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _has(values: Sequence[float | None]) -> bool:
    return any(value is not None for value in values)


def _has_any(windows: Sequence[Mapping[str, Any]], signal: str) -> bool:
    """Whether any window has a non-zero ``signal`` (a count that says the data exists)."""
    return any(_number(window["signals"].get(signal)) for window in windows)


def _line(x: list[str], y: list[float | None], name: str, **extra: Any) -> dict[str, Any]:
    return {"type": "scatter", "mode": "lines+markers", "x": x, "y": y, "name": name, **extra}


def _figure(
    traces: list[dict[str, Any]], *, height: int | None = None, **layout: Any
) -> dict[str, Any]:
    merged = {**_LAYOUT, **layout}
    if height is not None:
        merged["height"] = height
    return {"data": traces, "layout": merged}


def _drift_heatmap(
    windows: Sequence[Mapping[str, Any]], x: list[str], features: Sequence[str]
) -> dict[str, Any] | None:
    """Feature × window effect sizes; a cross where the calibrated verdict says drift."""
    drifting = [f for f in features if _has(_values(windows, f"drift.{f}.score"))]
    if not drifting:
        return None
    z = [_values(windows, f"drift.{feature}.score") for feature in drifting]
    bounds = [[window["start"], window["end"]] for window in windows]
    marks_x, marks_y, marks_data = [], [], []
    for feature in drifting:
        for position, value in enumerate(_values(windows, f"drift.{feature}.detected")):
            if value == 1.0:
                marks_x.append(x[position])
                marks_y.append(feature)
                marks_data.append(bounds[position])
    heatmap = {
        "type": "heatmap",
        "x": x,
        "y": drifting,
        "z": z,
        "customdata": [bounds] * len(drifting),
        "colorscale": "YlOrRd",
        "reversescale": True,
        "zmin": 0.0,
        "colorbar": {"title": {"text": "effect"}},
        "hovertemplate": "%{y}<br>%{x}<br>effect %{z:.3f}<extra></extra>",
        "name": "effect size",
    }
    marks = {
        "type": "scatter",
        "mode": "markers",
        "x": marks_x,
        "y": marks_y,
        "customdata": marks_data,
        "marker": {"symbol": "x-thin", "size": 9, "line": {"width": 2, "color": "#1f2937"}},
        "name": "drift detected",
        "hovertemplate": "%{y}<br>%{x}<br>drift detected<extra></extra>",
    }
    height = max(220, 40 + 22 * len(drifting))
    return _figure(
        [heatmap, marks],
        height=height,
        hovermode="closest",
        yaxis={"automargin": True, "autorange": "reversed"},
        showlegend=False,
    )


def _feature_heatmap(
    windows: Sequence[Mapping[str, Any]],
    x: list[str],
    features: Sequence[str],
    signal: str,
    title: str,
) -> dict[str, Any] | None:
    rows = [f for f in features if _has(_values(windows, f"quality.{f}.{signal}"))]
    if not rows:
        return None
    z = [_values(windows, f"quality.{feature}.{signal}") for feature in rows]
    failed = [_values(windows, f"quality.{feature}.failed") for feature in rows]
    heatmap = {
        "type": "heatmap",
        "x": x,
        "y": rows,
        "z": z,
        "customdata": failed,
        "colorscale": "Blues",
        "reversescale": True,
        "zmin": 0.0,
        # Shares: a clean range stays pale instead of filling the colour scale with noise.
        "zmax": max(0.05, *(value for row in z for value in row if value is not None)),
        "colorbar": {"title": {"text": title}},
        "hovertemplate": "%{y}<br>%{x}<br>" + title + " %{z:.2%}<br>check failed: %{customdata}"
        "<extra></extra>",
    }
    return _figure(
        [heatmap],
        height=max(200, 40 + 22 * len(rows)),
        hovermode="closest",
        yaxis={"automargin": True, "autorange": "reversed"},
    )


def _lines(
    windows: Sequence[Mapping[str, Any]], x: list[str], signals: Sequence[str], **layout: Any
) -> dict[str, Any] | None:
    traces = []
    for signal in signals:
        values = _values(windows, signal)
        if _has(values):
            traces.append(_line(x, values, signal))
    return _figure(traces, **layout) if traces else None


def _performance(
    windows: Sequence[Mapping[str, Any]], x: list[str], task: str
) -> dict[str, Any] | None:
    """The task's metrics from joined labels, over the label coverage of each window."""
    metrics = _CLASSIFICATION if task == "classification" else _REGRESSION
    traces = [
        _line(x, values, metric) for metric in metrics if _has(values := _values(windows, metric))
    ]
    coverage = _values(windows, "label_coverage")
    if not traces and not _has(coverage):
        return None
    traces.append(
        {
            "type": "bar",
            "x": x,
            "y": coverage,
            "name": "label coverage",
            "yaxis": "y2",
            "opacity": 0.25,
            "marker": {"color": "#6b7280"},
            "hovertemplate": "%{y:.0%}",
        }
    )
    return _figure(
        traces,
        yaxis={"title": {"text": "metric"}},
        yaxis2={
            "title": {"text": "label coverage"},
            "overlaying": "y",
            "side": "right",
            "range": [0, 1],
            "tickformat": ".0%",
            "showgrid": False,
        },
    )


def _traffic(windows: Sequence[Mapping[str, Any]], x: list[str]) -> dict[str, Any] | None:
    counts = [float(window["count"]) for window in windows]
    errors = _values(windows, "error_rate")
    traces: list[dict[str, Any]] = [
        {"type": "bar", "x": x, "y": counts, "name": "events", "marker": {"color": "#60a5fa"}}
    ]
    if _has(errors):
        traces.append(_line(x, errors, "error rate", yaxis="y2"))
    return _figure(
        traces,
        yaxis={"title": {"text": "events"}},
        yaxis2={
            "title": {"text": "error rate"},
            "overlaying": "y",
            "side": "right",
            "tickformat": ".1%",
            "rangemode": "tozero",
            "showgrid": False,
        },
    )


def _other(
    windows: Sequence[Mapping[str, Any]], x: list[str], names: set[str], prefix: str
) -> dict[str, Any] | None:
    """Lines of every signal named ``prefix…`` (feedback, outcomes), in name order."""
    return _lines(windows, x, sorted(name for name in names if name.startswith(prefix)))


def model_figures(
    windows: Sequence[Mapping[str, Any]], *, features: Sequence[str], task: str
) -> list[dict[str, Any]]:
    """The model page's charts, in page order: ``{"id", "title", "help", "figure"}`` each;
    a chart with no data in the range is left out."""
    x = [_iso(float(window["start"])) for window in windows]
    if not windows:
        return []
    names: set[str] = set().union(*(window["signals"] for window in windows))
    extra_features = sorted(
        {
            feature
            for name in names
            if name.startswith("drift.") and (feature := feature_of(name)) is not None
        }
        - set(features)
    )
    ordered = list(features) + extra_features
    candidates: list[tuple[str, str, str, dict[str, Any] | None]] = [
        (
            "drift",
            "Feature drift",
            "Effect size per feature and window (colour); × where the calibrated verdict "
            "(Holm-corrected test and effect floor) says drift. Click a cell for that window's "
            "report: reference vs current distributions.",
            _drift_heatmap(windows, x, ordered),
        ),
        (
            "prediction-drift",
            "Prediction drift",
            "Effect size of the prediction's drift, and the share of features drifting.",
            _lines(windows, x, ["prediction_drift.score", "drift_share"]),
        ),
        (
            "performance",
            "Performance",
            "Metrics from joined labels; bars: the share of each window's predictions labelled "
            "so far (late labels fill older windows in).",
            _performance(windows, x, task),
        ),
        (
            "quality",
            "Missing values",
            "Share of missing values per feature and window.",
            _feature_heatmap(windows, x, ordered, "missing_rate", "missing"),
        ),
        (
            "quality-range",
            "Out of range",
            "Share of values outside the reference range per numeric feature and window.",
            _feature_heatmap(windows, x, ordered, "out_of_range_share", "out of range"),
        ),
        (
            "rejected",
            "Rejected events",
            "Share of events refused at ingest.",
            _lines(windows, x, ["quality.rejected_share"], yaxis={"tickformat": ".1%"}),
        ),
        (
            "traffic",
            "Traffic and errors",
            "Events per window and their error rate.",
            _traffic(windows, x),
        ),
        (
            "latency",
            "Latency",
            "Prediction latency percentiles (ms).",
            _lines(windows, x, ["latency_p50", "latency_p95", "latency_p99"]),
        ),
        (
            "feedback",
            "Feedback",
            "User ratings (1–5).",
            _other(windows, x, names, "feedback_") if _has_any(windows, "feedback_count") else None,
        ),
        ("outcomes", "Outcomes", "Business outcomes.", _other(windows, x, names, "outcome")),
    ]
    return [
        {"id": key, "title": title, "help": text, "figure": figure}
        for key, title, text, figure in candidates
        if figure is not None
    ]


def sparkline(values: Sequence[float | int]) -> dict[str, Any]:
    """A tiny line of ``values`` for the overview table (no axes, no hover)."""
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "y": [float(value) for value in values],
                "line": {"width": 1.5, "color": "#2563eb"},
                "hoverinfo": "skip",
            }
        ],
        "layout": {
            "height": 32,
            "width": 140,
            "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
            "xaxis": {"visible": False},
            "yaxis": {"visible": False, "rangemode": "tozero"},
            "showlegend": False,
        },
    }


# Events drawn on a rollout's charts as vertical lines: the moments the split or state changed.
_MARKED_EVENTS: Final = {
    "weight_set": "#9ca3af",
    "paused": "#d97706",
    "resumed": "#2563eb",
    "aborted": "#b91c1c",
    "promoted": "#15803d",
}


def rollout_figures(
    measurements: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """One chart per analysis metric: the candidate's and the baseline's value at every look
    (the interval of the difference in the hover), events as vertical lines."""
    by_metric: dict[str, list[Mapping[str, Any]]] = {}
    for item in measurements:
        values = item["values"]
        if "candidate_value" in values or "baseline_value" in values:
            by_metric.setdefault(str(item["metric"]), []).append(item)
    shapes = [
        {
            "type": "line",
            "xref": "x",
            "yref": "paper",
            "x0": _iso(float(event["at"])),
            "x1": _iso(float(event["at"])),
            "y0": 0,
            "y1": 1,
            "line": {"color": _MARKED_EVENTS[event["kind"]], "width": 1, "dash": "dot"},
        }
        for event in events
        if event["kind"] in _MARKED_EVENTS
    ]
    figures = []
    for position, (metric, items) in enumerate(sorted(by_metric.items())):
        x = [_iso(float(item["at"])) for item in items]
        values = [item["values"] for item in items]
        hover = [
            f"effect {_text(v.get('effect'))} [{_text(v.get('ci_low'))}, {_text(v.get('ci_high'))}]"
            f" · p {_text(v.get('p_value'))} · {item['outcome']}"
            for v, item in zip(values, items, strict=True)
        ]
        traces = [
            _line(
                x,
                [_number(v.get("candidate_value")) for v in values],
                "candidate",
                text=hover,
                hovertemplate="candidate %{y:.4g}<br>%{text}<extra></extra>",
                line={"color": "#2563eb"},
            ),
            _line(
                x,
                [_number(v.get("baseline_value")) for v in values],
                "baseline",
                hovertemplate="baseline %{y:.4g}<extra></extra>",
                line={"color": "#6b7280"},
            ),
        ]
        signal = values[-1].get("signal", metric)
        figures.append(
            {
                "id": f"metric-{position}",
                "metric": metric,
                "title": f"{metric} ({signal})",
                "figure": _figure(traces, shapes=shapes),
            }
        )
    return figures


def _text(value: Any) -> str:
    number = _number(value)
    return "—" if number is None else f"{number:.4g}"


def backtest_timeline(
    alerts: Sequence[Mapping[str, Any]], *, start: float, end: float
) -> dict[str, Any]:
    """Each alert of a backtest as a bar from when it fired to when it resolved (or the range's
    end), one row per alert and series, coloured by severity."""
    colours = {"critical": "#b91c1c", "warning": "#d97706", "info": "#4f46e5"}
    traces = []
    rows: list[str] = []
    for alert in alerts:
        row = alert["row"]
        if row not in rows:
            rows.append(row)
        until = alert["resolved_at"] if alert["resolved_at"] is not None else end
        severity = str(alert["severity"])
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": [_iso(float(alert["fired_at"])), _iso(float(until))],
                "y": [row, row],
                "name": severity,
                "legendgroup": severity,
                "showlegend": False,
                "line": {"width": 10, "color": colours.get(severity, "#6b7280")},
                "marker": {"size": 10, "color": colours.get(severity, "#6b7280")},
                "hovertemplate": f"{row}<br>%{{x}}<br>value {_text(alert['value'])}<extra></extra>",
            }
        )
    return _figure(
        traces,
        height=max(160, 60 + 28 * len(rows)),
        hovermode="closest",
        xaxis={"type": "date", "range": [_iso(start), _iso(end)]},
        yaxis={"automargin": True, "autorange": "reversed", "type": "category"},
        showlegend=False,
    )
