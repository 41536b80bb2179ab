"""Serving: predict through the router, log every prediction, change the routing.

:class:`Serving` is what the ``predict`` route and the rollout controller use::

    serving.predict("churn", PredictRequest.from_rows([{"age": 41, "plan": "pro"}]))
    serving.set_weights("churn", {"champion": 90, "canary": 10}, changed_by="rollout")

A request's rows are routed one by one (:class:`~watchkeeper.serving.router.Router`), checked
against the input signature of the version each arm serves with the ingest rules of their
kinds (so a feature that would be rejected at ingest is rejected here, with the same reason),
predicted in one call per arm, and logged to the monitor (:class:`PredictionLog`) with the
version, the arm and the unit; each answer carries the id of its logged event. Shadow rows are
predicted afterwards on a small pool of threads and only logged.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from watchkeeper.errors import ConfigError, ConflictError, IngestError, InputError, NotFoundError
from watchkeeper.ingest import rules
from watchkeeper.ingest.events import new_ids
from watchkeeper.ingest.spec import ModelSpec, check_model_name
from watchkeeper.schema import ColumnKind
from watchkeeper.serving.config import RoutingConfig, Target
from watchkeeper.serving.log import PredictionLog
from watchkeeper.serving.predictors import DEFAULT_REFRESH_SECONDS, PredictorCache, Served
from watchkeeper.serving.router import Assignment

if TYPE_CHECKING:
    import pyarrow as pa

    from watchkeeper.monitor.service import MonitorService
    from watchkeeper.registry import Registry
    from watchkeeper.store.serving import RoutingChangeRecord, RoutingRecord

__all__ = ["PredictRequest", "Prediction", "Serving"]

logger = logging.getLogger("watchkeeper.serving")

_SET_WEIGHTS_ATTEMPTS: Final = 8
_SHADOW_THREADS: Final = 2


@dataclass(frozen=True, slots=True)
class PredictRequest:
    """The rows of one predict request as raw columns (values as JSON decodes them; an absent
    feature is :data:`~watchkeeper.ingest.rules.MISSING`), and each row's unit id."""

    size: int
    columns: dict[str, list[Any]]
    units: list[Any]

    @classmethod
    def from_rows(
        cls, rows: Sequence[Mapping[str, Any]], units: Sequence[Any] | None = None
    ) -> PredictRequest:
        """Rows given as ``{feature: value}`` objects."""
        names = list(dict.fromkeys(name for row in rows for name in row))
        columns = {name: [row.get(name, rules.MISSING) for row in rows] for name in names}
        return cls(len(rows), columns, list(units) if units is not None else [None] * len(rows))

    @classmethod
    def from_table(cls, table: pa.Table) -> PredictRequest:
        """An Arrow table: one column per feature, and an optional ``unit`` column."""
        from watchkeeper.ingest.arrow import column_values

        columns = {
            name: column_values(table.column(name)) for name in table.column_names if name != "unit"
        }
        units = (
            column_values(table.column("unit"))
            if "unit" in table.column_names
            else [None] * table.num_rows
        )
        return cls(table.num_rows, columns, units)


