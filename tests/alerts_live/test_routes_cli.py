"""The alerts router on a real uvicorn server, driven over HTTP and through the CLI."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import typer
from fastapi import FastAPI
from typer.testing import CliRunner

from tests.alerts._servers import free_port
from tests.alerts_live.conftest import serve
from watchkeeper.alerts import dump_rules, load_rules
from watchkeeper.alerts.engine import AlertingEngine
from watchkeeper.alerts.model import AlertState
from watchkeeper.cli.alerts import register
from watchkeeper.config import Settings
from watchkeeper.server.alerts_routes import alerts_router
from watchkeeper.server.auth import Authenticator
from watchkeeper.server.errors import install_error_handlers
from watchkeeper.store import Store

RULES = """rules:
  - name: KeyFeatureDrift
    model: credit
    signal: drift.income.score
    condition: "> 0.2"
    severity: critical
    annotations:
      summary: '{{ labels.model }} drift on {{ labels.feature }} = {{ value | printf("%.3f") }}'
"""
BAD_RULES = (
    RULES
    + """  - name: Other
    signal: accuracy
    condition: "< 0.8"
    for: soon
"""
)
ADMIN = "s3cret-admin-token"


@dataclass
class Server:
    url: str
    engine: AlertingEngine


def alerts_app(engine: AlertingEngine, settings: Settings, store: Store) -> FastAPI:
    """The router on a bare app with the server's error mapping and authenticator."""
    app = FastAPI()
    install_error_handlers(app)
    app.state.watchkeeper = SimpleNamespace(
        authenticator=Authenticator(settings=settings, store=store)
    )
    app.include_router(alerts_router(engine))
    return app


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    settings = Settings(auth=bool(getattr(request, "param", False)), admin_token=ADMIN)
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    ticks = itertools.count(1000)  # a fake clock that moves one second per reading
    engine = AlertingEngine(
        db=f"sqlite:///{tmp_path / 'alerts.db'}", clock=lambda: float(next(ticks))
    )
    with serve(alerts_app(engine, settings, store)) as url:
        yield Server(url=url, engine=engine)
    engine.close()
    store.close()


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_rules_apply_list_export_and_defaults_through_the_cli(
    server: Server, tmp_path: Path
) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES)
    code, out, _ = cli("rules", "apply", str(rules_file), "--url", server.url)
    assert code == 0, out
    assert out.strip() == f"{rules_file}: applied 1 rule(s); 1 rule(s) in force"
    assert server.engine.rules() == load_rules(RULES)

    code, out, _ = cli("rules", "list", "-o", "yaml", "--url", server.url)
    assert code == 0
    assert out == dump_rules(load_rules(RULES))
    code, out, _ = cli("rules", "list", "--url", server.url)
    assert code == 0
    assert "KeyFeatureDrift" in out
    assert "> 0.2" in out

    exported = tmp_path / "prom.yml"
    code, out, _ = cli("rules", "export-prometheus", str(exported), "--url", server.url)
    assert code == 0
    assert "1 rule(s) exported, 0 skipped" in out
    assert "alert: KeyFeatureDrift" in exported.read_text()
    assert 'watchkeeper_feature_drift_score{model="credit",feature="income"} > 0.2' in (
        exported.read_text()
    )

    code, out, _ = cli("rules", "defaults", "credit", "--url", server.url)
    assert code == 0
    assert out.startswith("credit: added 6 rule(s): CreditDriftShareHigh")
    code, out, _ = cli("rules", "apply", "--merge", str(rules_file), "--url", server.url)
    assert code == 0
    assert "7 rule(s) in force" in out


def test_invalid_rules_file_exits_2_with_one_line_naming_the_path(
    server: Server, tmp_path: Path
) -> None:
    rules_file = tmp_path / "bad.yaml"
    rules_file.write_text(BAD_RULES)
    code, _out, err = cli("rules", "apply", str(rules_file), "--url", server.url)
    assert code == 2
    assert err == (
        f"error: {rules_file}: rules[1].for: expected a duration such as 5m, got 'soon'\n"
    )
    assert server.engine.rules() == []
    code, _, err = cli("rules", "apply", str(tmp_path / "missing.yaml"), "--url", server.url)
    assert code == 2
    assert "missing.yaml: cannot read the rules file" in err
    rules_file.write_text("rules: [\n")
    code, _, err = cli("rules", "apply", str(rules_file), "--url", server.url)
    assert code == 2
    assert err.count("\n") == 1
    assert "not valid YAML" in err


