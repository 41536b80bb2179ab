"""What the dashboard's charts show, decided from a model's windows (no browser)."""

from __future__ import annotations

from typing import Any

import pytest

from watchkeeper.dashboard import charts, views
from watchkeeper.errors import ConfigError


def _window(hour: int, **signals: Any) -> dict[str, Any]:
    return {"start": hour * 3600.0, "end": (hour + 1) * 3600.0, "count": 10, "signals": signals}


def test_drift_heatmap_marks_only_the_cells_the_verdict_flags() -> None:
    windows = [
        _window(0, **{"drift.age.score": 0.1, "drift.age.detected": 0.0}),
        _window(1, **{"drift.age.score": 0.9, "drift.age.detected": 1.0}),
        _window(2),  # no drift computed: a gap, not a zero
    ]
    figures = {
        f["id"]: f for f in charts.model_figures(windows, features=["age"], task="regression")
    }
    heatmap, marks = figures["drift"]["figure"]["data"]
    assert heatmap["z"] == [[0.1, 0.9, None]]
    assert heatmap["customdata"][0][1] == [3600.0, 7200.0]
    assert marks["x"] == ["1970-01-01T01:00:00Z"]
    assert marks["y"] == ["age"]
    assert marks["customdata"] == [[3600.0, 7200.0]]


def test_charts_without_data_are_left_out_and_empty_windows_give_none() -> None:
    assert charts.model_figures([], features=["age"], task="classification") == []
    only_traffic = charts.model_figures(
        [_window(0, error_rate=0.0, feedback_count=0.0)], features=["age"], task="classification"
    )
    assert [figure["id"] for figure in only_traffic] == ["traffic"]


def test_performance_shows_the_tasks_metrics_over_label_coverage() -> None:
    windows = [_window(0, accuracy=0.9, label_coverage=0.5, mae=1.0)]
    figure = {
        f["id"]: f for f in charts.model_figures(windows, features=[], task="classification")
    }["performance"]["figure"]
    names = [trace["name"] for trace in figure["data"]]
    assert names == ["accuracy", "label coverage"]
    assert figure["data"][-1]["yaxis"] == "y2"


def test_time_range_picker_and_explicit_bounds() -> None:
    span = views.time_range(None, start=None, end=None, now=1000.0 * 86_400)
    assert span.label == "7d"
    assert span.end - span.start == 7 * 86_400
    assert views.time_range(None, start=10.0, end=20.0, now=99.0).label == "custom"
    with pytest.raises(ConfigError, match="range: expected one of 6h"):
        views.time_range("2w", start=None, end=None, now=0.0)
    with pytest.raises(ConfigError, match="must be before"):
        views.time_range(None, start=20.0, end=10.0, now=0.0)
