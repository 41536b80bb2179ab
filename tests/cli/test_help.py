"""Every command's ``--help`` names its arguments and types the usual way (cli/readable.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from typer.testing import CliRunner

from watchkeeper.cli.lazy import LAZY_COMMANDS, load_command
from watchkeeper.cli.main import app

PYTHON_TYPES = re.compile(r"<(bool|str|int|float|path|Path)>")


def _paths() -> list[list[str]]:
    """The command path of every command and group, lazy ones included."""
    import typer.main

    paths: list[list[str]] = [[]]

    def walk(command: Any, prefix: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            paths.append([*prefix, name])
            walk(sub, [*prefix, name])

    root = typer.main.get_command(app)
    for name in root.commands:  # type: ignore[attr-defined]
        paths.append([name])
        if name in LAZY_COMMANDS:
            walk(load_command(name), [name])
    return paths


@pytest.mark.parametrize("path", _paths(), ids=lambda path: " ".join(path) or "watchkeeper")
def test_help_shows_no_python_annotations_or_braces(path: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert not PYTHON_TYPES.search(result.stdout), result.stdout
    usage = next(line for line in result.stdout.splitlines() if "Usage:" in line)
    assert "{" not in usage
    assert "<" not in usage


def test_arguments_are_upper_case_words_and_flags_take_no_type() -> None:
    result = CliRunner().invoke(app, ["check", "--help"], env={"COLUMNS": "200"})
    usage = next(line for line in result.stdout.splitlines() if "Usage:" in line)
    assert usage.split("[OPTIONS]")[1].split() == ["REFERENCE", "CURRENT"]
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if "│ --" in line}
    assert " PATH " in lines["--json"]
    assert " FLOAT " in lines["--max-drift-share"]
    assert " TEXT " in lines["--target"]
    for flag in ("--fail-on-quality", "--help"):
        assert not re.search(r"\b(BOOLEAN|TEXT)\b", lines[flag])


def test_a_missing_argument_is_named_as_the_help_names_it() -> None:
    result = CliRunner().invoke(app, ["report"])
    assert result.exit_code == 2
    assert "Missing argument 'REFERENCE'" in result.output


def test_parsing_is_unchanged(tmp_path: Any) -> None:
    result = CliRunner().invoke(
        app, ["check", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--max-drift-share", "x"]
    )
    assert result.exit_code == 2
    assert "--max-drift-share" in result.output
