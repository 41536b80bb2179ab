"""Serving speed: the router's overhead over a model's own predict, and HTTP throughput.

1. **Router overhead** (in-process, a trivial scikit-learn model: ``DummyRegressor``): each
   iteration times ``Serving.predict`` of one row (routing by a sticky unit, the ingest rules on
   the features, the frame, the model, the answer, the event put on the log queue; the log's
   thread ingests into a real monitor on a SQLite file meanwhile) and, right after, the model's
   own ``predict`` of the same prebuilt one-row frame; the overhead is their difference,
   reported as percentiles (target: p99 <= 1 ms).
2. **Throughput** over HTTP: a uvicorn subprocess serves a scikit-learn ``LogisticRegression``
   on 10 numeric features (SQLite, every prediction logged); ``--clients`` threads send
   single-row requests, then batches of 100 rows, for ``--seconds`` each.

Run: ``python benchmarks/bench_serving.py [--iterations 5000] [--seconds 5] [--clients 4]``;
prints one JSON object. Figures on a busy machine are indicative only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

FEATURES = [f"f{i}" for i in range(10)]


def _percentiles(samples_us: np.ndarray) -> dict[str, float]:
    return {
        "p50_us": round(float(np.percentile(samples_us, 50)), 1),
        "p90_us": round(float(np.percentile(samples_us, 90)), 1),
        "p99_us": round(float(np.percentile(samples_us, 99)), 1),
        "max_us": round(float(samples_us.max()), 1),
    }


def bench_overhead(iterations: int, root: Path) -> dict[str, Any]:
    """Per-call time of Serving.predict minus the model's own predict, one row."""
    from sklearn.dummy import DummyRegressor

    from watchkeeper.config import Settings
    from watchkeeper.monitor import MonitorService
    from watchkeeper.registry import ArtifactStore, Registry
    from watchkeeper.serving import PredictionLog, PredictRequest, Serving
    from watchkeeper.store import Store

    store = Store.open(f"sqlite:///{root / 'overhead.db'}")
    registry = Registry(store, ArtifactStore(root / "artifacts"))
    frame = pd.DataFrame({"x": [0.0, 1.0], "y": [1.0, 0.0]})
    registry.register("trivial", DummyRegressor().fit(frame, [1.0, 2.0]), registered_by="bench")
    registry.set_alias("trivial", "champion", 1, moved_by="bench")
    monitor = MonitorService(store, settings=Settings())
    monitor.start()
    serving = Serving(registry=registry, monitor=monitor, log=PredictionLog(monitor))
    model = registry.load("trivial@champion")
    row = pd.DataFrame({"x": [0.5], "y": [0.25]})
    served = np.empty(iterations)
    own = np.empty(iterations)
    clock = time.perf_counter
    for index in range(-500, iterations):  # 500 warm-up calls
        request = PredictRequest.from_rows([{"x": 0.5, "y": 0.25}], [f"user-{index}"])
        started = clock()
        serving.predict("trivial", request)
        middle = clock()
        model.predict(row)
        ended = clock()
        if index >= 0:
            served[index] = (middle - started) * 1e6
            own[index] = (ended - middle) * 1e6
    logged = serving.log.flush(60)
    serving.close()
    monitor.close()
    store.close()
    overhead = served - own
    return {
        "iterations": iterations,
        "serving_predict": _percentiles(served),
        "model_predict": _percentiles(own),
        "overhead": _percentiles(overhead),
        "target_p99_us": 1000.0,
        "meets_target": bool(np.percentile(overhead, 99) <= 1000.0),
        "all_logged": logged,
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _start_server(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **os.environ,
        "WATCHKEEPER_DB": f"sqlite:///{root / 'serve.db'}",
        "WATCHKEEPER_ARTIFACT_ROOT": str(root / "artifacts"),
        "WATCHKEEPER_LOG_LEVEL": "warning",
    }
    command = [sys.executable, "-m", "uvicorn", "watchkeeper.server.app:app_from_environment",
               "--factory", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
               "--no-access-log"]  # fmt: skip
    log = (root / "server.log").open("ab")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server not ready: {(root / 'server.log').read_text()}")


def _load(
    url: str, body: dict[str, Any], rows: int, seconds: float, clients: int
) -> dict[str, Any]:
    """Requests from ``clients`` threads for ``seconds``: rates and latency percentiles."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        mine: list[float] = []
        with httpx.Client(base_url=url, timeout=30.0) as http:
            while time.monotonic() < stop:
                started = time.perf_counter()
                answer = http.post("/v1/models/scorer/predict", json=body)
                mine.append((time.perf_counter() - started) * 1e6)
                if answer.status_code != 200:
                    with lock:
                        failures[0] += 1
        with lock:
            latencies.extend(mine)

    began = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    samples = np.array(latencies)
    return {
        "rows_per_request": rows,
        "requests": len(latencies),
        "failed": failures[0],
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "rows_per_s": round(len(latencies) * rows / elapsed, 1),
        "latency": _percentiles(samples),
    }


def bench_throughput(seconds: float, clients: int, root: Path) -> dict[str, Any]:
    """Single rows and batches of 100 through a real server."""
    from sklearn.linear_model import LogisticRegression

    from watchkeeper.registry import ArtifactStore, Registry
    from watchkeeper.store import Store

    rng = np.random.default_rng(7)
    train = pd.DataFrame(rng.standard_normal((2_000, len(FEATURES))), columns=FEATURES)
    labels = (train["f0"] + 0.5 * train["f1"] > 0).astype(int)
    with Store.open(f"sqlite:///{root / 'serve.db'}") as store:
        registry = Registry(store, ArtifactStore(root / "artifacts"))
        registry.register("scorer", LogisticRegression().fit(train, labels), registered_by="bench")
        registry.set_alias("scorer", "champion", 1, moved_by="bench")
    process, url = _start_server(root)
    try:
        row = {
            name: float(value)
            for name, value in zip(FEATURES, rng.standard_normal(10), strict=True)
        }
        httpx.post(f"{url}/v1/models/scorer/predict", json={"features": row}, timeout=60)
        single = _load(url, {"features": row, "unit": "u-1"}, 1, seconds, clients)
        batch = {"rows": [{"features": row, "unit": f"u-{i}"} for i in range(100)]}
        batched = _load(url, batch, 100, seconds, clients)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    return {"model": "LogisticRegression, 10 numeric features", "clients": clients,
            "single_row": single, "batch_100": batched}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=5_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wk-bench-serving-") as directory:
        root = Path(directory)
        result = {
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
            "router_overhead": bench_overhead(options.iterations, root),
            "throughput": bench_throughput(options.seconds, options.clients, root),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
