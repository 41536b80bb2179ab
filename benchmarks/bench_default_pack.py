"""False pages per day and power of the default rule pack's drift rules; prints JSON.

Runs the live path in-process, as local mode does: a ``MonitorService`` on a SQLite file and an
``AlertingEngine`` with the model's default pack (hourly windows); after each window closes the
engine evaluates the latest samples. For each feature count:

* **healthy**: every window holds ``--rows`` rows of the reference distribution (standard
  normal features, a reference of 3,000 rows). Reported per window: the share of windows where
  any feature is flagged (``drift.<f>.detected``, Holm's correction) and, from the same samples'
  raw p-values and effect sizes, where any would be flagged without the correction; the rate
  of the same feature being flagged in two windows in a row (what pages, ``for`` = one window);
  pages per day counted by the engine (FeatureDrift and DriftShareHigh firing) and estimated
  as ``24 × pair rate`` and, treating windows as independent, as ``24 × F × r²`` from the
  per-feature flag rate ``r`` (a healthy stream pages too rarely to count directly at 20 or 50
  features).
* **power**: one feature shifts by ``shift`` sd at ``--sick-rows`` rows per window; reported:
  the share of shifted windows flagged, and in how many windows after the onset FeatureDrift
  of the shifted feature fires (2 = when the second shifted window closes).

* **verdicts** (``--verdict-days``): the same windows without the service, many more of them:
  each feature's exact batch test (``numeric_drift``; the live binned KS statistic is never
  larger) decided by ``family_verdicts``, as the live signals decide, over several streams (each
  with its own fixed reference, as in production); pages are the same feature flagged in two
  windows in a row (what ``FeatureDrift`` with ``for`` of one window pages on) or half of the
  features flagged in two windows in a row (``DriftShareHigh``).

Run: ``python benchmarks/bench_default_pack.py [--days 30] [--features 3,20,50] [--rows 200]
[--sick-rows 300] [--onsets 20] [--verdict-days 200] [--streams 10]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from watchkeeper.alerts.engine import AlertingEngine
from watchkeeper.config import Settings
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor import MonitorService
from watchkeeper.stats.drift import family_verdicts, numeric_drift
from watchkeeper.store import Store

HOUR = 3600.0
START = 1_700_000_000.0 - 1_700_000_000.0 % HOUR
ALPHA = 0.05
EFFECT_FLOOR = 0.1


class Stream:
    """One model with ``features`` normal features on a fresh store, its pack and a clock."""

    def __init__(self, directory: Path, features: int, rng: np.random.Generator) -> None:
        self.columns = [f"f{index:02d}" for index in range(features)]
        self.rng = rng
        self.now = START
        self.hour = 0
        url = f"sqlite:///{tempfile.mkstemp(suffix='.db', dir=directory)[1]}"
        self.store = Store.open(url)
        self.service = MonitorService(self.store, settings=Settings(db=url), clock=self.clock)
        self.service.start()
        self.alerting = AlertingEngine(
            db=self.store.engine, clock=self.clock, signal_catalog=self.service.signal_catalog
        )
        spec = ModelSpec.from_dict(
            {
                "name": "bench",
                "task": "regression",
                "windows": [int(HOUR)],
                "features": dict.fromkeys(self.columns, "numeric"),
            }
        )
        reference = pd.DataFrame(rng.normal(size=(3000, features)), columns=self.columns)
        self.service.register_model(spec, reference=reference)
        self.alerting.on_model_registered("bench", window_seconds=HOUR)

    def clock(self) -> float:
        return self.now

    def window(self, rows: int, shift: float = 0.0) -> tuple[list[dict[str, Any]], list[Any]]:
        """Send one hour of ``rows`` events (feature 0 shifted by ``shift``), close it and
        evaluate; return the samples of the closed window and the alert transitions."""
        begin = START + self.hour * HOUR
        values = self.rng.normal(size=(rows, len(self.columns)))
        values[:, 0] += shift
        stamps = begin + np.sort(self.rng.uniform(0, HOUR - 2, size=rows))
        self.now = begin + HOUR - 1
        self.service.ingest_events(
            "bench",
            [
                {
                    "id": f"{self.hour}-{row}",
                    "timestamp": float(stamps[row]),
                    "version": "v1",
                    "features": dict(zip(self.columns, values[row].tolist(), strict=True)),
                    "prediction": 1.0,
                }
                for row in range(rows)
            ],
        )
        self.hour += 1
        self.now = START + self.hour * HOUR + 1
        self.service.tick()
        samples = self.service.latest_samples()
        report = self.alerting.evaluate(self.now, samples)
        return samples, list(report.transitions)

    def close(self) -> None:
        self.alerting.close()
        self.service.close()
        self.store.close()


def flags(samples: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
    """Features flagged in a window: with Holm's correction (the signal) and without it."""
    by_feature: dict[str, dict[str, float]] = {}
    for sample in samples:
        parts = sample["labels"]["signal"].split(".")
        if len(parts) == 3 and parts[0] == "drift":
            by_feature.setdefault(parts[1], {})[parts[2]] = sample["value"]
    corrected = {f for f, values in by_feature.items() if values.get("detected") == 1.0}
    raw = {
        f
        for f, values in by_feature.items()
        if values.get("p_value", 1.0) < ALPHA and values.get("score", 0.0) >= EFFECT_FLOOR
    }
    return corrected, raw


