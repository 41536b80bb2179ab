"""The Serving facade in-process: the Python routing API the rollout controller calls, the
champion default, logging, and a version cached once loaded."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from tests.store.backends import backend_url
from watchkeeper.config import Settings
from watchkeeper.errors import ConfigError, ConflictError, NotFoundError
from watchkeeper.monitor import MonitorService
from watchkeeper.registry import ArtifactStore, Registry
from watchkeeper.serving import PredictionLog, PredictRequest, Serving
from watchkeeper.store import Store


@pytest.fixture(params=["sqlite-file", "postgresql"])
def serving(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Serving]:
    with backend_url(request.param, tmp_path) as url, Store.open(url) as store:
        registry = Registry(store, ArtifactStore(tmp_path / "artifacts"))
        frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
        for flip in (False, True):
            labels = [0, 0, 1, 1] if not flip else [1, 1, 0, 0]
            registry.register("churn", LogisticRegression().fit(frame, labels), registered_by="t")
        monitor = MonitorService(store, settings=Settings())
        monitor.start()
        served = Serving(registry=registry, monitor=monitor, log=PredictionLog(monitor))
        yield served
        served.close()
        monitor.close()


def test_the_champion_serves_and_its_predictions_are_logged(serving: Serving) -> None:
    rows = PredictRequest.from_rows([{"x": 3.0}, {"x": 0.0}], ["u1", None])
    with pytest.raises(ConflictError, match="churn@champion points to no version"):
        serving.predict("churn", rows)
    serving.registry.set_alias("churn", "champion", 1, moved_by="t")
    serving.cache.forget("churn")
    answers = serving.predict("churn", rows)
    assert [(a.version, a.arm, a.prediction) for a in answers] == [
        (1, "champion", "1"),
        (1, "champion", "0"),
    ]
    assert answers[0].proba is not None
    assert sum(answers[0].proba.values()) == pytest.approx(1.0)
    assert serving.log.flush()
    # Not monitored before: registered from the version's signature at the first prediction.
    spec = serving.monitor.get_model("churn")
    assert (spec.task.value, dict(spec.features)) == ("classification", {"x": "numeric"})
    store = serving.registry.store
    stored = store.events_by_ids(store.get_model("churn").id, [a.id for a in answers])
    assert {(e.version, e.arm, e.unit, e.prediction) for e in stored.values()} == {
        ("1", "champion", "u1", "1"),
        ("1", "champion", None, "0"),
    }
    with pytest.raises(NotFoundError):
        serving.predict("nobody", rows)


def test_set_weights_is_the_rollout_controllers_call(serving: Serving) -> None:
    serving.registry.set_alias("churn", "champion", 1, moved_by="t")
    with pytest.raises(NotFoundError, match="no routing config"):
        serving.set_weights("churn", {"champion": 1}, changed_by="rollout")
    serving.set_routing(
        "churn",
        {
            "arms": [
                {"name": "baseline", "version": 1},
                {"name": "canary", "version": 2, "weight": 0},
            ]
        },
        changed_by="rollout",
        reason="start",
    )
    rows = PredictRequest.from_rows([{"x": 3.0}] * 50, [f"u{i}" for i in range(50)])
    assert {a.arm for a in serving.predict("churn", rows)} == {"baseline"}
    change = serving.set_weights(
        "churn", {"baseline": 0, "canary": 100}, changed_by="rollout", reason="step 2"
    )
    assert change.revision == 2
    assert {(a.arm, a.version) for a in serving.predict("churn", rows)} == {("canary", 2)}
    with pytest.raises(ConfigError, match="no arm 'ghost'"):
        serving.set_weights("churn", {"ghost": 1}, changed_by="rollout")
    with pytest.raises(ConflictError, match="revision 2, not 1"):
        serving.set_routing("churn", None, changed_by="x", expected_revision=1)
    history = serving.routing_history("churn")
    assert [(c.revision, c.reason) for c in history] == [(2, "step 2"), (1, "start")]
    assert serving.registry.store.routing_at("churn", history[-1].changed_at) == history[-1]


def test_concurrent_weight_changes_lose_no_update(serving: Serving) -> None:
    arms = [{"name": f"arm{i}", "version": 1, "weight": 1} for i in range(6)]
    serving.set_routing("churn", {"arms": arms}, changed_by="t")

    def change(index: int) -> None:
        serving.set_weights("churn", {f"arm{index}": 10 + index}, changed_by=f"w{index}")

    threads = [threading.Thread(target=change, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    record = serving.routing("churn")
    assert record is not None
    assert record.revision == 7
    assert [arm["weight"] for arm in record.config["arms"]] == [10, 11, 12, 13, 14, 15]


def test_a_pickle_no_longer_trusted_refuses_to_load(serving: Serving, tmp_path: Path) -> None:
    import joblib
    import sqlalchemy as sa

    from watchkeeper.store import tables

    path = tmp_path / "model.joblib"
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    joblib.dump(LogisticRegression().fit(frame, [0, 0, 1, 1]), path)
    record = serving.registry.register("pickled", path, trust=True, registered_by="t")
    serving.registry.set_alias("pickled", "champion", record.version, moved_by="t")
    with serving.registry.store.engine.begin() as connection:
        connection.execute(
            sa.update(tables.registry_versions)
            .where(tables.registry_versions.c.model == "pickled")
            .values(trusted=False)
        )
    with pytest.raises(ConflictError, match="refuses to load: trust: a pickle or joblib file"):
        serving.predict("pickled", PredictRequest.from_rows([{"x": 1.0}]))
