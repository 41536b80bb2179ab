from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchkeeper.alerts import (
    RuleSpec,
    SlackNotifier,
    default_rules,
    dump_rules,
    export_prometheus_rules,
    load_alerting_config,
    load_rules,
)
from watchkeeper.alerts.notifiers import EmailNotifier, PagerDutyNotifier, WebhookNotifier
from watchkeeper.alerts.rules import DetectorCondition
from watchkeeper.errors import ConfigError
from watchkeeper.ingest.spec import ModelSpec

REPO = Path(__file__).resolve().parents[2]

RULES = """
rules:
  - name: FeatureDrift
    model: credit
    signal: drift.*.score
    condition: "> 0.2"
    for: 10m
    keep_firing_for: 5m
    severity: critical
    labels: {team: risk}
    annotations:
      summary: '{{ labels.model }} drift on {{ labels.feature }} = {{ value | printf("%.3f") }}'
  - name: LatencyShift
    model: credit
    signal: latency_p99
    condition: {detector: {kind: page_hinkley, params: {threshold: 500}}}
  - name: NoData
    model: credit
    signal: absent
    condition: {absent_for: 30m}
"""

ROUTING = """
global:
  external_url: https://watchkeeper.example.org
  resolve_timeout: 10m
route:
  receiver: team-slack
  group_by: [alertname, model]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: ['severity="critical"']
      receiver: oncall
      continue: true
      repeat_interval: 1h
receivers:
  - name: team-slack
    send_resolved: false
    slack_configs: [{url: "https://hooks.slack.com/services/T/B/X", channel: "#ml"}]
  - name: oncall
    webhook_configs: [{url: "http://hooks.internal/alertmanager", timeout: 5s}]
    pagerduty_configs: [{routing_key: abc}]
    email_configs:
      - {to: [oncall@example.org], from: wk@example.org, smarthost: "smtp.example.org:587",
         auth_username: wk, auth_password: pw}
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [model]
"""


def test_rules_file_loads_and_round_trips() -> None:
    specs = load_rules(RULES)
    assert [spec.name for spec in specs] == ["FeatureDrift", "LatencyShift", "NoData"]
    assert (specs[0].for_, specs[0].keep_firing_for) == (600.0, 300.0)
    assert specs[1].condition == DetectorCondition(kind="page_hinkley", params={"threshold": 500})
    assert load_rules(dump_rules(specs)) == specs


def test_rules_file_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    assert len(load_rules(path)) == 3
    with pytest.raises(ConfigError, match="cannot read rules file"):
        load_rules(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("for: 10m", "for: soon", r"^rules\[0\]\.for: expected a duration such as 5m, got 'soon'"),
        ("name: NoData", "name: FeatureDrift", r"^rules\[2\]\.name: 'FeatureDrift' is already"),
        ("{absent_for: 30m}", "{absent_for: never}", r"^rules\[2\]\.condition\.absent_for"),
        ("rules:", "rule:", r"rules file\.rule: unknown field"),
    ],
)
def test_rules_errors_name_the_path(old: str, new: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_rules(RULES.replace(old, new, 1))


def test_routing_file_loads_receivers_routes_and_inhibitions() -> None:
    config = load_alerting_config(ROUTING)
    assert config.external_url == "https://watchkeeper.example.org"
    assert config.resolve_timeout == 600.0
    labels = {"alertname": "A", "model": "m", "severity": "critical"}
    # `continue` lets later siblings match too; the root is used only when no child matches.
    assert [match.receiver for match in config.route.match(labels)] == ["oncall"]
    assert [match.receiver for match in config.route.match({"severity": "warning"})] == [
        "team-slack"
    ]
    assert config.route.match(labels)[0].repeat_interval == 3600.0
    receivers = config.build_receivers()
    assert receivers["team-slack"].send_resolved is False
    kinds = [type(notifier) for notifier in receivers["oncall"].notifiers]
    # Integrations come in a fixed kind order: webhook, slack, email, pagerduty, alertmanager.
    assert kinds == [WebhookNotifier, EmailNotifier, PagerDutyNotifier]
    assert isinstance(receivers["team-slack"].notifiers[0], SlackNotifier)
    assert receivers["oncall"].notifiers[0].timeout == 5.0  # type: ignore[attr-defined]
    assert config.inhibit_rules[0].equal == ("model",)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("receiver: oncall", "receiver: nobody", r"receiver 'nobody' is used but not defined"),
        ("group_wait: 30s", "group_wait: half a minute", r"^route\.group_wait: expected a dur"),
        ("repeat_interval: 1h", "repeat_interval: 0s", r"^route\.routes\[0\]\.repeat_interval"),
        (
            "['severity=\"critical\"']\n      receiver",
            "['severity']\n      receiver",
            r"^route\.routes\[0\]\.matchers\[0\]: expected a matcher",
        ),
        (
            "routing_key: abc",
            "routing_keys: abc",
            r"^receivers\[1\]\.pagerduty_configs\[0\]\.routing_keys: unknown field",
        ),
        (
            'smarthost: "smtp.example.org:587"',
            'smarthost: "smtp.example.org"',
            r"^receivers\[1\]\.email_configs\[0\]\.smarthost: expected host:port",
        ),
        (
            'url: "http://hooks.internal/alertmanager"',
            "url: hooks.internal",
            r"^receivers\[1\]\.webhook_configs\[0\]: webhook\.url: expected an http\(s\) URL",
        ),
        ("equal: [model]", "equal: model", r"^inhibit_rules\[0\]\.equal: expected a list"),
    ],
)
def test_routing_errors_name_the_path(old: str, new: str, message: str) -> None:
    assert old in ROUTING
    with pytest.raises(ConfigError, match=message):
        load_alerting_config(ROUTING.replace(old, new, 1))


