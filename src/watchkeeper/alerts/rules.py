"""Alert rules and their evaluation: ``inactive → pending → firing → resolved``.

A :class:`RuleSpec` (``rulespec.py``, with its conditions in ``conditions.py``) is a frozen,
serialisable description (stored, sent over the API, loaded from YAML); ``spec.build()``
returns the live :class:`Rule`. :class:`RuleEvaluator` applies
rules to the latest signal samples with the state machine of Prometheus alerting rules
(https://prometheus.io/docs/prometheus/latest/configuration/alerting_rules/):

* a series whose condition holds starts a **pending** alert (``active_at`` = now);
* it turns **firing** once the condition has held for ``for`` (immediately when ``for`` is 0);
  if the condition goes false while pending, the alert is dropped (back to inactive);
* a firing alert whose condition goes false stays firing for ``keep_firing_for`` (so a
  flapping signal pages once), then turns **resolved** and is reported resolved once;
* resolved alerts are kept for ``resolved_retention`` (15 min) and then forgotten; a new
  activation starts a fresh pending alert.

NaN samples never satisfy a threshold; a missing signal is caught by an ``absent`` rule.

Signals of windows can also be evaluated **per window in event time**
(:meth:`RuleEvaluator.evaluate_window`): each window is one step at its end, so ``for`` and
``keep_firing_for`` are event time (``for: 30m`` on hourly windows: two bad windows in a row,
pending at the first one's end, firing at the second's), and a window with no usable value for a
series (no value,
NaN, fewer labels than the rule's ``min_labels``) leaves that series' alert as it is — neither a
pass nor a fail. A window older than the newest one already evaluated for a series does not
rewind its alert. Absence (``absent`` rules), resending and retention stay on the wall clock of
:meth:`RuleEvaluator.evaluate`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from watchkeeper.alerts.conditions import (
    ABSENT_SIGNAL,
    LABELED_COUNT_SIGNAL,
    LAST_EVENT_SIGNAL,
    AbsentCondition,
    Condition,
    DetectorCondition,
    Op,
    ThresholdCondition,
)
from watchkeeper.alerts.model import Alert, AlertState, Fingerprint, Sample, fingerprint
from watchkeeper.alerts.rulespec import Rule, RuleSpec, check_rule_references
from watchkeeper.alerts.samples import WindowSamples
from watchkeeper.alerts.state import AlertRecord, AlertStateStore, InMemoryAlertStateStore
from watchkeeper.errors import ConfigError, WatchkeeperError

if TYPE_CHECKING:
    from watchkeeper.detectors import Detector

# Specs, conditions, built rules and window samples live in rulespec.py, conditions.py and
# samples.py; they are re-exported here, where callers have always imported them.
__all__ = [
    "AbsentCondition",
    "Condition",
    "DetectorCondition",
    "Op",
    "Rule",
    "RuleEvaluator",
    "RuleSpec",
    "ThresholdCondition",
    "WindowSamples",
    "check_rule_references",
]


_SeriesKey = tuple[str, str, str, float]


def _series_key(sample: Sample) -> _SeriesKey:
    """Model, version, segment and time of a sample: what its labelled count is looked up by."""
    labels = sample.labels
    return (
        labels.get("model", ""),
        labels.get("version", ""),
        labels.get("segment", ""),
        sample.timestamp,
    )


@dataclass(slots=True)
class _Index:
    by_signal: dict[str, list[Sample]]
    by_model: dict[str, dict[str, list[Sample]]]
    labeled: dict[_SeriesKey, float]


def _index(samples: Iterable[Sample]) -> _Index:
    by_signal: dict[str, list[Sample]] = {}
    by_model: dict[str, dict[str, list[Sample]]] = {}
    labeled: dict[_SeriesKey, float] = {}
    for sample in samples:
        signal = sample.labels.get("signal", "")
        by_signal.setdefault(signal, []).append(sample)
        by_model.setdefault(sample.labels.get("model", ""), {}).setdefault(signal, []).append(
            sample
        )
        if signal == LABELED_COUNT_SIGNAL:
            labeled[_series_key(sample)] = sample.value
    return _Index(by_signal=by_signal, by_model=by_model, labeled=labeled)


def _enough_labels(rule: Rule, sample: Sample, index: _Index) -> bool:
    """Whether ``sample``'s window has the labels ``rule`` needs (no minimum: always)."""
    minimum = rule.spec.min_labels
    if minimum is None:
        return True
    count = index.labeled.get(_series_key(sample), math.nan)
    return count >= minimum


