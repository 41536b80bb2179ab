"""Per-arm summaries of a rollout's metrics from the monitor's windows of each version.

A rollout compares the candidate's version with the baseline's over the same stretch of time
(within the current step, since its weights were set; :mod:`~watchkeeper.rollout.analysis`
picks each metric's recent range of it): each arm is the monitor's windows (smallest length) of
its version that start in that stretch. Signals are per window, so an arm's summary is rebuilt
from them, exactly where the window keeps the counts behind a rate:

=========================== ===================================== ========================
signal                      arm summary                           ``count`` (min samples)
=========================== ===================================== ========================
``error_rate``              errors out of events                  events
``accuracy``                correct out of labelled rows          labelled rows
``feedback_low_share``      low ratings out of ratings            ratings
``feedback_mean_rating``    mean and variance of the ratings      ratings
``outcome.<name>.rate``     positive outcomes out of outcomes     outcomes
``outcome.<name>.mean``     pooled mean and variance              outcomes
anything else               one value per window (mean, variance) windows
=========================== ===================================== ========================

The last row covers quantiles (``latency_p99``), ``drift_share`` and any other signal: a
window's p99 is not the sum of anything, so each window where the arm had events is one
observation of it and the arms are compared on the mean of their windows' values (Welch's
t-test over windows; a ``relative`` condition reads as a ratio of p99s: 0.2 allows the
candidate's to be 1.2 times the baseline's). Its ``min_samples`` counts windows.

>>> windows = [{"start": 0.0, "count": 200, "signals": {"error_rate": 0.01}},
...            {"start": 60.0, "count": 100, "signals": {"error_rate": 0.03}}]
>>> summarize("error_rate", windows)
ProportionSummary(successes=5, trials=300)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, Protocol

from watchkeeper.stats.experiments import ArmSummary, MeanSummary, ProportionSummary

__all__ = ["SummaryKind", "WindowSource", "arm_windows", "event_count", "summarize", "summary_kind"]

Window = Mapping[str, Any]


class SummaryKind(StrEnum):
    """What an arm's summary of a signal counts."""

    RATE = "rate"
    MEAN = "mean"
    PER_WINDOW = "per_window"


class WindowSource(Protocol):
    """What the analysis reads: :meth:`MonitorService.windows` with a version filter."""

    def windows(
        self, model: str, *, start: float, end: float, version: str | None = None
    ) -> list[dict[str, Any]]: ...


# Rates kept as a share of a count signal of the same window.
_RATES = {
    "error_rate": "count",
    "accuracy": "labeled_count",
    "feedback_low_share": "feedback_count",
}


def summary_kind(signal: str) -> SummaryKind:
    """Whether ``signal``'s arm summary is a rate, a pooled mean or one value per window."""
    if signal in _RATES or _outcome(signal, "rate"):
        return SummaryKind.RATE
    if signal == "feedback_mean_rating" or _outcome(signal, "mean"):
        return SummaryKind.MEAN
    return SummaryKind.PER_WINDOW


def arm_windows(
    source: WindowSource, model: str, version: str, *, since: float, until: float
) -> list[Window]:
    """The windows of ``version`` that start in ``[since, until)`` (a window that began
    before ``since`` held traffic at other weights and is left out)."""
    if not until > since:
        return []
    return [
        window
        for window in source.windows(model, start=since, end=until, version=version)
        if window["start"] >= since
    ]


def event_count(windows: Sequence[Window]) -> int:
    """The arm's events, for the sample-ratio check."""
    return sum(int(window["count"]) for window in windows)


def summarize(signal: str, windows: Sequence[Window]) -> ArmSummary:
    """The arm's summary of ``signal`` over ``windows`` (see the module table)."""
    kind = summary_kind(signal)
    if kind is SummaryKind.RATE:
        return _rate(signal, windows)
    if kind is SummaryKind.MEAN:
        if signal == "feedback_mean_rating":
            return _ratings(windows)
        return _pooled(windows, signal)
    values = [_value(window, signal) for window in windows if window["count"]]
    return MeanSummary.from_values([value for value in values if value is not None])


def _outcome(signal: str, statistic: str) -> bool:
    parts = signal.split(".")
    return len(parts) >= 3 and parts[0] == "outcome" and parts[-1] == statistic


def _base(signal: str) -> str:
    """``outcome.click.rate`` → ``outcome.click``."""
    return signal.rsplit(".", 1)[0]


def _value(window: Window, name: str) -> float | None:
    value = window["signals"].get(name)
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _rate(signal: str, windows: Sequence[Window]) -> ProportionSummary:
    count_signal = _RATES.get(signal) or f"{_base(signal)}.count"
    successes = trials = 0
    for window in windows:
        rate = _value(window, signal)
        total = window["count"] if count_signal == "count" else _value(window, count_signal)
        if rate is None or not total:
            continue
        # The window's rate is successes / total exactly; rounding undoes the division.
        successes += round(rate * float(total))
        trials += round(float(total))
    return ProportionSummary(successes=successes, trials=trials)


def _ratings(windows: Sequence[Window]) -> MeanSummary:
    """Ratings 1–5 rebuilt from each window's shares and count: exact mean and variance."""
    counts = [0] * 5
    for window in windows:
        total = _value(window, "feedback_count")
        if not total:
            continue
        for rating in range(1, 6):
            share = _value(window, f"feedback_rating_{rating}_share") or 0.0
            counts[rating - 1] += round(share * total)
    n = sum(counts)
    if n == 0:
        return MeanSummary(count=0, mean=0.0, variance=0.0)
    mean = sum(c * r for r, c in enumerate(counts, start=1)) / n
    squares = sum(c * (r - mean) ** 2 for r, c in enumerate(counts, start=1))
    return MeanSummary(count=n, mean=mean, variance=squares / (n - 1) if n > 1 else 0.0)


def _pooled(windows: Sequence[Window], signal: str) -> MeanSummary:
    """Windows' (count, mean, sample std) pooled into one mean and variance (Chan et al.)."""
    base = _base(signal)
    n_total, mean_total, m2_total = 0, 0.0, 0.0
    for window in windows:
        count = _value(window, f"{base}.count")
        mean = _value(window, signal)
        if not count or mean is None:
            continue
        n = round(count)
        std = _value(window, f"{base}.std") or 0.0
        m2 = std * std * (n - 1)
        combined = n_total + n
        delta = mean - mean_total
        mean_total += delta * n / combined
        m2_total += m2 + delta * delta * n_total * n / combined
        n_total = combined
    variance = m2_total / (n_total - 1) if n_total > 1 else 0.0
    return MeanSummary(count=n_total, mean=mean_total, variance=max(variance, 0.0))
