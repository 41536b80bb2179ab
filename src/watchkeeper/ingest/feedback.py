"""Delayed labels and user feedback: each item checked on its own with the field rules.

Batches are small next to event batches (one label per event at most), so items are checked
one by one, with the per-value checks of :mod:`watchkeeper.ingest.rules`: a label id, a user id,
a class label or a comment gets the same verdict and reason as in an event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from watchkeeper.ingest import rules
from watchkeeper.ingest.columns import Rejection, ValidationResult, ValidFeedback, ValidLabel
from watchkeeper.ingest.json import check_batch
from watchkeeper.ingest.spec import FEEDBACK_FIELDS, LABEL_FIELDS, EventModel
from watchkeeper.schema import ColumnKind, TaskType

__all__ = ["validate_feedback", "validate_labels"]


def _label_kind(model: EventModel) -> ColumnKind:
    if model.target_kind is not None:
        return ColumnKind(model.target_kind)
    if model.task is TaskType.CLASSIFICATION:
        return ColumnKind.CATEGORICAL
    return ColumnKind.NUMERIC


def validate_labels(
    payload: list[Any],
    model: EventModel,
    *,
    now: float,
    max_age_seconds: float,
    max_future_seconds: float = 300.0,
    max_batch: int,
) -> ValidationResult[ValidLabel]:
    """Validate delayed labels ``[{"id", "label", "timestamp"?}]`` against ``model``.

    The label kind is ``model.target_kind``, or categorical / numeric by the task; a label may
    not be null (send nothing instead). Class labels take the canonical form of
    :func:`~watchkeeper.labels.canonical_label`, like predictions.
    """
    items = check_batch(payload, max_batch, "labels")
    window = rules.Window.build(now, max_age_seconds, max_future_seconds)
    check = rules.label_rule(_label_kind(model))
    accepted: list[ValidLabel] = []
    rejected: list[Rejection] = []
    for index, raw in enumerate(items):
        problems = _common_checks(index, raw, LABEL_FIELDS, window, rejected)
        if problems is None:
            continue
        label = check(raw.get("label"))
        if label is None:
            problems.append(Rejection(index, "label", "missing: a label may not be null"))
        elif isinstance(label, rules.Bad):
            problems.append(Rejection(index, "label", label.reason))
        if problems:
            rejected.extend(problems)
            continue
        ts = cast(float, window.timestamp(raw.get("timestamp")))
        accepted.append(ValidLabel(index=index, id=raw["id"], label=label, ts=ts))
    return ValidationResult(accepted=accepted, rejected=rejected)


def validate_feedback(
    payload: list[Any],
    model: EventModel,
    *,
    now: float,
    max_age_seconds: float,
    max_future_seconds: float = 300.0,
    max_batch: int,
) -> ValidationResult[ValidFeedback]:
    """Validate user feedback ``[{"id", "user_id", "rating" 1..5, "comment"?, "timestamp"?}]``.

    ``model`` is accepted for symmetry with the other validators (feedback has no model-specific
    fields).
    """
    del model
    items = check_batch(payload, max_batch, "feedback")
    window = rules.Window.build(now, max_age_seconds, max_future_seconds)
    accepted: list[ValidFeedback] = []
    rejected: list[Rejection] = []
    for index, raw in enumerate(items):
        problems = _common_checks(index, raw, FEEDBACK_FIELDS, window, rejected)
        if problems is None:
            continue
        user_id = rules.identifier(raw.get("user_id"), missing="missing")
        if isinstance(user_id, rules.Bad):
            problems.append(Rejection(index, "user_id", user_id.reason))
        rating = raw.get("rating")
        if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
            shown = (
                rating if isinstance(rating, int | float | str | None) else rules.json_type(rating)
            )
            problems.append(
                Rejection(index, "rating", f"expected an integer from 1 to 5, got {shown!r}"[:80])
            )
        comment = rules.text(raw.get("comment"))
        if isinstance(comment, rules.Bad):
            problems.append(Rejection(index, "comment", comment.reason))
        if problems:
            rejected.extend(problems)
            continue
        accepted.append(
            ValidFeedback(
                index=index,
                id=raw["id"],
                user_id=cast(str, user_id),
                rating=cast(int, rating),
                comment=cast("str | None", comment),
                ts=cast(float, window.timestamp(raw.get("timestamp"))),
            )
        )
    return ValidationResult(accepted=accepted, rejected=rejected)


def _common_checks(
    index: int,
    raw: object,
    fields: frozenset[str],
    window: rules.Window,
    rejected: list[Rejection],
) -> list[Rejection] | None:
    """Shape, unknown fields, ``id`` and ``timestamp`` of a label or feedback item."""
    if not isinstance(raw, Mapping):
        rejected.append(Rejection(index, "item", f"expected an object, got {rules.json_type(raw)}"))
        return None
    problems = [Rejection(index, str(key), "unknown field") for key in raw if key not in fields]
    item_id = rules.identifier(raw.get("id"), missing="missing")
    if isinstance(item_id, rules.Bad):
        problems.append(Rejection(index, "id", item_id.reason))
    ts = window.timestamp(raw.get("timestamp"))
    if isinstance(ts, rules.Bad):
        problems.append(Rejection(index, "timestamp", ts.reason))
    return problems
