"""One retraining run: assemble mature data, train a candidate, gate it against the champion,
register it when it is proven better.

>>> # run = retrain(store, registry, "rainfall", spec, now=time.time(), trigger={"kind": "manual"})
>>> # run.status, run.version, run.gate.p_value

The gate scores the champion (``name@champion``) and the candidate on the **same** holdout rows
(the most recent mature ones) and passes only when the candidate is better by the margin and the
paired test says the improvement is more than noise (:mod:`watchkeeper.stats.paired`). A passing
candidate is registered with its holdout metrics, the gate's result and its lineage (data range,
trigger, the champion it beat); the rollout that takes it to production is the caller's next
step. A failing candidate is not registered, and the run says why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from watchkeeper.entrypoints import load_entry_point
from watchkeeper.errors import InputError, NotFoundError, WatchkeeperError
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.registry import Registry
from watchkeeper.registry.flavors import LoadedModel, dump_object, flavor_from_path, load_model
from watchkeeper.retrain.data import LABEL, TrainingData, assemble
from watchkeeper.retrain.runs import RunStatus
from watchkeeper.retrain.spec import RetrainSpec
from watchkeeper.stats.paired import PairedComparison, compare_paired
from watchkeeper.store import Store

__all__ = ["RetrainRun", "RunStatus", "TrainingContext", "gate", "retrain"]


@dataclass(frozen=True, slots=True)
class TrainingContext:
    """What the training function is told besides the data."""

    model: str
    champion_version: int | None
    start: float
    end: float
    features: tuple[str, ...]
    label: str
    params: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RetrainRun:
    """The outcome of one run: status, why, the gate's measurements, the new version if any."""

    model: str
    status: RunStatus
    reason: str
    trigger: Mapping[str, Any]
    champion_version: int | None = None
    version: int | None = None
    gate: PairedComparison | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "model": self.model,
            "status": self.status.value,
            "reason": self.reason,
            "trigger": dict(self.trigger),
            "champion_version": self.champion_version,
            "version": self.version,
            "gate": None if self.gate is None else self.gate.to_dict(),
            "data": dict(self.data),
        }


