"""The WAL checkpointer thread keeps the log short under a steady write load, off the commits;
checkpoints of open windows and the rows stored after them (``seq``), on every backend."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store.backends import backend_url
from watchkeeper.store import NewEvent, Store
from watchkeeper.store.checkpoint import Checkpointer
from watchkeeper.store.records import CheckpointWindow, NewFeedback, NewLabel


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


@pytest.fixture(params=["sqlite-file", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with backend_url(request.param, tmp_path) as url, Store.open(url) as opened:
        yield opened


def _events(prefix: str, count: int) -> list[NewEvent]:
    return [NewEvent(f"{prefix}{n}", "v1", 1_700_000_000.0 + n, {"x": n}) for n in range(count)]


def test_rows_after_a_call_number_come_back_whole_calls_at_a_time(store: Store) -> None:
    one = store.create_model("one", {"name": "one"}).id
    two = store.create_model("two", {"name": "two"}).id
    encode = store.event_codec.encode_events
    store.insert_encoded(one, encode(_events("a", 7)), seq=1)
    store.insert_encoded(two, encode(_events("b", 3)), seq=2)
    store.insert_encoded(one, encode(_events("c", 12)), seq=3)  # more than a batch
    store.insert_encoded(one, encode(_events("a", 2)), seq=4)  # duplicates only
    store.insert_labels(one, [NewLabel("a1", "1", 1.0)], seq=5)
    store.insert_feedback(two, [NewFeedback("b0", "u", 4, 1.0)], seq=6)
    assert store.last_seq() == 6
    assert store.count_events_after(1) == 15

    batches = list(store.iter_events_after(1, batch_size=5))
    assert [{e.seq for e in batch} for batch in batches] == [{2}, {3}]
    assert [len(batch) for batch in batches] == [3, 12]
    assert {batch[0].model_id for batch in batches} == {one, two}
    assert {e.event_id for e in batches[1]} == {f"c{n}" for n in range(12)}
    assert [label.event_id for label in store.labels_after(4)] == ["a1"]
    assert store.labels_after(5) == []
    assert [(f.event_id, f.seq) for f in store.feedback_after(0)] == [("b0", 6)]


def test_a_checkpoint_is_replaced_in_one_transaction(store: Store) -> None:
    assert store.checkpoint() is None
    kept = store.create_model("kept", {"name": "kept"}).id
    gone = store.create_model("gone", {"name": "gone"}).id

    def window(model_id: int, start: float) -> CheckpointWindow:
        return CheckpointWindow(model_id, "v1", "", 3600, start, b"profile", 5)

    store.put_checkpoint(3, [window(kept, 0.0), window(gone, 0.0)], taken_at=10.0)
    store.delete_model("gone")
    first = store.checkpoint()
    assert first is not None
    assert (first.seq, first.taken_at, first.windows) == (3, 10.0, (window(kept, 0.0),))
    # A model deleted while a checkpoint was being written is left out of it.
    store.put_checkpoint(9, [window(kept, 3600.0), window(gone, 3600.0)], taken_at=20.0)
    second = store.checkpoint()
    assert second is not None
    assert (second.seq, second.windows) == (9, (window(kept, 3600.0),))
    assert store.last_seq() == 9
