"""Per-arm summaries from the monitor's windows: counts rebuilt exactly from the signals."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from watchkeeper.rollout.metrics import (
    SummaryKind,
    arm_windows,
    event_count,
    summarize,
    summary_kind,
)
from watchkeeper.stats.experiments import MeanSummary, ProportionSummary


def window(start: float, count: int, **signals: float | None) -> dict[str, Any]:
    return {"start": start, "end": start + 60, "count": count, "signals": signals}


def test_kinds() -> None:
    assert summary_kind("error_rate") is SummaryKind.RATE
    assert summary_kind("accuracy") is SummaryKind.RATE
    assert summary_kind("outcome.click.rate") is SummaryKind.RATE
    assert summary_kind("outcome.revenue.mean") is SummaryKind.MEAN
    assert summary_kind("feedback_mean_rating") is SummaryKind.MEAN
    assert summary_kind("latency_p99") is SummaryKind.PER_WINDOW
    assert summary_kind("drift_share") is SummaryKind.PER_WINDOW


def test_rates_are_rebuilt_from_counts() -> None:
    windows = [
        window(0, 300, error_rate=3 / 300, accuracy=0.9, labeled_count=100.0),
        window(60, 7, error_rate=0.0, accuracy=None, labeled_count=0.0),
        window(120, 0, error_rate=None, accuracy=None, labeled_count=0.0),
    ]
    assert summarize("error_rate", windows) == ProportionSummary(3, 307)
    assert summarize("accuracy", windows) == ProportionSummary(90, 100)
    assert event_count(windows) == 307


def test_ratings_give_the_exact_mean_and_variance() -> None:
    first = [5, 4, 1, 2, 5]
    second = [3, 3, 4]
    windows = []
    for start, ratings in ((0, first), (60, second)):
        shares = {
            f"feedback_rating_{r}_share": ratings.count(r) / len(ratings) for r in range(1, 6)
        }
        windows.append(window(start, 10, feedback_count=float(len(ratings)), **shares))
    summary = summarize("feedback_mean_rating", windows)
    assert isinstance(summary, MeanSummary)
    expected = MeanSummary.from_values(first + second)
    assert summary.count == expected.count
    assert summary.mean == pytest.approx(expected.mean)
    assert summary.variance == pytest.approx(expected.variance)


def test_outcome_means_pool_the_windows_moments() -> None:
    rng = np.random.default_rng(0)
    chunks = [rng.normal(10, 3, size=n) for n in (40, 7, 120)]
    windows = [
        window(
            60 * i,
            len(c),
            **{
                "outcome.revenue.count": float(len(c)),
                "outcome.revenue.mean": float(c.mean()),
                "outcome.revenue.std": float(c.std(ddof=1)),
            },
        )
        for i, c in enumerate(chunks)
    ]
    summary = summarize("outcome.revenue.mean", windows)
    expected = MeanSummary.from_values(np.concatenate(chunks))
    assert summary.count == expected.count
    assert summary.mean == pytest.approx(expected.mean)
    assert summary.variance == pytest.approx(expected.variance)


def test_outcome_rates_use_the_outcome_count() -> None:
    windows = [window(0, 500, **{"outcome.click.count": 200.0, "outcome.click.rate": 0.25})]
    assert summarize("outcome.click.rate", windows) == ProportionSummary(50, 200)


def test_quantiles_are_one_value_per_window_with_events() -> None:
    windows = [
        window(0, 10, latency_p99=100.0),
        window(60, 10, latency_p99=140.0),
        window(120, 0, latency_p99=None),
    ]
    assert summarize("latency_p99", windows) == MeanSummary.from_values([100.0, 140.0])


class FakeMonitor:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float, float, str | None]] = []

    def windows(
        self, model: str, *, start: float, end: float, version: str | None = None
    ) -> list[dict[str, Any]]:
        self.calls.append((model, start, end, version))
        return [window(0, 5), window(60, 6), window(120, 7)]


def test_arm_windows_leave_out_the_window_the_step_began_in() -> None:
    monitor = FakeMonitor()
    found = arm_windows(monitor, "churn", "4", since=30.0, until=200.0)
    assert [w["start"] for w in found] == [60, 120]
    assert monitor.calls == [("churn", 30.0, 200.0, "4")]
    assert arm_windows(monitor, "churn", "4", since=30.0, until=30.0) == []
