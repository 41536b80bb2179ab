"""A backfill over HTTP gets the alert history it would have had, in event time, and pages
nobody unless asked (``alerts_history_horizon_seconds``).

Ten daily windows of a credit model, 90 days old, are posted with their labels to a running app
(its own evaluation loop, every 0.2 s): accuracy 0.95 for five days, then 0.5. The default
pack's accuracy rule must fire at the end of the first bad day (event time), and the Slack
receiver must get nothing — unless the horizon is switched off.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.alerts._servers import CaptureServer
from tests.alerts_live.conftest import serve
from watchkeeper.alerts.engine import AlertingEngine
from watchkeeper.config import Settings
from watchkeeper.monitor.service import MonitorService
from watchkeeper.server.app import create_app
from watchkeeper.store import Store

DAY = 86_400.0
NOW = 1_700_006_400.0 - 1_700_006_400.0 % DAY
BACKFILL = NOW - 90 * DAY


def _routing(slack: CaptureServer) -> str:
    return f"""
route:
  receiver: slack
  group_by: [alertname, model]
  group_wait: 0s
receivers:
  - name: slack
    slack_configs:
      - {{url: "{slack.url("/services/T/B/X")}", timeout: 2s}}
"""


@pytest.fixture(params=[None, 0.0], ids=["default-horizon", "send-history"])
def app_parts(
    request: pytest.FixtureRequest, tmp_path: Path, http_receiver: CaptureServer
) -> Iterator[tuple[str, AlertingEngine, MonitorService, bool]]:
    url = f"sqlite:///{tmp_path / 'watchkeeper.db'}"
    routing_file = tmp_path / "alerting.yaml"
    routing_file.write_text(_routing(http_receiver))
    horizon = {} if request.param is None else {"alerts_history_horizon_seconds": request.param}
    settings = Settings(
        db=url,
        window_check_seconds=0,
        retention_check_seconds=0,
        alerts_config=str(routing_file),
        alerts_interval_seconds=0.2,
        max_event_age_seconds=120 * DAY,
        **horizon,
    )
    store = Store.open(url)
    service = MonitorService(store, settings=settings, clock=lambda: NOW)
    app = create_app(settings, service=service, store=store, clock=lambda: NOW)
    with serve(app) as base:
        yield base, app.state.watchkeeper.alerting, service, request.param == 0.0
    store.close()


def _backfill(base: str) -> None:
    rng = np.random.default_rng(5)
    config = {
        "name": "credit",
        "task": "classification",
        "features": {"income": "numeric"},
        "windows": [86_400],
        "retention_days": 400,
    }
    assert httpx.post(f"{base}/v1/models", json=config).status_code == 201
    reference = pd.DataFrame({"income": rng.normal(size=1000), "prediction": ["0", "1"] * 500})
    buffer = io.StringIO()
    reference.to_csv(buffer, index=False)
    response = httpx.put(
        f"{base}/v1/models/credit/reference",
        content=buffer.getvalue(),
        headers={"content-type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    events, labels = [], []
    for day in range(10):
        truth = rng.integers(0, 2, 150)
        right = rng.random(150) < (0.95 if day < 5 else 0.5)
        for k in range(150):
            event_id = f"d{day}-{k}"
            prediction = int(truth[k] if right[k] else 1 - truth[k])
            events.append(
                {
                    "id": event_id,
                    "timestamp": BACKFILL + day * DAY + k * 500.0,
                    "version": "v1",
                    "features": {"income": float(rng.normal())},
                    "prediction": str(prediction),
                }
            )
            labels.append({"id": event_id, "label": str(int(truth[k]))})
    answer = httpx.post(f"{base}/v1/models/credit/events", json={"events": events}).json()
    assert answer["accepted"] == 1500, answer
    assert (
        httpx.post(f"{base}/v1/models/credit/labels", json={"labels": labels}).json()["accepted"]
        == 1500
    )


def test_backfill_gets_its_alert_history_in_event_time_and_pages_only_when_asked(
    app_parts: tuple[str, AlertingEngine, MonitorService, bool], http_receiver: CaptureServer
) -> None:
    base, engine, service, send_history = app_parts
    _backfill(base)
    service.tick(NOW)
    deadline = time.monotonic() + 60
    accuracy: list = []
    while not accuracy and time.monotonic() < deadline:
        time.sleep(0.2)
        # The loop may take the closing windows over several rounds: wait for the accuracy rule.
        history = engine.history(1000)
        accuracy = [
            c for c in history if c.rule == "CreditAccuracyDrop" and c.state.value == "firing"
        ]
    assert [c.at for c in accuracy] == [BACKFILL + 6 * DAY], "the first bad day's end"
    assert accuracy[0].value is not None
    assert accuracy[0].value < 0.8
    engine.deliver(NOW)
    pages = [r.body["text"] for r in http_receiver.requests]
    assert any("CreditAccuracyDrop" in page for page in pages) is send_history
