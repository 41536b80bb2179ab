"""The Grafana dashboard of watchkeeper's /metrics, generated with grafanalib.

The panels are declared once in :data:`ROWS` (title, unit, PromQL queries); :func:`dashboard`
turns them into a grafanalib :class:`~grafanalib.core.Dashboard` and :func:`dashboard_json`
into the JSON that Grafana imports (``watchkeeper grafana dashboard``, and the copy committed in
``deploy/grafana/watchkeeper.json``, which a test keeps equal to this output). Every query is
listed by :func:`queries`, so the integration test can run each one against a real Prometheus.

Queries use three dashboard variables: ``$model`` and ``$version`` (multi-value, "All" by
default) and ``$job`` (the scrape job of the watchkeeper servers, for the ``process_*`` series
every exporter has), plus Grafana's ``$__rate_interval``. grafanalib is imported only when the
dashboard is built (``pip install 'watchkeeper[grafana]'``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from grafanalib.core import Dashboard

__all__ = ["ROWS", "Panel", "Query", "dashboard", "dashboard_json", "queries"]

UID: Final = "watchkeeper"
_M = 'model=~"$model"'
_MV = 'model=~"$model",version=~"$version"'
_RATE = "[$__rate_interval]"
_WIDTH = 8  # three panels a line on Grafana's 24-column grid
_HEIGHT = 8


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel; ``needs`` names what must exist for it to have data."""

    expr: str
    legend: str
    needs: str | None = None


@dataclass(frozen=True)
class Panel:
    """A time-series panel: title, what it shows, the unit of its values, its queries."""

    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]


def _quantile(q: float, metric: str, by: str, selector: str = "") -> str:
    return (
        f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket{{{selector}}}{_RATE})))"
    )


def _rate(metric: str, by: str, selector: str = _M) -> str:
    matchers = f"{{{selector}}}" if selector else ""
    return f"sum by ({by}) (rate({metric}{matchers}{_RATE}))"


def _signal(aggregate: str, by: str, matcher: str) -> str:
    """The generic signal gauge of the latest closed windows, all segments merged."""
    return f'{aggregate} by ({by}) (watchkeeper_signal{{{_MV},segment="*",signal{matcher}}})'


def _panel(title: str, description: str, unit: str, *queries: tuple[str, str]) -> Panel:
    return Panel(title, description, unit, tuple(Query(expr, legend) for expr, legend in queries))


_BY_VERSION = "{{model}} {{version}}"

