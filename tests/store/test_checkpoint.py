"""The WAL checkpointer thread: keeps the log short under a steady write load, off the commits."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from watchkeeper.store import Store
from watchkeeper.store.checkpoint import Checkpointer


def _writer(path: Path, stop: threading.Event, written: list[int]) -> None:
    connection = sqlite3.connect(path, isolation_level=None, timeout=30)
    connection.execute("PRAGMA wal_autocheckpoint=0")  # only the checkpointer moves the log
    connection.execute("PRAGMA journal_size_limit=0")  # as the store: a restarted log shrinks
    payload = b"x" * 2000
    while not stop.is_set():
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany("INSERT INTO t (v) VALUES (?)", [(payload,)] * 50)
        connection.execute("COMMIT")
        written[0] += 50
        time.sleep(0.005)  # an ingest-like pace (~20 MB/s), not a disk benchmark
    connection.close()


def _wal_database(root: Path) -> Path:
    path = root / "wal.db"
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
    setup.close()
    return path


def test_the_log_stays_short_under_steady_writes(tmp_path: Path) -> None:
    path = _wal_database(tmp_path)
    checkpointer = Checkpointer(str(path), restart_pages=64, interval=0.05).start()
    stop, written = threading.Event(), [0]
    writer = threading.Thread(target=_writer, args=(path, stop, written))
    writer.start()
    largest = 0
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        wal = path.with_name(path.name + "-wal")
        largest = max(largest, wal.stat().st_size if wal.exists() else 0)
        time.sleep(0.01)
    stop.set()
    writer.join()
    checkpointer.close()
    assert written[0] > 2_000
    assert checkpointer.restarts > 0
    # Without it the log would hold every row written (> 10 MB); restarts keep it near the
    # threshold (64 pages of 4 KiB) plus what the writer adds between rounds.
    log_bytes = written[0] * 2000
    assert largest < log_bytes / 4
    check = sqlite3.connect(path)
    assert check.execute("SELECT count(*) FROM t").fetchone()[0] == written[0]
    check.close()


def test_file_stores_run_one_and_memory_stores_none(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'wk.db'}") as store:
        checkpointer = store._checkpointer
        assert checkpointer is not None
        assert checkpointer._thread.is_alive()
    assert not checkpointer._thread.is_alive()
    with Store.open("sqlite:///:memory:") as memory:
        assert memory._checkpointer is None


def test_without_it_the_log_keeps_everything(tmp_path: Path) -> None:
    """The control: the same load with no checkpointer leaves every row in the log."""
    path = _wal_database(tmp_path)
    stop, written = threading.Event(), [0]
    writer = threading.Thread(target=_writer, args=(path, stop, written))
    writer.start()
    time.sleep(1.0)
    # Measured while the writer is connected: its last close checkpoints and removes the log.
    size, rows = path.with_name(path.name + "-wal").stat().st_size, written[0]
    stop.set()
    writer.join()
    assert rows > 1_000
    assert size >= rows * 2000
