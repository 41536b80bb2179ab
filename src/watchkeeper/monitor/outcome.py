"""The answer to an ingest call of events, labels or feedback."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from watchkeeper.ingest import Rejection
from watchkeeper.monitor.windows import EventBatch

__all__ = ["IngestOutcome"]


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What happened to a batch: accepted (new) items, duplicates, ids and rejections.

    ``duplicates`` repeat what is stored (retries, harmless); ``conflicts`` (labels and
    feedback only) differ from the label or rating already stored for their key, which is
    kept: they are refused, with the index and a reason like ``rejected``.
    """

    accepted: int
    duplicates: int
    ids: list[str]
    rejected: list[Rejection]
    # The stored events (accepted and new), for callers that count them (not on the wire).
    stored: EventBatch | None = None
    conflicts: list[Rejection] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The wire response ``{"accepted", "duplicates", "ids", "rejected"}``, plus
        ``"conflicts"`` for labels and feedback."""
        answer: dict[str, Any] = {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "ids": list(self.ids),
            "rejected": [rejection.to_dict() for rejection in self.rejected],
        }
        if self.conflicts is not None:
            answer["conflicts"] = [conflict.to_dict() for conflict in self.conflicts]
        return answer
