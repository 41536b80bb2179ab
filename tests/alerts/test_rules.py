from __future__ import annotations

import math
import time

import pytest

from watchkeeper.alerts import RuleEvaluator, RuleSpec, Sample
from watchkeeper.alerts.model import AlertState, Severity
from watchkeeper.alerts.rules import AbsentCondition, DetectorCondition, Op, ThresholdCondition
from watchkeeper.alerts.state import InMemoryAlertStateStore
from watchkeeper.alerts.template import AnnotationTemplate
from watchkeeper.errors import ConfigError


def drift_rule(**options: object) -> RuleSpec:
    base: dict[str, object] = {
        "name": "FeatureDrift",
        "model": "credit",
        "signal": "drift.*.score",
        "condition": ThresholdCondition(op=Op.GT, threshold=0.2),
        "for_": 300.0,
        "severity": Severity.CRITICAL,
        "labels": {"team": "risk"},
        "annotations": {
            "summary": "{{ labels.model }} drift on {{ labels.feature }} = "
            '{{ value | printf("%.3f") }} (>{{ threshold }})'
        },
    }
    base.update(options)
    return RuleSpec(**base)  # type: ignore[arg-type]


def drift(value: float, t: float, feature: str = "age", model: str = "credit") -> Sample:
    return Sample.of(model=model, signal=f"drift.{feature}.score", value=value, timestamp=t)


def states(evaluator: RuleEvaluator) -> dict[str, AlertState]:
    return {record.labels.get("feature", ""): record.state for record in evaluator.alerts()}


def test_spec_round_trips_through_dict_and_yaml() -> None:
    spec = drift_rule(keep_firing_for=600.0, version="3", segment="region=eu")
    assert RuleSpec.from_dict(spec.to_dict()) == spec
    assert RuleSpec.from_yaml(spec.to_yaml()) == spec
    detector = drift_rule(condition=DetectorCondition(kind="adwin", params={"delta": 0.002}))
    assert RuleSpec.from_dict(detector.to_dict()) == detector
    absent = RuleSpec(
        name="NoData", model="credit", signal="absent", condition=AbsentCondition(period=1800.0)
    )
    assert absent.to_dict()["condition"] == {"absent_for": "30m"}
    assert RuleSpec.from_dict(absent.to_dict()) == absent
    assert hash(spec) == hash(RuleSpec.from_dict(spec.to_dict()))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"for": "soon"}, r"^rules\[2\]\.for: expected a duration such as 5m"),
        ({"condition": "about 3"}, r"^rules\[2\]\.condition: expected a threshold"),
        ({"condition": {"op": "=>", "threshold": 1}}, r"^rules\[2\]\.condition\.op"),
        ({"severity": "page"}, r"^rules\[2\]\.severity: expected info, warning or critical"),
        ({"name": "high drift"}, r"^rules\[2\]\.name: rule names look like"),
        ({"labels": {"alertname": "x"}}, r"^rules\[2\]\.labels: \['alertname'\]"),
        ({"colour": "red"}, r"^rules\[2\]\.colour: unknown field"),
        ({"signal": "absent"}, r"^rules\[2\]\.condition: signal 'absent'"),
        ({"annotations": {"summary": "{{ labels.model "}}, r"^rules\[2\]\.annotations\.summary"),
    ],
)
def test_from_dict_names_the_bad_field(change: dict[str, object], message: str) -> None:
    data = drift_rule().to_dict()
    data.update(change)
    with pytest.raises(ConfigError, match=message):
        RuleSpec.from_dict(data, path="rules[2]").build()


def test_pending_then_firing_after_for_and_pending_reset() -> None:
    evaluator = RuleEvaluator(rules=[drift_rule()])
    assert evaluator.evaluate(0, [drift(0.3, 0)]) == []
    assert states(evaluator) == {"age": AlertState.PENDING}
    # Condition goes false before `for` elapsed: the pending alert is dropped...
    evaluator.evaluate(120, [drift(0.1, 120)])
    assert states(evaluator) == {}
    # ...and a new activation counts `for` from scratch.
    evaluator.evaluate(180, [drift(0.3, 180)])
    assert evaluator.evaluate(420, [drift(0.3, 420)]) == []
    sent = evaluator.evaluate(480, [drift(0.35, 480)])
    assert [alert.state for alert in sent] == [AlertState.FIRING]
    alert = sent[0]
    assert alert.starts_at == 480
    assert alert.labels["alertname"] == "FeatureDrift"
    assert alert.labels["severity"] == "critical"
    assert alert.labels["team"] == "risk"
    assert alert.annotations["summary"] == "credit drift on age = 0.350 (>0.2)"
    assert alert.annotations["value"] == "0.35"
    assert alert.annotations["threshold"] == "> 0.2"