ROWS: Final[tuple[tuple[str, tuple[Panel, ...]], ...]] = (
    (
        "Traffic and ingest",
        (
            _panel(
                "Ingest rate",
                "Prediction events received per second, by outcome.",
                "reqps",
                (
                    _rate("watchkeeper_ingest_events_total", "model, outcome"),
                    "{{model}} {{outcome}}",
                ),
            ),
            _panel(
                "Predictions by version",
                "Accepted prediction events per second, by model version.",
                "reqps",
                (_rate("watchkeeper_predictions_total", "model, version", _MV), _BY_VERSION),
            ),
            _panel(
                "Rejections",
                "Events rejected at ingest per second (invalid fields, retention), and those "
                "refused by a cardinality cap, by field.",
                "reqps",
                (
                    _rate("watchkeeper_ingest_events_total", "model", f'{_M},outcome="rejected"'),
                    "{{model}} rejected",
                ),
                (
                    _rate("watchkeeper_ingest_rejected_cardinality_total", "model, field"),
                    "{{model}} over cap: {{field}}",
                ),
            ),
            _panel(
                "Labels, feedback and outcomes",
                "Delayed labels, feedback ratings and business outcomes received per second, by "
                "ingest outcome.",
                "reqps",
                (
                    _rate("watchkeeper_ingest_labels_total", "model, outcome"),
                    "{{model}} labels {{outcome}}",
                ),
                (
                    _rate("watchkeeper_ingest_feedback_total", "model, outcome"),
                    "{{model}} feedback {{outcome}}",
                ),
                (
                    _rate("watchkeeper_ingest_outcomes_total", "model, outcome"),
                    "{{model}} outcomes {{outcome}}",
                ),
            ),
            _panel(
                "Batch size",
                "Items per ingest request (median and 99th percentile), by kind.",
                "short",
                (
                    _quantile(0.5, "watchkeeper_ingest_batch_size", "model, kind", _M),
                    "{{model}} {{kind}} p50",
                ),
                (
                    _quantile(0.99, "watchkeeper_ingest_batch_size", "model, kind", _M),
                    "{{model}} {{kind}} p99",
                ),
            ),
        ),
    ),
    (
        "Drift",
        (
            _panel(
                "Feature drift (effect size)",
                "Drift effect size of each feature in the latest closed window.",
                "none",
                (
                    f"max by (model, version, feature) (watchkeeper_feature_drift_score{{{_MV}}})",
                    "{{model}} {{version}} {{feature}}",
                ),
            ),
            _panel(
                "Drifting features",
                "Features the calibrated test flags (Holm-corrected, with the effect floor), "
                "and the share of features flagged, all segments merged.",
                "short",
                (
                    _signal("sum", "model, version", '=~"drift[.].+[.]detected"'),
                    "{{model}} {{version}} features drifting",
                ),
                (
                    _signal("max", "model, version", '="drift_share"'),
                    "{{model}} {{version}} drift share",
                ),
            ),
            _panel(
                "Prediction drift",
                "Drift effect size of the model's output (the prediction, or the class "
                "probabilities) against the reference, all segments merged.",
                "none",
                (_signal("max", "model, version", '="prediction_drift.score"'), _BY_VERSION),
            ),
            _panel(
                "Prediction confidence",
                "Largest class probability of the predictions: 10th percentile and median.",
                "percentunit",
                (
                    _quantile(0.1, "watchkeeper_prediction_confidence", "model, version", _MV),
                    "{{model}} {{version}} p10",
                ),
                (
                    _quantile(0.5, "watchkeeper_prediction_confidence", "model, version", _MV),
                    "{{model}} {{version}} p50",
                ),
            ),
        ),
    ),
    (
        "Data quality",
        (
            _panel(
                "Quality checks failing",
                "Features whose data-quality checks fail in the latest closed window.",
                "short",
                (
                    _signal("sum", "model, version", '=~"quality[.].+[.]failed"'),
                    "{{model}} {{version}} failing features",
                ),
            ),
            _panel(
                "Missing values",
                "Share of missing values of each feature in the latest closed window.",
                "percentunit",
                (
                    _signal("max", "model, version, signal", '=~"quality[.].+[.]missing_rate"'),
                    "{{model}} {{version}} {{signal}}",
                ),
            ),
            _panel(
                "Rejected share",
                "Share of a window's events rejected at ingest.",
                "percentunit",
                (_signal("max", "model, version", '="quality.rejected_share"'), _BY_VERSION),
            ),
        ),
    ),
    (
        "Performance",
        (
            _panel(
                "Accuracy",
                "Accuracy from joined labels in the latest closed window.",
                "percentunit",
                (f"max by (model, version) (watchkeeper_model_accuracy{{{_MV}}})", _BY_VERSION),
            ),
            _panel(
                "Performance metrics",
                "Every performance metric from joined labels (F1, ROC AUC, MAE, …).",
                "none",
                (
                    f"max by (model, version, metric) (watchkeeper_model_performance{{{_MV}}})",
                    "{{model}} {{version}} {{metric}}",
                ),
            ),
            _panel(
                "Label coverage",
                "Share of a window's predictions with a joined label (performance needs labels).",
                "percentunit",
                (_signal("max", "model, version", '="label_coverage"'), _BY_VERSION),
            ),
            _panel(
                "Feedback rating",
                "Mean user feedback rating (1-5) in the latest closed window.",
                "none",
                (
                    f"max by (model, version) (watchkeeper_feedback_rating_mean{{{_MV}}})",
                    _BY_VERSION,
                ),
            ),
        ),
    ),
    (
        "Latency and errors",
        (
            _panel(
                "Model latency",
                "Latency the events report (latency_ms): median and 99th percentile.",
                "s",
                (
                    _quantile(0.5, "watchkeeper_prediction_latency_seconds", "model, version", _MV),
                    "{{model}} {{version}} p50",
                ),
                (
                    _quantile(
                        0.99, "watchkeeper_prediction_latency_seconds", "model, version", _MV
                    ),
                    "{{model}} {{version}} p99",
                ),
            ),
            _panel(
                "Prediction error rate",
                "Share of accepted prediction events that report error=true.",
                "percentunit",
                (
                    _rate("watchkeeper_prediction_errors_total", "model, version", _MV)
                    + " / "
                    + _rate("watchkeeper_predictions_total", "model, version", _MV),
                    _BY_VERSION,
                ),
            ),
            _panel(
                "HTTP requests",
                "Requests per second to the watchkeeper API, by route template and status.",
                "reqps",
                (
                    _rate("watchkeeper_http_requests_total", "route, status", ""),
                    "{{route}} {{status}}",
                ),
            ),
            _panel(
                "HTTP latency",
                "99th percentile of the API's answer time, by route template.",
                "s",
                (
                    _quantile(0.99, "watchkeeper_http_request_duration_seconds", "route"),
                    "{{route}} p99",
                ),
            ),
            _panel(
                "HTTP server errors",
                "Share of API requests answered with a 5xx status.",
                "percentunit",
                (
                    f'(sum(rate(watchkeeper_http_requests_total{{status=~"5.."}}{_RATE})) '
                    f"or vector(0)) / sum(rate(watchkeeper_http_requests_total{_RATE}))",
                    "5xx share",
                ),
            ),
        ),
    ),
    (
        "Alerts",
        (
            _panel(
                "Alerts firing",
                "watchkeeper's own alerts firing, by rule and severity.",
                "short",
                (
                    "sum by (alertname, model, severity) "
                    f'(watchkeeper_alerts{{{_M},state="firing"}})',
                    "{{alertname}} {{model}} ({{severity}})",
                ),
            ),
            _panel(
                "Alerts by state",
                "watchkeeper's alerts that are pending, firing or recently resolved.",
                "short",
                (f"sum by (state) (watchkeeper_alerts{{{_M}}})", "{{state}}"),
            ),
            _panel(
                "Rollbacks",
                "Rollouts aborted and their traffic put back on the baseline, in the dashboard's "
                "range (0 when none).",
                "short",
                (
                    f"sum by (model) (increase(watchkeeper_rollbacks_total{{{_M}}}[$__range]))"
                    " or on() vector(0)",
                    "{{model}}",
                ),
            ),
        ),
    ),
    (
        "Service",
        (
            _panel(
                "Model load status",
                "Served model versions by load state (1: the version is in that state).",
                "short",
                (
                    f"max by (model, version, state) (watchkeeper_model_load_status{{{_M}}}) == 1",
                    "{{model}} {{version}} {{state}}",
                ),
            ),
            _panel(
                "Store operations",
                "99th percentile of the monitor's store calls, by operation.",
                "s",
                (
                    _quantile(0.99, "watchkeeper_store_operation_seconds", "operation"),
                    "{{operation}} p99",
                ),
            ),
            _panel(
                "CPU",
                "CPU seconds per second used by the watchkeeper server processes.",
                "percentunit",
                (_rate("process_cpu_seconds_total", "instance", 'job=~"$job"'), "{{instance}}"),
            ),
            _panel(
                "Memory",
                "Resident memory of the watchkeeper server processes.",
                "bytes",
                ('sum by (instance) (process_resident_memory_bytes{job=~"$job"})', "{{instance}}"),
            ),
            Panel(
                "GPU memory",
                "GPU memory in use, by device (only when the server finds NVML).",
                "bytes",
                (
                    Query(
                        'max by (instance, gpu) (watchkeeper_gpu_memory_used_bytes{job=~"$job"})',
                        "{{instance}} GPU {{gpu}}",
                        needs="nvml",
                    ),
                ),
            ),
        ),
    ),
)


