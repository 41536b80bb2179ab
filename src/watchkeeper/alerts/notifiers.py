"""Notifiers: one Protocol, five integrations, all fed the Alertmanager webhook v4 message.

The dispatcher writes one message per (group, receiver) — exactly Alertmanager's webhook
payload version ``"4"`` — and each notifier renders its own wire format from it:

* :class:`WebhookNotifier` posts the message unchanged, so existing Alertmanager webhook
  receivers work as they are (``max_alerts`` truncates and counts ``truncatedAlerts``);
* :class:`SlackNotifier` posts a Slack incoming-webhook message (``text`` + ``blocks``);
* :class:`EmailNotifier` sends multipart text + HTML over SMTP (STARTTLS or implicit TLS);
* :class:`PagerDutyNotifier` sends an Events API v2 ``trigger``/``resolve`` event;
* :class:`AlertmanagerNotifier` forwards the alerts to an external Alertmanager's
  ``/api/v2/alerts`` as postable alerts.

Every ``send`` takes the outbox idempotency key (``Idempotency-Key`` header, or the email
``Message-ID``) and raises :class:`~watchkeeper.errors.DeliveryError` on any failure.
"""

from __future__ import annotations

import hashlib
import html
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Protocol, runtime_checkable

import httpx

from watchkeeper.alerts.model import format_timestamp
from watchkeeper.errors import ConfigError, DeliveryError

__all__ = [
    "PAGERDUTY_EVENTS_URL",
    "AlertmanagerNotifier",
    "EmailNotifier",
    "Notifier",
    "PagerDutyNotifier",
    "Receiver",
    "SlackNotifier",
    "WebhookNotifier",
]

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
USER_AGENT = "watchkeeper-alerts"
_PAGERDUTY_SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}
_SEVERITY_ORDER = {"info": 0, "warning": 1, "critical": 2}


@runtime_checkable
class Notifier(Protocol):
    """Delivers one webhook-v4 message to one destination."""

    kind: str

    def send(self, message: Mapping[str, Any], *, idempotency_key: str) -> None:
        """Deliver ``message``; raise DeliveryError when the destination did not accept it."""
        ...

    def close(self) -> None:
        """Release connections; calling it twice is harmless."""
        ...


@dataclass(frozen=True)
class Receiver:
    """A named destination: its notifiers and whether it hears about resolutions."""

    name: str
    notifiers: tuple[Notifier, ...] = ()
    send_resolved: bool = True


def _receiver(message: Mapping[str, Any]) -> str | None:
    name = message.get("receiver")
    return name if isinstance(name, str) else None


def _check_url(url: str, *, key: str) -> str:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"{key}: expected an http(s) URL, got {url!r}", key=key)
    return url


def _check_timeout(timeout: float, *, key: str = "timeout") -> float:
    if not timeout > 0:
        raise ConfigError(f"{key}: expected a positive number of seconds, got {timeout!r}", key=key)
    return float(timeout)


class _HttpNotifier:
    """Shared HTTP plumbing: one client per notifier, per-receiver timeout, error mapping."""

    kind = "http"

    def __init__(self, *, url: str, timeout: float, headers: Mapping[str, str] | None) -> None:
        self.url = _check_url(url, key=f"{self.kind}.url")
        self.timeout = _check_timeout(timeout)
        self._headers = {"User-Agent": USER_AGENT, **(headers or {})}
        self._client = httpx.Client(timeout=httpx.Timeout(self.timeout))

    def _post(
        self, url: str, body: object, *, idempotency_key: str, message: Mapping[str, Any]
    ) -> httpx.Response:
        headers = {**self._headers, "Idempotency-Key": idempotency_key}
        try:
            response = self._client.post(url, json=body, headers=headers)
        except httpx.HTTPError as error:
            raise DeliveryError(
                f"{self.kind} POST {url} failed: {type(error).__name__}: {error}",
                receiver=_receiver(message),
            ) from error
        if not response.is_success:
            raise DeliveryError(
                f"{self.kind} POST {url} answered {response.status_code}: {response.text[:200]}",
                receiver=_receiver(message),
            )
        return response

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r}, timeout={self.timeout})"


