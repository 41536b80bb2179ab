"""Updating a registered model's config: versions, open windows, the reference (both stores)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.monitor.test_service import HOUR, T0, Clock, events, make_service, reference_frame, spec
from watchkeeper.errors import ConfigError, NotFoundError, StaleVersionError
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.store import Store


def _with(service: Any, **changes: Any) -> ModelSpec:
    return ModelSpec.from_dict({**service.get_model("churn").to_dict(), **changes})


def test_each_update_adds_one_to_the_config_version_and_is_checked_against_it(
    store: Store,
) -> None:
    service = make_service(store, Clock(T0 + 60))
    service.register_model(spec(), reference=reference_frame())
    assert service.config_version("churn") == 1
    updated, version = service.update_model(_with(service, retention_days=7), expected_version=1)
    assert (version, updated.retention_days) == (2, 7)
    assert service.get_model("churn").retention_days == 7
    assert store.get_model("churn").config["retention_days"] == 7
    with pytest.raises(StaleVersionError, match="config version 2, not 1") as stale:
        service.update_model(_with(service, retention_days=9), expected_version=1)
    assert stale.value.current == 2
    assert service.get_model("churn").retention_days == 7
    assert service.update_model(_with(service, retention_days=9))[1] == 3  # no check: applies
    missing = ModelSpec.from_dict({**service.get_model("churn").to_dict(), "name": "nope"})
    with pytest.raises(NotFoundError):
        service.update_model(missing)


def test_windows_of_kept_lengths_go_on_removed_ones_close_at_their_end_new_ones_start(
    store: Store,
) -> None:
    clock = Clock(T0 + 60)
    service = make_service(store, clock)
    service.register_model(
        ModelSpec.from_dict({**spec().to_dict(), "windows": [HOUR, 86_400]}),
        reference=reference_frame(),
    )
    assert service.ingest_events("churn", events(10, T0 + 10, seed=1)).accepted == 10
    service.update_model(_with(service, windows=[HOUR, "6h"]), expected_version=1)
    clock.now = T0 + 1800
    after = events(10, T0 + 1800, seed=2, prefix="f")
    for event in after:
        event["timestamp"] = T0 + 1800 + float(event["id"][1:])
    assert service.ingest_events("churn", after).accepted == 10

    def closed(now: float) -> dict[int, int]:
        clock.now = now
        return {entry["window_seconds"]: entry["count"] for entry in service.tick(now)}

    # The hour went on (10 + 10 events); the new 6-hour window holds the events after the update.
    assert closed(T0 + 6 * HOUR + 1) == {HOUR: 20, 6 * HOUR: 10}
    # The day (a removed length) took no event after the update and closes at its end.
    assert closed(T0 + 86_400 + 1) == {86_400: 10}
    assert closed(T0 + 2 * 86_400 + 1) == {}


def test_changed_features_stop_the_open_windows_profiles_and_keep_the_reference(
    store: Store,
) -> None:
    clock = Clock(T0 + 60)
    service = make_service(store, clock)
    service.register_model(spec(), reference=reference_frame())
    service.ingest_events("churn", events(50, T0 + 10, seed=1))
    before = service.range_report("churn", start=T0, end=T0 + HOUR, version=None, segment=None)
    assert before["drift"]["tested_columns"] == 3
    service.update_model(_with(service, features={"a": "numeric", "b": "numeric"}))
    clock.now = T0 + HOUR + 1
    service.tick(T0 + HOUR + 1)
    # The window open during the change carries no drift (its profile was on the old columns).
    window = service.range_report("churn", start=T0, end=T0 + HOUR, version=None, segment=None)
    assert window["drift"]["tested_columns"] == 0
    # Later windows follow the new config on the kept reference.
    later = events(50, T0 + HOUR + 10, seed=3, prefix="g")
    clock.now = T0 + HOUR + 100
    # Events follow the config in force: the removed feature is now an unknown one.
    assert service.ingest_events("churn", later).rejected[0].reason == "unknown feature"
    for event in later:
        del event["features"]["c"]
    assert service.ingest_events("churn", later).accepted == 50
    clock.now = T0 + 2 * HOUR + 1
    service.tick(T0 + 2 * HOUR + 1)
    next_window = service.range_report(
        "churn", start=T0 + HOUR, end=T0 + 2 * HOUR, version=None, segment=None
    )
    assert next_window["drift"]["tested_columns"] == 2


def test_an_update_must_give_the_features(store: Store) -> None:
    service = make_service(store, Clock(T0 + 60))
    service.register_model(spec(), reference=reference_frame())
    with pytest.raises(ConfigError, match="features"):
        service.update_model(_with(service, features={}))


def test_a_restarted_service_reads_the_updated_config_and_reference(store: Store) -> None:
    clock = Clock(T0 + 60)
    service = make_service(store, clock)
    service.register_model(spec(), reference=reference_frame())
    service.update_model(_with(service, features={"a": "numeric", "b": "numeric"}, windows=["6h"]))
    service.close()
    restarted = make_service(store, clock)
    model = restarted.get_model("churn")
    assert set(model.features) == {"a", "b"}
    assert [window.id for window in model.windows] == [6 * HOUR]
    assert restarted.config_version("churn") == 2
    batch = events(20, T0 + 10, seed=4)
    for event in batch:
        del event["features"]["c"]
    assert restarted.ingest_events("churn", batch).accepted == 20
    clock.now = T0 + 6 * HOUR + 1
    assert [entry["count"] for entry in restarted.tick(clock.now)] == [20]
    report = restarted.range_report(
        "churn", start=T0, end=T0 + 6 * HOUR, version=None, segment=None
    )
    assert report["drift"]["tested_columns"] == 2
