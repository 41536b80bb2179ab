"""Alert rules as specs and as built rules.

A :class:`RuleSpec` is a frozen, serialisable description (stored, sent over the API, loaded
from YAML); ``spec.build()`` returns the live :class:`Rule`, which selects signal series and
renders annotations. :func:`check_rule_references` rejects rules naming unknown models or
signals.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import yaml

from watchkeeper._yaml import load_yaml
from watchkeeper.alerts.conditions import (
    ABSENT_SIGNAL,
    AbsentCondition,
    Condition,
    ThresholdCondition,
    parse_condition,
)
from watchkeeper.alerts.model import Severity, format_duration, parse_duration
from watchkeeper.alerts.template import AnnotationTemplate
from watchkeeper.errors import ConfigError

__all__ = ["RESERVED_LABELS", "Rule", "RuleSpec", "check_rule_references"]

RESERVED_LABELS = frozenset({"alertname", "severity"})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SIGNAL = re.compile(r"^[A-Za-z_*][A-Za-z0-9_.*-]*$")
#: Actions a rule may take when one of its alerts starts firing.
ACTIONS: Final = ("rollback", "retrain")
_SPEC_KEYS = frozenset(
    {
        "name",
        "signal",
        "condition",
        "model",
        "version",
        "segment",
        "for",
        "keep_firing_for",
        "min_labels",
        "action",
        "severity",
        "labels",
        "annotations",
    }
)


def _string_map(value: object, *, key: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: expected a mapping of name to text, got {value!r}", key=key)
    result: dict[str, str] = {}
    for name, text in value.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigError(
                f"{key}.{name}: names must look like [A-Za-z_][A-Za-z0-9_]*", key=f"{key}.{name}"
            )
        if not isinstance(text, str | int | float) or isinstance(text, bool):
            raise ConfigError(f"{key}.{name}: expected text, got {text!r}", key=f"{key}.{name}")
        result[name] = str(text)
    return result


@dataclass(frozen=True, kw_only=True)
class RuleSpec:
    """A serialisable alert rule: which signal series, which condition, how long, what to say.

    ``model``/``version``/``segment`` select series (``"*"`` or ``None`` match any);
    ``signal`` is a signal name (``accuracy``, ``drift.age.score``), a glob over names
    (``drift.*.score``) or ``absent``. ``for_`` is the ``for`` duration in seconds.
    ``min_labels`` (rules on performance): a window whose ``labeled_count`` is below it has no
    usable value for the rule — neither a pass nor a fail; ``None`` sets no minimum.
    """

    name: str
    signal: str
    condition: Condition
    model: str = "*"
    version: str | None = None
    segment: str | None = None
    for_: float = 0.0
    keep_firing_for: float = 0.0
    min_labels: int | None = None
    # What watchkeeper does when an alert of the rule starts firing, besides notifying:
    # ``rollback`` moves the model's ``champion`` alias back, ``retrain`` starts a retraining
    # run of the model (docs/alerts.md, "Actions").
    action: str | None = None
    severity: Severity = Severity.WARNING
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ConfigError(
                f"name: rule names look like HighDrift ([A-Za-z_][A-Za-z0-9_]*), got {self.name!r}",
                key="name",
            )
        if not isinstance(self.signal, str) or not _SIGNAL.fullmatch(self.signal):
            raise ConfigError(
                f"signal: expected a signal name such as accuracy or drift.*.score, "
                f"got {self.signal!r}",
                key="signal",
            )
        is_absent = isinstance(self.condition, AbsentCondition)
        if (self.signal == ABSENT_SIGNAL) != is_absent:
            raise ConfigError(
                "condition: signal 'absent' goes with condition {absent_for: <duration>} "
                "and only with it",
                key="condition",
            )
        for key, seconds in (("for", self.for_), ("keep_firing_for", self.keep_firing_for)):
            if not math.isfinite(seconds) or seconds < 0:
                raise ConfigError(
                    f"{key}: expected a non-negative duration, got {seconds!r}", key=key
                )
        if self.min_labels is not None:
            if (
                isinstance(self.min_labels, bool)
                or not isinstance(self.min_labels, int)
                or self.min_labels < 1
            ):
                raise ConfigError(
                    f"min_labels: expected a whole number of labels >= 1 (or none), got "
                    f"{self.min_labels!r}",
                    key="min_labels",
                )
            if is_absent:
                raise ConfigError(
                    "min_labels: an 'absent' rule reads no labels; remove min_labels",
                    key="min_labels",
                )
        if self.action is not None and self.action not in ACTIONS:
            raise ConfigError(
                f"action: expected one of {', '.join(ACTIONS)} (or none), got {self.action!r}",
                key="action",
            )
        object.__setattr__(self, "severity", Severity(self.severity))
        labels = _string_map(self.labels, key="labels")
        clash = RESERVED_LABELS & labels.keys()
        if clash:
            raise ConfigError(
                f"labels: {sorted(clash)} are set by the rule itself; use name/severity",
                key="labels",
            )
        object.__setattr__(self, "labels", MappingProxyType(labels))
        annotations = _string_map(self.annotations, key="annotations")
        for name, source in annotations.items():
            # Compiling reports template syntax errors when the spec is made, not when it pages.
            AnnotationTemplate(source=source, key=f"annotations.{name}")
        object.__setattr__(self, "annotations", MappingProxyType(annotations))

    def __hash__(self) -> int:
        return hash((self.name, self.signal, self.model, self.version, self.segment))

    def to_dict(self) -> dict[str, Any]:
        """A plain dict in the YAML rule format; :meth:`from_dict` reverses it."""
        data: dict[str, Any] = {"name": self.name, "model": self.model}
        if self.version is not None:
            data["version"] = self.version
        if self.segment is not None:
            data["segment"] = self.segment
        data["signal"] = self.signal
        data["condition"] = self.condition.to_dict()
        data["for"] = format_duration(self.for_)
        data["keep_firing_for"] = format_duration(self.keep_firing_for)
        if self.min_labels is not None:
            data["min_labels"] = self.min_labels
        if self.action is not None:
            data["action"] = self.action
        data["severity"] = self.severity.value
        data["labels"] = dict(self.labels)
        data["annotations"] = dict(self.annotations)
        return data

    @classmethod
    def from_dict(cls, data: object, *, path: str = "rule") -> RuleSpec:
        """Validate and build a spec; errors name ``path.field`` (e.g. ``rules[2].for``)."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: expected a mapping with name, signal, condition", key=path)
        unknown = set(data) - _SPEC_KEYS
        if unknown:
            raise ConfigError(
                f"{path}.{sorted(unknown)[0]}: unknown field; rule fields are "
                f"{', '.join(sorted(_SPEC_KEYS))}",
                key=f"{path}.{sorted(unknown)[0]}",
            )
        for required in ("name", "signal", "condition"):
            if required not in data:
                raise ConfigError(f"{path}.{required}: missing", key=f"{path}.{required}")
        severity = data.get("severity", "warning")
        if severity not in {member.value for member in Severity}:
            raise ConfigError(
                f"{path}.severity: expected info, warning or critical, got {severity!r}",
                key=f"{path}.severity",
            )
        for optional in ("model", "version", "segment"):
            value = data.get(optional)
            if value is not None and not isinstance(value, str):
                raise ConfigError(
                    f"{path}.{optional}: expected text, got {value!r}", key=f"{path}.{optional}"
                )
        try:
            return cls(
                name=data["name"],
                signal=data["signal"],
                condition=parse_condition(data["condition"], key=f"{path}.condition"),
                model=data.get("model") or "*",
                version=data.get("version"),
                segment=data.get("segment"),
                for_=parse_duration(data.get("for", 0), key=f"{path}.for"),
                keep_firing_for=parse_duration(
                    data.get("keep_firing_for", 0), key=f"{path}.keep_firing_for"
                ),
                min_labels=data.get("min_labels"),
                action=data.get("action"),
                severity=Severity(severity),
                labels=_string_map(data.get("labels"), key=f"{path}.labels"),
                annotations=_string_map(data.get("annotations"), key=f"{path}.annotations"),
            )
        except ConfigError as error:
            if str(error).startswith(path):
                raise
            # Errors from the constructor name the field; prefix where it sits in the file.
            separator = "." if error.key else ": "
            raise ConfigError(
                f"{path}{separator}{error}", key=f"{path}.{error.key}" if error.key else path
            ) from error

    def to_yaml(self) -> str:
        """The rule as a YAML document."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> RuleSpec:
        """Parse one rule from YAML text."""
        return cls.from_dict(load_yaml(text))

    def build(self, *, external_url: str = "") -> Rule:
        """The live rule: compiled selector and annotation templates."""
        return Rule(spec=self, external_url=external_url)


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(
        "".join(".*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", pattern))
    )


class Rule:
    """A built rule: matches samples and renders annotations. Build with ``RuleSpec.build()``."""

    __slots__ = (
        "_signal_cache",
        "_templates",
        "generator_url",
        "signal_pattern",
        "spec",
        "threshold",
    )

    def __init__(self, *, spec: RuleSpec, external_url: str = "") -> None:
        self.spec = spec
        self.signal_pattern = _glob(spec.signal) if "*" in spec.signal else None
        self._signal_cache: dict[str, bool] = {}
        self._templates = {
            name: AnnotationTemplate(source=source, key=f"annotations.{name}")
            for name, source in spec.annotations.items()
        }
        condition = spec.condition
        self.threshold = condition.threshold if isinstance(condition, ThresholdCondition) else None
        base = external_url.rstrip("/")
        self.generator_url = f"{base}/alerts/rules/{spec.name}" if base else ""

    def signal_matches(self, signal: str) -> bool:
        """Whether a signal name is selected (glob results cached per name)."""
        if self.signal_pattern is None:
            return signal == self.spec.signal
        known = self._signal_cache.get(signal)
        if known is None:
            known = self.signal_pattern.fullmatch(signal) is not None
            self._signal_cache[signal] = known
        return known

    def alert_labels(self, series_labels: Mapping[str, str]) -> dict[str, str]:
        """Series labels, overridden by rule labels, plus ``alertname`` and ``severity``."""
        labels = dict(series_labels)
        labels.update(self.spec.labels)
        labels["alertname"] = self.spec.name
        labels["severity"] = self.spec.severity.value
        return labels

    def annotations(self, labels: Mapping[str, str], value: float | None) -> dict[str, str]:
        """Rendered annotations, plus ``value`` and ``threshold`` unless the rule sets them."""
        rendered = {
            name: template.render(value=value, labels=labels, threshold=self.threshold)
            for name, template in self._templates.items()
        }
        if value is not None and "value" not in rendered:
            rendered["value"] = f"{value:.6g}"
        condition = self.spec.condition
        if isinstance(condition, ThresholdCondition) and "threshold" not in rendered:
            rendered["threshold"] = str(condition)
        return rendered


def check_rule_references(specs: Sequence[RuleSpec], catalog: Mapping[str, Sequence[str]]) -> None:
    """Raise ``ConfigError`` for a rule whose model is not registered or whose signal no
    registered model produces (``catalog``: model → its signal names), naming the choices.

    A typo must not become a rule that silently never fires. ``model: "*"`` rules are checked
    against the signals of every registered model (and pass while none is registered).
    """
    for spec in specs:
        if spec.signal == ABSENT_SIGNAL:
            models = [spec.model] if spec.model != "*" else []
        else:
            models = [spec.model] if spec.model != "*" else sorted(catalog)
        for model in models:
            if model not in catalog:
                raise ConfigError(
                    f"rule {spec.name!r}: unknown model {model!r}; registered models: "
                    f"{_choices(sorted(catalog))}",
                    key=f"{spec.name}.model",
                )
        if spec.signal == ABSENT_SIGNAL or not models:
            continue
        produced = sorted({signal for model in models for signal in catalog[model]})
        rule = Rule(spec=spec)
        if not any(rule.signal_matches(signal) for signal in produced):
            where = f"model {spec.model!r}" if spec.model != "*" else "any registered model"
            raise ConfigError(
                f"rule {spec.name!r}: {where} produces no signal {spec.signal!r}; signals: "
                f"{_choices([*produced, ABSENT_SIGNAL])}",
                key=f"{spec.name}.signal",
            )


def _choices(names: Sequence[str], limit: int = 40) -> str:
    if not names:
        return "(none)"
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names) - limit} more)" if len(names) > limit else "")
