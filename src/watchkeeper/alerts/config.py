"""YAML configuration: rule files and the Alertmanager-style routing file.

Every error is a :class:`~watchkeeper.errors.ConfigError` whose message starts with the path
of the bad value, e.g. ``rules[2].for: expected a duration such as 5m, got 'soon'`` or
``receivers[1].slack_configs[0].url: missing``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from watchkeeper._yaml import load_yaml
from watchkeeper.alerts.model import parse_duration
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
from watchkeeper.alerts.routing import InhibitRule, Route, parse_matchers
from watchkeeper.alerts.rules import RuleSpec
from watchkeeper.errors import ConfigError

__all__ = [
    "AlertingConfig",
    "ReceiverConfig",
    "dump_rules",
    "load_alerting_config",
    "load_rules",
    "parse_rules",
]

_INTEGRATION_KEYS: dict[str, dict[str, bool]] = {
    # key -> {setting: required}
    "webhook_configs": {"url": True, "timeout": False, "max_alerts": False, "headers": False},
    "slack_configs": {"url": True, "timeout": False, "channel": False, "username": False},
    "email_configs": {
        "to": True,
        "from": True,
        "smarthost": True,
        "tls": False,
        "auth_username": False,
        "auth_password": False,
        "timeout": False,
        "ca_file": False,
    },
    "pagerduty_configs": {"routing_key": True, "url": False, "timeout": False, "source": False},
    "alertmanager_configs": {"url": True, "timeout": False, "alert_ttl": False},
}


def _read(source: str | Path, *, what: str) -> Any:
    if isinstance(source, Path) or ("\n" not in source and source.endswith((".yml", ".yaml"))):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"cannot read {what} file {path}: {error}", key=str(path)) from error
    else:
        text = source
    try:
        return load_yaml(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{what} is not valid YAML: {error}", key=what) from error


def _mapping(value: object, *, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: expected a mapping, got {value!r}", key=key)
    return value


def _list(value: object, *, key: str) -> Sequence[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{key}: expected a list, got {value!r}", key=key)
    return value


def _only(data: Mapping[str, Any], allowed: Sequence[str], *, key: str) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{key}.{unknown[0]}: unknown field; expected one of {', '.join(sorted(allowed))}",
            key=f"{key}.{unknown[0]}",
        )


def load_rules(source: str | Path) -> list[RuleSpec]:
    """Parse a rules file (path or YAML text) with a top-level ``rules:`` list."""
    return parse_rules(_read(source, what="rules") or {})


def parse_rules(data: object) -> list[RuleSpec]:
    """Validate already-parsed rules: a ``{"rules": [...]}`` mapping or a bare list of rules.

    Unlike :func:`load_rules` it never reads a file, so it is safe on request bodies.
    """
    if isinstance(data, list):
        data = {"rules": data}
    data = _mapping(data, key="rules file")
    _only(data, ["rules"], key="rules file")
    specs = [
        RuleSpec.from_dict(item, path=f"rules[{index}]")
        for index, item in enumerate(_list(data.get("rules"), key="rules"))
    ]
    seen: dict[str, int] = {}
    for index, spec in enumerate(specs):
        if spec.name in seen:
            raise ConfigError(
                f"rules[{index}].name: {spec.name!r} is already used by rules[{seen[spec.name]}]",
                key=f"rules[{index}].name",
            )
        seen[spec.name] = index
    return specs


def dump_rules(specs: Sequence[RuleSpec]) -> str:
    """The rules file (YAML) for ``specs``; :func:`load_rules` reads it back."""
    return yaml.safe_dump({"rules": [spec.to_dict() for spec in specs]}, sort_keys=False)


@dataclass(frozen=True)
class ReceiverConfig:
    """A receiver as configured: its name, ``send_resolved`` and integration settings."""

    name: str
    send_resolved: bool
    integrations: tuple[tuple[str, Mapping[str, Any]], ...]

    def build(self) -> Receiver:
        """The live receiver with one notifier per integration."""
        return Receiver(
            name=self.name,
            notifiers=tuple(_notifier(kind, settings) for kind, settings in self.integrations),
            send_resolved=self.send_resolved,
        )


def _notifier(kind: str, settings: Mapping[str, Any]) -> Notifier:
    timeout = float(settings.get("timeout", 10.0))
    if kind == "webhook_configs":
        return WebhookNotifier(
            url=settings["url"],
            timeout=timeout,
            max_alerts=int(settings.get("max_alerts", 0)),
            headers=settings.get("headers"),
        )
    if kind == "slack_configs":
        return SlackNotifier(
            url=settings["url"],
            timeout=timeout,
            channel=settings.get("channel"),
            username=settings.get("username"),
        )
    if kind == "pagerduty_configs":
        return PagerDutyNotifier(
            routing_key=settings["routing_key"],
            url=settings.get("url", PAGERDUTY_EVENTS_URL),
            timeout=timeout,
            source=settings.get("source"),
        )
    if kind == "alertmanager_configs":
        return AlertmanagerNotifier(
            url=settings["url"],
            timeout=timeout,
            alert_ttl=float(settings.get("alert_ttl", 4 * 3600.0 + 900.0)),
        )
    host, _, port = str(settings["smarthost"]).rpartition(":")
    to = settings["to"]
    return EmailNotifier(
        to=[to] if isinstance(to, str) else list(to),
        sender=settings["from"],
        host=host,
        port=int(port),
        tls=settings.get("tls", "starttls"),
        username=settings.get("auth_username"),
        password=settings.get("auth_password"),
        timeout=timeout,
        ca_file=settings.get("ca_file"),
    )


@dataclass(frozen=True)
class AlertingConfig:
    """The parsed routing file: global settings, route tree, receivers, inhibition rules."""

    route: Route
    receivers: Mapping[str, ReceiverConfig]
    inhibit_rules: tuple[InhibitRule, ...] = ()
    external_url: str = ""
    resolve_timeout: float = 300.0

    def build_receivers(self) -> dict[str, Receiver]:
        """Live receivers by name."""
        return {name: config.build() for name, config in self.receivers.items()}


_ROUTE_KEYS = (
    "receiver",
    "matchers",
    "continue",
    "group_by",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "routes",
)


def _route(data: object, *, key: str, root: bool) -> Route:
    mapping = _mapping(data, key=key)
    _only(mapping, _ROUTE_KEYS, key=key)
    if root and not mapping.get("receiver"):
        raise ConfigError(f"{key}.receiver: the root route needs a receiver", key=f"{key}.receiver")
    if root and mapping.get("matchers"):
        raise ConfigError(f"{key}.matchers: the root route matches everything", key=key)
    group_by = mapping.get("group_by")
    if group_by is not None and (
        not isinstance(group_by, list) or not all(isinstance(name, str) for name in group_by)
    ):
        raise ConfigError(
            f"{key}.group_by: expected a list of label names, got {group_by!r}",
            key=f"{key}.group_by",
        )
    timers: dict[str, float | None] = {}
    for timer in ("group_wait", "group_interval", "repeat_interval"):
        value = mapping.get(timer)
        timers[timer] = None if value is None else parse_duration(value, key=f"{key}.{timer}")
        if timer != "group_wait" and timers[timer] == 0:
            raise ConfigError(f"{key}.{timer}: must be longer than 0s", key=f"{key}.{timer}")
    receiver = mapping.get("receiver")
    if receiver is not None and not isinstance(receiver, str):
        raise ConfigError(f"{key}.receiver: expected a name, got {receiver!r}", key=key)
    continue_ = mapping.get("continue", False)
    if not isinstance(continue_, bool):
        raise ConfigError(f"{key}.continue: expected true or false", key=f"{key}.continue")
    return Route(
        receiver=receiver,
        matchers=parse_matchers(mapping.get("matchers"), key=f"{key}.matchers"),
        continue_=continue_,
        group_by=tuple(group_by) if group_by is not None else None,
        group_wait=timers["group_wait"],
        group_interval=timers["group_interval"],
        repeat_interval=timers["repeat_interval"],
        routes=tuple(
            _route(child, key=f"{key}.routes[{index}]", root=False)
            for index, child in enumerate(_list(mapping.get("routes"), key=f"{key}.routes"))
        ),
    )


def _receiver(data: object, *, key: str) -> ReceiverConfig:
    mapping = _mapping(data, key=key)
    _only(mapping, ["name", "send_resolved", *_INTEGRATION_KEYS], key=key)
    name = mapping.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{key}.name: missing", key=f"{key}.name")
    send_resolved = mapping.get("send_resolved", True)
    if not isinstance(send_resolved, bool):
        raise ConfigError(f"{key}.send_resolved: expected true or false", key=key)
    integrations: list[tuple[str, Mapping[str, Any]]] = []
    for kind, fields in _INTEGRATION_KEYS.items():
        for index, settings in enumerate(_list(mapping.get(kind), key=f"{key}.{kind}")):
            path = f"{key}.{kind}[{index}]"
            settings = _mapping(settings, key=path)
            _only(settings, list(fields), key=path)
            for setting, required in fields.items():
                if required and setting not in settings:
                    raise ConfigError(f"{path}.{setting}: missing", key=f"{path}.{setting}")
            settings = dict(settings)
            for duration in ("timeout", "alert_ttl"):
                if duration in settings:
                    settings[duration] = parse_duration(
                        settings[duration], key=f"{path}.{duration}"
                    )
            if kind == "email_configs" and ":" not in str(settings["smarthost"]):
                raise ConfigError(
                    f"{path}.smarthost: expected host:port, got {settings['smarthost']!r}",
                    key=f"{path}.smarthost",
                )
            try:
                _notifier(kind, settings).close()
            except ConfigError as error:
                raise ConfigError(f"{path}: {error}", key=path) from error
            integrations.append((kind, settings))
    return ReceiverConfig(name=name, send_resolved=send_resolved, integrations=tuple(integrations))


def _inhibit(data: object, *, key: str) -> InhibitRule:
    mapping = _mapping(data, key=key)
    _only(mapping, ["source_matchers", "target_matchers", "equal"], key=key)
    source = parse_matchers(mapping.get("source_matchers"), key=f"{key}.source_matchers")
    target = parse_matchers(mapping.get("target_matchers"), key=f"{key}.target_matchers")
    if not source or not target:
        raise ConfigError(
            f"{key}: needs source_matchers and target_matchers", key=f"{key}.source_matchers"
        )
    equal = _list(mapping.get("equal"), key=f"{key}.equal")
    if not all(isinstance(name, str) for name in equal):
        raise ConfigError(f"{key}.equal: expected label names", key=f"{key}.equal")
    return InhibitRule(source_matchers=source, target_matchers=target, equal=tuple(equal))


def load_alerting_config(source: str | Path) -> AlertingConfig:
    """Parse the routing file (path or YAML text): ``global``, ``route``, ``receivers``,
    ``inhibit_rules``."""
    data = _mapping(_read(source, what="alerting config"), key="alerting config")
    _only(data, ["global", "route", "receivers", "inhibit_rules"], key="config")
    settings = _mapping(data.get("global") or {}, key="global")
    _only(settings, ["external_url", "resolve_timeout"], key="global")
    external_url = settings.get("external_url", "")
    if not isinstance(external_url, str):
        raise ConfigError("global.external_url: expected a URL", key="global.external_url")
    resolve_timeout = parse_duration(
        settings.get("resolve_timeout", "5m"), key="global.resolve_timeout"
    )
    if "route" not in data:
        raise ConfigError("route: missing; give at least {receiver: <name>}", key="route")
    route = _route(data["route"], key="route", root=True)
    receivers: dict[str, ReceiverConfig] = {}
    for index, item in enumerate(_list(data.get("receivers"), key="receivers")):
        receiver = _receiver(item, key=f"receivers[{index}]")
        if receiver.name in receivers:
            raise ConfigError(
                f"receivers[{index}].name: {receiver.name!r} is defined twice",
                key=f"receivers[{index}].name",
            )
        receivers[receiver.name] = receiver
    missing = sorted(route.receivers() - set(receivers))
    if missing:
        raise ConfigError(
            f"route: receiver {missing[0]!r} is used but not defined under receivers",
            key="route.receiver",
        )
    inhibit_rules = tuple(
        _inhibit(item, key=f"inhibit_rules[{index}]")
        for index, item in enumerate(_list(data.get("inhibit_rules"), key="inhibit_rules"))
    )
    return AlertingConfig(
        route=route,
        receivers=receivers,
        inhibit_rules=inhibit_rules,
        external_url=external_url,
        resolve_timeout=resolve_timeout,
    )
