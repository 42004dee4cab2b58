"""The command line: commands run, print what they promise, and refuse bad flags cleanly."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import descend as ds
from descend.cli import app

runner = CliRunner()


def test_demo_prints_a_table_per_function_with_every_column():
    result = runner.invoke(
        app,
        ["demo", "--functions", "two_well,quadratic", "--optimizers", "sgd,momentum", "--steps", "400"],
        env={"COLUMNS": "160"},
    )
    assert result.exit_code == 0, result.output
    out = result.output
    for text in (
        "two_well",
        "quadratic",
        "final loss",
        "dist. to nearest min",
        "steps",
        "diverged",
        "lr tuned",
    ):
        assert text in out
    # plain GD settles in the shallow well; momentum carries over into the deep one
    sgd_line = next(line for line in out.splitlines() if line.startswith("│ sgd") and "local" in line)
    mom_line = next(line for line in out.splitlines() if line.startswith("│ momentum") and "global" in line)
    assert sgd_line and mom_line


def test_demo_reports_divergence():
    from descend.lab import run_suite

    res = run_suite(["quadratic"], ["sgd"], max_steps=400, lrs={"sgd": 10.0})
    (row,) = res.rows
    assert row.diverged and not row.converged and np.isfinite(row.loss)


def test_optimizers_and_functions_listings():
    out = runner.invoke(app, ["optimizers"], env={"COLUMNS": "200"}).output
    for name in ds.optim.names():
        assert name in out
    out = runner.invoke(app, ["functions"], env={"COLUMNS": "200"}).output
    for name in ds.functions.names():
        assert name in out


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["demo", "--functions", "nope"], "name must be one of"),
        (["demo", "--optimizers", "adamm"], "optimizer: name must be one of"),
    ],
)
def test_bad_values_exit_2_with_one_line_and_no_traceback(args, text):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert text in result.output
    assert "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1


def test_bad_flag_exits_2():
    result = runner.invoke(app, ["demo", "--steps", "0"])
    assert result.exit_code == 2


def test_python_dash_m_descend_works():
    proc = subprocess.run(
        [sys.executable, "-m", "descend", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    assert "demo" in proc.stdout
