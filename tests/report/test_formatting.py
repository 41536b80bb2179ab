"""The terminal summary and the HTML page write a report's p-values the same way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from watchkeeper.cli.main import app
from watchkeeper.report import Report
from watchkeeper.report.formatting import format_p_value
from watchkeeper.report.html import render_html
from watchkeeper.schema import Schema


def test_an_underflowed_p_value_reads_the_same_in_the_terminal_and_the_html(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"far": rng.normal(0, 1, 5000), "near": rng.normal(0, 1, 5000)})
    current = pd.DataFrame({"far": rng.normal(8, 1, 5000), "near": rng.normal(0.05, 1, 5000)})
    result = Report().run(reference, current)
    columns = result.to_dict()["drift"]["columns"]
    assert columns["far"]["p_value"] < 1e-300
    shown = {name: format_p_value(columns[name]["p_value"]) for name in ("far", "near")}
    assert shown["far"] == "<1e-300"

    html = render_html(result.to_dict())
    reference.to_csv(tmp_path / "ref.csv", index=False)
    current.to_csv(tmp_path / "cur.csv", index=False)
    terminal = CliRunner().invoke(
        app,
        ["report", str(tmp_path / "ref.csv"), str(tmp_path / "cur.csv")],
        env={"COLUMNS": "200"},
    )
    assert terminal.exit_code == 0, terminal.stderr
    for text in shown.values():
        assert text in terminal.stdout
        assert text.replace("<", "&lt;") in html


def test_long_column_names_wrap_in_a_narrow_terminal(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    name = "a_really_long_feature_name_that_a_narrow_terminal_used_to_cut_short"
    pd.DataFrame({name: rng.normal(size=300)}).to_csv(tmp_path / "ref.csv", index=False)
    pd.DataFrame({name: rng.normal(1, 1, size=300)}).to_csv(tmp_path / "cur.csv", index=False)
    terminal = CliRunner().invoke(
        app, ["report", str(tmp_path / "ref.csv"), str(tmp_path / "cur.csv")], env={"COLUMNS": "80"}
    )
    assert terminal.exit_code == 0, terminal.stderr
    cells = [line.split("│")[1].strip() for line in terminal.stdout.splitlines() if "│" in line]
    assert "".join(cells[:4]).startswith(name)


def test_the_terminal_and_the_html_list_columns_in_one_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    reference = pd.DataFrame(
        {
            "small": rng.normal(0, 1, 800),
            "big": rng.normal(0, 1, 800),
            "same_a": np.zeros(800),
            "pred": rng.normal(0, 1, 800),
        }
    )
    current = reference.assign(big=reference["big"] + 2.0, small=reference["small"] + 0.3)
    reference.to_csv(tmp_path / "ref.csv", index=False)
    current.to_csv(tmp_path / "cur.csv", index=False)
    terminal = CliRunner().invoke(
        app,
        ["report", str(tmp_path / "ref.csv"), str(tmp_path / "cur.csv"), "--prediction", "pred"],
        env={"COLUMNS": "200"},
    )
    assert terminal.exit_code == 0, terminal.stderr
    in_terminal = [
        line.split("│")[1].split(" (")[0].strip()
        for line in terminal.stdout.splitlines()
        if line.startswith("│")
    ]
    result = Report(schema=Schema(prediction="pred")).run(reference, current)
    html = render_html(result.to_dict())
    in_html = [name for name in ("big", "small", "same_a", "pred") if f">{name}<" in html]
    positions = sorted(in_html, key=lambda name: html.index(f">{name}<"))
    assert in_terminal[: len(positions)] == positions
    assert positions[-1] == "pred"
