"""Rules evaluated per window in event time, ``min_labels``, and the notification horizon."""

from __future__ import annotations

import math

import pytest

from watchkeeper.alerts import RuleSpec
from watchkeeper.alerts.defaults import default_rules
from watchkeeper.alerts.engine import AlertingEngine
from watchkeeper.alerts.model import AlertState
from watchkeeper.alerts.rules import RuleEvaluator, WindowSamples
from watchkeeper.errors import ConfigError, InputError

HOUR = 3600.0
DAY = 86_400.0


def _window(start: float, size: float, accuracy: float | None, labeled: float) -> WindowSamples:
    from watchkeeper.alerts.model import Sample

    end = start + size
    labels = {"model": "m", "version": "v1"}
    samples = [Sample(labels=labels | {"signal": "labeled_count"}, value=labeled, timestamp=end)]
    if accuracy is not None:
        accuracy_labels = labels | {"signal": "accuracy"}
        samples.append(Sample(labels=accuracy_labels, value=accuracy, timestamp=end))
    return WindowSamples(start=start, end=end, samples=samples)


def _rule(**overrides: object) -> RuleSpec:
    data = {"name": "Acc", "model": "m", "signal": "accuracy", "condition": "< 0.8"}
    return RuleSpec.from_dict(data | overrides)


def test_min_labels_is_parsed_validated_and_serialised() -> None:
    spec = _rule(min_labels=100)
    assert spec.min_labels == 100
    assert spec.to_dict()["min_labels"] == 100
    assert RuleSpec.from_dict(spec.to_dict()) == spec
    assert "min_labels" not in _rule().to_dict()
    for bad in (0, -3, 1.5, "many", True):
        with pytest.raises(ConfigError, match=r"rule\.min_labels: expected a whole number") as e:
            _rule(min_labels=bad)
        assert e.value.key == "rule.min_labels"
    with pytest.raises(ConfigError, match="min_labels: an 'absent' rule reads no labels"):
        RuleSpec.from_dict(
            {"name": "A", "signal": "absent", "condition": {"absent_for": "5m"}, "min_labels": 5}
        )


def test_default_accuracy_rule_needs_100_labels_and_no_for() -> None:
    (accuracy,) = [spec for spec in default_rules("credit") if spec.signal == "accuracy"]
    assert (accuracy.min_labels, accuracy.for_) == (100, 0.0)
    assert default_rules("credit", min_labels=50)[2].min_labels == 50


def test_a_window_below_min_labels_is_neither_a_pass_nor_a_fail() -> None:
    evaluator = RuleEvaluator(rules=[_rule(min_labels=100, **{"for": "30m"})])
    evaluator.evaluate_window(_window(0.0, HOUR, 0.5, 150))
    (record,) = evaluator.alerts()
    assert (record.state, record.active_at) == (AlertState.PENDING, HOUR)
    # Too few labels: neither firing (a fail) nor dropped (a pass); the alert waits.
    evaluator.evaluate_window(_window(HOUR, HOUR, 0.95, 20))
    evaluator.evaluate_window(_window(2 * HOUR, HOUR, None, 0))
    (record,) = evaluator.alerts()
    assert record.state is AlertState.PENDING
    evaluator.evaluate_window(_window(3 * HOUR, HOUR, 0.6, 120))
    (record,) = evaluator.alerts()
    assert (record.state, record.fired_at, record.last_value) == (AlertState.FIRING, 4 * HOUR, 0.6)
    # A firing alert stays firing through unlabelled windows and resolves on a good one.
    evaluator.evaluate_window(_window(4 * HOUR, HOUR, 0.99, 3))
    assert evaluator.alerts()[0].state is AlertState.FIRING
    evaluator.evaluate_window(_window(5 * HOUR, HOUR, 0.9, 300))
    (record,) = evaluator.alerts()
    assert (record.state, record.resolved_at, record.last_value) == (
        AlertState.RESOLVED,
        6 * HOUR,
        0.9,
    )


def test_min_labels_on_the_wall_clock_path_leaves_the_alert_alone() -> None:
    evaluator = RuleEvaluator(rules=[_rule(min_labels=100)])
    evaluator.evaluate(10.0, _window(0.0, HOUR, 0.5, 100).samples)
    assert evaluator.alerts()[0].state is AlertState.FIRING
    evaluator.evaluate(20.0, _window(HOUR, HOUR, 0.99, 99).samples)
    assert evaluator.alerts()[0].state is AlertState.FIRING
    evaluator.evaluate(30.0, _window(HOUR, HOUR, 0.99, 100).samples)
    assert evaluator.alerts()[0].state is AlertState.RESOLVED


def test_for_counts_event_time_two_bad_hourly_windows_for_30m() -> None:
    evaluator = RuleEvaluator(rules=[_rule(**{"for": "30m"})])
    evaluator.evaluate_window(_window(0.0, HOUR, 0.5, 200))
    assert evaluator.alerts()[0].state is AlertState.PENDING
    # The same window again (more labels joined): still the same moment of event time.
    evaluator.evaluate_window(_window(0.0, HOUR, 0.55, 250))
    assert evaluator.alerts()[0].state is AlertState.PENDING
    evaluator.evaluate_window(_window(HOUR, HOUR, 0.6, 200))
    (record,) = evaluator.alerts()
    assert (record.state, record.active_at, record.fired_at) == (AlertState.FIRING, HOUR, 2 * HOUR)


def test_an_older_window_does_not_rewind_the_alert() -> None:
    evaluator = RuleEvaluator(rules=[_rule()])
    evaluator.evaluate_window(_window(5 * HOUR, HOUR, 0.5, 200))
    evaluator.evaluate_window(_window(2 * HOUR, HOUR, 0.99, 200))  # straggling labels
    (record,) = evaluator.alerts()
    assert (record.state, record.fired_at) == (AlertState.FIRING, 6 * HOUR)


