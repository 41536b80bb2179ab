"""Command groups loaded when they are used, so ``watchkeeper --help`` and ``report`` start fast.

The service, alerting, signals and replay commands import the HTTP client, the rules engine's
templates and the monitor; a CI gate running ``watchkeeper check`` needs none of that. The main
app lists them from :data:`LAZY_COMMANDS` (name → module and one-line help; a test checks the
help against the real commands) and imports a module only when one of its commands is invoked,
its own ``--help`` included.
"""

from __future__ import annotations

import importlib
from typing import Any, Final

import typer
from typer.core import TyperCommand, TyperGroup

from watchkeeper.cli.readable import make_readable, readable_help_option

__all__ = ["LAZY_COMMANDS", "LazyGroup", "load_command"]

#: Command name → (module whose ``register(app)`` adds it, its one-line help).
LAZY_COMMANDS: Final = {
    "serve": (
        "watchkeeper.cli.service",
        "Run the monitoring service (HTTP API, /metrics, /docs).",
    ),
    "tokens": (
        "watchkeeper.cli.service",
        "Create, revoke and list API tokens (on the database, or a server with --url).",
    ),
    "models": (
        "watchkeeper.cli.service",
        "List, register and update monitored models; their registered versions, aliases and "
        "history (on the database, or a server with --url).",
    ),
    "rules": ("watchkeeper.cli.alerts", "Alert rules (on the database, or a server with --url)."),
    "alerts": ("watchkeeper.cli.alerts", "Alerts (on the database, or a server with --url)."),
    "silences": (
        "watchkeeper.cli.alerts",
        "Silences (on the database, or a server with --url).",
    ),
    "signals": (
        "watchkeeper.cli.signals",
        "Series of a signal and range reports (on the database, or a server with --url).",
    ),
    "grafana": (
        "watchkeeper.cli.grafana",
        "The Grafana dashboard of watchkeeper's /metrics.",
    ),
    "rollout": (
        "watchkeeper.cli.rollout",
        "Progressive rollouts of a candidate version (on the database, or a server with --url).",
    ),
    "retrain": (
        "watchkeeper.cli.retrain",
        "Retraining runs: start, list, show, approve (on the database, or a server with --url).",
    ),
    "replay": (
        "watchkeeper.cli.replay",
        "Replay historical events through the live path (windows, signals, labels, rules) in "
        "simulated event time, and report every alert it would have raised.",
    ),
}


# Typer carries its own copy of click (``typer._click``), private: the click objects below are
# typed ``Any`` rather than through that private module.


def load_command(name: str) -> Any:
    """The real click command ``name`` of :data:`LAZY_COMMANDS` (its module imported now)."""
    module = importlib.import_module(LAZY_COMMANDS[name][0])
    holder = typer.Typer()
    module.register(holder)
    built: Any = typer.main.get_command(holder)
    # A module that adds one command gives that command, not a group of one.
    return make_readable(built.commands[name] if hasattr(built, "commands") else built)


class _Deferred(TyperCommand):
    """Stands for a lazy command in listings; becomes the real one when it is invoked."""

    def __init__(self, name: str) -> None:
        text = LAZY_COMMANDS[name][1]
        super().__init__(name, help=text, short_help=text)

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        # The real command parses the arguments, so its context (and invoke) take over.
        return load_command(self.name or "").make_context(info_name, args, parent, **extra)


class LazyGroup(TyperGroup):
    """The main group: its own commands, plus a stand-in for each of :data:`LAZY_COMMANDS`
    (listed, suggested for typos, and loaded when invoked); every command's help with readable
    metavars (cli/readable.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        make_readable(self)
        for name in LAZY_COMMANDS:
            self.commands.setdefault(name, _Deferred(name))

    def get_help_option(self, ctx: Any) -> Any:
        return readable_help_option(super().get_help_option(ctx))
