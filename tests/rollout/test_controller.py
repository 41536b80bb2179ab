"""The controller end to end in simulated time: a real MonitorService on SQLite fed events per
version by the traffic the controller sets; labels arrive five minutes late."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from tests.rollout.sim import MODEL, Behaviour, Simulation
from watchkeeper.alerts.engine import AlertingEngine
from watchkeeper.errors import ConfigError, ConflictError
from watchkeeper.rollout.alerting import EngineAlerts
from watchkeeper.server.service_metrics import RollbackCounts
from watchkeeper.store import Store

ERRORS = {"signal": "error_rate", "condition": {"kind": "difference", "value": 0.02}}
ACCURACY = {
    "signal": "accuracy",
    "condition": {"kind": "difference", "value": 0.05},
    "min_samples": 200,
}
LATENCY = {"signal": "latency_p99", "condition": {"kind": "relative", "value": 0.2}}


def spec(*metrics: dict[str, Any], **analysis: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "baseline": "1",
        "candidate": "2",
        "steps": [
            {"set_weight": 20},
            {"analysis": {"count": 12}},
            {"set_weight": 50},
            {"pause": {"duration": "3m"}},
            {"analysis": {"count": 12}},
        ],
        "analysis": {
            "interval": "2m",
            "failure_limit": 1,
            "min_samples": 300,
            "min_windows": 4,
            "metrics": list(metrics or (ERRORS, ACCURACY)),
            **analysis,
        },
    }


def weights_history(sim: Simulation) -> list[dict[str, int]]:
    return [split for _, split in sim.traffic.history]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(f"sqlite:///{tmp_path / 'wk.db'}")


def test_a_good_candidate_is_promoted_through_every_step(store: Store) -> None:
    sim = Simulation(store, {"1": Behaviour(), "2": Behaviour()}, seed=1)
    record = sim.controller.start(spec(ERRORS, ACCURACY, LATENCY))
    sim.run(record.id, minutes=60)
    final = store.rollout(record.id)
    assert final.state == "promoted", final.reason
    assert weights_history(sim)[1:] == [
        {"1": 100, "2": 0},
        {"1": 80, "2": 20},
        {"1": 50, "2": 50},
        {"1": 0, "2": 100},
    ]
    kinds = [event.kind for event in store.rollout_events(record.id)]
    assert kinds[0] == "started"
    assert kinds.count("weight_set") == 2
    assert kinds[-1] == "promoted"
    measured = store.rollout_measurements(record.id)
    assert {m.metric for m in measured} == {"sample_ratio", "error_rate", "accuracy", "latency_p99"}
    assert all(m.outcome != "failure" for m in measured)


@pytest.mark.parametrize(
    ("bad", "metric"),
    [
        (Behaviour(error_rate=0.08), "error_rate"),
        (Behaviour(accuracy=0.7), "accuracy"),
        (Behaviour(latency_ms=90.0), "latency_p99"),
    ],
    ids=["errors", "accuracy-from-late-labels", "slower"],
)
def test_a_bad_candidate_is_rolled_back(store: Store, bad: Behaviour, metric: str) -> None:
    sim = Simulation(store, {"1": Behaviour(), "2": bad}, seed=2)
    registry = CollectorRegistry()
    registry.register(RollbackCounts(store))
    record = sim.controller.start(spec(ERRORS, ACCURACY, LATENCY))
    sim.run(record.id, minutes=40)
    final = store.rollout(record.id)
    assert final.state == "aborted", final.reason
    assert metric in final.reason
    assert sim.traffic.split(MODEL) == {"1": 100, "2": 0}
    assert final.failures == 2  # failure_limit 1: the second failing look aborts
    looks = [m for m in store.rollout_measurements(record.id) if m.metric == metric]
    failing = [m for m in looks if m.outcome == "failure"]
    # Once a look fails, the next one (failure_limit + 1 = 2 looks) aborts.
    assert len(failing) == 2
    assert looks[-1].at - failing[0].at == 120.0
    aborted = store.rollout_events(record.id)[-1]
    assert aborted.kind == "aborted"
    assert metric in {m["metric"] for m in aborted.details["measurements"]}
    assert registry.get_sample_value("watchkeeper_rollbacks_total", {"model": MODEL}) == 1.0


def test_low_traffic_ends_inconclusive(store: Store) -> None:
    sim = Simulation(store, {"1": Behaviour(), "2": Behaviour(error_rate=0.08)}, per_minute=8)
    record = sim.controller.start(spec(ERRORS, ACCURACY))
    sim.run(record.id, minutes=40)
    final = store.rollout(record.id)
    assert final.state == "paused"
    assert "inconclusive" in final.reason
    assert {m.outcome for m in store.rollout_measurements(record.id)} <= {"ok", "inconclusive"}
    assert sim.traffic.split(MODEL) == {"1": 80, "2": 20}


def test_a_sample_ratio_mismatch_stops_the_analysis(store: Store) -> None:
    # The candidate loses a third of its events on the way to the monitor, errors included.
    sim = Simulation(store, {"1": Behaviour(), "2": Behaviour(logged=0.66)}, seed=3)
    record = sim.controller.start(spec(ERRORS, ACCURACY))
    sim.run(record.id, minutes=20)
    final = store.rollout(record.id)
    assert final.state == "paused"
    assert final.reason.startswith("sample ratio mismatch")
    measured = store.rollout_measurements(record.id)
    assert measured[-1].metric == "sample_ratio"
    assert measured[-1].outcome == "mismatch"
    assert not [m for m in measured if m.metric == "error_rate" and m.at == measured[-1].at]
    # Resuming starts a fresh comparison; abort puts traffic back.
    sim.controller.abort(record.id, by="alice", reason="logging broken")
    assert sim.traffic.split(MODEL) == {"1": 100, "2": 0}


def test_restart_resumes_without_repeating_a_step_or_losing_a_measurement(
    store_url: str,
) -> None:
    url = store_url
    store = Store.open(url)
    sim = Simulation(store, {"1": Behaviour(), "2": Behaviour()}, seed=4)
    record = sim.controller.start(spec(ERRORS, ACCURACY))
    for _ in range(9):
        sim.minute()
    before = store.rollout(record.id)
    measured_before = store.rollout_measurements(record.id)
    assert before.state == "progressing"
    assert measured_before
    # The process dies: a new store, monitor and controller on the same database.
    sim.monitor.close()
    store.close()
    sim.store = Store.open(url)
    sim.monitor = sim.open_monitor(register=False)
    sim.controller = sim.open_controller()
    assert sim.store.rollout(record.id) == before
    sim.run(record.id, minutes=60)
    final = sim.store.rollout(record.id)
    assert final.state == "promoted", final.reason
    kinds = [event.kind for event in sim.store.rollout_events(record.id)]
    assert kinds.count("weight_set") == 2
    measured = sim.store.rollout_measurements(record.id)
    assert measured[: len(measured_before)] == measured_before
    sim.store.close()


def test_manual_commands(store: Store) -> None:
    sim = Simulation(store, {"1": Behaviour(), "2": Behaviour()}, seed=5)
    paused_spec = spec(ERRORS)
    paused_spec["steps"] = [
        {"set_weight": 10},
        {"pause": {}},
        {"set_weight": 40},
        {"pause": {"duration": "1h"}},
    ]
    record = sim.controller.start(paused_spec, by="alice")
    assert record.state == "paused"
    assert "until promoted" in record.reason
    with pytest.raises(ConflictError, match="already has rollout"):
        sim.controller.start(paused_spec)
    record = sim.controller.resume(record.id, by="bob")
    assert record.state == "progressing"
    assert sim.traffic.split(MODEL) == {"1": 60, "2": 40}
    record = sim.controller.pause(record.id, by="bob")
    assert record.state == "paused"
    record = sim.controller.promote(record.id, by="carol")
    assert record.state == "promoted"
    assert sim.traffic.split(MODEL) == {"1": 0, "2": 100}
    with pytest.raises(ConflictError, match="it is promoted"):
        sim.controller.abort(record.id)
    status = sim.controller.status(record.id)
    assert [event["kind"] for event in status["events"]] == [
        "started",
        "weight_set",
        "paused",
        "resumed",
        "weight_set",
        "paused",
        "step_promoted",
        "promoted",
    ]


def test_unknown_signal_is_refused_at_start(store: Store) -> None:
    sim = Simulation(store, {"1": Behaviour(), "2": Behaviour()})
    with pytest.raises(ConfigError) as caught:
        sim.controller.start(
            spec({"signal": "error_rte", "condition": {"direction": "lower_is_better"}})
        )
    assert caught.value.key == "analysis.metrics[0].signal"


def test_a_rollback_fires_an_alert_and_the_next_rollout_resolves_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wk.db'}"
    store = Store.open(url)
    sim = Simulation(store, {"1": Behaviour(), "2": Behaviour(error_rate=0.1)}, seed=6)
    engine = AlertingEngine(db=url, clock=sim.clock)
    sim.controller = sim.open_controller(
        alerts=EngineAlerts(engine, samples=sim.monitor.latest_samples)
    )
    record = sim.controller.start(spec(ERRORS))
    sim.run(record.id, minutes=30)
    assert store.rollout(record.id).state == "aborted"
    alerts = engine.alerts()
    assert [(a.rule, a.state.value) for a in alerts] == [("RolloutRolledBack", "firing")]
    assert alerts[0].labels["version"] == "2"
    assert "rolled back" in alerts[0].annotations["summary"]
    sim.behaviour["2"] = Behaviour()
    sim.controller.start(spec(ERRORS))
    assert [a.state.value for a in engine.alerts()] == ["resolved"]
    engine.close()
    store.close()
