"""``watchkeeper signals series | report``: a model's windows, on a server or a database.

``series`` prints one line per window and follows the server's pages (``next``) until the range
is read, so no window is left out; with ``--limit`` it stops after that many points and says on
stderr where the rest starts. ``report`` prints the range report's covered range (which may be
wider than the one asked for, when windows do not align with it) and its headline figures.
Like every command group it works on a running server with ``--url`` or on the database
(:mod:`watchkeeper.cli.backend`); on the database only closed windows are read (open windows
live in the server's memory). Exit codes as for the other groups.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from watchkeeper.cli.backend import (
    EXIT_USAGE,
    ConfigOpt,
    DbOpt,
    TokenOpt,
    UrlOpt,
    fail,
    open_backend,
)
from watchkeeper.cli.output import JsonOpt, print_json, print_table, when

__all__ = ["register"]

signals_app = typer.Typer(
    help="Series of a signal and range reports (on the database, or a server with --url).",
    no_args_is_help=True,
)

_PAGE = 1000

ModelArg = Annotated[str, typer.Argument(help="Model name.")]
VersionOpt = Annotated[str | None, typer.Option("--version", help="One model version.")]
SegmentOpt = Annotated[
    str | None, typer.Option("--segment", help="One canonical segment ('k=v,k2=v2').")
]
StartOpt = Annotated[
    str | None, typer.Option("--start", help="Epoch seconds or ISO-8601 (naive means UTC).")
]
EndOpt = Annotated[
    str | None, typer.Option("--end", help="Epoch seconds or ISO-8601 (naive means UTC).")
]


@signals_app.command("series")
def series(
    model: ModelArg,
    signal: Annotated[str, typer.Argument(help="Signal name, e.g. count or accuracy.")],
    window: Annotated[
        str | None,
        typer.Option("--window", help="Window length of the model: 3600, 6h, day, week, month."),
    ] = None,
    version: VersionOpt = None,
    segment: SegmentOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Stop after this many points (default: all)."),
    ] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print every window of a signal in the range, oldest first."""
    points: list[dict[str, Any]] = []
    cursor, following, length = start, None, None
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        while True:
            wanted = _PAGE if limit is None else min(_PAGE, limit - len(points))
            query = {
                "window": window,
                "version": version,
                "segment": segment,
                "start": cursor,
                "end": end,
                "limit": wanted,
            }
            page = backend.series_page(model, signal, query)
            points += page["points"]
            length, following = page["window"], page["next"]
            if following is None or (limit is not None and len(points) >= limit):
                break
            cursor = repr(following)
    if following is not None:
        typer.echo(
            f"truncated at --limit {limit}: more windows from start={following!r}; "
            f"rerun with --start {following!r}",
            err=True,
        )
    if as_json:
        body = {"model": model, "signal": signal, "window": length, "points": points}
        print_json(body | {"next": following})
        return
    print_table(
        f"{model} {signal} ({len(points)} windows of {length})",
        ["start", "end", "value", "count"],
        [
            [
                when(point["start"]),
                when(point["end"]),
                "-" if point["value"] is None else f"{point['value']:.6g}",
                str(point["count"]),
            ]
            for point in points
        ],
    )


@signals_app.command("report")
def report(
    model: ModelArg,
    start: StartOpt = None,
    end: EndOpt = None,
    version: VersionOpt = None,
    segment: SegmentOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Report over a time range (default the last 24 hours) and the range it covers."""
    query = {"start": start, "end": end, "version": version, "segment": segment}
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        document = backend.range_report(model, query)
    if as_json:
        print_json(document)
        return
    window = document.get("window")
    if not isinstance(window, dict):
        fail("the server's report has no window section; is it a watchkeeper server?", EXIT_USAGE)
    summary = document["summary"]
    requested = window["requested"]
    typer.echo(f"{model}: {when(window['start'])} to {when(window['end'])}")
    if not window["exact"]:
        typer.echo(
            f"  covers more than requested ({when(requested['start'])} to "
            f"{when(requested['end'])}): windows of {window['window']} do not align with it"
        )
    typer.echo(
        f"  {window['windows']} windows of {window['window']}, {document['current']['rows']} "
        f"events; drifted columns {summary['drifted_columns']} of {summary['tested_columns']}; "
        f"quality failures {summary['quality_failures']}"
    )


def register(app: typer.Typer) -> None:
    """Add the ``signals`` command group to ``app``."""
    app.add_typer(signals_app, name="signals")
