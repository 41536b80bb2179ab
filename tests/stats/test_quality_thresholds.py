"""QualityThresholds' configuration form: one parser for the CLI, the model spec and the API."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchkeeper.errors import ConfigError
from watchkeeper.stats.quality_thresholds import (
    CHECK_FLOORS,
    QualityThresholds,
    parse_floor_option,
)


def test_config_names_checks_and_round_trips() -> None:
    thresholds = QualityThresholds.from_config(
        {"alpha": 0.01, "floors": {"missing_rate": 0.1, "new_categories": 0.02}}
    )
    assert thresholds == QualityThresholds(
        alpha=0.01, max_missing_increase=0.1, max_new_category_share=0.02
    )
    assert QualityThresholds.from_config(thresholds.to_config()) == thresholds
    assert QualityThresholds.from_config(None) == QualityThresholds.from_config({})
    assert set(thresholds.to_config()["floors"]) == set(CHECK_FLOORS)


@given(
    alpha=st.floats(min_value=1e-9, max_value=0.999),
    floors=st.dictionaries(st.sampled_from(sorted(CHECK_FLOORS)), st.floats(0.0, 1.0)),
)
def test_valid_configs_round_trip(alpha: float, floors: dict[str, float]) -> None:
    thresholds = QualityThresholds.from_config({"alpha": alpha, "floors": floors})
    assert QualityThresholds.from_config(thresholds.to_config()) == thresholds
    for check, floor in floors.items():
        assert getattr(thresholds, CHECK_FLOORS[check]) == floor


@pytest.mark.parametrize(
    ("config", "key", "message"),
    [
        ([0.1], "quality", "quality: must be a mapping with keys alpha, floors"),
        ({"alhpa": 0.1}, "quality.alhpa", "unknown quality setting; valid settings are alpha"),
        ({"alpha": 0.0}, "quality.alpha", "quality alpha: must be a significance level in (0, 1)"),
        ({"alpha": "0.1"}, "quality.alpha", "must be a number, got '0.1' (str)"),
        ({"floors": [1]}, "quality.floors", "must be a mapping of check name to floor"),
        (
            {"floors": {"missing": 0.1}},
            "quality.floors.missing",
            "quality floor 'missing': unknown quality check; valid checks are duplicate_rows, "
            "missing_rate, new_categories, non_numeric_share, out_of_range_share",
        ),
        ({"floors": {"missing_rate": 1.5}}, "quality.floors.missing_rate", "share in [0, 1]"),
        ({"floors": {"missing_rate": True}}, "quality.floors.missing_rate", "must be a number"),
    ],
)
def test_bad_configs_name_the_setting(config: object, key: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        QualityThresholds.from_config(config)
    assert caught.value.key == key
    assert message in str(caught.value)


def test_floor_option_only_splits() -> None:
    assert parse_floor_option(" missing_rate=0.1 ,, new_categories = 0.2") == {
        "missing_rate": 0.1,
        "new_categories": 0.2,
    }
    assert parse_floor_option("missing_rate=lots") == {"missing_rate": "lots"}
    for bad in ("missing_rate", "=0.1", "missing_rate=0.1,missing_rate=0.2"):
        with pytest.raises(ConfigError, match="--quality-floor"):
            parse_floor_option(bad)
