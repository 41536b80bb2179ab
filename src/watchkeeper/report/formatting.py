"""How a report's numbers are written for people: the terminal summary and the HTML page agree.

>>> [format_p_value(value) for value in (None, 0.0, 1e-320, 3.2e-7, 0.0412, 0.5)]
['—', '<1e-300', '<1e-300', '3.2e-07', '0.041', '0.500']
"""

from __future__ import annotations

import math

__all__ = ["format_p_value"]


def format_p_value(value: float | None) -> str:
    """A p-value: three decimals, scientific below 0.001, and ``<1e-300`` where the floating
    point value has underflowed (a p-value of exactly 0 only means "smaller than we can hold")."""
    if value is None or not math.isfinite(value):
        return "—"
    if value < 1e-300:
        return "<1e-300"
    return f"{value:.3f}" if value >= 1e-3 else f"{value:.1e}"
