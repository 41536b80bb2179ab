"""The whole loop's story in numbers, printed with Rich (``watchkeeper demo``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from watchkeeper.demo.data import CURRENT_START
from watchkeeper.demo.loop import ACCURACY_RULE, DRIFT_RULE, LoopOutcome, trigger_text

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["key_numbers", "print_loop"]


def key_numbers(loop: LoopOutcome) -> dict[str, Any]:
    """The figures the narrative quotes: detections, the gate, the rollouts, before/after."""
    canary = next((r for r in loop.rollouts if r["what"] == "retrained candidate"), None)
    broken = next((r for r in loop.rollouts if r["what"] == "deliberately broken"), None)
    # The service's run whose candidate passed the gate and became a version.
    registered = next((run for run in loop.runs if run["version"] is not None), None)
    end = loop.windows[-1]["rows"][1] if loop.windows else CURRENT_START
    promoted = canary.get("ended_row") if canary and _state(canary) == "promoted" else None
    drift = loop.detections.get(DRIFT_RULE)
    accuracy = loop.detections.get(ACCURACY_RULE)
    return {
        "drift_alert_row": drift["row"] if drift else None,
        "drift_share": _value(drift["alert"]) if drift else None,
        "accuracy_alert_row": accuracy["row"] if accuracy else None,
        "accuracy_alert_value": _value(accuracy["alert"]) if accuracy else None,
        "deliveries": loop.deliveries,
        "runs": len(loop.runs),
        "run_trigger": registered["trigger"] if registered else None,
        "run_status": registered["status"] if registered else None,
        "gate_p_value": registered["p_value"] if registered else None,
        "candidate_version": registered["version"] if registered else None,
        "canary_state": _state(canary),
        "promoted_row": promoted,
        "broken_state": _state(broken),
        "rollback_reason": broken["status"]["reason"] if broken and "status" in broken else None,
        # The champion on the drifted days before the promotion, the candidate after it.
        "accuracy_before": loop.accuracy("1", CURRENT_START, promoted or end),
        "accuracy_after": (
            loop.accuracy(str(registered["version"]), promoted, end)
            if registered and promoted
            else None
        ),
    }


def _state(rollout: dict[str, Any] | None) -> str | None:
    return None if rollout is None or "status" not in rollout else rollout["status"]["state"]


def _value(alert: dict[str, Any]) -> float | None:
    """The alert's value: the number its summary quotes (``… 0.629 is below 0.68``)."""
    for word in alert.get("annotations", {}).get("summary", "").split():
        try:
            return float(word)
        except ValueError:
            continue
    return None


def print_loop(loop: LoopOutcome, console: Console) -> None:
    """Per-day windows with what happened on each day, then the key numbers."""
    from rich.markup import escape
    from rich.table import Table

    notes = _notes(loop)
    versions = sorted({v for window in loop.windows for v in window["versions"]}, key=int)
    table = Table(title="Daily windows (documented drift from row 12,000)", title_justify="left")
    for header in ("rows", "served by", "drift share", *(f"accuracy v{v}" for v in versions)):
        table.add_column(header, justify="right")
    table.add_column("what happened")
    for day, window in enumerate(loop.windows):
        served = loop.served.get(day, {})
        total = sum(served.values()) or 1
        first, last = window["rows"]
        table.add_row(
            f"{first:,}–{min(last, first + window['events'] - 1):,}",
            " ".join(f"v{v} {100 * n / total:.0f}%" for v, n in sorted(served.items())),
            _fmt(window["drift_share"], 2),
            *(_fmt((window["versions"].get(v) or {}).get("accuracy"), 3) for v in versions),
            escape("; ".join(notes.get(day, []))),
        )
    console.print(table)
    numbers = key_numbers(loop)
    lines = [
        f"drift: {DRIFT_RULE} delivered at row {_row(numbers['drift_alert_row'])} "
        f"(drift share {_fmt(numbers['drift_share'], 2)} two days in a row: from the features "
        "alone, no labels needed)",
        f"accuracy decay: {ACCURACY_RULE} delivered at row {_row(numbers['accuracy_alert_row'])} "
        f"(accuracy {_fmt(numbers['accuracy_alert_value'], 3)}; labels arrive a day late)",
        f"webhook receiver: {numbers['deliveries']} notifications received",
    ]
    for run in loop.runs:
        lines.append(
            f"retraining run {run['id']} (the service's, trigger {trigger_text(run)}) at row "
            f"{run['row']:,}: "
            f"{run['status']} after {run['attempts']} attempt(s) in the worker process "
            f"({run['held_seconds']:.0f} s of wall time); trained on {run['train_rows']} rows, "
            f"gated on {run['holdout_rows']} later ones: {run['reason']}"
            + (f"; version {run['version']}" if run["version"] is not None else "")
            + (f", canary rollout {run['rollout_id']}" if run["rollout_id"] is not None else "")
        )
    for rollout in loop.rollouts:
        status = rollout.get("status")
        if status is None:
            lines.append(f"canary of v{rollout['version']} ({rollout['what']}): still running")
            continue
        steps = [
            f"{event['reason']} (row {loop.row_at(event['at']):,})"
            for event in status["events"]
            if event["kind"] in ("weight_set", "step_completed", "promoted", "aborted")
        ]
        lines.append(
            f"canary of v{rollout['version']} ({rollout['what']}, started by {rollout['by']}): "
            f"{status['state']}"
        )
        lines.extend(f"    {step}" for step in steps)
    lines.append(
        f"accuracy on the drifted data: champion v1 {_fmt(numbers['accuracy_before'], 3)} before "
        f"the promotion, v{numbers['candidate_version']} {_fmt(numbers['accuracy_after'], 3)} after"
    )
    for line in lines:
        console.print(escape(line), highlight=False)


def _notes(loop: LoopOutcome) -> dict[int, list[str]]:
    """What happened on each day (window), from the detections, runs and rollouts."""
    notes: dict[int, list[str]] = {}

    def note(row: int | None, text: str) -> None:
        if row is not None:
            day = (row - loop.row_at(loop.first)) // 720
            notes.setdefault(day, []).append(text)

    for rule, found in loop.detections.items():
        note(found["row"], f"{rule} → webhook")
    for run in loop.runs:
        note(
            run["row"],
            f"retraining run {run['id']}: {run['status']}"
            + (f" v{run['version']}" if run["version"] else ""),
        )
    for rollout in loop.rollouts:
        note(rollout["row"], f"canary v{rollout['version']}")
        status = rollout.get("status")
        if status is not None:
            note(rollout.get("ended_row"), f"v{rollout['version']} {status['state']}")
    return notes


def _fmt(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _row(row: int | None) -> str:
    return "–" if row is None else f"{row:,}"
