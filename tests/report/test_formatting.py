"""The terminal summary and the HTML page write a report's p-values the same way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from watchkeeper.cli.main import app
from watchkeeper.report import Report
from watchkeeper.report.formatting import check_measure, format_p_value
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


def test_a_constant_column_says_its_values_are_a_range_or_distinct_labels(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame(
        {"level": rng.normal(5.0, 2.0, 400), "kind": rng.choice(["a", "b", "c"], 400)}
    )
    current = pd.DataFrame({"level": np.full(400, 7.5), "kind": ["a"] * 400})
    result = Report().run(reference, current)
    checks = result.to_dict()["quality"]["columns"]
    assert checks["level"]["constant"]["verdict"] == "fail"
    assert checks["kind"]["constant"]["verdict"] == "fail"
    assert check_measure(checks["level"]["constant"]) == "range, max − min"
    assert check_measure(checks["kind"]["constant"]) == "distinct labels"
    assert check_measure(checks["level"]["missing_rate"]) is None

    html = render_html(result.to_dict())
    assert 'constant <span class="measure">(range, max − min)</span>' in html
    assert 'constant <span class="measure">(distinct labels)</span>' in html
    assert "<dt>measure</dt>" not in html  # said once, next to the name

    reference.to_csv(tmp_path / "ref.csv", index=False)
    current.to_csv(tmp_path / "cur.csv", index=False)
    terminal = CliRunner().invoke(
        app,
        ["report", str(tmp_path / "ref.csv"), str(tmp_path / "cur.csv"), "--categorical", "kind"],
        env={"COLUMNS": "200"},
    )
    assert terminal.exit_code == 0, terminal.stderr
    lines = [line.strip() for line in terminal.stdout.splitlines()]
    level = next(line for line in lines if line.startswith("level.constant"))
    kind = next(line for line in lines if line.startswith("kind.constant"))
    assert level.startswith("level.constant (range, max − min): fail (reference ")
    assert level.endswith("current 0)")
    assert kind == "kind.constant (distinct labels): fail (reference 3, current 1)"
