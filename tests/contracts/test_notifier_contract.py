"""Conformance suite every notifier must pass, against real local HTTP and SMTP servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.alerts._servers import (
    CaptureServer,
    MailSink,
    PasswordCheck,
    free_port,
    self_signed_certificate,
    smtp_server,
)
from watchkeeper.alerts import Notifier, SlackNotifier
from watchkeeper.alerts.notifiers import (
    AlertmanagerNotifier,
    EmailNotifier,
    PagerDutyNotifier,
    WebhookNotifier,
)
from watchkeeper.errors import DeliveryError

MESSAGE: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}:{alertname="FeatureDrift", model="credit"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "team",
    "groupLabels": {"alertname": "FeatureDrift", "model": "credit"},
    "commonLabels": {"alertname": "FeatureDrift", "model": "credit", "severity": "critical"},
    "commonAnnotations": {},
    "externalURL": "http://watchkeeper.test",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "FeatureDrift",
                "model": "credit",
                "severity": "critical",
                "signal": "drift.age.score",
                "feature": "age",
            },
            "annotations": {
                "summary": "credit drift on age = 0.310",
                "value": "0.31",
                "threshold": "> 0.2",
            },
            "startsAt": "2024-01-01T00:00:00.000Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://watchkeeper.test/alerts/rules/FeatureDrift",
            "fingerprint": "0123456789abcdef",
        }
    ],
}
SECRET = "s3cr3t-routing-key"


@dataclass
class Destination:
    """Where a notifier under test delivers, and how to read what arrived."""

    http: CaptureServer
    mail: MailSink
    smtp_port: int
    cert: Path

    def received(self, kind: str) -> list[str]:
        """Idempotency keys seen by the destination of ``kind``."""
        if kind == "email":
            return [
                str(message["Message-ID"]).strip("<>").split("@")[0]
                for message in self.mail.messages
            ]
        return [request.headers["idempotency-key"] for request in self.http.requests]

    def reject(self, kind: str) -> None:
        if kind == "email":
            self.mail.reject = True
        else:
            self.http.default_status = 500


Factory = Callable[[Destination, bool], Notifier]


def _port(destination: Destination, broken: bool, port: int) -> int:
    return free_port() if broken else port


FACTORIES: dict[str, Factory] = {
    "webhook": lambda d, broken: WebhookNotifier(
        url=f"http://127.0.0.1:{_port(d, broken, d.http.port)}/hook", timeout=2.0
    ),
    "slack": lambda d, broken: SlackNotifier(
        url=f"http://127.0.0.1:{_port(d, broken, d.http.port)}/services/T/B/X", timeout=2.0
    ),
    "pagerduty": lambda d, broken: PagerDutyNotifier(
        routing_key=SECRET,
        url=f"http://127.0.0.1:{_port(d, broken, d.http.port)}/v2/enqueue",
        timeout=2.0,
    ),
    "alertmanager": lambda d, broken: AlertmanagerNotifier(
        url=f"http://127.0.0.1:{_port(d, broken, d.http.port)}", timeout=2.0
    ),
    "email": lambda d, broken: EmailNotifier(
        to=["oncall@example.org"],
        sender="watchkeeper@example.org",
        host="127.0.0.1",
        port=_port(d, broken, d.smtp_port),
        tls="starttls",
        username="wk",
        password=SECRET,
        timeout=5.0,
        ca_file=str(d.cert),
    ),
}


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def destination(tls_pair: tuple[Path, Path]) -> Iterator[Destination]:
    cert, key = tls_pair
    sink = MailSink()
    controller = smtp_server(
        sink, cert=cert, key=key, mode="starttls", check=PasswordCheck("wk", SECRET)
    )
    with CaptureServer() as http:
        yield Destination(http=http, mail=sink, smtp_port=controller.port, cert=cert)
    controller.stop()


@pytest.fixture(params=sorted(FACTORIES))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_is_a_notifier_with_its_kind(kind: str, destination: Destination) -> None:
    notifier = FACTORIES[kind](destination, False)
    assert isinstance(notifier, Notifier)
    assert notifier.kind == kind


def test_delivers_once_with_the_idempotency_key(kind: str, destination: Destination) -> None:
    notifier = FACTORIES[kind](destination, False)
    notifier.send(MESSAGE, idempotency_key="key-1")
    notifier.send(MESSAGE, idempotency_key="key-2")
    assert destination.received(kind) == ["key-1", "key-2"]
    notifier.close()


def test_rejection_raises_delivery_error(kind: str, destination: Destination) -> None:
    destination.reject(kind)
    notifier = FACTORIES[kind](destination, False)
    with pytest.raises(DeliveryError) as caught:
        notifier.send(MESSAGE, idempotency_key="key-1")
    assert caught.value.receiver == "team"
    assert destination.received(kind) == []


def test_unreachable_destination_raises_delivery_error(kind: str, destination: Destination) -> None:
    notifier = FACTORIES[kind](destination, True)
    with pytest.raises(DeliveryError, match=r"127\.0\.0\.1"):
        notifier.send(MESSAGE, idempotency_key="key-1")


def test_close_is_idempotent_and_repr_hides_secrets(kind: str, destination: Destination) -> None:
    notifier = FACTORIES[kind](destination, False)
    notifier.close()
    notifier.close()
    assert SECRET not in repr(notifier)