def test_for_zero_fires_on_the_first_evaluation() -> None:
    evaluator = RuleEvaluator(rules=[drift_rule(for_=0.0)])
    sent = evaluator.evaluate(0, [drift(0.3, 0)])
    assert [alert.state for alert in sent] == [AlertState.FIRING]


def test_one_rule_gives_one_alert_per_matching_series() -> None:
    evaluator = RuleEvaluator(rules=[drift_rule(for_=0.0)])
    samples = [
        drift(0.3, 0, "age"),
        drift(0.5, 0, "income"),
        drift(0.1, 0, "zip"),
        drift(0.9, 0, "age", model="other"),
        Sample.of(model="credit", signal="accuracy", value=0.3, timestamp=0),
    ]
    sent = evaluator.evaluate(0, samples)
    assert sorted(alert.labels["feature"] for alert in sent) == ["age", "income"]
    assert len({alert.fingerprint for alert in sent}) == 2


def test_resolved_is_reported_once_and_then_forgotten_after_retention() -> None:
    evaluator = RuleEvaluator(rules=[drift_rule(for_=0.0)], resend_delay=60.0)
    evaluator.evaluate(0, [drift(0.3, 0)])
    assert evaluator.evaluate(30, [drift(0.3, 30)]) == []  # within resend_delay
    assert len(evaluator.evaluate(60, [drift(0.3, 60)])) == 1  # re-sent, still firing
    sent = evaluator.evaluate(90, [drift(0.1, 90)])
    assert [(alert.state, alert.ends_at) for alert in sent] == [(AlertState.RESOLVED, 90)]
    assert evaluator.evaluate(150, [drift(0.1, 150)]) == []
    assert states(evaluator) == {"age": AlertState.RESOLVED}
    evaluator.evaluate(90 + 900, [drift(0.1, 990)])
    assert states(evaluator) == {}


