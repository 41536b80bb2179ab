"""Business outcomes from the SDK: queued behind their predictions without blocking, sent
synchronously with a receipt, in local mode and over HTTP; an alert rule on an outcome rate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.sdk.conftest import RecordingServer
from watchkeeper.errors import InputError
from watchkeeper.sdk import Client

CONFIG: dict[str, Any] = {
    "name": "shop",
    "task": "classification",
    "features": {"age": "numeric"},
    "proba": {"0": "p0", "1": "p1"},
    "windows": [3600],
    "outcomes": {"click": "binary", "revenue": "numeric"},
}


def test_a_loggers_outcomes_follow_its_events_in_order(server: RecordingServer) -> None:
    client = Client(server.url, token="t")
    logger = client.logger("shop", "v1", flush_interval=0.05)
    first = logger.log({"age": 30}, prediction="1")
    logger.log_outcome("click", True, id=first, timestamp=1_700_000_000.0)
    second = logger.log({"age": 31}, prediction="0", unit="u7")
    logger.log_outcome("revenue", 12.5, id=second)
    assert logger.flush(timeout=10)
    paths = [request.path.rsplit("/", 1)[-1] for request in server.requests]
    assert paths == ["events", "outcomes", "events", "outcomes"]
    assert server.delivered("outcomes")[0] == {
        "id": first,
        "name": "click",
        "value": True,
        "timestamp": 1_700_000_000.0,
    }
    with pytest.raises(InputError, match="give the prediction's id or a unit"):
        logger.log_outcome("click", True)
    with pytest.raises(InputError, match="one of the two"):
        logger.log_outcome("click", True, id=first, unit="u7")
    assert logger.stats.sent == 4
    receipt = client.log_outcomes(
        "shop", [(first, "revenue", 3.0), {"id": second, "name": "click", "value": 0}]
    )
    # The recording server counts items by id: the events' ids were seen, so "duplicates".
    assert (receipt.accepted + receipt.duplicates, receipt.rejected) == (2, ())
    assert server.delivered("outcomes")[-1] == {"id": second, "name": "click", "value": 0}
    client.close()


def test_local_mode_outcomes_and_an_alert_on_the_click_rate(tmp_path: Path) -> None:
    start = 1_700_000_000.0 - 1_700_000_000.0 % 3600
    clock = [start + 1]
    client = Client.local(f"sqlite:///{tmp_path / 'wk.db'}", clock=lambda: clock[0])
    client.register_model(CONFIG)
    client.apply_rules(
        [
            {
                "name": "ClickRateLow",
                "model": "shop",
                "signal": "outcome.click.rate",
                "condition": "< 0.2",
            }
        ]
    )
    logger = client.logger("shop", "v1")
    for hour, every in enumerate((2, 10)):  # a click every 2nd, then every 10th prediction
        ids = [
            logger.log({"age": 20 + i % 30}, prediction="1", timestamp=start + hour * 3600 + i)
            for i in range(100)
        ]
        for i, event_id in enumerate(ids):
            logger.log_outcome(
                "click", i % every == 0, id=event_id, timestamp=start + hour * 3600 + i
            )
        assert logger.flush(timeout=10)
        if hour == 0:
            assert client.alerts("firing") == []
        clock[0] = start + (hour + 1) * 3600 + 1
        client.tick()
        if hour == 0:
            assert client.alerts("firing") == []
    firing = {alert["rule"]: alert for alert in client.alerts("firing")}
    assert set(firing) == {"ClickRateLow"}
    assert firing["ClickRateLow"]["value"] == 0.1
    assert firing["ClickRateLow"]["labels"]["version"] == "v1"

    receipt = client.log_outcomes("shop", [(ids[0], "click", True), (ids[1], "clicks", True)])
    assert (receipt.accepted, receipt.duplicates) == (0, 1)
    assert [(r.index, r.field) for r in receipt.rejected] == [(1, "name")]
    assert "did you mean 'click'" in receipt.rejected[0].reason
    changed = client.log_outcomes("shop", [(ids[1], "click", True)])
    assert [(c.index, c.field) for c in changed.conflicts] == [(0, "value")]
    unknown = client.log_outcomes("shop", [("nope", "revenue", 1.0)])
    assert [(r.index, r.field) for r in unknown.rejected] == [(0, "id")]
    # By unit: the unit's latest prediction at or before the outcome's time.
    logger.log({"age": 40}, prediction="1", unit="u7", timestamp=start + 2 * 3600 + 10)
    logger.log_outcome("revenue", 9.5, unit="u7", timestamp=start + 2 * 3600 + 20)
    logger.log_outcome("revenue", 1.0, unit="u8", timestamp=start + 2 * 3600 + 20)
    assert logger.flush(timeout=10)
    assert (logger.stats.sent, logger.stats.rejected) == (402, 1)  # 201 events, 201 outcomes
    by_unit = client.log_outcomes(
        "shop", [{"unit": "u7", "name": "revenue", "value": 9.5, "timestamp": start + 7220}]
    )
    assert (by_unit.accepted, by_unit.duplicates) == (0, 1)
    client.close()
