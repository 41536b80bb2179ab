"""The end-to-end demo on real weather data with real drift (``watchkeeper demo``).

The bundled rainfall data (NOAA, Bellevue, Nebraska; see ``watchkeeper/data/README.md``) has
documented concept and data drift from row 12,000 on. The demo trains a classifier on rows
0–5,999 (the reference) and then runs both halves of watchkeeper:

1. **Batch report**: rows 12,000–end against the reference → ``report.json`` and
   ``report.html`` with drift, data quality and performance. Reference performance is measured
   on out-of-fold predictions, so it is an honest baseline and not training accuracy.
2. **Live loop on the embedded store** (``watchkeeper.db``, SQLite): the model is registered
   with its reference data and the default alert rules; rows 6,000–end are replayed as
   prediction events, one row every 30 s of event time (so a 6-hour window holds 720 days of
   weather); the true labels arrive afterwards and join by id; the windows close; the alert
   rules evaluate the latest window's signals. The timeline shows drift share and accuracy per
   window and the alerts that fire once the documented drift sets in.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from watchkeeper.errors import ConfigError
from watchkeeper.schema import Schema

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from watchkeeper.report.report import ReportResult

__all__ = [
    "DemoOutcome",
    "LiveOutcome",
    "load_rainfall",
    "run_demo",
    "run_live_demo",
    "train_rainfall",
]

REFERENCE_ROWS = slice(0, 6000)
CURRENT_START = 12_000
TARGET = "rain"
MODEL = "rainfall"
WINDOW_SECONDS = 6 * 3600
SECONDS_PER_ROW = 30.0
BATCH = 1000


@dataclass(frozen=True, slots=True)
class LiveOutcome:
    """What the live loop produced: its store, the per-window timeline and the alerts."""

    db_path: Path
    timeline: list[dict[str, Any]]
    firing: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class DemoOutcome:
    """Where the demo wrote its reports, the report itself, and the live loop's outcome."""

    json_path: Path
    html_path: Path
    result: ReportResult
    live: LiveOutcome | None = None


def load_rainfall() -> pd.DataFrame:
    """The bundled rainfall data set (18,159 daily rows, 8 standardised features + ``rain``)."""
    import pandas as pd

    with resources.as_file(resources.files("watchkeeper.data") / "rainfall.csv.gz") as path:
        return pd.read_csv(path)


def train_rainfall(frame: pd.DataFrame, context: Any) -> Any:
    """The demo's model fitted on ``frame``: the training function its retraining names
    (``watchkeeper.demo:train_rainfall``, docs/retraining.md)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, random_state=0)
    model.fit(frame[list(context.features)], frame[context.label].astype(int))
    return model


def _scored_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference rows with out-of-fold scores; every later row scored by the final model."""
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.model_selection import cross_val_predict
    except ImportError:
        raise ConfigError(
            "the demo trains a scikit-learn model, which is not installed: "
            "pip install 'watchkeeper[demo]' (make demo does it for you)"
        ) from None

    data = load_rainfall()
    features = [column for column in data.columns if column != TARGET]
    reference = data.iloc[REFERENCE_ROWS].reset_index(drop=True)
    current = data.iloc[REFERENCE_ROWS.stop :].reset_index(drop=True)

    model = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, random_state=0)
    out_of_fold = cross_val_predict(
        model, reference[features], reference[TARGET], cv=5, method="predict_proba"
    )[:, 1]
    model.fit(reference[features], reference[TARGET])
    current_proba = model.predict_proba(current[features])[:, 1]

    reference = reference.assign(proba=out_of_fold, prediction=(out_of_fold >= 0.5).astype(int))
    current = current.assign(proba=current_proba, prediction=(current_proba >= 0.5).astype(int))
    return reference, current


def run_demo(output: Path, *, console: Console | None = None, live: bool = True) -> DemoOutcome:
    """Train, score, report into ``output``; then, with ``live``, run the monitoring loop."""
    from watchkeeper.report.report import Report

    if console is not None:
        console.print("watchkeeper demo: rainfall data, reference rows 0–5,999, current 12,000–end")
        console.print("training a gradient-boosted classifier on the reference rows …")
    reference, later = _scored_frames()
    current = later.iloc[CURRENT_START - REFERENCE_ROWS.stop :].reset_index(drop=True)
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
    live_outcome = run_live_demo(output, reference, later) if live else None
    return DemoOutcome(json_path=json_path, html_path=html_path, result=result, live=live_outcome)


