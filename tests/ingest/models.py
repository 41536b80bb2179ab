"""The model specs and clock the ingest tests share."""

from __future__ import annotations

from watchkeeper.ingest.spec import ModelSpec

NOW = 1_750_000_000.0

SPEC = ModelSpec.from_dict(
    {
        "name": "churn",
        "task": "classification",
        "features": {
            "age": "numeric",
            "plan": "categorical",
            "vip": "boolean",
            "signup": "datetime",
            "note": "text",
        },
        "proba": {"0": "proba_0", "1": "proba_1"},
        "segments": ["region", "device"],
    }
)
REGRESSION = ModelSpec.from_dict(
    {"name": "price", "task": "regression", "features": {"size": "numeric"}}
)
