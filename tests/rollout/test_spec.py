"""The rollout spec: parsing, defaults, shorthand and errors that name the field."""

from __future__ import annotations

from typing import Any

import pytest

from watchkeeper.errors import ConfigError
from watchkeeper.rollout.spec import (
    AnalysisStep,
    PauseStep,
    Policy,
    SetWeightStep,
    parse_spec,
)
from watchkeeper.stats.decision import Direction, MarginKind


def base(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": "churn",
        "baseline": 3,
        "candidate": "challenger",
        "steps": [
            {"set_weight": 10},
            {"pause": {"duration": "10m"}},
            {"analysis": {"count": 3}},
            {"pause": {}},
            {"set_weight": 50},
        ],
        "analysis": {
            "interval": "1m",
            "initial_delay": "30s",
            "failure_limit": 2,
            "inconclusive": "continue",
            "no_data": "abort",
            "metrics": [
                {"signal": "error_rate"},
                {
                    "name": "acc",
                    "signal": "accuracy",
                    "condition": {"kind": "difference", "value": 0.02},
                    "min_samples": 200,
                },
                {
                    "signal": "outcome.click.rate",
                    "condition": {
                        "direction": "higher_is_better",
                        "kind": "relative",
                        "value": 0.05,
                    },
                },
            ],
        },
    }
    spec.update(changes)
    return spec


def test_full_spec_parses_and_round_trips() -> None:
    spec = parse_spec(base())
    assert spec.baseline == "3"
    assert spec.candidate == "challenger"
    assert spec.steps == (
        SetWeightStep(10),
        PauseStep(600.0),
        AnalysisStep(3),
        PauseStep(None),
        SetWeightStep(50),
    )
    analysis = spec.analysis
    assert (analysis.interval, analysis.initial_delay, analysis.failure_limit) == (60.0, 30.0, 2)
    assert analysis.inconclusive is Policy.CONTINUE
    assert analysis.no_data is Policy.ABORT
    assert analysis.srm_alpha == 0.001
    errors, accuracy, clicks = analysis.metrics
    assert errors.name == "error_rate"
    assert errors.condition.direction is Direction.LOWER_IS_BETTER
    assert errors.condition.kind is MarginKind.RELATIVE
    assert errors.condition.value == 0.1
    assert accuracy.condition.direction is Direction.HIGHER_IS_BETTER
    assert accuracy.min_samples == 200
    assert clicks.condition.direction is Direction.HIGHER_IS_BETTER
    assert parse_spec(spec.to_dict()) == spec


def test_shorthand_steps_up_to_max_weight() -> None:
    spec = parse_spec(base(steps=None, step_weight=30, max_weight=80))
    weights = [step.weight for step in spec.steps if isinstance(step, SetWeightStep)]
    assert weights == [30, 60, 80]
    assert all(isinstance(step, AnalysisStep) for step in spec.steps[1::2])


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"model": ""}, "model"),
        ({"candidate": 3}, "candidate"),
        ({"baseline": 0}, "baseline"),
        ({"steps": []}, "steps"),
        ({"step_weight": 10}, "steps"),
        ({"steps": [{"set_weight": 120}]}, "steps[0].set_weight"),
        (
            {"steps": [{"set_weight": 10}, {"pause": {"duration": "soon"}}]},
            "steps[1].pause.duration",
        ),
        ({"steps": [{"set_weight": 10}, {"wait": 1}]}, "steps[1]"),
        ({"steps": [{"pause": {}}]}, "steps"),
        ({"steps": None, "step_weight": 60, "max_weight": 50}, "step_weight"),
        ({"colour": "red"}, "spec.colour"),
        ({"steps": [{"set_weight": 0}, {"analysis": {}}, {"set_weight": 10}]}, "steps[1]"),
    ],
)
def test_errors_name_the_field(changes: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_spec(base(**changes))
    assert caught.value.key == key


@pytest.mark.parametrize(
    ("analysis", "key"),
    [
        ({"inconclusive": "retry"}, "analysis.inconclusive"),
        ({"no_data": "ignore"}, "analysis.no_data"),
        ({"srm_alpha": 0}, "analysis.srm_alpha"),
        ({"interval": 0}, "analysis.interval"),
        ({"failure_limit": -1}, "analysis.failure_limit"),
        (
            {"metrics": [{"signal": "outcome.revenue.mean"}]},
            "analysis.metrics[0].condition.direction",
        ),
        (
            {"metrics": [{"signal": "error_rate", "condition": {"kind": "ratio"}}]},
            "analysis.metrics[0].condition.kind",
        ),
        (
            {"metrics": [{"signal": "error_rate", "condition": {"kind": "threshold"}}]},
            "analysis.metrics[0].condition.value",
        ),
        (
            {"metrics": [{"signal": "accuracy", "condition": {"value": 1.5}}]},
            "analysis.metrics[0].condition.value",
        ),
        ({"metrics": [{"signal": "error_rate"}, {"signal": "error_rate"}]}, "analysis.metrics"),
        ({"lookback": "soon"}, "analysis.lookback"),
        ({"lookback": -60}, "analysis.lookback"),
        ({"interval": "5m", "lookback": "2m"}, "analysis.lookback"),
        (
            {"interval": "1m", "metrics": [{"signal": "error_rate", "lookback": "30s"}]},
            "analysis.metrics[0].lookback",
        ),
        (
            {"metrics": [{"signal": "error_rate", "lookback": True}]},
            "analysis.metrics[0].lookback",
        ),
    ],
)
def test_analysis_errors_name_the_field(analysis: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_spec(base(analysis=analysis))
    assert caught.value.key == key


def test_an_analysis_step_needs_metrics() -> None:
    with pytest.raises(ConfigError, match="needs metrics"):
        parse_spec(base(analysis={}))


def test_lookback_defaults_to_ten_intervals_and_round_trips() -> None:
    analysis = parse_spec(base()).analysis
    assert analysis.lookback is None
    assert [analysis.lookback_of(metric) for metric in analysis.metrics] == [600.0] * 3
    many_windows = parse_spec(base(analysis={**base()["analysis"], "min_windows": 8})).analysis
    assert many_windows.default_lookback() == 16 * 60.0
    given = base()
    given["analysis"]["lookback"] = "20m"
    given["analysis"]["metrics"][1]["lookback"] = "1h"
    spec = parse_spec(given)
    assert [spec.analysis.lookback_of(m) for m in spec.analysis.metrics] == [1200.0, 3600.0, 1200.0]
    assert spec.to_dict()["analysis"]["lookback"] == 1200.0
    assert parse_spec(spec.to_dict()) == spec
    assert "lookback" not in parse_spec(base()).to_dict()["analysis"]


def test_a_lookback_shorter_than_the_interval_says_why() -> None:
    with pytest.raises(ConfigError, match=r"at least analysis.interval \(5m\), got 2m"):
        parse_spec(base(analysis={**base()["analysis"], "interval": "5m", "lookback": "2m"}))