def test_default_pack_covers_the_six_concerns() -> None:
    pack = default_rules("credit-risk")
    assert [spec.name for spec in pack] == [
        "CreditRiskDriftShareHigh",
        "CreditRiskFeatureDrift",
        "CreditRiskAccuracyDrop",
        "CreditRiskErrorRateHigh",
        "CreditRiskLatencyP99High",
        "CreditRiskNoData",
    ]
    assert {spec.signal for spec in pack} == {
        "drift_share",
        "drift.*.detected",
        "accuracy",
        "error_rate",
        "latency_p99",
        "absent",
    }
    assert all(spec.model == "credit-risk" for spec in pack)
    assert load_rules(dump_rules(pack)) == pack


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        subprocess.run(
            [str(REPO / "scripts" / "install-promtool.sh")],
            check=True,
            capture_output=True,
            timeout=600,
        )
        found = shutil.which("promtool")
    assert found is not None, "scripts/install-promtool.sh did not install promtool"
    return found


def test_prometheus_export_passes_promtool(tmp_path: Path) -> None:
    specs = [
        *default_rules("credit"),
        *load_rules(RULES),
        RuleSpec.from_dict(
            {
                "name": "Acc",
                "model": "credit",
                "version": "3",
                "signal": "accuracy",
                "condition": "< 0.8",
                "annotations": {"summary": "{% if value %}x{% endif %}"},
            }
        ),
        RuleSpec.from_dict(
            {"name": "Rating", "signal": "feedback_mean_rating", "condition": "<= 3"}
        ),
    ]
    export = export_prometheus_rules(specs)
    skipped_rules = {name for name, _ in export.skipped}
    assert "LatencyShift" in skipped_rules  # a detector has no PromQL
    assert "CreditDriftShareHigh" in export.exported
    assert 'watchkeeper_signal{model="credit",signal="drift_share"} >= 0.5' in export.yaml
    # Each exported rule's value: the expression its condition compares, without the threshold.
    values = dict(export.values)
    assert list(values) == list(export.exported)
    assert (
        values["CreditDriftShareHigh"] == 'watchkeeper_signal{model="credit",signal="drift_share"}'
    )
    assert values["CreditNoData"] == (
        'time() - max by (model) (watchkeeper_signal{model="credit",signal="last_event"})'
    )
    assert f"{values['CreditNoData']} > 1800" in export.yaml
    assert "Acc" in skipped_rules  # exported, but its {% if %} annotation was replaced
    assert "FeatureDrift" in export.exported
    assert "CreditFeatureDrift" in export.exported
    assert "CreditNoData" in export.exported
    assert 'watchkeeper_feature_drift_score{model="credit"} > 0.2' in export.yaml
    # The default FeatureDrift rule reads the calibrated verdict, feature kept as a label.
    assert (
        'label_replace(watchkeeper_signal{model="credit",signal=~"drift[.](.+)[.]detected"}, '
        '"feature", "$1", "signal", "drift[.](.+)[.]detected") >= 1'
    ) in export.yaml
    assert 'watchkeeper_model_accuracy{model="credit",version="3"} < 0.8' in export.yaml
    assert "watchkeeper_prediction_latency_seconds_bucket" in export.yaml
    assert "> 0.5" in export.yaml  # 500 ms → 0.5 s
    assert "{{ $labels.model }} drift on {{ $labels.feature }} = " in export.yaml
    assert '{{ $value | printf "%.3f" }}' in export.yaml
    path = tmp_path / "watchkeeper.rules.yml"
    path.write_text(export.yaml)
    result = subprocess.run(
        [_promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(export.exported)} rules found" in result.stdout


@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}", fullmatch=True))
def test_every_valid_model_name_gets_a_valid_default_pack(name: str) -> None:
    spec = ModelSpec.from_dict({"name": name, "task": "regression", "features": {}})
    pack = default_rules(spec.name)
    assert len({rule.name for rule in pack}) == len(pack)
    assert load_rules(dump_rules(pack)) == pack


@pytest.mark.parametrize("name", ["credit\n", "credit.v2\n"])
def test_names_ending_in_a_newline_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="not a valid model name"):
        ModelSpec.from_dict({"name": name, "task": "regression", "features": {}})
    with pytest.raises(ConfigError, match="rule names look like"):
        RuleSpec.from_dict({"name": "Acc\n", "signal": "accuracy", "condition": "< 0.8"})
