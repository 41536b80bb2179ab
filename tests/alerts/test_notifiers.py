from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.alerts._servers import CaptureServer, MailSink, PasswordCheck, smtp_server
from tests.contracts.test_notifier_contract import MESSAGE
from watchkeeper.alerts import SlackNotifier
from watchkeeper.alerts.notifiers import (
    AlertmanagerNotifier,
    EmailNotifier,
    PagerDutyNotifier,
    WebhookNotifier,
)
from watchkeeper.errors import ConfigError, DeliveryError

RESOLVED = {
    **MESSAGE,
    "status": "resolved",
    "alerts": [
        {
            **MESSAGE["alerts"][0],
            "status": "resolved",
            "endsAt": "2024-01-01T01:00:00.000Z",
        }
    ],
}


def test_webhook_posts_the_v4_message_unchanged(http_receiver: CaptureServer) -> None:
    WebhookNotifier(url=http_receiver.url("/hook")).send(MESSAGE, idempotency_key="k")
    (request,) = http_receiver.requests
    assert request.path == "/hook"
    assert request.body == MESSAGE
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == "k"


def test_webhook_max_alerts_truncates_and_counts(http_receiver: CaptureServer) -> None:
    alert = MESSAGE["alerts"][0]
    message = {**MESSAGE, "alerts": [alert, alert, alert]}
    WebhookNotifier(url=http_receiver.url(), max_alerts=1).send(message, idempotency_key="k")
    body = http_receiver.requests[0].body
    assert (len(body["alerts"]), body["truncatedAlerts"]) == (1, 2)


def test_slack_message_names_severity_model_signal_value_threshold_and_link(
    http_receiver: CaptureServer,
) -> None:
    SlackNotifier(url=http_receiver.url("/services/T/B/X"), channel="#ml-alerts").send(
        MESSAGE, idempotency_key="k"
    )
    body = http_receiver.requests[0].body
    assert body["channel"] == "#ml-alerts"
    assert body["text"] == "[FIRING:1] alertname=FeatureDrift model=credit"
    assert body["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": body["text"]},
    }
    section = body["blocks"][1]
    assert section["type"] == "section"
    assert section["text"]["type"] == "mrkdwn"
    text = section["text"]["text"]
    for part in (
        "critical",
        "model credit",
        "signal drift.age.score",
        "value 0.31",
        "vs threshold > 0.2",
        "<http://watchkeeper.test/alerts/rules/FeatureDrift|",
    ):
        assert part in text
    assert all(len(block.get("text", {}).get("text", "")) <= 3000 for block in body["blocks"])


def test_pagerduty_trigger_and_resolve_events(http_receiver: CaptureServer) -> None:
    notifier = PagerDutyNotifier(
        routing_key="R" * 32, url=http_receiver.url("/v2/enqueue"), source="watchkeeper-prod"
    )
    notifier.send(MESSAGE, idempotency_key="k1")
    notifier.send(RESOLVED, idempotency_key="k2")
    trigger, resolve = (request.body for request in http_receiver.requests)
    dedup = hashlib.sha256(str(MESSAGE["groupKey"]).encode()).hexdigest()
    assert trigger["routing_key"] == "R" * 32
    assert trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == dedup
    assert set(trigger["payload"]) >= {"summary", "source", "severity"}
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["source"] == "watchkeeper-prod"
    assert trigger["payload"]["group"] == "credit"
    assert len(trigger["payload"]["summary"]) <= 1024
    assert trigger["links"][0]["href"].endswith("/alerts/rules/FeatureDrift")
    assert resolve == {"routing_key": "R" * 32, "event_action": "resolve", "dedup_key": dedup}
    assert http_receiver.requests[0].path == "/v2/enqueue"


def test_pagerduty_defaults_to_the_real_enqueue_url() -> None:
    assert PagerDutyNotifier(routing_key="x").url == "https://events.pagerduty.com/v2/enqueue"


def test_alertmanager_forward_posts_postable_alerts(http_receiver: CaptureServer) -> None:
    notifier = AlertmanagerNotifier(
        url=http_receiver.url(), alert_ttl=600.0, clock=lambda: 1_704_067_200.0
    )
    notifier.send(MESSAGE, idempotency_key="k1")
    notifier.send(RESOLVED, idempotency_key="k2")
    firing, resolved = (request.body for request in http_receiver.requests)
    assert http_receiver.requests[0].path == "/api/v2/alerts"
    assert isinstance(firing, list)
    assert set(firing[0]) == {
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
    }
    assert firing[0]["endsAt"] == "2024-01-01T00:10:00.000Z"
    assert resolved[0]["endsAt"] == "2024-01-01T01:00:00.000Z"
    assert firing[0]["labels"]["alertname"] == "FeatureDrift"


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_email_over_tls_with_auth_multipart_and_message_id(
    mode: str, tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files
    sink, check = MailSink(), PasswordCheck("wk", "pw")
    controller = smtp_server(sink, cert=cert, key=key, mode=mode, check=check)
    try:
        EmailNotifier(
            to=["oncall@example.org", "ml@example.org"],
            sender="wk@example.org",
            host="127.0.0.1",
            port=controller.port,
            tls=mode,
            username="wk",
            password="pw",
            ca_file=str(cert),
        ).send(MESSAGE, idempotency_key="abc123")
    finally:
        controller.stop()
    (message,) = sink.messages
    assert check.attempts == 1
    assert sink.envelopes == [("wk@example.org", ["oncall@example.org", "ml@example.org"])]
    assert message["Message-ID"] == "<abc123@example.org>"
    assert message["Subject"] == "[FIRING:1] alertname=FeatureDrift model=credit"
    assert message.get_content_type() == "multipart/alternative"
    parts = {
        part.get_content_type(): part.get_content()
        for part in message.walk()
        if not part.is_multipart()
    }
    assert "credit drift on age = 0.310" in parts["text/plain"]
    assert "<li><b>[FIRING] FeatureDrift" in parts["text/html"]


def test_email_wrong_password_and_untrusted_certificate_fail(
    tls_files: tuple[Path, Path], tmp_path: Path
) -> None:
    cert, key = tls_files
    sink = MailSink()
    controller = smtp_server(
        sink, cert=cert, key=key, mode="starttls", check=PasswordCheck("wk", "pw")
    )
    try:
        with pytest.raises(DeliveryError, match="SMTPAuthenticationError"):
            EmailNotifier(
                to=["a@example.org"],
                sender="wk@example.org",
                host="127.0.0.1",
                port=controller.port,
                username="wk",
                password="bad",
                ca_file=str(cert),
            ).send(MESSAGE, idempotency_key="k")
        with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
            EmailNotifier(
                to=["a@example.org"],
                sender="wk@example.org",
                host="127.0.0.1",
                port=controller.port,
                username="wk",
                password="pw",
            ).send(MESSAGE, idempotency_key="k")
    finally:
        controller.stop()
    assert sink.messages == []


def test_email_refuses_passwords_without_tls() -> None:
    with pytest.raises(ConfigError, match="without TLS"):
        EmailNotifier(
            to=["a@b.c"], sender="w@b.c", host="h", tls="none", username="u", password="p"
        )
