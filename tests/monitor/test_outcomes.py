"""Business outcomes: validated like labels, idempotent, joined to the windows of their
predictions, kept across restarts, exposed as signals (both stores)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from tests.monitor.test_service import HOUR, T0, Clock, events, make_service, reference_frame
from watchkeeper.errors import ConfigError
from watchkeeper.ingest.spec import ModelSpec, OutcomeKind
from watchkeeper.monitor import MonitorService
from watchkeeper.monitor.outcomes import OutcomeMoments
from watchkeeper.store import Store


def spec_with_outcomes(name: str = "shop") -> ModelSpec:
    return ModelSpec.from_dict(
        {
            "name": name,
            "task": "classification",
            "features": {},
            "proba": {"0": "p0", "1": "p1"},
            "segments": ["country"],
            "outcomes": {"click": "binary", "revenue": "numeric"},
        }
    )


def started(store: Store, clock: Clock) -> MonitorService:
    service = make_service(store, clock)
    service.register_model(spec_with_outcomes(), reference=reference_frame())
    return service


def value(service: MonitorService, signal: str, version: str | None = None) -> Any:
    options: dict[str, Any] = {"start": T0, "end": T0 + HOUR}
    if version is not None:
        options["version"] = version
    points = service.series("shop", signal, **options)
    return points[0]["value"] if points else None


def test_outcomes_are_signals_of_their_predictions_windows(store: Store) -> None:
    clock = Clock(T0 + 10)
    service = started(store, clock)
    batch = events(40, T0, seed=1)
    assert service.ingest_events("shop", batch).accepted == 40
    clicks = [{"id": f"e{i}", "name": "click", "value": i % 4 == 0} for i in range(20)]
    revenue = [
        {"id": f"e{i}", "name": "revenue", "value": 10.0 + i, "timestamp": T0 + HOUR + 60}
        for i in range(5)
    ]
    result = service.ingest_outcomes("shop", clicks + revenue)
    assert (result.accepted, result.duplicates, result.rejected) == (25, 0, [])
    assert result.conflicts == []
    clock.now = T0 + 2 * HOUR
    service.tick()
    assert value(service, "outcome.click.count") == 20.0
    assert value(service, "outcome.click.rate") == 0.25
    assert value(service, "outcome.click.per_prediction") == 5 / 40
    assert value(service, "outcome.revenue.mean") == 12.0
    assert value(service, "outcome.revenue.sum") == 60.0
    expected_std = np.std([10, 11, 12, 13, 14], ddof=1)
    assert value(service, "outcome.revenue.std") == pytest.approx(expected_std)
    assert value(service, "outcome.revenue.per_prediction") == 60.0 / 40
    # The latest closed window's samples: what /metrics (watchkeeper_signal) and the alert
    # rules read.
    latest = {
        sample["labels"]["signal"]: sample
        for sample in service.latest_samples()
        if sample["labels"].get("signal", "").startswith("outcome.")
    }
    assert latest["outcome.click.rate"]["value"] == 0.25
    assert latest["outcome.click.rate"]["labels"]["version"] == "v1"
    assert "feature" not in latest["outcome.click.rate"]["labels"]
    names = service.signal_names("shop")
    assert names[-8:] == [
        "outcome.click.count",
        "outcome.click.rate",
        "outcome.click.per_prediction",
        "outcome.revenue.count",
        "outcome.revenue.mean",
        "outcome.revenue.sum",
        "outcome.revenue.std",
        "outcome.revenue.per_prediction",
    ]
    assert "outcome.click.rate" in service.signal_catalog()["shop"]
    counts = service.counters()["models"]["shop"]
    assert (counts["outcomes_accepted"], counts["outcomes_rejected"]) == (25, 0)


def test_outcomes_are_kept_per_version(store: Store) -> None:
    service = started(store, Clock(T0 + 10))
    service.ingest_events("shop", events(30, T0, seed=1, prefix="a"))
    candidate = [dict(e, version="v2") for e in events(30, T0, seed=2, prefix="b")]
    service.ingest_events("shop", candidate)
    service.ingest_outcomes(
        "shop",
        [{"id": f"a{i}", "name": "click", "value": i < 3} for i in range(30)]
        + [{"id": f"b{i}", "name": "click", "value": i < 12} for i in range(30)],
    )
    assert value(service, "outcome.click.rate", version="v1") == 0.1
    assert value(service, "outcome.click.rate", version="v2") == 0.4
    assert value(service, "outcome.click.rate") == 0.25


@pytest.mark.parametrize("closed", [False, True], ids=["open-window", "closed-window"])
def test_retries_are_duplicates_and_a_different_value_is_a_conflict(
    store: Store, closed: bool
) -> None:
    clock = Clock(T0 + 10)
    service = started(store, clock)
    service.ingest_events("shop", events(10, T0, seed=1))
    first = [{"id": f"e{i}", "name": "revenue", "value": 5.0} for i in range(10)]
    assert service.ingest_outcomes("shop", first).accepted == 10
    if closed:
        clock.now = T0 + 2 * HOUR
        service.tick()
    retry = service.ingest_outcomes("shop", first[:4])
    assert (retry.accepted, retry.duplicates, retry.conflicts) == (0, 4, [])
    changed = service.ingest_outcomes(
        "shop",
        [
            {"id": "e0", "name": "revenue", "value": 5},
            {"id": "e1", "name": "revenue", "value": 7.5},
            {"id": "e1", "name": "click", "value": 1},
        ],
    )
    assert (changed.accepted, changed.duplicates) == (1, 1)
    assert changed.conflicts is not None
    assert [(c.index, c.field) for c in changed.conflicts] == [(1, "value")]
    assert changed.conflicts[0].reason.startswith(
        "the outcome 'revenue' of event 'e1' is already 5.0; the first value is kept"
    )
    assert value(service, "outcome.revenue.sum") == 50.0
    assert value(service, "outcome.click.count") == 1.0
    assert service.counters()["models"]["shop"]["outcomes_conflicts"] == 1


def test_bad_outcomes_are_rejected_naming_the_field(store: Store) -> None:
    service = started(store, Clock(T0 + 10))
    service.ingest_events("shop", events(3, T0, seed=1))
    result = service.ingest_outcomes(
        "shop",
        [
            {"id": "e0", "name": "clik", "value": True},
            {"id": "e0", "name": "click", "value": 2},
            {"id": "e0", "name": "revenue", "value": "12"},
            {"id": "e0", "name": "revenue", "value": None},
            {"id": "nope", "name": "click", "value": True},
            {"id": "e1", "name": "click", "value": True, "user": "u1"},
            {"name": "click", "value": True},
            {"id": "e2", "name": "revenue", "value": float("nan")},
            {"id": "e2", "value": 1},
            {"id": "e1", "name": "click", "value": 0, "timestamp": "yesterday"},
            {"id": "e1", "name": "click", "value": 0},
        ],
    )
    problems = {(r.index, r.field): r.reason for r in result.rejected}
    assert result.accepted == 1
    assert problems[(0, "name")] == (
        "unknown outcome 'clik'; did you mean 'click'? (declared: click, revenue)"
    )
    assert problems[(1, "value")].startswith("expected true/false or 0/1, got a number 2")
    assert problems[(2, "value")] == "expected a number, got a string"
    assert problems[(3, "value")].startswith("missing: an outcome needs a value")
    assert problems[(4, "id")].startswith("no prediction 'nope' is stored for model 'shop'")
    assert problems[(5, "user")] == "unknown field"
    assert problems[(6, "id")].startswith("missing: an outcome needs its prediction's id")
    assert "NaN" in problems[(7, "value")]
    assert problems[(8, "name")].startswith("missing: every outcome needs the name")
    assert (9, "timestamp") in problems
    assert [r.index for r in result.rejected] == sorted(r.index for r in result.rejected)
    assert service.counters()["models"]["shop"]["outcomes_rejected"] == 10


def test_a_model_without_outcomes_says_so(store: Store) -> None:
    service = make_service(store, Clock(T0 + 10))
    plain = spec_with_outcomes().to_dict() | {"name": "plain", "outcomes": {}}
    service.register_model(ModelSpec.from_dict(plain), reference=reference_frame())
    service.ingest_events("plain", events(1, T0, seed=1))
    result = service.ingest_outcomes("plain", [{"id": "e0", "name": "click", "value": 1}])
    assert result.rejected[0].field == "name"
    assert "the model declares no outcomes" in result.rejected[0].reason


@pytest.mark.parametrize(
    ("outcomes", "key"),
    [
        ({"click": "rate"}, "outcomes.click"),
        ({"a.b": "binary"}, "outcomes.a.b"),
        ({"9lives": "binary"}, "outcomes.9lives"),
        (["click"], "outcomes"),
        (None, "outcomes"),
        ({f"o{i}": "binary" for i in range(33)}, "outcomes"),
    ],
)
def test_declared_outcomes_are_checked(outcomes: Any, key: str) -> None:
    config = spec_with_outcomes().to_dict() | {"outcomes": outcomes}
    with pytest.raises(ConfigError) as caught:
        ModelSpec.from_dict(config)
    assert caught.value.key == key


def test_the_spec_round_trips_its_outcomes() -> None:
    spec = spec_with_outcomes()
    assert spec.outcomes == {"click": OutcomeKind.BINARY, "revenue": OutcomeKind.NUMERIC}
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert ModelSpec.from_dict(spec.to_dict() | {"outcomes": {}}).outcomes == {}


@pytest.mark.parametrize("clean", [True, False], ids=["checkpoint", "kill-9"])
def test_outcomes_survive_a_restart(store_url: str, clean: bool) -> None:
    clock = Clock(T0 + 10)
    with Store.open(store_url) as store:
        service = started(store, clock)
        service.ingest_events("shop", events(20, T0, seed=1))
        revenue = [{"id": f"e{i}", "name": "revenue", "value": i} for i in range(10)]
        service.ingest_outcomes("shop", revenue)
        service.ingest_outcomes("shop", [{"id": "e10", "name": "click", "value": True}])
        before = {
            key: dict(window.outcomes) for key, window in service._shared.open["shop"].items()
        }
        if clean:
            service.close()  # checkpoints the open windows
        del service  # otherwise a kill -9: rebuilt from the raw events and outcomes
        recovered = make_service(store, clock)
        after = {
            key: dict(window.outcomes) for key, window in recovered._shared.open["shop"].items()
        }
        assert after.keys() == before.keys()
        for key, moments in before.items():
            assert after[key].keys() == moments.keys() == {"click", "revenue"}
            for name, expected in moments.items():
                assert after[key][name].count == expected.count
                assert after[key][name].mean == pytest.approx(expected.mean)
                assert after[key][name].m2 == pytest.approx(expected.m2)
        # A retry after the restart is still a duplicate.
        again = recovered.ingest_outcomes("shop", [{"id": "e3", "name": "revenue", "value": 3}])
        assert (again.accepted, again.duplicates) == (0, 1)
        recovered.close()


def test_a_restart_replays_outcomes_stored_after_the_checkpoint(store_url: str) -> None:
    clock = Clock(T0 + 10)
    with Store.open(store_url) as store:
        service = started(store, clock)
        service.ingest_events("shop", events(20, T0, seed=1))
        service.ingest_outcomes("shop", [{"id": "e0", "name": "revenue", "value": 4.0}])
        service.checkpoint()
        service.ingest_outcomes("shop", [{"id": "e1", "name": "revenue", "value": 8.0}])
        del service  # kill -9 after the checkpoint
        recovered = make_service(store, clock)
        assert value(recovered, "outcome.revenue.sum") == 12.0
        assert value(recovered, "outcome.revenue.count") == 2.0
        recovered.close()


def test_moments_merge_exactly() -> None:
    rng = np.random.default_rng(3)
    values = rng.lognormal(3.0, 1.0, size=1000)
    parts = np.array_split(values, 7)
    merged = OutcomeMoments()
    for part in parts:
        merged = merged.merge(OutcomeMoments.of(part.tolist()))
    assert merged.count == 1000
    assert merged.mean == pytest.approx(values.mean(), rel=1e-12)
    assert merged.std == pytest.approx(values.std(ddof=1), rel=1e-10)
    assert merged.total == pytest.approx(values.sum(), rel=1e-12)
    assert OutcomeMoments.of([2.0]).std is None
    assert math.isclose(OutcomeMoments.from_state(merged.to_state()).m2, merged.m2)


def test_an_outcome_by_unit_belongs_to_the_units_latest_prediction_before_it(store: Store) -> None:
    service = started(store, Clock(T0 + 3000))
    batch = events(4, T0, seed=1)
    for item, (unit, version, at) in zip(
        batch,
        [("u1", "v1", 10), ("u1", "v2", 100), ("u2", "v1", 20), ("u1", "v1", 900)],
        strict=True,
    ):
        item.update(unit=unit, version=version, timestamp=T0 + at)
    assert service.ingest_events("shop", batch).accepted == 4
    result = service.ingest_outcomes(
        "shop",
        [
            {"unit": "u1", "name": "revenue", "value": 5.0, "timestamp": T0 + 50},  # e0, v1
            {"unit": "u1", "name": "revenue", "value": 7.0, "timestamp": T0 + 100},  # e1, v2
            {"unit": "u2", "name": "click", "value": True, "timestamp": T0 + 2000},  # e2, v1
            {"unit": "u1", "name": "click", "value": True, "timestamp": T0 + 5},  # none yet
            {"unit": "u9", "name": "click", "value": True, "timestamp": T0 + 50},
            {"unit": "u1", "id": "e0", "name": "click", "value": True},
            {"unit": "", "name": "click", "value": True},
        ],
    )
    assert result.accepted == 3
    assert result.ids == ["e0", "e1", "e2"]
    problems = {(r.index, r.field): r.reason for r in result.rejected}
    assert sorted(problems) == [(3, "unit"), (4, "unit"), (5, "unit"), (6, "unit")]
    assert problems[(3, "unit")].startswith("no prediction about unit 'u1' at or before")
    assert problems[(5, "unit")] == "send the prediction's id or a unit, not both"
    assert value(service, "outcome.revenue.sum", version="v1") == 5.0
    assert value(service, "outcome.revenue.sum", version="v2") == 7.0
    assert value(service, "outcome.click.count", version="v1") == 1.0
    # The same outcome again is a retry; a different value for the same prediction a conflict,
    # whether sent by unit or by the prediction's id.
    again = service.ingest_outcomes(
        "shop",
        [
            {"unit": "u1", "name": "revenue", "value": 5.0, "timestamp": T0 + 50},
            {"id": "e0", "name": "revenue", "value": 6.0},
        ],
    )
    assert (again.accepted, again.duplicates) == (0, 1)
    assert again.conflicts is not None
    assert [(c.index, c.field) for c in again.conflicts] == [(1, "value")]
    stored = store.outcomes_for(service._shared.model("shop").model_id, ["e0", "e1"])
    assert [(o.event_id, o.unit) for o in stored] == [("e0", "u1"), ("e1", "u1")]
