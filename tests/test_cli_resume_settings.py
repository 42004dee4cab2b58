"""``descend train --resume`` takes the run's own settings from its folder; a given flag that
contradicts them is refused, naming it, before anything is said or written."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from descend.cli import main

#: the first run's settings, none of them the defaults
SETTINGS = [
    "--optimizer",
    "momentum",
    "--lr",
    "0.02",
    "--batch-size",
    "64",
    "--seed",
    "3",
    "--standardize",
    "on",
    "--val-fraction",
    "0.3",
]


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def data(tmp_path):
    """A small regression CSV (500 rows)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3)) * [1.0, 5.0, 0.2]
    y = X @ [1.0, -0.4, 2.0] + 0.1 * rng.normal(size=500)
    path = tmp_path / "d.csv"
    np.savetxt(path, np.c_[X, y], delimiter=",", header="a,b,c,y", comments="")
    return path


def train(capsys, data, out, *args):
    return run_cli(capsys, "train", data, "--target", "y", "--no-progress", "--out", out, *args)


def same_params(a, b):
    with np.load(a / "params.npz") as x, np.load(b / "params.npz") as y:
        assert sorted(x.files) == sorted(y.files)
        return all(x[k].tobytes() == y[k].tobytes() for k in y.files)


def snapshot(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def run1(capsys, data, tmp_path):
    """The first run: 2 epochs with SETTINGS."""
    out = tmp_path / "run1"
    code, _, err = train(capsys, data, out, "--epochs", "2", *SETTINGS)
    assert code == 0, err
    return out


def test_resume_without_flags_continues_the_run_as_one_uninterrupted_run(capsys, data, run1, tmp_path):
    code, out, err = train(capsys, data, run1, "--epochs", "4", "--resume")
    assert code == 0, err
    assert "resumed from step 12" in out and "completed 4 epochs" in out
    assert "Momentum(lr=0.02" in out
    code, _, err = train(capsys, data, tmp_path / "whole", "--epochs", "4", *SETTINGS)
    assert code == 0, err
    assert same_params(run1, tmp_path / "whole")
    config = yaml.safe_load((run1 / "config.yaml").read_text())
    assert config["optimizer"]["name"] == "momentum" and config["batch_size"] == 64 and config["epochs"] == 4


def test_given_flags_that_agree_with_the_run_are_accepted(capsys, data, run1):
    code, out, err = train(
        capsys, data, run1, "--epochs", "3", "--resume", "--lr", "0.02", "--optimizer", "Momentum"
    )
    assert code == 0, err
    assert "resumed from step 12" in out


@pytest.mark.parametrize(
    ("flag", "value", "run_value"),
    [
        ("--lr", "0.1", "--lr 0.02"),
        ("--optimizer", "sgd", "--optimizer momentum"),
        ("--batch-size", "full", "--batch-size 64"),
        ("--standardize", "off", "--standardize on"),
        ("--hidden", "8", "--model linear_regression"),
        ("--schedule", "cosine:lr0=0.1,total_steps=10", "--lr 0.02"),
    ],
)
def test_a_given_flag_that_contradicts_the_run_is_refused_and_nothing_changes(
    flag, value, run_value, capsys, data, run1
):
    before = snapshot(run1)
    code, out, err = train(capsys, data, run1, "--epochs", "4", "--resume", flag, value)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"descend train: {flag}: {value} contradicts the run in '{run1}'"), err
    assert f"which used {run_value}" in lines[0] and f"leave {flag} out" in lines[0]
    assert "resumed from" not in out
    assert snapshot(run1) == before


def test_a_run_killed_before_its_config_was_written_resumes_from_its_checkpoint(capsys, data, run1, tmp_path):
    (run1 / "config.yaml").unlink()  # all that a killed run leaves is its checkpoints
    code, out, err = train(capsys, data, run1, "--epochs", "3", "--resume")
    assert code == 0, err
    assert "resumed from step 12" in out
    code, _, err = train(capsys, data, tmp_path / "whole", "--epochs", "3", *SETTINGS)
    assert code == 0, err
    assert same_params(run1, tmp_path / "whole")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("optimizer: [adam\n", "cannot be read as YAML data"),
        ("- just\n- a list\n", "holds no mapping of settings"),
        ("!!python/object/apply:os.system ['echo no']\n", "cannot be read as YAML data"),
        (("optimizer", "lr", [1]), "optimizer.lr is [1], not a learning rate or a schedule"),
        (("optimizer", "lr", -1), "optimizer.lr is -1, not a learning rate > 0"),
        (("optimizer", "lr", "fast"), "optimizer.lr is 'fast', a schedule that cannot be read back"),
        (("model", "hidden", [0]), "model.model is missing"),
        ("command: race\n", "it was written by descend race, not descend train"),
    ],
)
def test_a_malformed_config_is_refused_naming_the_file(text, why, capsys, data, run1):
    path = run1 / "config.yaml"
    if isinstance(text, tuple):  # a well-formed file with one bad value
        config = yaml.safe_load(path.read_text())
        section, key, value = text
        config[section] = {**config[section], key: value} if key in config[section] else {key: value}
        text = yaml.safe_dump(config)
    path.write_text(text)
    before = snapshot(run1)
    code, out, err = train(capsys, data, run1, "--epochs", "4", "--resume")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"descend train: --resume: '{path}'"), err
    assert why in lines[0], err
    assert "resumed from" not in out and "Traceback" not in err
    assert snapshot(run1) == before


def test_a_schedule_and_an_mlp_are_taken_from_the_run(capsys, tmp_path):
    flags = ["--hidden", "8,4", "--activation", "tanh", "--schedule", "cosine:lr0=0.05,total_steps=40"]
    first = ["train", "iris", "--batch-size", "16", "--no-progress"]
    code, _, err = run_cli(capsys, *first, "--epochs", "2", "--out", tmp_path / "m", *flags)
    assert code == 0, err
    code, out, err = run_cli(
        capsys, "train", "iris", "--no-progress", "--epochs", "3", "--out", tmp_path / "m", "--resume"
    )
    assert code == 0, err
    assert "MLP (8, 4) (tanh)" in out and "Cosine(lr0=0.05, total_steps=40" in out
    code, _, err = run_cli(capsys, *first, "--epochs", "3", "--out", tmp_path / "whole", *flags)
    assert code == 0, err
    assert same_params(tmp_path / "m", tmp_path / "whole")