def test_put_rules_validates_json_and_yaml_bodies(server: Server) -> None:
    url = f"{server.url}/v1/rules"
    bad = [{"name": "A", "signal": "accuracy", "condition": "below 0.8"}]
    response = httpx.put(url, json=bad)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "invalid_config"
    assert error["field"] == "rules[0].condition"
    assert error["message"].startswith("rules[0].condition: expected")
    response = httpx.put(url, content=RULES, headers={"content-type": "application/yaml"})
    assert response.status_code == 200
    assert response.json()["applied"] == 1
    good = [{"name": "B", "signal": "accuracy", "condition": "< 0.8"}]
    response = httpx.put(url, params={"replace": "false"}, json=good)
    assert [rule["name"] for rule in response.json()["rules"]] == ["KeyFeatureDrift", "B"]
    assert (
        httpx.put(url, content=b"{", headers={"content-type": "application/json"}).status_code
        == 400
    )
    assert httpx.put(url, content=b"x", headers={"content-type": "image/png"}).status_code == 415
    response = httpx.get(f"{server.url}/v1/rules/export/prometheus", params={"format": "yaml"})
    assert response.headers["content-type"].startswith("application/yaml")
    assert "groups:" in response.text


def test_alerts_silences_and_history_through_the_cli(server: Server) -> None:
    server.engine.apply_rules(load_rules(RULES))
    sample = {
        "labels": {
            "model": "credit",
            "version": "v1",
            "segment": "",
            "signal": "drift.income.score",
        },
        "value": 0.4,
        "timestamp": 1000.0,
    }
    server.engine.evaluate(1000.0, [sample])
    code, out, _ = cli("alerts", "list", "--state", "firing", "--json", "--url", server.url)
    assert code == 0
    (alert,) = json.loads(out)["alerts"]
    assert alert["state"] == "firing"
    assert alert["labels"]["feature"] == "income"
    assert alert["muted"] is False
    code, out, _ = cli("alerts", "list", "--url", server.url)
    assert code == 0
    assert "KeyFeatureDrift" in out
    assert "0.4" in out

    code, out, err = cli(
        "silences", "add", "--matcher", "alertname=KeyFeatureDrift", "-m", 'model="credit"',
        "--duration", "2h", "--comment", "retraining", "--author", "ana", "--url", server.url,
    )  # fmt: skip
    assert code == 0, err
    silence_id = out.strip()
    (silence,) = server.engine.silences()
    assert silence.id == silence_id
    assert silence.ends_at - silence.starts_at == 7200.0
    assert silence.created_by == "ana"
    assert silence.comment == "retraining"
    assert [str(m) for m in silence.matchers] == ['alertname="KeyFeatureDrift"', 'model="credit"']
    code, out, _ = cli("alerts", "list", "--json", "--url", server.url)
    assert json.loads(out)["alerts"][0]["muted"] is True
    code, out, _ = cli("silences", "list", "--json", "--url", server.url)
    assert [(s["id"], s["status"], s["created_by"]) for s in json.loads(out)["silences"]] == [
        (silence_id, "active", "ana")
    ]
    code, out, _ = cli("silences", "expire", silence_id, "--url", server.url)
    assert code == 0
    assert out.strip() == f"expired {silence_id}"
    code, out, _ = cli("silences", "list", "--json", "--url", server.url)
    assert json.loads(out)["silences"] == []
    code, out, _ = cli("silences", "list", "--all", "--json", "--url", server.url)
    assert json.loads(out)["silences"][0]["status"] == "expired"

    code, _, err = cli("silences", "expire", "nope", "--url", server.url)
    assert code == 1
    assert "404" in err
    assert "no silence with id 'nope'" in err
    code, _, err = cli(
        "silences", "add", "-m", "bad matcher", "--duration", "1h", "--url", server.url
    )
    assert code == 2
    assert "--matcher" in err
    code, _, err = cli("silences", "add", "-m", "a=b", "--duration", "soon", "--url", server.url)
    assert code == 2
    assert err.startswith("error: --duration: expected a duration")
    code, _, err = cli("alerts", "list", "--state", "loud", "--url", server.url)
    assert code == 2

    code, out, _ = cli("alerts", "history", "--json", "--url", server.url)
    changes = json.loads(out)["history"]
    assert [(c["previous"], c["state"]) for c in changes] == [("inactive", "firing")]
    assert server.engine.alerts(AlertState.FIRING)


@pytest.mark.parametrize("server", [True], indirect=True)
def test_auth_is_enforced_and_token_comes_from_flag_or_environment(server: Server) -> None:
    code, _, err = cli("rules", "list", "--url", server.url)
    assert code == 1
    assert "401" in err
    code, _, err = cli("rules", "list", "--url", server.url, "--token", "wrong")
    assert code == 1
    assert "unknown token" in err
    code, out, _ = cli("rules", "list", "-o", "json", "--url", server.url, "--token", ADMIN)
    assert code == 0
    assert json.loads(out) == {"rules": []}
    code, out, _ = cli(
        "rules",
        "list",
        "-o",
        "json",
        env={"WATCHKEEPER_URL": server.url, "WATCHKEEPER_TOKEN": ADMIN},
    )
    assert code == 0


def test_unreachable_server_exits_1() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = cli("alerts", "list", "--url", url)
    assert code == 1
    using, error = err.splitlines()
    assert using == f"watchkeeper: using server {url}"
    assert error.startswith(f"error: cannot reach watchkeeper at {url}")
