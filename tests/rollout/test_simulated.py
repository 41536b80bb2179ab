"""The controller over a simulated monitor: thousands of looks in seconds, for business
outcomes and for the rate of wrong verdicts on a candidate that is as good as the baseline."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from watchkeeper.rollout.controller import RolloutController
from watchkeeper.rollout.traffic import InMemoryTraffic
from watchkeeper.store import Store

MINUTE = 60.0
SIGNALS = [
    "count",
    "error_rate",
    "outcome.click.count",
    "outcome.click.rate",
    "outcome.revenue.count",
    "outcome.revenue.mean",
    "outcome.revenue.std",
]


@dataclass
class Arm:
    error_rate: float = 0.02
    click_rate: float = 0.10
    revenue: float = 20.0


class SimulatedMonitor:
    """Per-version windows of one minute, drawn from each version's behaviour and the split."""

    def __init__(self, traffic: InMemoryTraffic, arms: dict[str, Arm], seed: int) -> None:
        self.traffic = traffic
        self.arms = arms
        self.rng = np.random.default_rng(seed)
        self.stored: dict[str, list[dict[str, Any]]] = {version: [] for version in arms}

    def signal_names(self, model: str) -> list[str]:
        return SIGNALS

    def windows(
        self, model: str, *, start: float, end: float, version: str | None = None
    ) -> list[dict[str, Any]]:
        assert version is not None
        return [w for w in self.stored[version] if start <= w["start"] < end]

    def serve(self, start: float, requests: int) -> None:
        split = self.traffic.split("m")
        versions = sorted(split)
        counts = self.rng.multinomial(requests, [split[v] / 100 for v in versions])
        for version, count in zip(versions, counts, strict=True):
            arm = self.arms[version]
            errors = self.rng.binomial(count, arm.error_rate)
            clicks = self.rng.binomial(count, arm.click_rate)
            revenue = self.rng.exponential(arm.revenue, size=clicks)
            signals = {
                "count": float(count),
                "error_rate": errors / count if count else None,
                "outcome.click.count": float(count),
                "outcome.click.rate": clicks / count if count else None,
                "outcome.revenue.count": float(clicks),
                "outcome.revenue.mean": float(revenue.mean()) if clicks else None,
                "outcome.revenue.std": float(revenue.std(ddof=1)) if clicks > 1 else None,
            }
            self.stored[version].append(
                {"start": start, "end": start + MINUTE, "count": int(count), "signals": signals}
            )


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_040.0

    def __call__(self) -> float:
        return self.now


def spec(*metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": "m",
        "baseline": "1",
        "candidate": "2",
        "steps": [
            {"set_weight": 20},
            {"analysis": {"count": 10}},
            {"set_weight": 50},
            {"analysis": {"count": 10}},
        ],
        "analysis": {
            "interval": "1m",
            "failure_limit": 0,
            "min_samples": 1000,
            "metrics": list(metrics),
        },
    }


ERRORS = {"signal": "error_rate", "condition": {"kind": "difference", "value": 0.01}}
CLICKS = {
    "name": "clicks",
    "signal": "outcome.click.rate",
    "condition": {"direction": "higher_is_better", "kind": "relative", "value": 0.05},
}
REVENUE = {
    "name": "revenue",
    "signal": "outcome.revenue.mean",
    "condition": {"direction": "higher_is_better", "kind": "relative", "value": 0.1},
    "min_samples": 300,
}


@pytest.fixture
def store() -> Iterator[Store]:
    with Store.open("sqlite://") as opened:
        yield opened


def run(store: Store, arms: dict[str, Arm], seed: int, requests: int, minutes: int) -> str:
    traffic = InMemoryTraffic()
    traffic.set_split("m", {"1": 100})
    monitor = SimulatedMonitor(traffic, arms, seed)
    clock = Clock()
    controller = RolloutController(store=store, monitor=monitor, traffic=traffic, clock=clock)
    record = controller.start(spec(ERRORS, CLICKS, REVENUE))
    for _ in range(minutes):
        monitor.serve(clock.now, requests)
        clock.now += MINUTE
        controller.tick()
        if store.rollout(record.id).state != "progressing":
            break
    final = store.rollout(record.id)
    if final.state == "paused":
        controller.abort(record.id, reason="end of the simulation")
    return final.state if final.state == "promoted" else f"{final.state}: {final.reason}"


