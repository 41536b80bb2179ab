"""The configuration of a monitored model: its features, outputs, windows and retention.

A :class:`ModelSpec` is what a team registers once per model (``POST /v1/models``). The service
stores it and uses it to validate every ingested event (:mod:`watchkeeper.ingest`), to name the
profile windows and to expire old data. The fields of an event, a label and a feedback item are
named here once (:data:`EVENT_FIELDS`, :data:`LABEL_FIELDS`, :data:`FEEDBACK_FIELDS`). A spec is
the JSON of the service wire contract::

    {"name": "churn", "task": "classification",
     "features": {"age": "numeric", "plan": "categorical"},
     "prediction": "prediction", "proba": {"0": "proba_0", "1": "proba_1"},
     "target_kind": "categorical", "windows": [3600, "day", "week", "month"],
     "timezone": "Europe/Paris", "segments": ["region"],
     "retention_days": 30, "profile_retention_days": 400,
     "quality": {"alpha": 0.01, "floors": {"missing_rate": 0.1}},
     "outcomes": {"click": "binary", "revenue": "numeric"}}

``prediction`` names the column that holds the model output in reports (``None``: the model
sends no prediction); ``proba`` maps each class label to the name of its probability column,
and its keys are the only class labels an event's ``proba`` may use. ``windows`` lists fixed
lengths and calendar units (:mod:`watchkeeper.windowing`); calendar windows follow ``timezone``.
``quality`` sets the data-quality thresholds of the model's windows and range reports
(``docs/quality.md``). ``outcomes`` declares the business outcomes the model's predictions may
get (``POST /v1/models/{name}/outcomes``): each name with its kind, ``binary`` (a click, a
conversion) or ``numeric`` (revenue); an outcome of an undeclared name is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from watchkeeper.errors import ConfigError
from watchkeeper.ingest.rules import text_problem
from watchkeeper.schema import ColumnKind, TaskType
from watchkeeper.stats.quality_thresholds import QualityThresholds
from watchkeeper.windowing import UTC_NAME, WindowLength, check_timezone

__all__ = [
    "EVENT_FIELDS",
    "FEEDBACK_FIELDS",
    "LABEL_FIELDS",
    "MAX_OUTCOMES",
    "OUTCOME_FIELDS",
    "RESERVED_FIELDS",
    "EventModel",
    "ModelSpec",
    "OutcomeKind",
    "check_model_name",
]

#: Top-level fields of a prediction event; a feature may not take one of these names, because
#: the columnar body (Arrow / Parquet) puts features and these fields side by side.
EVENT_FIELDS = frozenset(
    {
        "id",
        "timestamp",
        "version",
        "features",
        "prediction",
        "proba",
        "latency_ms",
        "error",
        "segment",
        "unit",
        "arm",
    }
)
RESERVED_FIELDS = EVENT_FIELDS
#: Fields of a delayed label and of a feedback item.
LABEL_FIELDS = frozenset({"id", "label", "timestamp"})
FEEDBACK_FIELDS = frozenset({"id", "user_id", "rating", "comment", "timestamp"})
#: Fields of a business outcome: ``id`` (the prediction's event id) or ``unit`` (the unit's
#: latest prediction at or before ``timestamp``).
OUTCOME_FIELDS = frozenset({"id", "unit", "name", "value", "timestamp"})
#: How many outcomes a model may declare: each adds a handful of signals to every window.
MAX_OUTCOMES = 32
# Outcome names become parts of signal names (``outcome.click.rate``) and Prometheus label
# values: no dots, nothing a reader must quote.
_OUTCOME_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class OutcomeKind(StrEnum):
    """What an outcome's values are: ``binary`` (true/false, 0/1) or ``numeric`` (a number)."""

    BINARY = "binary"
    NUMERIC = "numeric"


_RESERVED_PREFIXES = ("proba.", "segment.")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def check_model_name(name: object, *, key: str = "name") -> str:
    """``name`` if it is a valid model name (the monitor's and the registry's rule), else a
    :class:`ConfigError` naming ``key``."""
    if not isinstance(name, str) or not _MODEL_NAME.fullmatch(name):
        raise ConfigError(
            f"{key}: {name!r} is not a valid model name; use 1-128 letters, digits, "
            "'_', '.' or '-', starting with a letter or digit",
            key=key,
        )
    return name


