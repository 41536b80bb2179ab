"""Benchmark the live monitor: window close with signals, and ingest cost per 1,000 events.

Prints one JSON document. Targets: closing a window of 50 numeric features (signals computed)
<= 50 ms; ingest (validate + insert + fold) of a 1,000-event batch of 20 numeric features well
under 15 ms, reported with the validation, store insert and fold parts separately.

    python benchmarks/bench_window.py
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from watchkeeper.config import Settings
from watchkeeper.ingest.json import validate_events
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor import EventBatch, MonitorService
from watchkeeper.monitor.signals import window_signals
from watchkeeper.monitor.windows import WindowProfile
from watchkeeper.store import Store

T0 = 1_700_006_400.0 - (1_700_006_400.0 % 86_400)
RUNS = 20


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000.0, 2)


def _events(
    rng: np.random.Generator, count: int, features: int, start: int, ts: float
) -> list[Any]:
    values = rng.normal(size=(count, features))
    names = [f"x{j}" for j in range(features)]
    return [
        {
            "id": f"e{start + i}",
            "timestamp": ts,
            "version": "v1",
            "features": dict(zip(names, row.tolist(), strict=True)),
            "prediction": float(row[0]),
            "latency_ms": 3.0,
        }
        for i, row in enumerate(values)
    ]


def _service(
    directory: Path, features: int, synchronous: str
) -> tuple[MonitorService, list[float]]:
    clock = [T0 + 10.0]
    store = Store.open(
        f"sqlite:///{directory / f'bench-{features}-{synchronous}.db'}",
        sqlite_synchronous="FULL" if synchronous == "FULL" else "NORMAL",
    )
    service = MonitorService(store, settings=Settings(), clock=lambda: clock[0])
    service.start()
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({f"x{j}": rng.normal(size=20_000) for j in range(features)})
    reference["prediction"] = rng.normal(size=20_000)
    service.register_model(
        ModelSpec.from_dict(
            {
                "name": "bench",
                "task": "regression",
                "features": {f"x{j}": "numeric" for j in range(features)},
            }
        ),
        reference=reference,
    )
    return service, clock


def bench_close(directory: Path) -> dict[str, Any]:
    """Close one hourly window (and signals) of 50 features holding 10,000 events."""
    service, clock = _service(directory, 50, "FULL")
    rng = np.random.default_rng(1)
    samples, signal_samples = [], []
    state = service._shared.models["bench"]
    for run in range(5):
        hour = T0 + run * 3600
        clock[0] = hour + 10
        for batch in range(10):
            service.ingest_events(
                "bench", _events(rng, 1000, 50, run * 100_000 + batch * 1000, hour)
            )
        window = next(
            w for k, w in service._shared.open["bench"].items() if k.window_seconds == 3600
        )
        started = time.perf_counter()
        window_signals(window, plan=state.plan, reference=state.reference, window_seconds=3600)
        signal_samples.append(time.perf_counter() - started)
        clock[0] = hour + 3600 + 1
        started = time.perf_counter()
        service.tick()
        samples.append(time.perf_counter() - started)
    return {
        "features": 50,
        "events_per_window": 10_000,
        "close_ms_median": _median_ms(samples),
        "signals_ms_median": _median_ms(signal_samples),
        "target_ms": 50,
    }


def bench_ingest(directory: Path, synchronous: str) -> dict[str, Any]:
    """Per-batch cost of each ingest step for 1,000 events × 20 numeric features."""
    service, clock = _service(directory, 20, synchronous)
    state = service._shared.models["bench"]
    rng = np.random.default_rng(2)
    batches = [_events(rng, 1000, 20, k * 1000, T0 + 60) for k in range(RUNS * 2)]
    validate, build, fold, insert, total = [], [], [], [], []
    window = WindowProfile(
        plan=state.plan, reference=state.reference, reference_id=state.reference_id
    )
    for k in range(RUNS):
        started = time.perf_counter()
        result = validate_events(
            batches[k], state.spec, now=clock[0], max_age_seconds=86_400, max_batch=10_000
        )
        validate.append(time.perf_counter() - started)
        started = time.perf_counter()
        batch = EventBatch.build(result.accepted, state.plan)
        rows = result.accepted
        build.append(time.perf_counter() - started)
        started = time.perf_counter()
        service._shared.store.insert_events(state.model_id, rows)
        insert.append(time.perf_counter() - started)
        started = time.perf_counter()
        for _ in state.spec.windows:
            window.fold(batch)
        fold.append(time.perf_counter() - started)
    for k in range(RUNS, 2 * RUNS):
        started = time.perf_counter()
        service.ingest_events("bench", batches[k])
        total.append(time.perf_counter() - started)
    return {
        "sqlite_synchronous": synchronous,
        "batch_events": 1000,
        "features": 20,
        "validate_ms_median": _median_ms(validate),
        "columns_and_rows_ms_median": _median_ms(build),
        "store_insert_ms_median": _median_ms(insert),
        "fold_two_windows_ms_median": _median_ms(fold),
        "ingest_events_total_ms_median": _median_ms(total),
        "events_per_second": round(1000 / statistics.median(total)),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory)
        result = {
            "window_close": bench_close(path),
            "ingest_full_sync": bench_ingest(path, "FULL"),
            "ingest_normal_sync": bench_ingest(path, "NORMAL"),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
