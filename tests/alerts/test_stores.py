"""Every AlertStateStore and SilenceStore implementation behaves the same."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from watchkeeper.alerts import (
    AlertRecord,
    AlertState,
    AlertStateStore,
    InMemoryAlertStateStore,
    InMemorySilenceStore,
    Matcher,
    NotifyLogEntry,
    Silence,
    SilenceStore,
)
from watchkeeper.alerts.sql import SqlAlertStateStore, SqlSilenceStore, alerts_metadata
from watchkeeper.errors import NotFoundError, StoreError


@pytest.fixture(params=["memory", "sqlite"])
def state_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], AlertStateStore]:
    if request.param == "memory":
        shared = InMemoryAlertStateStore()
        return lambda: shared
    return lambda: SqlAlertStateStore(engine=f"sqlite:///{tmp_path / 'a.db'}")


@pytest.fixture(params=["memory", "sqlite"])
def silence_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], SilenceStore]:
    if request.param == "memory":
        shared = InMemorySilenceStore()
        return lambda: shared
    return lambda: SqlSilenceStore(engine=f"sqlite:///{tmp_path / 'a.db'}")


def record(fp: str, state: AlertState = AlertState.FIRING, **changes: object) -> AlertRecord:
    base = AlertRecord(
        fingerprint=fp,
        rule="Drift",
        labels={"alertname": "Drift", "model": "m"},
        annotations={"summary": "ü ✓"},
        state=state,
        active_at=1.5,
        fired_at=2.5,
        last_value=0.25,
    )
    return base.evolve(**changes)


def test_alert_records_survive_reopening(state_store: Callable[[], AlertStateStore]) -> None:
    store = state_store()
    assert isinstance(store, AlertStateStore)
    store.save_alerts([record("a"), record("b", AlertState.PENDING, fired_at=None)])
    store.save_alerts([record("a", keep_firing_since=9.0, last_sent=10.0)])
    store.delete_alerts(["b", "unknown"])
    (loaded,) = state_store().load_alerts()
    assert loaded == record("a", keep_firing_since=9.0, last_sent=10.0)


def test_notify_log_round_trip(state_store: Callable[[], AlertStateStore]) -> None:
    store = state_store()
    entry = NotifyLogEntry(
        group_key='{}:{model="m"}',
        receiver="team",
        firing=frozenset({"a"}),
        resolved=frozenset(),
        notified_at=5.0,
        sequence=3,
        group_labels={"model": "m"},
    )
    store.save_notify_entry(entry)
    store.save_notify_entry(
        NotifyLogEntry(
            group_key="g2",
            receiver="team",
            firing=frozenset(),
            resolved=frozenset({"b"}),
            notified_at=6.0,
        )
    )
    store.delete_notify_entries([("g2", "team")])
    assert state_store().load_notify_log() == [entry]


def test_silence_crud(silence_store: Callable[[], SilenceStore]) -> None:
    store = silence_store()
    silence = Silence(
        matchers=(Matcher.parse('model=~"credit|fraud"'),),
        starts_at=0.0,
        ends_at=3600.0,
        created_by="ana",
        comment="retraining",
    )
    store.add(silence)
    assert silence_store().get(silence.id) == silence
    store.update(silence.expired(10.0))
    assert silence_store().list() == [silence.expired(10.0)]
    store.delete(silence.id)
    assert silence_store().list() == []
    with pytest.raises(NotFoundError, match="no silence with id"):
        store.get(silence.id)
    with pytest.raises(NotFoundError):
        store.update(silence)
    with pytest.raises(NotFoundError):
        store.delete(silence.id)


def test_sql_tables_live_on_their_own_metadata(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    SqlAlertStateStore(engine=engine)
    assert (
        set(sa.inspect(engine).get_table_names())
        == set(alerts_metadata.tables)
        == {"alert_state", "alert_notify_log", "alert_silence", "alert_outbox"}
    )


def test_unwritable_database_raises_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="could not create tables") as caught:
        SqlAlertStateStore(engine=f"sqlite:///{tmp_path / 'missing' / 'dir' / 'a.db'}")
    assert caught.value.backend == "sqlite"
