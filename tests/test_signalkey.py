"""Signal names are written and read in one place, dotted column names included."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchkeeper.alerts.engine import sample_from_dict
from watchkeeper.alerts.model import Sample
from watchkeeper.alerts.promexport import export_prometheus_rules
from watchkeeper.alerts.rules import Op, RuleSpec, ThresholdCondition
from watchkeeper.monitor.signals import signal_names
from watchkeeper.monitor.windows import ColumnPlan
from watchkeeper.schema import ColumnKind, TaskType
from watchkeeper.signalkey import SignalKey, feature_of

names = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20)
stats = names.filter(lambda text: "." not in text)


@given(family=st.sampled_from(["drift", "quality"]), column=names, stat=stats)
def test_per_column_names_round_trip_whatever_the_column(
    family: str, column: str, stat: str
) -> None:
    key = SignalKey(stat, family, column)
    assert SignalKey.parse(key.format()) == key
    assert feature_of(key.format()) == column


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("accuracy", SignalKey("accuracy")),
        ("prediction_drift.score", SignalKey("score", "prediction_drift")),
        ("quality.rejected_share", SignalKey("rejected_share", "quality")),
        ("drift.user.age.score", SignalKey("score", "drift", "user.age")),
    ],
)
def test_every_kind_of_name(name: str, key: SignalKey) -> None:
    assert SignalKey.parse(name) == key
    assert key.format() == name


def test_malformed_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="only"):
        SignalKey.parse("feedback.x.y")
    with pytest.raises(ValueError, match="column"):
        SignalKey("score", "prediction_drift", "age")
    assert feature_of("feedback.x.y") is None
    assert feature_of("accuracy") is None


def test_a_dotted_feature_keeps_its_label_on_every_path() -> None:
    plan = ColumnPlan(
        features=("user.age",),
        kinds={"user.age": ColumnKind.NUMERIC},
        prediction="prediction",
        proba={},
        task=TaskType.REGRESSION,
        classes=(),
    )
    produced = [name for name in signal_names(plan) if feature_of(name) is not None]
    assert produced
    assert {feature_of(name) for name in produced} == {"user.age"}
    signal = "drift.user.age.score"
    assert Sample.of(model="m", signal=signal, value=0.3, timestamp=0.0).labels["feature"] == (
        "user.age"
    )
    sample = sample_from_dict(
        {"labels": {"model": "m", "signal": signal}, "value": 1, "timestamp": 0}
    )
    assert sample.labels["feature"] == "user.age"
    rule = RuleSpec(
        name="AgeDrift",
        model="m",
        signal=signal,
        condition=ThresholdCondition(op=Op.GT, threshold=0.2),
    )
    exported = export_prometheus_rules([rule])
    assert 'feature="user.age"' in exported.yaml, exported.skipped
