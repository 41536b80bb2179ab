"""Synchronous labels and feedback, the HTTP sink's edges, and local mode on a real store."""

from __future__ import annotations

import email.utils
import time
from decimal import Decimal
from pathlib import Path

import pytest

from tests.sdk.conftest import RecordingServer
from watchkeeper.errors import (
    AuthError,
    ConfigError,
    DeliveryError,
    IngestError,
    InputError,
    NotFoundError,
)
from watchkeeper.ingest import Rejection
from watchkeeper.sdk import Client, HttpSink, Outcome, Receipt
from watchkeeper.sdk.sink import _retry_after, encode_batch
from watchkeeper.store import Store

CONFIG = {
    "name": "churn",
    "task": "classification",
    "features": {"age": "numeric", "plan": "categorical"},
    "proba": {"0": "p0", "1": "p1"},
    "segments": ["region"],
}


def test_labels_and_feedback_are_sent_synchronously(server: RecordingServer) -> None:
    with Client(server.url, token="t") as client:
        receipt = client.log_labels(
            "churn", [("e1", 1), {"id": "e2", "label": 0}], timestamp=1_700_000_000.0
        )
        assert receipt == Receipt(accepted=2, duplicates=0, rejected=())
        assert client.log_labels("churn", [("e1", 1)]).duplicates == 1
        feedback = client.log_feedback("churn", "e3", user_id="u", rating=4, comment="ok")
        assert feedback.accepted == 1
        assert client.log_labels("churn", []) == Receipt(0, 0, ())
    labels = server.delivered("labels")
    assert labels[:2] == [
        {"id": "e1", "label": 1, "timestamp": 1_700_000_000.0},
        {"id": "e2", "label": 0, "timestamp": 1_700_000_000.0},
    ]
    assert server.delivered("feedback") == [
        {"id": "e3", "user_id": "u", "rating": 4, "comment": "ok"}
    ]
    assert server.requests[0].path == "/v1/models/churn/labels"
    assert server.requests[0].authorization == "Bearer t"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, AuthError),
        (403, AuthError),
        (422, IngestError),
        (409, DeliveryError),
        (503, DeliveryError),
    ],
)
def test_refused_synchronous_batches_raise(
    server: RecordingServer, status: int, error: type[Exception]
) -> None:
    server.script.append((status, {}))
    with Client(server.url) as client, pytest.raises(error, match="churn"):
        client.log_labels("churn", [("e1", 1)])


def test_unknown_model_and_unreachable_service_raise(
    server: RecordingServer, stopped_server: RecordingServer
) -> None:
    with Client(server.url) as client, pytest.raises(NotFoundError) as caught:
        client.log_labels("unknown", [("e1", 1)])
    assert caught.value.name == "unknown"
    with Client(stopped_server.url) as client, pytest.raises(DeliveryError, match="check the"):
        client.log_feedback("churn", "e1", user_id="u", rating=3)


def test_unencodable_items_are_reported_and_the_rest_sent(server: RecordingServer) -> None:
    sink = HttpSink(url=server.url)
    records = [
        {"id": "a", "features": {}},
        {"id": "b", "features": {"x": object()}},
        {"id": "c", "features": {"when": Decimal("1.5"), "tags": {"x"}}},
    ]
    delivery = sink.send("churn", "events", records)
    sink.close()
    assert delivery.outcome is Outcome.DELIVERED
    assert delivery.accepted == 2
    assert [rejection.index for rejection in delivery.rejected] == [1]
    assert [event["id"] for event in server.delivered()] == ["a", "c"]
    assert server.delivered()[1]["features"] == {"when": 1.5, "tags": ["x"]}


def test_server_rejection_indices_map_back_past_unencodable_items(
    server: RecordingServer,
) -> None:
    sink = HttpSink(url=server.url)
    records = [{"id": "a", "features": {"x": object()}}, {"id": "b", "features": {"reject": 1}}]
    delivery = sink.send("churn", "events", records)
    sink.close()
    assert [(r.index, r.field) for r in delivery.rejected] == [(0, "event"), (1, "features.reject")]


def test_encode_batch_turns_nan_into_null() -> None:
    body, kept, bad = encode_batch("events", [{"x": float("nan")}])
    assert (body, kept, bad) == (b'{"events":[{"x":null}]}', [0], [])


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert _retry_after("3") == 3.0
    assert _retry_after("-1") == 0.0
    assert _retry_after("99999") == 300.0
    assert _retry_after("soon") is None
    assert _retry_after(None) is None
    later = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 50 < (_retry_after(later) or 0) <= 60


