"""The webhook executor against a real local HTTP endpoint acting as the orchestrator."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from watchkeeper.errors import ConfigError
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
            state.received.append(job)
            self._answer(202, {"accepted": job["run_id"]})
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


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'wk.db'}")
    yield opened
    opened.close()


def awaiting(store: Store) -> RetrainRunRecord:
    """A run handed over at its first attempt, as the runner leaves it."""
    fields = {"model": "rainfall", "status": "queued", "trigger": {"kind": "manual"},
              "mode": "automatic", "executor": "webhook", "as_of": 1_700_400_000.0,
              "max_attempts": 3}  # fmt: skip
    run = store.create_retrain_run(fields)
    return store.update_retrain_run(run, {"status": "awaiting_artifact", "attempts": 1})


def job(url: str, run_id: int = 7, **executor: Any) -> RetrainJob:
    options = {"kind": "webhook", "url": url, "secret_env": "WK_SECRET", "backoff": 0.01,
               **executor}  # fmt: skip
    config = {"trainer": "watchkeeper.demo:train_rainfall", "lookback": 172_800.0,
              "label_delay": 86_400.0, "params": {"max_iter": 50}, "executor": options}  # fmt: skip
    return RetrainJob(run_id, "rainfall", 1, 1_700_400_000.0, {"kind": "manual"}, config)


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
    assert received["start"] == 1_700_400_000.0 - 172_800.0
    assert received["end"] == 1_700_400_000.0 - 86_400.0
    assert received["params"] == {"max_iter": 50}
    assert received["trainer"] == "watchkeeper.demo:train_rainfall"
    assert received["callback_url"] == "http://watchkeeper.test:8000/v1/retrain/runs/7/artifact"
    assert before + 6 * 3600 <= received["deadline"] <= time.time() + 6 * 3600
    assert received["idempotency_key"] == "retrain-run-7-attempt-1"
    assert SECRET not in json.dumps(received)


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
    assert orchestrator.refused == ["retrain-run-7-attempt-1"]
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
