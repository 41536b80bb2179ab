"""The rollout controller: moves traffic step by step, judges the candidate, promotes or aborts.

Each :meth:`RolloutController.tick` (the server calls it every few seconds; tests call it in
simulated time) takes every progressing rollout as far as it can go now:

- ``set_weight`` sends that share to the candidate and starts a new analysis period (arms are
  compared only on traffic at one split);
- an analysis look is due every ``interval`` after ``initial_delay``: the sample-ratio check
  first (a mismatch pauses the rollout: no verdict on broken assignment), then one
  :func:`~watchkeeper.stats.decision.decide` per metric on the arms' summaries of its recent
  range (``lookback``, widened while too thin; always-valid p-values, the metric's previous
  verdict kept while the range starts where it did); a look with a failing metric counts one
  failure, and more than ``failure_limit`` aborts;
- ``pause`` waits its duration (looks go on), or pauses until promoted by hand;
- ``analysis`` waits until every metric succeeds; after ``count`` looks without that, the
  inconclusive policy pauses, continues or aborts;
- after the last step the candidate gets all traffic (promoted).

Abort puts all traffic on the baseline first, then records the ``aborted`` event with the
reason and the measurements (``watchkeeper_rollbacks_total{model}`` counts these events in the
store, whichever process aborted) and raises the rollback alert. Every state change is written
with its measurements and events in one transaction (:mod:`watchkeeper.store.rollouts`), so a
restarted controller resumes exactly where the last tick left: no step repeated, no measurement
lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Any, Protocol

from watchkeeper.errors import ConfigError, ConflictError
from watchkeeper.rollout.alerting import RollbackAlerts
from watchkeeper.rollout.analysis import Finding, look, period_state
from watchkeeper.rollout.metrics import WindowSource
from watchkeeper.rollout.spec import (
    AnalysisStep,
    PauseStep,
    Policy,
    RolloutSpec,
    SetWeightStep,
    describe_duration,
    parse_spec,
)
from watchkeeper.rollout.traffic import TrafficControl
from watchkeeper.stats.decision import Outcome
from watchkeeper.store import Store
from watchkeeper.store.rollouts import NewRolloutEvent, NewRolloutMeasurement, RolloutRecord

__all__ = ["ACTIVE_STATES", "Monitor", "RolloutController", "RolloutState"]

_log = logging.getLogger(__name__)


class RolloutState(StrEnum):
    """Where a rollout is."""

    PROGRESSING = "progressing"
    PAUSED = "paused"
    PROMOTED = "promoted"
    ABORTED = "aborted"


ACTIVE_STATES = (RolloutState.PROGRESSING.value, RolloutState.PAUSED.value)


class Monitor(WindowSource, Protocol):
    """What the controller reads from the monitor: windows per version and signal names."""

    def signal_names(self, model: str) -> list[str]: ...


VersionResolver = Callable[[str, str], str]


class RolloutController:
    """Rollouts over one store, one monitor and one traffic control.

    ``resolve(model, ref)`` turns a spec's version (number or alias) into the version the
    monitor and the router know (default: registry aliases of the store to their number,
    anything else as given). ``alerts`` receives rollbacks.
    """

    def __init__(
        self,
        *,
        store: Store,
        monitor: Monitor,
        traffic: TrafficControl,
        clock: Callable[[], float] = time.time,
        alerts: RollbackAlerts | None = None,
        resolve: VersionResolver | None = None,
    ) -> None:
        self._store = store
        self._monitor = monitor
        self._traffic = traffic
        self._clock = clock
        self._alerts = alerts
        self._resolve = resolve or self._registry_version
        self._lock = threading.RLock()

    # -- commands --------------------------------------------------------------------------

    def start(self, spec: RolloutSpec | Mapping[str, Any], *, by: str = "api") -> RolloutRecord:
        """Start a rollout: all traffic on the baseline, then its first steps at once."""
        parsed = spec if isinstance(spec, RolloutSpec) else parse_spec(spec)
        model = parsed.model
        baseline = self._resolve(model, parsed.baseline)
        candidate = self._resolve(model, parsed.candidate)
        if baseline == candidate:
            raise ConfigError(
                f"candidate: {parsed.candidate!r} is version {candidate}, the baseline's",
                key="candidate",
            )
        known = set(self._monitor.signal_names(model))
        for index, metric in enumerate(parsed.analysis.metrics):
            if metric.signal not in known:
                raise ConfigError(
                    f"analysis.metrics[{index}].signal: model {model!r} has no signal "
                    f"{metric.signal!r} (GET /v1/models/{model}/signals lists them)",
                    key=f"analysis.metrics[{index}].signal",
                )
        with self._lock:
            active = self._store.rollouts(model=model, states=ACTIVE_STATES)
            if active:
                raise ConflictError(
                    f"model {model!r} already has rollout {active[0].id} "
                    f"({active[0].state}); promote or abort it first"
                )
            now = self._clock()
            weights = {baseline: 100, candidate: 0}
            self._traffic.set_split(model, weights)
            fields = {
                "model": model,
                "baseline": baseline,
                "candidate": candidate,
                "spec": parsed.to_dict(),
                "state": RolloutState.PROGRESSING.value,
                "step_index": 0,
                "step_started_at": now,
                "analysis_since": now,
                "looks": 0,
                "next_analysis_at": None,
                "weights": weights,
                "failures": 0,
                "reason": "",
                "created_by": by,
            }
            started = NewRolloutEvent(
                now,
                "started",
                f"version {candidate} against {baseline}",
                {"by": by, "spec": parsed.to_dict(), "weights": weights},
            )
            record = self._store.create_rollout(fields, started, now=now)
            if self._alerts is not None:
                self._alert(lambda a: a.cleared(at=now, model=model, candidate=candidate))
            return self._advance(record, now)

    def tick(self) -> list[RolloutRecord]:
        """Take every progressing rollout as far as it can go now; returns them as left."""
        done: list[RolloutRecord] = []
        for record in self._store.rollouts(states=[RolloutState.PROGRESSING.value]):
            with self._lock:
                try:
                    current = self._store.rollout(record.id)
                    done.append(self._advance(current, self._clock()))
                except ConflictError:
                    continue  # a manual command changed it meanwhile; the next tick goes on
                except Exception:
                    # One broken rollout (its model deleted, the store down) must not stall
                    # the others; it is retried on the next tick.
                    _log.exception("rollout %s: tick failed", record.id)
        return done

    def promote(self, rollout_id: int, *, full: bool = False, by: str = "api") -> RolloutRecord:
        """Skip the current step (a pause or an analysis), or with ``full`` go to 100 % now."""
        with self._lock:
            record = self._active(rollout_id, "promote")
            now = self._clock()
            if full:
                return self._finish(record, now, f"promoted fully by {by}")
            spec = parse_spec(record.spec)
            step = record.step_index
            event = self._event(now, "step_promoted", f"step {step + 1} skipped by {by}", by=by)
            record = self._store.update_rollout(
                record,
                {
                    "state": RolloutState.PROGRESSING.value,
                    "step_index": min(step + 1, len(spec.steps)),
                    "step_started_at": now,
                    "looks": 0,
                    "reason": "",
                },
                events=[event],
                now=now,
            )
            return self._advance(record, now)

    def pause(self, rollout_id: int, *, by: str = "api", reason: str = "") -> RolloutRecord:
        """Hold the rollout where it is (traffic stays; no looks) until resumed."""
        with self._lock:
            record = self._active(rollout_id, "pause")
            if record.state == RolloutState.PAUSED:
                return record
            why = reason or f"paused by {by}"
            return self._set_paused(record, self._clock(), why, by=by)

    def resume(self, rollout_id: int, *, by: str = "api") -> RolloutRecord:
        """Continue a paused rollout; the analysis starts over on traffic from now on.

        Data from before the pause may be what paused it (a sample-ratio mismatch, no data), so
        the arms are compared afresh; a ``pause: {}`` step is passed (as promote does).
        """
        with self._lock:
            record = self._active(rollout_id, "resume")
            if record.state != RolloutState.PAUSED:
                raise ConflictError(f"rollout {rollout_id} is {record.state}, not paused")
            spec = parse_spec(record.spec)
            now = self._clock()
            step = record.step_index
            waiting = step < len(spec.steps) and spec.steps[step] == PauseStep(None)
            record = self._store.update_rollout(
                record,
                {
                    "state": RolloutState.PROGRESSING.value,
                    "step_index": step + 1 if waiting else step,
                    "step_started_at": now,
                    "analysis_since": now,
                    "looks": 0,
                    "next_analysis_at": self._first_look(spec, record.weights, record, now),
                    "reason": "",
                },
                events=[self._event(now, "resumed", f"resumed by {by}", by=by)],
                now=now,
            )
            return self._advance(record, now)

    def abort(self, rollout_id: int, *, by: str = "api", reason: str = "") -> RolloutRecord:
        """Put all traffic back on the baseline and end the rollout."""
        with self._lock:
            record = self._active(rollout_id, "abort")
            return self._abort(record, self._clock(), reason or f"aborted by {by}", by=by)

    def status(self, rollout_id: int) -> dict[str, Any]:
        """The rollout with its steps, history and every measurement (JSON-ready)."""
        record = self._store.rollout(rollout_id)
        return {
            **describe(record),
            "events": [
                {"at": e.at, "kind": e.kind, "reason": e.reason, "details": dict(e.details)}
                for e in self._store.rollout_events(rollout_id)
            ],
            "measurements": [
                {
                    "at": m.at,
                    "step": m.step_index,
                    "metric": m.metric,
                    "outcome": m.outcome,
                    "values": dict(m.values),
                }
                for m in self._store.rollout_measurements(rollout_id)
            ],
        }

    # -- the state machine -----------------------------------------------------------------

    def _advance(self, record: RolloutRecord, now: float) -> RolloutRecord:
        """Take ``record`` through every step that can complete at ``now``."""
        spec = parse_spec(record.spec)
        # Each pass either completes a step or returns, so this bounds the loop.
        for _ in range(len(spec.steps) + 1):
            if record.state != RolloutState.PROGRESSING:
                return record
            index = record.step_index
            if index >= len(spec.steps):
                return self._finish(record, now, "every step completed")
            step = spec.steps[index]
            if isinstance(step, SetWeightStep):
                record = self._set_weight(record, spec, step.weight, now)
                continue
            verdict: Outcome | None = None
            due = record.next_analysis_at
            if due is not None and now >= due:
                record, verdict = self._look(record, spec, now)
                if record.state != RolloutState.PROGRESSING:
                    return record
            if isinstance(step, PauseStep):
                if step.duration is None:
                    return self._set_paused(record, now, f"step {index + 1}: paused until promoted")
                if now < record.step_started_at + step.duration:
                    return record
                record = self._next_step(record, now, f"paused {describe_duration(step.duration)}")
                continue
            if not isinstance(step, AnalysisStep) or verdict is None:
                return record
            if verdict is Outcome.SUCCESS:
                record = self._next_step(record, now, "every metric succeeded")
                continue
            if record.looks < step.count:
                return record
            policy = spec.analysis.inconclusive
            why = f"step {index + 1}: analysis inconclusive after {record.looks} looks"
            if policy is Policy.ABORT:
                return self._abort(record, now, why)
            if policy is Policy.PAUSE:
                return self._set_paused(record, now, f"{why}; promote, resume or abort")
            record = self._next_step(record, now, f"{why}; continuing (policy continue)")
        return record

    def _set_weight(
        self, record: RolloutRecord, spec: RolloutSpec, weight: int, now: float
    ) -> RolloutRecord:
        weights = {record.baseline: 100 - weight, record.candidate: weight}
        self._traffic.set_split(record.model, weights)
        event = self._event(
            now,
            "weight_set",
            f"step {record.step_index + 1}: {weight} % of traffic on {record.candidate}",
            weights=weights,
        )
        return self._store.update_rollout(
            record,
            {
                "step_index": record.step_index + 1,
                "step_started_at": now,
                "analysis_since": now,
                "looks": 0,
                "next_analysis_at": self._first_look(spec, weights, record, now),
                "weights": weights,
            },
            events=[event],
            now=now,
        )

    @staticmethod
    def _first_look(
        spec: RolloutSpec, weights: Mapping[str, int], record: RolloutRecord, now: float
    ) -> float | None:
        if not spec.analysis.metrics or not weights.get(record.candidate):
            return None
        return now + spec.analysis.initial_delay + spec.analysis.interval

    def _next_step(self, record: RolloutRecord, now: float, why: str) -> RolloutRecord:
        event = self._event(now, "step_completed", f"step {record.step_index + 1}: {why}")
        return self._store.update_rollout(
            record,
            {"step_index": record.step_index + 1, "step_started_at": now, "looks": 0},
            events=[event],
            now=now,
        )

    def _look(
        self, record: RolloutRecord, spec: RolloutSpec, now: float
    ) -> tuple[RolloutRecord, Outcome | None]:
        """One analysis look (:func:`~watchkeeper.rollout.analysis.look`), acted on."""
        analysis = spec.analysis
        stored = self._store.rollout_measurements(record.id, since=record.analysis_since)
        previous, srm_looks = period_state(spec, stored)
        found = look(self._monitor, record, spec, now, previous=previous, srm_looks=srm_looks)
        changes: dict[str, Any] = {
            "looks": record.looks + 1,
            "next_analysis_at": now + analysis.interval,
        }
        measurements = found.measurements
        if found.finding is Finding.NO_DATA:
            why = f"{found.reason} (policy {analysis.no_data.value})"
            return self._on_policy(record, analysis.no_data, now, why, changes, measurements)
        if found.finding is Finding.MISMATCH:
            changes |= {"state": RolloutState.PAUSED.value, "reason": found.reason}
            event = self._event(
                now, "paused", found.reason, measurements=[m.values for m in measurements]
            )
            return self._store.update_rollout(
                record, changes, measurements=measurements, events=[event], now=now
            ), None
        if found.verdict is Outcome.FAILURE:
            failures = record.failures + 1
            changes["failures"] = failures
            why = f"failure {failures} of at most {analysis.failure_limit}: {found.reason}"
            if failures > analysis.failure_limit:
                return self._abort(record, now, why, changes, measurements), Outcome.FAILURE
            event = self._event(now, "analysis_failed", why)
            record = self._store.update_rollout(
                record, changes, measurements=measurements, events=[event], now=now
            )
            return record, Outcome.FAILURE
        record = self._store.update_rollout(record, changes, measurements=measurements, now=now)
        return record, found.verdict

    def _on_policy(
        self,
        record: RolloutRecord,
        policy: Policy,
        now: float,
        why: str,
        changes: dict[str, Any],
        measurements: Sequence[NewRolloutMeasurement],
    ) -> tuple[RolloutRecord, Outcome | None]:
        if policy is Policy.ABORT:
            return self._abort(record, now, why, changes, measurements), None
        if policy is Policy.PAUSE:
            changes = {**changes, "state": RolloutState.PAUSED.value, "reason": why}
            event = self._event(now, "paused", why)
            return self._store.update_rollout(
                record, changes, measurements=measurements, events=[event], now=now
            ), None
        record = self._store.update_rollout(record, changes, measurements=measurements, now=now)
        return record, Outcome.INCONCLUSIVE

    def _finish(self, record: RolloutRecord, now: float, why: str) -> RolloutRecord:
        """All traffic to the candidate; a baseline given as a registry alias (``champion``)
        moves to the candidate, so whatever serves that alias serves the promoted version."""
        weights = {record.baseline: 0, record.candidate: 100}
        self._traffic.set_split(record.model, weights)
        details: dict[str, Any] = {"weights": weights}
        alias = str(record.spec["baseline"])
        aliases = {found.alias for found in self._store.aliases(record.model)}
        if alias in aliases and record.candidate.isdigit():
            # Idempotent: a restart between this move and the record's update moves nothing.
            self._store.move_alias(
                record.model,
                alias,
                int(record.candidate),
                moved_by="rollout",
                reason=f"rollout {record.id} promoted version {record.candidate}",
                now=now,
            )
            details["alias"] = {alias: int(record.candidate)}
        return self._store.update_rollout(
            record,
            {
                "state": RolloutState.PROMOTED.value,
                "weights": weights,
                "next_analysis_at": None,
                "reason": why,
            },
            events=[self._event(now, "promoted", why, **details)],
            now=now,
        )

    def _abort(
        self,
        record: RolloutRecord,
        now: float,
        why: str,
        changes: Mapping[str, Any] | None = None,
        measurements: Sequence[NewRolloutMeasurement] = (),
        *,
        by: str = "controller",
    ) -> RolloutRecord:
        """Traffic back on the baseline first; then the record (its ``aborted`` event is what
        ``watchkeeper_rollbacks_total`` counts) and the alert."""
        weights = {record.baseline: 100, record.candidate: 0}
        self._traffic.set_split(record.model, weights)
        event = self._event(
            now,
            "aborted",
            why,
            by=by,
            weights=weights,
            measurements=[{"metric": m.metric, **m.values} for m in measurements],
        )
        record = self._store.update_rollout(
            record,
            {
                **(changes or {}),
                "state": RolloutState.ABORTED.value,
                "weights": weights,
                "next_analysis_at": None,
                "reason": why,
            },
            measurements=measurements,
            events=[event],
            now=now,
        )
        model, candidate = record.model, record.candidate
        self._alert(lambda a: a.rollback(at=now, model=model, candidate=candidate, reason=why))
        _log.warning("rollout %s of %s rolled back: %s", record.id, record.model, why)
        return record

    def _set_paused(
        self, record: RolloutRecord, now: float, why: str, *, by: str = "controller"
    ) -> RolloutRecord:
        return self._store.update_rollout(
            record,
            {"state": RolloutState.PAUSED.value, "reason": why},
            events=[self._event(now, "paused", why, by=by)],
            now=now,
        )

    def _active(self, rollout_id: int, action: str) -> RolloutRecord:
        record = self._store.rollout(rollout_id)
        if record.state not in ACTIVE_STATES:
            raise ConflictError(f"cannot {action} rollout {rollout_id}: it is {record.state}")
        return record

    def _alert(self, send: Callable[[RollbackAlerts], None]) -> None:
        if self._alerts is None:
            return
        try:
            send(self._alerts)
        except Exception:
            # The rollback itself is done and recorded; a failing alert path must not undo it.
            _log.exception("rollout alert could not be raised")

    @staticmethod
    def _event(now: float, kind: str, reason: str, **details: Any) -> NewRolloutEvent:
        return NewRolloutEvent(now, kind, reason, details)

    def _registry_version(self, model: str, ref: str) -> str:
        """A registry alias of ``model`` → its version number; anything else as given."""
        if ref.isdigit():
            return ref
        for alias in self._store.aliases(model):
            if alias.alias == ref:
                return str(alias.version)
        return ref


def describe(record: RolloutRecord) -> dict[str, Any]:
    """The JSON form of a rollout's state."""
    spec = parse_spec(record.spec)
    step = record.step_index
    return {
        "id": record.id,
        "model": record.model,
        "baseline": record.baseline,
        "candidate": record.candidate,
        "state": record.state,
        "reason": record.reason,
        "step": step,
        "steps": len(spec.steps),
        "current_step": spec.steps[step].to_dict() if step < len(spec.steps) else None,
        "weights": dict(record.weights),
        "failures": record.failures,
        "next_analysis_at": record.next_analysis_at,
        "spec": dict(record.spec),
        "created_by": record.created_by,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }
