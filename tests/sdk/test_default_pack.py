"""The default rule pack through local mode on simulated streams: quiet on healthy ones at many
features (Holm's correction per window, two windows in a row to page), loud on a sick one.

benchmarks/bench_default_pack.py runs the same loop for weeks of windows and prints the rates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from watchkeeper.sdk import Client

HOUR = 3600.0
START = 1_700_000_000.0 - 1_700_000_000.0 % HOUR


def _run(
    path: Path, *, features: int, shifts: list[float], rows: int, seed: int
) -> list[list[dict[str, Any]]]:
    """Hourly windows of ``rows`` events of ``features`` standard normal features (feature
    ``f00`` shifted by ``shifts[hour]`` sd); the alert transitions after each window closes."""
    rng = np.random.default_rng(seed)
    columns = [f"f{index:02d}" for index in range(features)]
    reference = pd.DataFrame(rng.normal(size=(3000, features)), columns=columns)
    clock = [START]
    client = Client.local(f"sqlite:///{path}", clock=lambda: clock[0])
    try:
        client.register_model(
            {
                "name": "prices",
                "task": "regression",
                "windows": [int(HOUR)],
                "features": dict.fromkeys(columns, "numeric"),
            },
            reference=reference,
        )
        logger = client.logger("prices", "v1")
        changes = []
        for hour, shift in enumerate(shifts):
            clock[0] = START + hour * HOUR + HOUR - 1
            values = rng.normal(size=(rows, features))
            values[:, 0] += shift
            for row in values:
                stamp = START + hour * HOUR + float(rng.uniform(0, HOUR - 2))
                logger.log(dict(zip(columns, row.tolist(), strict=True)), 1.0, timestamp=stamp)
            assert logger.flush(timeout=10)
            clock[0] = START + (hour + 1) * HOUR + 1
            changes.append(client.tick())
        return changes
    finally:
        client.close()


def test_a_healthy_stream_of_twenty_features_does_not_page_for_two_days(tmp_path: Path) -> None:
    """Without the correction 64 % of windows would flag a feature (~1.2 false pages a day at
    two windows in a row); with it about 5 % do, and a page needs the same feature twice."""
    changes = _run(tmp_path / "healthy.db", features=20, shifts=[0.0] * 48, rows=200, seed=7)
    flagged_windows = sum(
        any(c["state"] == "pending" and c["rule"] == "PricesFeatureDrift" for c in window)
        for window in changes
    )
    pages = [c for window in changes for c in window if c["state"] == "firing"]
    assert pages == []
    # Nominal 5 % of 48 windows is 2.4; three standard errors of slack.
    assert flagged_windows <= 7


def test_a_half_sd_shift_of_one_of_twenty_features_pages_at_the_second_window(
    tmp_path: Path,
) -> None:
    changes = _run(
        tmp_path / "sick.db", features=20, shifts=[0.0] * 3 + [0.5] * 4, rows=300, seed=8
    )
    fired = [
        (hour, c["rule"], c["labels"].get("feature"))
        for hour, window in enumerate(changes)
        for c in window
        if c["state"] == "firing"
    ]
    # Shifted from the fourth window (index 3): flagged when it closes, paged when the second
    # shifted window closes; no other feature pages.
    assert fired[0] == (4, "PricesFeatureDrift", "f00")
    assert {feature for _, rule, feature in fired if rule == "PricesFeatureDrift"} == {"f00"}


def test_no_data_in_local_mode_is_measured_from_the_last_event(tmp_path: Path) -> None:
    """Hourly windows and one event a minute for three hours: never absent (windows carry their
    end as timestamp; the last event does not). Then the stream stops: NoData once it has been
    silent for more than 30 minutes. A second model that never sent an event: never."""
    clock = [START]
    client = Client.local(f"sqlite:///{tmp_path / 'quiet.db'}", clock=lambda: clock[0])
    try:
        for name in ("prices", "unused"):
            client.register_model(
                {
                    "name": name,
                    "task": "regression",
                    "windows": [int(HOUR)],
                    "features": {"x": "numeric"},
                }
            )
        logger = client.logger("prices", "v1")
        fired: list[tuple[float, str]] = []
        for minute in range(180):
            clock[0] = START + minute * 60.0
            logger.log({"x": 1.0}, 1.0, timestamp=clock[0])
            if minute % 10 == 9:
                assert logger.flush(timeout=10)
                client.tick()
        last = clock[0]
        assert client.alerts() == []
        for step in range(1, 25):
            clock[0] = last + step * 300.0
            fired += [(clock[0], c["rule"]) for c in client.tick() if c["state"] == "firing"]
    finally:
        client.close()
    assert fired == [(last + 35 * 60.0, "PricesNoData")]


def test_a_reference_set_after_registration_brings_the_drift_rules(tmp_path: Path) -> None:
    """Local mode, like the server: a model registered without a reference gets the default
    pack's drift rules once its reference arrives."""
    client = Client.local(f"sqlite:///{tmp_path / 'wk.db'}")
    try:
        client.register_model(
            {"name": "prices", "task": "regression", "features": {"f0": "numeric"}}
        )
        alerting = client._local_sink("test").alerting
        assert alerting is not None

        def drift_rules() -> set[str]:
            return {
                spec.name
                for spec in alerting.rules()
                if spec.name.endswith(("FeatureDrift", "DriftShareHigh"))
            }

        assert drift_rules() == set()
        client.set_reference("prices", pd.DataFrame({"f0": np.arange(200.0)}))
        assert drift_rules() == {"PricesFeatureDrift", "PricesDriftShareHigh"}
    finally:
        client.close()
