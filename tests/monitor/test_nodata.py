"""Absent data (the default pack's NoData) through the live engine on both stores: measured from
the ingest time of a model's (version's, segment's) last event, never from window timestamps."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from watchkeeper.alerts import RuleSpec
from watchkeeper.alerts.engine import AlertingEngine
from watchkeeper.config import Settings
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor import MonitorService
from watchkeeper.store import Store

HOUR = 3600.0
T0 = 1_700_006_400.0 - 1_700_006_400.0 % 86_400
MINUTE = 60.0


class Live:
    """A service and its alerting engine on one clock, driven as the server drives them: the
    service ticks and the engine evaluates every five minutes of the clock."""

    def __init__(self, store: Store, now: float) -> None:
        self.now = now
        self.store = store
        self.service = MonitorService(store, settings=Settings(), clock=self.clock)
        self.service.start()
        self.alerting = AlertingEngine(
            db=store.engine, clock=self.clock, signal_catalog=self.service.signal_catalog
        )
        self.sent = 0

    def clock(self) -> float:
        return self.now

    def register(self) -> None:
        spec = ModelSpec.from_dict(
            {
                "name": "churn",
                "task": "regression",
                "windows": [int(HOUR)],
                "features": {"x": "numeric"},
                "segments": ["country"],
            }
        )
        self.service.register_model(spec)
        self.alerting.on_model_registered("churn", window_seconds=HOUR)

    def run(self, until: float, *, every: float | None, country: str = "de") -> list[float]:
        """Advance to ``until``: one event every ``every`` seconds (None: none), evaluation
        every five minutes; return the times at which NoData was firing."""
        firing = []
        next_event = self.now if every is not None else float("inf")
        next_evaluation = self.now
        while self.now < until:
            self.now = min(next_event, next_evaluation, until)
            if self.now == next_event:
                self.sent += 1
                outcome = self.service.ingest_events(
                    "churn",
                    [
                        {
                            "id": f"e{self.sent}",
                            "timestamp": self.now,
                            "version": "v1",
                            "segment": {"country": country},
                            "features": {"x": 1.0},
                            "prediction": 1.0,
                        }
                    ],
                )
                assert outcome.accepted == 1
                next_event += every or 0.0
            if self.now == next_evaluation:
                self.service.tick()
                self.alerting.evaluate(self.now, self.service.latest_samples())
                if self.no_data():
                    firing.append(self.now)
                next_evaluation += 5 * MINUTE
        return firing

    def no_data(self, state: str = "firing") -> list[dict[str, object]]:
        return [
            record.to_dict()
            for record in self.alerting.alerts(state)
            if record.rule == "ChurnNoData"
        ]

    def close(self) -> None:
        self.alerting.close()
        self.service.close()


@pytest.fixture
def live(store: Store) -> Iterator[Live]:
    opened = Live(store, T0 + 600.0)
    opened.register()
    yield opened
    opened.close()


def test_one_event_a_minute_with_hourly_windows_never_looks_absent(live: Live) -> None:
    assert live.run(T0 + 5 * HOUR, every=MINUTE) == []
    assert live.no_data("pending") == []


def test_a_stream_that_stops_is_absent_after_the_period_and_back_when_it_resumes(
    live: Live,
) -> None:
    live.run(T0 + 2 * HOUR, every=MINUTE)
    last = live.now  # the last event was sent at the end of the run
    firing = live.run(T0 + 3 * HOUR, every=None)
    # The default period is 30 minutes, evaluated every five minutes: silent for more than 30
    # minutes at the evaluation 35 minutes after the last event.
    assert firing[0] == last + 35 * MINUTE
    (alert,) = live.no_data()
    assert alert["labels"] == {
        "alertname": "ChurnNoData",
        "model": "churn",
        "severity": "warning",
        "signal": "absent",
    }
    assert float(alert["value"]) == pytest.approx(live.now - last)
    live.run(T0 + 4 * HOUR, every=MINUTE)
    assert live.no_data() == []


def test_a_model_that_never_had_an_event_is_not_alerted(live: Live) -> None:
    assert live.run(T0 + 6 * HOUR, every=None) == []
    assert live.no_data("pending") == []


def test_a_segment_rule_watches_its_own_segment(live: Live) -> None:
    live.alerting.apply_rules(
        [
            RuleSpec.from_dict(
                {
                    "name": "FranceQuiet",
                    "model": "churn",
                    "segment": "country=fr",
                    "signal": "absent",
                    "condition": {"absent_for": "20m"},
                }
            )
        ],
        replace=False,
    )
    live.run(T0 + HOUR, every=MINUTE, country="fr")
    live.run(T0 + 2 * HOUR, every=MINUTE, country="de")
    quiet = [r for r in live.alerting.alerts("firing") if r.rule == "FranceQuiet"]
    assert [r.labels["segment"] for r in quiet] == ["country=fr"]
    assert live.no_data() == []


def test_the_last_event_survives_a_restart(store: Store) -> None:
    """After a restart the last event's time comes from the store's ``ingested_at`` (stamped
    with the wall clock, so this test's clock starts at the wall clock)."""
    started = time.time()
    first = Live(store, started)
    first.register()
    first.run(started + 3 * MINUTE, every=MINUTE)
    first.close()
    second = Live(store, started + 2 * HOUR)
    try:
        (sample,) = [
            s for s in second.service.latest_samples() if s["labels"]["signal"] == "last_event"
        ]
        assert sample["labels"] == {
            "model": "churn",
            "version": "v1",
            "segment": "country=de",
            "signal": "last_event",
        }
        assert started <= sample["value"] == sample["timestamp"] <= time.time()
        assert second.run(started + 2 * HOUR + 1, every=None) == [started + 2 * HOUR]
        (alert,) = second.no_data()
        assert float(alert["value"]) == pytest.approx(2 * HOUR, abs=300)
    finally:
        second.close()


def test_the_engine_reads_the_signal_the_monitor_publishes() -> None:
    from watchkeeper.alerts import rules
    from watchkeeper.monitor import queries

    assert rules.LAST_EVENT_SIGNAL == queries.LAST_EVENT_SIGNAL
