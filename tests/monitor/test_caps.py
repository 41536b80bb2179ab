"""Cardinality caps: versions and segments per model, on a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from typing import Any

from tests.monitor.test_service import HOUR, T0, Clock, events, reference_frame, spec
from watchkeeper.config import Settings
from watchkeeper.monitor import MonitorService
from watchkeeper.store import Store


def capped_service(store: Store, clock: Clock, **caps: int) -> MonitorService:
    settings = Settings(
        max_event_age_seconds=30 * 86_400, max_event_future_seconds=2 * HOUR, **caps
    )
    service = MonitorService(store, settings=settings, clock=clock)
    service.start()
    return service


def over_versions(count: int, versions: int, *, prefix: str = "e") -> list[dict[str, Any]]:
    """``count`` events cycling through versions v1..v<versions>."""
    batch = events(count, T0, seed=3, prefix=prefix)
    for index, event in enumerate(batch):
        event["version"] = f"v{index % versions + 1}"
    return batch


def open_window_versions(service: MonitorService) -> set[str]:
    return {key.version for key in service._shared.open.get("churn", {})}


def test_events_beyond_the_version_cap_are_rejected_and_counted(store: Store) -> None:
    clock = Clock(T0 + 10)
    service = capped_service(store, clock, max_versions_per_model=3)
    service.register_model(spec(), reference=reference_frame())
    batch = over_versions(20, 5)
    batch[3]["features"]["a"] = "oops"  # invalid: rejected by validation, not by the cap
    outcome = service.ingest_events("churn", batch)

    kept = [i for i, e in enumerate(batch) if e["version"] in ("v1", "v2", "v3") and i != 3]
    assert outcome.ids == [batch[i]["id"] for i in kept]
    capped = [r for r in outcome.rejected if r.field == "version"]
    assert [r.index for r in capped] == [
        i for i, e in enumerate(batch) if e["version"] in ("v4", "v5") and i != 3
    ]
    assert "'v5' would exceed the cap of model 'churn' on distinct versions" in capped[0].reason
    assert "WATCHKEEPER_MAX_VERSIONS_PER_MODEL" in capped[0].reason
    assert {r.index for r in outcome.rejected} == {3, *(r.index for r in capped)}
    assert [v["version"] for v in service.list_versions("churn")] == ["v1", "v2", "v3"]
    assert open_window_versions(service) <= {"v1", "v2", "v3", ""}
    counts = service.counters()["models"]["churn"]
    assert counts["over_cap_version"] == len(capped) == 7
    assert counts["rejected"] == 8

    clock.now = T0 + 2 * HOUR
    service.tick()
    window = {"start": T0, "end": T0 + HOUR}
    points = service.series("churn", "quality.rejected_cardinality", **window)
    assert [p["value"] for p in points] == [7.0]
    assert [p["value"] for p in service.series("churn", "count", **window)] == [len(kept)]
    samples = service.latest_samples()
    by_version = {
        s["labels"]["version"]: s["value"]
        for s in samples
        if s["labels"]["signal"] == "quality.rejected_cardinality"
    }
    assert by_version == {"": 7.0, "v1": 0.0, "v2": 0.0, "v3": 0.0}


def test_the_cap_holds_after_a_restart(store: Store) -> None:
    clock = Clock(T0 + 10)
    service = capped_service(store, clock, max_versions_per_model=3)
    service.register_model(spec(), reference=reference_frame())
    service.ingest_events("churn", over_versions(6, 3))
    service.close()

    restarted = capped_service(store, clock, max_versions_per_model=3)
    outcome = restarted.ingest_events("churn", over_versions(8, 4, prefix="r"))
    assert outcome.accepted == 6
    assert [r.index for r in outcome.rejected] == [3, 7]
    assert {r.field for r in outcome.rejected} == {"version"}
    assert len(restarted.list_versions("churn")) == 3


def test_events_beyond_the_segment_cap_are_rejected(store: Store) -> None:
    clock = Clock(T0 + 10)
    service = capped_service(store, clock, max_segments_per_model=2)
    service.register_model(spec(), reference=reference_frame())
    batch = [
        *events(3, T0, seed=1, prefix="de", country="de"),
        *events(3, T0, seed=2, prefix="fr", country="fr"),
        *events(3, T0, seed=3, prefix="it", country="it"),
    ]
    outcome = service.ingest_events("churn", batch)
    assert outcome.accepted == 6
    assert [(r.index, r.field) for r in outcome.rejected] == [
        (6, "segment"),
        (7, "segment"),
        (8, "segment"),
    ]
    assert "'country=it' would exceed the cap of model 'churn'" in outcome.rejected[0].reason
    assert "max_segments_per_model" in outcome.rejected[0].reason
    assert service.counters()["models"]["churn"]["over_cap_segment"] == 3
    assert {key.segment for key in service._shared.open["churn"]} == {
        "country=de",
        "country=fr",
        "",
    }
    service.close()
    # Known segments are read back from the stored windows.
    restarted = capped_service(store, clock, max_segments_per_model=2)
    again = restarted.ingest_events("churn", events(2, T0, seed=4, prefix="it2", country="it"))
    assert (again.accepted, len(again.rejected)) == (0, 2)


def test_concurrent_batches_never_pass_the_cap_together(store: Store) -> None:
    clock = Clock(T0 + 10)
    service = capped_service(store, clock, max_versions_per_model=3)
    service.register_model(spec(), reference=reference_frame())
    accepted: list[int] = []
    start = threading.Barrier(8)

    def send(thread: int) -> None:
        batch = events(10, T0, seed=thread, prefix=f"t{thread}-")
        for event in batch:
            event["version"] = f"v{thread}"
        start.wait()
        accepted.append(service.ingest_events("churn", batch).accepted)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(accepted) == [0, 0, 0, 0, 0, 10, 10, 10]
    assert len(service.list_versions("churn")) == 3
    assert len(open_window_versions(service) - {""}) == 3


def test_invalid_events_of_unknown_versions_make_no_windows(store: Store) -> None:
    service = capped_service(store, Clock(T0 + 10), max_versions_per_model=3)
    service.register_model(spec(), reference=reference_frame())
    batch = events(50, T0, seed=5)
    for index, event in enumerate(batch):
        event["version"] = f"request-{index}"
        event["features"]["a"] = "oops"
    outcome = service.ingest_events("churn", batch)
    assert (outcome.accepted, len(outcome.rejected)) == (0, 50)
    assert open_window_versions(service) == {""}
