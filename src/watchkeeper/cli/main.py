"""The ``watchkeeper`` command line.

Exit codes are a contract (CI gates depend on them): 0 success / all checks passed, 1 a check
failed, 2 bad usage or unusable input (one line on stderr, never a traceback).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from watchkeeper.cli.lazy import LazyGroup
from watchkeeper.errors import WatchkeeperError

if TYPE_CHECKING:
    from rich.console import Console

    from watchkeeper.report.report import ReportResult
    from watchkeeper.stats.quality_thresholds import QualityThresholds

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2

app = typer.Typer(
    name="watchkeeper",
    # The service, alerting, signals and replay commands load when used (cli/lazy.py).
    cls=LazyGroup,
    help="Keep machine learning models healthy in production.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ReferenceArg = Annotated[
    Path, typer.Argument(help="Reference data (training): CSV, CSV.gz or Parquet.")
]
CurrentArg = Annotated[
    Path, typer.Argument(help="Current data (production): CSV, CSV.gz or Parquet.")
]
TargetOpt = Annotated[str | None, typer.Option(help="True label column (enables performance).")]
PredictionOpt = Annotated[str | None, typer.Option(help="Model prediction column.")]
ProbaOpt = Annotated[
    str | None,
    typer.Option(
        help="Probability column(s): COL for binary, or LABEL:COL,LABEL:COL for several classes."
    ),
]
CategoricalOpt = Annotated[
    str | None, typer.Option(help="Comma-separated columns to treat as categorical.")
]
NumericOpt = Annotated[
    str | None, typer.Option(help="Comma-separated columns to treat as numeric.")
]
ExcludeOpt = Annotated[str | None, typer.Option(help="Comma-separated columns to ignore.")]
DriftShareOpt = Annotated[
    float | None,
    typer.Option("--drift-share", help="Share of drifted features that means dataset drift."),
]
QualityAlphaOpt = Annotated[
    float | None,
    typer.Option(
        "--quality-alpha",
        help="Significance level of the data-quality tests, in (0, 1) (default 0.05).",
    ),
]
QualityFloorOpt = Annotated[
    str | None,
    typer.Option(
        "--quality-floor",
        help="Floors of data-quality checks: CHECK=FLOOR,CHECK=FLOOR (shares in [0, 1]); "
        "checks: duplicate_rows, missing_rate, new_categories, non_numeric_share, "
        "out_of_range_share. See docs/quality.md.",
    ),
]


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _fail(message: str) -> typer.Exit:
    from rich.markup import escape

    _console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(EXIT_USAGE)


@contextmanager
def _usage_errors() -> Iterator[None]:
    """Turn watchkeeper's input errors into one line on stderr and exit code 2."""
    try:
        yield
    except WatchkeeperError as exc:
        raise _fail(str(exc)) from None
    except MemoryError:
        raise _fail("not enough memory to load the data") from None


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _parse_proba(value: str | None) -> str | dict[str, str] | None:
    if not value:
        return None
    parts = _split(value)
    if len(parts) == 1 and ":" not in parts[0]:
        return parts[0]
    mapping: dict[str, str] = {}
    for part in parts:
        label, sep, column = part.partition(":")
        if not sep or not label or not column:
            raise _fail(f"--proba: expected LABEL:COLUMN, got {part!r}")
        mapping[label] = column
    return mapping


def quality_thresholds(alpha: float | None, floors: str | None) -> QualityThresholds | None:
    """The thresholds of ``--quality-alpha`` / ``--quality-floor`` (``None``: the defaults).

    Parsed by :meth:`QualityThresholds.from_config`, the parser of a model spec's ``quality``
    section, so both reject the same values with the same message.
    """
    from watchkeeper.stats.quality_thresholds import QualityThresholds, parse_floor_option

    if alpha is None and floors is None:
        return None
    config: dict[str, object] = {"floors": parse_floor_option(floors or "")}
    if alpha is not None:
        config["alpha"] = alpha
    return QualityThresholds.from_config(config)


