"""The end-to-end demo on real weather data with real drift (``watchkeeper demo``).

Two parts (docs: README, "The demo"):

1. **Batch report** (:mod:`watchkeeper.demo.data`): rows 12,000–end of the bundled rainfall
   data against the champion's reference rows 0–5,999 → ``report.json`` and ``report.html``.
2. **The whole loop** (:mod:`watchkeeper.demo.loop`): the real service on a fresh embedded
   store, a champion served through the router, the rest of the stream replayed with labels a
   day later, drift and accuracy alerts delivered to a local webhook receiver, the service's
   retraining run on the accuracy alert (the significance gate, the candidate's canary and
   promotion), and a broken version rolled back; the narrative is printed by
   :mod:`watchkeeper.demo.narrative`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from watchkeeper.demo.data import load_rainfall, train_rainfall

if TYPE_CHECKING:
    from rich.console import Console

    from watchkeeper.demo.loop import LoopOutcome
    from watchkeeper.report.report import ReportResult

__all__ = ["DemoOutcome", "load_rainfall", "run_demo", "train_rainfall"]


@dataclass(frozen=True, slots=True)
class DemoOutcome:
    """Where the demo wrote its reports, the report itself, and the whole loop's outcome."""

    json_path: Path
    html_path: Path
    result: ReportResult
    loop: LoopOutcome | None = None


def run_demo(
    output: Path,
    *,
    console: Console | None = None,
    live: bool = True,
    keep_serving: bool = False,
    pace: float | None = None,
) -> DemoOutcome:
    """Train the champion, write the batch report into ``output``; then, with ``live``, run
    the whole loop through the service (``pace``: wall seconds per simulated hour at least)."""
    from watchkeeper.demo.data import batch_report, scored_reference

    def say(line: str) -> None:
        if console is not None:
            console.print(line, highlight=False)

    say("watchkeeper demo: rainfall data (NOAA), champion trained on rows 0–5,999")
    data = load_rainfall()
    champion, reference = scored_reference(data)
    json_path, html_path, result = batch_report(output, champion, reference, data)
    say(f"batch report of rows 12,000–end: {json_path} and {html_path}")
    loop = None
    if live:
        from watchkeeper.demo.loop import DEFAULT_PACE, run_loop

        say("the whole loop, through the service on a fresh embedded store:")
        loop = run_loop(
            output,
            data,
            champion,
            reference,
            say=say,
            keep_serving=keep_serving,
            pace=DEFAULT_PACE if pace is None else pace,
        )
    return DemoOutcome(json_path=json_path, html_path=html_path, result=result, loop=loop)
