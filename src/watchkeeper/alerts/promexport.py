"""Export threshold and absent rules as Prometheus alerting rules over watchkeeper's /metrics.

Teams that already run Prometheus + Alertmanager can evaluate the same rules there. Signals map
to the metrics watchkeeper publishes:

=========================  ==============================================================
signal                     PromQL
=========================  ==============================================================
``drift.<f>.score``        ``watchkeeper_feature_drift_score{model, version, feature}``
``drift.<f>.detected``     ``watchkeeper_signal{signal="drift.<f>.detected"}`` (the calibrated
                           verdict, 0 or 1; ``*`` patterns keep the feature as a label)
``drift_share``            ``watchkeeper_signal{signal="drift_share"}``
``accuracy``               ``watchkeeper_model_accuracy{model, version}``
``latency_p99`` (ms)       ``histogram_quantile(0.99, …prediction_latency_seconds_bucket…)``
                           (the threshold is converted from milliseconds to seconds)
``error_rate``             ``rate(…errors_total) / rate(…predictions_total)``
``feedback_mean_rating``   ``watchkeeper_feedback_rating_mean{model}``
``absent``                 ``time() -`` the newest ``last_event`` signal (the ingest time of
                           the model's last event) above the period
=========================  ==============================================================

A rule's ``min_labels`` becomes ``and on (model, version)`` the window's ``labeled_count``
(``watchkeeper_signal{signal="labeled_count", segment="*"}``) being at least that.

Rules on other signals, and detector rules, have no PromQL equivalent and are reported in
:attr:`PrometheusExport.skipped`. Annotation templates are translated from watchkeeper's Jinja
syntax to Go templates for the simple forms (``{{ labels.x }}``, ``{{ value }}``,
``{{ value | printf("%.3f") }}``, ``{{ threshold }}``); other templates are replaced by a
plain description and listed in ``skipped``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from watchkeeper.alerts.model import format_duration
from watchkeeper.alerts.rules import AbsentCondition, RuleSpec, ThresholdCondition
from watchkeeper.signalkey import SignalKey

__all__ = ["PrometheusExport", "export_prometheus_rules"]

_LABELS_REF = re.compile(r"\{\{\s*labels\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_VALUE_REF = re.compile(r"\{\{\s*value\s*\}\}")
_PRINTF_REF = re.compile(r"\{\{\s*value\s*\|\s*printf\(\s*(\"[^\"]*\"|'[^']*')\s*\)\s*\}\}")


@dataclass(frozen=True)
class PrometheusExport:
    """The rules file text and the rules (or annotations) that could not be exported.

    ``values`` holds, for each exported rule, the PromQL of the value its condition compares
    (the expression without the threshold): it has data whenever watchkeeper publishes the
    signal, firing or not, which is what a dashboard plots and a test checks.
    """

    yaml: str
    exported: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    values: tuple[tuple[str, str], ...] = ()


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _selector(spec: RuleSpec, *, feature: str | None = None) -> str:
    matchers = []
    if spec.model != "*":
        matchers.append(f"model={_quote(spec.model)}")
    if spec.version not in (None, "*"):
        matchers.append(f"version={_quote(spec.version)}")
    if feature is not None and feature != "*":
        if "*" in feature:
            pattern = ".*".join(re.escape(part) for part in feature.split("*"))
            matchers.append(f"feature=~{_quote(pattern)}")
        else:
            matchers.append(f"feature={_quote(feature)}")
    return "{" + ",".join(matchers) + "}"


_BY = "model, version"


def _expression(spec: RuleSpec, rate_window: str) -> tuple[str, str] | None:
    """The rule's value expression and its alerting expression, or None when it has none."""
    condition = spec.condition
    if isinstance(condition, AbsentCondition):
        # Seconds since the model's newest event was ingested: the same clock watchkeeper's
        # absent rules read (restored from the store after a restart), and no series at all
        # for a model that never had an event, which watchkeeper does not alert on either.
        base = _selector(spec)[1:-1]
        last = f'watchkeeper_signal{{{base}{"," if base else ""}signal="last_event"}}'
        value = f"time() - max by (model) ({last})"
        return value, f"{value} > {condition.period:.10g}"
    if not isinstance(condition, ThresholdCondition):
        return None
    op = condition.op.value
    threshold = condition.threshold
    scored = _drift_column(spec.signal, "score")
    verdict = _drift_column(spec.signal, "detected")
    if scored is not None:
        metric = f"watchkeeper_feature_drift_score{_selector(spec, feature=scored)}"
    elif verdict is not None:
        metric = _verdict_metric(spec, verdict)
    elif spec.signal == "drift_share":
        base = _selector(spec)[1:-1]
        metric = f'watchkeeper_signal{{{base}{"," if base else ""}signal="drift_share"}}'
    elif spec.signal == "accuracy":
        metric = f"watchkeeper_model_accuracy{_selector(spec)}"
    elif spec.signal == "feedback_mean_rating":
        metric = f"watchkeeper_feedback_rating_mean{_selector(spec)}"
    elif spec.signal == "latency_p99":
        selector = _selector(spec)
        metric = (
            f"histogram_quantile(0.99, sum by (le, {_BY}) "
            f"(rate(watchkeeper_prediction_latency_seconds_bucket{selector}[{rate_window}])))"
        )
        threshold = threshold / 1000.0
    elif spec.signal == "error_rate":
        selector = _selector(spec)
        metric = (
            f"sum by ({_BY}) (rate(watchkeeper_prediction_errors_total{selector}"
            f"[{rate_window}])) / sum by ({_BY}) "
            f"(rate(watchkeeper_predictions_total{selector}[{rate_window}]))"
        )
    else:
        return None
    expression = f"{metric} {op} {threshold:.10g}"
    if spec.min_labels is not None:
        # The window must have the labels the rule needs (the generic gauge of all segments).
        base = _selector(spec)[1:-1]
        labeled = (
            f'watchkeeper_signal{{{base}{"," if base else ""}segment="*",signal="labeled_count"}}'
        )
        expression = f"({expression}) and on ({_BY}) ({labeled} >= {spec.min_labels})"
    return metric, expression


