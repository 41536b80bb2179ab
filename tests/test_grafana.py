"""The Grafana dashboard: generated from code, committed as generated, every query valid PromQL."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml
from typer.testing import CliRunner

from tests.alerts.test_config import _promtool
from watchkeeper.cli.main import app as cli_app
from watchkeeper.grafana import ROWS, UID, dashboard_json, queries

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "deploy" / "grafana" / "watchkeeper.json"


def concrete(expr: str, *, rate_interval: str = "30s") -> str:
    """``expr`` as Grafana sends it with every model, version and job selected."""
    expr = expr.replace("$__rate_interval", rate_interval).replace("$__range", "1h")
    return re.sub(r"\$(model|version|job)\b", ".+", expr)


def test_the_committed_dashboard_is_the_generated_one() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == dashboard_json(), (
        "deploy/grafana/watchkeeper.json is stale: "
        "run `watchkeeper grafana dashboard -o deploy/grafana/watchkeeper.json`"
    )


def test_the_cli_prints_and_writes_the_dashboard(tmp_path: Path) -> None:
    runner = CliRunner()
    printed = runner.invoke(cli_app, ["grafana", "dashboard"])
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == dashboard_json()
    target = tmp_path / "dashboard.json"
    written = runner.invoke(cli_app, ["grafana", "dashboard", "--output", str(target)])
    assert written.exit_code == 0, written.output
    assert target.read_text() == dashboard_json()
    refused = runner.invoke(
        cli_app, ["grafana", "dashboard", "-o", str(tmp_path / "missing" / "d.json")]
    )
    assert refused.exit_code == 2
    assert "cannot write" in refused.stderr


def test_the_dashboard_has_a_panel_per_query_and_the_variables() -> None:
    document = json.loads(dashboard_json())
    assert document["uid"] == UID
    rows = [panel["title"] for panel in document["panels"] if panel["type"] == "row"]
    assert rows == [title for title, _ in ROWS]
    targets = [
        target["expr"]
        for panel in document["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]
    assert targets == [query.expr for query in queries()]
    ids = [panel["id"] for panel in document["panels"]]
    assert len(ids) == len(set(ids))
    variables = [variable["name"] for variable in document["templating"]["list"]]
    assert variables == ["datasource", "job", "model", "version"]
    # No two panels overlap on Grafana's grid.
    cells = set()
    for panel in document["panels"]:
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, panel["title"]
                cells.add((x, y))


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses expressions in rule files: check each query as a recording rule.
    rules = [
        {"record": f"watchkeeper:dashboard_query_{index}", "expr": concrete(query.expr)}
        for index, query in enumerate(queries())
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [_promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