def retrain(
    store: Store,
    registry: Registry,
    model: str,
    spec: RetrainSpec,
    *,
    now: float,
    trigger: Mapping[str, Any],
    base: pd.DataFrame | Callable[[], pd.DataFrame] | None = None,
    registered_by: str = "retraining",
    run_id: int | None = None,
    artifact: Mapping[str, Any] | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> RetrainRun:
    """Run the pipeline once for ``model`` (see the module docstring).

    ``run_id`` (a stored run's) makes registration idempotent: a version already registered
    by that run (tag ``retrain.run_id``; the run was interrupted after registering) is the
    outcome instead of a second one. ``artifact`` (``sha256`` in the registry's artifact
    store, ``flavor``, ``trusted``) is a candidate trained elsewhere: it is gated and
    registered without calling the trainer. ``log`` receives one line per step.
    """
    model_spec = ModelSpec.from_dict(dict(store.get_model(model).config))
    champion_version, champion = _champion(registry, model)
    try:
        data = assemble(store, model_spec, spec, now=now, base=base)
    except InputError as error:
        log(f"data: {error}")
        return RetrainRun(model, RunStatus.FAILED, f"data: {error}", trigger, champion_version)
    summary = data.summary()
    log(
        f"data: {summary['train_rows']} training and {summary['holdout_rows']} holdout rows "
        f"with mature labels, predicted in [{data.start:.0f}, {data.end:.0f}); "
        f"classes {summary['label_share']}"
    )
    candidate_object: object
    trusted = True
    if artifact is not None:
        raw = registry.artifacts.get(str(artifact["sha256"]))
        candidate_object = raw
        trusted = bool(artifact.get("trusted", False))
        log(f"candidate: the artifact posted back ({artifact['flavor']}, {len(raw)} bytes)")
    else:
        trainer = load_entry_point(spec.trainer, key="retrain.trainer", what="a function")
        context = TrainingContext(
            model=model,
            champion_version=champion_version,
            start=data.start,
            end=data.end,
            features=data.features,
            label=LABEL,
            params=dict(spec.params or {}),
        )
        log(f"training: {spec.trainer} on {len(data.train)} rows")
        try:
            candidate_object = trainer(data.train, context)
        except Exception as error:  # the user's code: any failure is the run's, reported
            log(f"training failed: {type(error).__name__}: {error}")
            return RetrainRun(
                model,
                RunStatus.FAILED,
                f"training: {type(error).__name__}: {error}",
                trigger,
                champion_version,
                data=summary,
            )
    flavor = None if artifact is None else str(artifact["flavor"])
    try:
        candidate = _loaded(candidate_object, data, flavor=flavor, trust=trusted)
    except WatchkeeperError as error:
        log(f"candidate: {error}")
        return RetrainRun(
            model, RunStatus.FAILED, f"candidate: {error}", trigger, champion_version, data=summary
        )
    result = gate(data, champion, candidate, spec)
    lineage = {
        "retrain.trigger": dict(trigger),
        "retrain.data_start": data.start,
        "retrain.data_end": data.end,
        "retrain.split_at": data.split_at,
        "retrain.champion_version": champion_version,
    }
    passed, reason = _verdict(result, spec)
    log(f"gate: {'passed' if passed else 'failed'}: {reason}")
    if not passed:
        return RetrainRun(
            model,
            RunStatus.REJECTED,
            reason,
            trigger,
            champion_version,
            gate=result,
            data=summary,
        )
    if run_id is not None:
        lineage["retrain.run_id"] = run_id
    record = _registered_by_run(registry, model, run_id)
    if record is None:
        record = registry.register(
            model,
            candidate_object,
            flavor=flavor,
            description=f"retrained on {summary['train_rows']} rows: {reason}",
            metrics={f"holdout_{result.metric}": result.candidate, "gate_p_value": result.p_value},
            params=dict(spec.params or {}),
            tags={**lineage, "retrain.gate": result.to_dict()},
            reference=data.train[list(data.features)],
            trust=trusted,
            registered_by=registered_by,
        )
        log(f"registered: version {record.version}")
    else:
        log(f"registered already (before an interruption): version {record.version}")
    return RetrainRun(
        model,
        RunStatus.REGISTERED,
        reason,
        trigger,
        champion_version,
        version=record.version,
        gate=result,
        data=summary,
    )


def gate(
    data: TrainingData,
    champion: LoadedModel | None,
    candidate: LoadedModel,
    spec: RetrainSpec,
) -> PairedComparison:
    """Both models scored on the holdout rows, compared by the paired test of ``spec.metric``.

    Without a champion, the candidate is compared with predicting the training data's most
    frequent class (or mean): a first model must at least beat that.
    """
    frame = data.holdout[list(data.features)]
    truth = data.holdout[LABEL]
    theirs = _scores(champion, frame, spec.metric, data) if champion else _baseline(data, spec)
    ours = _scores(candidate, frame, spec.metric, data)
    truth_values: np.ndarray
    if spec.metric == "roc_auc":
        positive = _positive_class(data)
        truth_values = (truth.astype(str) == positive).astype(float).to_numpy()
    elif spec.metric == "accuracy":
        truth_values = truth.astype(str).to_numpy()
    else:
        truth_values = truth.to_numpy(dtype=float)
    return compare_paired(truth_values, theirs, ours, metric=spec.metric)


def _verdict(result: PairedComparison, spec: RetrainSpec) -> tuple[bool, str]:
    better = f"{result.metric} {result.candidate:.4f} vs champion {result.champion:.4f}"
    if result.improvement < spec.margin:
        return False, (
            f"{better}: improvement {result.improvement:+.4f} is below the margin {spec.margin:g}"
        )
    if result.p_value >= spec.alpha:
        return False, (
            f"{better}: improvement {result.improvement:+.4f} is not significant "
            f"({result.test} p = {result.p_value:.3g} >= {spec.alpha:g})"
        )
    return True, (
        f"{better}: improvement {result.improvement:+.4f} >= margin {spec.margin:g}, "
        f"{result.test} p = {result.p_value:.3g} < {spec.alpha:g}"
    )


def _registered_by_run(registry: Registry, model: str, run_id: int | None) -> Any:
    """The version run ``run_id`` registered already, if any."""
    if run_id is None:
        return None
    for version in registry.versions(model):
        if version.tags.get("retrain.run_id") == run_id:
            return version
    return None


def _champion(registry: Registry, model: str) -> tuple[int | None, LoadedModel | None]:
    try:
        record = registry.resolve(f"{model}@champion")
    except NotFoundError:
        return None, None
    return record.version, registry.load(record)


def _loaded(
    candidate: object, data: TrainingData, *, flavor: str | None, trust: bool
) -> LoadedModel:
    """The trained object (or artifact path, or posted artifact bytes of ``flavor``) as the
    registry would load it, before storing it: a candidate whose artifact does not load fails
    here, not after registration."""
    if isinstance(candidate, bytes):
        raw, found = candidate, flavor_from_path("artifact", flavor)
    elif isinstance(candidate, str | Path):
        raw = Path(candidate).read_bytes()
        found = flavor_from_path(Path(candidate))
    else:
        found, raw = dump_object(candidate)
    # An artifact the model's own training function returned, in this process, is trusted:
    # loading it runs nothing that did not already run (skops' default list does not cover
    # every scikit-learn type, e.g. gradient boosting's tree predictors). A posted artifact is
    # trusted only when its uploader said so.
    try:
        return load_model(found, raw, trust=trust, features=data.features)
    except WatchkeeperError:
        raise
    except Exception as error:  # the runtimes raise their own types
        raise InputError(f"the artifact does not load as {found}: {error}") from None


def _scores(model: LoadedModel, frame: pd.DataFrame, metric: str, data: TrainingData) -> Any:
    if metric == "roc_auc":
        classes, proba = model.predict_proba(frame)
        return proba[:, classes.index(_positive_class(data))]
    if metric == "accuracy":
        return np.asarray([str(value) for value in model.predict(frame)])
    return np.asarray(model.predict(frame), dtype=float)


def _positive_class(data: TrainingData) -> str:
    classes = sorted(data.train[LABEL].astype(str).unique())
    if len(classes) != 2:
        raise InputError(f"roc_auc needs a binary label, the training rows have {classes}")
    return "1" if "1" in classes else classes[-1]


def _baseline(data: TrainingData, spec: RetrainSpec) -> Any:
    rows = len(data.holdout)
    if spec.metric == "accuracy":
        majority = data.train[LABEL].astype(str).mode().iloc[0]
        return np.full(rows, majority, dtype=object)
    if spec.metric == "roc_auc":
        return np.full(rows, 0.5)
    return np.full(rows, float(data.train[LABEL].astype(float).mean()))