def test_local_mode_validates_and_writes_to_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'watchkeeper.db'}"
    with Store.open(url) as store:
        model = store.create_model("churn", CONFIG)
    client = Client.local(url)
    logger = client.logger("churn", "v2")
    good = logger.log(
        {"age": 41, "plan": "gold"},
        prediction=1,
        proba={"1": 0.8},
        segment={"region": "eu"},
        latency_ms=2.0,
        unit="user-42",
        arm="champion",
    )
    logger.log({"age": "old", "plan": "gold"})
    logger.log({"age": 1, "plan": "gold"}, arm="not an arm")
    missing = logger.log({"age": float("nan"), "plan": None})
    assert logger.flush(timeout=10)
    assert (logger.stats.sent, logger.stats.rejected) == (2, 2)
    receipt = client.log_labels("churn", [(good, 1), ("other", None)])
    assert receipt.accepted == 1
    assert receipt.rejected == (Rejection(1, "label", "missing: a label may not be null"),)
    with pytest.raises(NotFoundError):
        client.log_labels("nope", [(good, 1)])
    rated = client.log_feedback("churn", good, user_id="u1", rating=2, comment="late")
    assert rated.accepted == 1
    client.close()
    with Store.open(url) as store:
        events = store.events_by_ids(model.id, [good, missing])
        labels = store.labels_for(model.id, [good])
    stored = events[good]
    assert (stored.version, stored.prediction, stored.segment) == ("v2", "1", "region=eu")
    assert (stored.unit, stored.arm) == ("user-42", "champion")
    assert (events[missing].unit, events[missing].arm) == (None, None)
    assert stored.features == {"age": 41.0, "plan": "gold"}
    assert stored.proba == {"1": 0.8}
    assert events[missing].features == {"age": None, "plan": None}
    assert labels[good].label == "1"


def test_local_mode_folds_windows_like_the_server(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'watchkeeper.db'}"
    with Store.open(url) as store:
        model = store.create_model("churn", CONFIG)
    client = Client.local(url)
    logger = client.logger("churn", "v1")
    ids = [logger.log({"age": 30 + i % 20, "plan": "gold"}, prediction=i % 2) for i in range(50)]
    assert logger.flush(timeout=10)
    client.log_labels("churn", [(event_id, 1) for event_id in ids])
    client.close()
    with Store.open(url) as store:
        checkpoint = store.checkpoint()
    assert checkpoint is not None, "closing local mode must checkpoint its open windows"
    checkpointed = [window for window in checkpoint.windows if window.model_id == model.id]
    assert checkpointed
    assert sum(window.event_count for window in checkpointed) == 50 * len(
        {window.window_seconds for window in checkpointed}
    )


def test_local_mode_registers_models_with_reference_data(tmp_path: Path) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    reference = pd.DataFrame(
        {"age": rng.normal(40, 5, 400), "plan": rng.choice(["gold", "basic"], 400)}
    )
    client = Client.local(f"sqlite:///{tmp_path / 'watchkeeper.db'}")
    registered = client.register_model(
        {"name": "local", "task": "classification", "features": {}, "prediction": None},
        reference=reference,
    )
    assert registered["features"] == {"age": "numeric", "plan": "categorical"}
    assert client.set_reference("local", reference.sample(200, random_state=0))
    client.close()


def test_local_mode_tells_a_label_retry_from_a_different_label(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'watchkeeper.db'}"
    with Store.open(url) as store:
        store.create_model("churn", CONFIG)
    with Client.local(url) as client:
        logger = client.logger("churn", "v1")
        first, second = logger.log({"age": 1, "plan": "a"}), logger.log({"age": 2, "plan": "b"})
        assert logger.flush(timeout=10)
        assert client.log_labels("churn", [(first, 1), (second, 0)]).accepted == 2
        receipt = client.log_labels("churn", [(first, 1), ("bad", None), (second, 1)])
        assert (receipt.accepted, receipt.duplicates) == (0, 1)
        assert [r.index for r in receipt.rejected] == [1]
        assert [(c.index, c.field) for c in receipt.conflicts] == [(2, "label")]
        assert "is already labelled '0'" in receipt.conflicts[0].reason
        client.log_feedback("churn", first, user_id="u", rating=4)
        rerated = client.log_feedback("churn", first, user_id="u", rating=2)
        assert (rerated.accepted, rerated.duplicates, len(rerated.conflicts)) == (0, 0, 1)