_MAX_NAME_LENGTH = 128
_DEFAULT_WINDOWS = (WindowLength("fixed", 3600), WindowLength("fixed", 86_400))
_DEFAULT_QUALITY = QualityThresholds()  # frozen, so one shared default is safe
_KNOWN_KEYS = frozenset(
    {
        "name",
        "task",
        "features",
        "prediction",
        "proba",
        "target_kind",
        "windows",
        "timezone",
        "segments",
        "retention_days",
        "profile_retention_days",
        "quality",
        "outcomes",
        "retrain",
    }
)


def _check_outcomes(outcomes: object) -> dict[str, OutcomeKind]:
    """The declared outcomes, checked: names for signal names, kinds from :class:`OutcomeKind`."""
    if not isinstance(outcomes, Mapping):
        raise ConfigError(
            "outcomes: must be a mapping of outcome name to kind (binary or numeric)",
            key="outcomes",
        )
    if len(outcomes) > MAX_OUTCOMES:
        raise ConfigError(
            f"outcomes: at most {MAX_OUTCOMES} outcomes may be declared, got {len(outcomes)}",
            key="outcomes",
        )
    checked: dict[str, OutcomeKind] = {}
    for name, kind in outcomes.items():
        key = f"outcomes.{name}"
        if not isinstance(name, str) or not _OUTCOME_NAME.fullmatch(name):
            raise ConfigError(
                f"{key}: {name!r} is not a valid outcome name; use 1-64 letters, digits or '_', "
                "not starting with a digit",
                key=key,
            )
        try:
            checked[name] = OutcomeKind(kind)
        except ValueError:
            raise ConfigError(
                f"{key}: unknown outcome kind {kind!r}; use one of binary, numeric", key=key
            ) from None
    return checked


class EventModel(Protocol):
    """What validation reads from a model's configuration (a :class:`ModelSpec` satisfies it)."""

    @property
    def task(self) -> TaskType: ...

    @property
    def features(self) -> Mapping[str, ColumnKind]: ...

    @property
    def proba(self) -> Mapping[str, str] | None: ...

    @property
    def segments(self) -> Sequence[str]: ...

    @property
    def target_kind(self) -> ColumnKind | None: ...

    @property
    def outcomes(self) -> Mapping[str, OutcomeKind]: ...


def _check_label(value: object, *, key: str, what: str) -> str:
    # Names end up in stored JSON and window keys: neither store keeps NUL or lone surrogates.
    if not isinstance(value, str) or not value or text_problem(value, _MAX_NAME_LENGTH):
        raise ConfigError(
            f"{key}: {what} must be a non-empty string of at most {_MAX_NAME_LENGTH} "
            f"characters without NUL or lone surrogates, got {value!r}",
            key=key,
        )
    return value


def _check_kind(value: object, *, key: str) -> ColumnKind:
    if isinstance(value, str) and value in ColumnKind.__members__.values():
        return ColumnKind(value)
    choices = ", ".join(kind.value for kind in ColumnKind)
    raise ConfigError(f"{key}: unknown column kind {value!r}; use one of {choices}", key=key)


