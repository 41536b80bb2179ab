"""Benchmark watchkeeper's streaming detectors: detection quality and throughput, as JSON.

Run: ``.venv/bin/python benchmarks/bench_detectors.py [--quick] [--rainfall PATH]``.

* Seeded synthetic streams (a change at the midpoint): mean shift, variance change, gradual
  drift, and the mean shift in the units of a real signal (1000 + 50·z). Per detector: false
  alarms per 10,000 points before the change and the delay of the first alarm after it.
  River's Page-Hinkley at its defaults runs side by side with watchkeeper's calibrated one.
* River's annotated change-point series bundled in its wheel (``river.drift.datasets``).
* The rainfall data (NOAA, Bellevue NE; documented drift from row 12,000).
* Throughput in updates per second for every detector kind.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import river
from river import drift
from river.drift import datasets as river_datasets

import watchkeeper
from watchkeeper.detectors import DETECTOR_KINDS, Detector, DetectorSpec

SHARED_RAINFALL = Path(__file__).resolve().parents[2] / "shared" / "data" / "rainfall.csv.gz"
PACKAGE_RAINFALL = Path(watchkeeper.__file__).parent / "data" / "rainfall.csv.gz"
RAINFALL_DRIFT_ROW = 12_000
KSWIN_SPAN = 10_000  # KSWIN runs a KS test per update, so it sees the change ± this many points
MATCH_MARGIN = 20

NUMERIC_DETECTORS: dict[str, DetectorSpec] = {
    "cusum": DetectorSpec("cusum"),
    "ewma": DetectorSpec("ewma"),
    "page_hinkley (calibrated)": DetectorSpec("page_hinkley"),
    "page_hinkley (river defaults)": DetectorSpec("page_hinkley", {"warmup": 0, "threshold": 50.0}),
    "adwin": DetectorSpec("adwin"),
    "kswin": DetectorSpec("kswin"),
    "dynamic_threshold (window 100, k 3)": DetectorSpec("dynamic_threshold"),
}
BINARY_DETECTORS: dict[str, DetectorSpec] = {
    kind: DetectorSpec(kind) for kind in ("ddm", "eddm", "hddm_a", "hddm_w")
}


def alarm_indices(detector: Detector, values: Sequence[float]) -> list[int]:
    """Feed every value; return the indices where drift was flagged."""
    update = detector.update
    found = []
    for index, value in enumerate(values):
        update(value)
        if detector.drift_detected:
            found.append(index)
    return found


def quality(found: list[int], change: int, start: int, warmup: int) -> dict[str, Any]:
    """False alarms per 10,000 monitored points before ``change``; delay of the first after."""
    monitored = change - start - warmup
    before = sum(1 for index in found if index < change)
    after = [index for index in found if index >= change]
    return {
        "false_alarms_before_change": before,
        "false_alarms_per_10k": round(before * 10_000 / monitored, 3),
        "detection_delay": after[0] - change if after else None,
    }


def synthetic_streams(length: int, seed: int) -> dict[str, list[float]]:
    """Seeded streams that change at ``length // 2``."""
    rng = np.random.default_rng(seed)
    steps = np.arange(length)
    change = length // 2
    noise = rng.standard_normal(length)
    mean_shift = noise + (steps >= change)
    ramp = np.clip((steps - change) / 10_000, 0.0, 1.0) * 2.0
    return {
        "mean_shift_1sd": mean_shift.tolist(),
        "mean_shift_1sd_scaled_1000_50": (1000.0 + 50.0 * mean_shift).tolist(),
        "variance_x2": (np.where(steps >= change, 2.0, 1.0) * noise).tolist(),
        "gradual_drift_2sd_over_10k": (noise + ramp).tolist(),
    }


def bench_synthetic(length: int) -> dict[str, Any]:
    change = length // 2
    results: dict[str, Any] = {}
    for stream_name, values in synthetic_streams(length, seed=2024).items():
        per_detector: dict[str, Any] = {}
        for label, spec in NUMERIC_DETECTORS.items():
            start = max(0, change - KSWIN_SPAN) if spec.kind == "kswin" else 0
            stop = change + KSWIN_SPAN if spec.kind == "kswin" else len(values)
            detector = spec.build()
            warmup = int(detector.spec.params.get("warmup") or 0)
            found = [start + index for index in alarm_indices(detector, values[start:stop])]
            per_detector[label] = quality(found, change, start, warmup) | {"points": stop - start}
        results[stream_name] = per_detector
    rng = np.random.default_rng(7)
    rates = np.where(np.arange(length) >= change, 0.3, 0.2)
    errors = (rng.random(length) < rates).astype(float).tolist()
    results["error_rate_0.2_to_0.3"] = {
        label: quality(alarm_indices(spec.build(), errors), change, 0, 0) | {"points": length}
        for label, spec in BINARY_DETECTORS.items()
    }
    return results


def river_series() -> dict[str, tuple[list[float], list[int]]]:
    """Univariate series and the union of annotated change points, from River's wheel."""
    chosen: dict[str, Callable[[Any], float]] = {
        "AirlinePassengers": lambda y: float(y),
        "Apple": lambda y: float(y["Close"]),
        "Bitcoin": lambda y: float(y),
        "Occupancy": lambda y: float(y["V1"]),
        "RunLog": lambda y: float(y["Pace"]),
        "UKCoalEmploy": lambda y: float(y),
    }
    series = {}
    for name, pick in chosen.items():
        dataset = getattr(river_datasets, name)()
        values = [pick(y) for _, y in dataset]
        changes = sorted({point for points in dataset.annotations.values() for point in points})
        series[name] = (values, changes)
    return series


