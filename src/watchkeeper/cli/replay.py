"""``watchkeeper replay``: backtest a model's live path and rules on historical events."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from watchkeeper.sdk.replay import ReplayResult

__all__ = ["register"]


def replay_command(
    events: Annotated[
        Path, typer.Argument(help="Historical events with predictions: CSV, CSV.gz or Parquet.")
    ],
    config: Annotated[
        Path, typer.Option("--config", help="Model config (YAML or JSON), as for models register.")
    ],
    reference: Annotated[
        Path, typer.Option("--reference", help="Reference data (CSV, CSV.gz or Parquet).")
    ],
    time_column: Annotated[
        str, typer.Option("--time-column", help="Event time: epoch seconds or datetimes.")
    ] = "timestamp",
    label_column: Annotated[
        str | None, typer.Option("--label-column", help="True labels (enables performance).")
    ] = None,
    label_time_column: Annotated[
        str | None,
        typer.Option("--label-time-column", help="When each label arrived (its own time)."),
    ] = None,
    label_delay: Annotated[
        str | None,
        typer.Option("--label-delay", help="Labels arrive this long after their prediction (14d)."),
    ] = None,
    id_column: Annotated[
        str | None, typer.Option("--id-column", help="Event ids (default: row-<n>).")
    ] = None,
    rules: Annotated[
        Path | None,
        typer.Option("--rules", help="Rules file replacing the default rule pack."),
    ] = None,
    version: Annotated[str, typer.Option("--version", help="Model version to log as.")] = "replay",
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="Write per-window signals and the alert history here."),
    ] = None,
) -> None:
    """Replay historical events through the live path (windows, signals, labels, rules) in
    simulated event time, and report every alert it would have raised."""
    import orjson

    from watchkeeper.alerts import load_rules
    from watchkeeper.alerts.model import parse_duration
    from watchkeeper.cli.main import _console, _usage_errors
    from watchkeeper.cli.service import _read_spec
    from watchkeeper.errors import InputError
    from watchkeeper.frame import read_table
    from watchkeeper.sdk.replay import replay

    with _usage_errors():
        spec = _read_spec(config)
        if rules is not None and not rules.is_file():
            raise InputError(f"--rules: no such file {str(rules)!r}", column="rules")
        rule_specs = load_rules(rules) if rules is not None else None
        delay = parse_duration(label_delay, key="--label-delay") if label_delay else None
        result = replay(
            read_table(events),
            spec=spec,
            reference=read_table(reference),
            time_column=time_column,
            label_column=label_column,
            label_time_column=label_time_column,
            label_delay=delay,
            id_column=id_column,
            version=version,
            rules=rule_specs,
        )
        if json_path is not None:
            json_path.write_bytes(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2))
    _print_summary(result, _console(), json_path)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def _print_summary(result: ReplayResult, console: Console, json_path: Path | None) -> None:
    console.print(
        f"replayed {result.events} events and {result.labels} labels of {result.model!r} "
        f"into {len(result.windows)} windows of {result.window_seconds} s"
        + (f" ({result.rejected} rejected)" if result.rejected else "")
    )
    firing = result.firing()
    if not firing:
        console.print("no alert fired")
    by_rule: dict[str, list[float]] = {}
    for change in firing:
        by_rule.setdefault(change["rule"], []).append(change["at"])
    for rule, times in sorted(by_rule.items(), key=lambda item: item[1][0]):
        console.print(
            f"  {rule}: fired {len(times)} time(s), first at {_when(times[0])} UTC (event time)"
        )
    if json_path is not None:
        console.print(f"per-window signals and {len(result.alerts)} transitions in {json_path}")


def register(app: typer.Typer) -> None:
    """Add ``replay`` to the ``watchkeeper`` command line."""
    app.command("replay")(replay_command)
