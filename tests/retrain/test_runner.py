"""The runner's decisions on a real store and alerting engine, with scripted executors: retries
with backoff, the failure alert, schedules, consecutive detections, the artifact hand-back and
restart recovery. (The pipeline itself runs in tests/retrain/test_service.py.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.store.backends import open_store
from watchkeeper.alerts.engine import AlertingEngine
from watchkeeper.alerts.model import AlertState
from watchkeeper.alerts.transitions import AlertTransition
from watchkeeper.errors import ConfigError, ConflictError
from watchkeeper.registry import ArtifactStore, Registry
from watchkeeper.retrain import Handoff, JobResult, RetrainJob
from watchkeeper.retrain.alerting import EngineFailureAlerts
from watchkeeper.retrain.runner import RetrainRunner
from watchkeeper.store import Store

T0 = 1_700_000_120.0  # 20 s past a 5-minute mark
CONFIG = {"name": "churn", "task": "classification", "features": {"x": "numeric"}}
RETRAIN = {"trainer": "tests.retrain.trainers:fit", "min_interval": "1h", "retry_backoff": "10s",
           "max_retries": 2}  # fmt: skip
# A webhook executor's options are checked with the config: it needs the orchestrator's URL.
WEBHOOK = {"kind": "webhook", "url": "http://orchestrator.test/jobs"}


@dataclass
class Scripted:
    """An executor answering each job with the next scripted result (synchronously)."""

    kind: str
    results: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[RetrainJob] = field(default_factory=list)
    handoff: Handoff = Handoff.RUNNING

    def submit(self, job: RetrainJob, done: Any) -> Handoff:
        self.jobs.append(job)
        if self.handoff is Handoff.RUNNING:
            done(JobResult(job.run_id, job.attempt, **self.results.pop(0)))
        return self.handoff

    def close(self) -> None:
        pass


class Clock:
    """The runner's clock; ``root`` is where the test keeps its artifact store."""

    def __init__(self, root: Path) -> None:
        self.now = T0
        self.root = root

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite-file", "postgresql"])
def setup(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Store, AlertingEngine, Clock]]:
    clock = Clock(tmp_path)
    with open_store(str(request.param), tmp_path) as store:
        engine = AlertingEngine(db=store.engine, clock=clock)
        try:
            yield store, engine, clock
        finally:
            engine.close()


def _runner(
    store: Store, engine: AlertingEngine, clock: Clock, *executors: Scripted, **retrain: Any
) -> RetrainRunner:
    store.create_model("churn", {**CONFIG, "retrain": {**RETRAIN, **retrain}})
    return RetrainRunner(
        store=store,
        registry=Registry(store, ArtifactStore(clock.root / "artifacts")),
        executors={executor.kind: executor for executor in executors},
        alerts=EngineFailureAlerts(engine, samples=list),
        clock=clock,
    )


def _outcome(status: str, reason: str, **more: Any) -> dict[str, Any]:
    return {"outcome": {"status": status, "reason": reason, "champion_version": 1, **more}}


def test_an_erroring_run_is_retried_with_backoff_then_fails_and_alerts(
    setup: tuple[Store, AlertingEngine, Clock],
) -> None:
    store, engine, clock = setup
    oom = _outcome("failed", "training: RuntimeError: out of memory")
    local = Scripted("local", [{"error": "worker: BrokenProcessPool"}, oom, oom])
    runner = _runner(store, engine, clock, local)
    run = runner.request("churn", {"kind": "manual"}, by="ana")
    assert (run.status, run.attempts, run.next_attempt_at) == ("queued", 1, T0 + 10)
    assert run.error == "worker: BrokenProcessPool"
    runner.tick()  # not due yet
    assert len(local.jobs) == 1
    clock.now = T0 + 10
    runner.tick()
    run = store.retrain_run(run.id)
    assert (run.status, run.attempts, run.next_attempt_at) == ("queued", 2, T0 + 30)  # 2 x 10 s
    clock.now = T0 + 30
    runner.tick()
    run = store.retrain_run(run.id)
    assert (run.status, run.attempts, run.finished_at) == ("failed", 3, T0 + 30)
    assert run.error == "training: RuntimeError: out of memory"
    assert [job.attempt for job in local.jobs] == [1, 2, 3]
    assert len({job.as_of for job in local.jobs}) == 1  # the same data at every attempt
    [alert] = [a for a in engine.alerts() if a.rule == "RetrainFailed"]
    assert alert.state is AlertState.FIRING
    assert alert.labels["run"] == str(run.id)
    assert "out of memory" in alert.labels["reason"]
    # The next run of the model that does not fail resolves it.
    clock.now = T0 + 3600
    local.results.append(_outcome("rejected", "accuracy 0.70 vs champion 0.71"))
    assert runner.request("churn", {"kind": "manual"}).status == "rejected"
    [alert] = [a for a in engine.alerts() if a.rule == "RetrainFailed"]
    assert alert.state is AlertState.RESOLVED


def test_a_data_check_failure_is_not_retried(setup: tuple[Store, AlertingEngine, Clock]) -> None:
    store, engine, clock = setup
    local = Scripted("local", [_outcome("failed", "data: retrain.min_rows: 12 labelled events")])
    runner = _runner(store, engine, clock, local)
    run = runner.request("churn", {"kind": "manual"})
    assert (run.status, run.attempts) == ("failed", 1)
    assert "min_rows" in run.reason


