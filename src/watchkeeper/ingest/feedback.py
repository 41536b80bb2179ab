"""Delayed labels, user feedback and business outcomes: each item checked on its own with the
field rules.

Batches are small next to event batches (one label per event at most), so items are checked
one by one, with the per-value checks of :mod:`watchkeeper.ingest.rules`: a label id, a user id,
a class label, a comment or an outcome value gets the same verdict and reason as in an event.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, cast

from watchkeeper.ingest import rules
from watchkeeper.ingest.columns import (
    Rejection,
    ValidationResult,
    ValidFeedback,
    ValidLabel,
    ValidOutcome,
)
from watchkeeper.ingest.json import check_batch
from watchkeeper.ingest.spec import (
    FEEDBACK_FIELDS,
    LABEL_FIELDS,
    OUTCOME_FIELDS,
    EventModel,
    OutcomeKind,
)
from watchkeeper.schema import ColumnKind, TaskType

__all__ = ["validate_feedback", "validate_labels", "validate_outcomes"]


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


def validate_outcomes(
    payload: list[Any],
    model: EventModel,
    *,
    now: float,
    max_age_seconds: float,
    max_future_seconds: float = 300.0,
    max_batch: int,
) -> ValidationResult[ValidOutcome]:
    """Validate business outcomes ``[{"id" | "unit", "name", "value", "timestamp"?}]`` of
    ``model``.

    An outcome names its prediction by event ``id`` or by ``unit`` (the unit's latest
    prediction at or before the outcome's time), not both. ``name`` must be one of the model's
    declared outcomes (``model.outcomes``; a typo is refused with the closest declared names); a
    binary outcome's value is ``true``/``false`` or 0/1 (stored as 1.0 / 0.0), a numeric one's
    a finite number. A value may not be null.
    """
    items = check_batch(payload, max_batch, "outcomes")
    window = rules.Window.build(now, max_age_seconds, max_future_seconds)
    declared = model.outcomes
    accepted: list[ValidOutcome] = []
    rejected: list[Rejection] = []
    for index, raw in enumerate(items):
        problems = _common_checks(index, raw, OUTCOME_FIELDS, window, rejected, id_missing=None)
        if problems is None:
            continue
        unit = rules.identifier(raw.get("unit"))
        if isinstance(unit, rules.Bad):
            problems.append(Rejection(index, "unit", unit.reason))
        elif unit is not None and raw.get("id") is not None:
            problems.append(
                Rejection(index, "unit", "send the prediction's id or a unit, not both")
            )
        elif unit is None and raw.get("id") is None:
            problems.append(
                Rejection(index, "id", "missing: an outcome needs its prediction's id (or a unit)")
            )
        name = raw.get("name")
        kind = declared.get(name) if isinstance(name, str) else None
        if kind is None:
            problems.append(Rejection(index, "name", _unknown_outcome(name, declared)))
        value = _outcome_value(raw.get("value"), kind)
        if isinstance(value, rules.Bad):
            problems.append(Rejection(index, "value", value.reason))
        if problems:
            rejected.extend(problems)
            continue
        accepted.append(
            ValidOutcome(
                index=index,
                id=raw.get("id"),
                unit=cast("str | None", unit),
                name=cast(str, name),
                value=cast(float, value),
                ts=cast(float, window.timestamp(raw.get("timestamp"))),
            )
        )
    return ValidationResult(accepted=accepted, rejected=rejected)


def _unknown_outcome(name: object, declared: Mapping[str, OutcomeKind]) -> str:
    """Why ``name`` is not an outcome of the model, with the declared names closest to it."""
    if name is None:
        return "missing: every outcome needs the name of a declared outcome"
    if not isinstance(name, str):
        return f"expected a string, got {rules.json_type(name)}"
    if not declared:
        return (
            f"unknown outcome {name[:64]!r}: the model declares no outcomes (add them to its "
            "config under 'outcomes')"
        )
    close = difflib.get_close_matches(name, list(declared), n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown outcome {name[:64]!r}{hint} (declared: {', '.join(sorted(declared))})"


def _outcome_value(value: object, kind: OutcomeKind | None) -> float | rules.Bad | None:
    """The stored value of an outcome of ``kind`` (None: the name was refused)."""
    if value is None:
        return rules.Bad("missing: an outcome needs a value (send nothing instead of null)")
    if kind is None:
        return None
    if kind is OutcomeKind.BINARY:
        flag = rules.boolean(value)
        return flag if isinstance(flag, rules.Bad) else float(cast(bool, flag))
    return rules.number(value)


def _common_checks(
    index: int,
    raw: object,
    fields: frozenset[str],
    window: rules.Window,
    rejected: list[Rejection],
    *,
    id_missing: str | None = "missing",
) -> list[Rejection] | None:
    """Shape, unknown fields, ``id`` and ``timestamp`` of a label, feedback or outcome item;
    a missing ``id`` is refused with ``id_missing`` (None: the caller decides)."""
    if not isinstance(raw, Mapping):
        rejected.append(Rejection(index, "item", f"expected an object, got {rules.json_type(raw)}"))
        return None
    problems = [Rejection(index, str(key), "unknown field") for key in raw if key not in fields]
    item_id = rules.identifier(raw.get("id"), missing=id_missing)
    if isinstance(item_id, rules.Bad):
        problems.append(Rejection(index, "id", item_id.reason))
    ts = window.timestamp(raw.get("timestamp"))
    if isinstance(ts, rules.Bad):
        problems.append(Rejection(index, "timestamp", ts.reason))
    return problems
