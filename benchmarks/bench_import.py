"""Time of ``import watchkeeper`` in a fresh interpreter (median of runs; prints JSON)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time


def main(runs: int = 7) -> None:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import watchkeeper"], check=True)
        timings.append(time.perf_counter() - start)
    baseline = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        baseline.append(time.perf_counter() - start)
    print(
        json.dumps(
            {
                "benchmark": "import",
                "import_watchkeeper_s": round(statistics.median(timings), 4),
                "bare_interpreter_s": round(statistics.median(baseline), 4),
                "target_s": 0.3,
            }
        )
    )


if __name__ == "__main__":
    main()
