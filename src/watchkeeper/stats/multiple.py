"""Multiple-testing correction: Holm's step-down adjusted p-values.

When several columns of one window are tested at level ``alpha`` each, the chance that at least
one of them is flagged on healthy data grows with their number (1 − 0.95^20 ≈ 64 % for 20
features). Holm's procedure (Holm 1979, "A simple sequentially rejective multiple test
procedure", Scand. J. Statist. 6:65–70) keeps that family-wise error rate at ``alpha`` for any
dependence between the tests, and is uniformly more powerful than Bonferroni: the smallest
p-value is compared with ``alpha / m``, the next with ``alpha / (m − 1)``, and so on.

>>> [round(p, 3) for p in holm_adjusted([0.01, 0.04, 0.03, 0.005])]
[0.03, 0.06, 0.06, 0.02]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["holm_adjusted"]


def holm_adjusted(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given: reject hypothesis ``i`` at family-wise level
    ``alpha`` when its adjusted p-value is below ``alpha``.

    The adjusted value of the ``j``-th smallest of ``m`` p-values is
    ``max_{k <= j} min(1, (m − k + 1) · p_(k))`` (the step-down maximum keeps them monotone),
    as in R's ``p.adjust(method = "holm")`` and statsmodels' ``multipletests(method="holm")``.
    NaN p-values are not allowed (a column without a p-value is not part of the family).
    """
    values = np.asarray(p_values, dtype=np.float64)
    if values.ndim != 1 or np.isnan(values).any():
        raise ValueError("p_values must be a flat sequence of numbers without NaN")
    size = values.size
    if size == 0:
        return []
    order = np.argsort(values, kind="stable")
    scaled = (size - np.arange(size)) * values[order]
    stepped = np.minimum(np.maximum.accumulate(scaled), 1.0)
    adjusted = np.empty(size, dtype=np.float64)
    adjusted[order] = stepped
    return [float(value) for value in adjusted]
