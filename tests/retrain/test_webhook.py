"""The webhook executor against a real local HTTP endpoint acting as the orchestrator."""

from __future__ import annotations

import importlib
import json
import pickle
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from tests.server.conftest import ADMIN_TOKEN, ServerProcess
from watchkeeper.config import Settings
from watchkeeper.demo import load_rainfall
from watchkeeper.errors import ConfigError, InputError
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor.service import MonitorService
from watchkeeper.retrain.config import RetrainConfig
from watchkeeper.retrain.executor import Handoff, JobResult
from watchkeeper.retrain.runs import RetrainJob, RetrainRunRecord
from watchkeeper.retrain.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookError,
    WebhookExecutor,
    WebhookOptions,
    sign,
    verify,
)
from watchkeeper.store import Store

SECRET = "s3cret-shared-with-the-orchestrator"
T0 = 1_700_000_000.0
STEP = 30.0
AS_OF = T0 + 7000 * STEP
FEATURES = ["temperature", "dew_point", "sea_level_pressure", "visibility"]
OK = {"url": "http://x", "secret_env": "S"}


@dataclass
class Orchestrator:
    """A threaded HTTP server that checks each job's signature like a real orchestrator would;
    ``answers`` are the statuses of its next answers (then 202), ``on_job`` sees accepted jobs."""

    url: str = ""
    secret: bytes = SECRET.encode()
    answers: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    on_job: Callable[[dict[str, Any]], None] | None = None


@pytest.fixture
def orchestrator() -> Iterator[Orchestrator]:
    state = Orchestrator()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            timestamp = self.headers.get(TIMESTAMP_HEADER, "")
            signature = self.headers.get(SIGNATURE_HEADER, "")
            if not verify(state.secret, timestamp, body, signature):
                state.refused.append(self.headers.get("Idempotency-Key", ""))
                self._answer(401, {"error": "bad signature"})
                return
            if state.answers:
                self._answer(state.answers.pop(0), {"error": "busy"})
                return
            job = json.loads(body)
            job["idempotency_key"] = self.headers.get("Idempotency-Key")
            job["authorization"] = self.headers.get("Authorization")
            state.received.append(job)
            self._answer(202, {"accepted": True})
            if state.on_job is not None:
                threading.Thread(target=state.on_job, args=(job,), daemon=True).start()

        def _answer(self, status: int, document: dict[str, Any]) -> None:
            payload = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/retrain"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with the rainfall model's rows 6,000-6,999 served (one every 30 s) and labelled."""
    path = tmp_path_factory.mktemp("served") / "wk.db"
    url = f"sqlite:///{path}"
    store = Store.open(url)
    service = MonitorService(
        store, settings=Settings(db=url, max_event_age_seconds=30 * 86_400), clock=lambda: AS_OF
    )
    features = dict.fromkeys(FEATURES, "numeric")
    spec = {"name": "rainfall", "task": "classification", "prediction": "prediction"}
    service.register_model(ModelSpec.from_dict({**spec, "features": features}))
    rows = load_rainfall().iloc[6000:7000]
    events = [
        {"id": f"r{i}", "timestamp": T0 + i * STEP, "version": "1", "features": row,
         "prediction": "0"}
        for i, row in zip(rows.index, rows[FEATURES].to_dict("records"), strict=True)
    ]  # fmt: skip
    assert not service.ingest_events("rainfall", events).rejected
    labels = [{"id": f"r{i}", "label": str(y)} for i, y in rows["rain"].items()]
    service.ingest_labels("rainfall", labels)
    service.close()
    store.close()
    return path


@pytest.fixture
def store(served: Path, tmp_path: Path) -> Iterator[Store]:
    shutil.copy(served, tmp_path / "wk.db")
    opened = Store.open(f"sqlite:///{tmp_path / 'wk.db'}")
    yield opened
    opened.close()


