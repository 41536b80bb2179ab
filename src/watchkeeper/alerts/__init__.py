"""Alerting: rules → alert states → routing/grouping/silences/inhibition → outbox → notifiers.

The pieces, in data-flow order (each a small typed seam; see docs/alerts.md):

* :class:`RuleSpec` / :class:`RuleEvaluator` — Prometheus alerting-rule semantics over the latest
  signal :class:`Sample` values (``pending → firing → resolved``, ``for``, ``keep_firing_for``);
* :class:`Dispatcher` — Alertmanager routing, grouping, timers, silences, inhibition and the
  notification log, driven by ``tick(now)``;
* :class:`Outbox` + :class:`DeliveryWorker` — persisted, at-least-once delivery with backoff;
* notifiers — webhook (Alertmanager v4 payload), Slack, email, PagerDuty v2, Alertmanager;
* stores — :class:`AlertStateStore`, :class:`SilenceStore`, :class:`Outbox` in memory here and
  on SQL in the store (:mod:`watchkeeper.store.alerts`, :mod:`watchkeeper.store.outbox`).
"""

from __future__ import annotations

from watchkeeper.alerts.config import (
    AlertingConfig,
    ReceiverConfig,
    dump_rules,
    load_alerting_config,
    load_rules,
    parse_rules,
)
from watchkeeper.alerts.defaults import default_rules
from watchkeeper.alerts.dispatch import Dispatcher, GroupSnapshot
from watchkeeper.alerts.model import (
    Alert,
    AlertState,
    Fingerprint,
    Sample,
    Severity,
    fingerprint,
    format_duration,
    parse_duration,
)
from watchkeeper.alerts.notifiers import (
    PAGERDUTY_EVENTS_URL,
    AlertmanagerNotifier,
    EmailNotifier,
    Notifier,
    PagerDutyNotifier,
    Receiver,
    SlackNotifier,
    WebhookNotifier,
)
from watchkeeper.alerts.outbox import (
    Backoff,
    DeliveryReport,
    DeliveryWorker,
    InMemoryOutbox,
    Outbox,
    OutboxItem,
    OutboxStatus,
)
from watchkeeper.alerts.promexport import PrometheusExport, export_prometheus_rules
from watchkeeper.alerts.routing import InhibitRule, Matcher, MatchOp, Route, Silence
from watchkeeper.alerts.rules import (
    AbsentCondition,
    Condition,
    DetectorCondition,
    Op,
    Rule,
    RuleEvaluator,
    RuleSpec,
    ThresholdCondition,
)
from watchkeeper.alerts.state import (
    AlertRecord,
    AlertStateStore,
    InMemoryAlertStateStore,
    InMemorySilenceStore,
    NotifyLogEntry,
    SilenceStore,
)

__all__ = [
    "PAGERDUTY_EVENTS_URL",
    "AbsentCondition",
    "Alert",
    "AlertRecord",
    "AlertState",
    "AlertStateStore",
    "AlertingConfig",
    "AlertmanagerNotifier",
    "Backoff",
    "Condition",
    "DeliveryReport",
    "DeliveryWorker",
    "DetectorCondition",
    "Dispatcher",
    "EmailNotifier",
    "Fingerprint",
    "GroupSnapshot",
    "InMemoryAlertStateStore",
    "InMemoryOutbox",
    "InMemorySilenceStore",
    "InhibitRule",
    "MatchOp",
    "Matcher",
    "Notifier",
    "NotifyLogEntry",
    "Op",
    "Outbox",
    "OutboxItem",
    "OutboxStatus",
    "PagerDutyNotifier",
    "PrometheusExport",
    "Receiver",
    "ReceiverConfig",
    "Route",
    "Rule",
    "RuleEvaluator",
    "RuleSpec",
    "Sample",
    "Severity",
    "Silence",
    "SilenceStore",
    "SlackNotifier",
    "ThresholdCondition",
    "WebhookNotifier",
    "default_rules",
    "dump_rules",
    "export_prometheus_rules",
    "fingerprint",
    "format_duration",
    "load_alerting_config",
    "load_rules",
    "parse_duration",
    "parse_rules",
]
