"""The live alerting engine: persisted rules, evaluation and delivery over one database.

:class:`AlertingEngine` wires the library parts of :mod:`watchkeeper.alerts` into a service:

* rules are stored in the ``alert_rule`` table, so rules applied through the API, the CLI or
  a YAML file survive restarts;
* ``evaluate(now, samples, windows=...)`` runs the :class:`RuleEvaluator`: rules on window
  signals over each changed window in event time (``MonitorService.changed_windows()``, so
  labels that join a window weeks after it closed are alerted on, and a backfill gets the alert
  history it would have had), ``absent`` rules over ``samples`` on the wall clock; it hands the
  result to the :class:`Dispatcher` and flushes due groups into the SQL outbox. Without
  ``windows`` every rule reads ``samples`` (``MonitorService.latest_samples()`` dicts or
  :class:`Sample`) on the wall clock;
* ``deliver(now)`` runs the :class:`DeliveryWorker` once;
* ``start(sample_source)`` runs both in background threads until ``stop()``;
* every state change of an alert (pending, firing, resolved, inactive) is appended to the
  ``alert_history`` table, at the event time of its window (or the wall clock for ``absent``).

Rules, history, alert state, the notification log, silences and the outbox are persisted by
the store (:mod:`watchkeeper.store.alerts`, :mod:`watchkeeper.store.outbox`) in the service's
database; the store's migrations create those tables (revision ``0002``) and run on open when
the database is not at the newest revision yet. Without a routing file every alert goes to one
receiver named ``default`` that has no integrations: alerts are evaluated, recorded and listed,
but nothing is sent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from watchkeeper.alerts.config import AlertingConfig, ReceiverConfig, load_alerting_config
from watchkeeper.alerts.defaults import default_rules
from watchkeeper.alerts.dispatch import Dispatcher, GroupSnapshot
from watchkeeper.alerts.model import AlertState, Fingerprint, Sample
from watchkeeper.alerts.notifiers import Receiver
from watchkeeper.alerts.outbox import DeliveryReport, DeliveryWorker, OutboxItem, OutboxStatus
from watchkeeper.alerts.promexport import PrometheusExport, export_prometheus_rules
from watchkeeper.alerts.routing import Matcher, Route, Silence, parse_matchers
from watchkeeper.alerts.rules import (
    RuleEvaluator,
    RuleSpec,
    WindowSamples,
    check_rule_references,
)
from watchkeeper.alerts.samples import sample_from_dict, window_from_dict
from watchkeeper.alerts.state import AlertRecord
from watchkeeper.alerts.transitions import AlertTransition, EvaluationReport, state_changes
from watchkeeper.errors import ConfigError, ConflictError
from watchkeeper.store.alerts import (
    RuleRows,
    SqlAlertStateStore,
    SqlRuleStore,
    SqlSilenceStore,
    create_alerts_engine,
)
from watchkeeper.store.base import upgrade_engine
from watchkeeper.store.outbox import SqlOutbox

__all__ = [
    "DEFAULT_RECEIVER",
    "AlertTransition",
    "AlertingEngine",
    "EvaluationReport",
    "default_alerting_config",
    "sample_from_dict",
    "window_from_dict",
]

logger = logging.getLogger("watchkeeper.alerts")

DEFAULT_RECEIVER = "default"


def default_alerting_config() -> AlertingConfig:
    """Route everything to one receiver, ``default``, with no integrations (nothing is sent)."""
    return AlertingConfig(
        route=Route(receiver=DEFAULT_RECEIVER),
        receivers={
            DEFAULT_RECEIVER: ReceiverConfig(
                name=DEFAULT_RECEIVER, send_resolved=True, integrations=()
            )
        },
    )


def _references_known(spec: RuleSpec, catalog: Mapping[str, Sequence[str]]) -> bool:
    try:
        check_rule_references([spec], catalog)
    except ConfigError:
        return False
    return True


def _specs(rows: RuleRows) -> list[RuleSpec]:
    return [RuleSpec.from_dict(spec, path=f"stored rule {name!r}") for name, spec in rows]


def _merged(
    stored: Sequence[RuleSpec], incoming: Sequence[RuleSpec], *, overwrite: bool
) -> list[RuleSpec]:
    """``stored`` plus ``incoming``: a rule of a taken name replaces the stored one in its
    place when ``overwrite``, else the stored one stays; new names go at the end."""
    by_name = {spec.name: spec for spec in incoming}
    names = {spec.name for spec in stored}
    merged = [by_name[spec.name] if overwrite and spec.name in by_name else spec for spec in stored]
    return merged + [spec for spec in incoming if spec.name not in names]


class AlertingEngine:
    """Rules, alert state, routing and delivery of the watchkeeper service, on one database.

    ``db`` is an SQLAlchemy engine or URL (the service's own database, read as
    :class:`~watchkeeper.store.Store` reads it); a database not yet at the newest store
    revision is migrated on open, which creates the alerting tables. ``config`` is the routing
    file (an :class:`AlertingConfig`, a path or YAML text); without it alerts are recorded but
    not sent. ``clock`` gives the time for
    API calls and the background loops; ``evaluate`` and ``deliver`` take it explicitly.
    ``notify_horizon`` (seconds; None sends everything): alerts whose newest window ended
    longer ago than this are history (a backfill) — recorded in the alert history, not sent.

    >>> engine = AlertingEngine(db="sqlite://", clock=lambda: 0.0)
    >>> [spec.name for spec in engine.add_default_rules("credit")][:2]
    ['CreditDriftShareHigh', 'CreditFeatureDrift']
    >>> report = engine.evaluate(0.0, [{"labels": {"model": "credit", "signal": "error_rate"},
    ...                                "value": 0.2, "timestamp": 0.0}])
    >>> [(alert.rule, alert.state.value) for alert in engine.alerts()]
    [('CreditErrorRateHigh', 'pending')]
    >>> engine.close()
    """

    def __init__(
        self,
        *,
        db: sa.Engine | str,
        config: AlertingConfig | str | Path | None = None,
        clock: Callable[[], float] = time.time,
        external_url: str = "",
        resend_delay: float = 60.0,
        resolved_retention: float = 900.0,
        delivery_seed: int | None = None,
        signal_catalog: Callable[[], Mapping[str, Sequence[str]]] | None = None,
        notify_horizon: float | None = None,
    ) -> None:
        self._signal_catalog = signal_catalog
        self._notify_horizon = notify_horizon
        if isinstance(config, str | Path):
            config = load_alerting_config(config)
        self.config = config if config is not None else default_alerting_config()
        self._owns_db = isinstance(db, str)
        self.db = create_alerts_engine(db) if isinstance(db, str) else db
        self._clock = clock
        self._external_url = self.config.external_url or external_url
        self._resend_delay = resend_delay
        self._resolved_retention = resolved_retention
        try:
            upgrade_engine(self.db)
        except BaseException:
            if self._owns_db:
                self.db.dispose()
            raise
        self._rule_store = SqlRuleStore(engine=self.db)
        self._state = SqlAlertStateStore(engine=self.db)
        self._outbox = SqlOutbox(engine=self.db)
        self._silences = SqlSilenceStore(engine=self.db)
        self._receivers: dict[str, Receiver] = self.config.build_receivers()
        self._dispatcher = Dispatcher(
            route=self.config.route,
            receivers=self._receivers,
            outbox=self._outbox,
            state=self._state,
            silences=self._silences,
            inhibit_rules=self.config.inhibit_rules,
            external_url=self._external_url,
            resolve_timeout=self.config.resolve_timeout,
        )
        self._worker = DeliveryWorker(
            outbox=self._outbox, receivers=self._receivers, seed=delivery_seed
        )
        # Evaluation, rule changes and API reads share one lock: the evaluator and dispatcher
        # keep in-memory state that is not safe to touch from two threads at once.
        self._lock = threading.RLock()
        self._actions: dict[str, Callable[[AlertTransition], None]] = {}
        self._delivery_lock = threading.Lock()
        self._loaded: RuleRows = []
        self._evaluator = self._build_evaluator(self._load_rules())
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- rules -------------------------------------------------------------------------------
    #
    # The ``alert_rule`` table is the one source of truth: the CLI, another server process or
    # this one may change it. Every change reads the stored set inside its write transaction
    # and writes the result, and every read or evaluation first reloads the set when the
    # stored rows differ from the ones evaluated, so nobody's rules are lost or ignored.

    def _build_evaluator(self, specs: Sequence[RuleSpec]) -> RuleEvaluator:
        return RuleEvaluator(
            rules=specs,
            store=self._state,
            external_url=self._external_url,
            resend_delay=self._resend_delay,
            resolved_retention=self._resolved_retention,
            notify_horizon=self._notify_horizon,
        )

    def _load_rules(self) -> list[RuleSpec]:
        self._loaded = self._rule_store.load_rules()
        return _specs(self._loaded)

    def _sync_rules(self) -> None:
        """Evaluate the stored rule set from now on if another process changed it."""
        # Read under the lock: a read that overtook this process's own change would otherwise
        # bring back the rules that change replaced.
        with self._lock:
            rows = self._rule_store.load_rules()
            if rows != self._loaded:
                self._evaluator = self._build_evaluator(_specs(rows))
                self._loaded = rows

    def rules(self) -> list[RuleSpec]:
        """The rules being evaluated (the stored set), in the order they were applied."""
        self._sync_rules()
        with self._lock:
            return self._evaluator.rules

    def apply_rules(self, specs: Sequence[RuleSpec], *, replace: bool = True) -> list[RuleSpec]:
        """Store ``specs`` and evaluate them from now on; return the full rule set.

        ``replace=True`` makes ``specs`` the whole rule set (alerts of removed rules are
        reported resolved once); ``replace=False`` adds them to the stored set (whoever stored
        it), replacing rules of the same name. Pending and firing alerts of rules that stay
        keep their state. Streaming-detector state is rebuilt empty. With a ``signal_catalog``
        (model → the signals it produces), a rule naming an unknown model or a signal no
        component produces is a ``ConfigError`` listing the valid choices, and nothing is
        stored.
        """
        if self._signal_catalog is not None:
            check_rule_references(specs, self._signal_catalog())
        if replace:
            return self._change_rules(lambda stored: list(specs))
        incoming = list(specs)
        return self._change_rules(lambda stored: _merged(stored, incoming, overwrite=True))

    def _change_rules(self, change: Callable[[list[RuleSpec]], list[RuleSpec]]) -> list[RuleSpec]:
        """Write ``change(stored rules)`` as the rule set in one transaction; return it.

        A change that leaves the stored set as it is writes nothing and keeps the evaluator
        (and its streaming-detector state) unless another process changed the set.
        """
        stored: list[RuleSpec] = []
        merged: list[RuleSpec] = []

        def replacement(rows: RuleRows) -> RuleRows | None:
            stored[:] = _specs(rows)
            merged[:] = change(list(stored))
            if merged == stored:
                return None
            # Validate first (duplicate names, bad templates): an invalid set is never stored.
            # The evaluator over the alert state is built after the commit.
            RuleEvaluator(rules=merged, external_url=self._external_url)
            return [(spec.name, spec.to_dict()) for spec in merged]

        with self._lock:
            rows = self._rule_store.change_rules(replacement, now=self._clock())
            if merged != stored:
                # Read back: the rows as the database returns them are what syncs compare.
                self._evaluator = self._build_evaluator(self._load_rules())
            elif rows != self._loaded:
                self._evaluator = self._build_evaluator(stored)
                self._loaded = rows
            return self._evaluator.rules

    def add_default_rules(self, model: str, **thresholds: Any) -> list[RuleSpec]:
        """Add the default rule pack of ``model`` (see ``default_rules``); return what was added.

        Rules of the pack whose name is already taken in the stored set are left as they are,
        so re-registering a model never undoes a tuned threshold.
        """
        pack = default_rules(model, **thresholds)
        if self._signal_catalog is not None:
            # A model without features has no drift signals: its pack leaves those rules out.
            catalog = self._signal_catalog()
            pack = [spec for spec in pack if _references_known(spec, catalog)]
        added: list[RuleSpec] = []

        def with_pack(stored: list[RuleSpec]) -> list[RuleSpec]:
            taken = {spec.name for spec in stored}
            added[:] = [spec for spec in pack if spec.name not in taken]
            return _merged(stored, added, overwrite=False)

        self._change_rules(with_pack)
        return added

    def on_model_registered(self, model: str, **pack: float) -> None:
        """Hook for the model registry: give a new model the default rule pack (``pack``: its
        options, e.g. ``window_seconds``, the model's smallest window)."""
        self.add_default_rules(model, **pack)

    def on_reference_set(self, model: str, **pack: float) -> list[RuleSpec]:
        """Hook for a model's new reference data: the rules of its default pack that it lacked
        (a model registered without a reference has no drift signals, so its pack left the
        drift rules out) are added now; rules it has stay as they are."""
        return self.add_default_rules(model, **pack)

    def on_model_updated(
        self, model: str, *, previous: Mapping[str, Any], current: Mapping[str, Any]
    ) -> list[RuleSpec]:
        """Hook for a model's config update: its default pack follows the new options.

        A rule of the pack still exactly as the ``previous`` options made it (nobody tuned it)
        is replaced by the one of the ``current`` options (drift rules' ``for`` is the model's
        smallest window); a rule someone changed stays as it is; a rule of the pack missing
        from the stored set is added. Other rules, and every alert's state, are untouched.
        Returns the rules added or replaced.
        """
        before = {spec.name: spec for spec in default_rules(model, **previous)}
        pack = default_rules(model, **current)
        if self._signal_catalog is not None:
            catalog = self._signal_catalog()
            pack = [spec for spec in pack if _references_known(spec, catalog)]
        changed: list[RuleSpec] = []

        def follow(stored: list[RuleSpec]) -> list[RuleSpec]:
            now = {spec.name: spec for spec in stored}
            changed[:] = [
                spec
                for spec in pack
                if spec.name not in now or (now[spec.name] == before.get(spec.name) != spec)
            ]
            return _merged(stored, changed, overwrite=True)

        self._change_rules(follow)
        return changed

    def export_prometheus(self) -> PrometheusExport:
        """The current rules as a Prometheus rules file over watchkeeper's ``/metrics``."""
        return export_prometheus_rules(self.rules())

    # -- evaluation and delivery -------------------------------------------------------------

    def evaluate(
        self,
        now: float,
        samples: Iterable[Mapping[str, Any] | Sample],
        *,
        windows: Iterable[Mapping[str, Any] | WindowSamples] | None = None,
    ) -> EvaluationReport:
        """Evaluate the rules, route the alerts and flush due groups.

        With ``windows`` (``MonitorService.changed_windows()`` entries or
        :class:`WindowSamples`), rules on window signals are evaluated on each window in event
        time (oldest first; each transition is recorded at its window's end) and ``absent``
        rules on ``samples`` at ``now``. Without it every rule reads ``samples``
        (``MonitorService.latest_samples()`` dicts or :class:`Sample`) at ``now``.
        """
        converted = [
            sample if isinstance(sample, Sample) else sample_from_dict(sample, index=index)
            for index, sample in enumerate(samples)
        ]
        self._sync_rules()
        steps = (
            None
            if windows is None
            else sorted(
                (window_from_dict(window, index=index) for index, window in enumerate(windows)),
                key=lambda window: window.end,
            )
        )
        transitions: list[AlertTransition] = []
        with self._lock:
            for window in steps or ():
                before = self._snapshot()
                self._evaluator.evaluate_window(window)
                transitions += state_changes(
                    before, self._snapshot(), window.end, self._evaluator.observed_value
                )
            before = self._snapshot()
            alerts = self._evaluator.evaluate(now, converted, windowed=steps is not None)
            transitions += state_changes(
                before, self._snapshot(), now, self._evaluator.observed_value
            )
            self._dispatcher.put(alerts, now)
            written = self._dispatcher.tick(now)
        self._rule_store.append_history([change.to_dict() for change in transitions])
        self._act(transitions)
        return EvaluationReport(
            alerts=tuple(alerts), transitions=tuple(transitions), notifications=tuple(written)
        )

    def on_action(self, action: str, handler: Callable[[AlertTransition], None]) -> None:
        """Run ``handler`` when an alert of a rule with ``action`` starts firing (the server
        registers ``rollback``: :func:`watchkeeper.rollout.guard.champion_guard`)."""
        self._actions[action] = handler

    def _act(self, transitions: Sequence[AlertTransition]) -> None:
        """The rules' actions for the alerts that started firing; a failing action is logged
        (the alert itself is already recorded and notified)."""
        firing = [
            change
            for change in transitions
            if change.state is AlertState.FIRING and change.previous is not AlertState.FIRING
        ]
        if not firing or not self._actions:
            return
        actions = {spec.name: spec.action for spec in self.rules() if spec.action}
        for change in firing:
            handler = self._actions.get(actions.get(change.rule) or "")
            if handler is None:
                continue
            try:
                handler(change)
            except Exception:
                logger.exception("action of rule %s failed for %s", change.rule, change.labels)

    def raise_event(
        self,
        now: float,
        event: Mapping[str, Any] | Sample,
        *,
        rule: RuleSpec,
        samples: Iterable[Mapping[str, Any] | Sample] = (),
    ) -> EvaluationReport:
        """Alert on a one-off event (a rollout's rollback) through the rules, like a window.

        ``rule`` (a threshold rule on the event's signal) is added to the stored rules when
        its name is new, without the signal-catalog check: events are not window signals of a
        model. ``event`` (a sample, ``labels`` with ``model`` and ``signal``) is then
        evaluated as a window of its own ending at ``now``, and ``samples`` (the monitor's
        latest samples, as the evaluation loop passes them) keep ``absent`` rules as they are.
        The alert stays firing until a later event of the same series has a value that does
        not meet the rule.
        """
        self._change_rules(lambda stored: _merged(stored, [rule], overwrite=False))
        sample = event if isinstance(event, Sample) else sample_from_dict(event, index=0)
        window = WindowSamples(start=now - 1.0, end=now, samples=[sample])
        return self.evaluate(now, samples, windows=[window])

    def _snapshot(self) -> dict[Fingerprint, AlertRecord]:
        return {record.fingerprint: record for record in self._evaluator.alerts()}

    def deliver(self, now: float) -> DeliveryReport:
        """Deliver every due notification once (failures are retried with backoff later)."""
        with self._delivery_lock:
            return self._worker.run_once(now)

    def start(
        self,
        sample_source: Callable[[], list[dict[str, Any]]],
        *,
        window_source: Callable[[], list[dict[str, Any]]] | None = None,
        window_ack: Callable[[], object] | None = None,
        interval: float = 15.0,
        delivery_interval: float = 5.0,
    ) -> None:
        """Run evaluation every ``interval`` and delivery every ``delivery_interval`` seconds.

        Each round reads ``sample_source()`` and, when given, ``window_source()`` (the changed
        windows, evaluated in event time; see :meth:`evaluate`), and calls ``window_ack()``
        once they are evaluated (a round that fails leaves them stored, to be read again after
        a restart). Both loops run in daemon threads until :meth:`stop`; an error in one round
        is logged and the next round runs as usual.
        """
        if interval <= 0 or delivery_interval <= 0:
            raise ConfigError(
                f"interval and delivery_interval must be > 0, got {interval}, {delivery_interval}",
                key="interval",
            )
        if self._threads:
            raise ConflictError("the alerting engine is already running; call stop() first")
        self._stopping.clear()
        self._threads = [
            threading.Thread(
                target=self._loop,
                args=(
                    "evaluation",
                    interval,
                    lambda: self._evaluation_round(sample_source, window_source, window_ack),
                ),
                name="watchkeeper-alerts-evaluation",
                daemon=True,
            ),
            threading.Thread(
                target=self._loop,
                args=("delivery", delivery_interval, lambda: self.deliver(self._clock())),
                name="watchkeeper-alerts-delivery",
                daemon=True,
            ),
        ]
        for thread in self._threads:
            thread.start()

    def _evaluation_round(
        self,
        sample_source: Callable[[], list[dict[str, Any]]],
        window_source: Callable[[], list[dict[str, Any]]] | None,
        window_ack: Callable[[], object] | None,
    ) -> None:
        windows = None if window_source is None else window_source()
        self.evaluate(self._clock(), sample_source(), windows=windows)
        if window_ack is not None:
            window_ack()

    def _loop(self, name: str, interval: float, step: Callable[[], object]) -> None:
        while True:
            try:
                step()
            except Exception:
                # One bad round (a store hiccup, a malformed sample) must not end alerting.
                logger.exception("alerting %s round failed; retrying in %.0f s", name, interval)
            if self._stopping.wait(interval):
                return

    @property
    def running(self) -> bool:
        """Whether the background loops are running."""
        return bool(self._threads)

    def stop(self) -> None:
        """Stop the background loops and wait for the current round to finish."""
        self._stopping.set()
        for thread in self._threads:
            thread.join()
        self._threads = []

    def close(self) -> None:
        """Stop, close the notifiers' connections and, if it opened it, the database."""
        self.stop()
        for receiver in self._receivers.values():
            for notifier in receiver.notifiers:
                notifier.close()
        if self._owns_db:
            self.db.dispose()

    # -- reads -------------------------------------------------------------------------------

    def alerts(self, state: AlertState | str | None = None) -> list[AlertRecord]:
        """Pending, firing and recently resolved alerts, optionally of one ``state``."""
        wanted = None if state is None else AlertState(state)
        self._sync_rules()
        with self._lock:
            records = self._evaluator.alerts()
        records.sort(key=lambda record: (record.active_at, record.fingerprint))
        return [record for record in records if wanted is None or record.state is wanted]

    def muted(self) -> set[Fingerprint]:
        """Fingerprints of alerts that are silenced or inhibited right now."""
        with self._lock:
            return self._dispatcher.muted(self._clock())

    def history(self, limit: int = 100) -> list[AlertTransition]:
        """The latest ``limit`` alert state changes, newest first."""
        if limit < 1:
            raise ConfigError(f"limit: expected a positive number, got {limit}", key="limit")
        return [
            AlertTransition(
                fingerprint=row["fingerprint"],
                rule=row["rule"],
                labels=row["labels"],
                previous=AlertState(row["previous"]),
                state=AlertState(row["state"]),
                at=row["at"],
                value=row["value"],
            )
            for row in self._rule_store.history(limit)
        ]

    def notifications(
        self, *, status: OutboxStatus | str | None = None, limit: int = 1000
    ) -> list[OutboxItem]:
        """Notifications in the outbox (pending, delivered and dead), oldest first."""
        return self._outbox.items(
            status=None if status is None else OutboxStatus(status), limit=limit
        )

    def groups(self) -> list[GroupSnapshot]:
        """The dispatcher's current aggregation groups."""
        with self._lock:
            return self._dispatcher.groups()

    # -- silences ----------------------------------------------------------------------------

    def add_silence(
        self,
        *,
        matchers: Sequence[str | Matcher],
        created_by: str,
        comment: str = "",
        starts_at: float | None = None,
        ends_at: float | None = None,
        duration: float | None = None,
    ) -> Silence:
        """Mute alerts matching every matcher from ``starts_at`` (default now) for a while.

        Give exactly one of ``ends_at`` and ``duration`` (seconds).
        """
        if (ends_at is None) == (duration is None):
            raise ConfigError("a silence needs exactly one of ends_at and duration", key="ends_at")
        start = self._clock() if starts_at is None else starts_at
        end = ends_at if ends_at is not None else start + float(duration or 0.0)
        silence = Silence(
            matchers=parse_matchers(list(matchers), key="matchers"),
            starts_at=start,
            ends_at=end,
            created_by=created_by,
            comment=comment,
            updated_at=self._clock(),
        )
        return self._silences.add(silence)

    def silences(self) -> list[Silence]:
        """Every silence (pending, active and expired), oldest first."""
        return self._silences.list()

    def get_silence(self, silence_id: str) -> Silence:
        """The silence with ``silence_id``; NotFoundError if there is none."""
        return self._silences.get(silence_id)

    def expire_silence(self, silence_id: str) -> Silence:
        """End a silence now (it stays listed as expired); NotFoundError if there is none."""
        silence = self._silences.get(silence_id)
        return self._silences.update(silence.expired(self._clock()))

    def now(self) -> float:
        """The engine's clock."""
        return self._clock()