def awaiting(store: Store) -> RetrainRunRecord:
    """A run handed over at its first attempt, as the runner leaves it."""
    fields = {"model": "rainfall", "status": "queued", "trigger": {"kind": "manual"},
              "mode": "automatic", "executor": "webhook", "as_of": AS_OF,
              "max_attempts": 3}  # fmt: skip
    run = store.create_retrain_run(fields)
    return store.update_retrain_run(run, {"status": "awaiting_artifact", "attempts": 1})


def job(url: str, run_id: int = 7, **executor: Any) -> RetrainJob:
    options = {"kind": "webhook", "url": url, "secret_env": "WK_SECRET", "backoff": 0.01,
               **executor}  # fmt: skip
    config = {"trainer": "watchkeeper.demo:train_rainfall", "lookback": 172_800.0,
              "label_delay": 3600.0, "min_rows": 200, "params": {"max_iter": 50},
              "executor": options}  # fmt: skip
    return RetrainJob(run_id, "rainfall", 1, AS_OF, {"kind": "manual"}, config)


def executor(store: Store) -> WebhookExecutor:
    sleeps: list[float] = []
    made = WebhookExecutor(
        callback_base="http://watchkeeper.test:8000/",
        store=store,
        secrets={"WK_SECRET": SECRET},
        sleep=sleeps.append,
    )
    made.sleeps = sleeps  # type: ignore[attr-defined]
    return made


def never_done(result: JobResult) -> None:
    raise AssertionError(f"done called: {result}")


def test_the_job_is_posted_signed_with_its_data_range_params_and_callback(
    orchestrator: Orchestrator, store: Store
) -> None:
    webhook = executor(store)
    before = time.time()
    assert webhook.submit(job(orchestrator.url), never_done) is Handoff.AWAITING_ARTIFACT
    webhook.close()
    (received,) = orchestrator.received
    assert received["run_id"] == 7
    assert received["model"] == "rainfall"
    assert received["start"] == AS_OF - 172_800.0
    assert received["end"] == AS_OF - 3600.0
    # Rows 6,000-6,879 are mature; the last 20 % of them (from row 6,704) are the holdout.
    assert received["train_before"] == T0 + 6704 * STEP
    assert (received["train_rows"], received["holdout_rows"]) == (704, 176)
    assert received["features"] == FEATURES
    assert received["label"] == "label"
    assert received["params"] == {"max_iter": 50}
    assert received["trainer"] == "watchkeeper.demo:train_rainfall"
    assert received["callback_url"] == "http://watchkeeper.test:8000/v1/retrain/runs/7/artifact"
    assert before + 6 * 3600 <= received["deadline"] <= time.time() + 6 * 3600
    assert received["idempotency_key"] == "watchkeeper-run-7-attempt-1"
    assert SECRET not in json.dumps(received)


def test_airflow_gets_the_job_as_a_dag_runs_conf_and_a_duplicate_counts_as_accepted(
    orchestrator: Orchestrator, store: Store
) -> None:
    orchestrator.answers = [409]  # an earlier POST of this attempt made the DAG run already
    webhook = WebhookExecutor(
        callback_base="http://wk:8000",
        store=store,
        secrets={"WK_SECRET": SECRET, "AIRFLOW_AUTH": "Basic d2s6cGFzcw=="},
    )
    options = {"format": "airflow", "authorization_env": "AIRFLOW_AUTH"}
    assert webhook.submit(job(orchestrator.url, **options), never_done) is Handoff.AWAITING_ARTIFACT
    assert orchestrator.received == []
    webhook.submit(job(orchestrator.url, **options), never_done)
    webhook.close()
    (received,) = orchestrator.received
    assert received["dag_run_id"] == "watchkeeper-run-7-attempt-1"
    assert received["logical_date"] is None
    assert received["conf"]["run_id"] == 7
    assert received["conf"]["callback_url"] == "http://wk:8000/v1/retrain/runs/7/artifact"
    assert received["authorization"] == "Basic d2s6cGFzcw=="


