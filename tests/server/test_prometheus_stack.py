"""watchkeeper in the Prometheus stack, with the real servers from Debian's packages.

Once per module: a real Alertmanager, a watchkeeper server (uvicorn, authentication on, its
alerting engine routed to that Alertmanager) fed events, labels and feedback, and a real
Prometheus that scrapes its /metrics with a read token, loads the rules ``watchkeeper rules
export-prometheus`` wrote and sends its alerts to the same Alertmanager — the set-up
docs/prometheus.md describes. Then every query of the shipped Grafana dashboard and every
exported rule must return data, promtool must accept /metrics and the rules, and the alert
watchkeeper's engine fired must be read back from Alertmanager's API v2.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from tests.alerts_live.conftest import serve
from tests.server.conftest import MODEL, event, free_port
from tests.test_grafana import concrete
from watchkeeper.cli.main import app as cli_app
from watchkeeper.config import Settings
from watchkeeper.grafana import queries
from watchkeeper.server.app import create_app

REPO = Path(__file__).resolve().parents[2]
ADMIN = "prometheus-stack-admin-token-2c9e"
SPEC = {
    **MODEL,
    "windows": [1],
    "outcomes": {"click": "binary"},
}  # one-second windows: signals within the test's seconds
RULE_PREFIX = "Churn"


def _binaries() -> dict[str, str]:
    names = ("prometheus", "promtool", "prometheus-alertmanager")
    if not all(shutil.which(name) for name in names):
        subprocess.run(
            [str(REPO / "scripts" / "prometheus.sh"), "install"],
            check=True,
            capture_output=True,
            timeout=900,
        )
    found = {name: shutil.which(name) for name in names}
    missing = [name for name, path in found.items() if path is None]
    assert not missing, f"scripts/prometheus.sh install did not install {missing}"
    return {name: str(path) for name, path in found.items()}


class Daemon:
    """A server binary on a free loopback port, its output in a log file, ready when a URL
    answers 200."""

    def __init__(self, command: list[str], *, port: int, ready: str, log: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + ready, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{command[0]} not ready after 30 s:\n{log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@dataclass
class Stack:
    watchkeeper: str
    app: Any
    read_token: str
    prometheus: Daemon
    alertmanager: Daemon
    rules_file: Path
    binaries: dict[str, str]

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.prometheus.url}/api/v1/query", params={"query": expr})
        body = response.json()
        assert body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


def _routing(alertmanager: str) -> str:
    return f"""
global:
  external_url: http://watchkeeper.test
route:
  receiver: alertmanager
  group_by: [alertname, model]
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 1h
receivers:
  - name: alertmanager
    alertmanager_configs:
      - {{url: "{alertmanager}", timeout: 5s, alert_ttl: 2h}}
