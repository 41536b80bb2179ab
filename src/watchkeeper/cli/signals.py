"""``watchkeeper signals series | report``: read a running server's windows over HTTP.

``series`` prints one line per window and follows the server's pages (``next``) until the range
is read, so no window is left out; with ``--limit`` it stops after that many points and says on
stderr where the rest starts. ``report`` prints the range report's covered range (which may be
wider than the one asked for, when windows do not align with it) and its headline figures.
Exit codes as for the other server commands (:mod:`watchkeeper.cli.alerts`).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer

from watchkeeper.cli.alerts import (
    DEFAULT_URL,
    EXIT_USAGE,
    JsonOpt,
    TokenOpt,
    UrlOpt,
    _call,
    _fail,
    _print_json,
    _table,
    _when,
)

__all__ = ["register"]

signals_app = typer.Typer(
    help="Series of a signal and range reports from a running server.", no_args_is_help=True
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


def _params(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


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
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print every window of a signal in the range, oldest first."""
    path = f"/v1/models/{quote(model, safe='')}/signals/{quote(signal, safe='')}"
    points: list[dict[str, Any]] = []
    cursor, following, length = start, None, None
    while True:
        wanted = _PAGE if limit is None else min(_PAGE, limit - len(points))
        params = _params(
            window=window, version=version, segment=segment, start=cursor, end=end, limit=wanted
        )
        page = _call("GET", path, url=url, token=token, params=params).json()
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
        _print_json(body | {"next": following})
        return
    _table(
        f"{model} {signal} ({len(points)} windows of {length})",
        ["start", "end", "value", "count"],
        [
            [
                _when(point["start"]),
                _when(point["end"]),
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
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Report over a time range (default the last 24 hours) and the range it covers."""
    document = _call(
        "GET",
        f"/v1/models/{quote(model, safe='')}/report",
        url=url,
        token=token,
        params=_params(start=start, end=end, version=version, segment=segment),
    ).json()
    if as_json:
        _print_json(document)
        return
    window = document.get("window")
    if not isinstance(window, dict):
        _fail("the server's report has no window section; is it a watchkeeper server?", EXIT_USAGE)
    summary = document["summary"]
    requested = window["requested"]
    typer.echo(f"{model}: {_when(window['start'])} to {_when(window['end'])}")
    if not window["exact"]:
        typer.echo(
            f"  covers more than requested ({_when(requested['start'])} to "
            f"{_when(requested['end'])}): windows of {window['window']} do not align with it"
        )
    typer.echo(
        f"  {window['windows']} windows of {window['window']}, {document['current']['rows']} "
        f"events; drifted columns {summary['drifted_columns']} of {summary['tested_columns']}; "
        f"quality failures {summary['quality_failures']}"
    )


def register(app: typer.Typer) -> None:
    """Add the ``signals`` command group to ``app``."""
    app.add_typer(signals_app, name="signals")