def test_a_run_without_enough_mature_data_is_not_handed_over(
    orchestrator: Orchestrator, store: Store
) -> None:
    webhook = executor(store)
    thin = job(orchestrator.url)
    thin = RetrainJob(7, "rainfall", 1, AS_OF, {}, {**thin.config, "min_rows": 5000})
    with pytest.raises(InputError, match=r"retrain\.min_rows: 880 labelled events"):
        webhook.submit(thin, never_done)
    webhook.close()
    assert orchestrator.received == orchestrator.refused == []


def test_busy_answers_are_retried_with_doubling_backoff(
    orchestrator: Orchestrator, store: Store
) -> None:
    orchestrator.answers = [503, 429]
    webhook = executor(store)
    assert (
        webhook.submit(job(orchestrator.url, backoff="2s"), never_done) is Handoff.AWAITING_ARTIFACT
    )
    webhook.close()
    assert len(orchestrator.received) == 1
    assert webhook.sleeps == [2.0, 4.0]  # type: ignore[attr-defined]


def test_an_endpoint_that_is_down_fails_the_handover_after_the_retries(store: Store) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    webhook = executor(store)
    with pytest.raises(WebhookError, match=r"3 attempt\(s\) failed; last: ConnectError"):
        webhook.submit(job(f"http://127.0.0.1:{port}/hooks", retries=3), never_done)
    webhook.close()
    assert webhook.sleeps == [0.01, 0.02]  # type: ignore[attr-defined]


def test_a_bad_signature_is_refused_and_not_retried(
    orchestrator: Orchestrator, store: Store
) -> None:
    orchestrator.secret = b"another secret"
    webhook = executor(store)
    with pytest.raises(WebhookError, match=r"1 attempt.*answered 401.*bad signature"):
        webhook.submit(job(orchestrator.url), never_done)
    webhook.close()
    assert orchestrator.refused == ["watchkeeper-run-7-attempt-1"]
    assert orchestrator.received == []
    assert webhook.sleeps == []  # type: ignore[attr-defined]


def test_a_missing_secret_fails_before_anything_is_sent(
    orchestrator: Orchestrator, store: Store
) -> None:
    webhook = WebhookExecutor(callback_base="http://wk:8000", store=store, secrets={})
    with pytest.raises(WebhookError, match=r"'WK_SECRET'.*is not set"):
        webhook.submit(job(orchestrator.url), never_done)
    assert orchestrator.received == orchestrator.refused == []


def test_a_run_still_waiting_at_its_deadline_is_reported_failed(
    orchestrator: Orchestrator, store: Store
) -> None:
    results: list[JobResult] = []
    arrived = threading.Event()

    def done(result: JobResult) -> None:
        results.append(result)
        arrived.set()

    webhook = executor(store)
    run = awaiting(store)
    webhook.submit(job(orchestrator.url, run.id, deadline=0.2), done)
    assert arrived.wait(5)
    assert results == [JobResult(run.id, 1, error=results[0].error)]
    assert "no artifact posted back within 0.2 s (retrain.executor.deadline)" in results[0].error
    # Claimed for the runner, which records the timeout as the attempt's failure.
    assert store.retrain_run(run.id).status == "running"
    # The artifact came back in time (the run moved on): nothing is reported at the deadline.
    results.clear()
    store.update_retrain_run(store.retrain_run(run.id), {"status": "queued"})
    webhook.submit(job(orchestrator.url, run.id, deadline=0.1), done)
    time.sleep(0.4)
    assert results == []
    assert store.retrain_run(run.id).status == "queued"
    # Closed (the server stops): the timers stop too; the run still waits.
    store.update_retrain_run(store.retrain_run(run.id), {"status": "failed"})
    second = awaiting(store)
    webhook.submit(job(orchestrator.url, second.id, deadline=0.1), done)
    webhook.close()
    time.sleep(0.3)
    assert results == []
    assert store.retrain_run(second.id).status == "awaiting_artifact"


