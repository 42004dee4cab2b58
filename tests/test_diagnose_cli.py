"""descend diagnose: a model at its init or a trained run folder, judged; plots of the spectrum
and of a Monitor's records."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pytest
from typer.testing import CliRunner

import descend as ds
from descend.cli import app, main

matplotlib.use("Agg")


def invoke(*args):
    return CliRunner().invoke(app, list(args))


def test_an_lr_above_the_stability_limit_is_flagged_with_its_fix(tmp_path):
    out = tmp_path / "d"
    r = invoke("diagnose", "digits", "--hidden", "16", "--optimizer", "sgd", "--lr", "50", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "lr_above_stability" in r.output
    summary = json.loads((out / "summary.json").read_text())
    assert "lr_above_stability" in summary["flags"] and summary["lr"] == 50.0
    assert summary["lr_max"] < 50.0
    found = json.loads((out / "diagnosis.json").read_text())
    assert found["hessian_top"][0] == pytest.approx(summary["lambda_max"])
    assert {"spectrum.png", "report.html", "metrics.csv", "config.yaml"} <= {p.name for p in out.iterdir()}
    assert "Diagnosis" in (out / "report.html").read_text()


def test_a_trained_run_is_diagnosed_with_its_own_model_optimizer_and_lr(tmp_path):
    run_dir = tmp_path / "run"
    r = invoke(
        "train", "digits", "--hidden", "16", "--epochs", "1", "--optimizer", "sgd", "--lr", "0.05",
        "--out", str(run_dir), "--no-progress", "--monitor", "3",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    out = tmp_path / "d"
    r = invoke("diagnose", str(run_dir), "--out", str(out), "--json")  # its data: digits, as trained
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output.strip().splitlines()[-1])
    assert summary["lr"] == 0.05 and summary["n_params"] == 64 * 16 + 16 + 16 * 10 + 10
    run = ds.load_run(run_dir)
    config = json.loads(json.dumps(__import__("yaml").safe_load((out / "config.yaml").read_text())))
    assert config["optimizer"] == "sgd" and config["run"] == str(run_dir)
    assert run.params["W0"].shape == (64, 16)
    # the run recorded a monitor: its per-layer gradient norms are drawn; and the noise plot
    assert {"gradients.png", "noise.png", "spectrum.png"} <= {p.name for p in out.iterdir()}
    r = invoke("diagnose", str(run_dir), "--hidden", "8", "--out", str(tmp_path / "x"))
    assert r.exit_code != 0 and not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--data", "no-such-file.csv"], "--data"),
        (["--hidden", "0"], "--hidden"),
        (["--optimizer", "adamm"], "--optimizer"),
        (["--lr", "-1", "--optimizer", "sgd"], "--lr"),
    ],
)
def test_bad_input_names_the_flag(tmp_path, args, flag, capsys):
    first = [] if "--data" in args else ["digits"]
    assert main(["diagnose", *first, *args, "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"descend diagnose: {flag}"), err
    assert "Traceback" not in err
    assert not (tmp_path / "d").exists()


def test_spectrum_plot_marks_lambda_max_and_the_limit():
    f = ds.functions.get("quadratic")
    d = ds.diagnose(f, np.asarray(f.start, dtype=float), optimizer="sgd", lr=0.1)
    drawn = ds.viz.lab_plots.plot_spectrum(d)
    assert drawn.markers["lambda_max"].get_xdata()[0] == pytest.approx(d.hessian_top[0])
    assert drawn.markers["limit"].get_xdata()[0] == pytest.approx(2.0 / 0.1)


def test_monitor_plot_draws_one_line_per_layer():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(100, 3)), rng.integers(0, 2, 100)
    run = ds.fit(
        ds.models.MLP(hidden=(4, 4), output="binary"), (X, y), epochs=2, batch_size=20,
        callbacks=[ds.Monitor(every=2)], progress=False,
    )  # fmt: skip
    drawn = ds.viz.lab_plots.plot_monitor(run.history, "grad_norm")
    assert sorted(drawn.lines) == ["grad_norm/layer0", "grad_norm/layer1", "grad_norm/layer2"]
    with pytest.raises(ValueError, match="column must be one of"):
        ds.viz.lab_plots.plot_monitor(run.history, "nothing")
    plain = ds.fit(ds.models.LogisticRegression(), (X, y), epochs=1, progress=False)
    with pytest.raises(ValueError, match="no monitor records"):
        ds.viz.lab_plots.plot_monitor(plain.history)
