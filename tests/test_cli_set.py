"""``descend train --set KEY=VALUE``: the optimizer's hyperparameters from the command line,
checked by the rule itself, recorded in the run folder and taken again by ``--resume``."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import descend as ds
from descend.cli import main


@pytest.fixture
def data(tmp_path):
    """A small classification CSV (600 rows)."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 3))
    y = (X @ [1.0, -2.0, 0.5] + 0.3 * rng.normal(size=600) > 0).astype(int)
    path = tmp_path / "d.csv"
    np.savetxt(path, np.c_[X, y], delimiter=",", header="a,b,c,y", comments="", fmt=["%.9g"] * 3 + ["%d"])
    return path


def train(capsys, data, out, *args):
    code = main([str(a) for a in ("train", data, "--target", "y", "--no-progress", "--out", out, *args)])
    out_text, err = capsys.readouterr()
    return code, out_text, err


def params(folder):
    with np.load(folder / "params.npz") as f:
        return {k: f[k].copy() for k in f.files}


def test_set_reaches_the_optimizer_and_the_run_folder(capsys, data, tmp_path):
    args = ["--optimizer", "sgd", "--lr", "0.05", "--set", "momentum=0.9", "--set", "sgd.nesterov=true"]
    code, out, err = train(capsys, data, tmp_path / "a", "--epochs", "2", *args)
    assert code == 0, err
    assert "SGD(lr=0.05, weight_decay=0.0, maximize=False, momentum=0.9, dampening=0.0, nesterov=True)" in out
    config = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())["optimizer"]
    assert config["momentum"] == 0.9 and config["nesterov"] is True
    # the same training as the library's Nesterov rule (a registry name for these very settings)
    code, _, err = train(
        capsys, data, tmp_path / "b", "--epochs", "2", "--optimizer", "nesterov", "--lr", "0.05"
    )
    assert code == 0, err
    a, b = params(tmp_path / "a"), params(tmp_path / "b")
    assert all(a[k].tobytes() == b[k].tobytes() for k in a)


def test_resume_takes_the_runs_set_and_refuses_another(capsys, data, tmp_path):
    args = ["--optimizer", "adam", "--set", "betas=[0.8,0.99]", "--set", "weight_decay=0.01"]
    code, _, err = train(capsys, data, tmp_path / "run", "--epochs", "1", *args)
    assert code == 0, err
    code, out, err = train(capsys, data, tmp_path / "run", "--epochs", "3", "--resume")
    assert code == 0, err
    assert "resumed from step" in out and "betas=(0.8, 0.99)" in out and "weight_decay=0.01" in out
    code, _, err = train(capsys, data, tmp_path / "whole", "--epochs", "3", *args)
    assert code == 0, err
    a, b = params(tmp_path / "run"), params(tmp_path / "whole")
    assert all(a[k].tobytes() == b[k].tobytes() for k in a)
    before = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    code, out, err = train(
        capsys, data, tmp_path / "run", "--epochs", "4", "--resume", "--set", "betas=[0.9,0.99]"
    )
    assert code != 0 and "resumed from" not in out
    assert "descend train: --set: --set betas=[0.9,0.99] contradicts the run in" in err
    assert "which used --set weight_decay=0.01 --set betas=[0.8,0.99]" in err  # the rule's order
    assert before == {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    # the run's own settings given again are accepted
    again = ["--resume", "--set", "weight_decay=0.01", "--set", "adam.betas=[0.8, 0.99]"]
    code, _, err = train(capsys, data, tmp_path / "run", "--epochs", "4", *again)
    assert code == 0, err


def test_lbfgs_options_from_the_command_line(capsys, data, tmp_path):
    args = [
        "--optimizer",
        "lbfgs",
        "--set",
        "history_size=5",
        "--set",
        "line_search_fn=none",
        "--epochs",
        "3",
    ]
    code, out, err = train(capsys, data, tmp_path / "fixed", *args)
    assert code == 0, err
    assert "history_size=5, line_search_fn=None)" in out
    code, out, err = train(capsys, data, tmp_path / "wolfe", "--optimizer", "lbfgs", "--epochs", "3")
    assert code == 0, err
    assert "history_size=100, line_search_fn=strong_wolfe)" in out  # fit's own default for it
    code, out, err = train(capsys, data, tmp_path / "wolfe", "--epochs", "5", "--resume")
    assert code == 0, err
    assert "resumed from step 3" in out and "line_search_fn=strong_wolfe)" in out


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["lr=0.1"], "--set: set the learning rate with --lr or --schedule, not --set ('lr=0.1')"),
        (["betas=0.9"], "--set: Adam: betas must be a pair (beta1, beta2), got 0.9"),
        (["momentum=0.9"], "--set: adam takes parameters 'lr', 'betas',"),
        (["sgd.momentum=0.9"], "--set: 'sgd.momentum=0.9' sets sgd, but the optimizer is adam (--optimizer)"),
        (["eps=1e-8", "eps=1e-7"], "--set: eps given twice"),
        (["eps"], "--set: expected key=value, got 'eps'"),
        (["eps=-1"], "--set: Adam: eps must satisfy"),
    ],
)
def test_bad_set_is_refused_naming_the_flag_before_anything_is_written(
    capsys, data, tmp_path, items, message
):
    args = [a for item in items for a in ("--set", item)]
    code, _, err = train(capsys, data, tmp_path / "run", "--epochs", "1", *args)
    assert code != 0 and f"descend train: {message}" in err, err
    assert not (tmp_path / "run").exists()


def test_options_equal_what_fit_takes():
    from descend.cli import _kv_text, _rule_options

    opts = {"betas": (0.8, 0.99), "eps": 1e-7, "amsgrad": True}
    assert _rule_options([_kv_text(k, v) for k, v in opts.items()], "adam") == opts
    lbfgs = {"line_search_fn": None, "tolerance_change": 1e-12}
    assert _rule_options([_kv_text(k, v) for k, v in lbfgs.items()], "lbfgs") == lbfgs
    assert ds.optimizer("adam", **opts).hyperparameters()["betas"] == (0.8, 0.99)


def test_the_resume_command_after_ctrl_c_repeats_each_set():
    from pathlib import Path

    from descend.cli import _resume_command

    given = {"data": "d.csv", "target": "y", "optimizer": "sgd", "set_": ["momentum=0.9", "betas=[0.8,0.99]"]}
    command = _resume_command("train", given, Path("runs/x"))
    assert "--optimizer sgd --set momentum=0.9 --set 'betas=[0.8,0.99]' --out runs/x --resume" in command
