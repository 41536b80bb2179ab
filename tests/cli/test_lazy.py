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


# What `watchkeeper report` must not import on its common path: SciPy (`scipy.special` alone is
# a sixth of the whole process, most of it its array-API layer importing `numpy.f2py`), and
# the pydantic that Typer would build its option adapters with (cli/coercion.py).
REPORT_PATH_ABSENT = ("scipy", "numpy.f2py", "pydantic", "typer._adapters")


def test_report_on_common_data_does_not_import_scipy_or_pydantic(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A whole `watchkeeper report` process on data like a CI gate's: numeric columns (one
    shifted, so values fall outside the reference range and drift is found), categorical and
    boolean columns, missing values, above the exact-KS size."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(3)
    rows = 12_000

    def frame(shift: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "x": rng.normal(shift, 1.0, rows),
                "y": rng.normal(size=rows),
                "c": rng.choice(["a", "b", "c"], rows, p=[0.5, 0.3, 0.2] if shift else None),
                "b": rng.random(rows) < 0.3 + shift / 10,
                # Missing values, more of them in the current data: Fisher's test runs.
                "m": np.where(rng.random(rows) < 0.02 + shift / 10, np.nan, 1.0),
            }
        )

    frame(0.0).to_parquet(tmp_path / "reference.parquet")
    frame(0.5).to_parquet(tmp_path / "current.parquet")
    code = (
        "import atexit, sys\n"
        f"absent = {REPORT_PATH_ABSENT!r}\n"
        "atexit.register(lambda: print('LOADED:' + ','.join(m for m in absent "
        "if m in sys.modules)))\n"
        "from watchkeeper.cli.main import main\n"
        "sys.argv = ['watchkeeper', 'report', sys.argv[1], sys.argv[2]]\n"
        "main()\n"
    )
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(tmp_path / "reference.parquet"),
            str(tmp_path / "current.parquet"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "DRIFT" in completed.stdout or "drifted" in completed.stdout
    assert completed.stdout.strip().splitlines()[-1] == "LOADED:"