"""


def _reference() -> list[dict[str, Any]]:
    return [
        {
            "age": 20.0 + index % 30,
            "plan": "basic" if index % 3 else "pro",
            "active": index % 2 == 0,
            "prediction": str(index % 2),
            "proba_0": 0.3,
            "proba_1": 0.7,
        }
        for index in range(600)
    ]


def _feed(client: httpx.Client, batch: int) -> None:
    """Drifted events (age + 60) with 10 % errors, an invalid event, labels that are half
    wrong, feedback and outcomes: every signal the dashboard shows has a value."""
    now = time.time()
    events = [event(index, id=f"b{batch}-{index}", timestamp=now) for index in range(200)]
    for item in events:
        item["features"]["age"] += 60.0
    # Rejected events count in the window of their ingest time, which may be a second after
    # the others' timestamps: only the first batch has one, so that the newest closed window,
    # the one /metrics shows, always holds events.
    invalid = event(0, id=f"b{batch}-bad", features={"age": "x", "plan": "a", "active": True})
    answer = client.post(
        "/v1/models/churn/events", json={"events": [*events, invalid] if batch == 0 else events}
    )
    assert answer.json()["accepted"] == 200, answer.text
    labels = [
        {"id": item["id"], "label": item["prediction"] if index % 2 else "9"}
        for index, item in enumerate(events)
    ]
    assert client.post("/v1/models/churn/labels", json={"labels": labels}).status_code == 200
    feedback = [
        {"id": item["id"], "user_id": f"u{index}", "rating": 1 + index % 5}
        for index, item in enumerate(events[:50])
    ]
    answer = client.post("/v1/models/churn/feedback", json={"feedback": feedback})
    assert answer.status_code == 200, answer.text
    outcomes = [
        {"id": item["id"], "name": "click", "value": index % 3 == 0}
        for index, item in enumerate(events[:60])
    ]
    answer = client.post("/v1/models/churn/outcomes", json={"outcomes": outcomes})
    assert answer.json()["accepted"] == 60, answer.text


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    binaries = _binaries()
    root = tmp_path_factory.mktemp("prometheus-stack")
    port = free_port()
    (root / "alertmanager.yml").write_text(
        yaml.safe_dump(
            {
                "route": {"receiver": "nobody", "group_wait": "0s"},
                "receivers": [{"name": "nobody"}],
            }
        )
    )
    alertmanager = Daemon(
        [
            binaries["prometheus-alertmanager"],
            f"--config.file={root / 'alertmanager.yml'}",
            f"--storage.path={root / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # a single instance: no gossip port
        ],
        port=port,
        ready="/-/ready",
        log=root / "alertmanager.log",
    )
    routing = root / "alerting.yml"
    routing.write_text(_routing(alertmanager.url))
    settings = Settings(
        db=f"sqlite:///{root / 'wk.db'}",
        auth=True,
        admin_token=ADMIN,
        ingest_workers=0,
        window_check_seconds=0.2,
        alerts_config=str(routing),
        alerts_interval_seconds=0.5,
    )
    app = create_app(settings)
    prometheus: Daemon | None = None
    try:
        with serve(app) as url:
            admin = httpx.Client(
                base_url=url, headers={"authorization": f"Bearer {ADMIN}"}, timeout=30
            )
            assert admin.post("/v1/models", json=SPEC).status_code == 201
            assert admin.put("/v1/models/churn/reference", json=_reference()).status_code == 200
            token = admin.post("/v1/tokens", json={"name": "prometheus", "scopes": ["read"]})
            read_token = token.json()["token"]
            # What the serving code sets when it has loaded a model version.
            app.state.watchkeeper.load_status.set("churn", "v1", "loaded")
            # The rules as a user exports them.
            rules_file = root / "watchkeeper.rules.yml"
            _cli("rules", "export-prometheus", str(rules_file), "--url", url, "--token", ADMIN)
            prometheus = _prometheus(binaries, root, url, read_token, rules_file, alertmanager)
            _wait_for_first_scrape(prometheus)
            # Prometheus scrapes while the batches arrive, so the counters' rates are seen.
            for batch in range(3):
                _feed(admin, batch)
                time.sleep(1.0)
            admin.close()
            yield Stack(
                watchkeeper=url,
                app=app,
                read_token=read_token,
                prometheus=prometheus,
                alertmanager=alertmanager,
                rules_file=rules_file,
                binaries=binaries,
            )
    finally:
        if prometheus is not None:
            prometheus.stop()
        alertmanager.stop()


def _prometheus(
    binaries: dict[str, str],
    root: Path,
    url: str,
    read_token: str,
    rules_file: Path,
    alertmanager: Daemon,
) -> Daemon:
    """Prometheus scraping ``url`` every second with the read token (as docs/prometheus.md
    sets it up), evaluating the exported rules, sending alerts to ``alertmanager``."""
    (root / "token").write_text(read_token)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules_file)],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager.port}"]}]}]
        },
        "scrape_configs": [
            {
                "job_name": "watchkeeper",
                "authorization": {"credentials_file": str(root / "token")},
                "static_configs": [{"targets": [url.removeprefix("http://")]}],
            }
        ],
    }
    (root / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    return Daemon(
        [
            binaries["prometheus"],
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        port=port,
        ready="/-/ready",
        log=root / "prometheus.log",
    )


def _cli(*args: str) -> None:
    result = CliRunner().invoke(cli_app, list(args))
    assert result.exit_code == 0, result.output


def _wait_for_first_scrape(prometheus: Daemon) -> None:
    """Prometheus hands new targets to its scrapers a few seconds after it starts."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        response = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": "up == 1"})
        if response.json()["data"]["result"]:
            return
        time.sleep(0.2)
    raise AssertionError("Prometheus did not scrape watchkeeper within 30 s")


def _has_data(stack: Stack, expr: str) -> bool:
    # Rates over two minutes: the batches stay in range however long a busy machine takes.
    samples = stack.query(concrete(expr, rate_interval="2m"))
    return any(not math.isnan(float(sample["value"][1])) for sample in samples)


def _wait_for_data(stack: Stack, exprs: list[str], *, timeout: float = 30.0) -> list[str]:
    """The expressions still without a (non-NaN) value after ``timeout`` seconds."""
    pending = list(exprs)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = [expr for expr in pending if not _has_data(stack, expr)]
        if pending:
            time.sleep(0.5)
    return pending


def _metrics_text(stack: Stack) -> str:
    response = httpx.get(
        f"{stack.watchkeeper}/metrics", headers={"authorization": f"Bearer {stack.read_token}"}
    )
    assert response.status_code == 200
    return response.text


