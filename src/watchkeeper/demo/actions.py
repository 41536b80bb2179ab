"""What the demo's operator sets up and does: the model's retraining configuration and the
canary every new version goes through, registering a version over HTTP, and the deliberately
broken version a person pushes.

Retraining itself is the service's (docs/retraining.md): the accuracy rule's ``action: retrain``
starts a run of :data:`RETRAIN` in the server's worker process, and a passing candidate goes to
the :data:`CANARY` through the rollout controller. The demo only watches and narrates it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from watchkeeper.demo.data import TARGET, new_classifier

if TYPE_CHECKING:
    import httpx
    import pandas as pd

__all__ = [
    "CANARY",
    "LABEL_DELAY",
    "RETRAIN",
    "register_version",
    "rollout_spec",
    "train_broken",
]

MODEL: Final = "rainfall"
#: Labels (did it rain?) arrive a day after the prediction.
LABEL_DELAY: Final = 86_400.0

#: The canary every new version goes through (docs/rollouts.md); the service's retraining
#: runs start it for their candidates, the demo for the broken version (:func:`rollout_spec`).
#:
#: A tenth of the traffic for six hours, then half of it until the accuracy from the late
#: labels shows the candidate is not worse than the champion by more than two points (an
#: always-valid test on at least 100 labelled rows per arm, looked at every two hours); then
#: all of it, and the ``champion`` alias moves to the candidate. One failing look aborts: all
#: traffic goes back to the champion.
#:
#: The arms are the daily windows that began at the current split, so the first look waits a
#: day (``initial_delay``): a look at the first events of a new window would run the
#: sample-ratio check on a handful of events, part of a batch still being stored.
CANARY: Final[Mapping[str, Any]] = {
    "steps": [
        {"set_weight": 10},
        {"pause": {"duration": "6h"}},
        {"set_weight": 50},
        {"analysis": {"count": 96}},
    ],
    "analysis": {
        "interval": "2h",
        "initial_delay": "1d",
        "failure_limit": 0,
        "inconclusive": "abort",
        "no_data": "continue",
        "metrics": [
            {
                "signal": "accuracy",
                "condition": {"kind": "difference", "value": 0.02},
                "min_samples": 100,
            }
        ],
    },
}

#: The model's ``retrain:`` section (docs/retraining.md): the last two days of events whose
#: labels are mature (a day old), the most recent fifth of them held out; the candidate must be
#: at least a point more accurate than the champion there, and significantly so (McNemar).
#: Runs execute in the server's worker process (``executor: local``), at most one every six
#: hours of event time, and a passing candidate goes straight to the :data:`CANARY`.
RETRAIN: Final[Mapping[str, Any]] = {
    "trainer": "watchkeeper.demo:train_rainfall",
    "metric": "accuracy",
    "margin": 0.01,
    "alpha": 0.05,
    "lookback": "2d",
    "label_delay": "1d",
    "min_rows": 500,
    "min_interval": "6h",
    "mode": "automatic",
    "canary": CANARY,
    "executor": "local",
}


def register_version(
    client: httpx.Client,
    model: Any,
    features: list[str],
    *,
    description: str,
    tags: Mapping[str, Any] | None = None,
) -> int:
    """Upload a fitted scikit-learn model as a new version (``POST …/versions``); its number."""
    from watchkeeper.registry.flavors import dump_object

    flavor, raw = dump_object(model)
    response = client.post(
        f"/v1/models/{MODEL}/versions",
        params={
            "flavor": flavor,
            # Gradient-boosted trees are not on skops' default list of trusted types.
            "trust": "true",
            "description": description,
            "signature": json.dumps({"features": dict.fromkeys(features, "numeric")}),
            "tags": json.dumps(dict(tags or {})),
        },
        content=raw,
        headers={"content-type": "application/octet-stream"},
    )
    response.raise_for_status()
    version: int = response.json()["version"]
    return version


def train_broken(frame: pd.DataFrame, features: list[str]) -> Any:
    """The deliberately broken version: the demo's model trained with the label encoding
    inverted (a classic pipeline bug: it predicts rain on dry days)."""
    model = new_classifier()
    model.fit(frame[features], 1 - frame[TARGET].astype(int))
    return model


def rollout_spec(candidate: int) -> dict[str, Any]:
    """The :data:`CANARY` of ``candidate`` against the champion (``POST /v1/rollouts``)."""
    return {**CANARY, "model": MODEL, "baseline": "champion", "candidate": candidate}