def test_keep_firing_for_rides_out_flapping() -> None:
    evaluator = RuleEvaluator(rules=[drift_rule(for_=0.0, keep_firing_for=300.0)])
    timeline = [0.3, 0.1, 0.3, 0.1, 0.1, 0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
    seen = []
    for step, value in enumerate(timeline):
        now = step * 60.0
        evaluator.evaluate(now, [drift(value, now)])
        seen.append(states(evaluator)["age"])
    # Flapping every minute never resolves; the alert resolves 300 s after the last true value.
    last_true = 5 * 60.0
    resolved_at = next(step for step, state in enumerate(seen) if state is AlertState.RESOLVED)
    assert all(state is AlertState.FIRING for state in seen[:resolved_at])
    assert resolved_at * 60.0 == last_true + 60.0 + 300.0
    records = evaluator.alerts()
    assert records[0].fired_at == 0.0


def test_without_keep_firing_for_the_same_flapping_resolves_each_time() -> None:
    evaluator = RuleEvaluator(rules=[drift_rule(for_=0.0)], resend_delay=0.0)
    resolutions = 0
    for step, value in enumerate([0.3, 0.1, 0.3, 0.1, 0.3, 0.1]):
        sent = evaluator.evaluate(step * 60.0, [drift(value, step * 60.0)])
        resolutions += sum(alert.state is AlertState.RESOLVED for alert in sent)
    assert resolutions == 3


def test_nan_never_satisfies_a_threshold_even_not_equal() -> None:
    rule = drift_rule(for_=0.0, condition=ThresholdCondition(op=Op.NE, threshold=0.0))
    evaluator = RuleEvaluator(rules=[rule])
    assert evaluator.evaluate(0, [drift(math.nan, 0)]) == []
    assert len(evaluator.evaluate(1, [drift(0.5, 1)])) == 1


def _last_event(
    model: str, at: float, *, version: str | None = None, segment: str | None = None
) -> Sample:
    """The service's ``last_event`` sample: the ingest time of the model's newest event."""
    return Sample.of(
        model=model, signal="last_event", value=at, timestamp=at, version=version, segment=segment
    )


def test_absent_fires_when_a_model_goes_quiet() -> None:
    rule = RuleSpec(
        name="NoData",
        model="credit",
        signal="absent",
        condition=AbsentCondition(period=600.0),
        for_=0.0,
        annotations={"summary": "{{ labels.model }} silent for {{ value }} s"},
    )
    evaluator = RuleEvaluator(rules=[rule])
    last = _last_event("credit", 1000.0)
    assert evaluator.evaluate(1000.0, [last]) == []
    assert evaluator.evaluate(1600.0, [last]) == []
    # Window signals do not count as data: their timestamp is their window's end.
    window = Sample.of(model="credit", signal="accuracy", value=0.9, timestamp=1700.0)
    sent = evaluator.evaluate(1700.0, [last, window])
    assert [dict(alert.labels) for alert in sent] == [
        {"model": "credit", "signal": "absent", "alertname": "NoData", "severity": "warning"}
    ]
    assert sent[0].annotations["summary"] == "credit silent for 700.0 s"
    # A model that never had an event is not absent: its stream has not started.
    assert RuleEvaluator(rules=[rule]).evaluate(5000.0, [window]) == []
    fresh = _last_event("credit", 1750.0)
    assert evaluator.evaluate(1760.0, [fresh])[0].state is AlertState.RESOLVED


def test_absent_with_wildcard_model_watches_every_model_seen() -> None:
    rule = RuleSpec(name="NoData", signal="absent", condition=AbsentCondition(period=60.0))
    evaluator = RuleEvaluator(rules=[rule])
    evaluator.evaluate(0, [_last_event(name, 0.0) for name in ("a", "b")])
    sent = evaluator.evaluate(100, [_last_event("a", 100.0), _last_event("b", 0.0)])
    assert [alert.labels["model"] for alert in sent] == ["b"]
    assert sent[0].value == 100.0


def test_absent_of_a_version_or_segment_watches_its_own_events() -> None:
    rule = RuleSpec(
        name="EuQuiet",
        model="credit",
        segment="region=eu",
        signal="absent",
        condition=AbsentCondition(period=60.0),
    )
    evaluator = RuleEvaluator(rules=[rule])
    samples = [
        _last_event("credit", 0.0, version="1", segment="region=eu"),
        _last_event("credit", 95.0, version="2", segment="region=eu"),
        _last_event("credit", 100.0, version="2", segment="region=us"),
    ]
    assert evaluator.evaluate(100.0, samples) == []
    (sent,) = evaluator.evaluate(160.0, samples)
    assert sent.labels["segment"] == "region=eu"
    assert sent.value == 65.0


def test_version_and_segment_selectors() -> None:
    rule = RuleSpec(
        name="LowAccuracy",
        model="credit",
        version="3",
        segment="region=eu",
        signal="accuracy",
        condition=ThresholdCondition(op=Op.LT, threshold=0.8),
    )
    evaluator = RuleEvaluator(rules=[rule])
    samples = [
        Sample.of(
            model="credit",
            version=version,
            segment=segment,
            signal="accuracy",
            value=0.5,
            timestamp=0,
        )
        for version in ("2", "3")
        for segment in ("region=eu", "region=us", None)
    ]
    sent = evaluator.evaluate(0, samples)
    assert [(alert.labels["version"], alert.labels["segment"]) for alert in sent] == [
        ("3", "region=eu")
    ]


def test_detector_condition_uses_watchkeeper_detectors_once_per_new_sample() -> None:
    rule = drift_rule(
        signal="latency_p99",
        for_=0.0,
        keep_firing_for=0.0,
        condition=DetectorCondition(kind="static_threshold", params={"bound": 100.0}),
    )
    evaluator = RuleEvaluator(rules=[rule], resend_delay=0.0)

    def latency(value: float, t: float) -> Sample:
        return Sample.of(model="credit", signal="latency_p99", value=value, timestamp=t)

    assert evaluator.evaluate(0, [latency(50, 0)]) == []
    assert [alert.state for alert in evaluator.evaluate(60, [latency(150, 60)])] == [
        AlertState.FIRING
    ]
    # The same sample (same timestamp) is not fed twice; the flag stays as last computed.
    assert [alert.state for alert in evaluator.evaluate(120, [latency(150, 60)])] == [
        AlertState.FIRING
    ]
    assert [alert.state for alert in evaluator.evaluate(180, [latency(40, 180)])] == [
        AlertState.RESOLVED
    ]


def test_templates_run_sandboxed_and_never_drop_the_alert() -> None:
    with pytest.raises(ConfigError, match="call is not allowed"):
        drift_rule(annotations={"escape": "{{ labels.__class__.__mro__[1].__subclasses__() }}"})
    rule = drift_rule(
        for_=0.0,
        annotations={
            "escape": "{{ labels.__class__.__mro__[1] }}",
            "broken": '{{ value | printf("%d items %d") }}',
        },
    )
    sent = RuleEvaluator(rules=[rule]).evaluate(0, [drift(0.3, 0)])
    assert sent[0].annotations["escape"].startswith("<error expanding template: SecurityError")
    assert sent[0].annotations["broken"].startswith("<error expanding template: TypeError")


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("{{ 9**(9**7) }}", "an integer of more than 4096 bits"),
        ("{{ 1.5**(9**7) }}", "exponent 4782969 is larger than 64"),
        ('{{ "x" * 200000000 }}', "a repeat of more than 10000 items"),
        ("{{ (((9**64)**64)**64)**64 }}", "an integer of more than 4096 bits"),
    ],
)
def test_templates_cannot_hold_the_server_or_its_memory(source: str, error: str) -> None:
    template = AnnotationTemplate(source=source)
    started = time.perf_counter()
    text = template.render(value=0.3, labels={}, threshold=None)
    assert time.perf_counter() - started < 0.5
    assert text == f"<error expanding template: SecurityError: {error}>"
    long_label = AnnotationTemplate(source="{{ labels.x }}{{ labels.x }}")
    assert len(long_label.render(value=None, labels={"x": "y" * 9000}, threshold=None)) == 8192


