"""Rollout rows: a state change, its measurements and events in one guarded transaction."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from watchkeeper.errors import ConflictError, NotFoundError, StoreError
from watchkeeper.server.service_metrics import RollbackCounts
from watchkeeper.store import Store
from watchkeeper.store.rollouts import NewRolloutEvent, NewRolloutMeasurement

FIELDS = {
    "model": "churn",
    "baseline": "3",
    "candidate": "4",
    "spec": {"model": "churn"},
    "state": "progressing",
    "step_index": 0,
    "step_started_at": 10.0,
    "analysis_since": 10.0,
    "looks": 0,
    "next_analysis_at": None,
    "weights": {"3": 100, "4": 0},
    "failures": 0,
    "reason": "",
    "created_by": "test",
}


def test_create_update_and_history(store_url: str) -> None:
    with Store.open(store_url) as store:
        started = NewRolloutEvent(10.0, "started", "", {"spec": {}})
        record = store.create_rollout(FIELDS, started, now=10.0)
        assert store.rollout(record.id) == record
        measurement = NewRolloutMeasurement(1, 70.0, "error_rate", "inconclusive", {"p": None})
        step = NewRolloutEvent(70.0, "step", "set weight 10", {"weights": {"3": 90, "4": 10}})
        updated = store.update_rollout(
            record,
            {"step_index": 1, "weights": {"3": 90, "4": 10}, "looks": 1},
            measurements=[measurement],
            events=[step],
            now=70.0,
        )
        assert updated.revision == 2
        assert store.rollout(record.id) == updated
        # A writer holding the old revision loses and writes nothing.
        with pytest.raises(ConflictError, match="read it again"):
            store.update_rollout(
                record,
                {"state": "aborted"},
                events=[NewRolloutEvent(71.0, "aborted", "x", {})],
            )
        assert store.rollout(record.id).state == "progressing"
        assert [e.kind for e in store.rollout_events(record.id)] == ["started", "step"]
        stored = store.rollout_measurements(record.id, step_index=1)
        assert [(m.metric, m.outcome, dict(m.values)) for m in stored] == [
            ("error_rate", "inconclusive", {"p": None})
        ]
        assert store.rollout_measurements(record.id, step_index=0) == []
        assert [r.id for r in store.rollouts(model="churn", states=["progressing"])] == [record.id]
        assert store.rollouts(states=["aborted"]) == []
        with pytest.raises(NotFoundError):
            store.rollout(record.id + 1)


def test_rollback_counts_are_the_aborted_events_per_model(store_url: str) -> None:
    with Store.open(store_url) as store:
        assert store.rollback_counts() == {}
        for model, aborted in (("churn", True), ("churn", True), ("churn", False), ("fraud", True)):
            started = NewRolloutEvent(10.0, "started", "", {})
            record = store.create_rollout({**FIELDS, "model": model}, started, now=10.0)
            events = [NewRolloutEvent(20.0, "aborted" if aborted else "promoted", "", {})]
            state = "aborted" if aborted else "promoted"
            store.update_rollout(record, {"state": state}, events=events, now=20.0)
        assert store.rollback_counts() == {"churn": 2, "fraud": 1}
        registry = CollectorRegistry(auto_describe=True)
        registry.register(RollbackCounts(store))
        assert registry.get_sample_value("watchkeeper_rollbacks_total", {"model": "churn"}) == 2.0
        assert registry.get_sample_value("watchkeeper_rollbacks_total", {"model": "fraud"}) == 1.0


class _BrokenStore:
    def rollback_counts(self) -> dict[str, int]:
        raise StoreError("database is locked", backend="sqlite")


def test_an_unreadable_store_leaves_the_rollback_count_out_of_the_scrape() -> None:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(RollbackCounts(_BrokenStore()))
    assert b"watchkeeper_rollbacks_total" not in generate_latest(registry)
