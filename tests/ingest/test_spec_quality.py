"""The ``quality`` section of a model spec: validated, defaulted, stored in the spec's JSON."""

from __future__ import annotations

from typing import Any

import pytest

from watchkeeper.errors import ConfigError
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.stats.quality_thresholds import QualityThresholds

BASE: dict[str, Any] = {"name": "m", "task": "regression", "features": {"x": "numeric"}}


def test_quality_defaults_and_round_trips() -> None:
    default = ModelSpec.from_dict(BASE)
    assert default.quality == QualityThresholds()
    assert default.to_dict()["quality"] == QualityThresholds().to_config()
    spec = ModelSpec.from_dict(BASE | {"quality": {"floors": {"out_of_range_share": 0.05}}})
    assert spec.quality.max_out_of_range_share == 0.05
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    # The Python API takes the thresholds object or its configuration form.
    direct = ModelSpec(name="m", task="regression", features={}, quality=spec.quality)
    assert (
        direct.quality
        == ModelSpec(
            name="m",
            task="regression",
            features={},
            quality={"floors": {"out_of_range_share": 0.05}},
        ).quality
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("quality", "key"),
    [
        ({"floors": {"out_of_range": 0.1}}, "quality.floors.out_of_range"),
        ({"alpha": 2}, "quality.alpha"),
        ({"floor": {}}, "quality.floor"),
        ("strict", "quality"),
    ],
)
def test_bad_quality_section_names_the_field(quality: object, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ModelSpec.from_dict(BASE | {"quality": quality})
    assert caught.value.key == key
