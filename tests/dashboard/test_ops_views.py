"""The registry, rollout and backtest pages' content from a real store: a registry with alias
moves and a rollback, a rollout the real controller aborted in simulated time, and a backtest
of pasted and stored rules over the simulation's windows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from tests.rollout.sim import MINUTE, MODEL, T0, Behaviour, Simulation
from tests.store.backends import backend_url
from watchkeeper.alerts.engine import AlertingEngine
from watchkeeper.config import Settings
from watchkeeper.dashboard import backtest, ops_views
from watchkeeper.errors import ConfigError, ConflictError, NotFoundError
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor.service import MonitorService
from watchkeeper.registry import ArtifactStore, Registry
from watchkeeper.store import Store

ERRORS = {"signal": "error_rate", "condition": {"kind": "difference", "value": 0.02}}
LATENCY = {"signal": "latency_p99", "condition": {"kind": "relative", "value": 0.2}}


def _linear() -> LinearRegression:
    frame = pd.DataFrame({"x1": [0.0, 1.0, 2.0, 3.0]})
    return LinearRegression().fit(frame, 2.0 * frame["x1"])


def _spec() -> dict[str, Any]:
    return {
        "model": MODEL,
        "baseline": "1",
        "candidate": "2",
        "steps": [{"set_weight": 20}, {"analysis": {"count": 12}}, {"set_weight": 50}],
        "analysis": {
            "interval": "2m",
            "failure_limit": 1,
            "min_samples": 300,
            "min_windows": 4,
            "metrics": [ERRORS, LATENCY],
        },
    }


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(f"sqlite:///{tmp_path / 'wk.db'}")


@pytest.fixture
def aborted(store: Store) -> Simulation:
    """A candidate with 8 % errors, rolled back by the controller after two failing looks."""
    sim = Simulation(store, {"1": Behaviour(), "2": Behaviour(error_rate=0.08)}, seed=2)
    record = sim.controller.start(_spec())
    sim.run(record.id, minutes=40)
    assert store.rollout(record.id).state == "aborted"
    return sim


@pytest.fixture(params=["sqlite-file", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with backend_url(request.param, tmp_path) as url, Store.open(url) as opened:
        yield opened


def test_the_registry_page_shows_versions_lineage_and_every_alias_move(
    any_store: Store, tmp_path: Path
) -> None:
    registry = Registry(any_store, ArtifactStore(tmp_path / "artifacts"))
    lineage = {"retrain.champion_version": 1, "retrain.data_start": T0, "team": "risk"}
    for metrics, tags in (({"auc": 0.81}, {}), ({"auc": 0.84}, lineage)):
        registry.register("demand", _linear(), metrics=metrics, tags=tags,
                          registered_by="ana", code_revision="abc123")  # fmt: skip
    registry.set_alias("demand", "champion", 1, moved_by="ana", reason="first")
    registry.set_alias("demand", "champion", 2, moved_by="ana", reason="better auc")
    registry.set_alias("demand", "shadow", 1, moved_by="bo")
    registry.remove_alias("demand", "shadow", moved_by="bo", reason="done")

    page = ops_views.registry_page(registry, "demand")
    assert [v["version"] for v in page["versions"]] == [2, 1]
    newest = page["versions"][0]
    assert newest["aliases"] == ["champion"]
    assert newest["metrics"] == {"auc": 0.84}
    assert newest["lineage"] == {"champion_version": 1, "data_start": T0}
    assert newest["other_tags"] == {"team": "risk"}
    assert newest["code_revision"] == "abc123"
    aliases = {a["alias"]: a for a in page["aliases"]}
    assert aliases["champion"]["version"] == 2
    assert aliases["champion"]["rollback_to"] == 1
    assert [m["reason"] for m in aliases["champion"]["history"]] == ["better auc", "first"]
    # A removed alias keeps its history on the page; rolling it back sets it again.
    assert aliases["shadow"]["version"] is None
    assert [m["to_version"] for m in aliases["shadow"]["history"]] == [None, 1]
    assert aliases["shadow"]["rollback_to"] == 1

    registry.rollback("demand", "champion", moved_by="ana", reason="alerts")
    again = {a["alias"]: a for a in ops_views.registry_page(registry, "demand")["aliases"]}
    assert again["champion"]["version"] == 1
    assert again["champion"]["history"][0]["reason"] == "alerts"
    assert again["champion"]["rollback_to"] == 2  # a second rollback undoes the first

    with pytest.raises(NotFoundError, match="no registered versions"):
        ops_views.registry_page(registry, "nothing")


def test_the_rollout_page_shows_steps_measurements_charts_and_the_rollback(
    aborted: Simulation, store: Store
) -> None:
    (record,) = store.rollouts(model=MODEL)
    page = ops_views.rollout_page(aborted.controller, record.id)
    assert page["state"] == "aborted"
    assert page["weights"] == {"1": 100, "2": 0}
    assert page["actions"] == []
    assert [s["where"] for s in page["step_list"]] == ["done", "stopped", ""]
    assert page["step_list"][0]["step"] == "set weight 20 %"
    stored = store.rollout_measurements(record.id)
    assert len(page["rows"]) == len(stored) > 0
    assert page["rows"][0]["at"] >= page["rows"][-1]["at"]  # newest first
    failing = [row for row in page["rows"] if row["outcome"] == "failure"]
    assert failing
    assert all(row["metric"] == "error_rate" for row in failing)
    assert all(row["candidate"] > row["baseline"] for row in failing)
    assert all(row["interval"] is not None and row["p_value"] < 0.05 for row in failing)
    srm = [row for row in page["rows"] if row["metric"] == "sample_ratio"]
    assert srm
    assert "/" in srm[0]["counts"]
    # One chart per analysis metric, candidate vs baseline at every look of that metric.
    charts = {chart["metric"]: chart["figure"] for chart in page["figures"]}
    assert set(charts) == {"error_rate", "latency_p99"}
    looks = [m for m in stored if m.metric == "error_rate"]
    candidate, baseline = charts["error_rate"]["data"]
    assert len(candidate["x"]) == len(looks)
    assert candidate["y"][-1] == pytest.approx(looks[-1].values["candidate_value"])
    assert baseline["y"][-1] == pytest.approx(looks[-1].values["baseline_value"])
    assert any(s["line"]["color"] == "#b91c1c" for s in charts["error_rate"]["layout"]["shapes"])
    # Events newest first: the rollback with its reason on top.
    assert page["events"][0]["kind"] == "aborted"
    assert "error_rate" in page["events"][0]["reason"]
    listed = ops_views.rollouts_page(store)
    assert [row["id"] for row in listed["ended"]] == [record.id]
    assert listed["active"] == []


def test_the_buttons_follow_the_rollout_state() -> None:
    assert ops_views.actions_allowed("progressing") == ["promote", "pause", "abort"]
    assert ops_views.actions_allowed("paused") == ["promote", "resume", "abort"]
    assert ops_views.actions_allowed("aborted") == []
    assert ops_views.actions_allowed("promoted") == []


def _engine(store: Store, tmp_path: Path) -> AlertingEngine:
    return AlertingEngine(db=f"sqlite:///{tmp_path / 'alerts.db'}", clock=lambda: T0)


def test_a_backtest_raises_the_alerts_the_rules_would_have_raised(
    aborted: Simulation, store: Store, tmp_path: Path
) -> None:
    alerting = _engine(store, tmp_path)
    rules = f"""
