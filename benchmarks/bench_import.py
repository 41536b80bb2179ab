"""Start-up cost of watchkeeper in fresh interpreters (prints JSON).

Run: ``.venv/bin/python benchmarks/bench_import.py [--runs N]``. Each figure is a whole process:

- ``import watchkeeper`` (target 0.3 s) and a bare interpreter, for scale;
- ``watchkeeper --help`` (target 0.3 s, issue 13);
- ``watchkeeper report`` on two 12,000-row CSV files: nearly all of it is the fixed cost every
  report pays (interpreter, imports, reading, printing), and the heavy modules that process
  loaded (SciPy and pydantic should not be among them: tests/cli/test_lazy.py). Samples of at
  most 10,000 values take SciPy's exact KS law and so load ``scipy.stats``.

Wall times are medians; CPU times (user + system of the child) are minimums, the robust figure
on a machine shared with other work.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

HEAVY = ("scipy", "scipy.stats", "numpy.f2py", "pydantic", "sklearn", "fastapi", "sqlalchemy")
LOADED = (
    "import atexit, sys\n"
    f"atexit.register(lambda: print('LOADED:' + ','.join(m for m in {HEAVY!r} "
    "if m in sys.modules), file=sys.stderr))\n"
    "from watchkeeper.cli.main import main\n"
    "sys.argv = ['watchkeeper', *sys.argv[1:]]\n"
    "main()\n"
)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], runs: int) -> dict[str, Any]:
    """Median wall time and minimum CPU time of ``runs`` runs of ``command``."""
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(runs):
        cpu = _children_cpu()
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
        cpus.append(_children_cpu() - cpu)
    return {"wall_s": round(statistics.median(walls), 4), "min_cpu_s": round(min(cpus), 4)}


ROWS = 12_000


def write_small_files(directory: str) -> tuple[str, str]:
    """Two CSV files of :data:`ROWS` rows with numeric, categorical and boolean columns."""
    paths = []
    for name, shift in (("reference", 0.0), ("current", 0.5)):
        path = os.path.join(directory, f"{name}.csv")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("x,y,kind,flag\n")
            for row in range(ROWS):
                value = (row * 7919 % 1009) / 1009 + shift
                kind = "abc"[row % 3]
                handle.write(f"{value},{row % 7},{kind},{str(row % 4 == 0).lower()}\n")
        paths.append(path)
    return paths[0], paths[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-import-") as directory:
        reference, current = write_small_files(directory)
        report_command = [python, "-m", "watchkeeper", "report", reference, current]
        results: dict[str, Any] = {
            "benchmark": "import",
            "bare_interpreter": timed([python, "-c", "pass"], args.runs),
            "import_watchkeeper": timed([python, "-c", "import watchkeeper"], args.runs),
            "help": timed([python, "-m", "watchkeeper", "--help"], args.runs),
            "report_small_files": timed(report_command, args.runs),
            "targets_s": {"import_watchkeeper": 0.3, "help": 0.3},
        }
        loaded = subprocess.run(
            [python, "-c", LOADED, "report", reference, current],
            check=True,
            capture_output=True,
            text=True,
        ).stderr
        line = next(line for line in loaded.splitlines() if line.startswith("LOADED:"))
        results["report_loads"] = [name for name in line.removeprefix("LOADED:").split(",") if name]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