def test_a_deadline_that_comes_before_the_runner_marks_the_run_looks_again(
    orchestrator: Orchestrator, store: Store
) -> None:
    results: list[JobResult] = []
    arrived = threading.Event()

    def done(result: JobResult) -> None:
        results.append(result)
        arrived.set()

    run = awaiting(store)
    store.update_retrain_run(run, {"status": "running"})  # handed over, not marked yet
    webhook = executor(store)
    webhook.submit(job(orchestrator.url, run.id, deadline=0.05), done)
    time.sleep(0.3)
    assert results == []
    store.update_retrain_run(store.retrain_run(run.id), {"status": "awaiting_artifact"})
    assert arrived.wait(5)
    webhook.close()
    assert "no artifact posted back within 0.05 s" in results[0].error


def test_after_a_restart_the_deadlines_of_handed_over_runs_are_armed_again(store: Store) -> None:
    results: list[JobResult] = []
    arrived = threading.Event()

    def done(result: JobResult) -> None:
        results.append(result)
        arrived.set()

    run = awaiting(store)
    # A new process, 6 hours (the default deadline) after the hand-over: it times out now.
    late = WebhookExecutor(
        callback_base="http://wk:8000", store=store, clock=lambda: run.updated_at + 6 * 3600
    )
    assert late.resume(done) == 1
    assert arrived.wait(5)
    late.close()
    assert results == [JobResult(run.id, 1, error=results[0].error)]
    assert "within 21600 s" in results[0].error
    assert store.retrain_run(run.id).status == "running"
    # One started an hour after the hand-over keeps waiting.
    results.clear()
    store.update_retrain_run(store.retrain_run(run.id), {"status": "awaiting_artifact"})
    early = WebhookExecutor(
        callback_base="http://wk:8000", store=store, clock=lambda: time.time() + 3600
    )
    assert early.resume(done) == 1
    time.sleep(0.3)
    early.close()
    assert results == []


