"""In-process cost of one ingest batch, stage by stage: JSON decode, validation, store, fold.

A fresh SQLite file per ``--synchronous`` mode; batches of ``--batch`` events with 20 numeric
features (the shape of bench_ingest.py), registered with a reference profile so the window
fold does its real work. Reports milliseconds per batch (median over ``--batches``) and the
events/s one core sustains without HTTP. Run: ``python benchmarks/bench_store.py
[--batches 40] [--batch 1000]``; prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import FEATURES, MODEL, make_events
from watchkeeper.config import Settings
from watchkeeper.ingest.json import validate_events
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor.service import MonitorService
from watchkeeper.store import Store


def measure(synchronous: str, *, batches: int, batch: int, root: Path) -> dict[str, Any]:
    rng = np.random.default_rng(3)
    now = time.time()
    bodies = [
        orjson.dumps({"events": make_events(n * batch, batch, rng, now)}) for n in range(batches)
    ]
    reference = pd.DataFrame(rng.normal(size=(5_000, len(FEATURES))), columns=FEATURES)
    spec = ModelSpec.from_dict({**MODEL, "windows": [3600, 86400]})
    settings = Settings(db="unused")
    stages: dict[str, list[float]] = {"decode": [], "validate": [], "ingest_events": []}
    store = Store.open(f"sqlite:///{root / f'{synchronous}.db'}", sqlite_synchronous=synchronous)  # type: ignore[arg-type]
    try:
        service = MonitorService(store, settings=settings)
        service.start()
        service.register_model(spec, reference=reference)
        for body in bodies:
            began = time.perf_counter()
            events = orjson.loads(body)["events"]
            decoded = time.perf_counter()
            validate_events(
                events, spec, now=time.time(), max_age_seconds=86_400.0, max_batch=batch
            )
            validated = time.perf_counter()
            service.ingest_events("bench", events)
            done = time.perf_counter()
            stages["decode"].append(decoded - began)
            stages["validate"].append(validated - decoded)
            stages["ingest_events"].append(done - validated)
        operations = service.counters()["store_operations"]["insert_events"]
    finally:
        store.close()
    median = {name: float(np.median(values[2:])) * 1e3 for name, values in stages.items()}
    per_batch = median["decode"] + median["ingest_events"]
    return {
        "ms_per_batch": {name: round(value, 2) for name, value in median.items()},
        "insert_events_mean_ms": round(operations["sum"] / operations["count"] * 1e3, 2),
        "events_per_s_one_core": round(batch / per_batch * 1e3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        results = {
            mode: measure(mode, batches=args.batches, batch=args.batch, root=Path(root))
            for mode in ("FULL", "NORMAL")
        }
    print(
        json.dumps(
            {
                "benchmark": "ingest_stages",
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "load_average": os.getloadavg(),
                "features": len(FEATURES),
                "batch": args.batch,
                "windows": [3600, 86400],
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
