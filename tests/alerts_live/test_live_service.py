"""End to end: the real app and MonitorService feed the alerting engine; the CLI drives it.

A model is registered with reference data over HTTP, a rule is applied with ``watchkeeper
rules apply``, drifted events are ingested over HTTP, the window is closed with
``service.tick``, and the engine evaluates ``service.latest_samples()``. A real HTTP receiver
must get exactly one Slack-shaped page; a silence set with the CLI then shows in
``alerts list``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from tests.alerts._servers import CaptureServer
from tests.alerts_live.conftest import serve
from watchkeeper.alerts.engine import AlertingEngine
from watchkeeper.cli.alerts import register
from watchkeeper.config import Settings
from watchkeeper.monitor.service import MonitorService
from watchkeeper.server.app import create_app
from watchkeeper.store import Store

HOUR = 3600.0
START = 1_700_002_800.0  # an hour boundary
RULES = """rules:
  - name: KeyFeatureDrift
    model: credit
    signal: drift.income.score
    condition: "> 0.2"
    severity: critical
    annotations:
      summary: '{{ labels.model }} drift on {{ labels.feature }} = {{ value | printf("%.3f") }}'
"""


@dataclass
class Live:
    url: str
    engine: AlertingEngine
    service: MonitorService
    clock: list[float]


def routing(slack: CaptureServer) -> str:
    return f"""
global:
  external_url: http://watchkeeper.test
route:
  receiver: slack
  group_by: [alertname, model]
  group_wait: 30s
receivers:
  - name: slack
    slack_configs:
      - {{url: "{slack.url("/services/T/B/X")}", timeout: 2s}}
"""


@pytest.fixture
def live(tmp_path: Path, http_receiver: CaptureServer) -> Iterator[Live]:
    url = f"sqlite:///{tmp_path / 'watchkeeper.db'}"
    routing_file = tmp_path / "alerting.yaml"
    routing_file.write_text(routing(http_receiver))
    clock = [START]
    settings = Settings(
        db=url,
        window_check_seconds=0,
        retention_check_seconds=0,
        alerts_config=str(routing_file),
        alerts_interval_seconds=3600.0,
    )
    store = Store.open(url)
    service = MonitorService(store, settings=settings, clock=lambda: clock[0])
    app = create_app(settings, service=service, store=store, clock=lambda: clock[0])
    engine: AlertingEngine = app.state.watchkeeper.alerting
    with serve(app) as base:
        yield Live(url=base, engine=engine, service=service, clock=clock)
    store.close()


def cli(*args: str) -> tuple[int, str, str]:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_drift_pages_slack_once_and_a_cli_silence_shows_in_alerts_list(
    live: Live, http_receiver: CaptureServer, tmp_path: Path
) -> None:
    rng = np.random.default_rng(7)
    reference = pd.DataFrame(
        {"income": rng.normal(50.0, 10.0, 2000), "age": rng.normal(40.0, 8.0, 2000)}
    )
    config = {
        "name": "credit",
        "task": "regression",
        "features": {"income": "numeric", "age": "numeric"},
        "windows": [3600],
    }
    assert httpx.post(f"{live.url}/v1/models", json=config).status_code == 201
    buffer = io.StringIO()
    reference.to_csv(buffer, index=False)
    response = httpx.put(
        f"{live.url}/v1/models/credit/reference",
        content=buffer.getvalue(),
        headers={"content-type": "text/csv"},
    )
    assert response.status_code == 200, response.text

    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES)
    code, out, err = cli("rules", "apply", str(rules_file), "--url", live.url)
    assert code == 0, err

    incomes = rng.normal(80.0, 10.0, 600)  # income drifts by three standard deviations
    ages = rng.normal(40.0, 8.0, 600)
    events = [
        {
            "timestamp": START + 5 * index,
            "version": "v1",
            "features": {"income": float(income), "age": float(age)},
            "prediction": 1.0,
        }
        for index, (income, age) in enumerate(zip(incomes, ages, strict=True))
    ]
    live.clock[0] = START + HOUR - 1
    response = httpx.post(f"{live.url}/v1/models/credit/events", json={"events": events})
    assert response.json()["accepted"] == 600

    live.clock[0] = START + HOUR + 1
    closed = live.service.tick(live.clock[0])
    assert [window["model"] for window in closed] == ["credit"]
    samples = live.service.latest_samples()
    income = [s for s in samples if s["labels"]["signal"] == "drift.income.score"]
    assert income
    assert income[0]["value"] > 0.2

    for step in range(10):  # ten minutes of one-minute evaluations
        now = START + HOUR + 1 + 60.0 * step
        live.clock[0] = now
        live.engine.evaluate(now, live.service.latest_samples())
        live.engine.deliver(now)
    assert [request.body["text"] for request in http_receiver.requests] == [
        "[FIRING:1] alertname=KeyFeatureDrift model=credit"
    ]
    section = http_receiver.requests[0].body["blocks"][1]["text"]["text"]
    assert "credit drift on income = " in section
    assert "KeyFeatureDrift — critical — model credit — signal drift.income.score" in section

    code, out, err = cli(
        "silences", "add", "--matcher", "alertname=KeyFeatureDrift", "--duration", "2h",
        "--comment", "retraining", "--url", live.url,
    )  # fmt: skip
    assert code == 0, err
    code, out, err = cli("alerts", "list", "--state", "firing", "--json", "--url", live.url)
    assert code == 0, err
    (alert,) = json.loads(out)["alerts"]
    assert alert["labels"]["alertname"] == "KeyFeatureDrift"
    assert alert["labels"]["feature"] == "income"
    assert alert["muted"] is True
    assert len(http_receiver.requests) == 1
