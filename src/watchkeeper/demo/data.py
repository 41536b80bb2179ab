"""The demo's data and model: the bundled rainfall data, its classifier, the batch report.

The bundled rainfall data (NOAA, Bellevue, Nebraska; see ``watchkeeper/data/README.md``) has
documented concept and data drift from row 12,000 on. The champion is a gradient-boosted
classifier trained on rows 0–5,999 (the reference). The batch report compares rows
12,000–end with the reference (``report.json`` and ``report.html``: drift, data quality and
performance); reference performance is measured on out-of-fold predictions, so it is an honest
baseline and not training accuracy.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watchkeeper.errors import ConfigError
from watchkeeper.schema import Schema

if TYPE_CHECKING:
    import pandas as pd

    from watchkeeper.report.report import ReportResult

__all__ = [
    "CURRENT_START",
    "REFERENCE_ROWS",
    "TARGET",
    "batch_report",
    "load_rainfall",
    "new_classifier",
    "scored_reference",
    "train_rainfall",
]

REFERENCE_ROWS = slice(0, 6000)
CURRENT_START = 12_000
TARGET = "rain"


def load_rainfall() -> pd.DataFrame:
    """The bundled rainfall data set (18,159 daily rows, 8 standardised features + ``rain``)."""
    import pandas as pd

    with resources.as_file(resources.files("watchkeeper.data") / "rainfall.csv.gz") as path:
        return pd.read_csv(path)


def new_classifier() -> Any:
    """The demo's (unfitted) model: gradient-boosted trees, fixed seed."""
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier
    except ImportError:
        raise ConfigError(
            "the demo trains a scikit-learn model, which is not installed: "
            "pip install 'watchkeeper[demo]' (make demo does it for you)"
        ) from None
    return HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, random_state=0)


def train_rainfall(frame: pd.DataFrame, context: Any) -> Any:
    """The demo's model fitted on ``frame``: the training function its retraining names
    (``watchkeeper.demo:train_rainfall``, docs/retraining.md)."""
    model = new_classifier()
    model.fit(frame[list(context.features)], frame[context.label].astype(int))
    return model


def scored_reference(data: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
    """The champion fitted on the reference rows, and those rows with out-of-fold scores
    (``proba``, ``prediction``): what the model does on data it has not seen."""
    model = new_classifier()  # first: without scikit-learn it says how to get it
    from sklearn.model_selection import cross_val_predict

    features = [column for column in data.columns if column != TARGET]
    reference = data.iloc[REFERENCE_ROWS].reset_index(drop=True)
    out_of_fold = cross_val_predict(
        model, reference[features], reference[TARGET], cv=5, method="predict_proba"
    )[:, 1]
    model.fit(reference[features], reference[TARGET])
    reference = reference.assign(proba=out_of_fold, prediction=(out_of_fold >= 0.5).astype(int))
    return model, reference


def batch_report(
    output: Path, model: Any, reference: pd.DataFrame, data: pd.DataFrame
) -> tuple[Path, Path, ReportResult]:
    """Rows 12,000–end scored by ``model`` against the scored reference: ``report.json`` and
    ``report.html`` in ``output``."""
    from watchkeeper.report.report import Report

    features = [column for column in data.columns if column != TARGET]
    current = data.iloc[CURRENT_START:].reset_index(drop=True)
    proba = model.predict_proba(current[features])[:, 1]
    current = current.assign(proba=proba, prediction=(proba >= 0.5).astype(int))
    schema = Schema(target=TARGET, prediction="prediction", proba="proba")
    result = Report(schema=schema).run(
        reference,
        current,
        reference_name="rainfall rows 0–5,999",
        current_name="rainfall rows 12,000–18,158",
    )
    output.mkdir(parents=True, exist_ok=True)
    return (
        result.save_json(output / "report.json"),
        result.save_html(output / "report.html"),
        result,
    )