def healthy(directory: Path, features: int, days: int, rows: int, seed: int) -> dict[str, Any]:
    stream = Stream(directory, features, np.random.default_rng(seed))
    windows = days * 24
    any_corrected = any_raw = pairs_corrected = pairs_raw = pages = 0
    flagged_corrected = flagged_raw = 0
    previous: tuple[set[str], set[str]] = (set(), set())
    try:
        for _ in range(windows):
            samples, transitions = stream.window(rows)
            corrected, raw = flags(samples)
            any_corrected += bool(corrected)
            any_raw += bool(raw)
            flagged_corrected += len(corrected)
            flagged_raw += len(raw)
            pairs_corrected += len(corrected & previous[0])
            pairs_raw += len(raw & previous[1])
            previous = (corrected, raw)
            pages += sum(change.state.value == "firing" for change in transitions)
    finally:
        stream.close()
    rate_corrected = flagged_corrected / (windows * features)
    rate_raw = flagged_raw / (windows * features)
    return {
        "features": features,
        "windows": windows,
        "rows_per_window": rows,
        "any_feature_flagged_per_window": any_corrected / windows,
        "any_feature_flagged_per_window_uncorrected": any_raw / windows,
        "same_feature_two_windows_per_window": pairs_corrected / (windows - 1),
        "same_feature_two_windows_per_window_uncorrected": pairs_raw / (windows - 1),
        "pages_counted": pages,
        "pages_per_day_counted": pages / days,
        "pages_per_day_estimated": 24 * pairs_corrected / (windows - 1),
        "pages_per_day_estimated_uncorrected": 24 * pairs_raw / (windows - 1),
        # Windows as independent draws: a feature pages when flagged twice in a row.
        "feature_flag_rate": rate_corrected,
        "feature_flag_rate_uncorrected": rate_raw,
        "pages_per_day_independent_windows": 24 * features * rate_corrected**2,
        "pages_per_day_independent_windows_uncorrected": 24 * features * rate_raw**2,
    }


def power(
    directory: Path, features: int, shift: float, rows: int, onsets: int, seed: int
) -> dict[str, Any]:
    """``onsets`` streams: two healthy windows, then four with feature 0 shifted."""
    rng = np.random.default_rng(seed)
    flagged = shifted = 0
    latencies: list[int | None] = []
    for _ in range(onsets):
        stream = Stream(directory, features, rng)
        try:
            for _ in range(2):
                stream.window(rows)
            fired_after: int | None = None
            for index in range(1, 5):
                samples, transitions = stream.window(rows, shift)
                shifted += 1
                flagged += "f00" in flags(samples)[0]
                if fired_after is None and any(
                    change.state.value == "firing"
                    and change.rule.endswith("FeatureDrift")
                    and change.labels.get("feature") == "f00"
                    for change in transitions
                ):
                    fired_after = index
            latencies.append(fired_after)
        finally:
            stream.close()
    return {
        "features": features,
        "shift_sd": shift,
        "rows_per_window": rows,
        "onsets": onsets,
        "shifted_windows_flagged": flagged / shifted,
        "paged_by_window_2": sum(lat is not None and lat <= 2 for lat in latencies) / onsets,
        "paged_by_window_4": sum(lat is not None for lat in latencies) / onsets,
    }


def verdicts(features: int, days: int, streams: int, rows: int, seed: int) -> dict[str, Any]:
    """Pages of the drift rules over ``days`` per stream, from the verdicts alone."""
    rng = np.random.default_rng(seed)
    windows = days * 24
    pages = share_pages = flagged_windows = 0
    for _ in range(streams):
        reference = rng.normal(size=(3000, features))
        previous: set[int] = set()
        previous_share = False
        for _ in range(windows):
            current = rng.normal(size=(rows, features))
            family = family_verdicts(
                {
                    index: numeric_drift(reference[:, index], current[:, index])
                    for index in range(features)
                }
            )
            flagged = {index for index, result in family.items() if result.drift}
            share = len(flagged) / features >= 0.5
            flagged_windows += bool(flagged)
            pages += len(flagged & previous)
            share_pages += share and previous_share
            previous, previous_share = flagged, share
    total_days = days * streams
    return {
        "features": features,
        "streams": streams,
        "days": total_days,
        "rows_per_window": rows,
        "any_feature_flagged_per_window": flagged_windows / (windows * streams),
        "feature_drift_pages": pages,
        "drift_share_pages": share_pages,
        "pages_per_day": (pages + share_pages) / total_days,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--features", default="3,20,50")
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--sick-rows", type=int, default=300)
    parser.add_argument("--onsets", type=int, default=20)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--verdict-days", type=int, default=200)
    parser.add_argument("--streams", type=int, default=10)
    parser.add_argument("--skip-live", action="store_true", help="only the verdicts part")
    args = parser.parse_args()
    counts = [int(part) for part in args.features.split(",")]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        result: dict[str, Any] = {"benchmark": "default_pack", "python": platform.python_version()}
        if not args.skip_live:
            result["healthy"] = [
                healthy(directory, count, args.days, args.rows, args.seed + count)
                for count in counts
            ]
            result["power"] = [
                power(directory, count, shift, args.sick_rows, args.onsets, args.seed + count)
                for count in counts
                for shift in (0.5, 0.8)
            ]
        result["verdicts"] = [
            verdicts(count, args.verdict_days, args.streams, args.rows, args.seed + count)
            for count in counts
        ]
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
