"""One look's judged range: the recent ``lookback``, widened while an arm is too thin, and a
running minimum carried only over looks that judge the same range."""

from __future__ import annotations

from typing import Any

import pytest

from watchkeeper.rollout.analysis import judged_range, look, period_state
from watchkeeper.rollout.spec import MetricSpec, parse_spec
from watchkeeper.stats.decision import Condition, Direction, MarginKind
from watchkeeper.stats.experiments import ProportionSummary
from watchkeeper.store.rollouts import RolloutMeasurementRecord, RolloutRecord

MINUTE = 60.0
NOW = 120 * MINUTE
ERRORS = MetricSpec(
    name="error_rate",
    signal="error_rate",
    condition=Condition(Direction.LOWER_IS_BETTER, MarginKind.DIFFERENCE, 0.01),
)


def windows(per_minute: int, rates: list[float]) -> list[dict[str, Any]]:
    """One window a minute from minute 0, with ``per_minute`` events at each minute's rate."""
    return [
        {"start": minute * MINUTE, "count": per_minute, "signals": {"error_rate": rate}}
        for minute, rate in enumerate(rates)
    ]


def test_the_range_is_the_recent_lookback_when_both_arms_have_enough() -> None:
    # 110 healthy minutes, then 10 bad ones: the range holds only the bad ones.
    candidate = windows(400, [0.01] * 110 + [0.05] * 10)
    baseline = windows(1600, [0.01] * 120)
    judged = judged_range(
        ERRORS, candidate, baseline, since=0.0, now=NOW, lookback=10 * MINUTE, min_samples=500
    )
    assert judged.start == NOW - 10 * MINUTE
    assert judged.candidate == ProportionSummary(successes=200, trials=4000)
    assert judged.baseline == ProportionSummary(successes=160, trials=16_000)


def test_a_thin_range_doubles_back_until_each_arm_has_the_minimum() -> None:
    candidate = windows(30, [0.01] * 120)  # 300 in 10 minutes, 600 in 20
    baseline = windows(1000, [0.01] * 120)
    judged = judged_range(
        ERRORS, candidate, baseline, since=0.0, now=NOW, lookback=10 * MINUTE, min_samples=500
    )
    assert judged.start == NOW - 20 * MINUTE
    assert judged.candidate.count == 600


def test_too_thin_everywhere_is_the_whole_period_and_stays_inconclusive() -> None:
    candidate = windows(2, [0.5] * 120)
    baseline = windows(1000, [0.01] * 120)
    judged = judged_range(
        ERRORS, candidate, baseline, since=0.0, now=NOW, lookback=10 * MINUTE, min_samples=500
    )
    assert (judged.start, judged.candidate.count) == (0.0, 240)


def test_a_threshold_needs_only_the_candidate_arm() -> None:
    threshold = MetricSpec(
        name="errors",
        signal="error_rate",
        condition=Condition(Direction.LOWER_IS_BETTER, MarginKind.THRESHOLD, 0.02),
    )
    candidate = windows(100, [0.01] * 120)
    judged = judged_range(
        threshold, candidate, [], since=0.0, now=NOW, lookback=10 * MINUTE, min_samples=500
    )
    assert judged.start == NOW - 10 * MINUTE


class Monitor:
    def __init__(self, stored: dict[str, list[dict[str, Any]]]) -> None:
        self.stored = stored

    def windows(
        self, model: str, *, start: float, end: float, version: str | None = None
    ) -> list[dict[str, Any]]:
        assert version is not None
        return [w for w in self.stored[version] if start <= w["start"] < end]


def record(spec: dict[str, Any], since: float = 0.0) -> RolloutRecord:
    return RolloutRecord(
        id=1,
        model="m",
        baseline="1",
        candidate="2",
        spec=spec,
        state="progressing",
        step_index=1,
        step_started_at=0.0,
        analysis_since=since,
        looks=0,
        next_analysis_at=None,
        weights={"1": 80, "2": 20},
        failures=0,
        reason="",
        created_by="test",
        created_at=0.0,
        updated_at=0.0,
        revision=1,
    )


SPEC = {
    "model": "m",
    "baseline": "1",
    "candidate": "2",
    "steps": [{"set_weight": 20}, {"pause": {}}],
    "analysis": {
        "interval": "1m",
        "min_samples": 500,
        "metrics": [{"signal": "error_rate", "condition": {"kind": "difference", "value": 0.01}}],
    },
}


def stored(found: Any, at: float) -> list[RolloutMeasurementRecord]:
    return [
        RolloutMeasurementRecord(i, 1, m.step_index, at, m.metric, m.outcome, m.values)
        for i, m in enumerate(found.measurements)
    ]


@pytest.mark.parametrize(("minutes", "carried"), [(10, True), (30, False)])
def test_the_running_minimum_is_carried_only_over_the_same_range(
    minutes: int, carried: bool
) -> None:
    """A failure at one look must not stick to a later look that judges other traffic."""
    spec = parse_spec(SPEC)
    rates = [0.08] * 5 + [0.01] * 115  # bad for five minutes, then healthy
    monitor = Monitor({"1": windows(1600, [0.01] * 120), "2": windows(400, rates)})
    first = look(monitor, record(SPEC), spec, 5 * MINUTE, previous={}, srm_looks=0)
    assert first.measurements[1].outcome == "failure"
    assert first.measurements[1].values["range_start"] == 0.0
    previous, checks = period_state(spec, stored(first, 5 * MINUTE))
    assert checks == 1
    later = look(monitor, record(SPEC), spec, minutes * MINUTE, previous=previous, srm_looks=1)
    measured = later.measurements[1]
    expected_start = 0.0 if carried else (minutes - 10) * MINUTE
    assert measured.values["range_start"] == expected_start
    # Over the period (range start 0) the failure's running minimum carries on; over the last
    # ten healthy minutes it does not.
    assert (measured.outcome == "failure") is carried


def test_a_new_weight_does_not_continue_the_last_verdict_of_the_previous_one() -> None:
    """The look that completes a step is stored at the instant the next weight is set, so it
    is among the new period's measurements; its evidence is about the other split."""
    spec = parse_spec(SPEC)
    rates = [0.08] * 10 + [0.01] * 110  # bad at the first weight only
    monitor = Monitor({"1": windows(1600, [0.01] * 120), "2": windows(400, rates)})
    last = look(monitor, record(SPEC), spec, 10 * MINUTE, previous={}, srm_looks=0)
    assert last.measurements[1].outcome == "failure"
    previous, _ = period_state(spec, stored(last, 10 * MINUTE))
    at_new_weight = record(SPEC, since=10 * MINUTE)
    first = look(monitor, at_new_weight, spec, 15 * MINUTE, previous=previous, srm_looks=0)
    assert first.measurements[1].values["range_start"] == 10 * MINUTE
    assert first.measurements[1].outcome != "failure"
