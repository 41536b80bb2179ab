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

from watchkeeper.alerts.config import AlertingConfig, dump_rules, load_alerting_config, load_rules
from watchkeeper.alerts.defaults import default_rules
from watchkeeper.alerts.dispatch import Dispatcher
from watchkeeper.alerts.model import Alert, Sample, fingerprint
from watchkeeper.alerts.notifiers import Notifier, Receiver, SlackNotifier
from watchkeeper.alerts.outbox import Backoff, DeliveryReport, DeliveryWorker, Outbox
from watchkeeper.alerts.promexport import PrometheusExport, export_prometheus_rules
from watchkeeper.alerts.routing import Matcher, Route, Silence
from watchkeeper.alerts.rules import RuleEvaluator, RuleSpec
from watchkeeper.alerts.state import AlertRecord, AlertStateStore, SilenceStore

__all__ = [
    "Alert",
    "AlertRecord",
    "AlertStateStore",
    "AlertingConfig",
    "Backoff",
    "DeliveryReport",
    "DeliveryWorker",
    "Dispatcher",
    "Matcher",
    "Notifier",
    "Outbox",
    "PrometheusExport",
    "Receiver",
    "Route",
    "RuleEvaluator",
    "RuleSpec",
    "Sample",
    "Silence",
    "SilenceStore",
    "SlackNotifier",
    "default_rules",
    "dump_rules",
    "export_prometheus_rules",
    "fingerprint",
    "load_alerting_config",
    "load_rules",
]
