"""Thresholds of the data-quality checks, and the one parser of their configuration.

:class:`QualityThresholds` is what the checks of :mod:`watchkeeper.stats.quality` read. Its
configuration form — ``{"alpha": 0.01, "floors": {"missing_rate": 0.1}}``, check names as keys
— is parsed here once, by :meth:`QualityThresholds.from_config`, for all three ways to set it:
the ``quality`` section of a model spec (:class:`watchkeeper.ingest.spec.ModelSpec`), the CLI
options ``--quality-alpha`` / ``--quality-floor`` of ``watchkeeper report`` and ``check``
(:func:`parse_floor_option` only splits the text), and the Python API. So a bad value gets
the same message wherever it was written. Imports nothing heavy: the model spec uses it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from watchkeeper.errors import ConfigError

__all__ = ["CHECK_FLOORS", "QualityThresholds", "parse_floor_option"]

#: Check name → the :class:`QualityThresholds` field that holds its floor.
CHECK_FLOORS: Mapping[str, str] = {
    "duplicate_rows": "max_duplicate_increase",
    "missing_rate": "max_missing_increase",
    "new_categories": "max_new_category_share",
    "non_numeric_share": "max_non_numeric_share",
    "out_of_range_share": "max_out_of_range_share",
}
_CONFIG_KEYS = ("alpha", "floors")


@dataclass(frozen=True, slots=True, kw_only=True)
class QualityThresholds:
    """Floors and significance level of the data-quality checks (``docs/quality.md``).

    A rate check fails only when the current rate passes its floor *and* a test against the
    reference's own rate is significant at ``alpha``, so small windows do not cry wolf.

    Parameters
    ----------
    max_missing_increase:
        ``missing_rate``: floor on the increase of the missing rate over the reference's.
    max_non_numeric_share:
        ``non_numeric_share``: floor on the share of non-numbers (the reference's share, if
        higher, is the floor).
    max_out_of_range_share:
        ``out_of_range_share``: floor on the share of values outside the reference range.
    max_new_category_share:
        ``new_categories``: floor on the share of rows with labels the reference never had.
    max_duplicate_increase:
        ``duplicate_rows``: floor on the duplicate share's excess over the share a sample of
        the current size from the pooled rows is expected to have.
    alpha:
        Significance level of the tests, in (0, 1).

    >>> QualityThresholds.from_config({"alpha": 0.01, "floors": {"missing_rate": 0.1}}).to_config()
    {'alpha': 0.01, 'floors': {'duplicate_rows': 0.05, 'missing_rate': 0.1, \
'new_categories': 0.01, 'non_numeric_share': 0.0, 'out_of_range_share': 0.01}}
    """

    max_missing_increase: float = 0.05
    max_non_numeric_share: float = 0.0
    max_out_of_range_share: float = 0.01
    max_new_category_share: float = 0.01
    max_duplicate_increase: float = 0.05
    alpha: float = 0.05

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            checked = _check_value(spec.name, value, key=spec.name, level=spec.name == "alpha")
            object.__setattr__(self, spec.name, checked)

    @classmethod
    def from_config(cls, config: object, *, key: str = "quality") -> QualityThresholds:
        """Thresholds from ``{"alpha": a, "floors": {check: floor}}``; absent entries default.

        Raises :class:`ConfigError` (its ``key`` is ``quality``, ``quality.alpha`` or
        ``quality.floors.<check>``) on an unknown key or check name, naming the valid ones,
        and on a value that is no number in range.
        """
        if config is None:
            return cls()
        if not isinstance(config, Mapping):
            raise ConfigError(
                f"{key}: must be a mapping with keys {', '.join(_CONFIG_KEYS)}, got {config!r}",
                key=key,
            )
        unknown = sorted(str(name) for name in config if name not in _CONFIG_KEYS)
        if unknown:
            raise ConfigError(
                f"{key}.{unknown[0]}: unknown quality setting; valid settings are "
                f"{', '.join(_CONFIG_KEYS)}",
                key=f"{key}.{unknown[0]}",
            )
        values: dict[str, Any] = {}
        if "alpha" in config:
            values["alpha"] = _check_value(
                "quality alpha", config["alpha"], key=f"{key}.alpha", level=True
            )
        floors = config.get("floors")
        if floors is not None:
            if not isinstance(floors, Mapping):
                raise ConfigError(
                    f"{key}.floors: must be a mapping of check name to floor, got {floors!r}",
                    key=f"{key}.floors",
                )
            for check, floor in floors.items():
                field_name = CHECK_FLOORS.get(check) if isinstance(check, str) else None
                if field_name is None:
                    raise ConfigError(
                        f"quality floor {check!r}: unknown quality check; valid checks are "
                        f"{', '.join(CHECK_FLOORS)}",
                        key=f"{key}.floors.{check}",
                    )
                values[field_name] = _check_value(
                    f"quality floor {check!r}", floor, key=f"{key}.floors.{check}"
                )
        return cls(**values)

    def to_config(self) -> dict[str, Any]:
        """The configuration form; ``from_config(t.to_config()) == t``."""
        return {
            "alpha": self.alpha,
            "floors": {check: getattr(self, name) for check, name in CHECK_FLOORS.items()},
        }

    def to_dict(self) -> dict[str, float]:
        """JSON-ready form by field name."""
        return {spec.name: float(getattr(self, spec.name)) for spec in fields(self)}


def _check_value(what: str, value: object, *, key: str, level: bool = False) -> float:
    """``value`` as a float: a significance level in (0, 1) if ``level``, else a share."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(
            f"{what}: must be a number, got {value!r} ({type(value).__name__})", key=key
        )
    number = float(value)
    if level:
        if not (math.isfinite(number) and 0.0 < number < 1.0):
            raise ConfigError(
                f"{what}: must be a significance level in (0, 1), got {value!r}", key=key
            )
    elif not (math.isfinite(number) and 0.0 <= number <= 1.0):
        raise ConfigError(f"{what}: must be a share in [0, 1], got {value!r}", key=key)
    return number


def parse_floor_option(text: str) -> dict[str, object]:
    """``"CHECK=FLOOR,CHECK=FLOOR"`` (the CLI's ``--quality-floor``) as a ``floors`` mapping.

    Only splits: the names and values are checked by :meth:`QualityThresholds.from_config`, so
    the CLI and a model spec reject the same input with the same message. A value that is no
    number stays text, and is rejected there as no number.

    >>> parse_floor_option("missing_rate=0.1, new_categories=0.02")
    {'missing_rate': 0.1, 'new_categories': 0.02}
    """
    floors: dict[str, object] = {}
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        check, separator, value = part.partition("=")
        if not separator or not check.strip():
            raise ConfigError(
                f"--quality-floor: expected CHECK=FLOOR, got {part!r}; checks are "
                f"{', '.join(CHECK_FLOORS)}",
                key="quality.floors",
            )
        name = check.strip()
        if name in floors:
            raise ConfigError(
                f"--quality-floor: {name!r} given twice", key=f"quality.floors.{name}"
            )
        try:
            floors[name] = float(value)
        except ValueError:
            floors[name] = value.strip()
    return floors