def _run_report(
    reference: Path,
    current: Path,
    *,
    target: str | None,
    prediction: str | None,
    proba: str | None,
    categorical: str | None,
    numeric: str | None,
    exclude: str | None,
    drift_share: float | None,
    quality_alpha: float | None = None,
    quality_floor: str | None = None,
    quiet: bool = False,
) -> ReportResult:
    from watchkeeper.frame import read_table
    from watchkeeper.report.report import Report
    from watchkeeper.schema import Schema

    quality = quality_thresholds(quality_alpha, quality_floor)

    schema = Schema.from_options(
        categorical=_split(categorical),
        numeric=_split(numeric),
        exclude=_split(exclude),
        target=target,
        prediction=prediction,
        proba=_parse_proba(proba),
    )
    report = Report(schema=schema, drift_share=drift_share, quality=quality)
    reference_frame = read_table(reference)
    current_frame = read_table(current)
    cells = (len(reference_frame) + len(current_frame)) * len(reference_frame.columns)
    show_progress = not quiet and cells >= 5_000_000 and sys.stderr.isatty()
    with _progress(show_progress) as progress:
        return report.run(
            reference_frame,
            current_frame,
            reference_name=reference.name,
            current_name=current.name,
            progress=progress,
        )


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("analysing columns"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=_console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("columns", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


_EFFECT_SYMBOLS = {
    "wasserstein_norm": "W/σ",
    "jensenshannon": "JS",
    "cohen_h": "h",
    "psi": "PSI",
    "hellinger": "H",
    "ks": "D",
}


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and value == 0.0 and digits == 3:
        return "0"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != 0 and abs(value) < 10 ** (-digits):
            return f"{value:.1e}"
        return f"{value:.{digits}f}"
    return str(value)


def _print_summary(result: ReportResult, console: Console, *, limit: int = 20) -> None:
    from rich.markup import escape
    from rich.table import Table

    from watchkeeper.report.formatting import check_measure, drift_order, format_p_value

    document = result.to_dict()
    summary = document["summary"]
    drift = document["drift"]
    verdict = "[bold red]DRIFT[/]" if summary["dataset_drift"] else "[bold green]no drift[/]"
    console.print(
        f"Dataset: {verdict} — {summary['drifted_columns']} of {summary['tested_columns']} "
        f"features drifted (share {summary['drift_share']:.2f}, "
        f"threshold {drift['drift_share_threshold']:.2f})"
    )
    table = Table(
        title="Drift by column (largest effect first, features then outputs)", title_justify="left"
    )
    for header in ("column", "kind", "test", "p-value", "effect size", "PSI", "drift"):
        # Column names wrap instead of being cut: a narrow terminal still shows all of each.
        table.add_column(
            header,
            justify="left" if header in ("column", "kind") else "right",
            overflow="fold" if header == "column" else "ellipsis",
        )
    columns = drift["columns"]
    ordered = drift_order(columns)
    for name in ordered[:limit]:
        entry = columns[name]
        label = escape(name if entry["role"] == "feature" else f"{name} ({entry['role']})")
        table.add_row(
            label,
            entry["kind"],
            entry["test"],
            format_p_value(entry["p_value"]),
            f"{_fmt(entry['effect_size'])} "
            f"{_EFFECT_SYMBOLS.get(entry['effect_measure'], entry['effect_measure'])}",
            _fmt(entry["psi"]),
            "[red]yes[/]" if entry["drift"] else "no",
        )
    console.print(table)
    if len(ordered) > limit:
        console.print(f"… {len(ordered) - limit} more columns in the JSON/HTML report")
    missing = drift["missing_columns"]
    if missing:
        console.print(
            f"[bold red]Not tested: {len(missing)} column(s) of the reference are missing from "
            f"the {escape(document['current']['name'])} data:[/] {escape(', '.join(missing))}"
        )
    for name, reason in drift["skipped"].items():
        if name not in missing:
            console.print(f"Not tested: {escape(name)} ({escape(reason)})")
    quality = document["quality"]
    state = "[green]passed[/]" if quality["passed"] else "[red]failed[/]"
    console.print(
        f"Data quality: {state} ({quality['failures']} failed, {quality['warnings']} warnings)"
    )
    for name, check in quality["dataset"].items():
        if check["verdict"] != "ok":
            console.print(f"  {escape(name)}: {check['verdict']}")
    for column, checks in quality["columns"].items():
        for name, check in checks.items():
            if check["verdict"] != "ok":
                measure = check_measure(check)
                values = [check["reference"], check["current"]]
                if measure == "distinct labels":
                    values = [None if value is None else int(value) for value in values]
                console.print(
                    f"  {escape(column)}.{name}{f' ({measure})' if measure else ''}: "
                    f"{check['verdict']} (reference {_fmt(values[0])}, current {_fmt(values[1])})"
                )
    headline = summary["performance"]
    if headline is not None:
        console.print(
            f"Performance: {headline['metric']} {_fmt(headline['reference'])} → "
            f"{_fmt(headline['current'])} (change {_fmt(headline['change'])})"
        )


@app.command()
def report(
    reference: ReferenceArg,
    current: CurrentArg,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the JSON report here.")
    ] = None,
    html_path: Annotated[
        Path | None, typer.Option("--html", help="Write the HTML report here.")
    ] = None,
    target: TargetOpt = None,
    prediction: PredictionOpt = None,
    proba: ProbaOpt = None,
    categorical: CategoricalOpt = None,
    numeric: NumericOpt = None,
    exclude: ExcludeOpt = None,
    drift_share: DriftShareOpt = None,
    quality_alpha: QualityAlphaOpt = None,
    quality_floor: QualityFloorOpt = None,
    plotly: Annotated[
        str, typer.Option(help="inline: self-contained HTML; cdn: reference plotly.js.")
    ] = "inline",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary table.")] = False,
) -> None:
    """Compare CURRENT with REFERENCE: drift, data quality and performance."""
    if plotly not in ("inline", "cdn"):
        raise _fail(f"--plotly must be 'inline' or 'cdn', got {plotly!r}")
    console = _console()
    with _usage_errors():
        result = _run_report(
            reference,
            current,
            target=target,
            prediction=prediction,
            proba=proba,
            categorical=categorical,
            numeric=numeric,
            exclude=exclude,
            drift_share=drift_share,
            quality_alpha=quality_alpha,
            quality_floor=quality_floor,
            quiet=quiet,
        )
        if not quiet:
            _print_summary(result, console)
        if json_path is not None:
            result.save_json(json_path)
            console.print(f"JSON report: {json_path}")
        if html_path is not None:
            result.save_html(html_path, plotly=plotly)
            size = html_path.stat().st_size
            console.print(f"HTML report: {html_path} ({size / 1_000_000:.2f} MB)")


@app.command()
def check(
    reference: ReferenceArg,
    current: CurrentArg,
    target: TargetOpt = None,
    prediction: PredictionOpt = None,
    proba: ProbaOpt = None,
    categorical: CategoricalOpt = None,
    numeric: NumericOpt = None,
    exclude: ExcludeOpt = None,
    drift_share: DriftShareOpt = None,
    quality_alpha: QualityAlphaOpt = None,
    quality_floor: QualityFloorOpt = None,
    max_drift_share: Annotated[
        float | None, typer.Option(help="Fail when the share of drifted features exceeds this.")
    ] = None,
    fail_on_dataset_drift: Annotated[
        bool, typer.Option(help="Fail when dataset drift is detected.")
    ] = False,
    fail_on_prediction_drift: Annotated[
        bool, typer.Option(help="Fail when the prediction drifted.")
    ] = False,
    fail_on_quality: Annotated[
        bool, typer.Option(help="Fail when any data-quality check fails.")
    ] = False,
    max_missing: Annotated[
        float | None,
        typer.Option(help="Fail when any column's missing rate in CURRENT exceeds this."),
    ] = None,
    min_accuracy: Annotated[
        float | None, typer.Option(help="Fail when current accuracy is below this.")
    ] = None,
    max_rmse: Annotated[
        float | None, typer.Option(help="Fail when current RMSE is above this.")
    ] = None,
    allow_missing_columns: Annotated[
        bool,
        typer.Option(
            help="Pass although columns of REFERENCE are missing from CURRENT (they are not "
            "tested); by default a missing column fails the check."
        ),
    ] = False,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the JSON report here.")
    ] = None,
) -> None:
    """Exit 0 when every condition passes, 1 when any fails, 2 on bad usage or input.

    Columns of REFERENCE missing from CURRENT fail the check unless --allow-missing-columns.
    """
    conditions = [
        max_drift_share,
        max_missing,
        min_accuracy,
        max_rmse,
    ]
    flags = [fail_on_dataset_drift, fail_on_prediction_drift, fail_on_quality]
    if all(c is None for c in conditions) and not any(flags):
        raise _fail(
            "no condition given: add e.g. --max-drift-share 0.3, --fail-on-dataset-drift, "
            "--max-missing 0.1 or --min-accuracy 0.8"
        )
    for name, value in (("--max-drift-share", max_drift_share), ("--max-missing", max_missing)):
        if value is not None and not 0.0 <= value <= 1.0:
            raise _fail(f"{name} must be between 0 and 1, got {value}")
    if (min_accuracy is not None or max_rmse is not None) and target is None:
        raise _fail("--min-accuracy/--max-rmse need --target (and --prediction or --proba)")
    console = _console()
    with _usage_errors():
        result = _run_report(
            reference,
            current,
            target=target,
            prediction=prediction,
            proba=proba,
            categorical=categorical,
            numeric=numeric,
            exclude=exclude,
            drift_share=drift_share,
            quality_alpha=quality_alpha,
            quality_floor=quality_floor,
            quiet=True,
        )
        if json_path is not None:
            result.save_json(json_path)
    outcomes = _evaluate_conditions(
        result.to_dict(),
        max_drift_share=max_drift_share,
        fail_on_dataset_drift=fail_on_dataset_drift,
        fail_on_prediction_drift=fail_on_prediction_drift,
        fail_on_quality=fail_on_quality,
        max_missing=max_missing,
        min_accuracy=min_accuracy,
        max_rmse=max_rmse,
        allow_missing_columns=allow_missing_columns,
    )
    failed = 0
    for name, passed, detail in outcomes:
        mark = "[green]PASS[/]" if passed else "[red]FAIL[/]"
        console.print(f"{mark} {name}: {detail}")
        failed += not passed
    raise typer.Exit(EXIT_CHECK_FAILED if failed else EXIT_OK)


