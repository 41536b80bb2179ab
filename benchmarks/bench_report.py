"""Batch report speed and memory, optionally side by side with Evidently's DataDriftPreset.

Run: ``.venv/bin/python benchmarks/bench_report.py`` (prints JSON). Each scenario runs in a
fresh subprocess so that its peak RSS (which includes the data) is its own.

    --scenario {all,1m,100k}   which scenario(s)
    --repeat N                 timed runs per scenario (median reported; default 3)
    --compare evidently        also run Evidently on the same data in the same run; needs a
                               Python with evidently==0.7.23 and "pandas<3" installed, given
                               by --evidently-python (a separate environment: see
                               docs/benchmarks.md)

Besides the in-process timing, each scenario times the whole process a CI gate runs: the data
written once as Parquet files, then ``watchkeeper report REF CUR`` (interpreter start, imports,
reading, the report, the printed summary) and, with ``--compare evidently``, a script that
imports Evidently, reads the same files and runs the same preset (median of ``--repeat`` runs,
alternating the two tools).

Scenarios (seeded synthetic data; a few columns shifted so that drift is really found):
- 1m:   1,000,000 vs 1,000,000 rows × 20 numeric columns, drift + quality.
- 100k: 100,000 vs 100,000 rows × (20 numeric + 5 categorical), drift + quality.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

SCENARIOS: dict[str, dict[str, int]] = {
    "1m": {"rows": 1_000_000, "numeric": 20, "categorical": 0},
    "100k": {"rows": 100_000, "numeric": 20, "categorical": 5},
}
TARGETS = {"1m": {"wall_s": 2.0, "peak_rss_mb": 800}, "100k": {"wall_s": 0.35}}
# The whole ``watchkeeper report`` process a CI gate runs on every build (issue 13).
WHOLE_PROCESS_TARGETS = {"100k": 1.0}
EVIDENTLY_WHOLE_PROCESS = """
import sys
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
reference_path, current_path, numeric, categorical = sys.argv[1:5]
reference, current = pd.read_parquet(reference_path), pd.read_parquet(current_path)
definition = DataDefinition(
    numerical_columns=numeric.split(","),
    categorical_columns=[name for name in categorical.split(",") if name],
)
Report([DataDriftPreset()]).run(
    Dataset.from_pandas(current, data_definition=definition),
    Dataset.from_pandas(reference, data_definition=definition),
)
"""
EVIDENTLY_REFERENCE = {"1m": {"wall_s": 69.9, "peak_rss_mb": 1628}, "100k": {"wall_s": 5.25}}


def make_data(scenario: str) -> tuple[Any, Any, list[str], list[str]]:
    """Seeded reference/current frames; num_0 shifted 0.5 sd, cat_0 re-weighted."""
    import numpy as np
    import pandas as pd

    spec = SCENARIOS[scenario]
    rows = spec["rows"]
    rng = np.random.default_rng(42)
    numeric = [f"num_{i}" for i in range(spec["numeric"])]
    categorical = [f"cat_{i}" for i in range(spec["categorical"])]
    levels = np.array(["a", "b", "c", "d", "e"], dtype=object)

    def frame(shifted: bool) -> Any:
        columns: dict[str, Any] = {}
        for i, name in enumerate(numeric):
            values = rng.standard_normal(rows)
            if shifted and i == 0:
                values += 0.5
            columns[name] = values
        for i, name in enumerate(categorical):
            weights = [0.3, 0.25, 0.2, 0.15, 0.1] if shifted and i == 0 else [0.2] * 5
            columns[name] = pd.Categorical(
                levels[rng.choice(5, size=rows, p=weights)], categories=list(levels)
            )
        return pd.DataFrame(columns)

    return frame(False), frame(True), numeric, categorical


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_watchkeeper(scenario: str, repeat: int) -> dict[str, Any]:
    from watchkeeper import Report

    reference, current, _, _ = make_data(scenario)
    data_mb = (
        reference.memory_usage(deep=True).sum() + current.memory_usage(deep=True).sum()
    ) / 2**20
    report = Report()
    walls: list[float] = []
    cpu: list[float] = []
    result = None
    for _ in range(repeat):
        start_cpu = time.process_time()
        start = time.perf_counter()
        result = report.run(reference, current)
        walls.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    assert result is not None
    median = statistics.median(walls)
    return {
        "tool": "watchkeeper",
        "wall_s": round(median, 3),
        "runs_s": [round(w, 3) for w in walls],
        "cpu_s": round(statistics.median(cpu), 3),
        "cores_used": round(statistics.median(cpu) / median, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "data_mb": round(float(data_mb), 1),
        "drifted_columns": result.drifted_columns,
        "dataset_drift": result.dataset_drift,
    }


def worker_evidently(scenario: str, repeat: int) -> dict[str, Any]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    reference, current, numeric, categorical = make_data(scenario)
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    walls: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        report = Report([DataDriftPreset()])
        report.run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )
        walls.append(time.perf_counter() - start)
    return {
        "tool": "evidently",
        "wall_s": round(statistics.median(walls), 3),
        "runs_s": [round(w, 3) for w in walls],
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def run_worker(python: str, tool: str, scenario: str, repeat: int) -> dict[str, Any]:
    command = [
        python,
        os.path.abspath(__file__),
        "--worker",
        tool,
        "--scenario",
        scenario,
        "--repeat",
        str(repeat),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        return {"tool": tool, "error": completed.stderr.strip().splitlines()[-1:]}
    return json.loads(completed.stdout)


def whole_process(scenario: str, repeat: int, evidently_python: str | None) -> dict[str, Any]:
    """Wall time of whole processes on the scenario's data written as Parquet files."""
    import tempfile

    reference, current, numeric, categorical = make_data(scenario)
    with tempfile.TemporaryDirectory(prefix="bench-report-") as directory:
        reference_path = os.path.join(directory, "reference.parquet")
        current_path = os.path.join(directory, "current.parquet")
        reference.to_parquet(reference_path)
        current.to_parquet(current_path)
        del reference, current
        commands = {
            "watchkeeper": [
                sys.executable,
                "-m",
                "watchkeeper",
                "report",
                reference_path,
                current_path,
            ],
        }
        if evidently_python:
            commands["evidently"] = [
                evidently_python,
                "-c",
                EVIDENTLY_WHOLE_PROCESS,
                reference_path,
                current_path,
                ",".join(numeric),
                ",".join(categorical),
            ]
        runs: dict[str, list[float]] = {tool: [] for tool in commands}
        errors: dict[str, str] = {}
        for _ in range(repeat):
            for tool, command in commands.items():  # alternating, so both see the same load
                if tool in errors:
                    continue
                start = time.perf_counter()
                completed = subprocess.run(command, capture_output=True, text=True, check=False)
                runs[tool].append(time.perf_counter() - start)
                if completed.returncode != 0:
                    errors[tool] = (completed.stderr.strip().splitlines() or ["failed"])[-1]
    result: dict[str, Any] = {}
    for tool, walls in runs.items():
        if tool in errors:
            result[tool] = {"error": errors[tool]}
            continue
        result[tool] = {
            "wall_s": round(statistics.median(walls), 3),
            "runs_s": [round(wall, 3) for wall in walls],
        }
    ours, theirs = result["watchkeeper"], result.get("evidently", {})
    if scenario in WHOLE_PROCESS_TARGETS:
        result["target_s"] = WHOLE_PROCESS_TARGETS[scenario]
        if "wall_s" in ours:
            result["meets_target"] = ours["wall_s"] <= WHOLE_PROCESS_TARGETS[scenario]
    if "wall_s" in ours and "wall_s" in theirs:
        result["speedup"] = round(theirs["wall_s"] / ours["wall_s"], 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=["all", *SCENARIOS], default="all")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--compare", choices=["evidently"], default=None)
    parser.add_argument("--evidently-python", default=None)
    parser.add_argument("--worker", choices=["watchkeeper", "evidently"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker == "watchkeeper":
        print(json.dumps(worker_watchkeeper(args.scenario, args.repeat)))
        return
    if args.worker == "evidently":
        print(json.dumps(worker_evidently(args.scenario, args.repeat)))
        return

    scenarios = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    results: dict[str, Any] = {"benchmark": "report", "cpus": os.cpu_count(), "scenarios": {}}
    for scenario in scenarios:
        entry: dict[str, Any] = {
            "data": SCENARIOS[scenario],
            "target": TARGETS[scenario],
            "evidently_reference_machine": EVIDENTLY_REFERENCE[scenario],
            "watchkeeper": run_worker(sys.executable, "watchkeeper", scenario, args.repeat),
        }
        ours = entry["watchkeeper"]
        if "wall_s" in ours:
            entry["meets_target"] = all(
                ours[key] <= bound for key, bound in TARGETS[scenario].items()
            )
        python = None
        if args.compare == "evidently":
            python = args.evidently_python or os.environ.get("EVIDENTLY_PYTHON")
            if not python:
                parser.error("--compare evidently needs --evidently-python PATH")
            theirs = run_worker(python, "evidently", scenario, max(1, min(args.repeat, 3)))
            entry["evidently"] = theirs
            if "wall_s" in theirs and "wall_s" in ours:
                entry["speedup"] = round(theirs["wall_s"] / ours["wall_s"], 1)
        entry["whole_process"] = whole_process(scenario, args.repeat, python)
        results["scenarios"][scenario] = entry
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
