"""A model's ``retrain:`` configuration: the pipeline's spec plus when and how runs happen.

>>> config = RetrainConfig.from_dict({"trainer": "mypkg.train:fit", "label_delay": "1d",
...                                   "schedule": "0 3 * * 1", "mode": "manual"})
>>> config.spec.trainer, config.min_interval_seconds, config.mode.value, config.max_attempts
('mypkg.train:fit', 21600.0, 'manual', 3)

The pipeline's keys (:class:`~watchkeeper.retrain.spec.RetrainSpec`) sit next to the trigger
and execution keys in one mapping; every error names its key (``retrain.schedule``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from croniter import croniter

from watchkeeper.alerts.model import parse_duration
from watchkeeper.errors import ConfigError
from watchkeeper.retrain.spec import RetrainSpec

__all__ = ["DEFAULT_CANARY", "EXECUTOR_KINDS", "Mode", "RetrainConfig"]

#: Executors a model may name (``executor.kind``); see :mod:`watchkeeper.retrain.executor`.
EXECUTOR_KINDS: Final = ("local", "webhook")

#: The canary a passing candidate gets when the config names none: 10 %, then 50 %, then all
#: traffic, each step held while the error rate is compared (the rollout's own defaults:
#: docs/rollouts.md). ``model``, ``baseline`` (the champion) and ``candidate`` are filled in.
DEFAULT_CANARY: Final[Mapping[str, Any]] = {
    "steps": [
        {"set_weight": 10},
        {"analysis": {"count": 3}},
        {"set_weight": 50},
        {"analysis": {"count": 3}},
    ],
    "analysis": {"interval": "5m", "metrics": [{"signal": "error_rate"}]},
}

_TRIGGER_KEYS: Final = (
    "schedule",
    "min_interval",
    "after_detections",
    "max_retries",
    "retry_backoff",
    "mode",
    "canary",
    "executor",
)


class Mode(StrEnum):
    """What a run does with a candidate that passed the gate."""

    AUTOMATIC = "automatic"  # straight to a canary rollout against the champion
    MANUAL = "manual"  # registered, waiting for POST /v1/retrain/runs/{id}/approve


@dataclass(frozen=True, slots=True)
class RetrainConfig:
    """How a model is retrained (the pipeline) and when (the triggers).

    ``schedule`` is a cron expression (UTC) or ``None``; ``min_interval_seconds`` the least
    time between two runs' starts (any trigger); ``after_detections`` how many consecutive
    firings of a ``retrain`` alert it takes to start a run; a run that errors is retried up to
    ``max_retries`` times, after ``retry_backoff_seconds``, doubling; ``mode`` says whether a
    passing candidate goes to a canary at once or waits for approval; ``canary`` overrides
    the rollout's steps or analysis (each defaults to :data:`DEFAULT_CANARY`'s);
    ``executor`` names where the training runs (``kind``: local or webhook, plus that
    executor's options).
    """

    spec: RetrainSpec
    schedule: str | None = None
    min_interval_seconds: float = 6 * 3600.0
    after_detections: int = 1
    max_retries: int = 2
    retry_backoff_seconds: float = 60.0
    mode: Mode = Mode.AUTOMATIC
    canary: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_CANARY))
    executor: Mapping[str, Any] = field(default_factory=lambda: {"kind": "local"})

    @property
    def max_attempts(self) -> int:
        """Executions a run may take: the first and its retries."""
        return 1 + self.max_retries

    @property
    def executor_kind(self) -> str:
        """The executor's name (``local`` or ``webhook``)."""
        return str(self.executor["kind"])

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before the retry that follows failed attempt ``attempt`` (1-based)."""
        return self.retry_backoff_seconds * 2.0 ** max(0, attempt - 1)

    def canary_spec(self, model: str, candidate: int) -> dict[str, Any]:
        """The rollout spec of ``candidate`` against ``model``'s champion."""
        return {**self.canary, "model": model, "baseline": "champion", "candidate": candidate}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RetrainConfig:
        """Build from the ``retrain:`` mapping; unknown keys and bad values name the key."""
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"retrain: expected a mapping, got {type(data).__name__}", key="retrain"
            )
        spec = RetrainSpec.from_dict({k: v for k, v in data.items() if k not in _TRIGGER_KEYS})
        return cls(
            spec=spec,
            schedule=_schedule(data.get("schedule")),
            min_interval_seconds=_duration(data, "min_interval", "6h"),
            after_detections=_count(data, "after_detections", 1, least=1),
            max_retries=_count(data, "max_retries", 2, least=0),
            retry_backoff_seconds=_duration(data, "retry_backoff", "1m"),
            mode=_mode(data.get("mode", Mode.AUTOMATIC.value)),
            canary=_canary(data.get("canary")),
            executor=_executor(data.get("executor", "local")),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that :meth:`from_dict` reads back."""
        return {
            **self.spec.to_dict(),
            "schedule": self.schedule,
            "min_interval": self.min_interval_seconds,
            "after_detections": self.after_detections,
            "max_retries": self.max_retries,
            "retry_backoff": self.retry_backoff_seconds,
            "mode": self.mode.value,
            "canary": dict(self.canary),
            "executor": dict(self.executor),
        }


def _fail(key: str, message: str) -> ConfigError:
    return ConfigError(f"retrain.{key}: {message}", key=f"retrain.{key}")


def _schedule(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not croniter.is_valid(value):
        raise _fail(
            "schedule",
            f"expected a cron expression such as '0 3 * * *' (minute hour day month "
            f"weekday, UTC), got {value!r}",
        )
    return value


def _duration(data: Mapping[str, Any], key: str, default: str) -> float:
    return parse_duration(data.get(key, default), key=f"retrain.{key}")


def _count(data: Mapping[str, Any], key: str, default: int, *, least: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise _fail(key, f"expected an integer >= {least}, got {value!r}")
    return value


def _mode(value: Any) -> Mode:
    try:
        return Mode(value)
    except ValueError:
        choices = ", ".join(mode.value for mode in Mode)
        raise _fail("mode", f"expected one of {choices}, got {value!r}") from None


def _canary(value: Any) -> Mapping[str, Any]:
    if value is None:
        return dict(DEFAULT_CANARY)
    if not isinstance(value, Mapping):
        raise _fail("canary", f"expected a mapping of rollout steps/analysis, got {value!r}")
    fixed = sorted({"model", "baseline", "candidate"} & set(value))
    if fixed:
        raise _fail(
            f"canary.{fixed[0]}",
            "is set by the run (the model, its champion and the new version)",
        )
    from watchkeeper.rollout.spec import parse_spec

    # The default's steps unless the canary gives its own (steps, or the step_weight form),
    # the default's analysis unless it gives one.
    own_steps = any(key in value for key in ("steps", "step_weight", "max_weight"))
    merged = {**({} if own_steps else {"steps": DEFAULT_CANARY["steps"]}),
              "analysis": DEFAULT_CANARY["analysis"], **value}  # fmt: skip
    # Checked now, with placeholder versions, so a bad canary fails at configuration time.
    try:
        parse_spec({**merged, "model": "m", "baseline": "champion", "candidate": 2})
    except ConfigError as error:
        raise _fail(f"canary.{error.key or ''}".rstrip("."), str(error)) from None
    return merged


def _executor(value: Any) -> Mapping[str, Any]:
    options = {"kind": value} if isinstance(value, str) else value
    if not isinstance(options, Mapping) or options.get("kind") not in EXECUTOR_KINDS:
        raise _fail(
            "executor",
            f"expected one of {', '.join(EXECUTOR_KINDS)} (or a mapping with that 'kind' and "
            f"the executor's options), got {value!r}",
        )
    return dict(options)