@pytest.mark.parametrize(
    ("options", "key", "words"),
    [
        ({"secret_env": "S"}, "url", "orchestrator"),
        ({"url": "ftp://x", "secret_env": "S"}, "url", "orchestrator"),
        ({"url": "http://x", "secret_env": ""}, "secret_env", "environment variable"),
        ({**OK, "deadline": "soon"}, "deadline", "duration"),
        ({**OK, "deadline": 0}, "deadline", "positive"),
        ({**OK, "retries": 0}, "retries", ">= 1"),
        ({**OK, "secret": "x"}, "secret", "unknown key"),
        ({**OK, "format": "argo"}, "format", "watchkeeper, airflow"),
        ({**OK, "authorization_env": ""}, "authorization_env", "Authorization"),
    ],
)  # fmt: skip
def test_bad_options_name_the_key(options: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as caught:
        WebhookOptions.from_dict({"kind": "webhook", **options})
    assert caught.value.key == f"retrain.executor.{key}"


def test_the_secret_is_read_from_watchkeepers_variable_unless_another_is_named() -> None:
    assert WebhookOptions.from_dict({"url": "http://x"}).secret_env == "WATCHKEEPER_RETRAIN_SECRET"
    with pytest.raises(ConfigError) as caught:
        RetrainConfig.from_dict(
            {"trainer": "m:f", "executor": {"kind": "webhook", "url": "http://x", "deadline": -1}}
        )
    assert caught.value.key == "retrain.executor.deadline"


def test_signatures_are_checked_against_the_body_the_key_and_the_time() -> None:
    body = b'{"run_id": 1}'
    signature = sign(b"key", "1700000000.5", body)
    assert signature.startswith("sha256=")
    assert len(signature) == 7 + 64
    assert verify(b"key", "1700000000.5", body, signature, now=1_700_000_100.0)
    assert not verify(b"other", "1700000000.5", body, signature, now=1_700_000_100.0)
    assert not verify(b"key", "1700000000.5", b'{"run_id": 2}', signature, now=1_700_000_100.0)
    assert not verify(b"key", "1700000001", body, signature, now=1_700_000_100.0)
    assert not verify(b"key", "1700000000.5", body, signature, now=1_700_001_000.0)  # replayed
    assert not verify(b"key", "yesterday", body, signature)


# -- end to end: a running server hands its run to the orchestrator, which posts the artifact back

ALL_FEATURES = [
    "maximum_temperature", "minimum_temperature", "temperature", "dew_point",
    "sea_level_pressure", "visibility", "average_wind_speed", "max_sustained_wind_speed",
]  # fmt: skip
RECENT = slice(12_000, 14_880)  # after the documented drift: one day of rows, one every 30 s


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(
        db=f"sqlite:///{tmp_path / 'wk.db'}",
        log=tmp_path / "server.log",
        env={"WK_SECRET": SECRET, "WATCHKEEPER_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
             "WATCHKEEPER_WINDOW_CHECK_SECONDS": "0.5"},
    )  # fmt: skip
    process.env["WATCHKEEPER_EXTERNAL_URL"] = process.url
    yield process.start()
    process.stop()


def serve_recent_rows(admin: httpx.Client, model: str, executor: dict[str, Any]) -> float:
    """Register ``model`` with a champion trained on rows 0-5,999 and a webhook executor, serve
    the recent rows with their labels; the time of the first row."""
    retrain = {"trainer": "watchkeeper.demo:train_rainfall", "lookback": "2d",
               "label_delay": "1h", "min_rows": 500, "margin": 0.01, "max_retries": 0,
               "min_interval": 0, "executor": {"kind": "webhook", "secret_env": "WK_SECRET",
                                               "backoff": 0.05, **executor}}  # fmt: skip
    config = {"name": model, "task": "classification", "prediction": "prediction",
              "features": dict.fromkeys(ALL_FEATURES, "numeric"), "retrain": retrain}  # fmt: skip
    registered = admin.post("/v1/models", json=config)
    assert registered.status_code == 201, registered.text
    data = load_rainfall()
    early = data.iloc[:6000]
    champion = HistGradientBoostingClassifier(max_iter=100, random_state=0)
    champion.fit(early[ALL_FEATURES], early["rain"])
    answer = admin.post(
        f"/v1/models/{model}/versions",
        params={"flavor": "pickle", "trust": "true"},
        content=pickle.dumps(champion),
        headers={"content-type": "application/octet-stream"},
    )
    assert answer.status_code == 201, answer.text
    moved = admin.put(f"/v1/models/{model}/aliases/champion", json={"version": 1})
    assert moved.status_code == 200, moved.text
    rows = data.iloc[RECENT]
    first = time.time() - len(rows) * STEP
    predictions = champion.predict(rows[ALL_FEATURES])
    for start in range(0, len(rows), 2000):
        part = rows.iloc[start : start + 2000]
        events = [
            {"id": f"row-{i}", "timestamp": first + (i - RECENT.start) * STEP, "version": "1",
             "features": features, "prediction": str(int(p))}
            for i, features, p in zip(part.index, part[ALL_FEATURES].to_dict("records"),
                                      predictions[start:], strict=False)
        ]  # fmt: skip
        answer = admin.post(f"/v1/models/{model}/events", json={"events": events})
        assert answer.status_code in (200, 202), answer.text
        labels = [{"id": f"row-{i}", "label": str(int(y))} for i, y in part["rain"].items()]
        answer = admin.post(f"/v1/models/{model}/labels", json={"labels": labels})
        assert answer.status_code in (200, 202), answer.text
    return first


def decided(admin: httpx.Client, run_id: int, *, timeout: float = 120.0) -> dict[str, Any]:
    """The run once it is no longer queued, running or awaiting its artifact."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run: dict[str, Any] = admin.get(f"/v1/retrain/runs/{run_id}").json()
        if run["status"] not in ("queued", "running", "awaiting_artifact"):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} still {run['status']}:\n{run['log']}")


def test_end_to_end_the_orchestrator_trains_and_posts_the_artifact_back_through_the_api(
    server: ServerProcess, orchestrator: Orchestrator
) -> None:
    admin = server.client()
    first = serve_recent_rows(admin, "rainfall", {"url": orchestrator.url, "deadline": "5m"})
    data = load_rainfall().iloc[RECENT]
    times = first + (data.index - RECENT.start) * STEP
    trained_on: list[int] = []

    def train_and_post(job: dict[str, Any]) -> None:
        """The orchestrator: the job's trainer on the rows before ``train_before``."""
        rows = data[(times >= job["start"]) & (times < job["train_before"])]
        trained_on.append(len(rows))
        frame = rows[job["features"]].assign(**{job["label"]: rows["rain"]})
        context = SimpleNamespace(features=tuple(job["features"]), label=job["label"],
                                  params=job["params"])  # fmt: skip
        module, function = job["trainer"].split(":")
        model = getattr(importlib.import_module(module), function)(frame, context)
        posted = httpx.post(
            job["callback_url"],
            params={"flavor": "pickle", "trust": "true"},
            content=pickle.dumps(model),
            headers={"authorization": f"Bearer {ADMIN_TOKEN}",
                     "content-type": "application/octet-stream"},
        )  # fmt: skip
        assert posted.status_code == 202, posted.text

    orchestrator.on_job = train_and_post
    started = admin.post("/v1/models/rainfall/retrain", json={"reason": "drift after row 12,000"})
    assert started.status_code == 202, started.text
    run = decided(admin, started.json()["id"])
    assert run["status"] in ("rolling_out", "registered"), run["log"]
    (job,) = orchestrator.received
    assert job["callback_url"] == f"{server.url}/v1/retrain/runs/{run['id']}/artifact"
    # The orchestrator trained only on the rows before the holdout the gate scored.
    assert trained_on == [job["train_rows"]]
    assert run["data"]["holdout_rows"] == job["holdout_rows"]
    assert run["data"]["split_at"] == job["train_before"]
    assert run["artifact"]["flavor"] == "pickle"
    assert run["gate"]["candidate"] > run["gate"]["champion"] + 0.01
    assert run["gate"]["p_value"] < 1e-3
    assert run["version"] == 2
    answer = admin.get("/v1/models/rainfall/versions/2")
    assert answer.status_code == 200, answer.text
    assert answer.json()["registry"]["tags"]["retrain.run_id"] == run["id"]


def test_end_to_end_a_refused_signature_and_a_missed_deadline_fail_the_run(
    server: ServerProcess, orchestrator: Orchestrator
) -> None:
    admin = server.client()
    orchestrator.secret = b"not the server's secret"
    serve_recent_rows(admin, "refused", {"url": orchestrator.url})
    run = decided(admin, admin.post("/v1/models/refused/retrain").json()["id"])
    assert run["status"] == "failed"
    assert "answered 401" in run["error"]
    assert orchestrator.received == []
    assert len(orchestrator.refused) == 1  # a refusal is not retried
    # An orchestrator that takes the job and never posts an artifact: the deadline fails it.
    orchestrator.secret = SECRET.encode()
    serve_recent_rows(admin, "silent", {"url": orchestrator.url, "deadline": "2s"})
    run = decided(admin, admin.post("/v1/models/silent/retrain").json()["id"])
    assert run["status"] == "failed"
    assert "no artifact posted back within 2 s" in run["error"]
    assert len(orchestrator.received) == 1


def test_end_to_end_a_restarted_server_still_times_out_a_run_handed_over_before(
    server: ServerProcess, orchestrator: Orchestrator
) -> None:
    admin = server.client()
    serve_recent_rows(admin, "silent", {"url": orchestrator.url, "deadline": "4s"})
    run_id = admin.post("/v1/models/silent/retrain").json()["id"]
    waited = time.monotonic() + 60
    while admin.get(f"/v1/retrain/runs/{run_id}").json()["status"] != "awaiting_artifact":
        assert time.monotonic() < waited
        time.sleep(0.1)
    server.kill()  # no shutdown hooks: the deadline's timer dies with the process
    server.start()
    run = decided(server.client(), run_id)
    assert run["status"] == "failed"
    assert "no artifact posted back within 4 s" in run["error"]
    assert len(orchestrator.received) == 1