@dataclass(frozen=True, slots=True)
class Prediction:
    """One answer: the prediction id (its logged event's id), version, arm and outputs."""

    id: str
    version: int
    arm: str
    prediction: Any
    proba: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The wire form."""
        answer: dict[str, Any] = {
            "id": self.id,
            "version": self.version,
            "arm": self.arm,
            "prediction": self.prediction,
        }
        if self.proba is not None:
            answer["proba"] = self.proba
        return answer


@dataclass(frozen=True, slots=True)
class _Group:
    """The rows one arm (or the shadow) predicts in one call."""

    arm: str
    served: Served
    rows: list[int]
    frame: pd.DataFrame


class Serving:
    """Routes, predicts and logs for every model of one registry and one monitor."""

    def __init__(
        self,
        *,
        registry: Registry,
        monitor: MonitorService,
        log: PredictionLog,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
        clock: Callable[[], float] = time.time,
        on_load: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.registry = registry
        self.monitor = monitor
        self.log = log
        self.cache = PredictorCache(registry, refresh_seconds=refresh_seconds, on_load=on_load)
        self._clock = clock
        self._shadows = ThreadPoolExecutor(_SHADOW_THREADS, thread_name_prefix="watchkeeper-shadow")

    def close(self) -> None:
        """Finish the shadow predictions, then log what is queued."""
        self._shadows.shutdown(wait=True)
        self.log.close()

    # ------------------------------------------------------------------ routing

    def routing(self, model: str) -> RoutingRecord | None:
        """The routing config of ``model`` (None: it serves its ``champion`` alias)."""
        return self.registry.store.routing(check_model_name(model, key="model"))

    def set_routing(
        self,
        model: str,
        config: RoutingConfig | Mapping[str, Any] | None,
        *,
        changed_by: str,
        reason: str = "",
        expected_revision: int | None = None,
    ) -> RoutingChangeRecord:
        """Set ``model``'s routing config (None removes it: the champion serves everything).

        The next request of this process uses it; other processes see it within the cache's
        ``refresh_seconds``. ``expected_revision`` fails the change with ConflictError when the
        stored config is at another revision (0: none).
        """
        check_model_name(model, key="model")
        parsed = (
            config
            if config is None or isinstance(config, RoutingConfig)
            else RoutingConfig.from_dict(config)
        )
        change = self.registry.store.put_routing(
            model,
            None if parsed is None else parsed.to_dict(),
            changed_by=changed_by,
            reason=reason,
            expected_revision=expected_revision,
            now=self._clock(),
        )
        self.cache.forget(model)
        return change

    def set_weights(
        self, model: str, weights: Mapping[str, float], *, changed_by: str, reason: str = ""
    ) -> RoutingChangeRecord:
        """Give the arms named in ``weights`` new weights (the rollout controller's call).

        A read-modify-write of the stored config that never loses a concurrent change: it
        retries on the new revision. ConfigError names an unknown arm or a bad weight; a model
        without a routing config has only the ``champion`` arm.
        """
        for attempt in range(_SET_WEIGHTS_ATTEMPTS):
            record = self.routing(model)
            current = RoutingConfig.from_dict(record.config) if record is not None else None
            if current is None:
                raise NotFoundError(
                    f"model {model!r} has no routing config to change the weights of; set one "
                    f"first (PUT /v1/models/{model}/routing)",
                    kind="routing",
                    name=model,
                )
            try:
                return self.set_routing(
                    model,
                    current.with_weights(weights),
                    changed_by=changed_by,
                    reason=reason,
                    expected_revision=record.revision if record is not None else 0,
                )
            except ConflictError:
                if attempt == _SET_WEIGHTS_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def routing_history(self, model: str, *, limit: int = 1000) -> list[RoutingChangeRecord]:
        """Every change of ``model``'s routing, newest first."""
        return self.registry.store.routing_changes(
            check_model_name(model, key="model"), limit=limit
        )

    # ------------------------------------------------------------------ predict

    def predict(
        self, model: str, request: PredictRequest, *, arm: str | None = None
    ) -> list[Prediction]:
        """Route, check, predict and log ``request``'s rows; one :class:`Prediction` each.

        ``arm`` (the ``X-Watchkeeper-Arm`` header) chooses the arm of every row. Raises
        NotFoundError for an unknown model or version, ConflictError when the champion is
        unset or a version refuses to load, IngestError naming a row's bad feature or unit.
        """
        check_model_name(model, key="model")
        if arm is not None and isinstance(checked := rules.arm_name(arm), rules.Bad):
            raise IngestError(f"X-Watchkeeper-Arm: {checked.reason}", field="X-Watchkeeper-Arm")
        units, problems = rules.apply(rules.UNIT, list(request.units))
        if problems:
            row, reason = problems[0]
            raise IngestError(f"rows[{row}].unit: {reason}", index=row, field="unit")
        router, _, aliases = self.cache.view(model)
        if request.size == 0:
            return []
        try:
            assignments = router.assign(units, override=arm)
        except ConfigError as error:
            if error.key == "arm":
                raise NotFoundError(str(error), kind="arm", name=arm) from None
            raise
        now = self._clock()
        groups = self._groups(model, request, assignments, aliases)
        outputs: dict[int, tuple[Any, dict[str, float] | None]] = {}
        latency: dict[str, float] = {}
        for group in groups:
            started = time.perf_counter()
            predicted = _predict(model, group)
            latency[group.arm] = (time.perf_counter() - started) * 1000.0
            outputs.update(zip(group.rows, predicted, strict=True))
        ids = new_ids(request.size)
        answers = []
        by_row = {row: group for group in groups for row in group.rows}
        for row in range(request.size):
            group = by_row[row]
            prediction, proba = outputs[row]
            answers.append(Prediction(ids[row], group.served.version, group.arm, prediction, proba))
        spec = self._spec(model, groups[0].served)
        self.log.put(
            model,
            [
                _event(spec, request, row, answer, units[row], latency[answer.arm], now)
                for row, answer in enumerate(answers)
            ],
        )
        shadow_rows = [row for row, assignment in enumerate(assignments) if assignment.shadow]
        config = router.config
        if shadow_rows and config.shadow is not None:
            self._shadows.submit(
                self._shadow, model, request, shadow_rows, config.shadow.target,
                config.shadow.name, aliases, [units[row] for row in shadow_rows], now,
            )  # fmt: skip
        return answers

    def _groups(
        self,
        model: str,
        request: PredictRequest,
        assignments: Sequence[Assignment],
        aliases: dict[str, int],
    ) -> list[_Group]:
        rows_by_arm: dict[str, list[int]] = {}
        targets: dict[str, Target] = {}
        for row, assignment in enumerate(assignments):
            rows_by_arm.setdefault(assignment.arm.name, []).append(row)
            targets[assignment.arm.name] = assignment.arm.target
        groups = []
        for name, rows in rows_by_arm.items():
            served = self.cache.resolve(model, targets[name], aliases)
            groups.append(_Group(name, served, rows, _frame(served, request, rows)))
        return groups

    def _shadow(
        self,
        model: str,
        request: PredictRequest,
        rows: list[int],
        target: Target,
        name: str,
        aliases: dict[str, int],
        units: list[str | None],
        now: float,
    ) -> None:
        try:
            served = self.cache.resolve(model, target, aliases)
            group = _Group(name, served, rows, _frame(served, request, rows))
            started = time.perf_counter()
            predicted = _predict(model, group)
            elapsed = (time.perf_counter() - started) * 1000.0
        except Exception as error:  # a shadow never fails its request; its failure is said
            logger.warning("the shadow of %r failed on %d rows: %s", model, len(rows), error)
            return
        spec = self._spec(model, served)
        ids = new_ids(len(rows))
        events = [
            _event(
                spec, request, row,
                Prediction(ids[position], served.version, name, *predicted[position]),
                units[position], elapsed, now,
            )
            for position, row in enumerate(rows)
        ]  # fmt: skip
        self.log.put(model, events)

    def _spec(self, model: str, served: Served) -> ModelSpec:
        """The monitored model's spec; registered from the version's signature when the
        model is not monitored yet, so its predictions have somewhere to go."""
        try:
            return self.monitor.get_model(model)
        except NotFoundError:
            pass
        spec = ModelSpec.from_dict(
            {
                "name": model,
                "task": "classification" if served.model.is_classifier else "regression",
                "features": dict(served.record.signature.get("features", {})),
            }
        )
        try:
            return self.monitor.register_model(spec)
        except ConflictError:  # registered meanwhile by another request
            return self.monitor.get_model(model)


def _frame(served: Served, request: PredictRequest, rows: list[int]) -> pd.DataFrame:
    """The rows' features in the version's signature, checked by the ingest rules."""
    signature: Mapping[str, str] = served.record.signature.get("features", {})
    everything = len(rows) == request.size
    data: dict[str, Any] = {}
    for name, kind in signature.items():
        raw = request.columns.get(name)
        column = (
            [rules.MISSING] * len(rows)
            if raw is None
            else raw
            if everything
            else [raw[row] for row in rows]
        )
        values, problems = rules.apply(rules.feature_rule(ColumnKind(kind)), column)
        if problems:
            position, reason = problems[0]
            row = rows[position]
            raise IngestError(
                f"rows[{row}].features.{name}: {reason} (version {served.version} of "
                f"{served.record.model} expects {name!r} as {kind})",
                index=row,
                field=f"features.{name}",
            )
        data[name] = values
    columns = _columns(tuple(signature))
    if all(kind == "numeric" for kind in signature.values()):
        # One float64 block (None is NaN): a tenth of the cost of a frame built by column.
        matrix = np.array(list(data.values()), dtype=np.float64).reshape(len(data), len(rows))
        return pd.DataFrame(matrix.T, columns=columns, copy=False)
    return pd.DataFrame(data, columns=columns)


@functools.lru_cache(maxsize=256)
def _columns(names: tuple[str, ...]) -> pd.Index:
    """The column index of a signature, built once (building one costs more than the rest of
    a one-row frame)."""
    return pd.Index(names)


def _predict(model: str, group: _Group) -> list[tuple[Any, dict[str, float] | None]]:
    """Predictions (and class probabilities, when the version gives them) of one group."""
    loaded = group.served.model
    try:
        values = loaded.predict(group.frame)
        probas: list[dict[str, float] | None] = [None] * len(values)
        if loaded.is_classifier:
            try:
                classes, matrix = loaded.predict_proba(group.frame)
            except InputError as error:
                if error.column != "proba":
                    raise
            else:
                probas = [
                    dict(zip(classes, map(float, row), strict=True))
                    for row in np.asarray(matrix, dtype=np.float64)
                ]
    except Exception as error:
        raise InputError(
            f"version {group.served.version} of {model!r} failed to predict: "
            f"{type(error).__name__}: {error}"
        ) from error
    return list(zip(values, probas, strict=True))


def _event(
    spec: ModelSpec,
    request: PredictRequest,
    row: int,
    answer: Prediction,
    unit: str | None,
    latency_ms: float,
    now: float,
) -> dict[str, Any]:
    """The prediction event of one answer, with the monitored model's features."""
    features = {}
    for name in spec.features:
        column = request.columns.get(name)
        value = None if column is None else column[row]
        features[name] = None if value is rules.MISSING else value
    event: dict[str, Any] = {
        "id": answer.id,
        "timestamp": now,
        "version": str(answer.version),
        "features": features,
        "prediction": answer.prediction,
        "latency_ms": latency_ms,
        "arm": answer.arm,
    }
    if unit is not None:
        event["unit"] = unit
    if spec.proba and answer.proba:
        event["proba"] = {
            label: answer.proba[label] for label in spec.proba if label in answer.proba
        }
    return event
