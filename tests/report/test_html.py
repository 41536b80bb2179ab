"""The HTML report: structure, escaping, plot data, size, and plots drawn in a real browser."""

from __future__ import annotations

import json
import re
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from tests.browser import dom_after_scripts
from watchkeeper.errors import ConfigError, InputError
from watchkeeper.report.html import (
    _round_edges,
    _round_significant,
    plotly_cdn_url,
    plotly_js_version,
    render_html,
)

HOSTILE = "<script>alert(1)</script>"
HOSTILE_IMG = "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"
PLOTLY_HEADER = re.compile(r"\* plotly\.js v\d+\.\d+\.\d+")


# ----------------------------------------------------------------------------- sample documents


def _psi(reference: np.ndarray, current: np.ndarray) -> float:
    ref = np.clip(reference, 1e-4, None)
    cur = np.clip(current, 1e-4, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _numeric_entry(
    *, shift: float, scale: float = 1.0, role: str = "feature", rows: int = 6000, bins: int = 20
) -> dict[str, Any]:
    """A numeric column whose current data is the reference normal shifted by ``shift`` sd."""
    edges = np.linspace(-4.0, 4.0, bins + 1) * scale + 10.0
    reference = np.diff(stats.norm.cdf(edges, loc=10.0, scale=scale))
    current = np.diff(stats.norm.cdf(edges, loc=10.0 + shift * scale, scale=scale))
    reference, current = reference / reference.sum(), current / current.sum()
    ks = float(np.max(np.abs(np.cumsum(reference) - np.cumsum(current))))
    p_value = float(stats.kstwo.sf(ks, rows // 2))
    effect = abs(shift)
    drift = p_value < 0.05 and effect >= 0.1
    psi = _psi(reference, current)
    return {
        "role": role,
        "kind": "numeric",
        "drift": drift,
        "test": "ks",
        "statistic": ks,
        "p_value": p_value,
        "effect_size": effect,
        "effect_measure": "wasserstein_norm",
        "psi": psi,
        "alpha": 0.05,
        "threshold": 0.1,
        "metrics": {"ks": ks, "wasserstein_norm": effect, "psi": psi},
        "reference_count": rows,
        "current_count": rows + 159,
        "histogram": {
            "edges": [None, *edges[1:-1].tolist(), None],
            "labels": None,
            "reference": reference.tolist(),
            "current": current.tolist(),
        },
    }


def _categorical_entry(
    labels: list[str],
    reference_counts: list[int],
    current_counts: list[int],
    *,
    kind: str = "categorical",
    role: str = "feature",
) -> dict[str, Any]:
    reference = np.asarray(reference_counts, dtype=float)
    current = np.asarray(current_counts, dtype=float)
    expected = reference / reference.sum() * current.sum()
    statistic = float(np.sum((current - expected) ** 2 / np.clip(expected, 1.0, None)))
    p_value = float(stats.chi2.sf(statistic, len(labels) - 1))
    effect = float(jensenshannon(reference, current, base=2))
    psi = _psi(reference / reference.sum(), current / current.sum())
    return {
        "role": role,
        "kind": kind,
        "drift": p_value < 0.05 and effect >= 0.1,
        "test": "chisquare",
        "statistic": statistic,
        "p_value": p_value,
        "effect_size": effect,
        "effect_measure": "jensenshannon",
        "psi": psi,
        "alpha": 0.05,
        "threshold": 0.1,
        "metrics": {"chisquare": statistic, "jensenshannon": effect, "psi": psi},
        "reference_count": int(reference.sum()),
        "current_count": int(current.sum()),
        "histogram": {
            "edges": None,
            "labels": labels,
            "reference": (reference / reference.sum()).tolist(),
            "current": (current / current.sum()).tolist(),
        },
    }


def _check(
    name: str, reference: Any, current: Any, threshold: Any, verdict: str, **details: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "reference": reference,
        "current": current,
        "threshold": threshold,
        "verdict": verdict,
        "details": details,
    }


def _classification_performance() -> dict[str, Any]:
    labels = ["rain", "snow", "sun"]
    reference_matrix = [[820, 40, 140], [30, 410, 60], [120, 30, 1350]]
    current_matrix = [[610, 90, 300], [80, 300, 120], [400, 60, 1040]]

    def metrics(matrix: list[list[int]], roc_auc: float, log_loss: float) -> dict[str, Any]:
        cells = np.asarray(matrix, dtype=float)
        true_positive = np.diag(cells)
        precision = true_positive / cells.sum(axis=0)
        recall = true_positive / cells.sum(axis=1)
        f1 = 2 * precision * recall / (precision + recall)
        return {
            "accuracy": float(true_positive.sum() / cells.sum()),
            "f1_macro": float(f1.mean()),
            "roc_auc": roc_auc,
            "log_loss": log_loss,
            "confusion_matrix": {"labels": labels, "matrix": matrix},
            "per_class": {
                label: {
                    "precision": float(precision[i]),
                    "recall": float(recall[i]),
                    "f1": float(f1[i]),
                    "support": int(cells[i].sum()),
                }
                for i, label in enumerate(labels)
            },
        }

    reference = metrics(reference_matrix, 0.91, 0.41)
    current = metrics(current_matrix, 0.78, 0.83)
    change = {
        name: {
            "reference": reference[name],
            "current": current[name],
            "change": current[name] - reference[name],
            "relative_change": (current[name] - reference[name]) / reference[name],
        }
        for name in ("accuracy", "f1_macro", "roc_auc", "log_loss")
    }
    return {
        "task": "classification",
        "target": "weather",
        "prediction": "predicted_weather",
        "reference": reference,
        "current": current,
        "change": change,
    }


def _regression_performance() -> dict[str, Any]:
    reference = {"mae": 1.21, "rmse": 1.64, "r2": 0.81, "mape": 0.118}
    current = {"mae": 1.87, "rmse": 2.45, "r2": 0.62, "mape": 0.171}
    change = {
        name: {
            "reference": reference[name],
            "current": current[name],
            "change": current[name] - reference[name],
            "relative_change": (current[name] - reference[name]) / reference[name],
        }
        for name in reference
    }
    return {
        "task": "regression",
        "target": "rainfall_mm",
        "prediction": "predicted_rainfall_mm",
        "reference": reference,
        "current": current,
        "change": change,
    }


def sample_report(
    *, task: str | None = "classification", extra_columns: int = 0, hostile: bool = False
) -> dict[str, Any]:
    """A realistic ``watchkeeper.report/v1`` document.

    Five numeric and three categorical/boolean features with and without drift, quality checks
    that fail, warn and pass, and performance for ``task`` ("classification", "regression" or
    None for no target). ``extra_columns`` adds non-drifting numeric features; ``hostile`` adds a
    column whose name and a category label are HTML/script injections, with the largest effect.
    """
    rng = np.random.default_rng(7)
    columns: dict[str, dict[str, Any]] = {
        "temperature": _numeric_entry(shift=0.62, scale=6.0),
        "dew_point": _numeric_entry(shift=0.41, scale=4.0),
        "pressure": _numeric_entry(shift=0.02, scale=9.0),
        "humidity": _numeric_entry(shift=0.18, scale=0.2),
        "wind_speed": _numeric_entry(shift=-0.05, scale=3.0),
        "station": _categorical_entry(
            ["north", "south", "east", "west", "ZZ-01"],
            [1500, 1500, 1500, 1500, 0],
            [900, 1800, 1500, 1600, 359],
        ),
        "cloud_cover": _categorical_entry(
            ["clear", "partly", "overcast"], [2000, 2500, 1500], [2040, 2600, 1519]
        ),
        "is_weekend": _categorical_entry(
            ["false", "true"], [4300, 1700], [4380, 1779], kind="boolean"
        ),
    }
    for index in range(extra_columns):
        columns[f"sensor_{index:03d}"] = _numeric_entry(
            shift=float(rng.uniform(0.0, 0.08)), scale=float(rng.uniform(0.5, 50.0))
        )
    if hostile:
        columns[HOSTILE] = _categorical_entry(
            [HOSTILE, HOSTILE_IMG, "plain"], [3000, 2900, 100], [100, 2900, 3159]
        )
        columns[HOSTILE_IMG] = _numeric_entry(shift=0.3)
    columns["distance_only"] = {
        **_numeric_entry(shift=0.0, scale=2.0),
        "test": "wasserstein",
        "p_value": None,
        "alpha": None,
        "effect_size": None,
        "drift": False,
    }

    quality_columns: dict[str, dict[str, Any]] = {
        name: {
            "missing_rate": _check("missing_rate", 0.0, 0.001, 0.05, "ok"),
            "constant": _check("constant", False, False, None, "ok"),
        }
        for name in columns
    }
    quality_columns["temperature"] = {
        "missing_rate": _check("missing_rate", 0.0, 0.034, 0.05, "warning", missing=209),
        "out_of_range_share": _check(
            "out_of_range_share",
            None,
            0.071,
            0.05,
            "fail",
            below=120,
            above=317,
            reference_min=-12.5,
            reference_max=41.2,
        ),
        "non_numeric": _check("non_numeric", 0.0, 0.0, 0.0, "ok"),
    }
    quality_columns["station"] = {
        "missing_rate": _check("missing_rate", 0.0, 0.0, 0.05, "ok"),
        "new_categories": _check(
            "new_categories",
            0.0,
            0.058,
            0.01,
            "fail",
            new_labels=1 + hostile,
            new_rows=359,
            examples=["ZZ-01"] + ([HOSTILE] if hostile else []),
            vanished_labels=0,
            vanished_examples=[],
        ),
    }

    performance = {
        "classification": _classification_performance(),
        "regression": _regression_performance(),
        None: None,
    }[task]
    features = {name: entry for name, entry in columns.items() if entry["role"] == "feature"}
    tested = [entry for entry in features.values() if entry["effect_size"] is not None]
    drifted = [entry for entry in tested if entry["drift"]]
    if task == "classification":
        columns["predicted_weather"] = _categorical_entry(
            ["rain", "snow", "sun"], [970, 480, 1550], [1090, 450, 1460], role="prediction"
        )
    headline = None
    if performance is not None:
        metric = "accuracy" if task == "classification" else "rmse"
        headline = {"metric": metric, **performance["change"][metric]}
    prediction_drift = (
        columns["predicted_weather"]["drift"] if "predicted_weather" in columns else None
    )
    drift_share = len(drifted) / len(tested)
    failures, warnings = 3, 1
    return {
        "schema": "watchkeeper.report/v1",
        "watchkeeper_version": "0.1.0",
        "generated_at": "2026-11-23T02:00:00Z",
        "reference": {"name": "train.csv", "rows": 6000, "columns": len(columns) + 1},
        "current": {"name": "prod.csv", "rows": 6159, "columns": len(columns) + 1},
        "data_schema": {
            "features": {name: entry["kind"] for name, entry in features.items()},
            "task": task,
        },
        "summary": {
            "dataset_drift": drift_share >= 0.5,
            "drift_share": drift_share,
            "drifted_columns": len(drifted),
            "tested_columns": len(tested),
            "prediction_drift": prediction_drift,
            "quality_passed": False,
            "quality_failures": failures,
            "quality_warnings": warnings,
            "performance": headline,
        },
        "drift": {
            "dataset_drift": drift_share >= 0.5,
            "drift_share": drift_share,
            "drift_share_threshold": 0.5,
            "drifted_columns": len(drifted),
            "tested_columns": len(tested),
            "prediction_drift": prediction_drift,
            "ranking": sorted(
                (
                    {"column": name, "effect_size": entry["effect_size"], "drift": entry["drift"]}
                    for name, entry in features.items()
                    if entry["effect_size"] is not None
                ),
                key=lambda row: -row["effect_size"],
            ),
            "columns": columns,
            "skipped": {"notes": "text column: not tested for drift"},
        },
        "quality": {
            "passed": False,
            "failures": failures,
            "warnings": warnings,
            "dataset": {
                "duplicate_rows": _check("duplicate_rows", 0.0, 0.01, 0.05, "ok", duplicates=62),
                "schema": _check(
                    "schema",
                    None,
                    None,
                    None,
                    "fail",
                    missing=["wind"],
                    unexpected=[],
                    changed={"age": {"reference": "numeric", "current": "text", "verdict": "fail"}},
                ),
            },
            "columns": quality_columns,
        },
        "performance": performance,
    }


# ----------------------------------------------------------------------------- HTML inspection


class _Page(HTMLParser):
    """Start tags with attributes, and the text inside each element with a class, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._script: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            self.scripts.append("".join(self._script))
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script.append(data)

    def attribute_values(self, name: str) -> list[str]:
        return [attrs[name] or "" for _, attrs in self.tags if name in attrs]


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def _plot_blob(html: str) -> dict[str, Any]:
    match = re.search(
        r'<script type="application/json" id="wk-plot-data">(.*?)</script>', html, re.S
    )
    assert match is not None
    blob: dict[str, Any] = json.loads(match.group(1))
    return blob


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return sample_report()


@pytest.fixture(scope="module")
def page(report: dict[str, Any]) -> str:
    return render_html(report, plotly="cdn")


# ----------------------------------------------------------------------------- structure


def test_sections_come_in_order_summary_drift_distributions_quality_performance(page: str) -> None:
    ids = [
        attrs["id"]
        for tag, attrs in _parse(page).tags
        if tag == "section" and attrs.get("id") is not None
    ]
    assert ids == ["summary", "drift", "distributions", "quality", "performance"]


def test_summary_states_drift_share_threshold_quality_and_headline(
    page: str, report: dict[str, Any]
) -> None:
    summary = page[page.index('id="summary"') : page.index('id="drift"')]
    share = report["summary"]["drift_share"] * 100
    assert f"drift share {share:.1f}%" in summary
    assert "vs threshold 50.0%" in summary
    assert "3 failed" in summary
    assert "1 warnings" in summary
    headline = report["summary"]["performance"]
    assert "Performance: accuracy" in summary
    assert f"{headline['current']:.4g}" in summary
    assert f"{headline['change']:.4g}" in summary
    assert "tone-worse" in summary


def test_drift_table_is_sorted_by_effect_size_with_nulls_last(
    page: str, report: dict[str, Any]
) -> None:
    rendered = _parse(page).attribute_values("data-column")
    columns = report["drift"]["columns"]
    roles = [columns[name].get("role", "feature") != "feature" for name in rendered]
    assert roles == sorted(roles)  # features first, then outputs and the target
    for outputs in (False, True):
        group = [name for name, other in zip(rendered, roles, strict=True) if other is outputs]
        with_effect = sorted(
            (name for name in group if columns[name]["effect_size"] is not None),
            key=lambda name: (-columns[name]["effect_size"], name),
        )
        without = sorted(name for name in group if columns[name]["effect_size"] is None)
        assert group == [*with_effect, *without]
    assert rendered[0] == "temperature"
    assert "distance_only" in rendered


def test_drift_badges_match_verdicts(page: str, report: dict[str, Any]) -> None:
    table = page[page.index('class="data drift-table"') : page.index('id="distributions"')]
    verdicts = [entry["drift"] for entry in report["drift"]["columns"].values()]
    assert table.count('<span class="badge badge-fail">drift</span>') == sum(verdicts)
    assert table.count('<span class="badge badge-ok">no drift</span>') == len(verdicts) - sum(
        verdicts
    )
    assert table.count("row-drift") == sum(verdicts)


def test_drift_table_shows_statistics_measure_and_distance_only_p_value(page: str) -> None:
    row = re.search(r'<tr class="row-drift" data-column="temperature">(.*?)</tr>', page, re.S)
    assert row is not None
    assert "wasserstein_norm" in row.group(1)
    assert "<td>ks</td>" in row.group(1)
    distance = re.search(r'<tr class="" data-column="distance_only">(.*?)</tr>', page, re.S)
    assert distance is not None
    assert "<td>wasserstein</td>" in distance.group(1)
    assert '<td class="num">—</td>' in distance.group(1)
    assert "notes</strong>: text column: not tested for drift" in page


def test_largest_effects_open_eagerly_and_link_from_the_table(page: str) -> None:
    details = [attrs for tag, attrs in _parse(page).tags if tag == "details" and "id" in attrs]
    assert [("open" in attrs) for attrs in details[:4]] == [True, True, True, False]
    assert all("open" not in attrs for attrs in details[3:])
    assert 'href="#dist-0">temperature</a>' in page


def test_quality_lists_failures_first_with_badges_and_details(page: str) -> None:
    quality = page[page.index('id="quality"') : page.index('id="performance"')]
    flagged = quality[: quality.index('class="passing"')]
    # temperature fails, so it comes before the warning-free order of the document.
    assert flagged.index(">temperature<") < flagged.index(">station<")
    assert '<span class="badge badge-fail">fail</span>' in flagged
    assert '<span class="badge badge-warning">warning</span>' in flagged
    assert "<dt>examples</dt><dd>ZZ-01</dd>" in flagged
    assert "<dt>missing</dt><dd>wind</dd>" in quality
    assert "<dt>changed</dt><dd>age: numeric → text (fail)</dd>" in quality
    assert "<dt>unexpected</dt>" not in quality
    assert "<dt>vanished examples</dt>" not in quality
    assert "<dt>reference min</dt><dd>-12.5</dd>" in quality
    passing = quality[quality.index('class="passing"') :]
    assert '<span class="badge badge-ok">ok</span>' in passing
    assert "badge-fail" not in passing


def test_classification_performance_shows_metrics_confusion_and_per_class(
    page: str, report: dict[str, Any]
) -> None:
    performance = page[page.index('id="performance"') :]
    for metric in ("accuracy", "f1_macro", "roc_auc", "log_loss"):
        assert f'<th scope="row">{metric}</th>' in performance
    assert performance.count("<figcaption>") == 2
    cells = re.findall(r'style="--share:([0-9.]+)" title="[^"]*">([\d,]+)</td>', performance)
    labels = report["performance"]["current"]["confusion_matrix"]["labels"]
    assert len(cells) == 2 * len(labels) ** 2
    # Current row "rain" holds 610 + 90 + 300 = 1000: shades are the shares of the row.
    assert {("0.610", "610"), ("0.090", "90"), ("0.300", "300")} <= set(cells)
    assert '<th scope="row">snow</th>' in performance
    assert "Per-class metrics" in performance
    per_class = performance[performance.index("Per-class metrics") :]
    headers = re.findall(r'<th scope="colgroup" colspan="2">(\w+)</th>', per_class)
    assert headers == ["precision", "recall", "f1", "support"]
    # log_loss rose: a worse change, marked as such.
    log_loss = re.search(r'<th scope="row">log_loss</th>(.*?)</tr>', performance, re.S)
    assert log_loss is not None
    assert "tone-worse" in log_loss.group(1)


def test_regression_report_shows_its_metrics_without_classification_parts() -> None:
    html = render_html(sample_report(task="regression"), plotly="cdn")
    performance = html[html.index('id="performance"') :]
    for metric in ("mae", "rmse", "r2", "mape"):
        assert f'<th scope="row">{metric}</th>' in performance
    assert "Confusion matrices" not in performance
    assert "Per-class metrics" not in performance
    assert "Performance: rmse" in html


def test_report_without_performance_omits_the_section_and_headline() -> None:
    html = render_html(sample_report(task=None), plotly="cdn")
    assert 'id="performance"' not in html
    assert 'href="#performance"' not in html
    assert "Performance:" not in html
    assert "Prediction drift" in html
    assert "no output columns" in html


# ----------------------------------------------------------------------------- escaping


def test_hostile_column_names_and_labels_are_escaped() -> None:
    html = render_html(sample_report(hostile=True), plotly="cdn", title=HOSTILE)
    page = _parse(html)
    assert HOSTILE not in html
    assert "<img" not in html
    assert not [attrs for _, attrs in page.tags if "onerror" in attrs]
    # Only the page's own scripts: error hook, plot data, plotly.js, plot builder.
    assert [tag for tag, _ in page.tags].count("script") == 4
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert f"<title>{HOSTILE.replace('<', '&lt;').replace('>', '&gt;')}</title>" in html
    assert HOSTILE in page.attribute_values("data-column")
    labels = [plot.get("labels") for plot in _plot_blob(html)["plots"]]
    assert [HOSTILE, HOSTILE_IMG, "plain"] in labels


def test_json_blob_cannot_close_its_script_element() -> None:
    html = render_html(sample_report(hostile=True), plotly="cdn")
    blob = html[html.index('id="wk-plot-data">') : html.index("</script>", html.index("wk-plot"))]
    assert "<" not in blob.removeprefix('id="wk-plot-data">')
    assert "\\u003c/script\\u003e" in blob


# ----------------------------------------------------------------------------- plot data


def test_plot_blob_parses_and_holds_binned_shares_only(page: str, report: dict[str, Any]) -> None:
    plots = _plot_blob(page)["plots"]
    columns = report["drift"]["columns"]
    assert len(plots) == len(columns)
    first = plots[0]
    temperature = columns["temperature"]["histogram"]
    assert first["type"] == "numeric"
    assert set(first) == {"type", "edges", "reference", "current"}
    assert len(first["edges"]) == len(temperature["reference"]) + 1
    assert None not in first["edges"]
    assert np.all(np.diff(first["edges"]) > 0)
    np.testing.assert_allclose(first["reference"], temperature["reference"], rtol=5e-4, atol=0)
    categorical = [plot for plot in plots if plot["type"] == "categorical"]
    assert ["north", "south", "east", "west", "ZZ-01"] in [plot["labels"] for plot in categorical]


def test_plot_shares_are_written_with_at_most_four_significant_digits(page: str) -> None:
    blob = page[page.index('id="wk-plot-data">') :]
    blob = blob[: blob.index("</script>")]
    shares = re.findall(r'"(?:reference|current)":\[([^\]]*)\]', blob)
    numbers = [number for listed in shares for number in listed.split(",")]
    assert len(numbers) > 100
    for number in numbers:
        mantissa = number.split("e")[0].lstrip("-").replace(".", "").strip("0")
        assert len(mantissa) <= 4, number


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_subnormal=False),
        min_size=1,
        max_size=30,
    )
)
def test_round_significant_is_within_half_a_unit_of_the_fourth_digit(values: list[float]) -> None:
    original = np.asarray(values)
    rounded = np.asarray(_round_significant(original), dtype=float)
    assert np.all(np.abs(rounded - original) <= 5e-4 * np.abs(original) + 1e-300)


@settings(max_examples=200, deadline=None)
@given(
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
    st.lists(st.floats(min_value=1e-6, max_value=1e6), min_size=2, max_size=40),
)
def test_round_edges_keeps_edges_strictly_increasing(start: float, widths: list[float]) -> None:
    edges = start + np.concatenate([[0.0], np.cumsum(widths)])
    # Edges that float arithmetic cannot tell apart are not a valid histogram to begin with.
    if np.any(np.diff(edges) <= 1e-9 * np.maximum(1.0, np.abs(edges[1:]))):
        return
    rounded = np.asarray(_round_edges(edges), dtype=float)
    assert np.all(np.diff(rounded) > 0)
    assert np.max(np.abs(rounded - edges)) <= 0.01 * min(widths) * 1.0001 + 1e-9 * np.max(
        np.abs(edges)
    )


def test_open_outer_edges_get_a_neighbouring_bin_width() -> None:
    assert _round_edges(np.array([np.nan, 0.0, 1.0, 2.0, np.nan])) == [-1.0, 0.0, 1.0, 2.0, 3.0]


# ----------------------------------------------------------------------------- plotly copies, size


def test_inline_embeds_exactly_one_copy_of_plotly(report: dict[str, Any]) -> None:
    html = render_html(report)
    assert len(PLOTLY_HEADER.findall(html)) == 1
    assert f"plotly.js v{plotly_js_version()}" in html
    assert [attrs for tag, attrs in _parse(html).tags if tag == "script" and "src" in attrs] == []


def test_cdn_references_the_packaged_plotly_version_and_inlines_none(page: str) -> None:
    from plotly.offline import get_plotlyjs_version

    assert PLOTLY_HEADER.findall(page) == []
    assert plotly_js_version() == get_plotlyjs_version()
    assert plotly_cdn_url() == f"https://cdn.plot.ly/plotly-{get_plotlyjs_version()}.min.js"
    assert page.count(f'<script src="{plotly_cdn_url()}" charset="utf-8"></script>') == 1


def test_size_of_a_25_column_report_stays_small_apart_from_plotly() -> None:
    report = sample_report(extra_columns=15)
    assert len(report["drift"]["columns"]) == 25
    inline = render_html(report).encode()
    cdn = render_html(report, plotly="cdn").encode()
    plotly_size = len(inline) - len(cdn)
    assert 4_000_000 < plotly_size < 6_000_000
    assert len(cdn) < 100_000
    assert len(inline) < plotly_size + 100_000


def test_two_hundred_columns_keep_a_small_page() -> None:
    html = render_html(sample_report(extra_columns=200), plotly="cdn")
    assert html.count('class="dist"') == 210
    assert html.count(" open>") <= 3
    assert len(html.encode()) < 600_000


# ----------------------------------------------------------------------------- bad input


def test_unknown_plotly_mode_is_a_config_error(report: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="plotly must be 'inline' or 'cdn'") as caught:
        render_html(report, plotly="offline")  # type: ignore[arg-type]
    assert caught.value.key == "plotly"


def test_a_document_of_another_schema_is_an_input_error(report: dict[str, Any]) -> None:
    with pytest.raises(InputError, match=r"not a watchkeeper\.report/v1 document"):
        render_html({**report, "schema": "evidently"})
    with pytest.raises(InputError, match="needs the report document"):
        render_html([report])  # type: ignore[arg-type]


def test_a_confusion_matrix_that_is_not_square_is_an_input_error() -> None:
    report = sample_report()
    report["performance"]["current"]["confusion_matrix"]["matrix"].pop()
    with pytest.raises(InputError, match=r"confusion matrix of shape \(2, 3\) for 3 labels"):
        render_html(report, plotly="cdn")


def test_a_malformed_histogram_names_its_column() -> None:
    report = sample_report()
    report["drift"]["columns"]["pressure"]["histogram"]["current"].pop()
    with pytest.raises(InputError, match="'pressure'") as caught:
        render_html(report, plotly="cdn")
    assert caught.value.column == "pressure"


# ----------------------------------------------------------------------------- real browser


def _browser_dom(html: str, *extra_flags: str) -> str:
    """The DOM after Chromium has run the page's scripts (5 s of virtual time)."""
    with tempfile.TemporaryDirectory(prefix="wk-report-") as directory:
        page = Path(directory) / "report.html"
        page.write_text(html, encoding="utf-8")
        return dom_after_scripts(page.as_uri(), *extra_flags)


def _body_attributes(dom: str) -> dict[str, str | None]:
    page = _parse(dom)
    return next(attrs for tag, attrs in page.tags if tag == "body")


def test_chromium_draws_the_eager_plots_without_errors() -> None:
    dom = _browser_dom(render_html(sample_report()))
    body = _body_attributes(dom)
    html_attrs = next(attrs for tag, attrs in _parse(dom).tags if tag == "html")
    assert "data-js-error" not in html_attrs, html_attrs.get("data-js-error")
    assert "data-plot-errors" not in body
    assert body["data-plots-drawn"] == "3"
    assert dom.count('class="main-svg"') >= 3
    states = [attrs.get("data-state") for tag, attrs in _parse(dom).tags if "data-plot" in attrs]
    assert states[:3] == ["drawn", "drawn", "drawn"]
    assert set(states[3:]) == {None}
    # Bars were drawn: one path per bin and side in the first (numeric, 20-bin) plot at least.
    assert dom.count('class="point"') >= 40


def test_chromium_runs_no_injected_markup() -> None:
    dom = _browser_dom(render_html(sample_report(hostile=True), title=HOSTILE_IMG))
    body = _body_attributes(dom)
    assert "data-pwned" not in body
    assert body["data-plots-drawn"] == "3"
    html_attrs = next(attrs for tag, attrs in _parse(dom).tags if tag == "html")
    assert "data-js-error" not in html_attrs, html_attrs.get("data-js-error")
    # The injected label is shown as text in the plot, not parsed as markup.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom


def test_chromium_offline_cdn_page_says_plotly_did_not_load() -> None:
    # Every host name fails to resolve: the page is opened with no network at all.
    dom = _browser_dom(
        render_html(sample_report(), plotly="cdn"), "--host-resolver-rules=MAP * ~NOTFOUND"
    )
    page = _parse(dom)
    body = _body_attributes(dom)
    html_attrs = next(attrs for tag, attrs in page.tags if tag == "html")
    assert "data-js-error" not in html_attrs, html_attrs.get("data-js-error")
    assert body["data-plotly"] == "missing"
    assert body["data-plots-drawn"] == "0"
    states = [attrs.get("data-state") for tag, attrs in page.tags if "data-plot" in attrs]
    assert states[:3] == ["unavailable"] * 3
    assert "main-svg" not in dom
