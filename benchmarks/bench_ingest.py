"""HTTP ingest throughput and batch latency of a real server, JSON and Arrow IPC bodies.

A uvicorn subprocess serves watchkeeper on 127.0.0.1 with a fresh SQLite file (the embedded
default: WAL, synchronous=FULL, so every 2xx is on disk) and its default ingest worker processes
(``--workers`` overrides). The model has a reference profile, so every batch is folded into drift
profiles as in production (``--no-reference`` skips that). Batches of ``--batch`` events with 20
numeric features are pre-encoded; events carry no timestamp, so the server stamps them on
arrival (a run that crosses an hour starts a new window, as in production). After ``--warmup``
unmeasured batches (first-use imports and prepared statements), each body format is measured
twice, ``--seconds`` each:

* capacity (closed loop): ``--clients`` threads (httpx, one connection each) post as fast as
  the server answers; events/s is what the server sustains at that concurrency.
* sustained (open loop, ``--rate`` events/s, default 50,000): a batch is due every
  ``batch / rate`` seconds whatever the answers, sent over up to 8 connections, and its latency
  runs from when it was due, so a server that falls behind shows the whole delay.

During both, a probe times a 4 KiB write + fsync every 20 ms on the database's filesystem: a
slow probe fsync is a stall of the machine's disk, which every commit waits for too (FULL). Each
phase reports the probe's fsync times and how many batches over the 100 ms target overlapped a
stall, so a tail the disk caused can be told from one the server caused.

Server and load generator share this machine's cores, so the numbers are a floor for a
dedicated server.

Run: ``python benchmarks/bench_ingest.py [--seconds 20] [--clients 2] [--rate 50000]
[--batch 1000] [--warmup 20] [--workers N] [--no-reference] [--synchronous FULL|NORMAL]
[--http auto|h11|httptools] [--formats json,arrow]``; prints one JSON object.
"""

from __future__ import annotations

import argparse
import functools
import gc
import io
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import psutil
import pyarrow as pa
import pyarrow.parquet