@pytest.mark.parametrize(
    ("candidate", "metric"),
    [(Arm(click_rate=0.08), "clicks"), (Arm(revenue=16.0), "revenue")],
    ids=["fewer-clicks", "less-revenue"],
)
def test_a_worse_business_outcome_is_rolled_back(store: Store, candidate: Arm, metric: str) -> None:
    ended = run(store, {"1": Arm(), "2": candidate}, seed=1, requests=2000, minutes=40)
    assert ended.startswith("aborted")
    assert metric in ended


def test_an_equal_candidate_is_almost_never_rolled_back(store: Store) -> None:
    """A/A: 200 rollouts of a candidate identical to the baseline (20,000 requests a minute),
    three metrics, two weights, up to 20 looks each with no failure tolerated: a rollback here
    is a wrong verdict. Always-valid verdicts with the running minimum keep them rare however
    often the controller looks."""
    endings = [
        run(store, {"1": Arm(), "2": Arm()}, seed=seed, requests=20_000, minutes=30)
        for seed in range(200)
    ]
    states = Counter(ending.split(":")[0] for ending in endings)
    # Measured: 0 aborted, 41 promoted, 159 paused (all inconclusive: a 5 %
    # margin on a 10 % click rate needs more traffic than 20 minutes at these weights give;
    # pausing is the safe end). 68 were promoted while a new weight's first look continued
    # from the previous weight's last verdict, evidence about another split.
    assert states["aborted"] <= 4  # at most 2 %
    assert states["promoted"] >= 40
    assert states["promoted"] + states["paused"] + states["aborted"] == 200
    # The SRM check spends srm_alpha over the looks of a period (measured: 0 of 200 healthy
    # rollouts paused by it; 1 of 200 when every look tested at 0.001).
    srm = [e for e in endings if "sample ratio mismatch" in e]
    assert len(srm) <= 4
    assert all("inconclusive" in e for e in endings if e.startswith("paused") and e not in srm)


def stay(
    store: Store, seed: int, *, minutes: int, onset: int | None, **analysis: Any
) -> int | None:
    """20 % of 2,000 requests a minute on the candidate for ``minutes`` (one pause step), its
    error rate 2 % → 6 % from minute ``onset``: the minutes from the onset to the rollback
    (from the start without an onset), or None when it was not rolled back."""
    traffic = InMemoryTraffic()
    traffic.set_split("m", {"1": 100})
    candidate = Arm()
    monitor = SimulatedMonitor(traffic, {"1": Arm(), "2": candidate}, seed)
    clock = Clock()
    controller = RolloutController(store=store, monitor=monitor, traffic=traffic, clock=clock)
    long_stay = {
        "model": "m",
        "baseline": "1",
        "candidate": "2",
        "steps": [{"set_weight": 20}, {"pause": {"duration": f"{minutes + 1}m"}}],
        "analysis": {"interval": "1m", "failure_limit": 1, "min_samples": 500, **analysis},
    }
    long_stay["analysis"]["metrics"] = [ERRORS]
    record = controller.start(long_stay)
    for minute in range(minutes):
        if minute == onset:
            candidate.error_rate = 0.06
        monitor.serve(clock.now, 2000)
        clock.now += MINUTE
        controller.tick()
        if store.rollout(record.id).state == "aborted":
            return minute + 1 - (onset or 0)
    controller.abort(record.id, reason="end of the simulation")
    return None


def test_a_late_degradation_is_judged_on_recent_traffic(store: Store) -> None:
    """After two healthy hours at one weight, the default lookback (ten looks) rolls back as
    fast as at the start; judging the whole stay (a lookback longer than it) takes far longer,
    its healthy hours diluting the bad minutes."""
    early = [stay(store, seed, minutes=30, onset=0) for seed in range(3)]
    late = [stay(store, seed, minutes=150, onset=120) for seed in range(3)]
    diluted = [stay(store, seed, minutes=150, onset=120, lookback="3h") for seed in range(3)]
    # Measured (minutes from the onset): early 3, 3, 3; late 7, 7, 7; diluted: none within the
    # 30 minutes simulated after the onset.
    assert all(minutes is not None and minutes <= 3 for minutes in early)
    assert all(minutes is not None and minutes <= 10 for minutes in late)
    assert all(minutes is None or minutes > 12 for minutes in diluted)


def test_a_long_stay_of_an_equal_candidate_is_not_rolled_back(store: Store) -> None:
    """A/A for four hours at one weight: each look judges a fresh recent range, so the looks
    are many tests, not one sequence; failure_limit 1 and the always-valid p-value of each
    range (conservative at a single look) keep wrong rollbacks out."""
    endings = [stay(store, seed, minutes=240, onset=None) for seed in range(8)]
    # Measured: 0 of 100 such stays rolled back (24,000 looks); 8 here keep the test short.
    assert endings.count(None) == 8
