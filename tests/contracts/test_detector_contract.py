"""Conformance suite: every registered detector kind honours the one detector contract."""

from __future__ import annotations

import inspect
import json
import pickle
import random

import pytest

from watchkeeper.detectors import DETECTOR_KINDS, Detector, DetectorSpec
from watchkeeper.detectors.base import ParamValue

# Parameters small enough that every kind warms up and alarms on the short streams below.
CONTRACT_PARAMS: dict[str, dict[str, ParamValue]] = {
    "static_threshold": {"bound": 2.0, "warning_bound": 1.5},
    "dynamic_threshold": {"window": 50, "k": 3.0, "warning_k": 2.0},
    "cusum": {"warmup": 100, "target_arl": 1000.0},
    "ewma": {"warmup": 100, "smoothing": 0.2},
    "page_hinkley": {"warmup": 100, "target_arl": 1000.0},
    "adwin": {"delta": 0.01},
    "kswin": {"alpha": 0.001, "seed": 3},
    "ddm": {},
    "eddm": {},
    "hddm_a": {"two_sided_test": True},
    "hddm_w": {},
}

ALL_KINDS = sorted(DETECTOR_KINDS)


def test_every_kind_has_contract_params() -> None:
    assert sorted(CONTRACT_PARAMS) == ALL_KINDS


def make_stream(detector: Detector, seed: int = 11) -> list[float]:
    """Stationary data, then an abrupt change, then a different regime."""
    rng = random.Random(seed)
    if detector.binary_input:
        return [float(rng.random() < rate) for rate in [0.1] * 1500 + [0.6] * 1500]
    stationary = [rng.gauss(0.0, 1.0) for _ in range(1500)]
    return stationary + [rng.gauss(3.0, 1.0) for _ in range(1500)]


def run(detector: Detector, stream: list[float]) -> list[tuple[bool, bool]]:
    outputs = []
    for value in stream:
        detector.update(value)
        outputs.append((detector.drift_detected, detector.warning_detected))
    return outputs


@pytest.fixture(params=ALL_KINDS)
def spec(request: pytest.FixtureRequest) -> DetectorSpec:
    return DetectorSpec(kind=request.param, params=CONTRACT_PARAMS[request.param])


def test_builds_from_spec_and_gives_it_back(spec: DetectorSpec) -> None:
    detector = spec.build()
    assert isinstance(detector, DETECTOR_KINDS[spec.kind])
    assert detector.kind == spec.kind
    full = detector.spec
    assert full.kind == spec.kind
    assert {name: full.params[name] for name in spec.params} == dict(spec.params)
    assert set(full.params) == set(inspect.signature(type(detector)).parameters)
    assert full.build().spec == full


def test_spec_round_trips_through_json(spec: DetectorSpec) -> None:
    full = spec.build().spec
    restored = DetectorSpec.from_dict(json.loads(json.dumps(full.to_dict())))
    assert restored == full
    assert hash(restored) == hash(full)
    assert {restored: 1}[full] == 1
    assert pickle.loads(pickle.dumps(full)) == full


def test_flags_false_before_any_update(spec: DetectorSpec) -> None:
    detector = spec.build()
    assert detector.drift_detected is False
    assert detector.warning_detected is False
    assert detector.n_seen == 0


def test_flags_are_read_only_properties(spec: DetectorSpec) -> None:
    detector = spec.build()
    for name in ("drift_detected", "warning_detected", "n_seen", "spec"):
        assert isinstance(inspect.getattr_static(type(detector), name), property)
        with pytest.raises(AttributeError):
            setattr(detector, name, True)


def test_update_returns_none_and_flags_are_bools(spec: DetectorSpec) -> None:
    detector = spec.build()
    stream = make_stream(detector)
    for value in stream[:200]:
        assert detector.update(value) is None  # type: ignore[func-returns-value]
        assert type(detector.drift_detected) is bool
        assert type(detector.warning_detected) is bool
    assert detector.n_seen == 200


def test_detects_the_change_in_the_contract_stream(spec: DetectorSpec) -> None:
    detector = spec.build()
    outputs = run(detector, make_stream(detector))
    assert any(drift for drift, _ in outputs[1500:])


def test_reset_restores_initial_behaviour(spec: DetectorSpec) -> None:
    detector = spec.build()
    stream = make_stream(detector)
    first = run(detector, stream)
    detector.reset()
    assert (detector.drift_detected, detector.warning_detected, detector.n_seen) == (
        False,
        False,
        0,
    )
    assert run(detector, stream) == first
    assert run(spec.build(), stream) == first


def test_pickling_preserves_state_and_later_outputs(spec: DetectorSpec) -> None:
    detector = spec.build()
    stream = make_stream(detector)
    run(detector, stream[:1600])
    clone = pickle.loads(pickle.dumps(detector))
    assert clone.n_seen == detector.n_seen == 1600
    assert (clone.drift_detected, clone.warning_detected) == (
        detector.drift_detected,
        detector.warning_detected,
    )
    assert run(clone, stream[1600:]) == run(detector, stream[1600:])
    assert clone.spec == detector.spec


def test_deterministic_for_the_same_spec(spec: DetectorSpec) -> None:
    stream = make_stream(spec.build(), seed=5)
    assert run(spec.build(), stream) == run(spec.build(), stream)


def test_repr_names_the_class_and_every_parameter(spec: DetectorSpec) -> None:
    detector = spec.build()
    text = repr(detector)
    assert text.startswith(f"{type(detector).__name__}(")
    for name, value in detector.spec.params.items():
        assert f"{name}={value!r}" in text


def test_constructor_is_keyword_only_without_mutable_defaults(spec: DetectorSpec) -> None:
    detector_class = DETECTOR_KINDS[spec.kind]
    for parameter in inspect.signature(detector_class).parameters.values():
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, parameter.name
        if parameter.default is not inspect.Parameter.empty:
            assert parameter.default is None or isinstance(
                parameter.default, bool | int | float | str
            ), parameter.name


def test_rejects_non_finite_input(spec: DetectorSpec) -> None:
    from watchkeeper.errors import InputError

    detector = spec.build()
    with pytest.raises(InputError):
        detector.update(float("nan"))
    assert detector.n_seen == 0


def test_unknown_parameter_is_a_config_error_naming_it(spec: DetectorSpec) -> None:
    from watchkeeper.errors import ConfigError

    bad = DetectorSpec(kind=spec.kind, params={**spec.params, "no_such_knob": 1})
    with pytest.raises(ConfigError) as raised:
        bad.build()
    assert raised.value.key == "no_such_knob"
    assert "no_such_knob" in str(raised.value)
