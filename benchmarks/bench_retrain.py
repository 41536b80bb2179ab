"""Retraining on real drift: the rainfall champion, a retraining run, accuracy before and after.

A champion is trained on rows 0-5,999 of the bundled rainfall data and registered; every later
row is served (one row every ``--step`` seconds of event time) and labelled. At row ``--at`` a
retraining run assembles the labelled rows whose predictions are older than the label delay
(``--label-delay`` rows) within the lookback (``--lookback`` rows), trains the demo's model on
them, and gates it against the champion on the most recent fifth of them (McNemar's exact
test, margin 0.01). Then both models are scored on the rows that follow, per window of
``--window`` rows, which is what a canary and the promotion would have served.

Run: ``python benchmarks/bench_retrain.py [--at 15000] [--label-delay 720] [--lookback 2880]
[--window 720]``; prints one JSON object. Needs scikit-learn (the ``demo`` extra).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from watchkeeper.config import Settings
from watchkeeper.demo import load_rainfall
from watchkeeper.ingest.spec import ModelSpec
from watchkeeper.monitor.service import MonitorService
from watchkeeper.registry import ArtifactStore, Registry
from watchkeeper.retrain import RetrainSpec, retrain
from watchkeeper.store import Store

T0 = 1_700_000_000.0
TRAINER = "watchkeeper.demo:train_rainfall"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--at", type=int, default=15_000, help="row at which retraining runs")
    parser.add_argument("--label-delay", type=int, default=720, help="rows")
    parser.add_argument("--lookback", type=int, default=2880, help="rows")
    parser.add_argument("--window", type=int, default=720, help="rows per reported window")
    parser.add_argument("--step", type=float, default=30.0, help="event-time seconds per row")
    args = parser.parse_args()
    data = load_rainfall()
    features = [column for column in data.columns if column != "rain"]
    result: dict[str, Any] = {
        "at_row": args.at,
        "label_delay_rows": args.label_delay,
        "lookback_rows": args.lookback,
    }
    with tempfile.TemporaryDirectory() as root:
        url = f"sqlite:///{Path(root) / 'wk.db'}"
        store = Store.open(url)
        registry = Registry(store, ArtifactStore(Path(root) / "artifacts"))
        now = T0 + args.at * args.step
        settings = Settings(db=url, max_event_age_seconds=T0 + 1e9)
        service = MonitorService(store, settings=settings, clock=lambda: now)
        service.register_model(
            ModelSpec.from_dict(
                {
                    "name": "rainfall",
                    "task": "classification",
                    "prediction": "prediction",
                    "features": dict.fromkeys(features, "numeric"),
                }
            )
        )
        early = data.iloc[:6000]
        champion = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, random_state=0)
        champion.fit(early[features], early["rain"])
        record = registry.register("rainfall", champion, trust=True, registered_by="bench")
        registry.set_alias("rainfall", "champion", record.version, moved_by="bench")
        served = data.iloc[6000 : args.at]
        predictions = champion.predict(served[features])
        began = time.perf_counter()
        for start in range(0, len(served), 2000):
            part = served.iloc[start : start + 2000]
            service.ingest_events(
                "rainfall",
                [
                    {
                        "id": f"row-{index}",
                        "timestamp": T0 + index * args.step,
                        "version": "1",
                        "features": row,
                        "prediction": str(int(prediction)),
                    }
                    for index, row, prediction in zip(
                        part.index,
                        part[features].to_dict("records"),
                        predictions[start:],
                        strict=False,
                    )
                ],
            )
            service.ingest_labels(
                "rainfall",
                [{"id": f"row-{i}", "label": str(int(y))} for i, y in part["rain"].items()],
            )
        service.close()
        result["ingest_s"] = round(time.perf_counter() - began, 1)
        spec = RetrainSpec.from_dict(
            {
                "trainer": TRAINER,
                "metric": "accuracy",
                "margin": 0.01,
                "label_delay": args.label_delay * args.step,
                "lookback": args.lookback * args.step,
                "min_rows": 200,
            }
        )
        began = time.perf_counter()
        run = retrain(store, registry, "rainfall", spec, now=now, trigger={"kind": "benchmark"})
        result["retrain_s"] = round(time.perf_counter() - began, 1)
        result["run"] = run.to_dict()
        if run.version is not None:
            candidate = registry.load(registry.version("rainfall", run.version))
            after = data.iloc[args.at :]
            rows = []
            for start in range(0, len(after), args.window):
                part = after.iloc[start : start + args.window]
                truth = part["rain"].astype(int).astype(str).to_numpy()
                rows.append(
                    {
                        "rows": f"{args.at + start}-{args.at + start + len(part) - 1}",
                        "champion": round(
                            float(np.mean(champion.predict(part[features]).astype(str) == truth)),
                            3,
                        ),
                        "candidate": round(
                            float(np.mean(np.asarray(candidate.predict(part)) == truth)), 3
                        ),
                    }
                )
            result["accuracy_after"] = rows
        store.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
