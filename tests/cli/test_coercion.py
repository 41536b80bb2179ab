"""Option values coerced without pydantic give exactly what Typer's own coercion gives."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer._coercion import build_runtime_param

from watchkeeper.cli.coercion import plain_coercion
from watchkeeper.cli.lazy import load_command
from watchkeeper.cli.main import app

VALUES = [None, "data.csv", "", "-", "0.5", "abc", "1e-3", "a,b", "inline", "true", ("x", "y")]


def _outcome(coercion: Any, value: Any, param: Any, ctx: Any) -> tuple[str, Any]:
    try:
        return "value", coercion.coerce(value, param=param, ctx=ctx)
    except Exception as exc:  # the error a user would see
        return type(exc).__name__, str(exc)


def _commands() -> list[Any]:
    main = typer.main.get_command(app)
    own = [main.commands[name] for name in ("report", "check")]  # type: ignore[attr-defined]
    return [*own, load_command("replay")]


@pytest.mark.parametrize("command", _commands(), ids=lambda command: command.name)
def test_every_parameter_coerces_as_typer_does(command: Any, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ctx = command.context_class(command, info_name=command.name)
    directory = str(tmp_path)
    for param in command.params:
        if getattr(param, "type_descriptor", None) is None:
            continue
        ours = plain_coercion(param)
        theirs = build_runtime_param(param.type_descriptor)
        for value in [*VALUES, directory]:
            assert _outcome(ours, value, param, ctx) == _outcome(theirs, value, param, ctx), (
                command.name,
                param.name,
                value,
            )