rules:
  - name: CandidateErrors
    model: {MODEL}
    signal: error_rate
    version: "2"
    condition: "> 0.05"
    severity: critical
"""
    try:
        result = backtest.run(
            aborted.monitor, alerting, MODEL, start=T0, end=aborted.clock.now,
            rules_text=rules, now=aborted.clock.now,
        )  # fmt: skip
    finally:
        alerting.close()
    windows = aborted.monitor.window_samples(MODEL, start=T0, end=aborted.clock.now)
    assert result["windows"] == len(windows) > 0
    assert result["source"] == "pasted"
    assert result["fired"] >= 1
    first = result["alerts"][0]
    assert first["rule"] == "CandidateErrors"
    assert first["severity"] == "critical"
    assert first["labels"]["version"] == "2"
    assert first["value"] > 0.05
    # It fires at the end of a window whose candidate error rate is above 5 %.
    by_end = {
        w["end"]: s["value"]
        for w in windows
        for s in w["samples"]
        if s["labels"]["signal"] == "error_rate" and s["labels"]["version"] == "2"
    }
    assert by_end[first["fired_at"]] > 0.05
    assert all(value <= 0.05 for end, value in by_end.items() if end < first["fired_at"])
    ends = sorted(by_end)
    episodes = sum(
        1
        for i, end in enumerate(ends)
        if by_end[end] > 0.05 and (i == 0 or by_end[ends[i - 1]] <= 0.05)
    )
    assert result["fired"] == episodes
    assert result["timeline"]["data"][0]["y"][0].startswith("CandidateErrors")
    assert all(change["labels"]["version"] == "2" for change in result["transitions"])


def test_a_backtest_with_the_stored_rules_and_its_limits(
    aborted: Simulation, store: Store, tmp_path: Path
) -> None:
    alerting = _engine(store, tmp_path)
    monitor, now = aborted.monitor, aborted.clock.now
    try:
        alerting.apply_rules(
            backtest.parse_rule_text(
                f"- {{name: Quiet, model: {MODEL}, signal: error_rate, condition: '> 0.9'}}",
                monitor.signal_catalog(),
            )
        )
        stored = backtest.run(monitor, alerting, MODEL, start=T0, end=now, rules_text="", now=now)
        assert stored["source"] == "stored"
        assert [rule["name"] for rule in stored["rules"]] == ["Quiet"]
        assert stored["fired"] == 0
        assert stored["timeline"] is None

        def run(**options: Any) -> dict[str, Any]:
            settings = {"start": T0, "end": now, "rules_text": "", "now": now, **options}
            return backtest.run(monitor, alerting, MODEL, **settings)

        with pytest.raises(ConfigError, match="at most 90 days"):
            run(start=now - 91 * 86_400)
        with pytest.raises(ConfigError, match=r"rules\[0\]\.condition"):
            run(rules_text=f"rules:\n  - {{name: X, model: {MODEL}, signal: error_rate}}")
        with pytest.raises(ConfigError, match="error_rte"):
            run(rules_text=f"- {{name: X, model: {MODEL}, signal: error_rte, "
                "condition: '> 1'}")  # fmt: skip
        with pytest.raises(ConfigError, match="not valid YAML"):
            run(rules_text="rules: [")
        with pytest.raises(ConfigError, match="start: must be before end"):
            run(start=now + MINUTE, end=now + 2 * MINUTE)
        with pytest.raises(NotFoundError):
            backtest.run(monitor, alerting, "nope", start=T0, end=now, rules_text="", now=now)
        # One at a time: a second click while one runs is refused, not queued.
        assert backtest._ONE_AT_A_TIME.acquire(blocking=False)
        try:
            with pytest.raises(ConflictError, match="already running"):
                run()
        finally:
            backtest._ONE_AT_A_TIME.release()
    finally:
        alerting.close()


def test_the_backtest_reads_the_windows_the_live_engine_reads(aborted: Simulation) -> None:
    """The samples of every closed window are those the live engine got from the feed."""
    monitor, now = aborted.monitor, aborted.clock.now
    live = {(w["start"], w["end"]): w["samples"] for w in monitor.changed_windows()}
    read = {
        (w["start"], w["end"]): w["samples"]
        for w in monitor.window_samples(MODEL, start=T0, end=now)
        if w["end"] <= now
    }
    assert len(read) >= 8
    assert read == live


def test_the_runs_page_shows_trigger_status_timings_and_the_gate(store: Store) -> None:
    service = MonitorService(store, settings=Settings(), clock=lambda: T0)
    config = {
        "name": "demand",
        "task": "regression",
        "features": {"x1": "numeric"},
        "retrain": {"trainer": "tests.retrain.trainers:fit", "margin": 0.01, "mode": "manual"},
    }
    try:
        service.register_model(ModelSpec.from_dict(config))
        base = {"model": "demand", "mode": "manual", "executor": "local", "as_of": T0,
                "max_attempts": 3}  # fmt: skip
        gate = {"metric": "r2", "test": "paired bootstrap", "rows": 400, "champion": 0.80,
                "candidate": 0.805, "improvement": 0.005, "p_value": 0.21,
                "interval": [-0.002, 0.012]}  # fmt: skip
        rejected = store.create_retrain_run(
            {**base, "status": "running", "trigger": {"kind": "schedule", "slot": "0 3 * * *"},
             "started_at": T0 + 5}, now=T0,
        )  # fmt: skip
        store.update_retrain_run(
            rejected,
            {"status": "rejected", "finished_at": T0 + 65, "gate": gate,
             "reason": "r2 did not improve by the margin"},
            now=T0 + 65,
        )  # fmt: skip
        waiting = store.create_retrain_run(
            {**base, "status": "awaiting_approval", "trigger": {"kind": "alert", "alert": "Decay"},
             "version": 2, "champion_version": 1,
             "gate": {**gate, "candidate": 0.85, "improvement": 0.05, "p_value": 0.001}},
            now=T0 + 100,
        )  # fmt: skip
        page = ops_views.runs_page(store, service)
    finally:
        service.close()
    assert [run["id"] for run in page["runs"]] == [waiting.id, rejected.id]
    newest, oldest = page["runs"]
    assert newest["status"] == "awaiting_approval"
    assert (newest["trigger_kind"], newest["trigger_detail"]) == ("alert", "alert Decay")
    assert newest["gate"]["passed"] is True
    assert newest["gate"]["effect"] == pytest.approx(0.05)
    assert oldest["trigger_kind"] == "schedule"
    assert oldest["took"] == pytest.approx(60.0)
    assert oldest["gate"] == {
        "metric": "r2",
        "champion": 0.80,
        "candidate": 0.805,
        "effect": 0.005,
        "interval": [-0.002, 0.012],
        "p_value": 0.21,
        "margin": 0.01,
        "passed": False,
    }
    assert ops_views.runs_page(store, service, model="other")["runs"] == []
