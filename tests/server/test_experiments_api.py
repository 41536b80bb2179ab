"""Experiments against a running server: an A/B test through the predict endpoint with outcomes
posted for its predictions, an A/A test, an induced sample-ratio mismatch, sticky assignment, the
routing set and restored, errors naming the field — and the results checked against SciPy on the
events and outcomes read back from the store."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.linear_model import LinearRegression
from typer.testing import CliRunner

from tests.server.conftest import ADMIN_TOKEN, ServerProcess
from watchkeeper.cli.main import app
from watchkeeper.registry import ArtifactStore, Registry
from watchkeeper.store import Store

runner = CliRunner()
MODEL = "shop"
CONFIG = {
    "name": MODEL,
    "task": "regression",
    "features": {"x1": "numeric", "x2": "numeric"},
    "outcomes": {"convert": "binary"},
    "windows": [1],
}


def _linear(slope: float) -> LinearRegression:
    frame = pd.DataFrame({"x1": [0.0, 1.0, 2.0, 3.0], "x2": [1.0, 0.0, 1.0, 0.0]})
    return LinearRegression().fit(frame, slope * frame["x1"] + frame["x2"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("experiments-api")
    url = f"sqlite:///{root / 'wk.db'}"
    with Store.open(url) as store:
        registry = Registry(store, ArtifactStore(root / "artifacts"))
        registry.register(MODEL, _linear(1.0), registered_by="ana")
        registry.register(MODEL, _linear(1.2), registered_by="ana")
        registry.set_alias(MODEL, "champion", 1, moved_by="ana", reason="first")
    process = ServerProcess(
        db=url,
        log=root / "server.log",
        env={
            "WATCHKEEPER_ARTIFACT_ROOT": str(root / "artifacts"),
            "WATCHKEEPER_INGEST_WORKERS": "0",
        },
    ).start()
    with process.client() as client:
        assert client.post("/v1/models", json=CONFIG).status_code == 201
    yield process
    process.stop()


@pytest.fixture
def admin(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def experiment(**changes: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "name": "new ranker",
        "arms": [
            {"name": "control", "version": "champion", "weight": 50},
            {"name": "treatment", "version": 2, "weight": 50},
        ],
        "metrics": [
            {
                "signal": "outcome.convert.rate",
                "name": "conversion",
                "direction": "higher_is_better",
            },
            "error_rate",
        ],
        **changes,
    }


def predict(admin: httpx.Client, units: list[str], arm: str | None = None) -> list[dict[str, Any]]:
    """One prediction per unit, in batches; returns the answers in order."""
    answers: list[dict[str, Any]] = []
    headers = {"x-watchkeeper-arm": arm} if arm else {}
    for start in range(0, len(units), 250):
        rows = [
            {"features": {"x1": 1.0, "x2": 0.5}, "unit": unit}
            for unit in units[start : start + 250]
        ]
        response = admin.post(f"/v1/models/{MODEL}/predict", json={"rows": rows}, headers=headers)
        assert response.status_code == 200, response.text
        answers += response.json()["predictions"]
    return answers


def convert(
    admin: httpx.Client, answers: list[dict[str, Any]], rates: dict[str, float], seed: int
) -> None:
    """Post a ``convert`` outcome for every answer, converting at its arm's rate."""
    rng = np.random.default_rng(seed)
    draws = rng.uniform(size=len(answers))
    outcomes = [
        {"id": answer["id"], "name": "convert", "value": bool(draw < rates[answer["arm"]])}
        for answer, draw in zip(answers, draws, strict=True)
    ]
    for start in range(0, len(outcomes), 1000):
        response = admin.post(
            f"/v1/models/{MODEL}/outcomes", json={"outcomes": outcomes[start : start + 1000]}
        )
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == len(outcomes[start : start + 1000]), response.text


