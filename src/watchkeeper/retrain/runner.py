"""The retraining runner: starts runs on their triggers, hands them to an executor, and acts on
their outcomes.

- **Triggers.** :meth:`RetrainRunner.request` makes a queued run (manual: API and CLI);
  :meth:`RetrainRunner.on_alert` is the alerting engine's ``retrain`` action (a rule with
  ``action: retrain`` that starts firing; after ``after_detections`` of them in a row);
  :meth:`RetrainRunner.tick` starts the runs of cron ``schedule`` slots that came due. A model
  has at most one active run, and no run starts within ``min_interval`` of its last one: the
  store checks both in the transaction that creates the run.
- **Execution.** Each tick (and each new run) hands the due queued runs to the model's
  executor (:mod:`watchkeeper.retrain.executor`), claiming each by its revision, so no run is
  executed twice. An attempt that errors is retried after ``retry_backoff`` (doubling) up to
  ``max_retries`` times; a run that fails for good raises the ``RetrainFailed`` alert with
  the reason.
- **Outcome.** A registered candidate goes to a canary rollout against the champion
  (automatic mode) or waits in ``awaiting_approval`` for :meth:`RetrainRunner.approve`
  (manual mode).
- **Restart safety.** :meth:`RetrainRunner.recover` (at server start) marks the runs left
  ``running`` interrupted and queues them again, once; the pipeline's registration is
  idempotent per run, so a run interrupted after registering does not register twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from croniter import croniter

from watchkeeper.errors import ConfigError, ConflictError, NotFoundError, WatchkeeperError
from watchkeeper.retrain.config import Mode, RetrainConfig
from watchkeeper.retrain.executor import Executor, Handoff, JobResult, Resumable
from watchkeeper.retrain.runs import RetrainJob, RetrainRunRecord, RunStatus, TriggerKind
from watchkeeper.retrain.triggers import alert_trigger, append_log, describe_trigger, log_line
from watchkeeper.rollout.controller import ACTIVE_STATES
from watchkeeper.store import Store

if TYPE_CHECKING:
    from watchkeeper.alerts.transitions import AlertTransition
    from watchkeeper.registry import Registry
    from watchkeeper.retrain.alerting import FailureAlerts
    from watchkeeper.rollout.controller import RolloutController

__all__ = ["RetrainRunner"]

logger = logging.getLogger("watchkeeper.retrain")


class RetrainRunner:
    """Runs of every model with a ``retrain:`` configuration, over one store and registry.

    ``executors`` are the executors by kind (``local``, ``webhook``); ``rollouts`` starts
    the canaries (without it a passing candidate stays ``registered``); ``alerts`` gets the
    failed runs.
    """

    def __init__(
        self,
        *,
        store: Store,
        registry: Registry,
        executors: Mapping[str, Executor],
        rollouts: RolloutController | None = None,
        alerts: FailureAlerts | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._registry = registry
        self._executors = dict(executors)
        self._rollouts = rollouts
        self._alerts = alerts
        self._clock = clock
        self._lock = threading.RLock()
        self._started_at = clock()
        self._detections: dict[str, int] = {}
        self._last_slot: dict[str, float] = {}
        # Runs this runner handed to an executor: never "interrupted" by its own recover().
        self._mine: set[int] = set()

    def add_executor(self, executor: Executor) -> None:
        """Make ``executor`` the one of its kind (models name it in ``retrain.executor``)."""
        self._executors[executor.kind] = executor

    # -- configuration ---------------------------------------------------------------------

    def config(self, model: str) -> RetrainConfig:
        """``model``'s retraining configuration; :class:`ConfigError` when it has none."""
        raw = self._store.get_model(model).config.get("retrain")
        if raw is None:
            raise ConfigError(
                f"retrain: model {model!r} has no retrain section in its configuration; add "
                "one (trainer, label_delay, …: docs/retraining.md) to retrain it",
                key="retrain",
            )
        return RetrainConfig.from_dict(raw)

    # -- triggers --------------------------------------------------------------------------

    def request(
        self,
        model: str,
        trigger: Mapping[str, Any],
        *,
        by: str = "api",
        as_of: float | None = None,
    ) -> RetrainRunRecord:
        """Queue a run of ``model`` and hand it to its executor when one is free.

        ``as_of`` (default now, never later) is the time the data are assembled at.
        :class:`ConflictError` when the model has an active run or ran within its
        ``min_interval``.
        """
        config = self.config(model)
        now = self._clock()
        if as_of is not None and as_of > now:
            raise ConfigError(
                f"as_of: {as_of:.0f} is in the future (now is {now:.0f}); the labels of later "
                "predictions cannot have arrived",
                key="as_of",
            )
        fields = {
            "model": model,
            "status": RunStatus.QUEUED.value,
            "trigger": dict(trigger),
            "mode": config.mode.value,
            "executor": config.executor_kind,
            "as_of": now if as_of is None else as_of,
            "max_attempts": config.max_attempts,
            "created_by": by,
            "log": log_line(now, f"queued: {describe_trigger(trigger)} (by {by})"),
        }
        with self._lock:
            run = self._store.create_retrain_run(
                fields, min_interval=config.min_interval_seconds, now=now
            )
            self._detections.pop(model, None)
        logger.info("retraining run %s of %s queued: %s", run.id, model, describe_trigger(trigger))
        self.dispatch()
        return self._store.retrain_run(run.id)

    def on_alert(self, change: AlertTransition) -> None:
        """The ``retrain`` action: an alert of the model started firing."""
        model = change.labels.get("model", "")
        try:
            config = self.config(model)
        except WatchkeeperError as error:
            logger.warning("alert %s cannot retrain %r: %s", change.rule, model, error)
            return
        with self._lock:
            count = self._detections.get(model, 0) + 1
            self._detections[model] = count
        if count < config.after_detections:
            logger.info(
                "alert %s on %s: detection %d of the %d that start a run",
                change.rule,
                model,
                count,
                config.after_detections,
            )
            return
        trigger = alert_trigger(change, detections=count)
        try:
            self.request(model, trigger, by="alerting")
        except ConflictError as error:
            logger.info("alert %s did not start a run of %s: %s", change.rule, model, error)

    def tick(self) -> None:
        """Start the due scheduled runs, then hand due queued runs to their executors."""
        now = self._clock()
        for record in self._store.list_models():
            raw = record.config.get("retrain")
            schedule = raw.get("schedule") if isinstance(raw, Mapping) else None
            if schedule:
                self._scheduled(record.name, str(schedule), now)
        self.dispatch()

    def _scheduled(self, model: str, schedule: str, now: float) -> None:
        slot = float(croniter(schedule, now).get_prev(float))
        if model not in self._last_slot:
            previous = [
                float(run.trigger.get("slot", 0.0))
                for run in self._store.retrain_runs(model=model)
                if run.trigger.get("kind") == TriggerKind.SCHEDULE.value
            ]
            # Slots before this runner started are not caught up on, except the one a stored
            # run already took (so a restart neither repeats nor skips it).
            self._last_slot[model] = max([self._started_at, *previous])
        if slot <= self._last_slot[model]:
            return
        self._last_slot[model] = slot
        trigger = {"kind": TriggerKind.SCHEDULE.value, "schedule": schedule, "slot": slot}
        try:
            self.request(model, trigger, by="schedule")
        except WatchkeeperError as error:
            logger.info("the scheduled run of %s at %.0f did not start: %s", model, slot, error)

    # -- execution -------------------------------------------------------------------------

    def dispatch(self) -> None:
        """Hand every due queued run to its executor (each claimed once, by its revision)."""
        now = self._clock()
        for run in self._store.retrain_runs(statuses=[RunStatus.QUEUED.value]):
            if run.next_attempt_at > now:
                continue
            try:
                claimed = self._store.update_retrain_run(
                    run,
                    {
                        "status": RunStatus.RUNNING.value,
                        "attempts": run.attempts + 1,
                        "started_at": run.started_at if run.started_at is not None else now,
                        "log": append_log(
                            run.log, log_line(now, f"attempt {run.attempts + 1} started")
                        ),
                    },
                    now=now,
                )
            except ConflictError:
                continue  # another dispatcher took it
            self._mine.add(claimed.id)
            self._submit(claimed)

    def _submit(self, run: RetrainRunRecord) -> None:
        now = self._clock()
        try:
            config = self.config(run.model)
            kind = "local" if run.artifact is not None else config.executor_kind
            executor = self._executors.get(kind)
            if executor is None:
                raise ConfigError(
                    f"retrain.executor: the {kind!r} executor is not available on this server "
                    f"(available: {', '.join(sorted(self._executors)) or 'none'})",
                    key="retrain.executor",
                )
            job = RetrainJob(
                run_id=run.id,
                model=run.model,
                attempt=run.attempts,
                as_of=run.as_of,
                trigger=run.trigger,
                config=config.to_dict(),
                artifact=run.artifact,
                clock_offset=now - time.time(),
            )
            handoff = executor.submit(job, self._done)
        except Exception as error:
            self._done(JobResult(run.id, run.attempts, error=f"{type(error).__name__}: {error}"))
            return
        if handoff is Handoff.AWAITING_ARTIFACT:
            line = log_line(now, f"handed to the {kind} executor; waiting for the artifact")
            self._change(
                run.id,
                lambda current: {
                    "status": RunStatus.AWAITING_ARTIFACT.value,
                    "log": append_log(current.log, line),
                },
                expect=(RunStatus.RUNNING,),
            )

    def _done(self, result: JobResult) -> None:
        """An attempt ended (called from the executor's thread)."""
        try:
            self._finish(result)
        except Exception:
            logger.exception("recording the end of retraining run %s failed", result.run_id)

    def _finish(self, result: JobResult) -> None:
        run = self._store.retrain_run(result.run_id)
        if run.status != RunStatus.RUNNING.value or run.attempts != result.attempt:
            logger.warning(
                "retraining run %s: attempt %s ended, but the run is %s at attempt %s; ignored",
                run.id,
                result.attempt,
                run.status,
                run.attempts,
            )
            return
        now = self._clock()
        log = append_log(run.log, result.log.rstrip())
        outcome = result.outcome
        error = result.error
        if outcome is not None and outcome["status"] == RunStatus.FAILED.value:
            error = str(outcome["reason"])
        if error:
            retry = outcome is None or not error.startswith("data:")
            if retry and run.attempts < run.max_attempts:
                wait = self._backoff(run)
                line = log_line(now, f"attempt {run.attempts} failed: {error}; retry in {wait:g} s")
                self._store.update_retrain_run(
                    run,
                    {
                        "status": RunStatus.QUEUED.value,
                        "next_attempt_at": now + wait,
                        "error": error,
                        "log": append_log(log, line),
                    },
                    now=now,
                )
                return
            self._fail(run, error, log, outcome, now)
            return
        assert outcome is not None
        changes: dict[str, Any] = {
            "reason": str(outcome["reason"]),
            "gate": outcome.get("gate"),
            "data": outcome.get("data"),
            "champion_version": outcome.get("champion_version"),
            "error": "",
        }
        if outcome["status"] == RunStatus.REJECTED.value:
            line = log_line(now, f"rejected: {outcome['reason']}")
            run = self._store.update_retrain_run(
                run,
                {**changes, "status": RunStatus.REJECTED.value, "finished_at": now,
                 "log": append_log(log, line)},
                now=now,
            )  # fmt: skip
            self._resolve_failures(run, now)
            return
        version = int(outcome["version"])
        config = self.config(run.model)
        lines = [log_line(now, f"version {version} registered")]
        if config.mode is Mode.MANUAL:
            lines.append(log_line(now, "waiting for approval"))
            changes.update(status=RunStatus.AWAITING_APPROVAL.value)
        else:
            # The run stays running until its canary started: a reader never sees it end
            # registered before that.
            try:
                rollout_id = self._canary(run.model, version, outcome, config, run.id)
            except WatchkeeperError as problem:
                why = f"no canary started: {problem}"
                lines.append(log_line(now, why))
                changes.update(status=RunStatus.REGISTERED.value, finished_at=now,
                               reason=f"{changes['reason']}; {why}")  # fmt: skip
            else:
                lines.append(log_line(now, f"canary rollout {rollout_id} started"))
                changes.update(status=RunStatus.ROLLING_OUT.value, rollout_id=rollout_id,
                               finished_at=now)  # fmt: skip
        run = self._store.update_retrain_run(
            run, {**changes, "version": version, "log": append_log(log, "\n".join(lines))}, now=now
        )
        self._resolve_failures(run, now)

    def _backoff(self, run: RetrainRunRecord) -> float:
        try:
            return self.config(run.model).backoff(run.attempts)
        except WatchkeeperError:
            return 60.0

    def _fail(
        self,
        run: RetrainRunRecord,
        error: str,
        log: str,
        outcome: Mapping[str, Any] | None,
        now: float,
    ) -> None:
        line = log_line(now, f"failed after {run.attempts} attempt(s): {error}")
        changes: dict[str, Any] = {
            "status": RunStatus.FAILED.value,
            "finished_at": now,
            "error": error,
            "reason": error,
            "log": append_log(log, line),
        }
        if outcome is not None:
            changes["data"] = outcome.get("data")
            changes["champion_version"] = outcome.get("champion_version")
        failed = self._store.update_retrain_run(run, changes, now=now)
        logger.error("retraining run %s of %s failed: %s", run.id, run.model, error)
        self._resolve_failures(failed, now)
        if self._alerts is not None:
            try:
                self._alerts.failed(at=now, run=failed, reason=error)
            except Exception:
                logger.exception("alerting the failure of retraining run %s failed", run.id)

    def _resolve_failures(self, run: RetrainRunRecord, now: float) -> None:
        """Resolve the failure alert of the model's previous failed run (at most one fires)."""
        if self._alerts is None:
            return
        earlier = [
            other
            for other in self._store.retrain_runs(
                model=run.model, statuses=[RunStatus.FAILED.value]
            )
            if other.id < run.id
        ]
        if earlier:
            try:
                self._alerts.resolved(at=now, run=earlier[-1])
            except Exception:
                logger.exception("resolving the failure alert of run %s failed", earlier[-1].id)

    # -- hand-off --------------------------------------------------------------------------

    def _canary(
        self,
        model: str,
        version: int,
        outcome: Mapping[str, Any],
        config: RetrainConfig,
        run_id: int,
        *,
        by: str = "retraining",
    ) -> int:
        """Start the canary of ``version`` against the champion; its rollout id.

        A rollout of that candidate already in progress (started before a restart
        interrupted the run) is the run's; without rollouts or a champion it raises.
        """
        if self._rollouts is None:
            raise ConfigError("rollouts are not enabled on this server", key="rollouts")
        if outcome.get("champion_version") is None:
            raise NotFoundError(
                f"model {model!r} has no champion to canary against; set the alias or start a "
                "rollout by hand",
                kind="alias",
                name="champion",
            )
        for active in self._store.rollouts(model=model, states=ACTIVE_STATES):
            if active.candidate == str(version):
                return active.id
        spec = config.canary_spec(model, version)
        return self._rollouts.start(spec, by=f"retrain run {run_id} ({by})").id

    def approve(self, run_id: int, *, by: str) -> RetrainRunRecord:
        """Start the canary of a run awaiting approval; :class:`ConflictError` otherwise (or
        when the rollout cannot start: the run then stays awaiting approval)."""
        run = self._store.retrain_run(run_id)
        if run.status != RunStatus.AWAITING_APPROVAL.value:
            raise ConflictError(
                f"retraining run {run_id} is {run.status}; only a run awaiting_approval can be "
                "approved"
            )
        config = self.config(run.model)
        now = self._clock()
        assert run.version is not None
        outcome = {"champion_version": run.champion_version}
        try:
            rollout_id = self._canary(run.model, run.version, outcome, config, run.id, by=by)
        except WatchkeeperError as error:
            raise ConflictError(
                f"retraining run {run_id}: the canary of version {run.version} did not start: "
                f"{error}"
            ) from None
        line = log_line(now, f"approved by {by}; canary rollout {rollout_id} started")
        return self._change(
            run.id,
            lambda current: {
                "status": RunStatus.ROLLING_OUT.value,
                "rollout_id": rollout_id,
                "finished_at": now,
                "log": append_log(current.log, line),
            },
            expect=(RunStatus.AWAITING_APPROVAL,),
        )

    def receive_artifact(
        self, run_id: int, data: bytes, *, flavor: str, trusted: bool, by: str
    ) -> RetrainRunRecord:
        """The candidate an orchestrator trained for a run awaiting it: stored, then gated
        and registered by the local executor."""
        run = self._store.retrain_run(run_id)
        if run.status != RunStatus.AWAITING_ARTIFACT.value:
            raise ConflictError(
                f"retraining run {run_id} is {run.status}; only a run awaiting_artifact takes "
                "an artifact"
            )
        digest = self._registry.artifacts.put(data)
        now = self._clock()
        artifact = {"sha256": digest, "flavor": flavor, "trusted": trusted, "bytes": len(data)}
        line = log_line(now, f"artifact received from {by} ({flavor}, {len(data)} bytes)")
        queued = self._change(
            run.id,
            lambda current: {
                "status": RunStatus.QUEUED.value,
                "artifact": artifact,
                "next_attempt_at": now,
                "log": append_log(current.log, line),
            },
            expect=(RunStatus.AWAITING_ARTIFACT,),
        )
        self.dispatch()
        return self._store.retrain_run(queued.id)

    # -- restarts --------------------------------------------------------------------------

    def recover(self) -> list[RetrainRunRecord]:
        """At start: runs left ``running`` are interrupted; each is queued again once. Runs
        handed to an orchestrator are taken up again by their executor (its deadline)."""
        now = self._clock()
        changed = []
        for executor in self._executors.values():
            if isinstance(executor, Resumable):
                executor.resume(self._done)
        for run in self._store.retrain_runs(statuses=[RunStatus.RUNNING.value]):
            if run.id in self._mine:
                continue
            interrupted = self._store.update_retrain_run(
                run,
                {
                    "status": RunStatus.INTERRUPTED.value,
                    "interruptions": run.interruptions + 1,
                    "log": append_log(
                        run.log,
                        log_line(now, f"interrupted at attempt {run.attempts} by a restart"),
                    ),
                },
                now=now,
            )
            if interrupted.interruptions > 1:
                changed.append(
                    self._store.update_retrain_run(
                        interrupted,
                        {
                            "finished_at": now,
                            "error": "interrupted by a restart twice; not retried again",
                            "reason": "interrupted by a restart twice",
                        },
                        now=now,
                    )
                )
                continue
            changed.append(
                self._store.update_retrain_run(
                    interrupted,
                    {
                        "status": RunStatus.QUEUED.value,
                        "next_attempt_at": now,
                        # The retry is the interrupted attempt again, not one of max_retries.
                        "attempts": interrupted.attempts - 1,
                        "log": append_log(interrupted.log, log_line(now, "queued again (once)")),
                    },
                    now=now,
                )
            )
        return changed

    def close(self) -> None:
        """Stop the executors (a run in progress is found interrupted at the next start)."""
        for executor in self._executors.values():
            try:
                executor.close()
            except Exception:
                logger.exception("closing the %s executor failed", executor.kind)

    # -- helpers ---------------------------------------------------------------------------

    def _change(
        self,
        run_id: int,
        changes: Callable[[RetrainRunRecord], Mapping[str, Any]],
        *,
        expect: Iterable[RunStatus],
    ) -> RetrainRunRecord:
        """Apply ``changes`` to the run as stored now, when it is in one of ``expect``."""
        allowed = {status.value for status in expect}
        for _ in range(5):
            current = self._store.retrain_run(run_id)
            if current.status not in allowed:
                raise ConflictError(
                    f"retraining run {run_id} is {current.status}, not "
                    f"{' or '.join(sorted(allowed))}"
                )
            try:
                return self._store.update_retrain_run(current, changes(current))
            except ConflictError:
                continue
        raise ConflictError(f"retraining run {run_id} keeps changing; try again")