FEATURES = [f"f{index}" for index in range(20)]
MODEL = {
    "name": "bench",
    "task": "regression",
    "features": dict.fromkeys(FEATURES, "numeric"),
    "windows": [3600],
}
ARROW = "application/vnd.apache.arrow.stream"
TARGET_EVENTS_PER_S = 50_000
TARGET_P99_MS = 100.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """``uvicorn watchkeeper.server.app:app_from_environment --factory`` in a subprocess."""

    def __init__(self, db: str, *, log: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.env = {
            **os.environ,
            "WATCHKEEPER_DB": db,
            "WATCHKEEPER_LOG_LEVEL": "warning",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> Server:
        command = [sys.executable, "-m", "uvicorn", "watchkeeper.server.app:app_from_environment",
                   "--factory", "--host", "127.0.0.1", "--port", str(self.port),
                   "--log-level", "warning", "--no-access-log"]  # fmt: skip
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready:\n{self.log.read_text()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class DiskProbe:
    """Times a 4 KiB write + fsync every 20 ms on a side file of the database's filesystem.

    The server's commits wait for the same disk (synchronous=FULL fsyncs the log on every
    commit), so a probe fsync that takes far longer than usual marks a stall of the machine's
    disk, which no server can hide; the report counts the slow batches that overlapped one.
    """

    def __init__(self, directory: Path, *, interval: float = 0.02) -> None:
        self.path = directory / "disk-probe.bin"
        self.interval = interval
        self.fsyncs: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="disk-probe", daemon=True)

    def __enter__(self) -> DiskProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        page = os.urandom(4096)
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            offset = 0
            while not self._stop.wait(self.interval):
                os.pwrite(descriptor, page, offset)
                offset = (offset + len(page)) % 2**24
                began = time.perf_counter()
                os.fsync(descriptor)
                self.fsyncs.append((began, time.perf_counter()))
        finally:
            os.close(descriptor)

    def report(self, spans: list[tuple[float, float]], *, stall_ms: float = 50.0) -> dict[str, Any]:
        """The probe's fsync times, and how many batches slower than the target overlapped a
        disk stall (a probe fsync slower than ``stall_ms``)."""
        durations = np.array([end - start for start, end in self.fsyncs]) * 1000.0
        stalls = [(start, end) for start, end in self.fsyncs if (end - start) * 1000 > stall_ms]
        slow = [(start, end) for start, end in spans if (end - start) * 1000 > TARGET_P99_MS]
        overlapping = sum(
            any(start < stall_end and stall_start < end for stall_start, stall_end in stalls)
            for start, end in slow
        )
        return {
            "disk_probe": {
                "fsyncs": int(durations.size),
                "fsync_ms": latency_summary(durations) if durations.size else None,
                f"stalls_over_{stall_ms:g}_ms": len(stalls),
            },
            f"batches_over_{TARGET_P99_MS:g}_ms": len(slow),
            "of_which_during_disk_stall": overlapping,
        }


def probed(directory: Path, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """What ``run()`` reports, with its batches' ``spans`` replaced by the disk probe's report
    of the same time."""
    with DiskProbe(directory) as probe:
        result = run()
    return result | probe.report(result.pop("spans"))


def make_events(start: int, count: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    values = rng.normal(size=(count, len(FEATURES))).round(6).tolist()
    predictions = rng.normal(size=count).round(6).tolist()
    latencies = rng.gamma(2.0, 3.0, size=count).round(3).tolist()
    return [
        {
            "id": f"e{start + row}",
            "version": "v1",
            "features": dict(zip(FEATURES, values[row], strict=True)),
            "prediction": predictions[row],
            "latency_ms": latencies[row],
        }
        for row in range(count)
    ]


def set_reference(url: str, rng: np.random.Generator) -> None:
    """A 5,000-row reference, so windows fold drift profiles of every feature."""
    columns = {name: rng.normal(size=5_000).round(6) for name in FEATURES}
    columns["prediction"] = rng.normal(size=5_000).round(6)
    sink = io.BytesIO()
    pa.parquet.write_table(pa.table(columns), sink)
    httpx.put(
        f"{url}/v1/models/bench/reference",
        content=sink.getvalue(),
        headers={"content-type": "application/vnd.apache.parquet"},
        timeout=60.0,
    ).raise_for_status()


def json_body(events: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"events": events})


def arrow_body(events: list[dict[str, Any]]) -> bytes:
    columns: dict[str, Any] = {
        "id": [event["id"] for event in events],
        "version": [event["version"] for event in events],
        "prediction": [event["prediction"] for event in events],
        "latency_ms": [event["latency_ms"] for event in events],
    }
    for name in FEATURES:
        columns[name] = [event["features"][name] for event in events]
    table = pa.table(columns)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def drive(
    url: str,
    bodies: list[bytes],
    content_type: str,
    *,
    clients: int,
    seconds: float,
    batch: int,
) -> dict[str, Any]:
    """Post ``bodies`` round-robin from ``clients`` threads for ``seconds``; latency per batch."""
    spans: list[list[tuple[float, float]]] = [[] for _ in range(clients)]
    accepted = [0] * clients
    failures: list[str] = []
    next_body = iter(range(len(bodies)))
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker(slot: int) -> None:
        with httpx.Client(base_url=url, timeout=60.0) as client:
            while time.perf_counter() < deadline:
                with lock:
                    position = next(next_body, None)
                if position is None:
                    return
                began = time.perf_counter()
                response = client.post(
                    "/v1/models/bench/events",
                    content=bodies[position],
                    headers={"content-type": content_type},
                )
                spans[slot].append((began, time.perf_counter()))
                if response.status_code != 200:
                    failures.append(f"{response.status_code}: {response.text[:200]}")
                    return
                accepted[slot] += response.json()["accepted"]

    threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    all_spans = [span for chunk in spans for span in chunk]
    all_latencies = np.array([end - start for start, end in all_spans]) * 1000.0
    return {
        "batches": int(all_latencies.size),
        "events_accepted": int(sum(accepted)),
        "seconds": round(elapsed, 3),
        "events_per_s": round(sum(accepted) / elapsed),
        "batch_latency_ms": latency_summary(all_latencies),
        "failures": failures[:3],
        "batch_bytes": len(bodies[0]),
        "batch_events": batch,
        "spans": all_spans,
    }


def latency_summary(milliseconds: np.ndarray) -> dict[str, float]:
    return {
        "p50": round(float(np.percentile(milliseconds, 50)), 2),
        "p90": round(float(np.percentile(milliseconds, 90)), 2),
        "p99": round(float(np.percentile(milliseconds, 99)), 2),
        "max": round(float(milliseconds.max()), 2),
    }


def drive_at_rate(
    url: str,
    bodies: list[bytes],
    content_type: str,
    *,
    rate: float,
    seconds: float,
    batch: int,
    connections: int = 8,
) -> dict[str, Any]:
    """Open loop: batch ``k`` is due at ``k * batch / rate`` seconds, whatever the answers.

    A batch's latency runs from when it was due, not from when a connection was free to send
    it, so a server that falls behind shows the whole delay (no coordinated omission).
    """
    interval = batch / rate
    count = min(len(bodies), max(1, int(seconds / interval)))
    spans: list[tuple[float, float]] = []
    accepted: list[int] = []
    failures: list[str] = []
    next_batch = iter(range(count))
    lock = threading.Lock()
    start = time.perf_counter() + 0.1

    def sender() -> None:
        with httpx.Client(base_url=url, timeout=60.0) as client:
            while True:
                with lock:
                    position = next(next_batch, None)
                if position is None:
                    return
                due = start + position * interval
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                response = client.post(
                    "/v1/models/bench/events",
                    content=bodies[position],
                    headers={"content-type": content_type},
                )
                spans.append((due, time.perf_counter()))
                if response.status_code != 200:
                    failures.append(f"{response.status_code}: {response.text[:200]}")
                    return
                accepted.append(response.json()["accepted"])

    threads = [threading.Thread(target=sender) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    return {
        "offered_events_per_s": round(rate),
        "events_per_s": round(sum(accepted) / elapsed),
        "batches": len(spans),
        "seconds": round(elapsed, 3),
        "batch_latency_ms": latency_summary(
            np.array([end - start for start, end in spans]) * 1000.0
        ),
        "failures": failures[:3],
        "spans": spans,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="load time per body format")
    parser.add_argument("--clients", type=int, default=2, help="closed-loop clients")
    parser.add_argument(
        "--rate",
        type=float,
        default=float(TARGET_EVENTS_PER_S),
        help="events/s offered in the open-loop (sustained) phase; 0 skips it",
    )
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument(
        "--warmup", type=int, default=20, help="batches sent before measuring, per format"
    )
    parser.add_argument("--formats", default="json,arrow")
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="FULL")
    parser.add_argument("--http", choices=("auto", "h11", "httptools"), default="auto")
    parser.add_argument("--workers", type=int, default=None, help="ingest worker processes")
    parser.add_argument("--no-reference", dest="reference", action="store_false")
    args = parser.parse_args()
    env = {"WATCHKEEPER_SQLITE_SYNCHRONOUS": args.synchronous, "UVICORN_HTTP": args.http}
    if args.workers is not None:
        env["WATCHKEEPER_INGEST_WORKERS"] = str(args.workers)

    rng = np.random.default_rng(7)
    # Enough distinct batches that no event is a duplicate even at 200,000 events/s.
    batches = max(8, int(args.seconds * 200_000 / args.batch))
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as root:
        for name in args.formats.split(","):
            db = f"sqlite:///{Path(root) / f'{name}.db'}"
            server = Server(db, log=Path(root) / f"{name}.log", env=env).start()
            try:
                httpx.post(f"{server.url}/v1/models", json=MODEL).raise_for_status()
                if args.reference:
                    set_reference(server.url, rng)
                encode, content_type = (
                    (json_body, "application/json") if name == "json" else (arrow_body, ARROW)
                )
                offset = 0 if name == "json" else 10**9
                bodies = [
                    encode(make_events(offset + n * args.batch, args.batch, rng))
                    for n in range(batches)
                ]
                # Warm up (first-use imports and prepared statements in the server and its
                # workers), then measure the steady state.
                warmup = [
                    encode(make_events(offset + (batches + n) * args.batch, args.batch, rng))
                    for n in range(args.warmup)
                ]
                # The load generator holds millions of objects (pandas, the batches' sources):
                # frozen, its own full collections (35 ms each, every ~0.5 s) no longer stall
                # the clients and show up as server latency.
                gc.collect()
                gc.freeze()
                if warmup:
                    drive(server.url, warmup, content_type, clients=args.clients,
                          seconds=60.0, batch=args.batch)  # fmt: skip
                process = psutil.Process(server.pid)
                workers = [
                    child
                    for child in process.children()
                    if "multiprocessing.resource_tracker" not in " ".join(child.cmdline())
                ]
                process.cpu_percent(None)
                cpu_before = [child.cpu_times() for child in workers]
                result = probed(
                    Path(root),
                    functools.partial(
                        drive,
                        server.url,
                        bodies,
                        content_type,
                        clients=args.clients,
                        seconds=args.seconds,
                        batch=args.batch,
                    ),
                )
                result["server_cpu_percent"] = round(process.cpu_percent(None), 1)
                result["ingest_workers"] = len(workers)
                result["worker_cpu_ms_per_batch"] = [
                    round((after.user + after.system - before.user - before.system)
                          / max(1, result["batches"]) * 1000, 1)
                    for before, after in zip(
                        cpu_before, [child.cpu_times() for child in workers], strict=True
                    )
                ]  # fmt: skip
                result["server_rss_mb"] = round(process.memory_info().rss / 2**20, 1)
                if args.rate > 0:
                    sustained = [
                        encode(make_events(offset + 5 * 10**8 + n * args.batch, args.batch, rng))
                        for n in range(int(args.seconds * args.rate / args.batch) + 1)
                    ]
                    gc.collect()
                    gc.freeze()
                    process.cpu_percent(None)
                    result["sustained"] = probed(
                        Path(root),
                        functools.partial(
                            drive_at_rate,
                            server.url,
                            sustained,
                            content_type,
                            rate=args.rate,
                            seconds=args.seconds,
                            batch=args.batch,
                        ),
                    )
                    result["sustained"]["server_cpu_percent"] = round(process.cpu_percent(None), 1)
                results[name] = result
            finally:
                server.stop()
    print(
        json.dumps(
            {
                "benchmark": "http_ingest",
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "store": f"sqlite (WAL, synchronous={args.synchronous})",
                "http": args.http,
                "load_average": os.getloadavg(),
                "features": len(FEATURES),
                "reference_profile": args.reference,
                "clients": args.clients,
                "sustained_rate": args.rate,
                "warmup_batches": args.warmup,
                "targets": {"events_per_s": TARGET_EVENTS_PER_S, "p99_batch_ms": TARGET_P99_MS},
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
