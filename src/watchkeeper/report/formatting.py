"""How a report's numbers are written for people: the terminal summary and the HTML page agree.

>>> [format_p_value(value) for value in (None, 0.0, 1e-320, 3.2e-7, 0.0412, 0.5)]
['—', '<1e-300', '<1e-300', '3.2e-07', '0.041', '0.500']
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["check_measure", "drift_order", "format_p_value"]


def format_p_value(value: float | None) -> str:
    """A p-value: three decimals, scientific below 0.001, and ``<1e-300`` where the floating
    point value has underflowed (a p-value of exactly 0 only means "smaller than we can hold")."""
    if value is None or not math.isfinite(value):
        return "—"
    if value < 1e-300:
        return "<1e-300"
    return f"{value:.3f}" if value >= 1e-3 else f"{value:.1e}"


def drift_order(columns: Mapping[str, Any]) -> list[str]:
    """The order of a report's drift table: features by effect size, largest first, then the
    model's outputs and the target the same way; columns without an effect size last in each,
    ties by name. The terminal summary and the HTML page both list columns in this order.

    >>> drift_order({"p": {"role": "prediction", "effect_size": 0.9},
    ...              "b": {"role": "feature", "effect_size": 0.1},
    ...              "a": {"role": "feature", "effect_size": 0.1},
    ...              "c": {"role": "feature", "effect_size": None}})
    ['a', 'b', 'c', 'p']
    """

    def key(name: str) -> tuple[int, int, float, str]:
        entry = columns[name] if isinstance(columns[name], Mapping) else {}
        effect = entry.get("effect_size")
        role = 0 if entry.get("role", "feature") == "feature" else 1
        if isinstance(effect, int | float) and math.isfinite(effect):
            return (role, 0, -float(effect), str(name))
        return (role, 1, 0.0, str(name))

    return sorted(columns, key=key)


def check_measure(check: Mapping[str, Any]) -> str | None:
    """What a quality check's ``reference`` and ``current`` values are when they are not shares
    of rows (``details.measure``: the ``constant`` checks compare a numeric column's range or a
    categorical column's number of distinct labels); ``None`` for the share checks. The terminal
    and the HTML page both print it next to the check's name.

    >>> check_measure({"name": "constant", "details": {"measure": "distinct labels"}})
    'distinct labels'
    """
    details = check.get("details")
    measure = details.get("measure") if isinstance(details, Mapping) else None
    return str(measure) if measure else None
