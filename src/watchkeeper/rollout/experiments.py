"""Experiments: A/B tests of a model's versions through the router, as first-class objects.

An experiment names its model, its arms (versions with weights; the first is the control), its
metrics (any monitor signal per arm) and how they are tested (``alpha``, fixed-horizon or
always-valid); :mod:`watchkeeper.rollout.experiment_spec` validates that. :class:`Experiments`

- **creates** one: checks the versions and signals, then routes the model's traffic to the arms
  with sticky assignment (a new salt, so units are re-drawn independently of any earlier split)
  and stores the experiment with the routing config it replaced;
- **stops** one: puts that routing config back (only when nobody changed the routing since the
  experiment set it; otherwise it is left as it is, and the stop says so);
- computes its **results** on every request from the arms' windows since it started
  (:func:`watchkeeper.rollout.experiment_analysis.analyse`): nothing but the definition is
  stored, so the results can always be recomputed from the stored events and outcomes.

A model has at most one running experiment, and none while a rollout of it is in progress:
both own the model's routing.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from watchkeeper.errors import ConfigError, ConflictError, NotFoundError
from watchkeeper.rollout.controller import ACTIVE_STATES, Monitor
from watchkeeper.rollout.experiment_analysis import analyse
from watchkeeper.rollout.experiment_spec import ExperimentSpec, parse_experiment
from watchkeeper.rollout.metrics import arm_windows
from watchkeeper.serving.config import Arm, RoutingConfig, Target
from watchkeeper.store.experiments import ExperimentRecord

if TYPE_CHECKING:
    from watchkeeper.serving import Serving
    from watchkeeper.store import Store

__all__ = ["RUNNING", "Experiments", "checked_id", "describe"]

#: The state of an experiment that routes traffic (the other is ``stopped``).
RUNNING = "running"
_CHANGED_BY = "experiment"


class Experiments:
    """Create, stop and analyse the experiments of one store, monitor and router."""

    def __init__(
        self,
        *,
        store: Store,
        monitor: Monitor,
        serving: Serving,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._monitor = monitor
        self._serving = serving
        self._clock = clock
        self._lock = threading.Lock()

    def create(self, document: Mapping[str, Any], *, by: str = "api") -> ExperimentRecord:
        """Start an experiment: route the model's traffic to its arms, sticky, from now on."""
        parsed = parse_experiment(document)
        model = parsed.model
        known = set(self._monitor.signal_names(model))
        for index, metric in enumerate(parsed.metrics):
            if metric.signal not in known:
                raise ConfigError(
                    f"metrics[{index}].signal: model {model!r} has no signal {metric.signal!r} "
                    f"(GET /v1/models/{model}/signals lists them)",
                    key=f"metrics[{index}].signal",
                )
        spec = parsed.with_versions(self._versions(parsed))
        with self._lock:
            self._check_free(model)
            current = self._serving.routing(model)
            config = RoutingConfig(
                arms=tuple(
                    Arm(arm.name, Target(version=int(arm.version)), float(arm.weight))
                    for arm in spec.arms
                ),
                sticky=True,
                salt=f"experiment-{secrets.token_hex(8)}",
            )
            change = self._serving.set_routing(
                model,
                config,
                changed_by=_CHANGED_BY,
                reason=f"experiment {spec.name!r} started by {by}",
                expected_revision=0 if current is None else current.revision,
            )
            try:
                return self._store.create_experiment(
                    model=model,
                    spec=spec.to_dict(),
                    previous_routing=None if current is None else current.config,
                    routing_revision=change.revision,
                    created_by=by,
                    now=self._clock(),
                )
            except BaseException:
                self._serving.set_routing(
                    model,
                    None if current is None else current.config,
                    changed_by=_CHANGED_BY,
                    reason="experiment could not be stored; routing put back",
                    expected_revision=change.revision,
                )
                raise

    def stop(self, experiment_id: int, *, by: str = "api", reason: str = "") -> ExperimentRecord:
        """Stop a running experiment and put back the routing it replaced."""
        with self._lock:
            record = self._store.experiment(experiment_id)
            if record.state != RUNNING:
                raise ConflictError(f"experiment {experiment_id} is already {record.state}")
            try:
                self._serving.set_routing(
                    record.model,
                    record.previous_routing,
                    changed_by=_CHANGED_BY,
                    reason=f"experiment {experiment_id} stopped by {by}",
                    expected_revision=record.routing_revision,
                )
                routing = "routing restored"
            except ConflictError:
                # Someone set the routing after the experiment did: theirs is newer, keep it.
                routing = "the routing was changed after the experiment set it and is left as it is"
            note = (
                f"stopped by {by}: {reason}; {routing}" if reason else f"stopped by {by}; {routing}"
            )
            return self._store.stop_experiment(
                record, stopped_by=by, reason=note, now=self._clock()
            )

    def get(self, experiment_id: int) -> ExperimentRecord:
        """The experiment ``experiment_id`` (NotFoundError when there is none)."""
        return self._store.experiment(experiment_id)

    def experiments(self, *, model: str | None = None) -> list[ExperimentRecord]:
        """Every experiment (of ``model``), oldest first."""
        return self._store.experiments(model=model)

    def results(self, experiment_id: int) -> dict[str, Any]:
        """The results now, recomputed from the arms' windows since the experiment started
        (until it stopped)."""
        record = self._store.experiment(experiment_id)
        spec = parse_experiment(record.spec)
        now = self._clock()
        until = now if record.stopped_at is None else record.stopped_at
        windows = {
            arm.name: arm_windows(
                self._monitor, record.model, arm.version, since=record.created_at, until=until
            )
            for arm in spec.arms
        }
        return {
            "experiment": describe(record),
            "since": record.created_at,
            "until": until,
            "computed_at": now,
            **analyse(spec, windows),
        }

    def _versions(self, spec: ExperimentSpec) -> dict[str, str]:
        """Arm name → the registry version number its ``version`` names (number or alias)."""
        registry = self._serving.registry
        numbers = [str(record.version) for record in registry.versions(spec.model)]
        aliases = {alias.alias: str(alias.version) for alias in registry.aliases(spec.model)}
        resolved: dict[str, str] = {}
        served: dict[str, str] = {}
        for index, arm in enumerate(spec.arms):
            where = f"arms[{index}].version"
            version = arm.version if arm.version.isdigit() else aliases.get(arm.version)
            if version is None or version not in numbers:
                choices = ", ".join([*numbers, *sorted(aliases)]) or "none registered"
                raise ConfigError(
                    f"{where}: model {spec.model!r} has no version {arm.version!r}; its "
                    f"versions and aliases: {choices}",
                    key=where,
                )
            if version in served:
                raise ConfigError(
                    f"{where}: {arm.version!r} is version {version}, which arm "
                    f"{served[version]!r} serves; every arm needs its own version",
                    key=where,
                )
            resolved[arm.name] = version
            served[version] = arm.name
        return resolved

    def _check_free(self, model: str) -> None:
        """ConflictError when a running experiment or a rollout owns ``model``'s routing."""
        running = self._store.experiments(model=model, states=[RUNNING])
        if running:
            raise ConflictError(
                f"model {model!r} already has experiment {running[0].id} running; stop it first "
                f"(POST /v1/experiments/{running[0].id}/stop)"
            )
        rollouts = self._store.rollouts(model=model, states=ACTIVE_STATES)
        if rollouts:
            raise ConflictError(
                f"model {model!r} has rollout {rollouts[0].id} ({rollouts[0].state}), which "
                "sets its routing; promote or abort it first"
            )


def describe(record: ExperimentRecord) -> dict[str, Any]:
    """The JSON form of an experiment."""
    return {
        "id": record.id,
        "model": record.model,
        "state": record.state,
        "reason": record.reason,
        **{key: value for key, value in record.spec.items() if key != "model"},
        "created_by": record.created_by,
        "created_at": record.created_at,
        "stopped_by": record.stopped_by,
        "stopped_at": record.stopped_at,
    }


def checked_id(experiment_id: int) -> int:
    """Ids are positive 32-bit integers; any other number names no experiment."""
    if not 0 < experiment_id < 2**31:
        raise NotFoundError(
            f"no experiment {experiment_id}", kind="experiment", name=str(experiment_id)
        )
    return experiment_id
