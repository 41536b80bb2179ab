from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from watchkeeper.alerts import Alert, Dispatcher, Matcher, Receiver, Route, Silence
from watchkeeper.alerts.model import AlertState
from watchkeeper.alerts.outbox import InMemoryOutbox, OutboxItem
from watchkeeper.alerts.routing import InhibitRule
from watchkeeper.alerts.state import InMemoryAlertStateStore
from watchkeeper.errors import ConfigError


class RecordingNotifier:
    """An in-memory notifier (a fake): keeps every message it was asked to send."""

    kind = "recording"

    def __init__(self) -> None:
        self.sent: list[Mapping[str, Any]] = []

    def send(self, message: Mapping[str, Any], *, idempotency_key: str) -> None:
        self.sent.append(message)

    def close(self) -> None:
        return


def firing(name: str = "Drift", at: float = 0.0, **labels: str) -> Alert:
    merged = {"alertname": name, "severity": "warning", "model": "credit", **labels}
    return Alert(
        labels=merged,
        annotations={"summary": f"{name} on {merged['model']}"},
        state=AlertState.FIRING,
        starts_at=at,
        ends_at=None,
        value=0.3,
        updated_at=at,
    )


def resolved(alert: Alert, at: float) -> Alert:
    return Alert(
        labels=alert.labels,
        annotations=alert.annotations,
        state=AlertState.RESOLVED,
        starts_at=alert.starts_at,
        ends_at=at,
        value=alert.value,
        updated_at=at,
    )


def refreshed(alert: Alert, at: float) -> Alert:
    """The same firing alert as the evaluator re-reports it at ``at``."""
    return Alert(
        labels=alert.labels,
        annotations=alert.annotations,
        state=alert.state,
        starts_at=alert.starts_at,
        ends_at=None,
        value=alert.value,
        updated_at=at,
    )


def make(
    *,
    send_resolved: bool = True,
    state: InMemoryAlertStateStore | None = None,
    outbox: InMemoryOutbox | None = None,
    **options: Any,
) -> Dispatcher:
    route = Route(
        receiver="team",
        group_by=("alertname", "model"),
        group_wait=30.0,
        group_interval=300.0,
        repeat_interval=14400.0,
    )
    return Dispatcher(
        route=route,
        receivers={
            "team": Receiver(
                name="team", notifiers=(RecordingNotifier(),), send_resolved=send_resolved
            )
        },
        outbox=outbox or InMemoryOutbox(),
        state=state,
        external_url="http://watchkeeper.test",
        **options,
    )


def statuses(items: list[OutboxItem]) -> list[tuple[str, list[str]]]:
    return [
        (item.payload["status"], sorted(alert["status"] for alert in item.payload["alerts"]))
        for item in items
    ]


def test_group_wait_collects_alerts_that_start_together() -> None:
    dispatcher = make()
    dispatcher.put([firing(feature="age")], now=0.0)
    dispatcher.put([firing(feature="income")], now=10.0)
    assert dispatcher.tick(29.0) == []
    items = dispatcher.tick(30.0)
    assert len(items) == 1
    assert len(items[0].payload["alerts"]) == 2
    assert items[0].payload["groupLabels"] == {"alertname": "Drift", "model": "credit"}


def test_new_alert_in_existing_group_waits_for_group_interval() -> None:
    dispatcher = make()
    dispatcher.put([firing(feature="age")], now=0.0)
    assert len(dispatcher.tick(30.0)) == 1
    dispatcher.put([firing(feature="income")], now=40.0)
    assert dispatcher.tick(100.0) == []
    items = dispatcher.tick(330.0)
    assert [alert["labels"]["feature"] for alert in items[0].payload["alerts"]] == ["age", "income"]


def test_repeat_interval_is_the_cooldown() -> None:
    dispatcher = make()
    alert = firing()
    sent_at = []
    for now in range(0, 5 * 3600, 60):
        dispatcher.put([refreshed(alert, float(now))], now=float(now))
        if dispatcher.tick(float(now)):
            sent_at.append(now)
    # First after group_wait (rounded up to the next tick), then after 4 h at a group_interval.
    assert sent_at == [60, 60 + 14400]


def test_resolution_is_sent_once_when_send_resolved() -> None:
    dispatcher = make()
    alert = firing()
    dispatcher.put([alert], now=0.0)
    dispatcher.tick(30.0)
    dispatcher.put([resolved(alert, 100.0)], now=100.0)
    items = dispatcher.tick(330.0)
    assert statuses(items) == [("resolved", ["resolved"])]
    assert items[0].payload["alerts"][0]["endsAt"] == "1970-01-01T00:01:40.000Z"
    dispatcher.put([resolved(alert, 100.0)], now=400.0)  # the evaluator re-reports it
    assert dispatcher.tick(1000.0) == []
    assert dispatcher.groups() == []


