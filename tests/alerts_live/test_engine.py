"""AlertingEngine over a real database (a SQLite file, PostgreSQL) and a real HTTP receiver."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.alerts._servers import CaptureServer
from tests.store.test_migrations import HEAD
from watchkeeper.alerts import RuleSpec, load_rules
from watchkeeper.alerts.engine import AlertingEngine, sample_from_dict
from watchkeeper.alerts.model import AlertState
from watchkeeper.alerts.rules import Op, ThresholdCondition
from watchkeeper.errors import ConfigError, ConflictError, InputError, NotFoundError, StoreError
from watchkeeper.store import Store

RULES = """
rules:
  - name: KeyFeatureDrift
    model: credit
    signal: drift.income.score
    condition: "> 0.2"
    for: 10m
    keep_firing_for: 5m
    severity: critical
    annotations:
      summary: '{{ labels.model }} drift on {{ labels.feature }} = {{ value | printf("%.3f") }}'
"""


def routing(slack: CaptureServer, *, group_wait: str = "30s") -> str:
    return f"""
global:
  external_url: http://watchkeeper.test
route:
  receiver: slack
  group_by: [alertname, model]
  group_wait: {group_wait}
receivers:
  - name: slack
    slack_configs:
      - {{url: "{slack.url("/services/T/B/X")}", timeout: 2s}}
