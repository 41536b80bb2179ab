"""Restart of a real server after kill -9: time to /healthz 200 and to /readyz 200.

A uvicorn subprocess serves watchkeeper on 127.0.0.1 with a fresh SQLite file (WAL,
synchronous=FULL) and a model of 20 numeric features with a reference profile, so its open
windows fold drift profiles as in production. ``--events`` events (default 400,000, all in the
open daily window) are posted; once a periodic checkpoint (``--checkpoint-seconds``) holds them
all, a tail of ``--tail`` events is posted and the server is killed with SIGKILL before the next
checkpoint. The restarted server is timed from process start to its first /healthz 200 and to
its first /readyz 200 (windows resumed from the checkpoint, the tail replayed). Then, for
comparison, the checkpoint is deleted and the server killed and restarted again: every event is
replayed (the path before checkpoints). Each restart checks that the open window counts every
stored event. The checkpoint itself is timed in-process on the same database: the copy of the
open windows (ingest calls wait for it) and the whole checkpoint (serialised and stored).

Run: ``python benchmarks/bench_recovery.py [--events 400000] [--tail 25000]
[--checkpoint-seconds 10] [--no-full-replay]``; prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import MODEL as INGEST_MODEL
from bench_ingest import Server, json_body, make_events, set_reference
from watchkeeper.config import Settings
from watchkeeper.monitor import MonitorService
from watchkeeper.store import Store
from watchkeeper.store import tables as t

# Daily windows: every event stays in the one open window for the whole run (an hourly window
# would close, and leave the checkpoint, when a run crosses the hour).
MODEL = {**INGEST_MODEL, "windows": [86_400]}
TARGET_HEALTHZ_S = 1.0
TARGET_READYZ_S = 5.0
BATCH = 2_000


def post_events(url: str, start: int, count: int, rng: np.random.Generator) -> None:
    """Post ``count`` events from id ``start`` in batches, over two connections."""
    bodies = [
        json_body(make_events(start + offset, min(BATCH, count - offset), rng))
        for offset in range(0, count, BATCH)
    ]

    def send(part: list[bytes]) -> None:
        with httpx.Client(base_url=url, timeout=120.0) as client:
            for body in part:
                response = client.post(
                    f"/v1/models/{MODEL['name']}/events",
                    content=body,
                    headers={"content-type": "application/json"},
                )
                response.raise_for_status()

    threads = [threading.Thread(target=send, args=(bodies[n::2],)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def checkpointed_events(db: str) -> int:
    with Store(db) as store:
        checkpoint = store.checkpoint()
    return 0 if checkpoint is None else sum(window.event_count for window in checkpoint.windows)


def kill(server: Server) -> None:
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()


def timed_restart(server: Server, expected: int) -> dict[str, Any]:
    """Start the server; seconds to the first /healthz 200 and /readyz 200."""
    command = [sys.executable, "-m", "uvicorn", "watchkeeper.server.boot:app_from_environment",
               "--factory", "--host", "127.0.0.1", "--port", str(server.port),
               "--log-level", "warning", "--no-access-log"]  # fmt: skip
    started = time.perf_counter()
    with server.log.open("ab") as log:
        server.process = subprocess.Popen(
            command, env=server.env, stdout=log, stderr=subprocess.STDOUT
        )
    healthz = readyz = built = None
    replay: str | None = None
    with httpx.Client(base_url=server.url, timeout=2.0) as client:
        while readyz is None and time.perf_counter() - started < 300:
            if server.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{server.log.read_text()}")
            try:
                if healthz is None and client.get("/healthz").status_code == 200:
                    healthz = time.perf_counter() - started
                ready = client.get("/readyz")
                reason = ready.json().get("reason", "")
                if ready.status_code == 200:
                    readyz = time.perf_counter() - started
                if built is None and (ready.status_code == 200 or " of " in reason):
                    built = time.perf_counter() - started
                if " of " in reason and not reason.endswith(" of 0 events"):
                    replay = reason
            except httpx.TransportError:
                pass
            # Every 10 ms until /healthz answers, then every 50 ms: a probe takes the server's
            # GIL from the recovery for a millisecond or two.
            time.sleep(0.01 if healthz is None else 0.05)
        now = time.time()
        counted = client.get(
            f"/v1/models/{MODEL['name']}/signals/count",
            params={"start": now - 86_400, "end": now + 3600},
            timeout=60.0,
        ).json()["points"]
    total = sum(point["count"] for point in counted)
    if total != expected:
        raise RuntimeError(f"the restarted server counts {total} events, not {expected}")
    return {
        "healthz_s": None if healthz is None else round(healthz, 3),
        "readyz_s": None if readyz is None else round(readyz, 3),
        # When the service was imported and built and its recovery began (readyz says so).
        "recovering_from_s": None if built is None else round(built, 3),
        "last_readyz_reason": replay,
        "events_in_open_windows": total,
    }


def checkpoint_cost(db: str) -> dict[str, float]:
    """Milliseconds to copy the open windows (ingest waits) and for the whole checkpoint."""
    with Store.open(db) as store:
        service = MonitorService(store, settings=Settings(db=db))
        service.start()
        windows = [window for opened in service._shared.open.values() for window in opened.values()]
        started = time.perf_counter()
        for window in windows:
            window.snapshot()
        copy = time.perf_counter() - started
        started = time.perf_counter()
        service.checkpoint()
        whole = time.perf_counter() - started
    return {"copy_ms": round(copy * 1000, 1), "checkpoint_ms": round(whole * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--tail", type=int, default=25_000, help="events after the checkpoint")
    parser.add_argument("--checkpoint-seconds", type=float, default=10.0)
    parser.add_argument("--no-full-replay", dest="full_replay", action="store_false")
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as root:
        db = f"sqlite:///{Path(root) / 'recovery.db'}"
        env = {
            "WATCHKEEPER_CHECKPOINT_SECONDS": str(args.checkpoint_seconds),
            "WATCHKEEPER_INGEST_WORKERS": "1",
        }
        server = Server(db, log=Path(root) / "server.log", env=env).start()
        try:
            httpx.post(f"{server.url}/v1/models", json=MODEL).raise_for_status()
            set_reference(server.url, rng)
            started = time.perf_counter()
            post_events(server.url, 0, args.events, rng)
            result["ingest_events_per_s"] = round(args.events / (time.perf_counter() - started))
            deadline = time.monotonic() + 10 * args.checkpoint_seconds + 60
            while checkpointed_events(db) < args.events and time.monotonic() < deadline:
                time.sleep(0.05)
            if checkpointed_events(db) < args.events:
                raise RuntimeError("no periodic checkpoint holds the events")
            started = time.perf_counter()
            post_events(server.url, args.events, args.tail, rng)
            tail_seconds = time.perf_counter() - started
            kill(server)
            if checkpointed_events(db) != args.events:
                raise RuntimeError("a checkpoint came during the tail; lengthen the interval")
            result["tail_post_s"] = round(tail_seconds, 2)
            stored = args.events + args.tail
            result["from_checkpoint"] = timed_restart(server, stored)
            if args.full_replay:
                kill(server)
                with Store(db) as store, store.engine.begin() as connection:
                    connection.execute(t.checkpoints.delete())
                    connection.execute(t.window_checkpoints.delete())
                result["full_replay"] = timed_restart(server, stored)
        finally:
            server.stop()
        result["checkpoint"] = checkpoint_cost(db)
    print(
        json.dumps(
            {
                "benchmark": "recovery",
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "store": "sqlite (WAL, synchronous=FULL)",
                "load_average": os.getloadavg(),
                "features": len(MODEL["features"]),
                "windows": MODEL["windows"],
                "events_checkpointed": args.events,
                "tail_events": args.tail,
                "checkpoint_seconds": args.checkpoint_seconds,
                "targets": {"healthz_s": TARGET_HEALTHZ_S, "readyz_s": TARGET_READYZ_S},
                **result,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