def test_without_send_resolved_the_log_is_cleared_but_nothing_sent() -> None:
    dispatcher = make(send_resolved=False)
    alert = firing()
    dispatcher.put([alert], now=0.0)
    dispatcher.tick(30.0)
    dispatcher.put([resolved(alert, 100.0)], now=100.0)
    assert dispatcher.tick(330.0) == []
    # It fires again later: that is news, so it is sent at once after group_wait.
    dispatcher.put([firing(at=1000.0)], now=1000.0)
    assert statuses(dispatcher.tick(1030.0)) == [("firing", ["firing"])]


def test_partial_resolution_with_other_alerts_still_firing() -> None:
    dispatcher = make()
    age, income = firing(feature="age"), firing(feature="income")
    dispatcher.put([age, income], now=0.0)
    dispatcher.tick(30.0)
    dispatcher.put([resolved(age, 60.0), refreshed(income, 300.0)], now=300.0)
    assert statuses(dispatcher.tick(330.0)) == [("firing", ["firing", "resolved"])]


def test_alert_not_reported_within_resolve_timeout_resolves_itself() -> None:
    dispatcher = make(resolve_timeout=300.0)
    dispatcher.put([firing()], now=0.0)
    dispatcher.tick(30.0)
    items = dispatcher.tick(330.0)
    assert statuses(items) == [("resolved", ["resolved"])]
    assert items[0].payload["alerts"][0]["endsAt"] == "1970-01-01T00:05:00.000Z"


def test_silence_mutes_and_expiry_does_not_repage_before_repeat_interval() -> None:
    dispatcher = make()
    alert = firing()
    silence = dispatcher.silences.add(
        Silence(
            matchers=(Matcher.parse('model="credit"'),),
            starts_at=0.0,
            ends_at=1000.0,
            created_by="ana",
            comment="known issue",
        )
    )
    dispatcher.put([alert], now=0.0)
    assert dispatcher.tick(30.0) == []
    assert dispatcher.muted(30.0) == {alert.fingerprint}
    dispatcher.silences.update(silence.expired(500.0))
    dispatcher.put([refreshed(alert, 600.0)], now=600.0)
    assert len(dispatcher.tick(630.0)) == 1  # never notified before: pages once unmuted


def test_inhibition_mutes_warnings_of_a_model_with_a_critical_alert() -> None:
    dispatcher = make(
        inhibit_rules=[
            InhibitRule(
                source_matchers=(Matcher.parse('severity="critical"'),),
                target_matchers=(Matcher.parse('severity="warning"'),),
                equal=("model",),
            )
        ]
    )
    critical = firing("AccuracyDrop", severity="critical")
    warning_credit = firing("Drift")
    warning_fraud = firing("Drift", model="fraud")
    dispatcher.put([critical, warning_credit, warning_fraud], now=0.0)
    items = dispatcher.tick(30.0)
    names = sorted(
        (a["labels"]["alertname"], a["labels"]["model"])
        for item in items
        for a in item.payload["alerts"]
    )
    assert names == [("AccuracyDrop", "credit"), ("Drift", "fraud")]


def test_restart_with_notification_log_does_not_repage() -> None:
    state = InMemoryAlertStateStore()
    outbox = InMemoryOutbox()
    first = make(state=state, outbox=outbox)
    alert = firing()
    first.put([alert], now=0.0)
    assert len(first.tick(30.0)) == 1
    second = make(state=state, outbox=outbox)
    second.put([alert], now=100.0)
    assert second.tick(130.0) == []
    second.put([resolved(alert, 200.0)], now=200.0)
    assert statuses(second.tick(430.0)) == [("resolved", ["resolved"])]


def test_crash_between_outbox_and_log_reuses_the_idempotency_key() -> None:
    outbox = InMemoryOutbox()
    alert = firing()
    first = make(outbox=outbox)  # its log lives in its own in-memory store and is lost
    first.put([alert], now=0.0)
    keys_first = [item.key for item in first.tick(30.0)]
    second = make(outbox=outbox)
    second.put([alert], now=40.0)
    keys_second = [item.key for item in second.tick(70.0)]
    assert keys_first == keys_second
    assert len(outbox.items()) == 1


def test_webhook_v4_message_shape() -> None:
    dispatcher = make()
    dispatcher.put([firing(feature="age"), firing(feature="income")], now=0.0)
    payload = dict(dispatcher.tick(30.0)[0].payload)
    assert set(payload) == {
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    }
    assert payload["version"] == "4"
    assert payload["groupKey"] == '{}:{alertname="Drift", model="credit"}'
    assert payload["commonLabels"] == {
        "alertname": "Drift",
        "severity": "warning",
        "model": "credit",
    }
    assert payload["commonAnnotations"] == {"summary": "Drift on credit"}
    assert payload["externalURL"] == "http://watchkeeper.test"
    first = payload["alerts"][0]
    assert set(first) == {
        "status",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
    }
    assert first["endsAt"] == "0001-01-01T00:00:00Z"


def test_unknown_receiver_in_route_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"receivers \['pager'\] are not configured"):
        Dispatcher(
            route=Route(receiver="team", routes=(Route(receiver="pager"),)),
            receivers={"team": Receiver(name="team")},
            outbox=InMemoryOutbox(),
        )