class RuleEvaluator:
    """Evaluates rules over the latest samples and keeps alert state in an AlertStateStore.

    ``evaluate(now, samples)`` returns the alerts to hand to the dispatcher: firing alerts
    not reported within ``resend_delay`` and alerts resolved since they were last reported.
    A new evaluator (e.g. after a restart) reloads the store and reports every firing and
    retained resolved alert once more, so a fresh dispatcher sees them; the dispatcher's
    notification log keeps that from paging twice.

    ``notify_horizon`` (seconds, None: no horizon): an alert whose latest window ended longer
    than this before the wall clock is history (a backfill) — its transitions are recorded but
    it is not handed to the dispatcher.
    """

    def __init__(
        self,
        *,
        rules: Sequence[RuleSpec],
        store: AlertStateStore | None = None,
        external_url: str = "",
        resend_delay: float = 60.0,
        resolved_retention: float = 900.0,
        notify_horizon: float | None = None,
    ) -> None:
        names = [spec.name for spec in rules]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ConfigError(f"rule names must be unique; repeated: {duplicates}", key="rules")
        if resend_delay < 0 or resolved_retention < 0:
            raise ConfigError("resend_delay and resolved_retention must be ≥ 0")
        if notify_horizon is not None and not notify_horizon > 0:
            raise ConfigError(
                f"notify_horizon: expected a positive number of seconds or None, got "
                f"{notify_horizon!r}",
                key="notify_horizon",
            )
        self._notify_horizon = notify_horizon
        self._rules = [spec.build(external_url=external_url) for spec in rules]
        self._store: AlertStateStore = store if store is not None else InMemoryAlertStateStore()
        self._resend_delay = resend_delay
        self._retention = resolved_retention
        self._records: dict[str, dict[Fingerprint, AlertRecord]] = {
            rule.spec.name: {} for rule in self._rules
        }
        self._orphans: dict[Fingerprint, AlertRecord] = {}
        self._detectors: dict[tuple[str, Fingerprint], tuple[Detector, float]] = {}
        self._seen_models: set[str] = set()
        # Value of every series in the latest evaluation, condition met or not: the value
        # that ends a pending or firing state is recorded with that change.
        self._observed: dict[Fingerprint, float] = {}
        # Per rule and series: the end of the newest window evaluated in event time.
        self._cursor: dict[tuple[str, Fingerprint], float] = {}
        # Per series with an alert: the end of its newest window with a usable value (for
        # notify_horizon); forgotten with the alert.
        self._event_time: dict[Fingerprint, float] = {}
        self._generator_urls = {rule.spec.name: rule.generator_url for rule in self._rules}
        for record in self._store.load_alerts():
            # Report everything once more after a restart: the dispatcher starts empty.
            record = record.evolve(last_sent=None)
            self._seen_models.add(record.labels.get("model", ""))
            bucket = self._records.get(record.rule)
            if bucket is None:
                self._orphans[record.fingerprint] = record
            else:
                bucket[record.fingerprint] = record
                # The newest moment the alert's state moved at: windows older than it do not
                # rewind the alert after a restart or a rule change either.
                moments = (
                    record.active_at,
                    record.fired_at,
                    record.resolved_at,
                    record.keep_firing_since,
                )
                self._cursor[record.rule, record.fingerprint] = max(
                    moment for moment in moments if moment is not None
                )

    @property
    def rules(self) -> list[RuleSpec]:
        """The specs being evaluated."""
        return [rule.spec for rule in self._rules]

    def alerts(self) -> list[AlertRecord]:
        """Every pending, firing and retained resolved alert."""
        return [record for bucket in self._records.values() for record in bucket.values()]

    def observed_value(self, fp: Fingerprint) -> float | None:
        """The series' value in the latest evaluation (None when it had no usable sample)."""
        value = self._observed.get(fp)
        return None if value is None or math.isnan(value) else value

    def evaluate(
        self, now: float, samples: Iterable[Sample], *, windowed: bool = False
    ) -> list[Alert]:
        """Advance every rule to ``now`` and return the alerts to send to the dispatcher.

        ``windowed=True``: rules on window signals are evaluated per window by
        :meth:`evaluate_window` instead, so here only ``absent`` rules read ``samples``; the
        others just forget resolved alerts past retention.
        """
        index = _index(samples)
        self._seen_models.update(index.by_model)
        self._observed = {}
        changed: list[AlertRecord] = []
        deleted: list[Fingerprint] = []
        outgoing: list[Alert] = []
        for rule in self._rules:
            if windowed and not isinstance(rule.spec.condition, AbsentCondition):
                self._expire_resolved(rule, now, deleted)
                continue
            if isinstance(rule.spec.condition, AbsentCondition):
                active = self._absent_series(rule, rule.spec.condition, index, now)
                self._advance(rule, active, now, changed, deleted)
                continue
            active, _, unusable = self._judge(rule, index)
            self._advance(rule, active, now, changed, deleted, skip=unusable)
        self._retire_orphans(now, outgoing, deleted)
        for bucket in self._records.values():
            for record in bucket.values():
                if self._needs_sending(record, now):
                    record = record.evolve(last_sent=now)
                    bucket[record.fingerprint] = record
                    changed.append(record)
                    if not self._is_history(record.fingerprint, now):
                        outgoing.append(self._to_alert(record, now))
        self._save(changed, deleted)
        return outgoing

    def evaluate_window(self, window: WindowSamples) -> None:
        """Advance the rules on window signals by one window, in event time (see the module
        docstring); ``absent`` rules are left to :meth:`evaluate`, which also sends."""
        index = _index(window.samples)
        self._seen_models.update(index.by_model)
        self._observed = {}
        changed: list[AlertRecord] = []
        deleted: list[Fingerprint] = []
        for rule in self._rules:
            if isinstance(rule.spec.condition, AbsentCondition):
                continue
            active, usable, _ = self._judge(rule, index, window_end=window.end)
            self._advance(rule, active, window.end, changed, deleted, only=usable)
            # Only series with an alert are sent, so only they need their event time.
            bucket = self._records[rule.spec.name]
            for fp in usable & bucket.keys():
                self._event_time[fp] = window.end
        self._save(changed, deleted)

    def _save(self, changed: list[AlertRecord], deleted: list[Fingerprint]) -> None:
        for fp in deleted:
            # The series' event time goes with its alert (a new alert sets it again).
            if not any(fp in bucket for bucket in self._records.values()):
                self._event_time.pop(fp, None)
        if changed or deleted:
            gone = set(deleted)
            latest = {record.fingerprint: record for record in changed}
            self._store.save_alerts([record for fp, record in latest.items() if fp not in gone])
            if deleted:
                self._store.delete_alerts(deleted)

    def _is_history(self, fp: Fingerprint, now: float) -> bool:
        """Whether the series' newest window is older than the notification horizon."""
        if self._notify_horizon is None:
            return False
        seen = self._event_time.get(fp)
        return seen is not None and now - seen > self._notify_horizon

    def _expire_resolved(self, rule: Rule, now: float, deleted: list[Fingerprint]) -> None:
        bucket = self._records[rule.spec.name]
        for fp, record in list(bucket.items()):
            resolved_at = record.resolved_at
            if (
                record.state is AlertState.RESOLVED
                and resolved_at is not None
                and record.last_sent is not None
                and now - resolved_at >= self._retention
            ):
                del bucket[fp]
                deleted.append(fp)

    def _candidates(self, rule: Rule, index: _Index) -> Iterable[Sample]:
        spec = rule.spec
        signals = index.by_model.get(spec.model, {}) if spec.model != "*" else index.by_signal
        if rule.signal_pattern is None:
            found: Iterable[Sample] = signals.get(spec.signal, ())
        else:
            found = [
                sample
                for signal, group in signals.items()
                if rule.signal_matches(signal)
                for sample in group
            ]
        if spec.version not in (None, "*") or spec.segment not in (None, "*"):
            found = [sample for sample in found if self._selects(spec, sample)]
        return found

    @staticmethod
    def _selects(spec: RuleSpec, sample: Sample) -> bool:
        if spec.version not in (None, "*") and sample.labels.get("version") != spec.version:
            return False
        return spec.segment in (None, "*") or sample.labels.get("segment", "") == spec.segment

    def _judge(
        self, rule: Rule, index: _Index, *, window_end: float | None = None
    ) -> tuple[dict[Fingerprint, tuple[dict[str, str], float]], set[Fingerprint], set[Fingerprint]]:
        """The series whose condition holds (with labels and value), the series with a usable
        value, and those without one (too few labels; in a window step also NaN, or a window
        older than the newest one evaluated for the series)."""
        condition = rule.spec.condition
        active: dict[Fingerprint, tuple[dict[str, str], float]] = {}
        usable: set[Fingerprint] = set()
        unusable: set[Fingerprint] = set()
        for sample in self._candidates(rule, index):
            labels = rule.alert_labels(sample.labels)
            fp = fingerprint(labels)
            if not _enough_labels(rule, sample, index):
                unusable.add(fp)
                continue
            if window_end is not None:
                cursor = (rule.spec.name, fp)
                if sample.value != sample.value or window_end < self._cursor.get(cursor, -math.inf):
                    unusable.add(fp)
                    continue
                self._cursor[cursor] = window_end
            usable.add(fp)
            self._observed[fp] = sample.value
            if isinstance(condition, ThresholdCondition):
                # NaN means "no usable data": it never satisfies a threshold, even !=.
                if condition.holds(sample.value):
                    active[fp] = (labels, sample.value)
            elif isinstance(condition, DetectorCondition) and self._detect(
                rule, condition, fp, sample
            ):
                active[fp] = (labels, sample.value)
        return active, usable, unusable

    def _detect(
        self, rule: Rule, condition: DetectorCondition, fp: Fingerprint, sample: Sample
    ) -> bool:
        """Feed the series' detector a sample newer than the last one; whether it flags drift."""
        key = (rule.spec.name, fp)
        detector, seen_until = self._detectors.get(key) or (
            condition.build_detector(),
            -math.inf,
        )
        if sample.timestamp > seen_until and math.isfinite(sample.value):
            try:
                detector.update(sample.value)
            except WatchkeeperError:
                self._detectors[key] = (detector, seen_until)
                return False
            seen_until = sample.timestamp
        self._detectors[key] = (detector, seen_until)
        return bool(detector.drift_detected)

    def _absent_series(
        self, rule: Rule, condition: AbsentCondition, index: _Index, now: float
    ) -> dict[Fingerprint, tuple[dict[str, str], float]]:
        spec = rule.spec
        models = [spec.model] if spec.model != "*" else sorted(self._seen_models - {""})
        active: dict[Fingerprint, tuple[dict[str, str], float]] = {}
        for model in models:
            events = index.by_model.get(model, {}).get(LAST_EVENT_SIGNAL, ())
            latest = max(
                (sample.value for sample in events if self._selects(spec, sample)),
                default=-math.inf,
            )
            if not math.isfinite(latest) or latest >= now - condition.period:
                continue
            series = {"model": model, "signal": ABSENT_SIGNAL}
            if spec.version not in (None, "*"):
                series["version"] = spec.version
            if spec.segment not in (None, "*"):
                series["segment"] = spec.segment
            labels = rule.alert_labels(series)
            # The value of an absent alert is how long the selector has been silent.
            active[fingerprint(labels)] = (labels, now - latest)
        return active

    def _advance(
        self,
        rule: Rule,
        active: Mapping[Fingerprint, tuple[dict[str, str], float]],
        now: float,
        changed: list[AlertRecord],
        deleted: list[Fingerprint],
        *,
        only: set[Fingerprint] | None = None,
        skip: set[Fingerprint] | frozenset[Fingerprint] = frozenset(),
    ) -> None:
        """Move the rule's alerts to ``now``: ``active`` series start or stay pending/firing;
        the others (only those in ``only`` when given, never those in ``skip``) count as the
        condition being false."""
        spec = rule.spec
        bucket = self._records[spec.name]
        for fp, (labels, value) in active.items():
            record = bucket.get(fp)
            shown_value = None if math.isnan(value) else value
            annotations = rule.annotations(labels, shown_value)
            if record is None or record.state is AlertState.RESOLVED:
                record = AlertRecord(
                    fingerprint=fp,
                    rule=spec.name,
                    labels=labels,
                    annotations=annotations,
                    state=AlertState.PENDING,
                    active_at=now,
                    last_value=shown_value,
                )
            else:
                record = record.evolve(
                    annotations=annotations, last_value=shown_value, keep_firing_since=None
                )
            if record.state is AlertState.PENDING and now - record.active_at >= spec.for_:
                record = record.evolve(state=AlertState.FIRING, fired_at=now)
            if record != bucket.get(fp):
                bucket[fp] = record
                changed.append(record)
        quiet = [
            fp
            for fp in bucket
            if fp not in active and fp not in skip and (only is None or fp in only)
        ]
        for fp in quiet:
            record = bucket[fp]
            if record.state is AlertState.PENDING:
                del bucket[fp]
                deleted.append(fp)
            elif record.state is AlertState.FIRING:
                since = record.keep_firing_since if record.keep_firing_since is not None else now
                if now - since < spec.keep_firing_for:
                    if record.keep_firing_since is None:
                        record = record.evolve(keep_firing_since=now)
                        bucket[fp] = record
                        changed.append(record)
                    continue
                # Not yet reported resolved: times in event time and the wall clock of the
                # last send do not compare, so the record says it by itself.
                record = record.evolve(
                    state=AlertState.RESOLVED,
                    resolved_at=now,
                    last_value=self.observed_value(fp),
                    last_sent=None,
                )
                bucket[fp] = record
                changed.append(record)
            elif (
                record.resolved_at is not None
                and record.last_sent is not None
                and now - record.resolved_at >= self._retention
            ):
                del bucket[fp]
                deleted.append(fp)
        if not isinstance(spec.condition, DetectorCondition):
            return
        # Detectors of series that no longer appear are dropped with them.
        for key in [key for key in self._detectors if key[0] == spec.name]:
            if key[1] not in bucket and key[1] not in active:
                del self._detectors[key]

    def _retire_orphans(
        self, now: float, outgoing: list[Alert], deleted: list[Fingerprint]
    ) -> None:
        """Alerts of rules that no longer exist are reported resolved once, then forgotten."""
        for fp, record in self._orphans.items():
            if record.state is AlertState.FIRING:
                record = record.evolve(state=AlertState.RESOLVED, resolved_at=now)
            if record.state is AlertState.RESOLVED:
                outgoing.append(self._to_alert(record, now))
            deleted.append(fp)
        self._orphans.clear()

    def _needs_sending(self, record: AlertRecord, now: float) -> bool:
        if record.state is AlertState.PENDING:
            return False
        if record.state is AlertState.RESOLVED:
            return record.last_sent is None
        return record.last_sent is None or now - record.last_sent >= self._resend_delay

    def _to_alert(self, record: AlertRecord, now: float) -> Alert:
        resolved = record.state is AlertState.RESOLVED
        return Alert(
            labels=record.labels,
            annotations=record.annotations,
            state=record.state,
            starts_at=record.fired_at if record.fired_at is not None else record.active_at,
            ends_at=record.resolved_at if resolved else None,
            value=record.last_value,
            updated_at=now,
            generator_url=self._generator_urls.get(record.rule, ""),
            fingerprint=record.fingerprint,
        )
