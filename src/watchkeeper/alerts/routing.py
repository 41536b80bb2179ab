"""Alertmanager routing: label matchers, the route tree, silences and inhibition rules.

The semantics are Alertmanager's (https://prometheus.io/docs/alerting/latest/configuration/):

* a matcher is ``name op "value"`` with ``=``, ``!=``, ``=~`` and ``!~``; regular expressions
  are anchored at both ends, and a missing label reads as the empty string;
* the root route matches every alert; children are tried in order, an alert descends into the
  first child that matches and stops there unless that child sets ``continue``; a route with
  no matching child is itself the match. Children inherit ``receiver``, ``group_by`` and the
  three timers from their parent;
* a silence mutes alerts matching all of its matchers between ``starts_at`` and ``ends_at``;
* an inhibition rule mutes a *target* alert while a firing *source* alert exists whose
  ``equal`` labels have the same values (an alert never inhibits itself).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from watchkeeper.alerts.model import Alert, Labels
from watchkeeper.errors import ConfigError

__all__ = [
    "DEFAULT_GROUP_BY",
    "GROUP_BY_ALL",
    "InhibitRule",
    "MatchOp",
    "Matcher",
    "Route",
    "RouteMatch",
    "Silence",
    "inhibited_fingerprints",
    "parse_matchers",
]

GROUP_BY_ALL = ("...",)
"""``group_by: ['...']`` groups by every label, i.e. one group per alert."""

DEFAULT_GROUP_BY = ("alertname",)

_MATCHER = re.compile(r"^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


class MatchOp(StrEnum):
    """A label matcher's operator."""

    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


def _linear_regex(name: str, op: MatchOp, value: str) -> Any:
    """Compile with RE2, as Alertmanager does: matching time is linear in the label's length,
    so a silence or route from the API cannot backtrack for seconds (``(a+)+$``)."""
    import re2

    options = re2.Options()
    options.log_errors = False
    try:
        return re2.compile(value, options)
    except re2.error as error:
        reason = (
            error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else error
        )
        raise ConfigError(
            f"matcher {name}{op.value}{value!r}: bad regular expression ({reason}); "
            "RE2 syntax, without backreferences or lookaround",
            key=name,
        ) from error


@dataclass(frozen=True)
class Matcher:
    """``name op value``; regular expressions must match the whole label value."""

    name: str
    op: MatchOp
    value: str
    _pattern: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "op", MatchOp(self.op))
        if self.op in (MatchOp.REGEX, MatchOp.NOT_REGEX):
            object.__setattr__(self, "_pattern", _linear_regex(self.name, self.op, self.value))

    @classmethod
    def parse(cls, text: str, *, key: str = "matchers") -> Matcher:
        """Parse ``severity="critical"``, ``model=~"credit.*"`` (quotes optional)."""
        found = _MATCHER.match(text) if isinstance(text, str) else None
        if found is None:
            raise ConfigError(
                f'{key}: expected a matcher such as severity="critical", got {text!r}', key=key
            )
        name, op, value = found.groups()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        return cls(name=name, op=MatchOp(op), value=value)

    def matches(self, labels: Labels) -> bool:
        """Whether ``labels`` satisfies the matcher (a missing label is the empty string)."""
        actual = labels.get(self.name, "")
        if self.op is MatchOp.EQUAL:
            return actual == self.value
        if self.op is MatchOp.NOT_EQUAL:
            return actual != self.value
        assert self._pattern is not None
        found = self._pattern.fullmatch(actual) is not None
        return found if self.op is MatchOp.REGEX else not found

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op.value}"{escaped}"'


def parse_matchers(items: object, *, key: str) -> tuple[Matcher, ...]:
    """Parse a list of matcher strings, naming ``key[i]`` in errors."""
    if items is None:
        return ()
    if not isinstance(items, list | tuple):
        raise ConfigError(
            f'{key}: expected a list of matchers such as [severity="critical"], got {items!r}',
            key=key,
        )
    matchers = []
    for index, item in enumerate(items):
        if isinstance(item, Matcher):
            matchers.append(item)
        else:
            matchers.append(Matcher.parse(item, key=f"{key}[{index}]"))
    return tuple(matchers)


def _all_match(matchers: Sequence[Matcher], labels: Labels) -> bool:
    return all(matcher.matches(labels) for matcher in matchers)


@dataclass(frozen=True)
class RouteMatch:
    """A route an alert landed on, with the settings it inherited."""

    key: str
    receiver: str
    group_by: tuple[str, ...]
    group_wait: float
    group_interval: float
    repeat_interval: float

    def group_labels(self, labels: Labels) -> dict[str, str]:
        """The labels that name the alert's group on this route."""
        if self.group_by == GROUP_BY_ALL:
            return dict(labels)
        return {name: labels[name] for name in self.group_by if name in labels}

    def group_key(self, labels: Labels) -> str:
        """Alertmanager-style group key: ``route key:{name="value", ...}``."""
        pairs = ", ".join(
            f'{name}="{value}"' for name, value in sorted(self.group_labels(labels).items())
        )
        return f"{self.key}:{{{pairs}}}"