def test_window_samples_validate() -> None:
    with pytest.raises(ConfigError, match="window: expected finite start < end"):
        WindowSamples(start=10.0, end=10.0, samples=[])
    with pytest.raises(ConfigError, match="window"):
        WindowSamples(start=math.nan, end=10.0, samples=[])


def _engine(**options: object) -> AlertingEngine:
    engine = AlertingEngine(db="sqlite://", clock=lambda: 0.0, **options)  # type: ignore[arg-type]
    engine.apply_rules([_rule(min_labels=100)])
    return engine


def _as_dict(window: WindowSamples) -> dict[str, object]:
    return {
        "start": window.start,
        "end": window.end,
        "samples": [
            {"labels": dict(s.labels), "value": s.value, "timestamp": s.timestamp}
            for s in window.samples
        ],
    }


def test_engine_records_every_window_transition_at_its_event_time() -> None:
    engine = _engine()
    windows = [
        _window(0.0, DAY, 0.9, 200),
        _window(DAY, DAY, 0.5, 200),
        _window(2 * DAY, DAY, 0.6, 10),
        _window(3 * DAY, DAY, 0.95, 200),
    ]
    # Out of order and as the monitor's dicts: evaluated oldest first.
    report = engine.evaluate(
        30 * DAY, [], windows=[_as_dict(window) for window in reversed(windows)]
    )
    changes = [(c.previous.value, c.state.value, c.at, c.value) for c in report.transitions]
    assert changes == [
        ("inactive", "firing", 2 * DAY, 0.5),
        ("firing", "resolved", 4 * DAY, 0.95),
    ]
    history = [(c.state.value, c.at) for c in engine.history()]
    assert history == [("resolved", 4 * DAY), ("firing", 2 * DAY)]
    with pytest.raises(InputError, match=r"windows\[0\]: start and end must be numbers"):
        engine.evaluate(0.0, [], windows=[{"start": "x", "end": 1, "samples": []}])
    engine.close()


def test_history_older_than_the_horizon_is_recorded_but_not_sent() -> None:
    for horizon, sent in ((7 * DAY, False), (None, True)):
        engine = _engine(notify_horizon=horizon)
        report = engine.evaluate(30 * DAY, [], windows=[_as_dict(_window(DAY, DAY, 0.5, 200))])
        assert [c.state.value for c in report.transitions] == ["firing"]
        assert bool(report.alerts) is sent
        engine.close()
    # A recent window (labels a week late, inside a 30-day horizon) is sent.
    engine = _engine(notify_horizon=30 * DAY)
    report = engine.evaluate(8 * DAY, [], windows=[_as_dict(_window(0.0, DAY, 0.5, 200))])
    assert [alert.state for alert in report.alerts] == [AlertState.FIRING]
    engine.close()


def test_an_older_window_does_not_rewind_the_alert_after_a_restart() -> None:
    from watchkeeper.alerts.state import InMemoryAlertStateStore

    store = InMemoryAlertStateStore()
    RuleEvaluator(rules=[_rule()], store=store).evaluate_window(_window(5 * HOUR, HOUR, 0.5, 200))
    restarted = RuleEvaluator(rules=[_rule()], store=store)
    restarted.evaluate_window(_window(2 * HOUR, HOUR, 0.99, 200))
    assert restarted.alerts()[0].state is AlertState.FIRING
    restarted.evaluate_window(_window(6 * HOUR, HOUR, 0.99, 200))
    assert restarted.alerts()[0].state is AlertState.RESOLVED


def test_min_labels_is_kept_in_the_prometheus_export() -> None:
    from watchkeeper.alerts import export_prometheus_rules

    export = export_prometheus_rules([_rule(min_labels=100)])
    assert (
        '(watchkeeper_model_accuracy{model="m"} < 0.8) and on (model, version) '
        '(watchkeeper_signal{model="m",segment="*",signal="labeled_count"} >= 100)'
    ) in export.yaml


def test_the_event_time_of_a_series_is_forgotten_with_its_alert() -> None:
    """A series is remembered for the notification horizon only while it has an alert."""
    from watchkeeper.alerts.model import Sample

    def segment_window(start: float, segment: str, accuracy: float) -> WindowSamples:
        labels = {"model": "m", "version": "v1", "segment": segment}
        samples = [
            Sample(labels=labels | {"signal": name}, value=value, timestamp=start + HOUR)
            for name, value in (("labeled_count", 500.0), ("accuracy", accuracy))
        ]
        return WindowSamples(start=start, end=start + HOUR, samples=samples)

    evaluator = RuleEvaluator(
        rules=[_rule(min_labels=100)], resolved_retention=0.0, notify_horizon=DAY
    )
    # A thousand healthy segments, one window each: nothing to alert on, nothing to keep.
    for number in range(1000):
        evaluator.evaluate_window(segment_window(0.0, f"s{number}", 0.95))
    assert evaluator._event_time == {}
    evaluator.evaluate_window(segment_window(HOUR, "bad", 0.5))
    (record,) = evaluator.alerts()
    assert evaluator._event_time == {record.fingerprint: 2 * HOUR}
    evaluator.evaluate_window(segment_window(2 * HOUR, "bad", 0.95))
    assert evaluator.alerts()[0].state is AlertState.RESOLVED
    evaluator.evaluate(3 * HOUR, [], windowed=True)  # sent: the resolved alert goes
    evaluator.evaluate(3 * HOUR + 1, [], windowed=True)
    assert evaluator.alerts() == []
    assert evaluator._event_time == {}
