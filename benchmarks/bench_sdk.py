"""Cost of ``PredictionLogger.log`` on the caller thread, and ingest validation throughput.

The logger's sender runs for real against a small HTTP server on 127.0.0.1 that answers like
the service, so the caller competes with the sender thread for the GIL as it would in
production. Each ``log`` call is timed on its own with ``perf_counter_ns``; the timer's own
cost (measured on an empty call) is reported beside the numbers, not subtracted.

Run: ``python benchmarks/bench_sdk.py [--calls 200000]``; prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from watchkeeper.ingest.arrow import validate_columns
from watchkeeper.ingest.columns import ValidationResult, ValidEvent
from watchkeeper.ingest.json import validate_events
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.sdk import Client

FEATURES = {"age": 41.5, "income": 52_000.0, "plan": "gold", "tenure": 12, "vip": True}


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = orjson.loads(self.rfile.read(int(self.headers["content-length"])))
        payload = orjson.dumps(
            {"accepted": len(body["events"]), "duplicates": 0, "ids": [], "rejected": []}
        )
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return


def _percentiles(samples_ns: np.ndarray) -> dict[str, float]:
    micro = samples_ns / 1000.0
    return {
        "median_us": round(float(np.median(micro)), 3),
        "p90_us": round(float(np.percentile(micro, 90)), 3),
        "p99_us": round(float(np.percentile(micro, 99)), 3),
        "p999_us": round(float(np.percentile(micro, 99.9)), 3),
        "max_us": round(float(micro.max()), 1),
    }


def _timer_overhead(calls: int) -> float:
    samples = np.empty(calls, dtype=np.int64)
    clock = time.perf_counter_ns
    for index in range(calls):
        start = clock()
        samples[index] = clock() - start
    return float(np.median(samples)) / 1000.0


def bench_log(url: str, calls: int, *, pace_per_second: float | None) -> dict[str, Any]:
    """Time each ``log`` call; optionally pace calls like a service at a given request rate."""
    client = Client(url)
    logger = client.logger("bench", "v1", capacity=max(calls, 500))
    for _ in range(2_000):  # warm-up: thread start, connection, code paths
        logger.log(FEATURES, prediction=1)
    logger.flush(timeout=30)
    warm = logger.stats
    samples = np.empty(calls, dtype=np.int64)
    clock = time.perf_counter_ns
    gap_ns = 0 if pace_per_second is None else int(1e9 / pace_per_second)
    began = time.perf_counter()
    next_at = clock()
    for index in range(calls):
        if gap_ns:
            while clock() < next_at:
                pass
            next_at += gap_ns
        start = clock()
        logger.log(FEATURES, prediction=1, latency_ms=3.2)
        samples[index] = clock() - start
    caller_seconds = time.perf_counter() - began
    flushed = logger.flush(timeout=60)
    delivered_seconds = time.perf_counter() - began
    stats = logger.stats
    client.close()
    return {
        "calls": calls,
        "paced_per_second": pace_per_second,
        **_percentiles(samples),
        "caller_calls_per_second": round(calls / caller_seconds),
        "delivered_events_per_second": round((stats.sent - warm.sent) / delivered_seconds),
        "flushed": flushed,
        "sent": stats.sent - warm.sent,
        "dropped": stats.dropped,
        "failed": stats.failed,
    }


def bench_validation(rows: int) -> dict[str, Any]:
    """Events per second through the JSON and the columnar validators."""
    spec = ModelSpec.from_dict(
        {
            "name": "bench",
            "task": "classification",
            "features": {
                "age": "numeric",
                "income": "numeric",
                "plan": "categorical",
                "tenure": "numeric",
                "vip": "boolean",
            },
            "proba": {"0": "p0", "1": "p1"},
            "segments": ["region"],
        }
    )
    now = time.time()
    events = [
        {
            "id": f"e{index}",
            "timestamp": now - 1.0,
            "version": "v1",
            "features": FEATURES,
            "prediction": 1,
            "proba": {"0": 0.3, "1": 0.7},
            "latency_ms": 3.2,
            "segment": {"region": "eu"},
        }
        for index in range(rows)
    ]
    payload = orjson.loads(orjson.dumps(events))
    table = pa.table(
        {
            "id": [f"e{index}" for index in range(rows)],
            "timestamp": np.full(rows, now - 1.0),
            "version": ["v1"] * rows,
            "age": np.full(rows, 41.5),
            "income": np.full(rows, 52_000.0),
            "plan": ["gold"] * rows,
            "tenure": np.full(rows, 12),
            "vip": np.ones(rows, dtype=bool),
            "prediction": np.ones(rows, dtype=np.int64),
            "proba.0": np.full(rows, 0.3),
            "proba.1": np.full(rows, 0.7),
            "latency_ms": np.full(rows, 3.2),
            "segment.region": ["eu"] * rows,
        }
    )
    limits: dict[str, Any] = {"now": now, "max_age_seconds": 86_400, "max_batch": rows}
    timings: dict[str, int] = {}
    runs: tuple[tuple[str, Callable[[], ValidationResult[ValidEvent]]], ...] = (
        ("json", lambda: validate_events(payload, spec, **limits)),
        ("columnar", lambda: validate_columns(table, spec, **limits)),
    )
    for name, run in runs:
        best = float("inf")
        for _ in range(3):
            began = time.perf_counter()
            result = run()
            best = min(best, time.perf_counter() - began)
        assert len(result.accepted) == rows
        timings[f"{name}_events_per_second"] = round(rows / best)
    return {"rows": rows, **timings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--validation-rows", type=int, default=50_000)
    options = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        result = {
            "benchmark": "watchkeeper.sdk",
            "python": platform.python_version(),
            "timer_overhead_us": round(_timer_overhead(100_000), 3),
            "log_tight_loop": bench_log(url, options.calls, pace_per_second=None),
            "log_paced_10k_per_second": bench_log(url, 50_000, pace_per_second=10_000),
            "validation": bench_validation(options.validation_rows),
            "target": {"log_median_us": 5.0},
        }
    finally:
        server.shutdown()
        server.server_close()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
