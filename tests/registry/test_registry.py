"""Versions, aliases with their history, rollback and references, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.linear_model import LogisticRegression

from tests.registry.conftest import Clock
from watchkeeper.errors import ConfigError, NotFoundError
from watchkeeper.profiles import DatasetProfile
from watchkeeper.registry import ArtifactIntegrityError, Registry
from watchkeeper.registry.registry import parse_reference, version_dict


def training(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"age": rng.normal(40, 10, 300), "income": rng.normal(50, 15, 300)})
    target = (frame["age"] + rng.normal(0, 5, 300) > 40).astype(int).to_numpy()
    return frame, target


def fitted(seed: int = 0) -> LogisticRegression:
    frame, target = training(seed)
    return LogisticRegression().fit(frame, target)


def test_versions_are_numbered_per_model_with_their_metadata(registry: Registry) -> None:
    frame, _ = training()
    first = registry.register(
        "churn",
        fitted(0),
        description="baseline",
        params={"C": 1.0},
        metrics={"auc": 0.91},
        tags={"team": "risk"},
        reference=frame,
        code_revision="abc123",
        registered_by="ana",
    )
    second = registry.register("churn", fitted(1), registered_by="ben")
    other = registry.register("fraud", fitted(2), registered_by="ana")
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert first.flavor == "sklearn"
    assert len(first.artifact_sha256) == 64
    assert first.signature["features"] == {"age": "numeric", "income": "numeric"}
    # Without reference data, the names the model carries itself.
    assert second.signature["features"] == {"age": "numeric", "income": "numeric"}
    stored = registry.version("churn", 1)
    assert stored == first
    assert stored.reference_profile is not None
    assert DatasetProfile.from_bytes(stored.reference_profile).rows == 300
    view = version_dict(stored, ["champion"])
    assert view["metrics"] == {"auc": 0.91}
    assert view["registered_by"] == "ana"
    assert view["code_revision"] == "abc123"
    assert [v.version for v in registry.versions("churn")] == [1, 2]
    assert registry.resolve("churn").version == 2
    with pytest.raises(
        NotFoundError, match=r"model 'churn' has no version 7; its versions are 1–2"
    ):
        registry.version("churn", 7)


def test_a_loaded_version_predicts_like_the_model(registry: Registry) -> None:
    model = fitted()
    registry.register("churn", model, registered_by="ana")
    frame, _ = training(5)
    loaded = registry.load("churn/1")
    assert loaded is registry.load("churn/1")  # cached
    assert loaded.predict(frame) == [str(value) for value in model.predict(frame)]
    classes, matrix = loaded.predict_proba(frame)
    assert classes == ["0", "1"]
    np.testing.assert_allclose(matrix, model.predict_proba(frame))
    with pytest.raises(Exception, match="features: missing 'income'"):
        loaded.predict(frame[["age"]])


def test_alias_history_answers_what_served_when_and_rollback_undoes(
    registry: Registry, clock: Clock
) -> None:
    for seed in range(3):
        registry.register("churn", fitted(seed), registered_by="ana")
    t0 = clock.now
    registry.set_alias("churn", "champion", 1, moved_by="ana", reason="first release")
    clock.now = t0 + 100
    registry.set_alias("churn", "champion", 2, moved_by="ben", reason="better AUC")
    assert registry.set_alias("churn", "champion", 2, moved_by="ben") is None  # no move
    clock.now = t0 + 200
    registry.set_alias("churn", "champion", 3, moved_by="ben", reason="retrained")
    clock.now = t0 + 300
    back = registry.rollback("churn", "champion", moved_by="oncall")
    assert (back.from_version, back.to_version) == (3, 2)
    assert back.reason == "rollback from version 3"
    assert registry.alias_version("churn", "champion") == 2
    assert registry.resolve("churn@champion").version == 2
    # What served when: before the first move nothing, then 1, 2, 3, and 2 again.
    with pytest.raises(NotFoundError, match="points to no version"):
        registry.alias_version("churn", "champion", at=t0 - 1)
    assert [
        registry.alias_version("churn", "champion", at=t0 + dt) for dt in (0, 150, 250, 300)
    ] == [
        1,
        2,
        3,
        2,
    ]
    assert registry.resolve("churn@champion", at=t0 + 250).version == 3
    history = registry.history("churn", "champion")
    assert [(m.from_version, m.to_version, m.moved_by) for m in history] == [
        (3, 2, "oncall"),
        (2, 3, "ben"),
        (1, 2, "ben"),
        (None, 1, "ana"),
    ]
    assert [m.reason for m in history][1:] == ["retrained", "better AUC", "first release"]
    # A second rollback undoes the first, like kubectl rollout undo.
    assert registry.rollback("churn", moved_by="oncall").to_version == 3
    registry.remove_alias("churn", "champion", moved_by="ana", reason="retired")
    assert registry.aliases("churn") == []
    assert registry.history("churn", "champion")[0].to_version is None


def test_alias_errors_name_the_problem(registry: Registry) -> None:
    registry.register("churn", fitted(), registered_by="ana")
    with pytest.raises(NotFoundError, match="has no version 4; its versions are 1–1"):
        registry.set_alias("churn", "champion", 4, moved_by="ana")
    with pytest.raises(ConfigError, match="alias: '3rd' is not a valid alias"):
        registry.set_alias("churn", "3rd", 1, moved_by="ana")
    with pytest.raises(NotFoundError, match="never been set"):
        registry.rollback("churn", "champion", moved_by="ana")
    registry.set_alias("churn", "champion", 1, moved_by="ana")
    with pytest.raises(ConfigError, match="pointed nowhere before version 1"):
        registry.rollback("churn", "champion", moved_by="ana")
    with pytest.raises(NotFoundError, match="has no registered versions"):
        registry.resolve("fraud")
    assert registry.aliases("churn")[0].version == 1


def test_concurrent_registrations_get_distinct_numbers(registry: Registry, tmp_path: Path) -> None:
    path = tmp_path / "model.skops"
    skops.io.dump(fitted(), path)
    numbers: list[int] = []

    def register() -> None:
        numbers.append(registry.register("churn", path, registered_by="ci").version)

    threads = [threading.Thread(target=register) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(numbers) == [1, 2, 3, 4, 5, 6]
    # The same bytes are stored once.
    assert len({v.artifact_sha256 for v in registry.versions("churn")}) == 1


def test_an_artifact_that_changed_refuses_to_load(registry: Registry, tmp_path: Path) -> None:
    record = registry.register("churn", fitted(), registered_by="ana")
    blob = tmp_path / "artifacts" / "sha256" / record.artifact_sha256[:2] / record.artifact_sha256
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match="has changed since it was registered"):
        registry.load("churn/1")


def test_references_parse_or_name_the_bad_part() -> None:
    assert str(parse_reference("churn@champion")) == "churn@champion"
    assert parse_reference("churn/3").version == 3
    assert parse_reference("churn").alias is None
    with pytest.raises(ConfigError, match="version: 'x' in 'churn/x' is not a version number"):
        parse_reference("churn/x")
    with pytest.raises(ConfigError, match="model: 'bad name' is not a valid model name"):
        parse_reference("bad name@champion")