def queries() -> list[Query]:
    """Every query of the dashboard, in panel order."""
    return [query for _, panels in ROWS for panel in panels for query in panel.queries]


def _variables() -> list[Any]:
    from grafanalib.core import Template

    datasource = "${datasource}"
    return [
        Template(name="datasource", label="Data source", query="prometheus", type="datasource"),
        Template(
            name="job",
            label="Job",
            query="label_values(watchkeeper_http_requests_total, job)",
            dataSource=datasource,
            includeAll=True,
            multi=True,
            default="$__all",
        ),
        Template(
            name="model",
            label="Model",
            query='label_values(watchkeeper_ingest_events_total{job=~"$job"}, model)',
            dataSource=datasource,
            includeAll=True,
            multi=True,
            allValue=".*",
            default="$__all",
        ),
        Template(
            name="version",
            label="Version",
            query='label_values(watchkeeper_predictions_total{model=~"$model"}, version)',
            dataSource=datasource,
            includeAll=True,
            multi=True,
            allValue=".*",
            default="$__all",
        ),
    ]


def dashboard() -> Dashboard:
    """The grafanalib dashboard: one collapsible row per area, three panels a line."""
    from grafanalib.core import Dashboard, GridPos, RowPanel, Target, Templating, TimeSeries

    panels: list[Any] = []
    y = 0
    for row_title, row_panels in ROWS:
        panels.append(RowPanel(title=row_title, gridPos=GridPos(h=1, w=24, x=0, y=y)))
        y += 1
        for position, spec in enumerate(row_panels):
            if position and position % (24 // _WIDTH) == 0:
                y += _HEIGHT
            panels.append(
                TimeSeries(
                    title=spec.title,
                    description=spec.description,
                    dataSource="${datasource}",
                    unit=spec.unit,
                    gridPos=GridPos(
                        h=_HEIGHT, w=_WIDTH, x=(position % (24 // _WIDTH)) * _WIDTH, y=y
                    ),
                    targets=[
                        Target(
                            expr=query.expr,
                            legendFormat=query.legend,
                            refId=chr(ord("A") + index),
                            datasource="${datasource}",
                        )
                        for index, query in enumerate(spec.queries)
                    ],
                )
            )
        y += _HEIGHT
    return Dashboard(
        title="watchkeeper",
        uid=UID,
        description="ML model monitoring: ingest, drift, quality, performance, latency, alerts "
        "and the service (generated by watchkeeper; do not edit by hand).",
        tags=["watchkeeper", "ml-monitoring"],
        timezone="browser",
        refresh="30s",
        panels=panels,
        templating=Templating(list=_variables()),
    ).auto_panel_ids()


def dashboard_json() -> str:
    """The dashboard as Grafana's JSON model (sorted keys, two-space indent, final newline)."""
    from grafanalib._gen import DashboardEncoder

    document = dashboard().to_json_data()
    return json.dumps(document, cls=DashboardEncoder, sort_keys=True, indent=2) + "\n"
