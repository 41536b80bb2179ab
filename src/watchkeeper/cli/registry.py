"""Model registry commands of the ``models`` group: ``versions add|list|show``, ``alias``,
``rollback`` and ``history``.

:func:`attach` adds them to the ``models`` Typer app. Like the other service commands they work
on the database of the settings, or on a running server with ``--url``
(:mod:`watchkeeper.cli.backend`), and print the same thing either way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
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

__all__ = ["attach"]

versions_app = typer.Typer(
    help="Registered versions of a model: add one from a file, list them with their live "
    "health, show one.",
    no_args_is_help=True,
)

AliasOpt = Annotated[str, typer.Option("--alias", help="The alias (default champion).")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (kept in the alias's history).")]
PairsOpt = list[str] | None


def parse_pairs(option: str, pairs: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` options as a mapping; a value that reads as JSON (numbers, true, null) is
    kept as such, anything else as text. Exit 2 naming the option on a malformed pair."""
    parsed: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail(f"{option}: expected KEY=VALUE, got {pair!r}", EXIT_USAGE)
        try:
            parsed[key.strip()] = json.loads(value)
        except ValueError:
            parsed[key.strip()] = value
    return parsed


@versions_app.command("add")
def versions_add(
    name: Annotated[str, typer.Argument(help="Model name.")],
    path: Annotated[Path, typer.Argument(help="The model file (.skops, .onnx, .ubj, .txt, …).")],
    flavor: Annotated[
        str | None,
        typer.Option(
            help="sklearn, pickle, onnx, xgboost, lightgbm or pyfunc (default: from "
            "the file's suffix)."
        ),
    ] = None,
    trust: Annotated[
        bool, typer.Option("--trust", help="Allow a pickle: loading it runs code it contains.")
    ] = False,
    entry_point: Annotated[
        str | None, typer.Option("--entry-point", help="package.module:factory of a pyfunc.")
    ] = None,
    description: Annotated[str, typer.Option(help="What this version is.")] = "",
    metric: Annotated[PairsOpt, typer.Option("--metric", help="KEY=VALUE; repeat.")] = None,
    param: Annotated[PairsOpt, typer.Option("--param", help="KEY=VALUE; repeat.")] = None,
    tag: Annotated[PairsOpt, typer.Option("--tag", help="KEY=VALUE; repeat.")] = None,
    code_revision: Annotated[
        str | None, typer.Option("--code-revision", help="The commit that trained it.")
    ] = None,
    output_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Register a new version of NAME from a model file (it must load before it is stored)."""
    if not path.is_file():
        fail(f"PATH: {path} is not a file", EXIT_USAGE)
    options = {
        "flavor": flavor,
        "trust": trust,
        "entry_point": entry_point,
        "description": description,
        "metrics": parse_pairs("--metric", metric),
        "params": parse_pairs("--param", param),
        "tags": parse_pairs("--tag", tag),
        "code_revision": code_revision,
    }
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        version = backend.register_version(name, path, options)
    if output_json:
        print_json(version)
        return
    typer.echo(
        f"registered {name}/{version['version']} ({version['flavor']}, "
        f"sha256 {version['artifact']['sha256'][:12]}…, by {version['registered_by']})"
    )


def _metrics(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in values.items()) or "-"


def _live(entry: Mapping[str, Any]) -> list[str]:
    live = entry.get("live")
    if not live:
        return ["-", "-", "-"]
    firing = [alert["rule"] for alert in live["alerts"]]
    return [str(live["events"]), when(live["last_event"]), ", ".join(firing) or "none"]


@versions_app.command("list")
def versions_list(
    name: Annotated[str, typer.Argument(help="Model name.")],
    output_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """List NAME's versions: registered ones with their metrics and aliases, next to their live
    health (events, newest event, open alerts) when they have had traffic."""
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        document = backend.list_versions(name)
    if output_json:
        print_json(document)
        return
    rows = []
    for entry in document["versions"]:
        registry = entry["registry"]
        registered = (
            ["-", "-", "-", "-"]
            if registry is None
            else [
                f"{when(registry['registered_at'])} by {registry['registered_by']}",
                registry["flavor"],
                ", ".join(registry["aliases"]) or "-",
                _metrics(registry["metrics"]),
            ]
        )
        rows.append([entry["version"], *registered, *_live(entry)])
    print_table(
        f"versions of {name}",
        ["VERSION", "REGISTERED", "FLAVOR", "ALIASES", "METRICS", "EVENTS", "LAST EVENT", "ALERTS"],
        rows,
    )


@versions_app.command("show")
def versions_show(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str, typer.Argument(help="Version (a number, or a name seen in events).")],
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Print one version as JSON: its registration and its live health."""
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        print_json(backend.get_version(name, version))


def alias(
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="champion, challenger, …")],
    version: Annotated[int, typer.Argument(help="The registered version it points to.", min=1)],
    reason: ReasonOpt = "",
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Point NAME@ALIAS at VERSION (recorded in the alias's history)."""
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        answer = backend.set_alias(name, alias_name, version, reason)
    move = answer["move"]
    if move is None:
        typer.echo(f"{name}@{alias_name} already points to version {version}")
        return
    previous = move["from_version"] or "nothing"
    typer.echo(f"{name}@{alias_name}: {previous} → {version}")


def rollback(
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias_name: AliasOpt = "champion",
    reason: ReasonOpt = "",
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Move NAME@ALIAS back to the version it pointed to before its latest move."""
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        move = backend.rollback(name, alias_name, reason)["move"]
    typer.echo(
        f"{name}@{alias_name}: {move['from_version']} → {move['to_version']} ({move['reason']})"
    )


def history(
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias_name: AliasOpt = "champion",
    at: Annotated[
        str | None,
        typer.Option(help="ISO-8601 time or epoch seconds: print the version it pointed to then."),
    ] = None,
    output_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Every move of NAME@ALIAS, newest first; with --at, the version it pointed to then."""
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        document = backend.alias_history(name, alias_name, at)
    if output_json:
        print_json(document)
        return
    if at is not None:
        pointed = document["version"]
        typer.echo(
            f"{name}@{alias_name} at {when(document['at'])}: "
            + (f"version {pointed}" if pointed is not None else "no version")
        )
        return
    rows = [
        [
            when(move["moved_at"]),
            str(move["from_version"] or "-"),
            str(move["to_version"] or "-"),
            move["moved_by"],
            move["reason"],
        ]
        for move in document["history"]
    ]
    print_table(
        f"{name}@{alias_name} (now version {document['version'] or '-'})",
        ["WHEN", "FROM", "TO", "BY", "REASON"],
        rows,
    )


def attach(models_app: typer.Typer) -> None:
    """Add ``versions``, ``alias``, ``rollback`` and ``history`` to the ``models`` group."""
    models_app.add_typer(versions_app, name="versions")
    models_app.command("alias")(alias)
    models_app.command("rollback")(rollback)
    models_app.command("history")(history)
