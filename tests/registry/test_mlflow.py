"""The MLflow adapter against a real MLflow tracking server (SQLite backend, local artifacts)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from tests.registry.conftest import Clock
from tests.registry.mlflow_server import free_port, mlflow_server
from watchkeeper.errors import ConfigError, NotFoundError
from watchkeeper.registry import ArtifactStore, Registry
from watchkeeper.registry.mlflow import (
    MlflowAdapterError,
    import_from_mlflow,
    mirror_to_mlflow,
    mlflow_source,
)
from watchkeeper.store import Store


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        with mlflow_server(tmp_path_factory.mktemp("mlflow")) as uri:
            # MLflow's fluent API (start_run, log_model) logs to the server of this variable.
            patch.setenv("MLFLOW_TRACKING_URI", uri)
            yield uri


@pytest.fixture
def client(tracking_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri)


@pytest.fixture
def local_registry(tmp_path: Path, clock: Clock) -> Iterator[Registry]:
    with Store.open(f"sqlite:///{tmp_path / 'local.db'}") as store:
        yield Registry(store, ArtifactStore(tmp_path / "local-artifacts"), clock=clock)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _data(seed: int) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"income": rng.normal(50.0, 10.0, 200), "age": rng.normal(40, 8, 200)})
    return frame, (frame["income"] + rng.normal(0, 5, 200) > 50).astype(int)


def _log_sklearn(name: str, seed: int, C: float = 1.0, **options: Any) -> tuple[Any, str]:
    """Train, log and register a model in MLflow; (the model, its MLflow version)."""
    frame, target = _data(seed)
    model = LogisticRegression(C=C).fit(frame, target)
    with mlflow.start_run() as run:
        mlflow.log_params({"C": C, "solver": "lbfgs"})
        mlflow.log_metric("auc", 0.8 + seed / 100)
        mlflow.set_tag("mlflow.source.git.commit", f"abc{seed}")
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=name,
            input_example=frame.head(2),
            # Given, MLflow does not infer them (a subprocess that takes seconds per model).
            pip_requirements=["scikit-learn", "skops"],
            **options,
        )
    assert info.run_id == run.info.run_id
    return model, str(info.registered_model_version)


def test_an_imported_sklearn_version_predicts_like_the_mlflow_model(
    registry: Registry, client: MlflowClient, tracking_uri: str
) -> None:
    name = _name("churn")
    model, number = _log_sklearn(name, seed=1)
    client.update_model_version(name, number, description="logistic, May data")
    client.set_model_version_tag(name, number, "team", "risk")
    client.set_registered_model_alias(name, "champion", number)

    report = import_from_mlflow(registry, name, tracking_uri=tracking_uri, imported_by="ana")

    assert report.imported == {1: 1}
    record = registry.version(name, 1)
    assert record.flavor == "sklearn"  # MLflow's skops format: loads safely, no trust
    assert not record.trusted
    assert record.description == "logistic, May data"
    assert record.params == {"C": "1.0", "solver": "lbfgs"}
    assert record.metrics == {"auc": pytest.approx(0.81)}
    assert record.code_revision == "abc1"
    assert record.registered_by == "ana"
    assert record.tags["team"] == "risk"
    run_id = client.get_model_version(name, number).run_id
    assert mlflow_source(record) == (name, 1, run_id)
    assert record.signature["features"] == {"income": "numeric", "age": "numeric"}

    frame, _ = _data(seed=7)
    loaded = registry.load(f"{name}@champion")
    assert loaded.predict(frame) == [str(label) for label in model.predict(frame)]
    classes, matrix = loaded.predict_proba(frame)
    assert classes == ["0", "1"]
    np.testing.assert_allclose(matrix, model.predict_proba(frame))
    mlflow_model = mlflow.pyfunc.load_model(f"models:/{name}/{number}")
    assert loaded.predict(frame) == [str(label) for label in mlflow_model.predict(frame)]


def test_aliases_arrive_with_their_history_and_reimport_is_idempotent(
    local_registry: Registry, client: MlflowClient, tracking_uri: str, clock: Clock
) -> None:
    name = _name("fraud")
    _log_sklearn(name, seed=1)
    _log_sklearn(name, seed=2, C=0.5)
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "challenger", "2")

    first = import_from_mlflow(local_registry, name, tracking_uri=tracking_uri, imported_by="ana")
    assert first.imported == {1: 1, 2: 2}
    assert {move.alias: move.to_version for move in first.alias_moves} == {
        "champion": 1,
        "challenger": 2,
    }

    clock.now += 3600
    client.set_registered_model_alias(name, "champion", "2")
    second = import_from_mlflow(local_registry, name, tracking_uri=tracking_uri, imported_by="ben")
    assert second.imported == {}
    assert second.already_imported == {1: 1, 2: 2}
    assert [(m.alias, m.from_version, m.to_version) for m in second.alias_moves] == [
        ("champion", 1, 2)
    ]
    history = local_registry.history(name, "champion")
    assert [(m.from_version, m.to_version, m.moved_by) for m in history] == [
        (1, 2, "ben"),
        (None, 1, "ana"),
    ]
    assert all("MLflow" in move.reason and tracking_uri in move.reason for move in history)
    assert local_registry.alias_version(name, "champion", at=clock.now - 1800) == 1

    third = import_from_mlflow(local_registry, name, tracking_uri=tracking_uri, imported_by="ana")
    assert third.imported == {}
    assert third.alias_moves == []
    assert len(local_registry.versions(name)) == 2
    assert len(local_registry.history(name, "champion")) == 2

    # A new MLflow version is the only thing the next import brings.
    _log_sklearn(name, seed=3)
    fourth = import_from_mlflow(local_registry, name, tracking_uri=tracking_uri, imported_by="ana")
    assert fourth.imported == {3: 3}

    # Only some versions, under another name: an alias on a version left out is a note.
    client.set_registered_model_alias(name, "legacy", "1")
    partial = import_from_mlflow(
        local_registry,
        name,
        tracking_uri=tracking_uri,
        imported_by="ana",
        into="fraud-copy",
        versions=[2, 9],
    )
    assert partial.imported == {2: 1}
    assert local_registry.alias_version("fraud-copy", "champion") == 1
    assert local_registry.alias_version("fraud-copy", "challenger") == 1
    assert partial.notes == [
        f"MLflow model {name!r} has no version 9",
        "alias 'legacy': MLflow version 1 was not imported",
    ]


def test_a_pickled_model_needs_trust(local_registry: Registry, tracking_uri: str) -> None:
    name = _name("pickled")
    model, _ = _log_sklearn(name, seed=4, serialization_format="cloudpickle")

    with pytest.raises(ConfigError, match="trust") as raised:
        import_from_mlflow(local_registry, name, tracking_uri=tracking_uri, imported_by="ana")
    assert raised.value.key == "trust"
    assert "runs code" in str(raised.value)
    assert local_registry.versions(name) == []

    import_from_mlflow(
        local_registry, name, tracking_uri=tracking_uri, imported_by="ana", trust=True
    )
    record = local_registry.version(name, 1)
    assert (record.flavor, record.trusted) == ("pickle", True)
    frame, _ = _data(seed=8)
    assert local_registry.load(record).predict(frame) == [str(v) for v in model.predict(frame)]


class Doubler(mlflow.pyfunc.PythonModel):
    """A python_function-only model: no flavor watchkeeper loads natively."""

    def predict(self, context: Any, model_input: pd.DataFrame) -> pd.Series:
        return model_input["income"] * 2.0


def test_a_python_function_model_becomes_a_pyfunc_version(
    local_registry: Registry, tracking_uri: str
) -> None:
    name = _name("custom")
    mlflow.pyfunc.log_model(
        name="model",
        python_model=Doubler(),
        registered_model_name=name,
        pip_requirements=["pandas"],
    )

    import_from_mlflow(
        local_registry, name, tracking_uri=tracking_uri, imported_by="ana", trust=True
    )
    record = local_registry.version(name, 1)
    assert record.flavor == "pyfunc"
    assert record.trusted
    frame, _ = _data(seed=9)
    assert local_registry.load(record).predict(frame) == pytest.approx(list(frame["income"] * 2.0))


def test_mirror_registers_versions_and_follows_alias_moves(
    local_registry: Registry, client: MlflowClient, tracking_uri: str, tmp_path: Path
) -> None:
    name = _name("mirrored")
    frame, target = _data(seed=5)
    models = [LogisticRegression(C=c).fit(frame, target) for c in (1.0, 0.01)]
    for c, model in zip((1.0, 0.01), models, strict=True):
        local_registry.register(
            name,
            model,
            params={"C": c},
            metrics={"auc": 0.9},
            tags={"team": "risk"},
            description=f"C={c}",
            registered_by="ana",
        )
    local_registry.set_alias(name, "champion", 1, moved_by="ana", reason="first")
    local_registry.set_alias(name, "shadow", 2, moved_by="ana", reason="try")

    report = mirror_to_mlflow(local_registry, name, tracking_uri=tracking_uri)
    assert report.registered == {1: 1, 2: 2}
    assert report.aliases_set == {"champion": 1, "shadow": 2}
    version = client.get_model_version(name, "2")
    assert version.description == "C=0.01"
    assert version.tags["watchkeeper.version"] == "2"
    assert version.tags["team"] == "risk"
    assert client.get_run(version.run_id).data.params == {"C": "0.01"}
    served = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert list(served.predict(frame)) == list(models[0].predict(frame))

    client.set_registered_model_alias(name, "theirs", "1")
    local_registry.set_alias(name, "champion", 2, moved_by="ben", reason="better")
    local_registry.remove_alias(name, "shadow", moved_by="ben", reason="done")
    again = mirror_to_mlflow(local_registry, name, tracking_uri=tracking_uri)
    assert again.registered == {}
    assert again.already_there == {1: 1, 2: 2}
    assert again.aliases_set == {"champion": 2}
    assert again.aliases_deleted == ["shadow"]
    assert client.get_registered_model(name).aliases == {"champion": "2", "theirs": "1"}
    quiet = mirror_to_mlflow(local_registry, name, tracking_uri=tracking_uri)
    assert (quiet.registered, quiet.aliases_set, quiet.aliases_deleted) == ({}, {}, [])

    # The mirror imports back as the very same artifacts.
    with Store.open(f"sqlite:///{tmp_path / 'other.db'}") as store:
        other = Registry(store, ArtifactStore(tmp_path / "other-artifacts"))
        import_from_mlflow(other, name, tracking_uri=tracking_uri, imported_by="cy")
        assert [v.artifact_sha256 for v in other.versions(name)] == [
            v.artifact_sha256 for v in local_registry.versions(name)
        ]
        assert other.alias_version(name, "champion") == 2
    # Importing a mirror into the registry it came from duplicates nothing.
    back = import_from_mlflow(local_registry, name, tracking_uri=tracking_uri, imported_by="cy")
    assert back.imported == {}
    assert back.already_imported == {1: 1, 2: 2}


def test_errors_name_the_problem(
    local_registry: Registry, client: MlflowClient, tracking_uri: str, tmp_path: Path
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(MlflowAdapterError, match="cannot reach the MLflow tracking server"):
        import_from_mlflow(local_registry, "churn", tracking_uri=nowhere, imported_by="ana")
    assert time.monotonic() - started < 10
    with pytest.raises(MlflowAdapterError, match=nowhere):
        mirror_to_mlflow(local_registry, "churn", tracking_uri=nowhere)

    with pytest.raises(NotFoundError, match="no registered model 'absent'"):
        import_from_mlflow(local_registry, "absent", tracking_uri=tracking_uri, imported_by="a")

    name = _name("exotic")
    directory = tmp_path / "exotic"
    directory.mkdir()
    (directory / "weights.bin").write_bytes(b"\x00")
    (directory / "MLmodel").write_text(yaml.safe_dump({"flavors": {"exotic_lib": {}}}))
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(directory), "model")
    client.create_registered_model(name)
    client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    with pytest.raises(ConfigError, match="exotic_lib") as raised:
        import_from_mlflow(local_registry, name, tracking_uri=tracking_uri, imported_by="ana")
    assert raised.value.key == "flavor"
    assert f"MLflow {name}/1" in str(raised.value)


def _native_models(frame: pd.DataFrame, target: pd.Series) -> dict[str, Any]:
    """(log the model to MLflow, its positive-class probabilities) for each native flavor."""
    import lightgbm
    import xgboost
    from skl2onnx import to_onnx

    booster = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(frame, target)
    lgb = lightgbm.train({"objective": "binary", "verbose": -1}, lightgbm.Dataset(frame, target), 5)
    onnx_model = to_onnx(
        LogisticRegression().fit(frame, target),
        frame.to_numpy(dtype=np.float32)[:1],
        options={"zipmap": False},
    )
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_model.SerializeToString())
    return {
        "xgboost": (
            lambda name: mlflow.xgboost.log_model(
                booster, name="model", registered_model_name=name, pip_requirements=[]
            ),
            booster.predict_proba(frame)[:, 1],
        ),
        "lightgbm": (
            lambda name: mlflow.lightgbm.log_model(
                lgb, name="model", registered_model_name=name, pip_requirements=[]
            ),
            lgb.predict(frame),
        ),
        "onnx": (
            lambda name: mlflow.onnx.log_model(
                onnx_model, name="model", registered_model_name=name, pip_requirements=[]
            ),
            session.run(None, {"X": frame.to_numpy(dtype=np.float32)})[1][:, 1],
        ),
    }


@pytest.mark.parametrize("flavor", ["xgboost", "lightgbm", "onnx"])
def test_native_flavors_import_as_ours(
    local_registry: Registry, tracking_uri: str, flavor: str
) -> None:
    frame, target = _data(seed=6)
    log, expected = _native_models(frame, target)[flavor]
    name = _name(flavor)
    with mlflow.start_run():
        log(name)

    import_from_mlflow(local_registry, name, tracking_uri=tracking_uri, imported_by="ana")
    record = local_registry.version(name, 1)
    assert record.flavor == flavor
    assert record.tags["watchkeeper.mlflow.flavor"] == flavor
    _, matrix = local_registry.load(record).predict_proba(frame)
    np.testing.assert_allclose(matrix[:, 1], expected, rtol=1e-5, atol=1e-6)

    # Mirrored back, MLflow's own loader serves it (the native flavor is written with it).
    mirror = f"{name}-mirror"
    mirror_to_mlflow(local_registry, name, tracking_uri=tracking_uri, into=mirror)
    uri = f"models:/{mirror}/1"
    if flavor == "onnx":  # MLflow's pyfunc wrapper cannot frame a 2-D output: its native loader
        stored = local_registry.artifacts.get(record.artifact_sha256)
        assert mlflow.onnx.load_model(uri).SerializeToString() == stored
        return
    served = mlflow.pyfunc.load_model(uri).predict(frame)
    np.testing.assert_allclose(np.asarray(served, dtype=float).ravel(), expected, rtol=1e-5)


def test_the_cli_imports_and_mirrors(tmp_path: Path, tracking_uri: str) -> None:
    from typer.testing import CliRunner

    from watchkeeper.cli.main import app

    name = _name("cli")
    _log_sklearn(name, seed=1)
    MlflowClient(tracking_uri).set_registered_model_alias(name, "champion", "1")
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    common = ["--tracking-uri", tracking_uri, "--db", db]

    first = runner.invoke(app, ["models", "mlflow", "import", name, *common, "--by", "ana"])
    assert first.exit_code == 0, first.output
    assert f"imported MLflow {name}/1 as {name}/1" in first.stdout
    assert f"{name}@champion -> version 1" in first.stdout
    again = runner.invoke(app, ["models", "mlflow", "import", name, *common])
    assert f"MLflow {name}/1 is already {name}/1" in again.stdout
    with Store.open(db) as store:
        # The artifacts sit beside the database file (the settings' artifact location).
        registry = Registry(store, ArtifactStore(tmp_path / "watchkeeper-artifacts"))
        assert registry.history(name, "champion")[0].moved_by == "ana"
        registry.load(f"{name}@champion")

    mirrored = runner.invoke(
        app, ["models", "mlflow", "mirror", name, *common, "--into", f"{name}-copy"]
    )
    assert mirrored.exit_code == 0, mirrored.output
    assert f"registered {name}/1 as MLflow {name}-copy/1" in mirrored.stdout
    assert MlflowClient(tracking_uri).get_registered_model(f"{name}-copy").aliases == {
        "champion": "1"
    }

    absent = runner.invoke(app, ["models", "mlflow", "import", "absent", *common])
    assert absent.exit_code == 1
    assert "no registered model 'absent'" in absent.stderr
    nowhere = ["--tracking-uri", f"http://127.0.0.1:{free_port()}", "--db", db]
    unreachable = runner.invoke(app, ["models", "mlflow", "mirror", name, *nowhere])
    assert unreachable.exit_code == 1
    assert "cannot reach the MLflow tracking server" in unreachable.stderr
    pickled = _name("cli-pickled")
    _log_sklearn(pickled, seed=2, serialization_format="cloudpickle")
    refused = runner.invoke(app, ["models", "mlflow", "import", pickled, *common])
    assert refused.exit_code == 2
    assert "--trust" in refused.stderr