def _evaluate_conditions(
    document: dict[str, Any],
    *,
    max_drift_share: float | None,
    fail_on_dataset_drift: bool,
    fail_on_prediction_drift: bool,
    fail_on_quality: bool,
    max_missing: float | None,
    min_accuracy: float | None,
    max_rmse: float | None,
    allow_missing_columns: bool,
) -> list[tuple[str, bool, str]]:
    drift = document["drift"]
    outcomes: list[tuple[str, bool, str]] = []
    missing = drift["missing_columns"]
    if missing:
        outcomes.append(
            (
                "columns present",
                allow_missing_columns,
                f"{len(missing)} missing from CURRENT, not tested: {', '.join(missing)}"
                + ("" if allow_missing_columns else " (pass --allow-missing-columns to accept)"),
            )
        )
    if max_drift_share is not None:
        share = drift["drift_share"]
        outcomes.append(
            ("drift share", share <= max_drift_share, f"{share:.3f} (max {max_drift_share})")
        )
    if fail_on_dataset_drift:
        outcomes.append(
            (
                "dataset drift",
                not drift["dataset_drift"],
                f"{drift['drifted_columns']} of {drift['tested_columns']} features drifted",
            )
        )
    if fail_on_prediction_drift:
        outcomes.append(
            (
                "prediction drift",
                not drift["prediction_drift"],
                "no prediction column"
                if drift["prediction_drift"] is None
                else _fmt(drift["prediction_drift"]),
            )
        )
    quality = document["quality"]
    if fail_on_quality:
        outcomes.append(
            ("data quality", quality["passed"], f"{quality['failures']} check(s) failed")
        )
    if max_missing is not None:
        rates = {
            column: checks["missing_rate"]["current"]
            for column, checks in quality["columns"].items()
            if "missing_rate" in checks
        }
        worst = max(rates, key=lambda c: rates[c]) if rates else None
        worst_rate = rates[worst] if worst is not None else 0.0
        outcomes.append(
            (
                "missing values",
                worst_rate <= max_missing,
                f"worst {worst} {worst_rate:.3f} (max {max_missing})",
            )
        )
    performance = document["performance"]
    for metric, bound, is_minimum in (("accuracy", min_accuracy, True), ("rmse", max_rmse, False)):
        if bound is None:
            continue
        value = None if performance is None else performance["current"].get(metric)
        if value is None:
            outcomes.append((metric, False, f"not available for this task (needs {metric})"))
            continue
        passed = value >= bound if is_minimum else value <= bound
        relation = "min" if is_minimum else "max"
        outcomes.append((metric, passed, f"{value:.4f} ({relation} {bound})"))
    return outcomes