@dataclass(frozen=True)
class Route:
    """A node of the route tree; ``None`` settings are inherited from the parent."""

    receiver: str | None = None
    matchers: tuple[Matcher, ...] = ()
    continue_: bool = False
    group_by: tuple[str, ...] | None = None
    group_wait: float | None = None
    group_interval: float | None = None
    repeat_interval: float | None = None
    routes: tuple[Route, ...] = ()

    def match(self, labels: Labels) -> list[RouteMatch]:
        """Return every route the alert is delivered through (root first settings applied)."""
        if self.receiver is None:
            raise ConfigError("the root route needs a receiver", key="route.receiver")
        root = RouteMatch(
            key="{}",
            receiver=self.receiver,
            group_by=self.group_by if self.group_by is not None else DEFAULT_GROUP_BY,
            group_wait=self.group_wait if self.group_wait is not None else 30.0,
            group_interval=self.group_interval if self.group_interval is not None else 300.0,
            repeat_interval=self.repeat_interval if self.repeat_interval is not None else 14400.0,
        )
        return self._descend(labels, root)

    def _descend(self, labels: Labels, settings: RouteMatch) -> list[RouteMatch]:
        found: list[RouteMatch] = []
        for index, child in enumerate(self.routes):
            if not _all_match(child.matchers, labels):
                continue
            child_settings = RouteMatch(
                key=f"{settings.key}/{index}{{{','.join(map(str, child.matchers))}}}",
                receiver=child.receiver or settings.receiver,
                group_by=child.group_by if child.group_by is not None else settings.group_by,
                group_wait=_inherit(child.group_wait, settings.group_wait),
                group_interval=_inherit(child.group_interval, settings.group_interval),
                repeat_interval=_inherit(child.repeat_interval, settings.repeat_interval),
            )
            found.extend(child._descend(labels, child_settings))
            if not child.continue_:
                break
        return found or [settings]

    def receivers(self) -> set[str]:
        """Every receiver named in this subtree."""
        names = {self.receiver} if self.receiver else set()
        for child in self.routes:
            names |= child.receivers()
        return names


def _inherit(own: float | None, parent: float) -> float:
    return parent if own is None else own


@dataclass(frozen=True)
class Silence:
    """Mute matching alerts from ``starts_at`` to ``ends_at`` (epoch seconds)."""

    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    updated_at: float = 0.0

    def __post_init__(self) -> None:
        if not self.matchers:
            raise ConfigError("a silence needs at least one matcher", key="matchers")
        if self.ends_at <= self.starts_at:
            raise ConfigError(
                f"silence ends_at ({self.ends_at}) must be after starts_at ({self.starts_at})",
                key="ends_at",
            )
        if not self.created_by.strip():
            raise ConfigError("a silence needs created_by (who set it)", key="created_by")

    def is_active(self, now: float) -> bool:
        """Whether the silence mutes alerts at ``now``."""
        return self.starts_at <= now < self.ends_at

    def mutes(self, labels: Labels, now: float) -> bool:
        """Whether this silence mutes an alert with ``labels`` at ``now``."""
        return self.is_active(now) and _all_match(self.matchers, labels)

    def expired(self, now: float) -> Silence:
        """A copy that ends at ``now`` (or is pending and ends immediately)."""
        start = min(self.starts_at, now)
        return replace(self, starts_at=start, ends_at=max(now, start + 0.001), updated_at=now)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict; :meth:`from_dict` reverses it."""
        return {
            "id": self.id,
            "matchers": [str(matcher) for matcher in self.matchers],
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "created_by": self.created_by,
            "comment": self.comment,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Silence:
        """Rebuild a silence from :meth:`to_dict` output."""
        return cls(
            id=str(data["id"]),
            matchers=parse_matchers(list(data["matchers"]), key="matchers"),
            starts_at=float(data["starts_at"]),
            ends_at=float(data["ends_at"]),
            created_by=str(data["created_by"]),
            comment=str(data.get("comment", "")),
            updated_at=float(data.get("updated_at", 0.0)),
        )


@dataclass(frozen=True)
class InhibitRule:
    """While a firing alert matches ``source_matchers``, mute alerts matching
    ``target_matchers`` that carry the same values for every label in ``equal``."""

    source_matchers: tuple[Matcher, ...]
    target_matchers: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()

    def _key(self, labels: Labels) -> tuple[str, ...]:
        return tuple(labels.get(name, "") for name in self.equal)


def inhibited_fingerprints(
    rules: Sequence[InhibitRule], alerts: Iterable[Alert], now: float
) -> set[str]:
    """Return the fingerprints of ``alerts`` muted by ``rules`` at ``now``."""
    current = [alert for alert in alerts if not alert.is_resolved_at(now)]
    muted: set[str] = set()
    for rule in rules:
        sources: dict[tuple[str, ...], set[str]] = {}
        for alert in current:
            if _all_match(rule.source_matchers, alert.labels):
                sources.setdefault(rule._key(alert.labels), set()).add(alert.fingerprint)
        if not sources:
            continue
        for alert in current:
            if not _all_match(rule.target_matchers, alert.labels):
                continue
            holders = sources.get(rule._key(alert.labels), set())
            if holders - {alert.fingerprint}:
                muted.add(alert.fingerprint)
    return muted
