"""The local executor: a spawned worker process runs the job and reports through ``done``."""

from __future__ import annotations

import threading
from pathlib import Path

from watchkeeper.retrain import Handoff, JobResult, LocalProcessExecutor, RetrainJob
from watchkeeper.retrain.config import RetrainConfig
from watchkeeper.store import Store


def test_a_job_that_cannot_run_reports_its_error_from_the_worker(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wk.db'}"
    Store.open(url).close()
    config = RetrainConfig.from_dict({"trainer": "tests.retrain.trainers:fit"}).to_dict()
    job = RetrainJob(7, "nobody", 1, 1_700_000_000.0, {"kind": "manual"}, config)
    results: list[JobResult] = []
    finished = threading.Event()

    def done(result: JobResult) -> None:
        results.append(result)
        finished.set()

    executor = LocalProcessExecutor(url, str(tmp_path / "artifacts"))
    try:
        assert executor.submit(job, done) is Handoff.RUNNING
        assert finished.wait(60)
    finally:
        executor.close()
    [result] = results
    assert (result.run_id, result.attempt, result.outcome) == (7, 1, None)
    assert "NotFoundError" in result.error
    assert "nobody" in result.error
    assert "Traceback" in result.log
    assert job.to_dict()["artifact_url"] == "/v1/retrain/runs/7/artifact"
    assert job.end - job.start == config["lookback"] - config["label_delay"]
