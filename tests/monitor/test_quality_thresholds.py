"""A model spec's ``quality`` thresholds: stored with the model, used by signals and reports."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.monitor.test_service import HOUR, T0, Clock, make_service
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.store import Store


def register_and_ingest(store: Store, quality: dict[str, Any] | None) -> Any:
    clock = Clock(T0)
    service = make_service(store, clock)
    rng = np.random.default_rng(3)
    reference = pd.DataFrame(
        {
            "x": rng.normal(size=2000),
            "c": rng.choice(list("abc"), 2000),
            "prediction": rng.normal(size=2000),
        }
    )
    config: dict[str, Any] = {
        "name": "prices",
        "task": "regression",
        "features": {"x": "numeric", "c": "categorical"},
    }
    if quality is not None:
        config["quality"] = quality
    service.register_model(ModelSpec.from_dict(config), reference=reference)
    labels = rng.choice(list("abc"), 200).astype(object)
    labels[:30] = "new"  # 15 % of the window's rows carry a label the reference never had
    batch = [
        {
            "id": f"e{index}",
            "timestamp": T0 + index * 10.0,
            "version": "v1",
            "features": {"x": float(rng.normal()), "c": str(label)},
            "prediction": float(rng.normal()),
        }
        for index, label in enumerate(labels)
    ]
    assert service.ingest_events("prices", batch).accepted == len(batch)
    clock.now = T0 + HOUR + 10
    service.tick()
    return service


def signal(service: Any, name: str) -> Any:
    (point,) = service.series("prices", name, window_seconds=HOUR, start=T0, end=T0 + HOUR)
    return point["value"]


@pytest.mark.parametrize(
    ("quality", "failed"),
    [(None, 1.0), ({"alpha": 0.01, "floors": {"new_categories": 0.2}}, 0.0)],
)
def test_live_quality_verdict_follows_the_spec_thresholds(
    store: Store, quality: dict[str, Any] | None, failed: float
) -> None:
    service = register_and_ingest(store, quality)
    assert signal(service, "quality.c.new_category_share") == pytest.approx(0.15)
    assert signal(service, "quality.c.failed") == failed
    assert signal(service, "quality.x.failed") == 0.0
    report = service.range_report("prices", start=T0, end=T0 + HOUR)
    check = report["quality"]["columns"]["c"]["new_categories"]
    # Within the floor a new label in a closed label set is still news: a warning.
    assert check["verdict"] == ("fail" if failed else "warning")
    assert check["details"]["new_counts"] == {"new": 30}
    # Stored with the model: a new service on the same store reads the same thresholds.
    restarted = make_service(store, Clock(T0 + HOUR + 20))
    expected = ModelSpec.from_dict(
        {"name": "p", "task": "regression", "features": {}, "quality": quality}
    ).quality
    assert restarted.get_model("prices").quality == expected
