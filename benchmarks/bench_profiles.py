"""Benchmark of watchkeeper profiles: build, merge, serialise, drift. Prints JSON.

Usage: ``python benchmarks/bench_profiles.py [--rows 1000000] [--columns 20] [--repeats 3]``.
Times are medians (and minima) over ``--repeats`` runs on float64 N(0, 1) columns.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import datasketches
import numpy as np
import orjson
import pandas as pd

from watchkeeper.profiles import DatasetProfile, drift_from_profiles, profile_frame
from watchkeeper.schema import infer_schema


def timed(action: Callable[[], object], repeats: int) -> tuple[float, float, object]:
    """Median and minimum wall time of ``action`` and its last result."""
    times = []
    result: object = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        rng.normal(size=(args.rows, args.columns)), columns=[f"f{i}" for i in range(args.columns)]
    )
    shifted = frame + 0.05
    schema = infer_schema(frame.head(1000))

    ref_median, ref_min, reference = timed(lambda: profile_frame(frame, schema), args.repeats)
    assert isinstance(reference, DatasetProfile)
    win_median, win_min, window = timed(
        lambda: profile_frame(shifted, schema, reference=reference), args.repeats
    )
    assert isinstance(window, DatasetProfile)
    merge_median, _, _ = timed(lambda: window.merge(window), max(args.repeats, 5))
    payload = window.to_bytes()
    load_median, _, _ = timed(lambda: DatasetProfile.from_bytes(payload), max(args.repeats, 5))
    drift_median, _, drift = timed(lambda: drift_from_profiles(reference, window), args.repeats)
    assert isinstance(drift, dict)

    # The floor no profile with KLL sketches can beat: the sketch updates alone.
    columns = [np.array(frame[name].to_numpy(), order="C") for name in frame.columns]
    kll_median, _, _ = timed(
        lambda: [datasketches.kll_doubles_sketch(200).update(c) for c in columns], args.repeats
    )
    cells = args.rows * args.columns
    print(
        orjson.dumps(
            {
                "benchmark": "profiles",
                "rows": args.rows,
                "columns": args.columns,
                "repeats": args.repeats,
                "reference_profile_s": round(ref_median, 3),
                "reference_profile_min_s": round(ref_min, 3),
                "window_profile_s": round(win_median, 3),
                "window_profile_min_s": round(win_min, 3),
                "window_rows_per_s": round(args.rows / win_median),
                "window_values_per_s": round(cells / win_median),
                "kll_updates_only_s": round(kll_median, 3),
                "merge_ms": round(merge_median * 1000, 2),
                "serialised_bytes": len(payload),
                "from_bytes_ms": round(load_median * 1000, 2),
                "drift_from_profiles_ms": round(drift_median * 1000, 2),
                "drifted_columns": sum(result.drift for result in drift.values()),
            },
            option=orjson.OPT_INDENT_2,
        ).decode()
    )


if __name__ == "__main__":
    main()
