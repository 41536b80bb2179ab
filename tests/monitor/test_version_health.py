"""Each version's live health (events, newest event, latest closed window with its signals),
read by a running service from memory and by another process from the store."""

from __future__ import annotations

from tests.monitor.test_service import HOUR, T0, Clock, events, make_service, reference_frame, spec
from watchkeeper.monitor import MonitorService
from watchkeeper.store import Store


def test_open_windows_count_then_the_closed_window_carries_the_signals(store: Store) -> None:
    clock = Clock(T0 + 10)
    service = make_service(store, clock)
    service.register_model(spec(), reference=reference_frame())
    first = events(300, T0, seed=1)
    second = [{**event, "id": f"b{index}", "version": "v2"} for index, event in enumerate(first)]
    service.ingest_events("churn", first[:200] + second[:50])
    health = service.version_health("churn")
    assert sorted(health) == ["v1", "v2"]
    assert (health["v1"]["events"], health["v1"]["window"]) == (200, None)
    assert health["v2"]["events"] == 50
    assert health["v1"]["last_event"] is not None

    # Another process (the CLI on the database) reads the checkpointed open windows.
    service.checkpoint()
    elsewhere = MonitorService(store, settings=service._shared.settings).version_health("churn")
    assert {name: entry["events"] for name, entry in elsewhere.items()} == {"v1": 200, "v2": 50}

    clock.now = T0 + HOUR + 1
    service.tick()
    service.ingest_events("churn", events(10, T0 + HOUR, seed=2, prefix="n"))
    health = service.version_health("churn")
    window = health["v1"]["window"]
    assert (window["start"], window["end"], window["count"]) == (T0, T0 + HOUR, 200)
    assert window["signals"]["drift_share"] is not None
    assert health["v1"]["events"] == 210, "the closed window and the new open one"
    assert health["v2"]["window"]["count"] == 50
    assert (
        MonitorService(store, settings=service._shared.settings).version_health("churn")["v2"][
            "window"
        ]
        == health["v2"]["window"]
    )
    service.close()
