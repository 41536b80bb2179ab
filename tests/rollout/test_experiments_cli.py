"""``watchkeeper experiments …`` on the database: create from a YAML spec, list, show, results
from the windows another process stored, stop; bad specs are usage errors naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
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
from watchkeeper.store import Store, tables

runner = CliRunner()

SPEC = """
model: demand
name: steeper slope
arms:
  - {name: control, version: champion, weight: 50}
  - {name: treatment, version: 2, weight: 50}
metrics:
  - error_rate
  - {signal: latency_p99, name: slow requests}
method: fixed
alpha: 0.01
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
                {
                    "name": "demand",
                    "task": "regression",
                    "features": {"x1": "numeric"},
                    "windows": [10],
                }
            )
        )
    return url


def serve(url: str, since: float, rates: dict[str, float], per_arm: int) -> None:
    """Events of each version (errors at its rate) in the five 10 s windows after ``since``,
    closed and stored by a monitor of this process, as a server would."""
    rng = np.random.default_rng(5)
    first_window = (since // 10 + 1) * 10
    with Store.open(url) as store:
        monitor = MonitorService(store, settings=Settings())
        monitor.start()
        events = []
        for version, rate in rates.items():
            for index in range(per_arm):
                ts = first_window + 50.0 * index / per_arm
                events.append(
                    {
                        "id": f"{version}-{index}",
                        "timestamp": ts,
                        "version": version,
                        "features": {"x1": float(rng.normal())},
                        "prediction": 1.0,
                        "error": bool(rng.uniform() < rate),
                        "latency_ms": float(rng.gamma(4.0, 10.0)),
                    }
                )
        outcome = monitor.ingest_events("demand", events)
        assert outcome.accepted == len(events), outcome
        monitor.tick(now=since + 300.0)
        monitor.close()


def started_an_hour_ago(url: str, experiment_id: int) -> float:
    """Move the experiment's start an hour back, so its traffic can be in the past."""
    with Store.open(url) as store:
        with store.engine.begin() as connection:
            table = tables.experiments
            connection.execute(
                table.update()
                .where(table.c.id == experiment_id)
                .values(created_at=table.c.created_at - 3600.0)
            )
        return store.experiment(experiment_id).created_at


def routing(url: str) -> dict[str, float] | None:
    with Store.open(url) as store:
        record = store.routing("demand")
        if record is None:
            return None
        return {arm.name: arm.weight for arm in RoutingConfig.from_dict(record.config).arms}


def test_experiment_commands_on_the_database(db: str, tmp_path: Path) -> None:
    spec = tmp_path / "experiment.yaml"
    spec.write_text(SPEC)
    created = runner.invoke(app, ["experiments", "create", str(spec), "--db", db, "--json"])
    assert created.exit_code == 0, created.output
    document = json.loads(created.stdout)
    assert (document["state"], document["method"], document["alpha"]) == ("running", "fixed", 0.01)
    assert routing(db) == {"control": 50.0, "treatment": 50.0}
    experiment_id = str(document["id"])

    since = started_an_hour_ago(db, document["id"])
    serve(db, since, {"1": 0.02, "2": 0.08}, per_arm=1500)
    shown = runner.invoke(app, ["experiments", "results", experiment_id, "--db", db, "--json"])
    assert shown.exit_code == 0, shown.output
    results = json.loads(shown.stdout)
    assert results["sample_ratio"]["counts"] == [1500, 1500]
    errors, latency = results["metrics"]
    assert errors["comparisons"][0]["verdict"] == "worse"
    assert latency["kind"] == "per_window"
    assert [arm["n"] for arm in latency["arms"]] == [5, 5]  # 10 s windows over 50 s
    table = runner.invoke(app, ["experiments", "results", experiment_id, "--db", db])
    assert table.exit_code == 0, table.output
    assert "worse" in table.stdout
    assert "slow requests" in table.stdout

    listed = runner.invoke(app, ["experiments", "list", "--model", "demand", "--db", db])
    assert listed.exit_code == 0, listed.output
    assert "steeper slope" in listed.stdout
    stopped = runner.invoke(
        app, ["experiments", "stop", experiment_id, "--reason", "enough", "--db", db]
    )
    assert stopped.exit_code == 0, stopped.output
    assert routing(db) is None
    again = runner.invoke(app, ["experiments", "show", experiment_id, "--db", db, "--json"])
    assert "enough" in json.loads(again.stdout)["reason"]
    twice = runner.invoke(app, ["experiments", "stop", experiment_id, "--db", db])
    assert twice.exit_code == 1
    assert "already stopped" in twice.output


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (("weight: 50}", "weight: 40}"), "arms"),
        (("version: 2", "version: 9"), "arms[1].version"),
        (("alpha: 0.01", "alpha: 0"), "alpha"),
        (("- error_rate", "- error_share"), "metrics[0].signal"),
    ],
)
def test_a_bad_spec_is_a_usage_error(
    db: str, tmp_path: Path, change: tuple[str, str], field: str
) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(SPEC.replace(*change, 1))
    result = runner.invoke(app, ["experiments", "create", str(spec), "--db", db])
    assert result.exit_code == 2, result.output
    assert f"{field}:" in result.output
    assert routing(db) is None
