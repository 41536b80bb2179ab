"""``watchkeeper rules | alerts | silences``: manage alerting on a database or a running server.

Every command works on the database of the settings (``--db``, ``--config``,
``WATCHKEEPER_DB``), or on the server at ``--url`` (env ``WATCHKEEPER_URL``) with ``--token``
(env ``WATCHKEEPER_TOKEN``); see :mod:`watchkeeper.cli.backend`. A server running on the same
database sees every change at once. Exit codes: 0 success, 1 the server or database failed or
refused (unreachable, 401/403/404/409/5xx), 2 bad usage or an invalid file or value (also a
400/413/415/422 answer), always with one line on stderr.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from watchkeeper._yaml import load_yaml
from watchkeeper.alerts.config import dump_rules, parse_rules
from watchkeeper.alerts.model import format_duration, parse_duration
from watchkeeper.alerts.routing import Matcher
from watchkeeper.alerts.rules import RuleSpec
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
from watchkeeper.errors import WatchkeeperError

__all__ = ["register"]


def _condition(spec: RuleSpec) -> str:
    condition = spec.condition.to_dict()
    if "op" in condition:
        return f"{condition['op']} {condition['threshold']:g}"
    if "absent_for" in condition:
        return f"absent for {condition['absent_for']}"
    detector = condition["detector"]
    return f"detector {detector['kind']}"


def _specs(body: dict[str, Any]) -> list[RuleSpec]:
    return [
        RuleSpec.from_dict(item, path=f"rules[{index}]") for index, item in enumerate(body["rules"])
    ]


rules_app = typer.Typer(
    help="Alert rules (on the database, or a server with --url).", no_args_is_help=True
)
alerts_app = typer.Typer(
    help="Alerts (on the database, or a server with --url).", no_args_is_help=True
)
silences_app = typer.Typer(
    help="Silences (on the database, or a server with --url).", no_args_is_help=True
)


@rules_app.command("apply")
def rules_apply(
    file: Annotated[Path, typer.Argument(help="Rules file (YAML with a top-level rules: list).")],
    merge: Annotated[
        bool, typer.Option("--merge", help="Add to the rules in force instead of replacing them.")
    ] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Validate a rules file and make it the rule set."""
    try:
        text = file.read_text(encoding="utf-8")
        specs = parse_rules(load_yaml(text) or {})
    except OSError as error:
        fail(f"{file}: cannot read the rules file: {error.strerror}", EXIT_USAGE)
    except yaml.YAMLError as error:
        fail(f"{file}: not valid YAML: {error}", EXIT_USAGE)
    except WatchkeeperError as error:
        fail(f"{file}: {error}", EXIT_USAGE)
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        total = len(backend.apply_rules(text, replace=not merge)["rules"])
    typer.echo(f"{file}: applied {len(specs)} rule(s); {total} rule(s) in force")