def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    has_gpu = "watchkeeper_gpu_memory_used_bytes" in _metrics_text(stack)
    wanted = [q.expr for q in queries() if q.needs is None or (q.needs == "nvml" and has_gpu)]
    without = [q for q in queries() if q.expr not in wanted]
    # Only the GPU panel may lack data, and only on a machine without NVML.
    assert all(q.needs == "nvml" for q in without)
    pending = _wait_for_data(stack, wanted)
    assert not pending, "no data:\n" + "\n".join(pending)


def test_the_dashboard_shows_every_metric_family_watchkeeper_exports(stack: Stack) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    families = {
        family.name
        for family in text_string_to_metric_families(_metrics_text(stack))
        # The scalar process and system gauges are summed up by the CPU and memory panels;
        # ``_created`` is the start time prometheus-client adds to counters and histograms.
        if family.name.startswith("watchkeeper_")
        and not family.name.startswith(("watchkeeper_process_", "watchkeeper_system_"))
        and not family.name.endswith("_created")
    }
    text = " ".join(q.expr for q in queries())
    assert {name for name in families if name not in text} == set()


def test_every_exported_rule_evaluates_and_its_value_has_data(stack: Stack) -> None:
    engine = stack.app.state.watchkeeper.alerting
    export = engine.export_prometheus()
    assert stack.rules_file.read_text() == export.yaml
    assert {name for name, _ in export.values} == {
        f"{RULE_PREFIX}{name}"
        for name in (
            "DriftShareHigh", "FeatureDrift", "AccuracyDrop", "ErrorRateHigh",
            "LatencyP99High", "NoData",
        )
    }  # fmt: skip
    pending = _wait_for_data(stack, [expr for _, expr in export.values])
    assert not pending, "no data:\n" + "\n".join(pending)
    # Prometheus evaluates every rule without error, and the ones the data breaks fire.
    deadline = time.monotonic() + 30
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        body = httpx.get(f"{stack.prometheus.url}/api/v1/rules").json()
        rules = [rule for group in body["data"]["groups"] for rule in group["rules"]]
        assert {rule["name"] for rule in rules} == {name for name, _ in export.values}
        assert all(rule["health"] in ("ok", "unknown") for rule in rules), rules
        states = {rule["name"]: rule["state"] for rule in rules if rule["health"] == "ok"}
        if len(states) == len(rules) and states[f"{RULE_PREFIX}AccuracyDrop"] == "firing":
            break
        time.sleep(0.5)
    assert states[f"{RULE_PREFIX}AccuracyDrop"] == "firing"  # half the labels are wrong
    assert states[f"{RULE_PREFIX}ErrorRateHigh"] == "pending"  # 10 % errors > 5 %, for 5m
    assert states[f"{RULE_PREFIX}NoData"] == "inactive"  # events came a moment ago


def test_promtool_accepts_the_metrics_and_the_rules(stack: Stack, tmp_path: Path) -> None:
    promtool = stack.binaries["promtool"]
    checked = subprocess.run(
        [promtool, "check", "metrics"],
        input=_metrics_text(stack),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = subprocess.run(
        [promtool, "check", "rules", str(stack.rules_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr


def _alertmanager_alerts(stack: Stack, alertname: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{stack.alertmanager.url}/api/v2/alerts", params={"filter": f'alertname="{alertname}"'}
    )
    assert response.status_code == 200
    alerts: list[dict[str, Any]] = response.json()
    return alerts


def test_watchkeepers_alert_reaches_alertmanager_through_the_outbox(stack: Stack) -> None:
    engine = stack.app.state.watchkeeper.alerting
    name = f"{RULE_PREFIX}AccuracyDrop"
    deadline = time.monotonic() + 30
    ours: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not ours:
        ours = [
            alert
            for alert in _alertmanager_alerts(stack, name)
            if alert["generatorURL"].startswith("http://watchkeeper.test")
        ]
        time.sleep(0.3)
    assert ours, "watchkeeper's alert did not reach Alertmanager"
    alert = ours[0]
    assert alert["labels"]["model"] == "churn"
    assert alert["labels"]["severity"] == "critical"
    assert alert["status"]["state"] == "active"
    assert alert["annotations"]["summary"] == "churn accuracy 0.500 is below 0.8"
    # Delivered through the outbox, by the alertmanager integration of the routed receiver.
    delivered = engine.notifications(status="delivered")
    assert any(
        item.receiver == "alertmanager"
        and any(a["labels"]["alertname"] == name for a in item.payload["alerts"])
        for item in delivered
    )
    # The rule exported to Prometheus fired there too and reached the same Alertmanager.
    deadline = time.monotonic() + 30
    theirs: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not theirs:
        theirs = [
            alert
            for alert in _alertmanager_alerts(stack, name)
            if alert["generatorURL"].startswith(stack.prometheus.url)
            or "/graph?" in alert["generatorURL"]
        ]
        time.sleep(0.3)
    assert theirs, "Prometheus' alert from the exported rule did not reach Alertmanager"
