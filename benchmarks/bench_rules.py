"""Benchmark: evaluate 1,000 alert rules over the latest windows of 100 models; print JSON.

Each model publishes 20 feature drift scores plus drift_share, accuracy, estimated_accuracy,
latency_p99, error_rate and feedback_mean_rating (26 samples, 2,600 in all). The rules are the
six-rule default pack per model (600 rules, globs included) plus 400 per-feature threshold rules.
Ten models drift persistently and ~5 % of the other series breach at random, so the state
machine and templating are
exercised too. Target: a full evaluation ≤ 100 ms (median of repeated evaluations).
"""

from __future__ import annotations

import json
import platform
import statistics
import time

import numpy as np

from watchkeeper.alerts import RuleEvaluator, RuleSpec, Sample, default_rules
from watchkeeper.alerts.rules import Op, ThresholdCondition

MODELS = 100
FEATURES = 20
ROUNDS = 30


def samples(rng: np.random.Generator, now: float) -> list[Sample]:
    result = []
    for model_index in range(MODELS):
        model = f"model_{model_index:03d}"
        scores = rng.gamma(2.0, 0.04, size=FEATURES)
        if model_index < 10:
            # Persistent drift on two features of ten models, so alerts go pending → firing.
            scores[:2] += 0.5
        for feature_index, score in enumerate(scores):
            result.append(
                Sample.of(
                    model=model,
                    version="1",
                    signal=f"drift.f{feature_index:02d}.score",
                    value=float(score),
                    timestamp=now,
                )
            )
        others = {
            "drift_share": float(np.mean(scores > 0.2)),
            "accuracy": float(rng.normal(0.9, 0.05)),
            "estimated_accuracy": float(rng.normal(0.9, 0.05)),
            "latency_p99": float(rng.gamma(5.0, 60.0)),
            "error_rate": float(rng.beta(1, 60)),
            "feedback_mean_rating": float(rng.normal(4.0, 0.4)),
        }
        for signal, value in others.items():
            result.append(
                Sample.of(model=model, version="1", signal=signal, value=value, timestamp=now)
            )
    return result


def rules() -> list[RuleSpec]:
    specs: list[RuleSpec] = []
    for model_index in range(MODELS):
        specs += default_rules(f"model_{model_index:03d}")
    for index in range(1000 - len(specs)):
        model_index, feature_index = index % MODELS, index // MODELS
        specs.append(
            RuleSpec(
                name=f"KeyFeature_{model_index:03d}_{feature_index:02d}",
                model=f"model_{model_index:03d}",
                signal=f"drift.f{feature_index:02d}.score",
                condition=ThresholdCondition(op=Op.GT, threshold=0.25),
                for_=300.0,
                annotations={"summary": '{{ labels.feature }} = {{ value | printf("%.3f") }}'},
            )
        )
    return specs


def main() -> None:
    rng = np.random.default_rng(20240601)
    specs = rules()
    evaluator = RuleEvaluator(rules=specs)
    timings = []
    alerts_sent = 0
    now = 1_700_000_000.0
    for _ in range(ROUNDS):
        batch = samples(rng, now)
        start = time.perf_counter()
        alerts_sent += len(evaluator.evaluate(now, batch))
        timings.append(time.perf_counter() - start)
        now += 60.0
    median_ms = statistics.median(timings) * 1000
    print(
        json.dumps(
            {
                "benchmark": "alert_rules_evaluation",
                "rules": len(specs),
                "models": MODELS,
                "samples_per_evaluation": MODELS * (FEATURES + 6),
                "rounds": ROUNDS,
                "median_ms": round(median_ms, 2),
                "p90_ms": round(float(np.percentile(timings, 90)) * 1000, 2),
                "max_ms": round(max(timings) * 1000, 2),
                "active_alerts_at_end": len(evaluator.alerts()),
                "alerts_sent": alerts_sent,
                "target_ms": 100,
                "meets_target": median_ms <= 100,
                "python": platform.python_version(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