@rules_app.command("list")
def rules_list(
    output: Annotated[
        str, typer.Option("--output", "-o", help="table, yaml (a rules file) or json.")
    ] = "table",
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show the rules in force."""
    if output not in ("table", "yaml", "json"):
        fail(f"--output: expected table, yaml or json, got {output!r}", EXIT_USAGE)
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        body = backend.list_rules()
    if output == "json":
        print_json(body)
        return
    specs = _specs(body)
    if output == "yaml":
        typer.echo(dump_rules(specs), nl=False)
        return
    print_table(
        f"{len(specs)} rule(s)",
        ["name", "model", "signal", "condition", "for", "severity"],
        [
            [
                spec.name,
                spec.model,
                spec.signal,
                _condition(spec),
                format_duration(spec.for_),
                spec.severity.value,
            ]
            for spec in specs
        ],
    )


@rules_app.command("export-prometheus")
def rules_export_prometheus(
    file: Annotated[Path, typer.Argument(help="Where to write the Prometheus rules file.")],
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Write the rules as a Prometheus rules file over watchkeeper's /metrics."""
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        body = backend.export_prometheus()
    try:
        file.write_text(body["yaml"], encoding="utf-8")
    except OSError as error:
        fail(f"{file}: cannot write: {error.strerror}", EXIT_USAGE)
    typer.echo(f"{file}: {len(body['exported'])} rule(s) exported, {len(body['skipped'])} skipped")
    for skipped in body["skipped"]:
        typer.echo(f"skipped {skipped['rule']}: {skipped['reason']}", err=True)


@rules_app.command("defaults")
def rules_defaults(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Add the default rule pack of MODEL (rules whose name is taken are kept as they are)."""
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        body = backend.add_default_rules(model)
    added = body["added"]
    typer.echo(f"{model}: added {len(added)} rule(s)" + (f": {', '.join(added)}" if added else ""))


@alerts_app.command("list")
def alerts_list(
    state: Annotated[
        str, typer.Option("--state", help="firing, pending, resolved or all.")
    ] = "all",
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show pending, firing and recently resolved alerts."""
    if state not in ("all", "firing", "pending", "resolved"):
        fail(f"--state: expected firing, pending, resolved or all, got {state!r}", EXIT_USAGE)
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        body = backend.alerts(state)
    if as_json:
        print_json(body)
        return
    hidden = {"alertname", "severity", "model", "signal"}
    print_table(
        f"{len(body['alerts'])} alert(s)",
        ["state", "alertname", "severity", "model", "signal", "labels", "value", "since"],
        [
            [
                alert["state"] + (" (muted)" if alert["muted"] else ""),
                alert["labels"].get("alertname", ""),
                alert["labels"].get("severity", ""),
                alert["labels"].get("model", ""),
                alert["labels"].get("signal", ""),
                ",".join(
                    f"{name}={value}"
                    for name, value in sorted(alert["labels"].items())
                    if name not in hidden
                ),
                "-" if alert["value"] is None else f"{alert['value']:.4g}",
                when(alert["fired_at"] or alert["active_at"]),
            ]
            for alert in body["alerts"]
        ],
    )


@alerts_app.command("history")
def alerts_history(
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many state changes.")] = 50,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show the latest alert state changes, newest first."""
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        body = backend.history(limit)
    if as_json:
        print_json(body)
        return
    print_table(
        f"{len(body['history'])} state change(s)",
        ["at", "alertname", "model", "feature", "change", "value"],
        [
            [
                when(change["at"]),
                change["labels"].get("alertname", change["rule"]),
                change["labels"].get("model", ""),
                change["labels"].get("feature", ""),
                f"{change['previous']} → {change['state']}",
                "-" if change["value"] is None else f"{change['value']:.4g}",
            ]
            for change in body["history"]
        ],
    )


@silences_app.command("add")
def silences_add(
    matcher: Annotated[
        list[str],
        typer.Option(
            "--matcher", "-m", help="Label matcher, e.g. alertname=KeyFeatureDrift (repeatable)."
        ),
    ],
    duration: Annotated[str, typer.Option("--duration", help="How long, e.g. 2h or 30m.")],
    comment: Annotated[str, typer.Option("--comment", help="Why (shown to everyone).")] = "",
    author: Annotated[
        str | None, typer.Option("--author", help="Who sets it (default: your user name).")
    ] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Mute alerts matching every --matcher for --duration."""
    try:
        matchers = [str(Matcher.parse(text, key="--matcher")) for text in matcher]
        seconds = parse_duration(duration, key="--duration")
    except WatchkeeperError as error:
        fail(str(error), EXIT_USAGE)
    if seconds <= 0:
        fail(f"--duration: must be longer than 0s, got {duration!r}", EXIT_USAGE)
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        body = backend.add_silence(
            {
                "matchers": matchers,
                "duration": seconds,
                "comment": comment,
                "created_by": author or getpass.getuser(),
            }
        )
    typer.echo(body["id"])
    typer.echo(f"silenced {', '.join(matchers)} until {when(body['ends_at'])}", err=True)


@silences_app.command("list")
def silences_list(
    show_all: Annotated[bool, typer.Option("--all", help="Include expired silences.")] = False,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show active and pending silences."""
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        body = backend.list_silences()
    silences = [item for item in body["silences"] if show_all or item["status"] != "expired"]
    if as_json:
        print_json({"silences": silences})
        return
    print_table(
        f"{len(silences)} silence(s)",
        ["id", "status", "matchers", "starts", "ends", "by", "comment"],
        [
            [
                item["id"],
                item["status"],
                ", ".join(item["matchers"]),
                when(item["starts_at"]),
                when(item["ends_at"]),
                item["created_by"],
                item["comment"],
            ]
            for item in silences
        ],
    )


@silences_app.command("expire")
def silences_expire(
    silence_id: Annotated[str, typer.Argument(metavar="ID", help="Silence id (see list).")],
    url: UrlOpt = None,
    token: TokenOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """End a silence now."""
    with open_backend(url=url, token=token, db=db, config=config) as backend:
        backend.expire_silence(silence_id)
    typer.echo(f"expired {silence_id}")


def register(app: typer.Typer) -> None:
    """Add the ``rules``, ``alerts`` and ``silences`` command groups to ``app``."""
    app.add_typer(rules_app, name="rules")
    app.add_typer(alerts_app, name="alerts")
    app.add_typer(silences_app, name="silences")
