"""How the service command groups print: JSON answers, UTC times and Rich tables."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

__all__ = ["JsonOpt", "print_json", "print_table", "when"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the JSON answer.")]


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout."""
    typer.echo(json.dumps(data, indent=2, sort_keys=False))


def when(epoch: float | None) -> str:
    """An epoch time as ``YYYY-MM-DD HH:MM:SSZ`` (``-`` for none)."""
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """A titled table; cells wrap rather than being cut."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console(highlight=False, width=max(120, Console().width)).print(table)
