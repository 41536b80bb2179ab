"""The controller driving the real router in process: routing configs move with the steps,
predictions are logged per version, and a bad candidate is rolled back with no failed request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from tests.rollout.sim import T0, Clock
from watchkeeper.config import Settings
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor import MonitorService
from watchkeeper.registry import ArtifactStore, Registry
from watchkeeper.rollout.controller import RolloutController
from watchkeeper.rollout.router import ServingTraffic
from watchkeeper.serving import PredictionLog, PredictRequest, RoutingConfig, Serving
from watchkeeper.store import Store

MODEL = "demand"


def _linear(slope: float) -> LinearRegression:
    frame = pd.DataFrame({"x1": [0.0, 1.0, 2.0, 3.0], "x2": [1.0, 0.0, 1.0, 0.0]})
    return LinearRegression().fit(frame, slope * frame["x1"] + frame["x2"])


class Setup:
    def __init__(self, root: Path) -> None:
        self.clock = Clock(T0)
        self.store = Store.open(f"sqlite:///{root / 'wk.db'}")
        self.registry = Registry(self.store, ArtifactStore(root / "artifacts"))
        self.registry.register(MODEL, _linear(1.0), registered_by="ana")
        self.registry.register(MODEL, _linear(1.05), registered_by="ana")
        self.registry.register(MODEL, _linear(3.0), registered_by="ana")
        self.registry.set_alias(MODEL, "champion", 1, moved_by="ana", reason="first")
        self.monitor = MonitorService(
            self.store,
            settings=Settings(max_event_age_seconds=30 * 86_400, max_event_future_seconds=7200),
            clock=self.clock,
        )
        self.monitor.start()
        self.monitor.register_model(
            ModelSpec.from_dict(
                {
                    "name": MODEL,
                    "task": "regression",
                    "features": {"x1": "numeric", "x2": "numeric"},
                    "windows": [60],
                }
            )
        )
        self.log = PredictionLog(self.monitor)
        self.serving = Serving(
            registry=self.registry, monitor=self.monitor, log=self.log, clock=self.clock
        )
        self.traffic = ServingTraffic(self.serving)
        self.controller = RolloutController(
            store=self.store, monitor=self.monitor, traffic=self.traffic, clock=self.clock
        )
        self.rng = np.random.default_rng(0)
        self.answered: list[tuple[float, int]] = []
        self.pending: list[tuple[float, list[dict[str, Any]]]] = []

    def minute(self) -> None:
        """Ten requests of 20 rows, their true values five minutes later, then the ticks."""
        start = self.clock.now
        labels: list[dict[str, Any]] = []
        for call in range(10):
            self.clock.now = start + 6.0 * call
            x1 = self.rng.uniform(0, 3, size=20)
            x2 = self.rng.uniform(0, 1, size=20)
            rows = [{"x1": float(a), "x2": float(b)} for a, b in zip(x1, x2, strict=True)]
            answers = self.serving.predict(MODEL, PredictRequest.from_rows(rows))
            assert len(answers) == len(rows)
            self.answered += [(self.clock.now, answer.version) for answer in answers]
            truth = x1 + x2 + self.rng.normal(0, 0.3, size=20)
            labels += [
                {"id": answer.id, "label": float(value)}
                for answer, value in zip(answers, truth, strict=True)
            ]
        self.log.flush()
        self.pending.append((start + 300.0, labels))
        self.clock.now = start + 60.0
        due = [batch for at, batch in self.pending if at <= self.clock.now]
        self.pending = [(at, batch) for at, batch in self.pending if at > self.clock.now]
        for batch in due:
            self.monitor.ingest_labels(MODEL, batch)
        self.monitor.tick()
        self.controller.tick()

    def close(self) -> None:
        self.serving.close()
        self.monitor.close()
        self.store.close()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    opened = Setup(tmp_path)
    yield opened
    opened.close()


def rollout(candidate: int) -> dict[str, Any]:
    return {
        "model": MODEL,
        "baseline": "champion",
        "candidate": candidate,
        "steps": [
            {"set_weight": 25},
            {"analysis": {"count": 10}},
            {"set_weight": 50},
            {"analysis": {"count": 10}},
        ],
        "analysis": {
            "interval": "2m",
            "min_windows": 4,
            "metrics": [
                {
                    "signal": "mae",
                    "condition": {"direction": "lower_is_better", "kind": "relative", "value": 0.5},
                }
            ],
        },
    }


def run(setup: Setup, rollout_id: int, minutes: int) -> str:
    for _ in range(minutes):
        setup.minute()
        state = setup.store.rollout(rollout_id).state
        if state != "progressing":
            return state
    return setup.store.rollout(rollout_id).state


def test_a_bad_candidate_behind_the_router_is_rolled_back(setup: Setup) -> None:
    record = setup.controller.start(rollout(3))
    assert (record.baseline, record.candidate) == ("1", "3")
    assert setup.traffic.split(MODEL) == {"1": 75, "3": 25}
    assert run(setup, record.id, minutes=30) == "aborted"
    final = setup.store.rollout(record.id)
    assert "mae" in final.reason
    assert setup.traffic.split(MODEL) == {"1": 100, "3": 0}
    routing = RoutingConfig.from_dict(setup.serving.routing(MODEL).config)  # type: ignore[union-attr]
    assert [(arm.name, arm.weight) for arm in routing.arms] == [("champion", 100.0), ("v3", 0.0)]
    aborted_at = setup.store.rollout_events(record.id)[-1].at
    # Every request was answered, before and after the switch; afterwards only by the baseline.
    before = {version for at, version in setup.answered if at < aborted_at - 60}
    assert before == {1, 3}
    for _ in range(2):
        setup.minute()
    after = {version for at, version in setup.answered if at >= aborted_at}
    assert after == {1}
    changes = setup.serving.routing_history(MODEL)
    assert {change.changed_by for change in changes} == {"rollout"}


def test_a_good_candidate_behind_the_router_is_promoted(setup: Setup) -> None:
    record = setup.controller.start(rollout(2))
    assert run(setup, record.id, minutes=60) == "promoted"
    assert setup.traffic.split(MODEL) == {"2": 100}  # champion now points to 2 as well
    setup.minute()
    assert setup.answered[-1][1] == 2
    assert setup.registry.alias_version(MODEL, "champion") == 2
    move = setup.store.alias_moves(MODEL, "champion")[0]
    assert (move.from_version, move.to_version, move.moved_by) == (1, 2, "rollout")
    promoted = setup.store.rollout_events(record.id)[-1]
    assert promoted.details["alias"] == {"champion": 2}
