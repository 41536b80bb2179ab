"""What the registry and rollout pages show, from the registry, the store and the controller.

Like :mod:`watchkeeper.dashboard.views`, these are plain dicts rendered by templates; the
documents come from the same functions the HTTP API answers with
(:mod:`watchkeeper.registry.views`, :meth:`RolloutController.status`), so the page and the API
never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from watchkeeper.dashboard import charts
from watchkeeper.errors import NotFoundError
from watchkeeper.registry.registry import version_dict
from watchkeeper.registry.views import move_document
from watchkeeper.rollout.analysis import NO_DATA_MEASUREMENT, SRM_MEASUREMENT
from watchkeeper.rollout.controller import ACTIVE_STATES, describe
from watchkeeper.rollout.spec import parse_spec

if TYPE_CHECKING:
    from watchkeeper.monitor.service import MonitorService
    from watchkeeper.registry import Registry
    from watchkeeper.rollout.controller import RolloutController
    from watchkeeper.store import Store

__all__ = [
    "ACTIONS",
    "actions_allowed",
    "registry_page",
    "rollout_page",
    "rollouts_page",
    "runs_page",
]

#: The manual commands of a rollout, in button order.
ACTIONS: Final = ("promote", "pause", "resume", "abort")
_LINEAGE_PREFIX: Final = "retrain."
_RUNS_SHOWN: Final = 500


def registry_page(registry: Registry, model: str) -> dict[str, Any]:
    """A model's registered versions (metadata, metrics, lineage, aliases) and every alias's
    full history, newest move first; 404 when the model has no registered version."""
    records = registry.versions(model)
    if not records:
        raise NotFoundError(f"model {model!r} has no registered versions", kind="model", name=model)
    current = {item.alias: item for item in registry.aliases(model)}
    by_version: dict[int, list[str]] = {}
    for item in current.values():
        by_version.setdefault(item.version, []).append(item.alias)
    versions = []
    for record in reversed(records):
        document = version_dict(record, sorted(by_version.get(record.version, [])))
        tags = document["tags"]
        document["lineage"] = {
            key[len(_LINEAGE_PREFIX) :]: value
            for key, value in tags.items()
            if key.startswith(_LINEAGE_PREFIX) and key != "retrain.gate"
        }
        document["gate"] = tags.get("retrain.gate")
        document["other_tags"] = {
            key: value for key, value in tags.items() if not key.startswith(_LINEAGE_PREFIX)
        }
        versions.append(document)
    aliases = []
    for name in registry.store.alias_names(model):
        moves = [move_document(move) for move in registry.history(model, name)]
        aliases.append(
            {
                "alias": name,
                "version": current[name].version if name in current else None,
                "updated_at": moves[0]["moved_at"] if moves else None,
                # A rollback moves back to the version before the latest move.
                "rollback_to": moves[0]["from_version"] if moves else None,
                "history": moves,
            }
        )
    return {"name": model, "versions": versions, "aliases": aliases}


def actions_allowed(state: str) -> list[str]:
    """The commands a rollout in ``state`` takes (the controller refuses the others: 409)."""
    if state not in ACTIVE_STATES:
        return []
    return ["promote", "resume", "abort"] if state == "paused" else ["promote", "pause", "abort"]


def rollouts_page(store: Store, *, model: str | None = None) -> dict[str, Any]:
    """Every rollout (of ``model``), newest first: the ones in progress, then the ended."""
    records = [describe(record) for record in reversed(store.rollouts(model=model))]
    active = [row for row in records if row["state"] in ACTIVE_STATES]
    ended = [row for row in records if row["state"] not in ACTIVE_STATES]
    return {"active": active, "ended": ended, "model": model or ""}


def rollout_page(controller: RolloutController, rollout_id: int) -> dict[str, Any]:
    """A rollout with its steps (done, current, to come), every measurement, a chart per
    metric (candidate vs baseline over time) and its events, newest first."""
    status = controller.status(rollout_id)
    spec = parse_spec(status["spec"])
    steps = []
    for index, step in enumerate(spec.steps):
        where = "done" if index < status["step"] else "current" if index == status["step"] else ""
        if status["state"] not in ACTIVE_STATES and where == "current":
            where = "stopped"
        steps.append({"index": index + 1, "step": _step_text(step.to_dict()), "where": where})
    measurements = [_measurement_row(item) for item in status["measurements"]]
    return {
        **status,
        "step_list": steps,
        "metrics": [metric.to_dict() for metric in spec.analysis.metrics],
        "analysis": spec.analysis.to_dict(),
        "rows": list(reversed(measurements)),
        "figures": charts.rollout_figures(status["measurements"], status["events"]),
        "events": list(reversed(status["events"])),
        "actions": actions_allowed(status["state"]),
    }


def _step_text(step: Mapping[str, Any]) -> str:
    if "set_weight" in step:
        return f"set weight {step['set_weight']} %"
    if "pause" in step:
        duration = step["pause"].get("duration")
        return "pause until promoted" if duration is None else f"pause {duration:g} s"
    return f"analysis (at most {step['analysis']['count']} looks)"


def _measurement_row(item: Mapping[str, Any]) -> dict[str, Any]:
    """One measurement as a table row: what was compared and the verdict."""
    values = item["values"]
    row: dict[str, Any] = {
        "at": item["at"],
        "step": item["step"] + 1,
        "metric": item["metric"],
        "outcome": item["outcome"],
        "candidate": None,
        "baseline": None,
        "effect": None,
        "interval": None,
        "p_value": None,
        "counts": "",
        "detail": "",
    }
    if item["metric"] == SRM_MEASUREMENT:
        counts = values.get("counts", [])
        row["p_value"] = values.get("p_value")
        row["counts"] = " / ".join(str(count) for count in counts)
        row["detail"] = "expected " + " / ".join(f"{e:.0f}" for e in values.get("expected", []))
    elif item["metric"] == NO_DATA_MEASUREMENT:
        row["detail"] = ", ".join(f"{key} {value}" for key, value in sorted(values.items()))
    else:
        row |= {
            "candidate": values.get("candidate_value"),
            "baseline": values.get("baseline_value"),
            "effect": values.get("effect"),
            "p_value": values.get("p_value"),
            "counts": f"{values.get('candidate_count')} / {values.get('baseline_count')}",
            "detail": values.get("reason", ""),
        }
        if values.get("ci_low") is not None or values.get("ci_high") is not None:
            row["interval"] = (values.get("ci_low"), values.get("ci_high"))
    return row


def runs_page(store: Store, service: MonitorService, *, model: str | None = None) -> dict[str, Any]:
    """Retraining runs (of ``model``; the newest 500), newest first: trigger, status, timings,
    and the gate's champion vs candidate score, improvement (effect) with its interval, p-value
    and the margin the model's ``retrain:`` config asks for."""
    from watchkeeper.retrain.config import RetrainConfig

    margins: dict[str, float | None] = {}
    for spec in service.list_models():
        margins[spec.name] = (
            None if spec.retrain is None else RetrainConfig.from_dict(spec.retrain).spec.margin
        )
    rows = []
    for record in reversed(store.retrain_runs(model=model, limit=_RUNS_SHOWN)):
        run = record.to_dict()
        trigger = dict(run["trigger"])
        kind = str(trigger.pop("kind", ""))
        gate = run["gate"]
        started, finished = run["started_at"], run["finished_at"]
        rows.append(
            {
                **run,
                "trigger_kind": kind,
                "trigger_detail": ", ".join(
                    f"{key} {value}" for key, value in sorted(trigger.items()) if value != ""
                ),
                "took": None if started is None or finished is None else finished - started,
                "gate": None if gate is None else _gate(gate, margins.get(record.model)),
            }
        )
    return {"runs": rows, "model": model or ""}


def _gate(gate: Mapping[str, Any], margin: float | None) -> dict[str, Any]:
    """The gate's result as the page shows it (``effect``: the candidate's improvement)."""
    interval = gate.get("interval")
    return {
        "metric": gate.get("metric", ""),
        "champion": gate.get("champion"),
        "candidate": gate.get("candidate"),
        "effect": gate.get("improvement"),
        "interval": list(interval) if isinstance(interval, (list, tuple)) else None,
        "p_value": gate.get("p_value"),
        "margin": margin,
        "passed": None
        if margin is None or gate.get("improvement") is None
        else gate["improvement"] >= margin,
    }
