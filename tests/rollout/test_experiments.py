"""Experiments in process (routing on SQLite and PostgreSQL): the spec's checks, the routing set
and restored, the looks behind the always-valid results, and the error rates of both methods by
simulation through ``analyse``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from watchkeeper.config import Settings
from watchkeeper.errors import ConfigError, ConflictError
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor import MonitorService
from watchkeeper.registry import ArtifactStore, Registry
from watchkeeper.rollout.experiment_analysis import analyse, cumulative_looks
from watchkeeper.rollout.experiment_spec import parse_experiment
from watchkeeper.rollout.experiments import Experiments
from watchkeeper.rollout.metrics import summarize
from watchkeeper.serving import PredictionLog, Serving
from watchkeeper.stats.experiments import compare
from watchkeeper.stats.sequential import sequential_compare
from watchkeeper.store import Store
from watchkeeper.store.rollouts import NewRolloutEvent

MODEL = "demand"


def spec(**changes: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "arms": [{"name": "a", "version": 1}, {"name": "b", "version": 2}],
        "metrics": ["error_rate"],
        **changes,
    }


# ---------------------------------------------------------------- the spec


def test_spec_defaults() -> None:
    parsed = parse_experiment(spec(arms=[{"version": 1}, {"version": 2}, {"version": "beta"}]))
    assert [(arm.name, arm.weight) for arm in parsed.arms] == [("v1", 34), ("v2", 33), ("beta", 33)]
    assert parsed.control.name == "v1"
    [metric] = parsed.metrics
    assert (metric.name, metric.direction, metric.min_samples) == (
        "error_rate",
        parsed.metrics[0].direction,
        100,
    )
    assert metric.direction is not None
    assert metric.direction.value == "lower_is_better"
    windowed = parse_experiment(spec(metrics=["latency_p99", "outcome.buy.rate"]))
    assert [m.min_samples for m in windowed.metrics] == [5, 100]
    assert windowed.metrics[1].direction is None
    assert parse_experiment(parsed.to_dict()) == parsed


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"arms": [{"version": 1}]}, "arms"),
        ({"arms": [{"version": 1, "weight": 50}, {"version": 2}]}, "arms[1].weight"),
        ({"arms": [{"version": 1, "weight": 100}, {"version": 2, "weight": 0}]}, "arms[1].weight"),
        ({"arms": [{"version": 1, "weight": 70}, {"version": 2, "weight": 70}]}, "arms"),
        (
            {"arms": [{"version": 1, "weight": 50.5}, {"version": 2, "weight": 49.5}]},
            "arms[0].weight",
        ),
        ({"arms": [{"name": "x", "version": 1}, {"name": "x", "version": 2}]}, "arms[1].name"),
        ({"arms": [{"version": 1}, {"version": 1}]}, "arms[1].version"),
        ({"arms": [{"version": 0}, {"version": 1}]}, "arms[0].version"),
        ({"arms": [{"name": "bad name!", "version": 1}, {"version": 2}]}, "arms[0].name"),
        ({"metrics": []}, "metrics"),
        ({"metrics": ["error_rate", {"signal": "error_rate"}]}, "metrics[1].name"),
        ({"metrics": [{"signal": "error_rate", "direction": "up"}]}, "metrics[0].direction"),
        ({"metrics": [{"signal": "error_rate", "min_samples": 1}]}, "metrics[0].min_samples"),
        ({"alpha": 0.7}, "alpha"),
        ({"alpha": "0.05"}, "alpha"),
        ({"srm_alpha": 0}, "srm_alpha"),
        ({"method": "bayes"}, "method"),
        ({"tuning_samples": 0}, "tuning_samples"),
        ({"model": ""}, "model"),
    ],
)
def test_spec_errors_name_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_experiment(spec(**changes))
    assert raised.value.key == field
    assert str(raised.value).startswith(f"{field}:")


# ---------------------------------------------------------------- routing


def _linear(slope: float) -> LinearRegression:
    frame = pd.DataFrame({"x1": [0.0, 1.0, 2.0, 3.0], "x2": [1.0, 0.0, 1.0, 0.0]})
    return LinearRegression().fit(frame, slope * frame["x1"] + frame["x2"])


class Setup:
    def __init__(self, url: str, root: Path) -> None:
        self.store = Store.open(url)
        registry = Registry(self.store, ArtifactStore(root / "artifacts"))
        for slope in (1.0, 1.1, 1.2):
            registry.register(MODEL, _linear(slope), registered_by="ana")
        registry.set_alias(MODEL, "champion", 1, moved_by="ana", reason="first")
        self.monitor = MonitorService(self.store, settings=Settings())
        self.monitor.start()
        self.monitor.register_model(
            ModelSpec.from_dict(
                {"name": MODEL, "task": "regression", "features": {"x1": "numeric"}}
            )
        )
        self.serving = Serving(
            registry=registry, monitor=self.monitor, log=PredictionLog(self.monitor)
        )
        self.experiments = Experiments(store=self.store, monitor=self.monitor, serving=self.serving)

    def routing(self) -> dict[str, Any] | None:
        record = self.serving.routing(MODEL)
        return None if record is None else dict(record.config)

    def close(self) -> None:
        self.serving.close()
        self.monitor.close()
        self.store.close()


@pytest.fixture
def setup(store_url: str, tmp_path: Path) -> Iterator[Setup]:
    """On both real stores (tests/rollout/conftest.py): SQLite and PostgreSQL."""
    opened = Setup(store_url, tmp_path)
    yield opened
    opened.close()


def test_stop_restores_the_routing_it_replaced(setup: Setup) -> None:
    before = {
        "arms": [{"name": "champion", "alias": "champion", "weight": 1.0}],
        "shadow": {"version": 3, "fraction": 0.1},
        "salt": "s",
    }
    setup.serving.set_routing(MODEL, before, changed_by="ana")
    kept = setup.routing()
    record = setup.experiments.create(
        spec(
            arms=[
                {"name": "a", "version": "champion", "weight": 80},
                {"name": "b", "version": 3, "weight": 20},
            ]
        )
    )
    assert [arm["version"] for arm in record.spec["arms"]] == ["1", "3"]
    routing = setup.routing()
    assert routing is not None
    assert [(a["name"], a["version"], a["weight"]) for a in routing["arms"]] == [
        ("a", 1, 80.0),
        ("b", 3, 20.0),
    ]
    assert routing["sticky"] is True
    assert routing["salt"].startswith("experiment-")
    assert routing["shadow"] is None
    with pytest.raises(ConflictError, match="already has experiment"):
        setup.experiments.create(spec())
    stopped = setup.experiments.stop(record.id, by="ana", reason="enough")
    assert stopped.reason == "stopped by ana: enough; routing restored"
    assert setup.routing() == kept
    with pytest.raises(ConflictError, match="already stopped"):
        setup.experiments.stop(record.id)
    second = setup.experiments.create(spec())
    assert second.previous_routing == kept
    assert second.routing_revision == setup.serving.routing(MODEL).revision  # type: ignore[union-attr]


def test_a_routing_changed_after_the_start_is_left_as_it_is(setup: Setup) -> None:
    record = setup.experiments.create(spec())
    changed = {"arms": [{"name": "only", "version": 2, "weight": 1.0}]}
    setup.serving.set_routing(MODEL, changed, changed_by="bo")
    now = setup.routing()
    stopped = setup.experiments.stop(record.id)
    assert "left as it is" in stopped.reason
    assert setup.routing() == now


def test_an_active_rollout_owns_the_routing(setup: Setup) -> None:
    fields = {
        "model": MODEL, "baseline": "1", "candidate": "2", "spec": {}, "state": "paused",
        "step_index": 0, "step_started_at": 0.0, "analysis_since": 0.0, "looks": 0,
        "next_analysis_at": None, "weights": {"1": 100}, "failures": 0, "reason": "",
        "created_by": "ana",
    }  # fmt: skip
    setup.store.create_rollout(fields, NewRolloutEvent(0.0, "started", "", {}))
    with pytest.raises(ConflictError, match="rollout"):
        setup.experiments.create(spec())
    assert setup.routing() is None


def test_unknown_versions_and_signals_name_the_field(setup: Setup) -> None:
    with pytest.raises(ConfigError) as raised:
        setup.experiments.create(spec(arms=[{"version": "champion"}, {"version": "beta"}]))
    assert raised.value.key == "arms[1].version"
    assert "1, 2, 3, champion" in str(raised.value)
    with pytest.raises(ConfigError) as raised:
        setup.experiments.create(spec(arms=[{"version": "champion"}, {"version": 1}]))
    assert raised.value.key == "arms[1].version"
    with pytest.raises(ConfigError) as raised:
        setup.experiments.create(spec(metrics=["error_rate", "outcome.buy.rate"]))
    assert raised.value.key == "metrics[1].signal"
    assert setup.routing() is None


# ---------------------------------------------------------------- looks and error rates


def rate_windows(
    rng: np.random.Generator, rate: float, count: int, size: int = 100
) -> list[dict[str, Any]]:
    windows = []
    for index in range(count):
        errors = int(rng.binomial(size, rate))
        windows.append(
            {"start": 60.0 * index, "count": size, "signals": {"error_rate": errors / size}}
        )
    return windows


def test_the_last_look_is_the_comparison_of_all_windows() -> None:
    rng = np.random.default_rng(7)
    treatment, control = rate_windows(rng, 0.06, 30), rate_windows(rng, 0.04, 30)
    del control[3]  # an arm may miss a window
    last = cumulative_looks(
        "error_rate", treatment, control, alpha=0.05, tuning_samples=5000, min_samples=100
    )
    assert last is not None
    first, second = summarize("error_rate", treatment), summarize("error_rate", control)
    once = sequential_compare(first, second, alpha=0.05, tuning_samples=5000)
    assert last.looks == 30
    assert last.difference == pytest.approx(compare(first, second).difference, rel=1e-12)
    assert last.p_value <= once.p_value  # the running minimum over the looks
    assert once.ci_low <= last.ci_low <= last.ci_high <= once.ci_high  # intersected
    ratings = [
        {"start": 60.0 * i, "count": 50, "signals": {"latency_p99": float(v)}}
        for i, v in enumerate(rng.gamma(5.0, 20.0, size=12))
    ]
    looked = cumulative_looks(
        "latency_p99", ratings, ratings[::-1], alpha=0.05, tuning_samples=100, min_samples=5
    )
    assert looked is not None
    assert looked.difference == pytest.approx(0.0, abs=1e-9)


def test_error_rates_of_both_methods_by_simulation() -> None:
    """A/A tests of 40 windows of 100 events per arm, 400 times: the always-valid verdict
    (whatever the looks) is significant at most alpha of the time; the fixed-horizon test is at
    alpha looked at once, and far above it when looked at after every window."""
    rng = np.random.default_rng(11)
    always_valid = parse_experiment(spec())
    fixed = parse_experiment(spec(method="fixed"))
    runs, always, once, peeking = 400, 0, 0, 0
    for _ in range(runs):
        windows = {"a": rate_windows(rng, 0.05, 40), "b": rate_windows(rng, 0.05, 40)}
        always += analyse(always_valid, windows)["metrics"][0]["comparisons"][0]["significant"]
        once += analyse(fixed, windows)["metrics"][0]["comparisons"][0]["significant"]
        errors = np.cumsum(
            [[round(w["signals"]["error_rate"] * 100) for w in windows[arm]] for arm in "ba"],
            axis=1,
        )
        peeking += any(
            compare(*(summary(errors[arm][look], 100 * (look + 1)) for arm in (0, 1))).p_value
            < 0.05
            for look in range(40)
        )
    assert always / runs <= 0.05
    assert 0.02 <= once / runs <= 0.08
    assert peeking / runs > 0.15


def summary(successes: int, trials: int) -> Any:
    from watchkeeper.stats.experiments import ProportionSummary

    return ProportionSummary(int(successes), trials)


def test_accuracy_and_outcome_means_match_scipy() -> None:
    """Accuracy from joined labels is a rate over labelled rows; an outcome's mean is pooled
    from the windows' moments: both compared as SciPy compares the raw values."""
    from scipy import stats

    rng = np.random.default_rng(3)
    raw: dict[str, dict[str, list[float]]] = {"a": {"c": [], "r": []}, "b": {"c": [], "r": []}}
    windows: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
    for arm, (accuracy, revenue) in {"a": (0.80, 20.0), "b": (0.84, 23.0)}.items():
        for index in range(12):
            correct = rng.uniform(size=90) < accuracy
            values = rng.exponential(revenue, size=40)
            raw[arm]["c"] += correct.tolist()
            raw[arm]["r"] += values.tolist()
            signals = {
                "labeled_count": 90.0,
                "accuracy": float(correct.mean()),
                "outcome.revenue.count": 40.0,
                "outcome.revenue.mean": float(values.mean()),
                "outcome.revenue.std": float(values.std(ddof=1)),
            }
            windows[arm].append({"start": 60.0 * index, "count": 100, "signals": signals})
    parsed = parse_experiment(
        spec(
            method="fixed",
            metrics=[
                "accuracy",
                {"signal": "outcome.revenue.mean", "direction": "higher_is_better"},
            ],
        )
    )
    accuracy, revenue = analyse(parsed, windows)["metrics"]
    assert [arm["n"] for arm in accuracy["arms"]] == [1080, 1080]
    assert [arm["n"] for arm in revenue["arms"]] == [480, 480]
    hits = [int(sum(raw[arm]["c"])) for arm in "ba"]
    table = [[hits[0], 1080 - hits[0]], [hits[1], 1080 - hits[1]]]
    compared = accuracy["comparisons"][0]
    assert compared["p_value"] == pytest.approx(
        stats.chi2_contingency(table, correction=False).pvalue, rel=1e-9
    )
    welch = stats.ttest_ind(raw["b"]["r"], raw["a"]["r"], equal_var=False)
    compared = revenue["comparisons"][0]
    assert compared["fixed_horizon"]["statistic"] == pytest.approx(welch.statistic, rel=1e-9)
    assert compared["p_value"] == pytest.approx(welch.pvalue, rel=1e-9)
    assert revenue["arms"][1]["estimate"] == pytest.approx(np.mean(raw["b"]["r"]), rel=1e-12)
    assert revenue["arms"][1]["std"] == pytest.approx(np.std(raw["b"]["r"], ddof=1), rel=1e-9)
    # Looks start once both arms have min_samples (100) outcomes: at the third window.
    assert compared["always_valid"]["looks"] == 10
