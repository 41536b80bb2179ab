"""The wheel is complete and installs into a clean virtual environment (docs/sdk.md)."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(*command: str | Path, cwd: Path) -> str:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, REPO, cwd=out)
    (built,) = out.glob("watchkeeper-*.whl")
    return built


def test_the_wheel_carries_its_data_and_no_tests(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "watchkeeper/py.typed",
        "watchkeeper/data/rainfall.csv.gz",
        "watchkeeper/data/model-config.schema.json",
        "watchkeeper/report/templates/report.html.j2",
        "watchkeeper/store/migrations/env.py",
        "watchkeeper/store/migrations/script.py.mako",
        "watchkeeper/store/migrations/versions/v0003_checkpoints.py",
    ):
        assert needed in names, needed
    assert not [name for name in names if name.startswith(("tests/", "benchmarks/"))]
    metadata = next(name for name in names if name.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    requires = [line for line in text.splitlines() if line.startswith("Requires-Dist:")]
    # scikit-learn is the demo's alone; the server's docs assets ship with the package.
    assert not [line for line in requires if "scikit-learn" in line and "extra ==" not in line]
    assert any("fastapi-offline" in line for line in requires)
    assert not [line for line in requires if "multipart" in line]


@pytest.mark.slow
def test_the_wheel_installs_and_runs_in_a_clean_venv(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    _run(bin_dir / "pip", "install", "-q", wheel, cwd=tmp_path)
    help_text = _run(bin_dir / "watchkeeper", "--help", cwd=tmp_path)
    assert "report" in help_text
    data = pd.read_csv(REPO.parent / "shared" / "data" / "rainfall.csv.gz").head(4000)
    data.iloc[:2000].to_csv(tmp_path / "ref.csv", index=False)
    data.iloc[2000:].to_csv(tmp_path / "cur.csv", index=False)
    _run(bin_dir / "watchkeeper", "report", "ref.csv", "cur.csv", "--json", "r.json", "-q",
         cwd=tmp_path)  # fmt: skip
    assert (tmp_path / "r.json").stat().st_size > 1000
    # The store's migrations run from the installed package, and the SDK imports.
    code = (
        "from watchkeeper.store import Store; Store.open('sqlite:///wk.db').close(); "
        "import watchkeeper.sdk, watchkeeper.server.app; print('ok')"
    )
    assert _run(bin_dir / "python", "-c", code, cwd=tmp_path).strip() == "ok"
    # scikit-learn is not installed, and the demo says how to get it.
    demo = subprocess.run(
        [str(bin_dir / "watchkeeper"), "demo", "--output", str(tmp_path / "demo")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert demo.returncode != 0
    assert "watchkeeper[demo]" in demo.stdout + demo.stderr
