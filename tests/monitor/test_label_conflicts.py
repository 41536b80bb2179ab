"""Label and rating corrections: the first one is kept, a different later one is a conflict."""

from __future__ import annotations

import pytest

from tests.monitor.test_service import HOUR, T0, Clock, events, make_service, reference_frame, spec
from watchkeeper.store import Store


def flipped(label: str) -> str:
    return "0" if label == "1" else "1"


@pytest.mark.parametrize("closed", [False, True], ids=["open-window", "closed-window"])
def test_a_different_label_is_a_conflict_and_performance_keeps_the_first(
    store: Store, closed: bool
) -> None:
    clock = Clock(T0 + 10)
    service = make_service(store, clock)
    service.register_model(spec(), reference=reference_frame())
    batch = events(50, T0, seed=1)
    service.ingest_events("churn", batch)
    right = [{"id": e["id"], "label": e["prediction"]} for e in batch]
    assert service.ingest_labels("churn", right).accepted == 50
    if closed:
        clock.now = T0 + 2 * HOUR
        service.tick()
    window = {"start": T0, "end": T0 + HOUR}
    before = service.series("churn", "accuracy", **window)[0]["value"]
    assert before == 1.0

    retry = service.ingest_labels("churn", right[:10])
    assert (retry.accepted, retry.duplicates, retry.conflicts) == (0, 10, [])
    wrong = [{"id": e["id"], "label": flipped(e["prediction"])} for e in batch[:5]]
    corrected = service.ingest_labels("churn", [*right[10:12], *wrong])
    assert (corrected.accepted, corrected.duplicates) == (0, 2)
    assert corrected.conflicts is not None
    assert [(c.index, c.field) for c in corrected.conflicts] == [(i, "label") for i in range(2, 7)]
    kept = batch[0]["prediction"]
    assert corrected.conflicts[0].reason.startswith(
        f"event 'e0' is already labelled {kept!r}; the first label of an event is kept"
    )
    assert corrected.to_dict()["conflicts"][0]["index"] == 2
    assert service.series("churn", "accuracy", **window)[0]["value"] == before
    counts = service.counters()["models"]["churn"]
    assert (counts["labels_accepted"], counts["labels_duplicates"]) == (50, 12)
    assert counts["labels_conflicts"] == 5


def test_a_users_different_rating_is_a_conflict(store: Store) -> None:
    service = make_service(store, Clock(T0 + 10))
    service.register_model(spec(), reference=reference_frame())
    service.ingest_events("churn", events(3, T0, seed=1))
    first = service.ingest_feedback("churn", [{"id": "e0", "user_id": "u1", "rating": 5}])
    assert (first.accepted, first.conflicts) == (1, [])
    again = service.ingest_feedback(
        "churn",
        [
            {"id": "e0", "user_id": "u1", "rating": 5},
            {"id": "e0", "user_id": "u1", "rating": 1},
            {"id": "e0", "user_id": "u2", "rating": 1},
        ],
    )
    assert (again.accepted, again.duplicates) == (1, 1)
    assert again.conflicts is not None
    assert [(c.index, c.field) for c in again.conflicts] == [(1, "rating")]
    assert "user 'u1' already rated event 'e0' 5" in again.conflicts[0].reason
    points = service.series("churn", "feedback_mean_rating", start=T0, end=T0 + HOUR)
    assert [p["value"] for p in points] == [3.0]
    assert "conflicts" not in service.ingest_events("churn", events(1, T0, seed=2)).to_dict()
