"""Evaluator → dispatcher → SQL outbox → worker → a real HTTP receiver, with restarts."""

from __future__ import annotations

from dataclasses import dataclass

from tests.alerts._servers import CaptureServer
from watchkeeper.alerts import (
    DeliveryWorker,
    Dispatcher,
    Matcher,
    Receiver,
    Route,
    RuleEvaluator,
    RuleSpec,
    Sample,
    Silence,
    SlackNotifier,
)
from watchkeeper.alerts.model import Severity
from watchkeeper.alerts.rules import Op, ThresholdCondition
from watchkeeper.store.alerts import SqlAlertStateStore, SqlSilenceStore
from watchkeeper.store.outbox import SqlOutbox

RULE = RuleSpec(
    name="KeyFeatureDrift",
    model="credit",
    signal="drift.income.score",
    condition=ThresholdCondition(op=Op.GT, threshold=0.2),
    for_=600.0,
    keep_firing_for=300.0,
    severity=Severity.CRITICAL,
    annotations={
        "summary": '{{ labels.model }} drift on {{ labels.feature }} = {{ value | printf("%.3f") }}'
    },
)


@dataclass
class Service:
    """What the service will wire: the four parts over one database."""

    evaluator: RuleEvaluator
    dispatcher: Dispatcher
    worker: DeliveryWorker
    outbox: SqlOutbox

    def step(self, now: float, value: float) -> None:
        sample = Sample.of(model="credit", signal="drift.income.score", value=value, timestamp=now)
        self.dispatcher.put(self.evaluator.evaluate(now, [sample]), now)
        self.dispatcher.tick(now)
        self.worker.run_once(now)


def start(url: str, slack: CaptureServer) -> Service:
    state = SqlAlertStateStore(engine=url)
    outbox = SqlOutbox(engine=url)
    receivers = {
        "slack": Receiver(
            name="slack", notifiers=(SlackNotifier(url=slack.url("/services/T/B/X"), timeout=2.0),)
        )
    }
    dispatcher = Dispatcher(
        route=Route(receiver="slack", group_by=("alertname", "model")),
        receivers=receivers,
        outbox=outbox,
        state=state,
        silences=SqlSilenceStore(engine=url),
        external_url="http://watchkeeper.test",
    )
    return Service(
        evaluator=RuleEvaluator(rules=[RULE], store=state, external_url="http://watchkeeper.test"),
        dispatcher=dispatcher,
        worker=DeliveryWorker(outbox=outbox, receivers=receivers, seed=0),
        outbox=outbox,
    )


def titles(slack: CaptureServer) -> list[str]:
    return [request.body["text"] for request in slack.requests]


def test_worked_example_pages_once_resolves_and_silence_stops_repeats(
    sql_url: str, http_receiver: CaptureServer
) -> None:
    service = start(sql_url, http_receiver)
    now = 0.0
    for _ in range(12 * 60):  # 12 h of one-minute evaluations, drift throughout the first 9 h
        value = 0.35 if now < 9 * 3600 else 0.05
        if now == 5 * 3600:
            service.dispatcher.silences.add(
                Silence(
                    matchers=(Matcher.parse('alertname="KeyFeatureDrift"'),),
                    starts_at=now,
                    ends_at=now + 5 * 3600,
                    created_by="ana",
                    comment="retraining scheduled",
                )
            )
        service.step(now, value)
        now += 60.0
    # Paged at 11 m (for 10 m, then group_wait 30 s rounded to the next tick), repeated at
    # 4 h 11 m; the silence (5 h – 10 h) swallowed the 8 h 11 m repeat; the alert resolved at
    # 9 h 5 m (keep_firing_for) and the resolution, never muted, closed the incident.
    assert titles(http_receiver) == [
        "[FIRING:1] alertname=KeyFeatureDrift model=credit",
        "[FIRING:1] alertname=KeyFeatureDrift model=credit",
        "[RESOLVED:1] alertname=KeyFeatureDrift model=credit",
    ]
    first = http_receiver.requests[0].body["blocks"][1]["text"]["text"]
    assert "credit drift on income = 0.350" in first
    assert "<http://watchkeeper.test/alerts/rules/KeyFeatureDrift|" in first
    keys = [request.headers["idempotency-key"] for request in http_receiver.requests]
    assert len(set(keys)) == 3


def test_restart_while_pending_and_while_firing_neither_repages_nor_loses(
    sql_url: str, http_receiver: CaptureServer
) -> None:
    service = start(sql_url, http_receiver)
    for minute in range(5):  # pending for 5 minutes
        service.step(minute * 60.0, 0.4)
    service = start(sql_url, http_receiver)  # restart while pending
    for minute in range(5, 15):
        service.step(minute * 60.0, 0.4)
    # `for` counted from the first activation (t = 0): paged at 10 m + group_wait → 11 m.
    assert len(http_receiver.requests) == 1
    (page,) = service.outbox.items()
    assert page.created_at == 11 * 60.0
    assert [alert["startsAt"] for alert in page.payload["alerts"]] == ["1970-01-01T00:10:00.000Z"]
    service = start(sql_url, http_receiver)  # restart while firing
    for minute in range(15, 60):
        service.step(minute * 60.0, 0.4)
    assert len(http_receiver.requests) == 1  # no duplicate page
    for minute in range(60, 80):
        service.step(minute * 60.0, 0.0)
    assert titles(http_receiver)[-1].startswith("[RESOLVED:1]")  # the firing alert was not lost
    assert len(http_receiver.requests) == 2


def test_restart_with_undelivered_page_delivers_it(
    sql_url: str, http_receiver: CaptureServer
) -> None:
    http_receiver.statuses = [503] * 100  # the receiver fails while the first process runs
    service = start(sql_url, http_receiver)
    for minute in range(13):
        service.step(minute * 60.0, 0.4)
    assert http_receiver.requests == []
    http_receiver.statuses = []
    service = start(sql_url, http_receiver)
    for minute in range(13, 30):
        service.step(minute * 60.0, 0.4)
    assert len(http_receiver.requests) == 1
