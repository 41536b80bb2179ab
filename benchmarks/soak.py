"""Soak test: steady-rate HTTP ingest for minutes; server memory growth and lost events.

A uvicorn subprocess serves watchkeeper on a fresh SQLite file. One client posts batches at
``--rate`` events per second (batches of ``--batch``), the server's resident memory is sampled
every ``--sample-seconds`` (psutil), and at the end the events in the store are counted and
compared with the events the server acknowledged (2xx). Memory growth is measured from the
first sample after a warm-up (a fifth of the run, at most one minute) to the last one.

Run: ``python benchmarks/soak.py --minutes 10 --rate 5000`` (``--minutes 0.5`` for a smoke
run); prints one JSON object. Targets: RSS growth < 10 %, stored == acknowledged.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import MODEL, Server, json_body, make_events
from watchkeeper.store import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=5000, help="events per second")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    args = parser.parse_args()

    duration = args.minutes * 60.0
    warmup = min(60.0, duration / 5)
    interval = args.batch / args.rate
    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory() as root:
        db = f"sqlite:///{Path(root) / 'soak.db'}"
        # Windows close every minute so the soak also exercises tick and window persistence.
        server = Server(
            db,
            log=Path(root) / "server.log",
            env={"WATCHKEEPER_WINDOW_CHECK_SECONDS": "1"},
        ).start()
        process = psutil.Process(server.pid)
        samples: list[tuple[float, int]] = []
        acknowledged = 0
        sent = 0
        failures = 0
        late_batches = 0
        try:
            httpx.post(
                f"{server.url}/v1/models", json={**MODEL, "windows": [60, 3600]}
            ).raise_for_status()
            began = time.monotonic()
            next_send = began
            next_sample = began
            with httpx.Client(base_url=server.url, timeout=30.0) as client:
                while (now := time.monotonic()) - began < duration:
                    if now >= next_sample:
                        samples.append((now - began, process.memory_info().rss))
                        next_sample += args.sample_seconds
                    if now < next_send:
                        time.sleep(min(next_send, next_sample) - now)
                        continue
                    events = make_events(sent, args.batch, rng, time.time())
                    sent += args.batch
                    response = client.post(
                        "/v1/models/bench/events",
                        content=json_body(events),
                        headers={"content-type": "application/json"},
                    )
                    if response.status_code == 200:
                        acknowledged += response.json()["accepted"]
                    else:
                        failures += 1
                    next_send += interval
                    if time.monotonic() > next_send + interval:
                        late_batches += 1
            samples.append((time.monotonic() - began, process.memory_info().rss))
        finally:
            server.stop()
        with Store(db) as store:
            stored = store.count_events(store.get_model("bench").id)

    after_warmup = [rss for at, rss in samples if at >= warmup] or [samples[-1][1]]
    baseline, final = after_warmup[0], samples[-1][1]
    growth = 100.0 * (final - baseline) / baseline
    print(
        json.dumps(
            {
                "benchmark": "soak",
                "cpus": os.cpu_count(),
                "minutes": args.minutes,
                "target_rate": args.rate,
                "achieved_rate": round(sent / duration),
                "late_batches": late_batches,
                "sent": sent,
                "acknowledged": acknowledged,
                "stored": stored,
                "lost": acknowledged - stored,
                "failures": failures,
                "rss_mb": {
                    "start": round(samples[0][1] / 2**20, 1),
                    "after_warmup": round(baseline / 2**20, 1),
                    "end": round(final / 2**20, 1),
                    "max": round(max(rss for _, rss in samples) / 2**20, 1),
                },
                "rss_growth_percent": round(growth, 2),
                "targets": {"rss_growth_percent": "< 10", "lost": 0},
                "ok": growth < 10.0 and acknowledged == stored and failures == 0,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
