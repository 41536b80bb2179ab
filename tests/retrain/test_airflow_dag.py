"""The documented Airflow DAG (deploy/airflow/watchkeeper_retrain_dag.py) compiles, and every
watchkeeper path, query parameter and field it uses exists: in the service's OpenAPI document,
and in the job the webhook executor posts. Airflow itself is not installed; the DAG is read as
source."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from tests.retrain.test_webhook import AS_OF, served, store  # noqa: F401  (fixtures)
from watchkeeper.config import Settings
from watchkeeper.retrain.runs import RetrainJob
from watchkeeper.retrain.webhook import WebhookExecutor
from watchkeeper.server.app import create_app
from watchkeeper.store import Store

DAG = Path(__file__).resolve().parents[2] / "deploy" / "airflow" / "watchkeeper_retrain_dag.py"


@pytest.fixture(scope="module")
def dag() -> ast.Module:
    source = DAG.read_text()
    compile(source, str(DAG), "exec")
    return ast.parse(source)


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    db = tmp_path_factory.mktemp("openapi") / "wk.db"
    document: dict[str, Any] = create_app(Settings(db=f"sqlite:///{db}")).openapi()
    return document


def constants(tree: ast.Module) -> dict[str, Any]:
    """The DAG's module-level constants."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return found


def keys_read_from(tree: ast.Module, name: str) -> set[str]:
    """Every ``name["key"]`` the DAG reads."""
    return {
        node.slice.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id == name
        and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, str)
    }


def schema(openapi: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    """The run document's properties as ``method path`` answers it."""
    answers = openapi["paths"][path][method]["responses"]
    success = next(answers[code] for code in ("200", "202") if code in answers)
    reference = success["content"]["application/json"]["schema"]["$ref"]
    properties: dict[str, Any] = openapi["components"]["schemas"][reference.split("/")[-1]][
        "properties"
    ]
    return properties


def test_every_watchkeeper_path_the_dag_calls_is_in_the_openapi(
    dag: ast.Module, openapi: dict[str, Any]
) -> None:
    wanted = constants(dag)
    paths = openapi["paths"]
    assert "post" in paths[wanted["START_RUN"]]
    assert "get" in paths[wanted["RUN"]]
    assert "post" in paths[wanted["ARTIFACT"]]
    # No other watchkeeper path hides in the DAG's code (its docstrings aside).
    docstrings = {
        id(node.value)
        for node in ast.walk(dag)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    literals = {
        node.value
        for node in ast.walk(dag)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and "/v1/" in node.value
        and id(node) not in docstrings
    }
    assert literals == {wanted[name] for name in ("START_RUN", "RUN", "ARTIFACT")}
    parameters = {p["name"] for p in paths[wanted["ARTIFACT"]]["post"].get("parameters", [])}
    assert set(wanted["ARTIFACT_QUERY"]) <= parameters
    media = paths[wanted["ARTIFACT"]]["post"]["requestBody"]["content"]
    assert "application/octet-stream" in media


def test_every_field_the_dag_sends_or_reads_is_in_the_openapi(
    dag: ast.Module, openapi: dict[str, Any]
) -> None:
    wanted = constants(dag)
    body = next(
        node
        for node in ast.walk(dag)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "dumps"
        and isinstance(node.args[0], ast.Dict)
    ).args[0]
    sent = {key.value for key in body.keys if isinstance(key, ast.Constant)}
    request = openapi["paths"][wanted["START_RUN"]]["post"]["requestBody"]["content"]
    reference = request["application/json"]["schema"]["$ref"].split("/")[-1]
    assert sent <= set(openapi["components"]["schemas"][reference]["properties"])
    read = keys_read_from(dag, "run")
    assert read >= {"id", "status", "reason", "version", "error"}
    for path, method in ((wanted["START_RUN"], "post"), (wanted["RUN"], "get"),
                         (wanted["ARTIFACT"], "post")):  # fmt: skip
        assert read <= set(schema(openapi, path, method)), path
    statuses = set(openapi["components"]["schemas"]["RetrainRunDocument"]["properties"])
    assert "status" in statuses


def test_every_job_field_the_dag_reads_is_in_the_webhooks_job(
    dag: ast.Module,
    store: Store,  # noqa: F811
) -> None:
    read = keys_read_from(dag, "job")
    assert read >= {"run_id", "start", "train_before", "features", "label", "callback_url"}
    options = {"kind": "webhook", "url": "http://orchestrator.test/hooks", "format": "airflow"}
    config = {"trainer": "watchkeeper.demo:train_rainfall", "lookback": 172_800.0,
              "label_delay": 3600.0, "min_rows": 200, "executor": options}  # fmt: skip
    job = RetrainJob(1, "rainfall", 1, AS_OF, {"kind": "manual"}, config)
    webhook = WebhookExecutor(callback_base="http://wk:8000", store=store, secrets={})
    payload = webhook.payload(job, deadline=AS_OF + 3600)
    webhook.close()
    assert read <= set(payload)
    assert payload["callback_url"].endswith(constants(dag)["ARTIFACT"].format(run_id=job.run_id))