def run_live_demo(
    output: Path, reference: pd.DataFrame, later: pd.DataFrame, *, now: float | None = None
) -> LiveOutcome:
    """Replay ``later`` through the monitoring service and alerting on an embedded store."""
    import time

    from watchkeeper.alerts.defaults import pack_options
    from watchkeeper.alerts.engine import AlertingEngine
    from watchkeeper.config import Settings
    from watchkeeper.ingest.spec import ModelSpec
    from watchkeeper.monitor.service import MonitorService
    from watchkeeper.store import Store

    db_path = output / "watchkeeper.db"
    for stale in output.glob("watchkeeper.db*"):
        stale.unlink()
    url = f"sqlite:///{db_path}"
    features = [c for c in reference.columns if c not in (TARGET, "prediction", "proba")]
    now = time.time() if now is None else now
    # Event time: the replay ends an hour ago, one row every 30 s, aligned to window starts.
    # Alerts are evaluated half an hour ago and now (rules with a `for` duration fire when the
    # condition still holds that much later), so nothing is stamped in the future.
    first = now - 3600.0 - len(later) * SECONDS_PER_ROW
    first -= first % WINDOW_SECONDS
    stamps = first + SECONDS_PER_ROW * np.arange(len(later))
    settings = Settings(db=url, max_event_age_seconds=now - first + 3600.0)

    store = Store.open(url)
    service = MonitorService(store, settings=settings, clock=lambda: now)
    alerting = AlertingEngine(db=store.engine, clock=lambda: now)
    try:
        spec = ModelSpec.from_dict(
            {
                "name": MODEL,
                "task": "classification",
                "features": dict.fromkeys(features, "numeric"),
                "prediction": "prediction",
                "windows": [WINDOW_SECONDS],
            }
        )
        service.register_model(spec, reference=reference.drop(columns=[TARGET, "proba"]))
        alerting.on_model_registered(MODEL, **pack_options(spec))

        records = later[features].to_dict("records")
        predictions = later["prediction"].astype(int).astype(str).tolist()
        ids = [f"row-{REFERENCE_ROWS.stop + i}" for i in range(len(later))]
        for start in range(0, len(later), BATCH):
            stop = min(start + BATCH, len(later))
            service.ingest_events(
                MODEL,
                [
                    {
                        "id": ids[i],
                        "timestamp": float(stamps[i]),
                        "version": "v1",
                        "features": records[i],
                        "prediction": predictions[i],
                        "latency_ms": 2.0,
                    }
                    for i in range(start, stop)
                ],
            )
        # The truth arrives afterwards (here: all at once) and joins each prediction's window.
        labels = later[TARGET].astype(int).astype(str).tolist()
        for start in range(0, len(later), BATCH):
            stop = min(start + BATCH, len(later))
            service.ingest_labels(
                MODEL, [{"id": ids[i], "label": labels[i]} for i in range(start, stop)]
            )
        service.tick(now)
        timeline = _timeline(service, first, now)
        samples = service.latest_samples()
        # The pack's drift rules need their signal to hold for one window (two windows in a
        # row); the demo's drift persists, so the latest window stands for both.
        alerting.evaluate(now - WINDOW_SECONDS, samples)
        alerting.evaluate(now, samples)
        firing = [
            {
                "rule": a.rule,
                "labels": dict(a.labels),
                "summary": a.annotations.get("summary", ""),
                "fired_at": a.fired_at,
            }
            for a in alerting.alerts("firing")
        ]
    finally:
        alerting.close()
        service.close()
        store.close()
    return LiveOutcome(db_path=db_path, timeline=timeline, firing=firing)


def _timeline(service: Any, first: float, now: float) -> list[dict[str, Any]]:
    """Drift share and accuracy of every closed window, with the rows each one holds."""
    series = {
        name: {
            point["start"]: point
            for point in service.series(
                MODEL, name, window_seconds=WINDOW_SECONDS, start=first, end=now
            )
        }
        for name in ("drift_share", "accuracy")
    }
    rows_per_window = int(WINDOW_SECONDS / SECONDS_PER_ROW)
    timeline = []
    for start, point in sorted(series["drift_share"].items()):
        first_row = REFERENCE_ROWS.stop + round((start - first) / SECONDS_PER_ROW)
        accuracy = series["accuracy"].get(start, {}).get("value")
        timeline.append(
            {
                "rows": (first_row, first_row + min(point["count"], rows_per_window) - 1),
                "events": point["count"],
                "drift_share": point["value"],
                "accuracy": accuracy,
            }
        )
    return timeline
