"""The detector spec, the registry and the package's public names."""

from __future__ import annotations

import dataclasses
import json

import pytest

import watchkeeper.detectors as detectors
from watchkeeper.detectors import CUSUM, DETECTOR_KINDS, DetectorSpec
from watchkeeper.detectors.registry import detector_class
from watchkeeper.errors import ConfigError


def test_spec_builds_the_registered_class() -> None:
    detector = DetectorSpec(kind="cusum", params={"threshold": 4.0}).build()
    assert isinstance(detector, CUSUM)
    assert detector.resolved_threshold == 4.0


def test_spec_params_are_read_only_and_the_spec_is_frozen() -> None:
    params = {"bound": 1.0}
    spec = DetectorSpec(kind="static_threshold", params=params)
    params["bound"] = 2.0
    assert spec.params["bound"] == 1.0
    with pytest.raises(TypeError):
        spec.params["bound"] = 3.0  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.kind = "cusum"  # type: ignore[misc]


def test_equal_specs_hash_equal_whatever_the_key_order() -> None:
    first = DetectorSpec(kind="ewma", params={"smoothing": 0.2, "warmup": 50})
    second = DetectorSpec(kind="ewma", params={"warmup": 50, "smoothing": 0.2})
    assert first == second
    assert hash(first) == hash(second)
    assert len({first, second}) == 1


def test_to_dict_is_json_text() -> None:
    spec = CUSUM(target_arl=500.0).spec
    text = json.dumps(spec.to_dict(), allow_nan=False)
    assert json.loads(text) == {
        "kind": "cusum",
        "params": {
            "drift_k": 0.5,
            "threshold": None,
            "target_arl": 500.0,
            "direction": "both",
            "warmup": 500,
            "mean": None,
            "sd": None,
            "relearn": False,
        },
    }


@pytest.mark.parametrize(
    ("kind", "params", "key"),
    [
        ("", {}, "kind"),
        ("cusum", {"threshold": [1.0]}, "threshold"),
        ("cusum", {"threshold": float("nan")}, "threshold"),
        ("cusum", {"threshold": float("inf")}, "threshold"),
        ("cusum", {1: 2.0}, "params"),
    ],
)
def test_spec_rejects_non_json_params(kind: str, params: dict[object, object], key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        DetectorSpec(kind=kind, params=params)  # type: ignore[arg-type]
    assert raised.value.key == key


@pytest.mark.parametrize(
    "data", [{"params": {}}, {"kind": "cusum", "extra": 1}, ["cusum"], {"kind": 3}]
)
def test_from_dict_rejects_malformed_specs(data: object) -> None:
    with pytest.raises(ConfigError):
        DetectorSpec.from_dict(data)  # type: ignore[arg-type]


def test_unknown_kind_is_a_config_error_listing_the_kinds() -> None:
    with pytest.raises(ConfigError) as raised:
        DetectorSpec(kind="cusumm").build()
    assert raised.value.key == "kind"
    assert "'cusum'" in str(raised.value)
    with pytest.raises(ConfigError):
        detector_class("nope")


def test_bad_param_value_names_the_parameter() -> None:
    with pytest.raises(ConfigError) as raised:
        DetectorSpec(kind="ewma", params={"smoothing": 2.0}).build()
    assert raised.value.key == "smoothing"
    assert "2.0" in str(raised.value)


def test_registry_is_read_only_and_names_match_kinds() -> None:
    assert len(DETECTOR_KINDS) == 11
    for kind, cls in DETECTOR_KINDS.items():
        assert cls.kind == kind
    with pytest.raises(TypeError):
        DETECTOR_KINDS["mine"] = CUSUM  # type: ignore[index]


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(detectors) if not name.startswith("_")}
    modules = {"base", "calibration", "charts", "registry", "river_wrappers", "thresholds"}
    assert set(detectors.__all__) == public - modules - {"annotations"}
    for name in detectors.__all__:
        assert getattr(detectors, name) is not None