def _drift_column(signal: str, stat: str) -> str | None:
    """The feature (or ``*`` pattern) of a ``drift.<feature>.<stat>`` rule signal, else None."""
    try:
        key = SignalKey.parse(signal)
    except ValueError:
        return None
    return key.column if key.family == "drift" and key.stat == stat else None


def _verdict_metric(spec: RuleSpec, feature: str) -> str:
    """The drift verdict from the generic signal gauge, with the feature as a label."""
    base = _selector(spec)[1:-1]
    if "*" not in feature:
        signal = _quote(f"drift.{feature}.detected")
        series = f"watchkeeper_signal{{{base}{',' if base else ''}signal={signal}}}"
        return f'label_replace({series}, "feature", {_quote(feature)}, "", "")'
    pattern = ".+".join(re.escape(part) for part in feature.split("*"))
    signal = _quote(f"drift[.]({pattern})[.]detected")
    series = f"watchkeeper_signal{{{base}{',' if base else ''}signal=~{signal}}}"
    return f'label_replace({series}, "feature", "$1", "signal", {signal})'


def _go_template(source: str, threshold: str) -> str | None:
    translated = _PRINTF_REF.sub(
        lambda found: "{{ $value | printf " + '"' + found.group(1)[1:-1] + '"' + " }}", source
    )
    translated = _LABELS_REF.sub(lambda found: "{{ $labels." + found.group(1) + " }}", translated)
    translated = _VALUE_REF.sub("{{ $value }}", translated)
    translated = re.sub(r"\{\{\s*threshold\s*\}\}", threshold, translated)
    leftover = re.sub(
        r"\{\{ \$(labels\.[A-Za-z0-9_]+|value)( \| printf \"[^\"]*\")? \}\}", "", translated
    )
    if "{{" in leftover or "{%" in leftover or "}}" in leftover:
        return None
    return translated


def export_prometheus_rules(
    specs: Sequence[RuleSpec], *, group_name: str = "watchkeeper", rate_window: str = "5m"
) -> PrometheusExport:
    """Prometheus rules YAML for every exportable rule in ``specs``."""
    rules = []
    exported: list[str] = []
    skipped: list[tuple[str, str]] = []
    values: list[tuple[str, str]] = []
    for spec in specs:
        expressions = _expression(spec, rate_window)
        if expressions is None:
            skipped.append((spec.name, f"signal {spec.signal!r} with this condition has no metric"))
            continue
        value, expression = expressions
        threshold = (
            spec.condition.threshold if isinstance(spec.condition, ThresholdCondition) else ""
        )
        annotations: dict[str, str] = {}
        for name, source in spec.annotations.items():
            translated = _go_template(source, f"{threshold}")
            if translated is None:
                skipped.append(
                    (
                        spec.name,
                        f"annotation {name!r} uses template syntax "
                        "Prometheus cannot express; replaced",
                    )
                )
                translated = f"{spec.name} on model {{{{ $labels.model }}}}"
            annotations[name] = translated
        rule: dict[str, object] = {"alert": spec.name, "expr": expression}
        if spec.for_:
            rule["for"] = format_duration(spec.for_)
        if spec.keep_firing_for:
            rule["keep_firing_for"] = format_duration(spec.keep_firing_for)
        rule["labels"] = {**dict(spec.labels), "severity": spec.severity.value}
        if annotations:
            rule["annotations"] = annotations
        rules.append(rule)
        exported.append(spec.name)
        values.append((spec.name, value))
    text = yaml.safe_dump(
        {"groups": [{"name": group_name, "rules": rules}]}, sort_keys=False, width=1000
    )
    return PrometheusExport(
        yaml=text, exported=tuple(exported), skipped=tuple(skipped), values=tuple(values)
    )
