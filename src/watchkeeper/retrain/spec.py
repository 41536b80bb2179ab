"""How a model is retrained: its training entry point, the data it gets and the gate it passes.

>>> spec = RetrainSpec.from_dict({"trainer": "mypkg.train:fit", "label_delay": "1d",
...                               "lookback": "30d", "metric": "accuracy", "margin": 0.01})
>>> spec.label_delay_seconds, spec.holdout_fraction, spec.alpha
(86400.0, 0.2, 0.05)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from watchkeeper.alerts.model import parse_duration
from watchkeeper.errors import ConfigError
from watchkeeper.retrain.sources import CallableSource, FeastSource, FileSource, parse_base
from watchkeeper.stats.paired import METRICS

__all__ = ["RetrainSpec"]

_KEYS: Final = (
    "trainer",
    "metric",
    "margin",
    "alpha",
    "lookback",
    "label_delay",
    "holdout_fraction",
    "min_rows",
    "min_class_share",
    "params",
    "base",
)


@dataclass(frozen=True, slots=True)
class RetrainSpec:
    """A model's retraining configuration (docs/retraining.md).

    ``trainer`` is ``package.module:function``; it gets the training frame and a
    :class:`~watchkeeper.retrain.pipeline.TrainingContext` and returns a fitted model (or a
    path to an artifact). Events of the last ``lookback`` seconds whose labels are mature
    (predicted at least ``label_delay`` seconds ago) are the data; the most recent
    ``holdout_fraction`` of them (in time) is the holdout both models are scored on. The
    candidate passes when it beats the champion on ``metric`` by at least ``margin`` (in the
    metric's units; for errors, a reduction) **and** the paired test gives ``p < alpha``.
    ``base`` is optional base data added to the training rows (:mod:`~watchkeeper.retrain.sources`).
    """

    trainer: str
    metric: str = "accuracy"
    margin: float = 0.0
    alpha: float = 0.05
    lookback_seconds: float = 30 * 86_400.0
    label_delay_seconds: float = 0.0
    holdout_fraction: float = 0.2
    min_rows: int = 500
    min_class_share: float = 0.02
    params: Mapping[str, Any] | None = None
    base: FileSource | CallableSource | FeastSource | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.trainer, str) or self.trainer.count(":") != 1:
            raise ConfigError(
                f"trainer: expected 'package.module:function', got {self.trainer!r}",
                key="trainer",
            )
        if self.metric not in METRICS:
            raise ConfigError(
                f"metric: expected one of {', '.join(METRICS)}, got {self.metric!r}", key="metric"
            )
        _check(self.margin >= 0.0, "margin", f"must be >= 0, got {self.margin}")
        _check(0.0 < self.alpha < 0.5, "alpha", f"must be in (0, 0.5), got {self.alpha}")
        _check(self.lookback_seconds > 0, "lookback", "must be a positive duration")
        _check(
            0.0 < self.holdout_fraction < 1.0,
            "holdout_fraction",
            f"must be in (0, 1), got {self.holdout_fraction}",
        )
        _check(self.min_rows >= 20, "min_rows", f"must be >= 20, got {self.min_rows}")
        _check(
            0.0 <= self.min_class_share < 0.5,
            "min_class_share",
            f"must be in [0, 0.5), got {self.min_class_share}",
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RetrainSpec:
        """Build from a config mapping; unknown keys and bad values name the key."""
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"retrain: expected a mapping, got {type(data).__name__}", key="retrain"
            )
        unknown = sorted(set(data) - set(_KEYS))
        if unknown:
            raise ConfigError(
                f"retrain.{unknown[0]}: unknown key; expected {', '.join(_KEYS)}",
                key=f"retrain.{unknown[0]}",
            )
        if "trainer" not in data:
            raise ConfigError(
                "retrain.trainer: required ('package.module:function')", key="trainer"
            )
        params = data.get("params")
        if params is not None and not isinstance(params, Mapping):
            raise ConfigError("retrain.params: expected a mapping", key="params")
        return cls(
            trainer=data["trainer"],
            metric=str(data.get("metric", "accuracy")),
            margin=_number(data, "margin", 0.0),
            alpha=_number(data, "alpha", 0.05),
            lookback_seconds=parse_duration(data.get("lookback", "30d"), key="lookback"),
            label_delay_seconds=parse_duration(data.get("label_delay", 0), key="label_delay"),
            holdout_fraction=_number(data, "holdout_fraction", 0.2),
            min_rows=int(_number(data, "min_rows", 500)),
            min_class_share=_number(data, "min_class_share", 0.02),
            params=dict(params) if params is not None else None,
            base=parse_base(data["base"]) if data.get("base") is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that :meth:`from_dict` reads back."""
        return {
            "trainer": self.trainer,
            "metric": self.metric,
            "margin": self.margin,
            "alpha": self.alpha,
            "lookback": self.lookback_seconds,
            "label_delay": self.label_delay_seconds,
            "holdout_fraction": self.holdout_fraction,
            "min_rows": self.min_rows,
            "min_class_share": self.min_class_share,
            "params": dict(self.params) if self.params is not None else None,
            "base": None if self.base is None else self.base.to_dict(),
        }


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"retrain.{key}: {message}", key=key)


def _number(data: Mapping[str, Any], key: str, default: float) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"retrain.{key}: expected a number, got {value!r}", key=key)
    return float(value)
