"""The store contract: SQLite file, SQLite in memory and PostgreSQL behave the same."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest

from tests.store.backends import BACKENDS, backend_url, open_store
from watchkeeper.errors import ConfigError, ConflictError, IngestError, NotFoundError, StoreError
from watchkeeper.ingest.decode import JSON, DecodeJob, decode_body
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor.windows import ColumnPlan
from watchkeeper.schema import ColumnKind
from watchkeeper.store import NewEvent, Store
from watchkeeper.store.codec import codec_for
from watchkeeper.store.records import (
    ENCODED_EVENT_VALUES,
    Conflict,
    EventRecord,
    NewFeedback,
    NewLabel,
    NewOutcome,
)

T0 = 1_700_000_000.0
CONFIG = {
    "name": "churn",
    "task": "classification",
    "features": {"age": "numeric", "plan": "categorical"},
    "prediction": "churned",
    "proba": {"yes": "p_yes", "no": "p_no"},
    "target_kind": "boolean",
    "windows": [3600, 86400],
    "segments": ["region"],
    "retention_days": 30,
    "profile_retention_days": 400,
}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, tmp_path: Path) -> Iterator[Store]:
    with open_store(backend, tmp_path) as opened:
        yield opened


@pytest.fixture
def model_id(store: Store) -> int:
    return store.create_model("churn", CONFIG).id


def event(event_id: str, ts: float = T0, **overrides: object) -> NewEvent:
    fields: dict[str, object] = {
        "event_id": event_id,
        "version": "v1",
        "ts": ts,
        "features": {"age": 41.5, "plan": "pro"},
    }
    fields.update(overrides)
    return NewEvent(**fields)  # type: ignore[arg-type]


# ---------------------------------------------------------------- lifecycle and migrations


def _head_revision() -> str:
    """The newest revision of the migration scripts, so the test follows new migrations."""
    from alembic.script import ScriptDirectory

    from watchkeeper.store.store import MIGRATIONS_DIR

    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert head is not None
    return head


def test_open_twice_is_idempotent(backend: str, tmp_path: Path) -> None:
    head = _head_revision()
    with backend_url(backend, tmp_path) as url, Store.open(url) as first:
        first.create_model("churn", CONFIG)
        first.upgrade()
        assert first.schema_revision() == head
        if backend != "sqlite-memory":
            with Store.open(url) as second:
                assert second.schema_revision() == head
                assert [m.name for m in second.list_models()] == ["churn"]
        assert [m.name for m in first.list_models()] == ["churn"]


def test_backend_name_and_ping(store: Store, backend: str) -> None:
    assert store.backend == backend.split("-")[0]
    store.ping()


def test_closed_store_raises_store_error(backend: str, tmp_path: Path) -> None:
    with open_store(backend, tmp_path) as store:
        store.close()
        with pytest.raises(StoreError, match="closed") as raised:
            store.list_models()
        assert raised.value.backend == store.backend


# ---------------------------------------------------------------- models, versions, reference


def test_model_lifecycle(store: Store) -> None:
    created = store.create_model("churn", CONFIG)
    assert created.config == CONFIG
    assert store.get_model("churn") == created
    assert store.model_by_id(created.id) == created
    store.create_model("aardvark", {"name": "aardvark", "task": "regression"})
    assert [m.name for m in store.list_models()] == ["aardvark", "churn"]

    updated = store.update_model_config("churn", {**CONFIG, "retention_days": 7})
    assert updated.config["retention_days"] == 7
    assert updated.created_at == created.created_at
    assert updated.updated_at >= created.updated_at
    assert store.get_model("churn").config["retention_days"] == 7

    store.delete_model("churn")
    assert [m.name for m in store.list_models()] == ["aardvark"]


def test_model_errors(store: Store) -> None:
    store.create_model("churn", CONFIG)
    with pytest.raises(ConflictError, match="already exists"):
        store.create_model("churn", CONFIG)
    with pytest.raises(NotFoundError) as missing:
        store.get_model("nope")
    assert (missing.value.kind, missing.value.name) == ("model", "nope")
    with pytest.raises(NotFoundError):
        store.model_by_id(10_000)
    with pytest.raises(NotFoundError):
        store.update_model_config("nope", CONFIG)
    with pytest.raises(NotFoundError):
        store.delete_model("nope")


def test_delete_model_cascades(store: Store, model_id: int) -> None:
    store.insert_events(model_id, [event("a"), event("b")])
    store.insert_labels(model_id, [NewLabel("a", True, T0)])
    store.insert_feedback(model_id, [NewFeedback("a", "u1", 4, T0)])
    store.put_reference_profile(model_id, b"ref", rows=10)
    store.upsert_window(
        model_id,
        version="v1",
        segment="",
        window_seconds=3600,
        window_start=T0,
        profile=b"w",
        event_count=2,
        closed=False,
    )
    store.delete_model("churn")
    assert store.count_events(model_id) == 0
    assert store.labels_for(model_id, ["a"]) == {}
    assert store.feedback_between(model_id, 0, 2 * T0) == []
    assert store.open_windows(model_id) == []
    assert store.list_versions(model_id) == []
    with pytest.raises(NotFoundError):
        store.get_reference_profile(model_id)


def test_versions(store: Store, model_id: int) -> None:
    first = store.upsert_version(model_id, "v1", metadata={"sha256": "abc"})
    again = store.upsert_version(model_id, "v1")
    assert again == first
    replaced = store.upsert_version(model_id, "v1", metadata={"sha256": "def"})
    assert replaced.metadata == {"sha256": "def"}
    assert replaced.created_at == first.created_at
    store.insert_events(model_id, [event("a", version="v2"), event("b", version="v1")])
    assert [v.version for v in store.list_versions(model_id)] == ["v1", "v2"]
    assert store.list_versions(model_id)[0].metadata == {"sha256": "def"}


def test_reference_profile(store: Store, model_id: int) -> None:
    with pytest.raises(NotFoundError):
        store.get_reference_profile(model_id)
    store.put_reference_profile(model_id, b"\x00first", rows=100)
    replaced = store.put_reference_profile(model_id, b"\x00\xffsecond", rows=250)
    stored = store.get_reference_profile(model_id)
    assert stored == replaced
    assert (stored.profile, stored.rows) == (b"\x00\xffsecond", 250)


# ---------------------------------------------------------------- events


def test_event_round_trip(store: Store, model_id: int) -> None:
    sent = NewEvent(
        event_id="e-1",
        version="v3",
        ts=T0 + 0.125,
        features={"age": 41.5, "plan": "prö", "tags": ["a", None], "n": np.float64(2.5)},
        prediction="yes",
        proba={"yes": 0.75, "no": 0.25},
        latency_ms=12.5,
        error=True,
        segment="region=eu",
        unit="user-7",
        arm="canary",
    )
    bare = NewEvent("e-2", "v3", T0, {"age": None})
    assert store.insert_events(model_id, [sent, bare]).inserted_ids == ("e-1", "e-2")
    stored = store.events_by_ids(model_id, ["e-1", "e-2", "unknown"])
    assert set(stored) == {"e-1", "e-2"}
    got = stored["e-1"]
    assert isinstance(got, EventRecord)
    assert (got.model_id, got.event_id, got.version, got.ts) == (model_id, "e-1", "v3", T0 + 0.125)
    assert got.features == {"age": 41.5, "plan": "prö", "tags": ["a", None], "n": 2.5}
    assert (got.prediction, got.proba) == ("yes", {"yes": 0.75, "no": 0.25})
    assert (got.latency_ms, got.error, got.segment) == (12.5, True, "region=eu")
    assert (got.unit, got.arm) == ("user-7", "canary")
    assert got.ingested_at > T0
    empty = stored["e-2"]
    assert (empty.prediction, empty.proba, empty.latency_ms, empty.error) == (
        None,
        None,
        None,
        False,
    )
    assert empty.segment == ""
    assert (empty.unit, empty.arm) == (None, None)
    # The replay after a checkpoint reads them too.
    replayed = {event.event_id: event for batch in store.iter_events_after(-1) for event in batch}
    assert (replayed["e-1"].unit, replayed["e-1"].arm) == ("user-7", "canary")
    assert (replayed["e-2"].unit, replayed["e-2"].arm) == (None, None)


def test_event_values_round_trip_exactly(store: Store, model_id: int) -> None:
    """Doubles come back bit for bit, and text that looks like a number or null stays text."""
    rng = np.random.default_rng(11)
    instants = (T0 + rng.uniform(0, 86_400, 300)).tolist()
    tiny_and_huge = (rng.normal(size=300) * 10.0 ** rng.integers(-300, 300, 300)).tolist()
    latencies = rng.gamma(2.0, 3.0, 300).tolist()
    sent = [
        NewEvent(
            f"{index:05d}",
            "1.0",
            instants[index],
            {"x": tiny_and_huge[index], "code": "007", "word": "null"},
            prediction=[1.0, 1, "1.0", "null", True][index % 5],
            latency_ms=latencies[index],
        )
        for index in range(300)
    ]
    assert len(store.insert_events(model_id, sent).inserted_ids) == 300
    stored = store.events_by_ids(model_id, [e.event_id for e in sent])
    for original in sent:
        got = stored[original.event_id]
        assert (got.ts, got.latency_ms, got.version) == (
            original.ts,
            original.latency_ms,
            original.version,
        )
        assert got.features == original.features
        assert type(got.features["x"]) is float
        assert got.prediction == original.prediction
        assert type(got.prediction) is type(original.prediction)


def test_insert_events_is_idempotent(store: Store, model_id: int) -> None:
    first = store.insert_events(model_id, [event("a"), event("b"), event("a", ts=T0 + 9)])
    assert first.inserted_ids == ("a", "b")
    assert first.duplicate_ids == ("a",)
    second = store.insert_events(model_id, [event("c"), event("b", ts=T0 + 5), event("c")])
    assert second.inserted_ids == ("c",)
    assert second.duplicate_ids == ("b", "c")
    assert store.count_events(model_id) == 3
    # The first copy wins: the later, different copies of "a" and "b" were dropped.
    assert {e.event_id: e.ts for e in store.events_by_ids(model_id, ["a", "b"]).values()} == {
        "a": T0,
        "b": T0,
    }
    assert store.insert_events(model_id, []).inserted_ids == ()


def test_same_event_id_in_two_models(store: Store, model_id: int) -> None:
    other = store.create_model("other", {"name": "other", "task": "regression"}).id
    assert store.insert_events(model_id, [event("a")]).inserted_ids == ("a",)
    assert store.insert_events(other, [event("a")]).inserted_ids == ("a",)


def test_insert_events_for_unknown_model(store: Store) -> None:
    with pytest.raises(NotFoundError, match="register it first"):
        store.insert_events(4242, [event("a")])


def test_concurrent_inserts_from_two_threads(store: Store, model_id: int) -> None:
    # Both threads send the same batches at the same time, one in reverse order inside each
    # batch: every id is claimed by exactly one of them, and neither deadlocks nor fails.
    ids = [f"id-{i:05d}" for i in range(6000)]
    batches = [ids[offset : offset + 1500] for offset in range(0, len(ids), 1500)]
    results: list[tuple[str, ...]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def worker(reverse: bool) -> None:
        try:
            start.wait()
            for batch in batches:
                order = batch[::-1] if reverse else batch
                events = [event(i, ts=T0 + int(i[3:])) for i in order]
                results.append(store.insert_events(model_id, events).inserted_ids)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(reverse,)) for reverse in (False, True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    inserted = [event_id for batch in results for event_id in batch]
    assert sorted(inserted) == ids
    assert store.count_events(model_id) == len(ids)


def test_events_between_orders_and_chunks(store: Store, model_id: int) -> None:
    rng = np.random.default_rng(7)
    stamps = T0 + rng.integers(0, 20, size=60).astype(float)
    sent = [
        event(f"e{i:02d}", ts=float(ts), version=f"v{i % 2}", segment="region=eu" if i % 3 else "")
        for i, ts in enumerate(stamps)
    ]
    store.insert_events(model_id, list(reversed(sent)))
    expected = sorted(
        ((e.ts, e.event_id) for e in sent if T0 + 2 <= e.ts < T0 + 15),
    )
    got = [(e.ts, e.event_id) for e in store.events_between(model_id, T0 + 2, T0 + 15)]
    assert got == expected
    batches = list(store.iter_event_batches(model_id, T0 + 2, T0 + 15, batch_size=7))
    assert [(e.ts, e.event_id) for batch in batches for e in batch] == expected
    assert all(len(batch) == 7 for batch in batches[:-1])
    v1 = [e.event_id for e in store.events_between(model_id, T0, T0 + 20, version="v1")]
    assert sorted(v1) == sorted(e.event_id for e in sent if e.version == "v1")
    eu = store.count_events(model_id, segment="region=eu", version="v0")
    assert eu == sum(1 for e in sent if e.segment == "region=eu" and e.version == "v0")
    assert store.count_events(model_id, start=T0 + 2, end=T0 + 15) == len(expected)
    assert list(store.events_between(model_id, T0 + 100, T0 + 200)) == []


def test_retention_deletes_old_raw_rows(store: Store, model_id: int) -> None:
    store.insert_events(model_id, [event(f"e{i}", ts=T0 + i) for i in range(10)])
    store.insert_labels(model_id, [NewLabel(f"e{i}", i % 2, T0 + i) for i in range(10)])
    store.insert_feedback(model_id, [NewFeedback(f"e{i}", "u", 5, T0 + i) for i in range(4)])
    purged = store.delete_events_before(model_id, T0 + 3)
    assert (purged.events, purged.labels, purged.feedback) == (3, 3, 3)
    assert [e.event_id for e in store.events_between(model_id, 0, 2 * T0)][:2] == ["e3", "e4"]
    assert store.count_events(model_id) == 7
    assert sorted(store.labels_for(model_id, [f"e{i}" for i in range(10)])) == [
        f"e{i}" for i in range(3, 10)
    ]
    assert store.delete_events_before(model_id, T0 + 3).events == 0


# ---------------------------------------------------------------- labels and feedback


def test_labels_may_arrive_before_events(store: Store, model_id: int) -> None:
    store.insert_events(model_id, [event("a")])
    result = store.insert_labels(
        model_id, [NewLabel("a", "yes", T0 + 1), NewLabel("later", "no", T0 + 2)]
    )
    assert result.inserted_ids == ("a", "later")
    assert result.unmatched_ids == ("later",)
    store.insert_events(model_id, [event("later")])
    again = store.insert_labels(
        model_id, [NewLabel("later", "no", T0 + 3), NewLabel("new", 1, T0), NewLabel("new", 1, T0)]
    )
    assert (again.inserted_ids, again.duplicate_ids) == (("new",), ("later", "new"))
    assert again.unmatched_ids == ("new",)
    assert again.conflicts == ()
    labels = store.labels_for(model_id, ["a", "later", "new", "missing"])
    # The first label of an id wins.
    assert {k: v.label for k, v in labels.items()} == {"a": "yes", "later": "no", "new": 1}
    assert labels["a"].ts == T0 + 1
    received = store.labels_received_between(model_id, 0, labels["a"].received_at + 60)
    assert sorted(label.event_id for label in received) == ["a", "later", "new"]
    assert store.labels_received_between(model_id, 0, T0) == []
    assert store.insert_labels(model_id, []).inserted_ids == ()


def test_a_different_label_for_a_labelled_id_is_a_conflict_and_the_first_is_kept(
    store: Store, model_id: int
) -> None:
    store.insert_events(model_id, [event("a"), event("b")])
    store.insert_labels(model_id, [NewLabel("a", "yes", T0)])
    result = store.insert_labels(
        model_id,
        [
            NewLabel("a", "yes", T0 + 5),  # a retry: the same label, another timestamp
            NewLabel("a", "no", T0 + 6),
            NewLabel("b", 1.0, T0),
            NewLabel("b", 1.0, T0),
            NewLabel("b", 0.0, T0),
        ],
    )
    assert result.inserted_ids == ("b",)
    assert result.duplicate_ids == ("a", "b")
    assert result.conflicts == (Conflict(1, "a", "yes"), Conflict(4, "b", 1.0))
    labels = store.labels_for(model_id, ["a", "b"])
    assert {k: (v.label, v.ts) for k, v in labels.items()} == {"a": ("yes", T0), "b": (1.0, T0)}


def test_feedback(store: Store, model_id: int) -> None:
    result = store.insert_feedback(
        model_id,
        [
            NewFeedback("a", "u1", 5, T0 + 2, "great"),
            NewFeedback("a", "u2", 1, T0 + 1),
            NewFeedback("a", "u1", 3, T0 + 3),
        ],
    )
    assert (result.inserted_ids, result.duplicate_ids) == (("a", "a"), ())
    assert result.conflicts == (Conflict(2, "a", 5),)
    assert result.stored_positions == (0, 1)
    again = store.insert_feedback(
        model_id,
        [
            NewFeedback("a", "u2", 2, T0),
            NewFeedback("a", "u3", 4, T0),
            NewFeedback("a", "u1", 5, T0 + 9, "great"),  # a retry
            NewFeedback("a", "u1", 5, T0 + 9, "changed my mind"),
        ],
    )
    assert (again.duplicate_ids, again.stored_positions) == (("a",), (1,))
    assert again.conflicts == (Conflict(0, "a", 1), Conflict(3, "a", 5))
    got = store.feedback_between(model_id, T0, T0 + 10)
    assert [(f.user_id, f.rating, f.comment) for f in got] == [
        ("u3", 4, None),
        ("u2", 1, None),
        ("u1", 5, "great"),
    ]
    with pytest.raises(IngestError) as bad:
        store.insert_feedback(
            model_id, [NewFeedback("b", "u1", 4, T0), NewFeedback("b", "u", 6, T0)]
        )
    assert (bad.value.index, bad.value.field) == (1, "rating")
    assert store.insert_feedback(model_id, []).inserted_ids == ()


# ---------------------------------------------------------------- window profiles


def test_outcomes_are_kept_once_per_event_and_name(store: Store, model_id: int) -> None:
    store.insert_events(model_id, [event(f"e{i}", ts=T0 + i) for i in range(4)])
    first = store.insert_outcomes(
        model_id,
        [
            NewOutcome("e0", "click", 1.0, T0),
            NewOutcome("e0", "revenue", 12.5, T0 + 1),
            NewOutcome("e0", "click", 1.0, T0),
            NewOutcome("e1", "click", 0.0, T0 + 2),
        ],
        seq=7,
    )
    assert first.inserted_ids == ("e0", "e0", "e1")
    assert (first.duplicate_ids, first.stored_positions, first.conflicts) == (
        ("e0",),
        (0, 1, 3),
        (),
    )
    again = store.insert_outcomes(
        model_id, [NewOutcome("e1", "click", 0.0, T0 + 9), NewOutcome("e0", "click", 0.0, T0)]
    )
    assert (again.inserted_ids, again.duplicate_ids) == ((), ("e1",))
    assert again.conflicts == (Conflict(1, "e0", 1.0),)
    stored = store.outcomes_for(model_id, ["e0", "e1", "e2"])
    assert [(o.event_id, o.name, o.value, o.ts, o.seq) for o in stored] == [
        ("e0", "click", 1.0, T0, 7),
        ("e0", "revenue", 12.5, T0 + 1, 7),
        ("e1", "click", 0.0, T0 + 2, 7),
    ]
    assert [o.event_id for o in store.outcomes_after(6)] == ["e0", "e0", "e1"]
    assert store.outcomes_after(7) == []
    with pytest.raises(IngestError) as caught:
        store.insert_outcomes(model_id, [NewOutcome("e2", "revenue", float("nan"), T0)])
    assert caught.value.field == "value"
    purged = store.delete_events_before(model_id, T0 + 1)
    assert purged.outcomes == 1
    assert [o.name for o in store.outcomes_for(model_id, ["e0"])] == ["revenue"]
    store.delete_model("churn")
    assert store.outcomes_for(model_id, ["e0", "e1"]) == []


def test_latest_predictions_of_units(store: Store, model_id: int) -> None:
    store.insert_events(
        model_id,
        [
            event("a", ts=T0, unit="u1"),
            event("b", ts=T0 + 10, unit="u1"),
            event("c", ts=T0 + 10, unit="u1"),
            event("d", ts=T0 + 5, unit="u2"),
            event("e", ts=T0 + 1),
        ],
    )
    found = store.latest_predictions(
        model_id, [("u1", T0 + 5), ("u1", T0 + 10), ("u1", T0 - 1), ("u2", T0 + 99), ("x", T0)]
    )
    assert found == {("u1", T0 + 5): "a", ("u1", T0 + 10): "c", ("u2", T0 + 99): "d"}


def test_window_upsert_semantics(store: Store, model_id: int) -> None:
    def upsert(start: float, *, version: str = "v1", segment: str = "", **kw: object) -> None:
        fields: dict[str, object] = {"profile": b"p", "event_count": 1, "closed": False}
        fields.update(kw)
        store.upsert_window(
            model_id,
            version=version,
            segment=segment,
            window_seconds=3600,
            window_start=start,
            **fields,  # type: ignore[arg-type]
        )

    upsert(T0)
    upsert(T0, profile=b"merged", event_count=5, closed=True)
    upsert(T0 + 3600)
    upsert(T0 + 3600, version="v2", segment="region=eu", event_count=9)
    upsert(T0 + 7200)
    store.upsert_window(
        model_id,
        version="v1",
        segment="",
        window_seconds=86400,
        window_start=T0,
        profile=b"day",
        event_count=3,
        closed=False,
    )
    hourly = store.windows(model_id, window_seconds=3600, start=T0, end=T0 + 7200)
    assert [(w.window_start, w.version, w.event_count) for w in hourly] == [
        (T0, "v1", 5),
        (T0 + 3600, "v1", 1),
        (T0 + 3600, "v2", 9),
    ]
    assert (hourly[0].profile, hourly[0].closed) == (b"merged", True)
    eu = store.windows(model_id, window_seconds=3600, start=0, end=2 * T0, segment="region=eu")
    assert [w.version for w in eu] == ["v2"]
    assert len(store.windows(model_id, window_seconds=3600, start=0, end=2 * T0, version="v1")) == 3
    assert [(w.window_seconds, w.window_start) for w in store.open_windows(model_id)] == [
        (3600, T0 + 3600),
        (3600, T0 + 3600),
        (3600, T0 + 7200),
        (86400, T0),
    ]
    assert len(store.open_windows()) == 4
    inf = float("inf")
    starts = store.window_starts(model_id, window_seconds=3600, start=-inf, end=inf, limit=10)
    assert starts == [T0, T0 + 3600, T0 + 7200]  # distinct, in order, unbounded
    assert store.window_starts(
        model_id, window_seconds=3600, start=T0 + 1, end=inf, version="v2", limit=10
    ) == [T0 + 3600]
    assert store.window_starts(model_id, window_seconds=3600, start=-inf, end=inf, limit=2) == [
        T0,
        T0 + 3600,
    ]
    # Calendar windows are stored under a negative id per unit, apart from fixed lengths.
    store.upsert_window(
        model_id,
        version="v1",
        segment="",
        window_seconds=-31,
        window_start=T0 - 5,
        profile=b"month",
        event_count=2,
        closed=False,
    )
    monthly = store.windows(model_id, window_seconds=-31, start=-inf, end=inf)
    assert [(w.window_seconds, w.window_start, w.profile) for w in monthly] == [
        (-31, T0 - 5, b"month")
    ]
    # Per (version, closed): the events of one length's windows and the latest start.
    assert store.version_window_totals(model_id, window_seconds=3600) == {
        ("v1", True): (5, T0),
        ("v1", False): (2, T0 + 7200),
        ("v2", False): (9, T0 + 3600),
    }
    assert store.version_window_totals(model_id, window_seconds=60) == {}
    assert store.delete_windows_before(model_id, T0 + 3600) == 3
    assert store.windows(model_id, window_seconds=3600, start=0, end=T0 + 1) == []


# ---------------------------------------------------------------- API tokens


def test_token_lifecycle(store: Store) -> None:
    created = store.create_token("ci", token_hash="h1", scopes=["ingest", "read"])
    assert (created.scopes, created.active, created.last_used_at) == (
        ("ingest", "read"),
        True,
        None,
    )
    with pytest.raises(ConflictError):
        store.create_token("ci", token_hash="h2", scopes=["read"])
    with pytest.raises(ConflictError):
        store.create_token("other", token_hash="h1", scopes=["read"])
    assert store.token_by_hash("h1") == created
    assert store.token_by_hash("nope") is None

    store.touch_token(created.id, at=T0)
    assert store.token_by_hash("h1").last_used_at == T0  # type: ignore[union-attr]

    revoked = store.revoke_token("ci")
    assert not revoked.active
    assert store.revoke_token("ci").revoked_at == revoked.revoked_at
    assert store.token_by_hash("h1") == revoked
    store.create_token("admin", token_hash="h3", scopes=["admin"])
    assert [(tok.name, tok.active) for tok in store.list_tokens()] == [
        ("admin", True),
        ("ci", False),
    ]
    with pytest.raises(NotFoundError):
        store.revoke_token("nope")


def test_json_values_keep_their_types(store: Store, model_id: int) -> None:
    big = 2**53 + 1  # not representable as a double: must not pass through a float
    store.insert_events(
        model_id, [event("a", features={"x": 1.0, "n": big, "s": "1.0"}, prediction=1.0)]
    )
    store.insert_labels(model_id, [NewLabel("a", 1.0, T0), NewLabel("b", big, T0)])
    got = store.events_by_ids(model_id, ["a"])["a"]
    assert type(got.prediction) is float
    assert got.features == {"x": 1.0, "n": big, "s": "1.0"}
    assert type(got.features["x"]) is float
    labels = store.labels_for(model_id, ["a", "b"])
    assert type(labels["a"].label) is float
    assert labels["b"].label == big


def test_unserialisable_values_are_rejected_with_their_field(store: Store, model_id: int) -> None:
    with pytest.raises(IngestError) as raised:
        store.insert_events(model_id, [event("ok"), event("bad", proba={"yes": object()})])
    assert (raised.value.index, raised.value.field) == (1, "proba")
    assert store.count_events(model_id) == 0
    with pytest.raises(IngestError):
        store.insert_labels(model_id, [NewLabel("a", object(), T0)])
    assert store.labels_for(model_id, ["a"]) == {}
    with pytest.raises(ConfigError) as bad_config:
        store.create_model("odd", {"name": "odd", "threshold": object()})
    assert bad_config.value.key == "config"
    with pytest.raises(ConfigError):
        store.upsert_version(model_id, "v9", metadata={"x": {1, 2}})


# ---------------------------------------------------------------- event codecs and writers

WORKER_SPEC = ModelSpec.from_dict(
    {"name": "churn", "task": "regression", "features": {"x": "numeric", "c": "categorical"}}
)
WORKER_PLAN = ColumnPlan.build(
    task=WORKER_SPEC.task,
    features={"x": ColumnKind.NUMERIC, "c": ColumnKind.CATEGORICAL},
    prediction=None,
    proba=None,
    reference=None,
)


def test_a_worker_encodes_for_the_store_and_the_writer_stores_the_values_as_they_are(
    store: Store, model_id: int
) -> None:
    # The codec travels to an ingest worker inside the pickled DecodeJob.
    codec = pickle.loads(pickle.dumps(store.event_codec))
    assert codec == store.event_codec
    assert codec.backend == store.backend
    job = DecodeJob(
        spec=WORKER_SPEC,
        plan=WORKER_PLAN,
        now=T0,
        max_age_seconds=86_400.0,
        max_future_seconds=300.0,
        max_batch=100,
        codec=codec,
    )
    body = orjson.dumps(
        {
            "events": [
                {"id": "a", "version": "v1", "timestamp": T0, "features": {"x": 1.5, "c": "p"}},
                {"id": "b", "version": "v1", "timestamp": T0, "features": {"x": None, "c": "1.0"}},
            ]
        }
    )
    decoded = decode_body(body, JSON, job)
    assert decoded is not None
    assert decoded.rejected == []
    values = decoded.encoded.values
    width = ENCODED_EVENT_VALUES
    features, nullable = [values[4], values[width + 4]], [values[5], values[6]]
    if store.backend == "postgresql":
        # What COPY sends as it is: JSON text, None for NULL, a boolean flag.
        assert {type(value) for value in features} == {str}
        assert nullable == [None, None]
        assert values[8] is False
    else:
        # What sqlite3 binds fastest: bytearrays (the empty one for NULL), 0 or 1.
        assert {type(value) for value in features} == {bytearray}
        assert nullable == [bytearray(), bytearray()]
        assert values[8] == 0
    assert store.insert_encoded(model_id, decoded.encoded, seq=1).inserted_ids == ("a", "b")
    stored = store.events_by_ids(model_id, ["a", "b"])
    assert stored["a"].features == {"x": 1.5, "c": "p"}
    assert stored["b"].features == {"x": None, "c": "1.0"}
    assert (stored["a"].prediction, stored["a"].proba, stored["a"].error) == (None, None, False)
    assert [batch[0].seq for batch in store.iter_events_after(0)] == [1]


def test_a_batch_encoded_for_the_other_backend_is_refused(store: Store, model_id: int) -> None:
    other = codec_for("postgresql" if store.backend == "sqlite" else "sqlite")
    with pytest.raises(StoreError, match="not encoded for") as raised:
        store.insert_encoded(model_id, other.encode_events([event("a")]))
    assert raised.value.backend == store.backend
    assert store.count_events(model_id) == 0


# ---------------------------------------------------------------- retraining runs


def test_retrain_runs_one_active_per_model_min_interval_and_guarded_updates(store: Store) -> None:
    store.create_model("churn", CONFIG)
    base = {"model": "churn", "status": "queued", "trigger": {"kind": "manual"},
            "mode": "automatic", "executor": "local", "as_of": T0, "max_attempts": 3}  # fmt: skip
    run = store.create_retrain_run(base, min_interval=3600, now=T0)
    assert (run.status, run.attempts, run.next_attempt_at, run.gate) == ("queued", 0, T0, None)
    with pytest.raises(ConflictError, match="already has retraining run"):
        store.create_retrain_run(base, now=T0 + 1)
    running = store.update_retrain_run(run, {"status": "running", "attempts": 1}, now=T0 + 2)
    with pytest.raises(ConflictError, match="changed while"):
        store.update_retrain_run(run, {"status": "failed"}, now=T0 + 3)
    done = store.update_retrain_run(
        running,
        {"status": "rejected", "gate": {"p_value": 0.4, "test": "mcnemar"}, "log": "a\nb",
         "data": {"train_rows": 10}, "artifact": {"sha256": "ab", "flavor": "sklearn"}},
        now=T0 + 4,
    )  # fmt: skip
    assert store.retrain_run(run.id) == done
    assert done.to_dict()["gate"] == {"p_value": 0.4, "test": "mcnemar"}
    with pytest.raises(ConflictError, match="min_interval"):
        store.create_retrain_run(base, min_interval=3600, now=T0 + 100)
    later = store.create_retrain_run(base, min_interval=3600, now=T0 + 3600)
    assert [r.id for r in store.retrain_runs(model="churn")] == [run.id, later.id]
    assert [r.id for r in store.retrain_runs(statuses=["queued"])] == [later.id]
    assert [r.id for r in store.retrain_runs(limit=1)] == [later.id]
    with pytest.raises(NotFoundError):
        store.retrain_run(later.id + 1)
    with pytest.raises(ValueError, match="mutable"):
        store.update_retrain_run(later, {"model": "other"})
