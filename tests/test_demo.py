from __future__ import annotations

import time
from pathlib import Path

import orjson
from typer.testing import CliRunner

from watchkeeper.cli.main import app
from watchkeeper.demo import run_demo


def test_demo_runs_the_batch_report_and_the_live_loop(tmp_path: Path) -> None:
    outcome = run_demo(tmp_path)
    finished = time.time()
    document = orjson.loads(outcome.json_path.read_bytes())
    assert document["drift"]["dataset_drift"] is True
    assert document["performance"]["change"]["accuracy"]["change"] < -0.1
    assert outcome.html_path.stat().st_size > 0

    live = outcome.live
    assert live is not None
    assert live.db_path.exists()
    before = [w["accuracy"] for w in live.timeline if w["rows"][1] < 12_000]
    after = [w["accuracy"] for w in live.timeline if w["rows"][0] >= 12_000]
    assert sum(w["events"] for w in live.timeline) == 18_159 - 6_000
    assert min(before) > max(after), "accuracy must fall once the documented drift starts"
    firing = {alert["rule"] for alert in live.firing}
    assert {"RainfallAccuracyDrop", "RainfallDriftShareHigh", "RainfallFeatureDrift"} <= firing
    # Alerts are stamped within the run, never in its future.
    assert all(alert["fired_at"] <= finished for alert in live.firing)


def test_demo_command_without_the_live_loop(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--output", str(tmp_path), "--no-live"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report.json").exists()
    assert not (tmp_path / "watchkeeper.db").exists()
