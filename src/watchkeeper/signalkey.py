"""The one reading and writing of signal names: ``accuracy``, ``prediction_drift.score``,
``drift.<feature>.score``, ``quality.<feature>.missing_rate``, ``outcome.<outcome>.rate``.

A name has a ``stat``, optionally a ``family`` in front, and, for the per-column families
(``drift``, ``quality``, and ``outcome`` for a business outcome), the ``column`` in between. A
column name may itself contain dots (``user.age``): the family is the first part and the stat
the last, so the column is everything between them, never cut at its own dots. The monitor names
signals with :meth:`SignalKey.format` and everything that reads them (alert samples and their
``feature`` label, ``/metrics``, the Prometheus rule export) parses them with
:meth:`SignalKey.parse`.

>>> SignalKey.parse("drift.user.age.score")
SignalKey(stat='score', family='drift', column='user.age')
>>> SignalKey("missing_rate", "quality", "income").format()
'quality.income.missing_rate'
>>> SignalKey.parse("quality.rejected_share").column is None
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["COLUMN_FAMILIES", "FEATURE_FAMILIES", "SignalKey", "feature_of"]

#: Families whose signals are about one feature (the ``feature`` label of alerts and metrics).
FEATURE_FAMILIES: Final = frozenset({"drift", "quality"})
#: Families whose signals are about one column: ``<family>.<column>.<stat>``.
COLUMN_FAMILIES: Final = FEATURE_FAMILIES | {"outcome"}


@dataclass(frozen=True, slots=True)
class SignalKey:
    """A signal name in parts: ``family.column.stat``, ``family.stat`` or ``stat``."""

    stat: str
    family: str | None = None
    column: str | None = None

    def __post_init__(self) -> None:
        if not self.stat or "." in self.stat:
            raise ValueError(f"stat: expected a name without dots, got {self.stat!r}")
        if self.family is not None and (not self.family or "." in self.family):
            raise ValueError(f"family: expected a name without dots, got {self.family!r}")
        if self.column is not None and (self.family not in COLUMN_FAMILIES or not self.column):
            raise ValueError(
                f"column: only {sorted(COLUMN_FAMILIES)} signals name a column, got "
                f"family={self.family!r}, column={self.column!r}"
            )

    def format(self) -> str:
        """The signal's name."""
        return ".".join(part for part in (self.family, self.column, self.stat) if part is not None)

    @classmethod
    def parse(cls, name: str) -> SignalKey:
        """The parts of ``name`` (the inverse of :meth:`format`)."""
        parts = name.split(".")
        if len(parts) == 1:
            return cls(parts[0])
        if len(parts) == 2:
            return cls(parts[1], parts[0])
        if parts[0] not in COLUMN_FAMILIES:
            raise ValueError(
                f"signal {name!r}: only {sorted(COLUMN_FAMILIES)} signals have a column between "
                "family and stat"
            )
        return cls(parts[-1], parts[0], ".".join(parts[1:-1]))


def feature_of(signal: str) -> str | None:
    """The column a ``drift.`` or ``quality.`` signal is about (None for other signals)."""
    if not any(signal.startswith(f"{family}.") for family in FEATURE_FAMILIES):
        return None
    try:
        return SignalKey.parse(signal).column
    except ValueError:
        return None
