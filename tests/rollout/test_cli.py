"""``watchkeeper rollout …`` on the database: start from a YAML spec, status, promote, abort."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression
from typer.testing import CliRunner

from watchkeeper.cli.main import app
from watchkeeper.config import Settings
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor import MonitorService
from watchkeeper.registry import ArtifactStore, Registry
from watchkeeper.serving import RoutingConfig
from watchkeeper.store import Store

runner = CliRunner()

SPEC = """
model: demand
baseline: champion
candidate: 2
steps:
  - set_weight: 20
  - pause: {}
  - set_weight: 60
  - pause: {duration: 1h}
analysis:
  interval: 5m
  metrics:
    - signal: error_rate
      condition: {kind: difference, value: 0.01}
"""


def _linear(slope: float) -> LinearRegression:
    frame = pd.DataFrame({"x1": [0.0, 1.0, 2.0, 3.0], "x2": [1.0, 0.0, 1.0, 0.0]})
    return LinearRegression().fit(frame, slope * frame["x1"] + frame["x2"])


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'wk.db'}"
    monkeypatch.setenv("WATCHKEEPER_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    monkeypatch.delenv("WATCHKEEPER_URL", raising=False)
    with Store.open(url) as store:
        registry = Registry(store, ArtifactStore(tmp_path / "artifacts"))
        registry.register("demand", _linear(1.0), registered_by="ana")
        registry.register("demand", _linear(1.1), registered_by="ana")
        registry.set_alias("demand", "champion", 1, moved_by="ana", reason="first")
        MonitorService(store, settings=Settings()).register_model(
            ModelSpec.from_dict(
                {"name": "demand", "task": "regression", "features": {"x1": "numeric"}}
            )
        )
    return url


def arms(url: str) -> dict[str, float]:
    with Store.open(url) as store:
        record = store.routing("demand")
        assert record is not None
        return {arm.name: arm.weight for arm in RoutingConfig.from_dict(record.config).arms}


def test_rollout_commands_on_the_database(db: str, tmp_path: Path) -> None:
    spec = tmp_path / "rollout.yaml"
    spec.write_text(SPEC)
    started = runner.invoke(app, ["rollout", "start", str(spec), "--db", db, "--json"])
    assert started.exit_code == 0, started.output
    document = json.loads(started.stdout)
    assert (document["state"], document["weights"]) == ("paused", {"1": 80, "2": 20})
    assert arms(db) == {"champion": 80.0, "v2": 20.0}

    promoted = runner.invoke(app, ["rollout", "promote", str(document["id"]), "--db", db])
    assert promoted.exit_code == 0, promoted.output
    assert "progressing" in promoted.stdout
    assert arms(db) == {"champion": 40.0, "v2": 60.0}

    listed = runner.invoke(app, ["rollout", "status", "--db", db])
    assert listed.exit_code == 0, listed.output
    assert "demand" in listed.stdout

    aborted = runner.invoke(
        app, ["rollout", "abort", str(document["id"]), "--reason", "too slow", "--db", db]
    )
    assert aborted.exit_code == 0, aborted.output
    assert arms(db) == {"champion": 100.0, "v2": 0.0}
    shown = runner.invoke(app, ["rollout", "status", str(document["id"]), "--db", db])
    assert shown.exit_code == 0, shown.output
    assert "too slow" in shown.stdout
    assert "aborted" in shown.stdout

    again = runner.invoke(app, ["rollout", "resume", str(document["id"]), "--db", db])
    assert again.exit_code == 1
    assert "it is aborted" in again.output


def test_a_bad_spec_is_a_usage_error(db: str, tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(SPEC.replace("set_weight: 20", "set_weight: 200"))
    result = runner.invoke(app, ["rollout", "start", str(spec), "--db", db])
    assert result.exit_code == 2
    assert "steps[0].set_weight" in result.output
