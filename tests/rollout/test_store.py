"""Rollout rows: a state change, its measurements and events in one guarded transaction."""

from __future__ import annotations

import pytest

from watchkeeper.errors import ConflictError, NotFoundError
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
