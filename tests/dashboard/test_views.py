"""The overview's content from a real store: health, traffic, champion and rollout in progress."""

from __future__ import annotations

from pathlib import Path

from watchkeeper.alerts.engine import AlertingEngine
from watchkeeper.config import Settings
from watchkeeper.dashboard import views
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor.service import MonitorService
from watchkeeper.registry import ArtifactStore, Registry
from watchkeeper.store import Store
from watchkeeper.store.rollouts import NewRolloutEvent

NOW = 1_700_000_000.0


def test_the_overview_shows_the_champion_and_the_rollout_in_progress(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wk.db'}"
    with Store.open(url) as store:
        service = MonitorService(store, settings=Settings(db=url), clock=lambda: NOW)
        alerting = AlertingEngine(db=store.engine, clock=lambda: NOW)
        registry = Registry(store, ArtifactStore(tmp_path / "artifacts"))
        try:
            for name in ("churn", "prices"):
                service.register_model(
                    ModelSpec.from_dict(
                        {"name": name, "task": "regression", "features": {"x": "numeric"}}
                    )
                )
            registry.store.create_rollout(
                {
                    "model": "churn",
                    "baseline": "1",
                    "candidate": "2",
                    "spec": {},
                    "state": "progressing",
                    "step_index": 1,
                    "step_started_at": NOW,
                    "analysis_since": NOW,
                    "looks": 0,
                    "next_analysis_at": None,
                    "weights": {"1": 95, "2": 5},
                    "failures": 0,
                    "reason": "",
                    "created_by": "ana",
                },
                NewRolloutEvent(NOW, "started", "version 2 against 1", {}),
                now=NOW,
            )
            page = views.overview(service, alerting, registry, now=NOW)
        finally:
            alerting.close()
            service.close()
    rows = {row["name"]: row for row in page["models"]}
    assert rows["churn"]["rollout"] == {
        "id": 1,
        "state": "progressing",
        "candidate": "2",
        "baseline": "1",
        "weights": {"1": 95, "2": 5},
    }
    assert rows["prices"]["rollout"] is None
    assert rows["churn"]["health"] == "ok"
    assert rows["churn"]["events_24h"] == 0
