"""The routing spec and the router: validation, stable sticky buckets, weights, shadow."""

from __future__ import annotations

import hashlib
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from watchkeeper.errors import ConfigError
from watchkeeper.serving import Arm, Router, RoutingConfig, Target, bucket, champion_config

CANARY = {
    "arms": [
        {"name": "champion", "alias": "champion", "weight": 95},
        {"name": "canary", "version": 4, "weight": 5},
    ],
    "sticky": True,
    "salt": "exp-7",
    "shadow": {"version": 5, "fraction": 0.1},
}


def test_a_config_reads_back_what_it_writes() -> None:
    config = RoutingConfig.from_dict(CANARY)
    assert config.arms == (
        Arm("champion", Target(alias="champion"), 95.0),
        Arm("canary", Target(version=4), 5.0),
    )
    assert RoutingConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["shadow"] == {"name": "shadow", "version": 5, "fraction": 0.1}
    assert champion_config().arms == (Arm("champion", Target(alias="champion"), 1.0),)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"arms": []}, "arms"),
        ({"arms": [{"name": "a", "version": 1}, {"name": "a", "version": 2}]}, "arms"),
        ({"arms": [{"name": "a", "version": 1, "alias": "x"}]}, "arms[0]"),
        ({"arms": [{"name": "a"}]}, "arms[0]"),
        ({"arms": [{"name": "9a", "version": 1}]}, "arms[0].name"),
        ({"arms": [{"name": "a", "version": 0}]}, "arms[0].version"),
        ({"arms": [{"name": "a", "version": 1, "weight": -1}]}, "arms[0].weight"),
        ({"arms": [{"name": "a", "version": 1, "weight": 0}]}, "arms"),
        ({"arms": [{"name": "a", "version": 1, "share": 1}]}, "arms[0].share"),
        ({"sticky": "yes"}, "sticky"),
        ({"shadow": {"version": 2, "fraction": 1.5}}, "shadow.fraction"),
        ({"shadow": {"version": 2, "fraction": 0.5, "name": "canary"}}, "shadow.name"),
        ({"mirror": True}, "routing.mirror"),
    ],
)
def test_a_bad_config_names_its_key(change: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        RoutingConfig.from_dict({**CANARY, **change})
    assert caught.value.key == key


def test_the_bucket_is_sha256_of_model_salt_and_unit() -> None:
    digest = hashlib.sha256(b"churn\x00exp-7\x00user-42").digest()
    assert bucket("churn", "exp-7", "user-42") == int.from_bytes(digest[:8], "big") / 2**64
    # A golden value: the same in every process, on every machine, after every restart.
    assert bucket("churn", "", "user-42") == pytest.approx(0.283373, abs=1e-6)
    assert bucket("churn", "other", "user-42") != bucket("churn", "", "user-42")


def test_sticky_units_keep_their_arm_and_split_by_the_weights() -> None:
    router = Router("churn", RoutingConfig.from_dict(CANARY), rng=random.Random(1))
    units = [f"user-{i}" for i in range(20_000)]
    arms = [assignment.arm.name for assignment in router.assign(units)]
    again = Router("churn", RoutingConfig.from_dict(CANARY), rng=random.Random(2))
    assert [assignment.arm.name for assignment in again.assign(units)] == arms
    assert stats.binomtest(Counter(arms)["canary"], len(units), 0.05).pvalue > 0.001


@settings(max_examples=50, deadline=None)
@given(st.floats(0.0, 100.0), st.floats(0.0, 100.0))
def test_raising_the_canary_only_moves_units_to_it(low: float, high: float) -> None:
    low, high = sorted((low, high))
    units = [f"u{i}" for i in range(300)]

    def arms(weight: float) -> list[str]:
        config = RoutingConfig.from_dict(CANARY).with_weights(
            {"champion": 100 - weight, "canary": weight}
        )
        if weight == 100:
            config = config.with_weights({"champion": 0})
        return [a.arm.name for a in Router("churn", config).assign(units)]

    before, after = arms(low), arms(high)
    assert all(a == "canary" for b, a in zip(before, after, strict=True) if b == "canary")


def test_without_a_unit_or_stickiness_each_request_draws() -> None:
    config = RoutingConfig.from_dict({**CANARY, "sticky": False})
    router = Router("churn", config, rng=random.Random(3))
    drawn = [a.arm.name for a in router.assign(["same-user"] * 4000)]
    assert 0 < Counter(drawn)["canary"] < 4000
    assert stats.binomtest(Counter(drawn)["canary"], 4000, 0.05).pvalue > 0.001
    shadowed = sum(a.shadow for a in router.assign([None] * 4000))
    assert stats.binomtest(shadowed, 4000, 0.1).pvalue > 0.001


def test_the_override_chooses_the_arm_when_allowed() -> None:
    router = Router("churn", RoutingConfig.from_dict(CANARY))
    assert {a.arm.name for a in router.assign(["u1", "u2", None], override="canary")} == {"canary"}
    with pytest.raises(ConfigError, match="no arm 'nope'; the arms are canary, champion"):
        router.assign(["u1"], override="nope")
    closed = Router("churn", RoutingConfig.from_dict({**CANARY, "override_header": False}))
    with pytest.raises(ConfigError, match="override_header is false"):
        closed.assign(["u1"], override="canary")


def test_a_zero_weight_arm_gets_no_traffic_but_the_override() -> None:
    config = RoutingConfig.from_dict(CANARY).with_weights({"canary": 0})
    router = Router("churn", config)
    assert {a.arm.name for a in router.assign([f"u{i}" for i in range(2000)])} == {"champion"}
    with pytest.raises(ConfigError, match="weights: no arm 'ghost'"):
        config.with_weights({"ghost": 1})