"""


def latest_samples(now: float, income_score: float) -> list[dict[str, Any]]:
    """What MonitorService.latest_samples() hands over: several signals, one of them drifting."""
    base = {"model": "credit", "version": "v1", "segment": "*"}
    return [
        {
            "labels": {**base, "signal": "drift.income.score", "feature": "income"},
            "value": income_score,
            "timestamp": now,
        },
        {
            "labels": {**base, "signal": "drift.age.score", "feature": "age"},
            "value": 0.03,
            "timestamp": now,
        },
        {"labels": {**base, "signal": "drift_share"}, "value": 0.5, "timestamp": now},
        {"labels": {**base, "signal": "count"}, "value": 1200.0, "timestamp": now},
        {"labels": {**base, "signal": "accuracy"}, "value": None, "timestamp": now},
    ]


def open_engine(url: str, slack: CaptureServer, **options: Any) -> AlertingEngine:
    return AlertingEngine(db=url, config=routing(slack), clock=lambda: 0.0, **options)


def titles(slack: CaptureServer) -> list[str]:
    return [request.body["text"] for request in slack.requests]


def test_worked_example_pages_once_resolves_once_and_a_silence_stops_repeats(
    sql_url: str, http_receiver: CaptureServer
) -> None:
    engine = open_engine(sql_url, http_receiver, delivery_seed=0)
    engine.apply_rules(load_rules(RULES))
    now = 0.0
    for _ in range(12 * 60):
        if now == 5 * 3600:
            engine.add_silence(
                matchers=['alertname="KeyFeatureDrift"'],
                starts_at=now,
                duration=5 * 3600,
                created_by="ana",
                comment="retraining scheduled",
            )
        engine.evaluate(now, latest_samples(now, 0.35 if now < 9 * 3600 else 0.05))
        engine.deliver(now)
        now += 60.0
    # Page at 11 m; reminder at 4 h 11 m (repeat_interval 4 h); the 8 h 11 m reminder is
    # silenced; resolution at 9 h 5 m (keep_firing_for) is sent once and never muted.
    assert titles(http_receiver) == [
        "[FIRING:1] alertname=KeyFeatureDrift model=credit",
        "[FIRING:1] alertname=KeyFeatureDrift model=credit",
        "[RESOLVED:1] alertname=KeyFeatureDrift model=credit",
    ]
    page = http_receiver.requests[0]
    assert page.path == "/services/T/B/X"
    text = page.body["blocks"][1]["text"]["text"]
    assert "credit drift on income = 0.350" in text
    assert "<http://watchkeeper.test/alerts/rules/KeyFeatureDrift|" in text
    assert len({request.headers["idempotency-key"] for request in http_receiver.requests}) == 3
    changes = [
        (change.previous, change.state, change.at, change.value) for change in engine.history(10)
    ]
    # Each change carries the value that caused it: 0.05 ended the firing state.
    assert changes[::-1] == [
        (AlertState.INACTIVE, AlertState.PENDING, 0.0, 0.35),
        (AlertState.PENDING, AlertState.FIRING, 600.0, 0.35),
        (AlertState.FIRING, AlertState.RESOLVED, 9 * 3600 + 300.0, 0.05),
    ]
    assert all(change.labels["feature"] == "income" for change in engine.history(10))
    engine.close()


def test_restart_while_firing_neither_repages_nor_loses_the_alert(
    sql_url: str, http_receiver: CaptureServer
) -> None:
    engine = open_engine(sql_url, http_receiver)
    specs = engine.apply_rules(load_rules(RULES))
    for minute in range(15):
        engine.evaluate(minute * 60.0, latest_samples(minute * 60.0, 0.4))
        engine.deliver(minute * 60.0)
    assert len(http_receiver.requests) == 1
    engine.close()

    engine = open_engine(sql_url, http_receiver)  # a new process over the same database
    assert engine.rules() == specs
    assert [alert.state for alert in engine.alerts()] == [AlertState.FIRING]
    for minute in range(15, 60):
        engine.evaluate(minute * 60.0, latest_samples(minute * 60.0, 0.4))
        engine.deliver(minute * 60.0)
    assert len(http_receiver.requests) == 1
    for minute in range(60, 80):
        engine.evaluate(minute * 60.0, latest_samples(minute * 60.0, 0.0))
        engine.deliver(minute * 60.0)
    assert titles(http_receiver)[1] == "[RESOLVED:1] alertname=KeyFeatureDrift model=credit"
    assert len(http_receiver.requests) == 2
    engine.close()


def test_rules_persist_merge_and_reject_invalid_sets(sql_url: str) -> None:
    engine = AlertingEngine(db=sql_url, clock=lambda: 0.0)
    first = load_rules(RULES)
    extra = RuleSpec(
        name="ErrorsHigh",
        model="credit",
        signal="error_rate",
        condition=ThresholdCondition(op=Op.GT, threshold=0.05),
    )
    tuned = RuleSpec(
        name="KeyFeatureDrift",
        model="credit",
        signal="drift.income.score",
        condition=ThresholdCondition(op=Op.GT, threshold=0.3),
    )
    engine.apply_rules(first)
    assert engine.apply_rules([extra], replace=False) == [*first, extra]
    assert engine.apply_rules([tuned], replace=False) == [tuned, extra]
    with pytest.raises(ConfigError, match="unique"):
        engine.apply_rules([extra, extra])
    engine.close()
    reopened = AlertingEngine(db=sql_url, clock=lambda: 0.0)
    assert reopened.rules() == [tuned, extra]
    assert reopened.apply_rules([]) == []
    reopened.close()
    assert AlertingEngine(db=sql_url, clock=lambda: 0.0).rules() == []


def test_a_plain_path_is_a_migrated_sqlite_file(tmp_path: Path) -> None:
    engine = AlertingEngine(db=str(tmp_path / "wk.db"))  # a plain path, as Settings.db allows
    engine.add_default_rules("credit")
    engine.close()
    with Store.open(f"sqlite:///{tmp_path / 'wk.db'}") as store:
        assert store.schema_revision() == HEAD
    reopened = AlertingEngine(db=f"sqlite:///{tmp_path / 'wk.db'}")
    assert len(reopened.rules()) == 6
    reopened.close()


def test_an_engine_over_an_opened_store_shares_its_database(sql_url: str) -> None:
    with Store.open(sql_url) as store:
        engine = AlertingEngine(db=store.engine, clock=lambda: 0.0)
        engine.add_default_rules("credit")
        engine.close()
        store.ping()  # the engine left the store's engine open
        reopened = AlertingEngine(db=store.engine, clock=lambda: 0.0)
        assert [spec.name for spec in reopened.rules()][:1] == ["CreditDriftShareHigh"]
        reopened.close()


def test_a_database_error_is_a_store_error_without_sql_text(sql_url: str) -> None:
    engine = AlertingEngine(db=sql_url, clock=lambda: 0.0)
    engine.add_default_rules("credit")
    with engine.db.begin() as connection:
        connection.exec_driver_sql("DROP TABLE alert_history")
    with pytest.raises(StoreError) as caught:
        engine.history()
    with pytest.raises(StoreError) as evaluating:
        engine.evaluate(0.0, latest_samples(0.0, 0.9))  # the pending alert's transition
    engine.close()
    for error in (caught.value, evaluating.value):
        message = str(error)
        assert "store at " in message, message
        assert "alert_history" in message, message
        assert not [word for word in ("SELECT", "INSERT", "[SQL") if word in message], message
    assert "failed during read alert history: " in str(caught.value)
    assert "failed during record alert history: " in str(evaluating.value)


def test_default_pack_is_added_once_and_keeps_tuned_rules(sql_url: str) -> None:
    engine = AlertingEngine(db=sql_url, clock=lambda: 0.0)
    tuned = RuleSpec(
        name="CreditErrorRateHigh",
        model="credit",
        signal="error_rate",
        condition=ThresholdCondition(op=Op.GT, threshold=0.2),
    )
    engine.apply_rules([tuned])
    engine.on_model_registered("credit")
    names = [spec.name for spec in engine.rules()]
    assert names == [
        "CreditErrorRateHigh",
        "CreditDriftShareHigh",
        "CreditFeatureDrift",
        "CreditAccuracyDrop",
        "CreditLatencyP99High",
        "CreditNoData",
    ]
    assert engine.rules()[0] == tuned
    assert engine.add_default_rules("credit") == []
    engine.close()


def test_without_receivers_alerts_are_recorded_but_nothing_is_sent(sql_url: str) -> None:
    engine = AlertingEngine(db=sql_url, clock=lambda: 0.0)
    engine.apply_rules(load_rules(RULES.replace("for: 10m", "for: 0")))
    for minute in range(3):
        report = engine.evaluate(minute * 60.0, latest_samples(minute * 60.0, 0.5))
        assert report.notifications == ()
        assert engine.deliver(minute * 60.0).delivered == ()
    (alert,) = engine.alerts(AlertState.FIRING)
    assert alert.labels["feature"] == "income"
    assert engine.alerts("pending") == []
    assert engine.notifications() == []
    assert [group.receiver for group in engine.groups()] == ["default"]


def test_silences_mute_list_and_expire(sql_url: str) -> None:
    clock = [0.0]
    engine = AlertingEngine(db=sql_url, clock=lambda: clock[0])
    engine.apply_rules(load_rules(RULES.replace("for: 10m", "for: 0")))
    engine.evaluate(0.0, latest_samples(0.0, 0.5))
    silence = engine.add_silence(matchers=["feature=income"], duration=3600, created_by="ana")
    (alert,) = engine.alerts()
    assert engine.muted() == {alert.fingerprint}
    clock[0] = 60.0
    expired = engine.expire_silence(silence.id)
    assert expired.ends_at == 60.0
    assert not expired.is_active(60.0)
    assert engine.muted() == set()
    assert [item.id for item in engine.silences()] == [silence.id]
    with pytest.raises(NotFoundError):
        engine.expire_silence("nope")
    with pytest.raises(ConfigError, match="exactly one"):
        engine.add_silence(matchers=["a=b"], created_by="ana")
    with pytest.raises(ConfigError, match="matcher"):
        engine.add_silence(matchers=["not a matcher"], duration=60, created_by="ana")


def test_pending_alert_that_clears_is_recorded_as_inactive(sql_url: str) -> None:
    engine = AlertingEngine(db=sql_url, clock=lambda: 0.0)
    engine.apply_rules(load_rules(RULES))
    engine.evaluate(0.0, latest_samples(0.0, 0.5))
    engine.evaluate(60.0, latest_samples(60.0, 0.1))
    assert engine.alerts() == []
    assert [(c.previous, c.state, c.value) for c in engine.history(5)] == [
        (AlertState.PENDING, AlertState.INACTIVE, 0.1),
        (AlertState.INACTIVE, AlertState.PENDING, 0.5),
    ]
    with pytest.raises(ConfigError):
        engine.history(0)


def test_background_loops_evaluate_deliver_and_stop(
    sql_url: str, http_receiver: CaptureServer
) -> None:
    ticks = iter(range(1_000_000))
    engine = AlertingEngine(
        db=sql_url,
        config=routing(http_receiver, group_wait="0s"),
        clock=lambda: float(next(ticks)),
    )
    engine.apply_rules(load_rules(RULES.replace("for: 10m", "for: 0")))
    delivered = threading.Event()
    calls: list[int] = []

    def source() -> list[dict[str, Any]]:
        calls.append(1)
        if http_receiver.requests:
            delivered.set()
        return latest_samples(0.0, 0.9)

    engine.start(source, interval=0.01, delivery_interval=0.01)
    with pytest.raises(ConflictError):
        engine.start(source)
    assert delivered.wait(timeout=20), "the loops never delivered the page"
    engine.stop()
    assert not engine.running
    seen = len(calls)
    threading.Event().wait(0.05)
    assert len(calls) == seen  # stopped means stopped
    assert titles(http_receiver)[0] == "[FIRING:1] alertname=KeyFeatureDrift model=credit"
    engine.close()


def test_a_failing_round_is_logged_and_the_loop_goes_on(
    sql_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = AlertingEngine(db=sql_url, clock=lambda: 0.0)
    engine.apply_rules(load_rules(RULES.replace("for: 10m", "for: 0")))
    rounds: list[int] = []
    recovered = threading.Event()

    def source() -> list[dict[str, Any]]:
        rounds.append(1)
        if len(rounds) == 1:
            return [{"labels": {"signal": "count"}, "value": 1.0, "timestamp": 0.0}]
        recovered.set()
        return latest_samples(0.0, 0.9)

    engine.start(source, interval=0.01)
    assert recovered.wait(timeout=20)
    engine.stop()
    assert [alert.state for alert in engine.alerts()] == [AlertState.FIRING]
    assert "alerting evaluation round failed" in caplog.text
    engine.close()


def test_sample_from_dict_matches_the_monitor_sample_shape() -> None:
    sample = sample_from_dict(
        {
            "labels": {"model": "m", "version": "2", "segment": "*", "signal": "drift.a.b.score"},
            "value": None,
            "timestamp": 5,
        }
    )
    assert dict(sample.labels) == {
        "model": "m",
        "version": "2",
        "signal": "drift.a.b.score",
        "feature": "a.b",
    }
    assert math.isnan(sample.value)
    assert sample.timestamp == 5.0
    kept = sample_from_dict(
        {
            "labels": {"model": "m", "signal": "drift.x.score", "feature": "y"},
            "value": 1,
            "timestamp": 0,
        }
    )
    assert kept.labels["feature"] == "y"
    with pytest.raises(InputError, match=r"samples\[3\]\.labels"):
        sample_from_dict({"labels": {"signal": "count"}, "value": 1, "timestamp": 0}, index=3)
    with pytest.raises(InputError, match="numbers"):
        sample_from_dict(
            {"labels": {"model": "m", "signal": "count"}, "value": "x", "timestamp": 0}
        )


def test_rules_naming_unknown_models_or_signals_are_refused(sql_url: str) -> None:
    catalog = {"credit": ["accuracy", "drift.income.score", "drift.income.detected"]}
    engine = AlertingEngine(db=sql_url, clock=lambda: 0.0, signal_catalog=lambda: catalog)
    base = {"name": "Acc", "model": "credit", "signal": "accuracy", "condition": "< 0.8"}
    engine.apply_rules([RuleSpec.from_dict(base)])
    with pytest.raises(ConfigError, match="unknown model 'cancr'; registered models: credit"):
        engine.apply_rules([RuleSpec.from_dict({**base, "model": "cancr"})])
    with pytest.raises(ConfigError, match=r"no signal 'acuracy'; signals: accuracy, drift\."):
        engine.apply_rules([RuleSpec.from_dict({**base, "signal": "acuracy"})])
    with pytest.raises(ConfigError, match=r"any registered model produces no signal 'x\.\*'"):
        engine.apply_rules([RuleSpec.from_dict({**base, "model": "*", "signal": "x.*"})])
    # Patterns, every model and absence of data are fine; nothing invalid was stored.
    engine.apply_rules(
        [
            RuleSpec.from_dict({**base, "name": "Drift", "signal": "drift.*.detected"}),
            RuleSpec.from_dict({**base, "name": "Any", "model": "*"}),
            RuleSpec.from_dict(
                {
                    "name": "Quiet",
                    "model": "credit",
                    "signal": "absent",
                    "condition": {"absent_for": "1h"},
                }
            ),
        ]
    )
    assert [spec.name for spec in engine.rules()] == ["Drift", "Any", "Quiet"]
    # A model without features gets a default pack without drift rules.
    catalog["plain"] = ["accuracy", "error_rate", "latency_p99"]
    added = {spec.signal for spec in engine.add_default_rules("plain")}
    assert added == {"accuracy", "error_rate", "latency_p99", "absent"}
    engine.close()
