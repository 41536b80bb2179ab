"""Every AlertStateStore and SilenceStore implementation behaves the same."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.alerts._databases import SQL_BACKENDS
from tests.store.backends import backend_url
from tests.store.test_migrations import HEAD
from watchkeeper.alerts import AlertRecord, AlertStateStore, Matcher, Silence, SilenceStore
from watchkeeper.alerts.model import AlertState
from watchkeeper.alerts.state import InMemoryAlertStateStore, InMemorySilenceStore, NotifyLogEntry
from watchkeeper.errors import NotFoundError, StoreError
from watchkeeper.store import Store
from watchkeeper.store.alerts import SqlAlertStateStore, SqlRuleStore, SqlSilenceStore
from watchkeeper.store.outbox import SqlOutbox
from watchkeeper.store.tables import ALERT_TABLES


@pytest.fixture(params=["memory", *SQL_BACKENDS])
def state_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], AlertStateStore]]:
    if request.param == "memory":
        shared = InMemoryAlertStateStore()
        yield lambda: shared
        return
    opened: list[SqlAlertStateStore] = []
    with backend_url(request.param, tmp_path) as url:

        def reopen() -> AlertStateStore:
            opened.append(SqlAlertStateStore(engine=url))
            return opened[-1]

        yield reopen
        for store in opened:
            store.close()


@pytest.fixture(params=["memory", *SQL_BACKENDS])
def silence_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], SilenceStore]]:
    if request.param == "memory":
        shared = InMemorySilenceStore()
        yield lambda: shared
        return
    opened: list[SqlSilenceStore] = []
    with backend_url(request.param, tmp_path) as url:

        def reopen() -> SilenceStore:
            opened.append(SqlSilenceStore(engine=url))
            return opened[-1]

        yield reopen
        for store in opened:
            store.close()


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


def test_state_values_round_trip_exactly(sql_url: str) -> None:
    store = SqlAlertStateStore(engine=sql_url)
    awkward = record(
        "c",
        labels={"alertname": "Drift", "model": "m", "quote": 'it\'s "odd"', "empty": ""},
        annotations={"summary": "ü ✓ \u2603", "long": "x" * 5000},
        active_at=1_700_000_000.123456789,
        last_value=-1e-300,
        last_sent=None,
    )
    store.save_alerts([awkward, awkward.evolve(state=AlertState.RESOLVED, resolved_at=3.25)])
    (loaded,) = store.load_alerts()
    assert loaded == awkward.evolve(state=AlertState.RESOLVED, resolved_at=3.25)
    store.close()


def test_a_bare_engine_is_migrated_to_the_store_schema(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    SqlAlertStateStore(engine=engine).save_alerts([record("a")])
    names = {table.name for table in ALERT_TABLES}
    assert names == {
        "alert_state",
        "alert_notify_log",
        "alert_silence",
        "alert_outbox",
        "alert_rule",
        "alert_history",
    }
    assert names < set(sa.inspect(engine).get_table_names())
    engine.dispose()
    # The migration, not create_all, made the tables: the store sees a database at the head.
    with Store.open(f"sqlite:///{tmp_path / 'x.db'}") as store:
        assert store.schema_revision() == HEAD
    assert [loaded.fingerprint for loaded in SqlAlertStateStore(engine=engine).load_alerts()] == [
        "a"
    ]


def test_an_in_memory_engine_is_migrated_in_place() -> None:
    store = SqlSilenceStore(engine="sqlite://")
    assert store.list() == []
    store.close()


def test_unwritable_database_raises_store_error(tmp_path: Path) -> None:
    with pytest.raises(
        StoreError, match="failed during migrate schema: unable to open database file"
    ) as caught:
        SqlAlertStateStore(engine=f"sqlite:///{tmp_path}")  # a directory, not a database file
    assert caught.value.backend == "sqlite"


_SQL_WORDS = ("SELECT", "INSERT", "UPDATE", "DELETE", "FROM", "[SQL", "[parameters")


def _assert_no_sql(message: str) -> None:
    assert not [word for word in _SQL_WORDS if word in message], message


@pytest.mark.parametrize("backend", SQL_BACKENDS)
@pytest.mark.parametrize(
    ("table", "call", "operation"),
    [
        ("alert_state", lambda url: SqlAlertStateStore(engine=url).load_alerts(), "load alerts"),
        (
            "alert_silence",
            lambda url: SqlSilenceStore(engine=url).get("missing"),
            "read a silence",
        ),
        (
            "alert_outbox",
            lambda url: SqlOutbox(engine=url).claim(0.0, limit=5, lease=30.0),
            "claim notifications",
        ),
        ("alert_rule", lambda url: SqlRuleStore(engine=url).load_rules(), "load rules"),
        ("alert_history", lambda url: SqlRuleStore(engine=url).history(10), "read alert history"),
    ],
)
def test_a_failing_query_is_a_store_error_without_sql_text(
    backend: str, table: str, call: Callable[[str], object], operation: str, tmp_path: Path
) -> None:
    with backend_url(backend, tmp_path) as url:
        with Store.open(url) as store, store.engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE {table}"))
        with pytest.raises(StoreError) as caught:
            call(url)
    message = str(caught.value)
    assert f"{backend.split('-')[0]} store at " in message
    assert f"failed during {operation}: " in message
    assert table in message  # the driver's reason ("no such table: …") is kept
    _assert_no_sql(message)
    assert caught.value.backend == backend.split("-")[0]


def test_a_closed_alert_store_is_a_store_error(tmp_path: Path) -> None:
    store = SqlSilenceStore(engine=f"sqlite:///{tmp_path / 'wk.db'}")
    store.close()
    with pytest.raises(StoreError, match="list silences: this alert store is closed") as caught:
        store.list()
    _assert_no_sql(str(caught.value))