def test_a_job_carries_the_runners_clock_to_the_worker(
    setup: tuple[Store, AlertingEngine, Clock],
) -> None:
    store, engine, clock = setup
    local = Scripted("local", [_outcome("rejected", "accuracy 0.70 vs champion 0.71")])
    runner = _runner(store, engine, clock, local)
    runner.request("churn", {"kind": "manual"})
    # The runner's clock is years behind the wall clock: the worker registers on the runner's.
    [job] = local.jobs
    assert abs(job.clock_offset - (T0 - time.time())) < 60


def test_a_cron_schedule_starts_one_run_per_slot(
    setup: tuple[Store, AlertingEngine, Clock],
) -> None:
    store, engine, clock = setup
    local = Scripted("local", [_outcome("rejected", "no better")] * 3)
    runner = _runner(store, engine, clock, local, schedule="*/5 * * * *", min_interval=0)
    runner.tick()  # the slot before the runner started is not caught up on
    assert store.retrain_runs() == []
    clock.now = T0 + 290  # past the next 5-minute mark
    runner.tick()
    runner.tick()
    [run] = store.retrain_runs()
    assert run.trigger == {"kind": "schedule", "schedule": "*/5 * * * *", "slot": T0 + 280}
    clock.now = T0 + 600
    runner.tick()
    assert [r.trigger["slot"] for r in store.retrain_runs()] == [T0 + 280, T0 + 580]


def _firing(value: float) -> AlertTransition:
    labels = {"model": "churn", "version": "1", "signal": "accuracy"}
    return AlertTransition("fp1", "Decay", labels, AlertState.PENDING, AlertState.FIRING, T0, value)


def test_after_n_consecutive_detections_and_one_run_at_a_time(
    setup: tuple[Store, AlertingEngine, Clock],
) -> None:
    store, engine, clock = setup
    webhook = Scripted("webhook", handoff=Handoff.AWAITING_ARTIFACT)
    runner = _runner(store, engine, clock, webhook, after_detections=2, executor=WEBHOOK)
    runner.on_alert(_firing(0.61))
    assert store.retrain_runs() == []
    runner.on_alert(_firing(0.58))
    [run] = store.retrain_runs()
    assert run.trigger["rule"] == "Decay"
    assert (run.trigger["value"], run.trigger["fingerprint"], run.trigger["detections"]) == (
        0.58, "fp1", 2)  # fmt: skip
    assert run.status == "awaiting_artifact"
    assert webhook.jobs[0].to_dict()["artifact_url"] == f"/v1/retrain/runs/{run.id}/artifact"
    runner.on_alert(_firing(0.5))
    runner.on_alert(_firing(0.5))
    assert len(store.retrain_runs()) == 1  # the run is active: no second one
    with pytest.raises(ConflictError, match="already has retraining run"):
        runner.request("churn", {"kind": "manual"})


def test_an_artifact_posted_back_is_gated_by_the_local_executor(
    setup: tuple[Store, AlertingEngine, Clock],
) -> None:
    store, engine, clock = setup
    webhook = Scripted("webhook", handoff=Handoff.AWAITING_ARTIFACT)
    local = Scripted("local", [_outcome("rejected", "accuracy 0.70 vs champion 0.71")])
    runner = _runner(store, engine, clock, webhook, local, executor=WEBHOOK)
    run = runner.request("churn", {"kind": "manual"})
    assert run.status == "awaiting_artifact"
    done = runner.receive_artifact(run.id, b"model bytes", flavor="sklearn", trusted=False, by="a")
    assert done.status == "rejected"
    assert done.artifact is not None
    assert done.artifact["flavor"] == "sklearn"
    [job] = local.jobs
    assert job.artifact == done.artifact
    assert done.attempts == 2
    with pytest.raises(ConflictError, match="is rejected"):
        runner.receive_artifact(run.id, b"again", flavor="sklearn", trusted=False, by="a")


def test_recovery_requeues_an_interrupted_run_once(
    setup: tuple[Store, AlertingEngine, Clock],
) -> None:
    store, engine, clock = setup
    webhook = Scripted("webhook", handoff=Handoff.AWAITING_ARTIFACT)
    _runner(store, engine, clock, webhook, executor=WEBHOOK)
    fields = {"model": "churn", "status": "running", "trigger": {"kind": "manual"},
              "mode": "automatic", "executor": "local", "as_of": T0, "max_attempts": 3,
              "attempts": 1}  # fmt: skip
    run = store.create_retrain_run(fields, now=T0)
    restarted = RetrainRunner(store=store, registry=None, executors={}, clock=clock)  # type: ignore[arg-type]
    [requeued] = restarted.recover()
    assert (requeued.status, requeued.interruptions, requeued.attempts) == ("queued", 1, 0)
    assert "interrupted at attempt 1 by a restart" in requeued.log
    store.update_retrain_run(requeued, {"status": "running", "attempts": 1})
    [final] = restarted.recover()
    assert (final.status, final.interruptions) == ("interrupted", 2)
    assert final.finished_at == T0
    assert store.retrain_runs(statuses=["running", "queued"]) == []
    assert run.id == final.id


def test_a_model_without_a_retrain_section_is_refused(
    setup: tuple[Store, AlertingEngine, Clock],
) -> None:
    store, _, clock = setup
    store.create_model("plain", CONFIG | {"name": "plain"})
    runner = RetrainRunner(store=store, registry=None, executors={}, clock=clock)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="no retrain section") as caught:
        runner.request("plain", {"kind": "manual"})
    assert caught.value.key == "retrain"
