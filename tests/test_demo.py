"""``watchkeeper demo``: the batch report, and the whole loop through the real service."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from watchkeeper.cli.main import app
from watchkeeper.demo import DemoOutcome, run_demo
from watchkeeper.demo.loop import ACCURACY_RULE, DRIFT_RULE, LoopOutcome
from watchkeeper.demo.narrative import key_numbers
from watchkeeper.store import Store


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> DemoOutcome:
    """One full run (about a minute): every test below reads its outcome."""
    return run_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def loop(outcome: DemoOutcome) -> LoopOutcome:
    assert outcome.loop is not None
    return outcome.loop


def test_the_batch_report_shows_the_drift(outcome: DemoOutcome) -> None:
    document = orjson.loads(outcome.json_path.read_bytes())
    assert document["drift"]["dataset_drift"] is True
    assert document["performance"]["change"]["accuracy"]["change"] < -0.1
    assert outcome.html_path.stat().st_size > 0


def test_every_row_is_served_and_labelled_through_the_service(loop: LoopOutcome) -> None:
    assert sum(sum(day.values()) for day in loop.served.values()) == 18_159 - 6_000
    assert sum(window["events"] for window in loop.windows) == 18_159 - 6_000
    # Every label arrived (a day late) and joined its prediction's window.
    assert all(window["labeled"] == window["events"] for window in loop.windows)


def test_drift_and_the_accuracy_decay_reach_the_webhook_receiver(loop: LoopOutcome) -> None:
    numbers = key_numbers(loop)
    assert loop.deliveries > 0
    # The documented drift starts at row 12,000; the drift share rule needs two drifted days.
    assert 12_000 < numbers["drift_alert_row"] < 14_000
    assert numbers["drift_share"] >= 0.5
    # Accuracy needs labels, which come a day (720 rows) after their predictions.
    assert 12_000 + 720 < numbers["accuracy_alert_row"] < 14_400
    assert numbers["accuracy_alert_value"] < 0.68
    alert = loop.detections[ACCURACY_RULE]["alert"]
    assert alert["labels"]["model"] == "rainfall"
    assert alert["labels"]["version"] == "1"
    assert DRIFT_RULE in loop.detections


def test_the_delivered_alert_starts_the_services_retraining_run(loop: LoopOutcome) -> None:
    registered = [run for run in loop.runs if run["version"] is not None]
    assert len(registered) == 1, _story(loop)
    run = registered[0]
    # Started by the service on the very alert the webhook receiver got, in its worker.
    assert run["trigger"] == "alert", _story(loop)
    assert run["rule"] == ACCURACY_RULE
    assert run["fingerprint"] == loop.detections[ACCURACY_RULE]["alert"]["fingerprint"]
    assert run["on_version"] == "1"
    # The service acts on the alert as it fires; the receiver has it by the demo's next step.
    assert 0 <= loop.detections[ACCURACY_RULE]["row"] - run["row"] <= 120
    # A significantly better version, handed to a canary by the service (automatic mode).
    assert run["p_value"] < 0.05
    assert run["candidate"] > run["champion"] + 0.01
    assert run["version"] == 2
    assert run["status"] == "rolling_out"
    canary = loop.rollouts[0]
    assert canary["what"] == "retrained candidate"
    assert canary["id"] == run["rollout_id"]
    assert canary["by"] == f"retraining run {run['id']}"
    with Store.open(f"sqlite:///{loop.db_path}") as store:
        stored = store.retrain_run(run["id"])
        assert stored.trigger["labels"]["version"] == "1"
        assert stored.executor == "local"
        version = store.registry_version("rainfall", 2)
        assert version.registered_by == "retraining"
        assert version.tags["retrain.run_id"] == run["id"]
        # Stamped on the service's (simulated) clock, though the worker process has no such clock.
        assert stored.created_at <= version.registered_at <= (stored.finished_at or 0) + 120


def test_the_candidate_is_promoted_and_the_broken_version_rolled_back(loop: LoopOutcome) -> None:
    numbers = key_numbers(loop)
    assert numbers["canary_state"] == "promoted", _story(loop)
    assert numbers["broken_state"] == "aborted", _story(loop)
    assert "accuracy violates" in numbers["rollback_reason"]
    canary, broken = loop.rollouts[:2]
    assert broken["by"] == "the demo"
    kinds = [event["kind"] for event in canary["status"]["events"]]
    assert kinds[0] == "started"
    assert kinds[-1] == "promoted"
    assert kinds.count("weight_set") == 2
    assert broken["status"]["weights"] == {"2": 100, "3": 0}
    with Store.open(f"sqlite:///{loop.db_path}") as store:
        champion = {alias.alias: alias.version for alias in store.aliases("rainfall")}
        assert champion["champion"] == numbers["candidate_version"] == 2


def test_accuracy_recovers_after_the_promotion(loop: LoopOutcome) -> None:
    numbers = key_numbers(loop)
    assert numbers["accuracy_after"] > numbers["accuracy_before"] + 0.05
    # Before the drift the champion was at its reference level.
    assert loop.accuracy("1", 6_000, 11_999) > 0.75


def test_the_demo_command_without_the_live_loop(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--output", str(tmp_path), "--no-live"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report.json").exists()
    assert not (tmp_path / "watchkeeper.db").exists()


def _story(loop: LoopOutcome) -> str:
    """The rollouts' events (and the runs), for a failing assertion's message."""
    lines = [
        f"run {run['id']} ({run['trigger']}) at row {run['row']}: {run['status']} {run['reason']}"
        for run in loop.runs
    ]
    for rollout in loop.rollouts:
        status = rollout.get("status") or {}
        lines.append(f"v{rollout['version']} from row {rollout['row']}: {status.get('state')}")
        lines += [
            f"  row {loop.row_at(event['at'])}: {event['kind']} {event['reason']}"
            for event in status.get("events", [])
        ]
    return "\n".join(lines)
