"""The service and alerting command groups load only when used, and list the help they have."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from watchkeeper.cli.lazy import LAZY_COMMANDS, load_command
from watchkeeper.cli.main import app


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_the_listed_help_is_the_commands_own(name: str) -> None:
    command = load_command(name)
    assert command.name == name
    own = " ".join((command.help or "").split("\n\n")[0].split())
    assert own == LAZY_COMMANDS[name][1]


def test_help_and_report_do_not_import_the_service_commands() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from watchkeeper.cli.main import app\n"
        "CliRunner().invoke(app, ['--help'])\n"
        "CliRunner().invoke(app, ['report', '--help'])\n"
        "loaded = [m for m in ('watchkeeper.cli.alerts', 'watchkeeper.cli.service', "
        "'watchkeeper.cli.signals', 'watchkeeper.cli.replay', 'httpx', 'jinja2') "
        "if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == ""


def test_a_lazy_command_runs_and_its_typos_are_caught() -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["--help"])
    assert all(name in listed.stdout for name in LAZY_COMMANDS)
    help_text = runner.invoke(app, ["rules", "--help"])
    assert help_text.exit_code == 0
    assert "apply" in help_text.stdout
    typo = runner.invoke(app, ["silence"])
    assert typo.exit_code == 2
    assert "silences" in typo.stdout + typo.stderr