def settled(
    admin: httpx.Client, experiment_id: int, events: int, outcomes: int = 0
) -> dict[str, Any]:
    """The results once the monitor's windows hold every event and outcome sent (predictions
    are logged in the background: outcomes can be sent once their predictions are stored)."""
    deadline = time.monotonic() + 30
    while True:
        response = admin.get(f"/v1/experiments/{experiment_id}/results")
        assert response.status_code == 200, response.text
        results = response.json()
        seen_events = sum(results["sample_ratio"]["counts"])
        seen_outcomes = sum(arm["n"] for arm in results["metrics"][0]["arms"])
        if (seen_events, seen_outcomes) == (events, outcomes) or time.monotonic() > deadline:
            assert (seen_events, seen_outcomes) == (events, outcomes), str(results["metrics"])
            return results
        time.sleep(0.3)


def start(admin: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = admin.post("/v1/experiments", json=body)
    assert response.status_code == 201, response.text
    # The arms' windows are those starting after the experiment did (1 s windows here).
    time.sleep(1.1)
    return response.json()


def stop(admin: httpx.Client, experiment_id: int) -> dict[str, Any]:
    response = admin.post(f"/v1/experiments/{experiment_id}/stop", json={"reason": "done"})
    assert response.status_code == 200, response.text
    return response.json()


def test_errors_name_the_field(admin: httpx.Client) -> None:
    cases = [
        (
            experiment(arms=[{"version": 1, "weight": 50}, {"version": 7, "weight": 50}]),
            "arms[1].version",
        ),
        (experiment(metrics=["error_rate", "conversion_rate"]), "metrics[1].signal"),
        (experiment(alpha=1.5), "alpha"),
        (experiment(arms=[{"version": 1, "weight": 60}, {"version": 2, "weight": 30}]), "arms"),
        (experiment(arms=[{"version": 1}, {"version": "champion"}]), "arms[1].version"),
        (experiment(method="bayesian"), "method"),
        (experiment(colour="red"), "experiment.colour"),
    ]
    for body, field in cases:
        response = admin.post("/v1/experiments", json=body)
        assert response.status_code == 422, (field, response.text)
        assert response.json()["error"]["field"] == field, response.text
    assert admin.get("/v1/experiments/999").status_code == 404
    assert admin.get("/v1/experiments/0/results").status_code == 404
    assert admin.post("/v1/experiments", json={**experiment(), "model": "ghost"}).status_code == 404
    assert admin.get("/v1/experiments", params={"model": MODEL}).json() == {"experiments": []}
    assert admin.get(f"/v1/models/{MODEL}/routing").json()["config"] is None


def test_ab_test_through_the_predict_endpoint(server: ServerProcess, admin: httpx.Client) -> None:
    created = start(admin, experiment())
    experiment_id = created["id"]
    assert (created["state"], created["method"], created["alpha"]) == (
        "running",
        "always_valid",
        0.05,
    )
    assert [(arm["name"], arm["version"], arm["weight"]) for arm in created["arms"]] == [
        ("control", "1", 50),
        ("treatment", "2", 50),
    ]
    routing = admin.get(f"/v1/models/{MODEL}/routing").json()
    assert routing["config"]["sticky"] is True
    assert [(a["name"], a["version"], a["weight"]) for a in routing["config"]["arms"]] == [
        ("control", 1, 50.0),
        ("treatment", 2, 50.0),
    ]
    busy = admin.post("/v1/experiments", json=experiment())
    assert busy.status_code == 409, busy.text

    units = [f"user-{i}" for i in range(4000)]
    answers = predict(admin, units)
    assert {answer["arm"]: answer["version"] for answer in answers} == {
        "control": 1,
        "treatment": 2,
    }
    again = predict(admin, units[:500])
    assert [a["arm"] for a in again] == [a["arm"] for a in answers[:500]]  # sticky
    settled(admin, experiment_id, events=4500)
    convert(admin, answers + again, {"control": 0.10, "treatment": 0.15}, seed=1)

    results = settled(admin, experiment_id, events=4500, outcomes=4500)
    assert results["verdict"] == "analysed", results["reason"]
    assert results["sample_ratio"]["mismatch"] is False
    conversion, errors = results["metrics"]
    [comparison] = conversion["comparisons"]
    assert comparison["verdict"] == "better", comparison
    assert comparison["significant"] is True
    assert comparison["always_valid"]["p_value"] < 0.001
    assert comparison["lift_ci_low"] > 0
    assert comparison["lift"] > 0.2
    assert comparison["ci_low"] > 0
    assert errors["comparisons"][0]["verdict"] == "no_difference"  # no errors on either arm

    # The same numbers from the store directly: events of each version since the start,
    # their outcomes, and SciPy's tests.
    with Store(server.db) as store:
        model_id = store.get_model(MODEL).id
        since, until = results["since"], results["until"]
        arms: dict[str, tuple[int, int]] = {}
        for arm in created["arms"]:
            ids = [
                e.event_id
                for e in store.events_between(model_id, since, until, version=arm["version"])
            ]
            converted = sum(
                o.value for o in store.outcomes_for(model_id, ids) if o.name == "convert"
            )
            arms[arm["name"]] = (int(converted), len(ids))
    (s0, n0), (s1, n1) = arms["control"], arms["treatment"]
    assert [(a["successes"], a["n"]) for a in conversion["arms"]] == [(s0, n0), (s1, n1)]
    table = [[s1, n1 - s1], [s0, n0 - s0]]
    expected_p = stats.chi2_contingency(table, correction=False).pvalue
    assert comparison["fixed_horizon"]["p_value"] == pytest.approx(expected_p, rel=1e-9)
    assert comparison["effect"] == pytest.approx(s1 / n1 - s0 / n0, rel=1e-12)
    assert comparison["lift"] == pytest.approx((s1 / n1) / (s0 / n0) - 1, rel=1e-12)
    half = stats.norm.ppf(0.975) * math.sqrt(
        s1 / n1 * (1 - s1 / n1) / n1 + s0 / n0 * (1 - s0 / n0) / n0
    )
    assert comparison["fixed_horizon"]["ci_low"] == pytest.approx(
        s1 / n1 - s0 / n0 - half, rel=1e-9
    )
    srm = stats.chisquare([n0, n1], [(n0 + n1) / 2] * 2)
    assert results["sample_ratio"]["p_value"] == pytest.approx(srm.pvalue, rel=1e-9)

    stopped = stop(admin, experiment_id)
    assert stopped["state"] == "stopped"
    assert "routing restored" in stopped["reason"]
    assert admin.get(f"/v1/models/{MODEL}/routing").json()["config"] is None
    assert admin.post(f"/v1/experiments/{experiment_id}/stop").status_code == 409
    # Stopped: the results are those of the experiment's span, whatever comes after.
    predict(admin, [f"late-{i}" for i in range(50)])
    later = admin.get(f"/v1/experiments/{experiment_id}/results").json()
    assert later["sample_ratio"]["counts"] == results["sample_ratio"]["counts"]
    assert later["metrics"][0]["comparisons"][0]["p_value"] == pytest.approx(comparison["p_value"])


def test_aa_test_is_not_significant(admin: httpx.Client) -> None:
    body = experiment(arms=[{"name": "a", "version": 1}, {"name": "b", "version": 2}], alpha=0.01)
    experiment_id = start(admin, body)["id"]
    answers = predict(admin, [f"aa-{i}" for i in range(3000)])
    settled(admin, experiment_id, events=3000)
    convert(admin, answers, {"a": 0.12, "b": 0.12}, seed=2)
    results = settled(admin, experiment_id, events=3000, outcomes=3000)
    comparison = results["metrics"][0]["comparisons"][0]
    assert results["verdict"] == "analysed"
    assert comparison["verdict"] == "no_difference", comparison
    assert comparison["ci_low"] < 0 < comparison["ci_high"]
    stop(admin, experiment_id)


def test_a_sample_ratio_mismatch_stops_the_verdict(admin: httpx.Client) -> None:
    previous = {
        "arms": [{"name": "champion", "alias": "champion", "weight": 1.0}],
        "salt": "kept",
        "reason": "before the experiment",
    }
    assert admin.put(f"/v1/models/{MODEL}/routing", json=previous).status_code == 200
    before = admin.get(f"/v1/models/{MODEL}/routing").json()["config"]
    experiment_id = start(admin, experiment())["id"]
    answers = predict(admin, [f"srm-{i}" for i in range(1000)])
    # A crawler hits the treatment only (the override header picks its arm).
    extra = predict(admin, [f"bot-{i}" for i in range(300)], arm="treatment")
    settled(admin, experiment_id, events=1300)
    convert(admin, answers + extra, {"control": 0.10, "treatment": 0.30}, seed=3)
    results = settled(admin, experiment_id, events=1300, outcomes=1300)
    assert results["sample_ratio"]["mismatch"] is True
    assert results["verdict"] == "stopped"
    assert "sample ratio mismatch" in results["reason"]
    for metric in results["metrics"]:
        assert [c["verdict"] for c in metric["comparisons"]] == ["stopped"]
    stop(admin, experiment_id)
    assert admin.get(f"/v1/models/{MODEL}/routing").json()["config"] == before
    listed = admin.get("/v1/experiments", params={"model": MODEL}).json()["experiments"]
    assert [item["state"] for item in listed][-1] == "stopped"
    assert admin.get(f"/v1/experiments/{experiment_id}").json()["id"] == experiment_id


def test_cli_over_the_server(server: ServerProcess, admin: httpx.Client, tmp_path: Path) -> None:
    spec = tmp_path / "experiment.json"
    spec.write_text(json.dumps(experiment(name="from the cli")))
    options = ["--url", server.url, "--token", ADMIN_TOKEN]
    created = runner.invoke(app, ["experiments", "create", str(spec), *options, "--json"])
    assert created.exit_code == 0, created.output
    experiment_id = str(json.loads(created.stdout)["id"])
    assert (
        admin.get(f"/v1/models/{MODEL}/routing").json()["config"]["salt"].startswith("experiment-")
    )
    results = runner.invoke(app, ["experiments", "results", experiment_id, *options])
    assert results.exit_code == 0, results.output
    assert "conversion (outcome.convert.rate; n: trials)" in results.stdout
    listed = runner.invoke(app, ["experiments", "list", *options])
    assert "from the cli" in listed.stdout
    busy = runner.invoke(app, ["experiments", "create", str(spec), *options])
    assert busy.exit_code == 1
    assert "already has experiment" in busy.output
    stopped = runner.invoke(app, ["experiments", "stop", experiment_id, *options])
    assert stopped.exit_code == 0, stopped.output
    assert "stopped" in stopped.stdout


@pytest.mark.parametrize("path", ["/v1/experiments", "/v1/rollouts", f"/v1/models/{MODEL}/retrain"])
def test_admin_bodies_past_the_limit_or_broken_are_refused_naming_the_problem(
    admin: httpx.Client, path: str
) -> None:
    # One reader (wire.read_document) for the maintenance routes' JSON bodies.
    huge = b'{"model": "' + b"x" * (2 << 20) + b'"}'
    answer = admin.post(path, content=huge, headers={"content-type": "application/json"})
    assert answer.status_code == 413, answer.text
    assert "max_admin_body_bytes".upper() in answer.text
    broken = admin.post(path, content=b'{"model": ', headers={"content-type": "application/json"})
    assert broken.status_code == 400, broken.text
    assert "line 1" in broken.text
    text = admin.post(path, content=b"model=x", headers={"content-type": "text/plain"})
    assert text.status_code == 415, text.text