def _check_positive_int(value: object, *, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{key}: must be a positive integer, got {value!r}", key=key)
    return value


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A monitored model's configuration, validated on construction.

    Parameters
    ----------
    name:
        Model name: letters, digits, ``_ . -``; at most 128 characters, starting alphanumeric.
    task:
        ``classification`` or ``regression``; decides the kind of the prediction (a class
        label or a number) and the performance metrics.
    features:
        Feature name → :class:`ColumnKind`. Names may not be a top-level event field
        (:data:`RESERVED_FIELDS`) nor start with ``proba.`` or ``segment.``.
    prediction:
        Name of the prediction column in reports; ``None`` when the model sends none.
    proba:
        Class label → probability column name (classification only); ``None`` when the model
        sends no probabilities.
    target_kind:
        Kind of the delayed labels; ``None`` derives it from ``task`` (categorical / numeric).
    windows:
        Profile window lengths, shortest first and distinct: seconds (``3600``), durations
        (``"30m"``, ``"6h"``) or calendar units (``"day"``, ``"week"``, ``"month"``); see
        :mod:`watchkeeper.windowing`. Stored as :class:`WindowLength` values.
    timezone:
        IANA time zone of the calendar windows (default ``UTC``); fixed lengths ignore it.
    segments:
        Tag keys an event's ``segment`` may use (e.g. ``region``, ``device``).
    retention_days, profile_retention_days:
        How long raw events and window profiles are kept.
    quality:
        Data-quality thresholds (:class:`QualityThresholds`, or its configuration form
        ``{"alpha": ..., "floors": {check: floor}}``); absent entries take the defaults.
    outcomes:
        Outcome name → :class:`OutcomeKind` (at most :data:`MAX_OUTCOMES`); names have 1 to 64
        letters, digits or ``_`` and do not start with a digit.
    retrain:
        How the model is retrained and when (``None``: never); the mapping is validated as a
        :class:`~watchkeeper.retrain.config.RetrainConfig` (docs/retraining.md).

    Example
    -------
    >>> spec = ModelSpec.from_dict({"name": "iris", "task": "classification",
    ...                             "features": {"sepal_length": "numeric"}})
    >>> [window.to_json() for window in spec.windows], spec.label_kind.value
    ([3600, 86400], 'categorical')
    """

    name: str
    task: TaskType
    features: Mapping[str, ColumnKind]
    prediction: str | None = "prediction"
    proba: Mapping[str, str] | None = None
    target_kind: ColumnKind | None = None
    windows: tuple[WindowLength, ...] = _DEFAULT_WINDOWS
    timezone: str = UTC_NAME
    segments: tuple[str, ...] = ()
    retention_days: int = 30
    profile_retention_days: int = 400
    quality: QualityThresholds = _DEFAULT_QUALITY
    outcomes: Mapping[str, OutcomeKind] = field(default_factory=dict)
    retrain: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        check_model_name(self.name)
        if self.retrain is not None:
            # Imported here: the retraining package builds on this module.
            from watchkeeper.retrain.config import RetrainConfig

            RetrainConfig.from_dict(self.retrain)
        try:
            object.__setattr__(self, "task", TaskType(self.task))
        except ValueError:
            raise ConfigError(
                f"task: must be 'classification' or 'regression', got {self.task!r}", key="task"
            ) from None
        if not isinstance(self.features, Mapping):
            raise ConfigError("features: must be a mapping of feature name to kind", key="features")
        features: dict[str, ColumnKind] = {}
        for feature, kind in self.features.items():
            key = f"features.{feature}"
            _check_label(feature, key=key, what="a feature name")
            if feature in RESERVED_FIELDS or feature.startswith(_RESERVED_PREFIXES):
                raise ConfigError(
                    f"{key}: {feature!r} is reserved for an event field; rename the feature",
                    key=key,
                )
            features[feature] = _check_kind(kind, key=key)
        object.__setattr__(self, "features", features)
        if self.prediction is not None:
            _check_label(self.prediction, key="prediction", what="the prediction column")
        if self.proba is not None:
            if self.task is not TaskType.CLASSIFICATION:
                raise ConfigError(
                    "proba: class probabilities need task 'classification'", key="proba"
                )
            if not isinstance(self.proba, Mapping) or not self.proba:
                raise ConfigError(
                    "proba: must be a non-empty mapping of class label to column name",
                    key="proba",
                )
            proba: dict[str, str] = {}
            for label, column in self.proba.items():
                key = f"proba.{label}"
                proba[_check_label(label, key=key, what="a class label")] = _check_label(
                    column, key=key, what="a probability column name"
                )
            object.__setattr__(self, "proba", proba)
        if self.target_kind is not None:
            object.__setattr__(
                self, "target_kind", _check_kind(self.target_kind, key="target_kind")
            )
        self._check_windows()
        if isinstance(self.segments, str) or not isinstance(self.segments, Sequence):
            raise ConfigError("segments: must be a list of tag keys", key="segments")
        segments = tuple(
            _check_label(segment, key=f"segments[{position}]", what="a segment key")
            for position, segment in enumerate(self.segments)
        )
        bad = [segment for segment in segments if "," in segment or "=" in segment]
        if bad or len(set(segments)) != len(segments):
            raise ConfigError(
                f"segments: keys must be distinct and contain no ',' or '=', got {list(segments)}",
                key="segments",
            )
        object.__setattr__(self, "segments", segments)
        _check_positive_int(self.retention_days, key="retention_days")
        _check_positive_int(self.profile_retention_days, key="profile_retention_days")
        if not isinstance(self.quality, QualityThresholds):
            object.__setattr__(self, "quality", QualityThresholds.from_config(self.quality))
        object.__setattr__(self, "outcomes", _check_outcomes(self.outcomes))

    def _check_windows(self) -> None:
        timezone = check_timezone(self.timezone)
        if isinstance(self.windows, str) or not isinstance(self.windows, Sequence):
            raise ConfigError(
                "windows: must be a list of window lengths (seconds, '6h', 'day', 'week', 'month')",
                key="windows",
            )
        windows = tuple(
            WindowLength.parse(window, timezone=timezone, key=f"windows[{position}]")
            for position, window in enumerate(self.windows)
        )
        nominal = [window.nominal_seconds for window in windows]
        if not windows or nominal != sorted(set(nominal)):
            raise ConfigError(
                "windows: must be a non-empty list of distinct lengths, shortest first, got "
                f"{[window.to_json() for window in windows]}",
                key="windows",
            )
        object.__setattr__(self, "windows", windows)

    def window(self, value: int | str) -> WindowLength:
        """The window length of this spec written ``value`` (its form or its stored id)."""
        try:
            wanted = WindowLength.parse(value, timezone=self.timezone, key="window")
        except ConfigError:
            wanted = None
        for window in self.windows:
            if window == wanted or window.id == value:
                return window
        forms = ", ".join(repr(window.to_json()) for window in self.windows)
        raise ConfigError(
            f"window: model {self.name!r} keeps the windows {forms}, not {value!r}", key="window"
        )

    @property
    def classes(self) -> tuple[str, ...]:
        """The class labels an event's ``proba`` may name (empty when none are declared)."""
        return tuple(self.proba or ())

    @property
    def prediction_kind(self) -> ColumnKind:
        """Kind of the model output: a class label (categorical) or a number (numeric)."""
        if self.task is TaskType.CLASSIFICATION:
            return ColumnKind.CATEGORICAL
        return ColumnKind.NUMERIC

    @property
    def label_kind(self) -> ColumnKind:
        """Kind of the delayed labels: ``target_kind``, or the prediction kind when unset."""
        return self.target_kind if self.target_kind is not None else self.prediction_kind

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """Build a spec from its JSON form; unknown keys and bad values raise ConfigError."""
        if not isinstance(data, Mapping):
            raise ConfigError("model config must be a JSON object", key=None)
        unknown = sorted(set(data) - _KNOWN_KEYS)
        if unknown:
            raise ConfigError(
                f"{unknown[0]}: unknown model config key; known keys are "
                f"{', '.join(sorted(_KNOWN_KEYS))}",
                key=unknown[0],
            )
        for required in ("name", "task", "features"):
            if required not in data:
                raise ConfigError(f"{required}: missing from the model config", key=required)
        return cls(
            name=data["name"],
            task=data["task"],
            features=data["features"],
            prediction=data.get("prediction", "prediction"),
            proba=data.get("proba"),
            target_kind=data.get("target_kind"),
            windows=data.get("windows", _DEFAULT_WINDOWS),
            timezone=data.get("timezone", UTC_NAME),
            segments=data.get("segments", ()),
            retention_days=data.get("retention_days", 30),
            profile_retention_days=data.get("profile_retention_days", 400),
            quality=QualityThresholds.from_config(data.get("quality")),
            outcomes=data.get("outcomes", {}),
            retrain=data.get("retrain"),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; ``ModelSpec.from_dict(spec.to_dict()) == spec``."""
        return {
            "name": self.name,
            "task": self.task.value,
            "features": {name: kind.value for name, kind in self.features.items()},
            "prediction": self.prediction,
            "proba": None if self.proba is None else dict(self.proba),
            "target_kind": None if self.target_kind is None else self.target_kind.value,
            "windows": [window.to_json() for window in self.windows],
            "timezone": self.timezone,
            "segments": list(self.segments),
            "retention_days": self.retention_days,
            "profile_retention_days": self.profile_retention_days,
            "quality": self.quality.to_config(),
            "outcomes": {name: kind.value for name, kind in self.outcomes.items()},
            **({} if self.retrain is None else {"retrain": dict(self.retrain)}),
        }
