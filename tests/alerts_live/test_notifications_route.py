"""GET /v1/alerts/notifications names each notification's integration by its kind."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.alerts._servers import CaptureServer
from tests.alerts_live.conftest import serve
from tests.alerts_live.test_engine import RULES, latest_samples
from tests.alerts_live.test_routes_cli import alerts_app
from watchkeeper.alerts import load_rules
from watchkeeper.alerts.engine import AlertingEngine
from watchkeeper.config import Settings
from watchkeeper.store import Store


def test_notifications_name_the_integration_kind(
    tmp_path: Path, http_receiver: CaptureServer
) -> None:
    config = f"""
route:
  receiver: oncall
  group_wait: 0s
receivers:
  - name: oncall
    webhook_configs:
      - {{url: "{http_receiver.url("/hook")}"}}
    slack_configs:
      - {{url: "{http_receiver.url("/slack")}"}}
"""
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    engine = AlertingEngine(db=store.engine, config=config, clock=lambda: 0.0)
    engine.apply_rules(load_rules(RULES))
    for now in (0.0, 600.0, 660.0):
        engine.evaluate(now, latest_samples(now, 0.35))
    engine.deliver(700.0)
    with serve(alerts_app(engine, Settings(), store)) as url:
        body = httpx.get(f"{url}/v1/alerts/notifications").json()
    engine.close()
    store.close()
    kinds = sorted(
        (item["integration"], item["integration_index"]) for item in body["notifications"]
    )
    assert kinds == [("slack", 1), ("webhook", 0)]
    assert {item["status"] for item in body["notifications"]} == {"delivered"}
