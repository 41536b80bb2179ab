"""SQLite specifics: connection settings, durability across kill -9, several connections."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from watchkeeper.errors import ConfigError, StoreError, WatchkeeperError
from watchkeeper.store import InsertResult, NewEvent, Store
from watchkeeper.store.writers import SqliteEventWriter


def _pragma(store: Store, name: str) -> object:
    with store._engine.connect() as connection:
        return connection.exec_driver_sql(f"PRAGMA {name}").scalar()


def test_file_store_settings(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'wk.db'}") as store:
        assert _pragma(store, "journal_mode") == "wal"
        assert _pragma(store, "synchronous") == 2  # FULL
        assert _pragma(store, "foreign_keys") == 1
        assert _pragma(store, "busy_timeout") == 30_000
        assert _pragma(store, "page_size") == 16_384
    with Store.open(f"sqlite:///{tmp_path / 'wk.db'}", sqlite_synchronous="NORMAL") as store:
        assert _pragma(store, "synchronous") == 1


def test_parent_directories_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "wk.db"
    with Store.open(str(path)) as store:
        store.ping()
    assert path.exists()


def test_bad_synchronous_setting() -> None:
    with pytest.raises(ConfigError, match="FULL"):
        Store("sqlite://", sqlite_synchronous="OFF")  # type: ignore[arg-type]


def test_unusable_database_path_raises_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as raised:
        Store.open(f"sqlite:///{tmp_path}")  # a directory, not a database file
    assert raised.value.backend == "sqlite"
    assert "writable" in str(raised.value)


def test_committed_events_survive_kill_9(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wk.db'}"
    writer = f"""
import time
from watchkeeper.store import NewEvent, Store
store = Store.open({url!r})
model = store.create_model("m", {{}})
store.insert_events(model.id, [NewEvent(f"e{{i}}", "v1", float(i), {{"x": i}}) for i in range(500)])
print("committed", flush=True)
time.sleep(120)
"""
    process = subprocess.Popen(
        [sys.executable, "-c", writer], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line == b"committed\n", process.stderr.read() if process.stderr else line
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    with Store.open(url) as store:
        model = store.get_model("m")
        assert store.count_events(model.id) == 500
        assert store.events_by_ids(model.id, ["e499"])["e499"].features == {"x": 499}


def test_two_stores_on_one_file_write_concurrently(tmp_path: Path) -> None:
    # Two Store objects share no Python lock, like two processes: only SQLite's locking
    # (BEGIN IMMEDIATE + busy_timeout) keeps them apart.
    url = f"sqlite:///{tmp_path / 'wk.db'}"
    with Store.open(url) as first, Store.open(url) as second:
        model_id = first.create_model("m", {}).id
        inserted: list[str] = []
        errors: list[BaseException] = []

        def write(store: Store, prefix: str) -> None:
            try:
                for batch in range(20):
                    events = [
                        NewEvent(f"{prefix}{batch}-{i}", "v1", float(i), {"x": i})
                        for i in range(25)
                    ]
                    events.append(NewEvent("shared", "v1", 0.0, {"x": 0}))
                    inserted.extend(store.insert_events(model_id, events).inserted_ids)
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=write, args=(first, "a")),
            threading.Thread(target=write, args=(second, "b")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(inserted) == len(set(inserted)) == 2 * 20 * 25 + 1
        assert second.count_events(model_id) == len(inserted)


def test_json_columns_keep_their_types_despite_numeric_affinity(tmp_path: Path) -> None:
    # A column declared JSON has NUMERIC affinity in SQLite: text like "1.0" would come back
    # as the integer 1 unless the store binds JSON as bytes.
    with Store.open(f"sqlite:///{tmp_path / 'wk.db'}") as store:
        model_id = store.create_model("m", {}).id
        store.insert_events(model_id, [NewEvent("a", "v1", 0.0, {"x": 1.0}, prediction=1.0)])
        got = store.events_by_ids(model_id, ["a"])["a"]
        assert type(got.prediction) is float
        with store._engine.connect() as connection:
            stored = connection.execute(sa.text("SELECT typeof(prediction) FROM events")).scalar()
        assert stored == "blob"


def test_queued_batches_commit_together_and_fail_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The write lock is held while three callers arrive: the first writes alone, the two that
    # queued behind it share one transaction; that one fails (unknown model), so each of them
    # is written alone and only the bad batch's caller sees the error.
    with Store.open(f"sqlite:///{tmp_path / 'wk.db'}") as store:
        model_id = store.create_model("m", {}).id
        groups: list[int] = []
        writer = store._event_writer
        assert isinstance(writer, SqliteEventWriter)
        write_batches = writer._write_batches

        def counted(operation: str, group: list[Any]) -> None:
            groups.append(len(group))
            write_batches(operation, group)

        monkeypatch.setattr(writer, "_write_batches", counted)
        results: dict[str, object] = {}

        def insert(name: str, target: int, ids: range) -> None:
            events = [NewEvent(f"e{i}", "v1", float(i), {"x": i}) for i in ids]
            try:
                results[name] = store.insert_events(target, events)
            except WatchkeeperError as error:
                results[name] = error

        lock = store._write_lock
        assert lock is not None
        threads = [
            threading.Thread(target=insert, args=("first", model_id, range(10))),
            threading.Thread(target=insert, args=("overlap", model_id, range(5, 15))),
            threading.Thread(target=insert, args=("unknown", model_id + 99, range(20, 25))),
        ]
        with lock:
            for count, thread in enumerate(threads, start=1):
                thread.start()
                while len(writer._insert_queue) < count:
                    time.sleep(0.001)
        for thread in threads:
            thread.join()
        assert groups == [1, 2, 1, 1]
        first, overlap = results["first"], results["overlap"]
        assert isinstance(first, InsertResult)
        assert isinstance(overlap, InsertResult)
        assert first.inserted_ids == tuple(f"e{i}" for i in range(10))
        assert overlap.inserted_ids == tuple(f"e{i}" for i in range(10, 15))
        assert overlap.duplicate_ids == tuple(f"e{i}" for i in range(5, 10))
        assert isinstance(results["unknown"], WatchkeeperError)
        assert store.count_events(model_id) == 15
        assert [v.version for v in store.list_versions(model_id)] == ["v1"]