def test_local_mode_alerts_on_a_replayed_clock(tmp_path: Path) -> None:
    """A notebook replays three hours: the drift of the last two raises the default alerts,
    stamped in replayed time, without a server and without private attributes."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(3)
    start = 1_700_000_000.0 - 1_700_000_000.0 % 3600
    clock = [start]
    client = Client.local(f"sqlite:///{tmp_path / 'wk.db'}", clock=lambda: clock[0])
    config = {"name": "prices", "task": "regression", "features": {"x": "numeric"}}
    client.register_model(
        config | {"windows": [3600]}, reference=pd.DataFrame({"x": rng.normal(size=2000)})
    )
    logger = client.logger("prices", "v1")
    for hour, shift in enumerate((0.0, 3.0, 3.0)):
        for value in rng.normal(shift, 1.0, 400):
            logger.log({"x": float(value)}, prediction=1.0, timestamp=start + hour * 3600 + 1)
        assert logger.flush(timeout=10)
        clock[0] = start + (hour + 1) * 3600 + 1
        client.tick()
    firing = {alert["rule"]: alert for alert in client.alerts("firing")}
    assert {"PricesFeatureDrift", "PricesDriftShareHigh"} <= set(firing)
    assert firing["PricesFeatureDrift"]["labels"]["feature"] == "x"
    # In event time: the end of the second drifted hour (`for: 30m`), not the replayed clock.
    assert firing["PricesFeatureDrift"]["fired_at"] == start + 3 * 3600
    history = client.alert_history()
    assert {change["state"] for change in history} >= {"pending", "firing"}
    with pytest.raises(ConfigError, match="unknown model 'pricez'"):
        client.apply_rules(
            [{"name": "A", "model": "pricez", "signal": "count", "condition": "< 1"}]
        )
    client.close()


def test_alert_calls_need_local_mode() -> None:
    with pytest.raises(InputError, match=r"alerts\(\) runs in local mode"):
        Client("http://127.0.0.1:9").alerts()


def test_default_rules_stay_quiet_on_a_healthy_stream_and_fire_on_a_sick_one(
    tmp_path: Path,
) -> None:
    """Twelve hourly windows of 200 events, three features: stable, then one feature shifting
    by 0.8 sd from hour 4. The default pack must not page on the first and must on the second.

    (Over six seeds the healthy stream paged once: each window's verdict holds its 5 % per
    feature, but two flagged windows in a row page, so false pages grow with features and
    windows; noted on issue 12.)"""
    import numpy as np
    import pandas as pd

    start = 1_700_000_000.0 - 1_700_000_000.0 % 3600
    rng = np.random.default_rng(5)
    reference = pd.DataFrame(rng.normal(size=(3000, 3)), columns=list("xyz"))
    config = {"name": "prices", "task": "regression", "windows": [3600]}
    fired: dict[str, set[str]] = {}
    for label, shifts in (("healthy", [0.0] * 12), ("sick", [0.0] * 4 + [0.8] * 8)):
        clock = [start]
        client = Client.local(f"sqlite:///{tmp_path / label}.db", clock=lambda c=clock: c[0])
        client.register_model(
            config | {"features": dict.fromkeys("xyz", "numeric")}, reference=reference
        )
        logger = client.logger("prices", "v1")
        for hour, shift in enumerate(shifts):
            clock[0] = start + hour * 3600 + 3599
            for x, y, z in rng.normal(size=(200, 3)):
                stamp = start + hour * 3600 + float(rng.uniform(0, 3598))
                logger.log({"x": x + shift, "y": y, "z": z}, prediction=1.0, timestamp=stamp)
            assert logger.flush(timeout=10)
            clock[0] = start + (hour + 1) * 3600 + 1
            client.tick()
        fired[label] = {
            (c["rule"], c["labels"].get("feature"), (c["at"] - start) // 3600)
            for c in client.alert_history(500)
            if c["state"] == "firing"
        }
        client.close()
    assert fired["healthy"] == set()
    # The shift starts in hour 4: flagged when that window closes (hour 5), firing at the next
    # evaluation (hour 6, `for: 30m`).
    assert ("PricesFeatureDrift", "x", 6) in fired["sick"]