class WebhookNotifier(_HttpNotifier):
    """POST the Alertmanager webhook v4 message as is; ``max_alerts`` > 0 truncates."""

    kind = "webhook"

    def __init__(
        self,
        *,
        url: str,
        timeout: float = 10.0,
        max_alerts: int = 0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(url=url, timeout=timeout, headers=headers)
        if max_alerts < 0:
            raise ConfigError(f"max_alerts must be ≥ 0, got {max_alerts}", key="max_alerts")
        self.max_alerts = max_alerts

    def send(self, message: Mapping[str, Any], *, idempotency_key: str) -> None:
        """POST the message (truncated to ``max_alerts``)."""
        body = dict(message)
        alerts = list(body.get("alerts", []))
        if self.max_alerts and len(alerts) > self.max_alerts:
            body["alerts"] = alerts[: self.max_alerts]
            body["truncatedAlerts"] = len(alerts) - self.max_alerts
        self._post(self.url, body, idempotency_key=idempotency_key, message=message)


def _title(message: Mapping[str, Any]) -> str:
    alerts = message.get("alerts", [])
    firing = sum(1 for alert in alerts if alert.get("status") == "firing")
    status = str(message.get("status", "firing")).upper()
    count = firing if status == "FIRING" else len(alerts)
    labels = message.get("groupLabels") or message.get("commonLabels") or {}
    described = " ".join(f"{name}={value}" for name, value in sorted(labels.items()))
    return f"[{status}:{count}] {described}".strip()


def _alert_lines(alert: Mapping[str, Any]) -> tuple[str, str]:
    labels = alert.get("labels", {})
    annotations = alert.get("annotations", {})
    head = (
        f"{labels.get('alertname', 'alert')} — {labels.get('severity', 'unknown')} — "
        f"model {labels.get('model', '?')} — signal {labels.get('signal', '?')}"
    )
    value = annotations.get("value")
    threshold = annotations.get("threshold")
    detail = f"value {value}" if value is not None else ""
    if threshold:
        detail += f" vs threshold {threshold}"
    summary = annotations.get("summary") or annotations.get("description") or ""
    return head, " · ".join(part for part in (detail, summary) if part)


class SlackNotifier(_HttpNotifier):
    """POST a Slack incoming-webhook message: a header, one section per alert, a link."""

    kind = "slack"
    max_blocks = 48

    def __init__(
        self,
        *,
        url: str,
        timeout: float = 10.0,
        channel: str | None = None,
        username: str | None = None,
    ) -> None:
        super().__init__(url=url, timeout=timeout, headers=None)
        self.channel = channel
        self.username = username

    def render(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """The Slack JSON body for ``message``."""
        title = _title(message)
        icon = ":red_circle:" if message.get("status") == "firing" else ":large_green_circle:"
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": f"{title}"[:150]}}
        ]
        alerts = list(message.get("alerts", []))
        # Slack allows 50 blocks per message; keep room for the header and the link.
        for alert in alerts[: self.max_blocks - 2]:
            head, detail = _alert_lines(alert)
            status = alert.get("status", "firing")
            text = f"{icon if status == 'firing' else ':white_check_mark:'} *{head}*"
            if detail:
                text += f"\n{detail}"
            section: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
            blocks.append(section)
            link = alert.get("generatorURL")
            if link:
                section["text"]["text"] += f"\n<{link}|Open in watchkeeper>"
        if len(alerts) > self.max_blocks - 2:
            omitted = len(alerts) - (self.max_blocks - 2)
            blocks.append(
                {"type": "context", "elements": [{"type": "mrkdwn", "text": f"+{omitted} more"}]}
            )
        external = message.get("externalURL")
        if external:
            blocks.append(
                {
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": f"<{external}|watchkeeper>"}],
                }
            )
        body: dict[str, Any] = {"text": title, "blocks": blocks}
        if self.channel:
            body["channel"] = self.channel
        if self.username:
            body["username"] = self.username
        return body

    def send(self, message: Mapping[str, Any], *, idempotency_key: str) -> None:
        """POST the rendered Slack message."""
        self._post(self.url, self.render(message), idempotency_key=idempotency_key, message=message)


class PagerDutyNotifier(_HttpNotifier):
    """PagerDuty Events API v2: one ``trigger`` or ``resolve`` event per group.

    ``dedup_key`` is the SHA-256 of the group key, so repeats update one incident and the
    resolve closes it. https://developer.pagerduty.com/docs/events-api-v2/trigger-events/
    """

    kind = "pagerduty"

    def __init__(
        self,
        *,
        routing_key: str,
        url: str = PAGERDUTY_EVENTS_URL,
        timeout: float = 10.0,
        source: str | None = None,
    ) -> None:
        super().__init__(url=url, timeout=timeout, headers=None)
        if not isinstance(routing_key, str) or not routing_key:
            raise ConfigError("pagerduty routing_key must be a non-empty string", key="routing_key")
        self._routing_key = routing_key
        self.source = source

    def render(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """The Events API v2 body for ``message``."""
        dedup_key = hashlib.sha256(str(message.get("groupKey", "")).encode()).hexdigest()
        if message.get("status") == "resolved":
            return {
                "routing_key": self._routing_key,
                "event_action": "resolve",
                "dedup_key": dedup_key,
            }
        alerts = list(message.get("alerts", []))
        firing = [alert for alert in alerts if alert.get("status") == "firing"]
        severities = [alert.get("labels", {}).get("severity", "warning") for alert in firing]
        worst = max(severities, key=lambda name: _SEVERITY_ORDER.get(name, 1), default="warning")
        common = message.get("commonLabels", {})
        payload: dict[str, Any] = {
            "summary": _title(message)[:1024],
            "source": self.source or message.get("externalURL") or "watchkeeper",
            "severity": _PAGERDUTY_SEVERITY.get(worst, "warning"),
            "custom_details": {
                "firing": [
                    _alert_lines(alert)[0] + " " + _alert_lines(alert)[1] for alert in firing
                ],
                "num_firing": len(firing),
                "num_resolved": len(alerts) - len(firing),
            },
        }
        if "model" in common:
            payload["group"] = common["model"]
        if "alertname" in common:
            payload["class"] = common["alertname"]
        body: dict[str, Any] = {
            "routing_key": self._routing_key,
            "event_action": "trigger",
            "dedup_key": dedup_key,
            "payload": payload,
            "client": "watchkeeper",
        }
        if message.get("externalURL"):
            body["client_url"] = message["externalURL"]
        links = [
            {"href": alert["generatorURL"], "text": alert.get("labels", {}).get("alertname", "")}
            for alert in firing
            if alert.get("generatorURL")
        ]
        if links:
            body["links"] = links[:10]
        return body

    def send(self, message: Mapping[str, Any], *, idempotency_key: str) -> None:
        """POST the event to the configured events URL."""
        self._post(self.url, self.render(message), idempotency_key=idempotency_key, message=message)

    def __repr__(self) -> str:
        return f"PagerDutyNotifier(url={self.url!r}, routing_key=<hidden>)"


class AlertmanagerNotifier(_HttpNotifier):
    """Forward alerts to an external Alertmanager (``POST /api/v2/alerts``).

    Firing alerts carry ``endsAt = now + alert_ttl``: the external Alertmanager resolves them
    by itself if watchkeeper stops re-sending, so route this receiver with a
    ``repeat_interval`` shorter than ``alert_ttl``.
    """

    kind = "alertmanager"

    def __init__(
        self,
        *,
        url: str,
        timeout: float = 10.0,
        alert_ttl: float = 4 * 3600.0 + 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(url=url, timeout=timeout, headers=None)
        self.endpoint = self.url.rstrip("/") + "/api/v2/alerts"
        self.alert_ttl = _check_timeout(alert_ttl, key="alert_ttl")
        self._clock = clock

    def render(self, message: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The list of postable alerts for ``message``."""
        now = self._clock()
        postable = []
        for alert in message.get("alerts", []):
            resolved = alert.get("status") == "resolved"
            postable.append(
                {
                    "labels": dict(alert.get("labels", {})),
                    "annotations": dict(alert.get("annotations", {})),
                    "startsAt": alert.get("startsAt"),
                    "endsAt": alert.get("endsAt")
                    if resolved
                    else format_timestamp(now + self.alert_ttl),
                    "generatorURL": alert.get("generatorURL", ""),
                }
            )
        return postable

    def send(self, message: Mapping[str, Any], *, idempotency_key: str) -> None:
        """POST the postable alerts."""
        self._post(
            self.endpoint, self.render(message), idempotency_key=idempotency_key, message=message
        )


class EmailNotifier:
    """Send a multipart (text + HTML) email over SMTP.

    ``tls`` is ``"starttls"`` (upgrade a plain connection, usually port 587), ``"ssl"``
    (implicit TLS, usually 465) or ``"none"``. Credentials are used only over TLS.
    ``ca_file`` trusts a private CA (tests use a self-signed certificate).
    """

    kind = "email"

    def __init__(
        self,
        *,
        to: Sequence[str],
        sender: str,
        host: str,
        port: int = 587,
        tls: str = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        ca_file: str | None = None,
    ) -> None:
        if not to or any("@" not in address for address in to):
            raise ConfigError(f"email to: expected e-mail addresses, got {to!r}", key="to")
        if "@" not in sender:
            raise ConfigError(f"email from: expected an e-mail address, got {sender!r}", key="from")
        if tls not in ("starttls", "ssl", "none"):
            raise ConfigError(f"email tls: expected starttls, ssl or none, got {tls!r}", key="tls")
        if (username is None) != (password is None):
            raise ConfigError("email auth needs both username and password", key="username")
        if username is not None and tls == "none":
            raise ConfigError(
                "email: refusing to send a password without TLS; set tls to starttls or ssl",
                key="tls",
            )
        self.to = tuple(to)
        self.sender = sender
        self.host = host
        self.port = port
        self.tls = tls
        self.timeout = _check_timeout(timeout)
        self._username = username
        self._password = password
        self._ca_file = ca_file

    def render(self, message: Mapping[str, Any], *, idempotency_key: str) -> EmailMessage:
        """The email for ``message``; its Message-ID carries the idempotency key."""
        title = _title(message)
        alerts = list(message.get("alerts", []))
        text_lines = [title, ""]
        html_items = []
        for alert in alerts:
            head, detail = _alert_lines(alert)
            status = str(alert.get("status", "firing")).upper()
            link = alert.get("generatorURL", "")
            text_lines += [f"[{status}] {head}", f"  {detail}" if detail else "", f"  {link}", ""]
            link_html = f' <a href="{html.escape(link)}">open</a>' if link else ""
            html_items.append(
                f"<li><b>[{html.escape(status)}] {html.escape(head)}</b><br>"
                f"{html.escape(detail)}{link_html}</li>"
            )
        external = message.get("externalURL", "")
        if external:
            text_lines.append(f"watchkeeper: {external}")
        email = EmailMessage()
        email["Subject"] = title
        email["From"] = self.sender
        email["To"] = ", ".join(self.to)
        email["Date"] = formatdate(localtime=False, usegmt=True)
        domain = self.sender.rsplit("@", 1)[1]
        email["Message-ID"] = f"<{idempotency_key}@{domain}>"
        email["X-Watchkeeper-Group-Key"] = str(message.get("groupKey", ""))
        email.set_content("\n".join(text_lines))
        email.add_alternative(
            f"<html><body><h3>{html.escape(title)}</h3><ul>{''.join(html_items)}</ul>"
            + (f'<p><a href="{html.escape(external)}">watchkeeper</a></p>' if external else "")
            + "</body></html>",
            subtype="html",
        )
        return email

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self._ca_file)

    def send(self, message: Mapping[str, Any], *, idempotency_key: str) -> None:
        """Connect, secure, authenticate and send."""
        email = self.render(message, idempotency_key=idempotency_key)
        try:
            if self.tls == "ssl":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=self._context()
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                client.ehlo()
                if self.tls == "starttls":
                    client.starttls(context=self._context())
                    client.ehlo()
                if self._username is not None and self._password is not None:
                    client.login(self._username, self._password)
                client.send_message(email)
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryError(
                f"email via {self.host}:{self.port} failed: {type(error).__name__}: {error}",
                receiver=_receiver(message),
            ) from error

    def close(self) -> None:
        """Nothing to release: each send opens its own SMTP session."""

    def __repr__(self) -> str:
        return (
            f"EmailNotifier(to={list(self.to)!r}, host={self.host!r}, port={self.port}, "
            f"tls={self.tls!r})"
        )
