"""Benchmark: a rollout's time from the onset of a degradation to traffic back on the baseline,
and the cost of one analysis look over 20 metrics; print JSON.

Onset: versions 1 and 2 serve 2,000 requests a minute (1-minute windows, a simulated monitor
of per-version counts); the candidate gets 20 % at minute 0 and its error rate goes from 1 % to
5 % at minute ``onset`` (after 0, 30 or 120 healthy minutes); the analysis looks every minute
(``failure_limit: 1``, ``error_rate <= baseline + 0.01``). Reported in simulated minutes from
the onset to traffic back on the baseline, twice: ``recent_range`` with the default
``lookback`` (each look judges the last ten minutes), and ``whole_period`` with a lookback
longer than the stay (each look judges everything since the weight was set, as before the
lookback existed: the healthy stretch dilutes a late degradation).

Look: one look of a rollout whose arms have 120 windows each, 20 metrics (error rate, four
outcome rates and 15 per-window signals), on an in-memory SQLite store; median wall time of
``ROUNDS`` looks (the machine may be shared: a figure, not a target).
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from typing import Any

import numpy as np

from watchkeeper.rollout.controller import RolloutController
from watchkeeper.rollout.traffic import InMemoryTraffic
from watchkeeper.store import Store

MINUTE = 60.0
T0 = 1_700_000_040.0
ROUNDS = 20
ONSETS = (0, 30, 120)
SEEDS = 5
# The whole period: a lookback longer than the 10-hour pause, so every look judges all of it.
LOOKBACKS: dict[str, dict[str, Any]] = {"recent_range": {}, "whole_period": {"lookback": "11h"}}
RATES = [f"outcome.o{i}.rate" for i in range(4)]
PER_WINDOW = [f"s{i}" for i in range(15)]


class Monitor:
    """Per-version windows of counts and signals, drawn from each version's error rate."""

    def __init__(self, traffic: InMemoryTraffic, seed: int) -> None:
        self.traffic = traffic
        self.rng = np.random.default_rng(seed)
        self.error_rate = {"1": 0.01, "2": 0.01}
        self.stored: dict[str, list[dict[str, Any]]] = {"1": [], "2": []}

    def signal_names(self, model: str) -> list[str]:
        return [
            "count",
            "error_rate",
            *RATES,
            *(f"outcome.o{i}.count" for i in range(4)),
            *PER_WINDOW,
        ]

    def windows(
        self, model: str, *, start: float, end: float, version: str | None = None
    ) -> list[dict[str, Any]]:
        assert version is not None
        return [w for w in self.stored[version] if start <= w["start"] < end]

    def serve(self, start: float, requests: int) -> None:
        split = self.traffic.split("m")
        counts = self.rng.multinomial(requests, [split["1"] / 100, split["2"] / 100])
        for version, count in zip(("1", "2"), counts, strict=True):
            signals: dict[str, float | None] = {
                "count": float(count),
                "error_rate": self.rng.binomial(count, self.error_rate[version]) / max(count, 1),
            }
            for name in RATES:
                signals[name.replace(".rate", ".count")] = float(count)
                signals[name] = self.rng.binomial(count, 0.1) / max(count, 1)
            for name in PER_WINDOW:
                signals[name] = float(self.rng.normal(100.0, 5.0))
            self.stored[version].append(
                {"start": start, "end": start + MINUTE, "count": int(count), "signals": signals}
            )


def spec(metrics: list[dict[str, Any]], **analysis: Any) -> dict[str, Any]:
    return {
        "model": "m",
        "baseline": "1",
        "candidate": "2",
        "steps": [{"set_weight": 20}, {"pause": {"duration": "10h"}}],
        "analysis": {
            "interval": "1m",
            "failure_limit": 1,
            "min_samples": 500,
            "metrics": metrics,
            **analysis,
        },
    }


def minutes_to_rollback(onset: int, seed: int, **analysis: Any) -> int | None:
    traffic = InMemoryTraffic()
    traffic.set_split("m", {"1": 100})
    monitor = Monitor(traffic, seed)
    clock = [T0]
    with Store.open("sqlite://") as store:
        controller = RolloutController(
            store=store, monitor=monitor, traffic=traffic, clock=lambda: clock[0]
        )
        errors = {"signal": "error_rate", "condition": {"kind": "difference", "value": 0.01}}
        record = controller.start(spec([errors], **analysis))
        for minute in range(onset + 240):
            if minute == onset:
                monitor.error_rate["2"] = 0.05
            monitor.serve(clock[0], 2000)
            clock[0] += MINUTE
            controller.tick()
            if store.rollout(record.id).state == "aborted":
                return minute + 1 - onset
    return None


def look_seconds() -> float:
    traffic = InMemoryTraffic()
    traffic.set_split("m", {"1": 100})
    monitor = Monitor(traffic, 0)
    clock = [T0]
    metrics: list[dict[str, Any]] = [
        {"signal": "error_rate", "condition": {"kind": "difference", "value": 0.01}}
    ]
    metrics += [
        {"signal": name, "condition": {"direction": "higher_is_better", "value": 0.05}}
        for name in RATES
    ]
    metrics += [
        {"signal": name, "condition": {"direction": "lower_is_better", "value": 0.05}}
        for name in PER_WINDOW
    ]
    with Store.open("sqlite://") as store:
        controller = RolloutController(
            store=store, monitor=monitor, traffic=traffic, clock=lambda: clock[0]
        )
        record = controller.start(spec(metrics))
        for _ in range(120):
            monitor.serve(clock[0], 2000)
            clock[0] += MINUTE
        timings = []
        for _ in range(ROUNDS):
            clock[0] += MINUTE  # one look due per tick
            started = time.perf_counter()
            controller.tick()
            timings.append(time.perf_counter() - started)
        assert len(store.rollout_measurements(record.id)) == ROUNDS * 21
    return statistics.median(timings)


def main() -> None:
    onsets = {}
    for onset in ONSETS:
        onsets[str(onset)] = {
            name: [minutes_to_rollback(onset, seed, **analysis) for seed in range(SEEDS)]
            for name, analysis in LOOKBACKS.items()
        }
    print(
        json.dumps(
            {
                "python": platform.python_version(),
                "minutes_from_onset_to_rollback": onsets,
                "look_20_metrics_seconds_median": look_seconds(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
