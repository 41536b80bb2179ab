"""The end-to-end demo on real weather data with real drift (``watchkeeper demo``).

The bundled rainfall data (NOAA, Bellevue, Nebraska; see ``watchkeeper/data/README.md``) has
documented concept and data drift from row 12,000 on. The demo trains a classifier on rows
0–5,999 (the reference), scores rows 12,000–end (the current data), and writes a JSON and an
HTML report with drift, data quality and performance. Reference performance is measured on
out-of-fold predictions, so it is an honest baseline and not training accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from watchkeeper.schema import Schema

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from watchkeeper.report.report import ReportResult

__all__ = ["DemoOutcome", "load_rainfall", "run_demo"]

REFERENCE_ROWS = slice(0, 6000)
CURRENT_START = 12_000
TARGET = "rain"


@dataclass(frozen=True, slots=True)
class DemoOutcome:
    """Where the demo wrote its reports, and the report itself."""

    json_path: Path
    html_path: Path
    result: ReportResult


def load_rainfall() -> pd.DataFrame:
    """The bundled rainfall data set (18,159 daily rows, 8 standardised features + ``rain``)."""
    import pandas as pd

    with resources.as_file(resources.files("watchkeeper.data") / "rainfall.csv.gz") as path:
        return pd.read_csv(path)


def _scored_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import cross_val_predict

    data = load_rainfall()
    features = [column for column in data.columns if column != TARGET]
    reference = data.iloc[REFERENCE_ROWS].reset_index(drop=True)
    current = data.iloc[CURRENT_START:].reset_index(drop=True)

    model = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, random_state=0)
    out_of_fold = cross_val_predict(
        model, reference[features], reference[TARGET], cv=5, method="predict_proba"
    )[:, 1]
    model.fit(reference[features], reference[TARGET])
    current_proba = model.predict_proba(current[features])[:, 1]

    reference = reference.assign(proba=out_of_fold, prediction=(out_of_fold >= 0.5).astype(int))
    current = current.assign(proba=current_proba, prediction=(current_proba >= 0.5).astype(int))
    return reference, current


def run_demo(output: Path, *, console: Console | None = None) -> DemoOutcome:
    """Train, score, report; write ``report.json`` and ``report.html`` into ``output``."""
    from watchkeeper.report.report import Report

    if console is not None:
        console.print("watchkeeper demo: rainfall data, reference rows 0–5,999, current 12,000–end")
        console.print("training a gradient-boosted classifier on the reference rows …")
    reference, current = _scored_frames()
    schema = Schema(target=TARGET, prediction="prediction", proba="proba")
    result = Report(schema=schema).run(
        reference,
        current,
        reference_name="rainfall rows 0–5,999",
        current_name="rainfall rows 12,000–18,158",
    )
    output.mkdir(parents=True, exist_ok=True)
    json_path = result.save_json(output / "report.json")
    html_path = result.save_html(output / "report.html")
    return DemoOutcome(json_path=json_path, html_path=html_path, result=result)
