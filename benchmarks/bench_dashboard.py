"""Time to render the dashboard's model page for 50 features × 90 windows (target < 1 s).

A store is filled in process (a model with 50 numeric features, its reference, 90 closed hourly
windows of events, drift in the last third), then a real server (uvicorn subprocess) serves it.
Measured: the server's answer to ``GET /models/bench`` (HTML with every figure, p50/p95 over
``--requests``) and, with ``--browser``, the time until headless Chromium (Debian's, through
Playwright) has drawn every chart of the page.

Run: ``python benchmarks/bench_dashboard.py [--features 50] [--windows 90] [--requests 20]
[--browser]``; prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from watchkeeper.config import Settings
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor.service import MonitorService
from watchkeeper.store import Store

HOUR = 3600.0
TARGET_MS = 1000.0


def fill(db: str, *, features: int, windows: int, per_window: int) -> None:
    """The ``bench`` model with ``windows`` closed hourly windows ending an hour ago."""
    names = [f"f{index}" for index in range(features)]
    rng = np.random.default_rng(5)
    store = Store.open(db)
    service = MonitorService(store, settings=Settings(db=db, max_event_age_seconds=30 * 86_400.0))
    service.start()
    try:
        spec = {"name": "bench", "task": "regression", "features": dict.fromkeys(names, "numeric")}
        service.register_model(ModelSpec.from_dict({**spec, "windows": [3600]}))
        reference = pd.DataFrame({name: rng.normal(size=2000) for name in names})
        reference["prediction"] = rng.normal(size=2000)
        service.set_reference("bench", reference)
        now = time.time()
        start = (now // HOUR - windows - 1) * HOUR
        for window in range(windows):
            shift = 0.5 if window >= 2 * windows // 3 else 0.0
            values = rng.normal(shift, 1.0, size=(per_window, features))
            events = [
                {
                    "id": f"e{window}-{row}",
                    "timestamp": start + window * HOUR + row * (HOUR / per_window),
                    "features": dict(zip(names, map(float, values[row]), strict=True)),
                    "prediction": float(values[row, 0]),
                    "version": "v1",
                    "latency_ms": 4.0,
                }
                for row in range(per_window)
            ]
            outcome = service.ingest_events("bench", events)
            assert not outcome.rejected, outcome.rejected[:3]
        service.tick(now)
    finally:
        service.close()
        store.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def serve(db: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "WATCHKEEPER_DB": db, "WATCHKEEPER_LOG_LEVEL": "warning"}
    command = [sys.executable, "-m", "uvicorn", "watchkeeper.server.app:app_from_environment",
               "--factory", "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    with log.open("ab") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server not ready:\n{log.read_text()}")


def browser_ms(url: str, runs: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    timings = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)  # warm: plotly.js cached as a browser would after the first visit
        for _ in range(runs):
            began = time.perf_counter()
            page.goto(url)
            page.wait_for_function(
                "document.querySelectorAll('div.chart[data-rendered=true]').length =="
                " document.querySelectorAll('div.chart[data-figure]').length"
            )
            timings.append((time.perf_counter() - began) * 1000.0)
        browser.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--windows", type=int, default=90)
    parser.add_argument("--per-window", type=int, default=200)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--browser", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {"features": args.features, "windows": args.windows}
    with tempfile.TemporaryDirectory() as root:
        db = f"sqlite:///{Path(root) / 'wk.db'}"
        began = time.perf_counter()
        fill(db, features=args.features, windows=args.windows, per_window=args.per_window)
        result["fill_s"] = round(time.perf_counter() - began, 1)
        process, url = serve(db, Path(root) / "server.log")
        try:
            page = f"{url}/models/bench?range=7d"
            first = httpx.get(page, timeout=60.0)
            first.raise_for_status()
            result["page_bytes"] = len(first.content)
            result["charts"] = first.text.count('class="chart"')
            timings = []
            for _ in range(args.requests):
                began = time.perf_counter()
                httpx.get(page, timeout=60.0).raise_for_status()
                timings.append((time.perf_counter() - began) * 1000.0)
            result["server_ms"] = {
                "p50": round(float(np.percentile(timings, 50)), 1),
                "p95": round(float(np.percentile(timings, 95)), 1),
            }
            if args.browser:
                drawn = browser_ms(page, max(3, args.requests // 4))
                result["browser_ms"] = {
                    "p50": round(float(np.percentile(drawn, 50)), 1),
                    "max": round(max(drawn), 1),
                }
        finally:
            process.terminate()
            process.wait(timeout=30)
    worst = result.get("browser_ms", {}).get("p50", result["server_ms"]["p95"])
    result["target_ms"] = TARGET_MS
    result["meets_target"] = worst < TARGET_MS
    print(json.dumps(result))


if __name__ == "__main__":
    main()