def match(found: list[int], changes: list[int]) -> dict[str, Any]:
    """Recall/precision where an alarm within MATCH_MARGIN points after a change matches it."""
    hit_changes = sum(
        1 for point in changes if any(point <= index <= point + MATCH_MARGIN for index in found)
    )
    good_alarms = sum(
        1 for index in found if any(point <= index <= point + MATCH_MARGIN for point in changes)
    )
    recall = hit_changes / len(changes) if changes else math.nan
    precision = good_alarms / len(found) if found else math.nan
    f1 = (
        2 * precision * recall / (precision + recall)
        if found and changes and precision + recall > 0
        else 0.0
    )
    return {
        "alarms": found,
        "recall": round(recall, 3),
        "precision": None if math.isnan(precision) else round(precision, 3),
        "f1": round(f1, 3),
    }


def bench_river_datasets() -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, (values, changes) in river_series().items():
        warmup = max(10, min(50, len(values) // 8))
        specs = {
            "cusum (relearn)": DetectorSpec("cusum", {"warmup": warmup, "relearn": True}),
            "ewma (relearn)": DetectorSpec("ewma", {"warmup": warmup, "relearn": True}),
            "page_hinkley (calibrated)": DetectorSpec("page_hinkley", {"warmup": warmup}),
            "page_hinkley (river defaults)": NUMERIC_DETECTORS["page_hinkley (river defaults)"],
            "adwin": DetectorSpec("adwin"),
            "kswin": DetectorSpec("kswin", {"window_size": 60, "stat_size": 20}),
        }
        monitored = [point for point in changes if point >= warmup]
        results[name] = {
            "points": len(values),
            "annotated_changes": changes,
            "warmup": warmup,
            "detectors": {
                label: match(alarm_indices(spec.build(), values), monitored)
                for label, spec in specs.items()
            },
        }
    return results


def read_rainfall(path: Path) -> dict[str, list[float]]:
    with gzip.open(path, "rt") as handle:
        header = handle.readline().strip().split(",")
        rows = [line.strip().split(",") for line in handle if line.strip()]
    return {name: [float(row[i]) for row in rows] for i, name in enumerate(header)}


def bench_rainfall(path: Path) -> dict[str, Any]:
    columns = read_rainfall(path)
    rain = columns["rain"]
    block = 30
    rates = [sum(rain[i : i + block]) / block for i in range(0, len(rain) - block + 1, block)]
    change_block = RAINFALL_DRIFT_ROW // block
    numeric = {
        "cusum": DetectorSpec("cusum", {"warmup": 100}),
        "ewma": DetectorSpec("ewma", {"warmup": 100}),
        "page_hinkley (calibrated)": DetectorSpec("page_hinkley", {"warmup": 100}),
        "page_hinkley (river defaults)": NUMERIC_DETECTORS["page_hinkley (river defaults)"],
        "adwin": DetectorSpec("adwin"),
    }
    rate_results = {}
    for label, spec in numeric.items():
        detector = spec.build()
        warmup = int(detector.spec.params.get("warmup") or 0)
        summary = quality(alarm_indices(detector, rates), change_block, 0, warmup)
        if summary["detection_delay"] is not None:
            summary["detection_delay_rows"] = summary["detection_delay"] * block
        rate_results[label] = summary
    binary = {
        label: quality(alarm_indices(spec.build(), rain), RAINFALL_DRIFT_ROW, 0, 0)
        for label, spec in BINARY_DETECTORS.items()
    }
    return {
        "path": str(path),
        "rows": len(rain),
        "drift_row": RAINFALL_DRIFT_ROW,
        "rain_rate_per_30_days": {"points": len(rates), "change_point": change_block}
        | {"detectors": rate_results},
        "rain_indicator_daily": binary,
    }


def throughput(length: int) -> dict[str, Any]:
    rng = np.random.default_rng(3)
    numeric = rng.standard_normal(length).tolist()
    binary = (rng.random(length) < 0.2).astype(float).tolist()
    results: dict[str, Any] = {}

    def rate(update: Callable[[float], Any], values: list[float]) -> float:
        began = time.perf_counter()
        for value in values:
            update(value)
        return round(len(values) / (time.perf_counter() - began))

    for kind in sorted(DETECTOR_KINDS):
        params: dict[str, Any] = {"bound": 10.0} if kind == "static_threshold" else {}
        detector = DetectorSpec(kind, params).build()
        values = binary if detector.binary_input else numeric
        if kind == "kswin":
            values = values[: max(2000, length // 100)]
        results[kind] = rate(detector.update, values)
    river_drift: Any = drift  # River's constructors are untyped
    results["river.PageHinkley (native)"] = rate(river_drift.PageHinkley().update, numeric)
    results["river.ADWIN (native)"] = rate(river_drift.ADWIN().update, numeric)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short streams (about 20 s)")
    parser.add_argument(
        "--rainfall",
        type=Path,
        default=PACKAGE_RAINFALL if PACKAGE_RAINFALL.exists() else SHARED_RAINFALL,
        help="rainfall.csv.gz (default: the package copy if present, else ../shared/data)",
    )
    args = parser.parse_args(argv)
    length = 100_000 if args.quick else 1_000_000
    began = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "watchkeeper.detectors",
        "python": platform.python_version(),
        "river": getattr(river, "__version__", "unknown"),
        "quick": args.quick,
        "synthetic": {"points": length, "change": length // 2} | bench_synthetic(length),
        "river_change_point_datasets": {"match_margin": MATCH_MARGIN} | bench_river_datasets(),
        "throughput_updates_per_second": throughput(200_000 if not args.quick else 50_000),
    }
    if args.rainfall.exists():
        report["rainfall"] = bench_rainfall(args.rainfall)
    else:
        report["rainfall"] = {"skipped": f"{args.rainfall} not found"}
    report["seconds"] = round(time.perf_counter() - began, 1)
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