@pytest.mark.parametrize(
    ("source", "refused"),
    [
        ("{% for i in range(9) %}x{% endfor %}", "for is not allowed"),
        ("{{ range(10) }}", "call is not allowed"),
        ("{% set a = 1 %}", "assign is not allowed"),
        ('{{ "x" | center(100000000) }}', "filter 'center' is not allowed"),
    ],
)
def test_templates_allow_expressions_filters_and_if_only(source: str, refused: str) -> None:
    with pytest.raises(ConfigError, match=refused):
        AnnotationTemplate(source=source, key="annotations.summary")
    fine = AnnotationTemplate(
        source="{% if value > 0.5 %}high{% else %}low{% endif %} {{ (value * 100) | round(1) }}%"
    )
    assert fine.render(value=0.7, labels={}, threshold=None) == "high 70.0%"


def test_rule_names_must_be_unique() -> None:
    with pytest.raises(ConfigError, match="repeated: \\['FeatureDrift'\\]"):
        RuleEvaluator(rules=[drift_rule(), drift_rule()])


def test_restart_keeps_pending_clock_and_reports_firing_again() -> None:
    store = InMemoryAlertStateStore()
    first = RuleEvaluator(rules=[drift_rule()], store=store)
    first.evaluate(0, [drift(0.3, 0)])
    first.evaluate(200, [drift(0.3, 200)])
    # Restart while pending: `for` still counts from t=0, so it fires at t=300, not t=500.
    second = RuleEvaluator(rules=[drift_rule()], store=store)
    assert [a.starts_at for a in second.evaluate(300, [drift(0.3, 300)])] == [300.0]
    # Restart while firing: the firing alert is reported again (a fresh dispatcher needs it).
    third = RuleEvaluator(rules=[drift_rule()], store=store)
    sent = third.evaluate(310, [drift(0.3, 310)])
    assert [(a.state, a.starts_at) for a in sent] == [(AlertState.FIRING, 300.0)]


def test_alerts_of_deleted_rules_are_resolved_once() -> None:
    store = InMemoryAlertStateStore()
    RuleEvaluator(rules=[drift_rule(for_=0.0)], store=store).evaluate(0, [drift(0.3, 0)])
    other = RuleSpec(
        name="Other", signal="accuracy", condition=ThresholdCondition(op=Op.LT, threshold=0.5)
    )
    evaluator = RuleEvaluator(rules=[other], store=store)
    sent = evaluator.evaluate(60, [drift(0.3, 60)])
    assert [(alert.name, alert.state) for alert in sent] == [("FeatureDrift", AlertState.RESOLVED)]
    assert evaluator.evaluate(120, []) == []
    assert store.load_alerts() == []