@app.command()
def demo(
    output: Annotated[
        Path, typer.Option(help="Directory for the demo's reports and store.")
    ] = Path("watchkeeper-demo"),
    live: Annotated[
        bool,
        typer.Option(help="Also run the whole loop through the service on the embedded store."),
    ] = True,
    keep_serving: Annotated[
        bool,
        typer.Option(help="Leave the service and its dashboard up afterwards, until Ctrl-C."),
    ] = False,
) -> None:
    """Run the end-to-end demo on real weather data with real drift: the batch report, then
    the whole loop (serve, detect, alert, retrain, canary, promote, roll back)."""
    from watchkeeper.demo import run_demo

    console = _console()
    with _usage_errors():
        outcome = run_demo(output, console=console, live=live, keep_serving=keep_serving)
    _print_summary(outcome.result, console)
    console.print(f"JSON report: {outcome.json_path}")
    console.print(f"HTML report: {outcome.html_path}")
    loop = outcome.loop
    if loop is None:
        return
    from watchkeeper.demo.narrative import print_loop

    console.print()
    print_loop(loop, console)
    console.print(f"Store: {loop.db_path}")
    if not keep_serving or loop.service is None:
        console.print(
            f"Dashboard: `watchkeeper serve --db sqlite:///{loop.db_path}` serves this store at "
            "http://127.0.0.1:8000/ (or run the demo with --keep-serving)"
        )
        return
    console.print(
        f"Dashboard: {loop.url}/ — sign in with the admin token {loop.admin_token}\n"
        "The service keeps running on the wall clock; Ctrl-C stops it."
    )
    import time

    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print("stopping the service …")
    finally:
        loop.service.stop()


@app.command()
def version() -> None:
    """Print the installed version."""
    from watchkeeper import __version__

    typer.echo(__version__)


def main() -> None:
    """Console-script entry point."""
    app()
