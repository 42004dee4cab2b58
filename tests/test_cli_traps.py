"""From a file to predictions at the command line (issue 17): lr-find on every source fit takes,
the flag a data error names, a directory that is a directory, races in N dimensions, Ctrl-C
that saves and says how to resume, and help that reads at 80 columns."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import descend as ds
import descend.lab
from descend.cli import main

SCRIPT = Path(sys.executable).with_name("descend")  # the installed script, as a user runs it


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _frame(n=400, seed=0):
    """Mixed scales, an id column left out by features, and a yes/no label."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3)) * [1.0, 50.0, 0.01] + [0.0, 300.0, 1.0]
    z = X[:, 0] + (X[:, 1] - 300.0) / 50.0 - (X[:, 2] - 1.0) * 100.0
    label = np.where(z + 0.3 * rng.standard_normal(n) > 0, "yes", "no")
    return pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": label})


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    df = _frame()
    df.to_csv("words.csv", index=False)
    df.assign(y=(df.y == "yes").astype(np.int64)).to_csv("numbers.csv", index=False)
    df.to_parquet("words.parquet", row_group_size=100)
    reg = df.assign(y=df.a * 2.0 + 1.0)
    reg.to_csv("values.csv", index=False)
    return tmp_path


# ------------------------------------------------------------------------------------ lr-find


def test_lr_find_takes_a_model_name_and_a_csv_with_string_labels_as_fit_does(files):
    words = ds.lab.lr_find("logistic", ds.data.open("words.csv", target="y"), steps=60)
    numbers = ds.lab.lr_find("logistic", ds.data.open("numbers.csv", target="y"), steps=60)
    # "no" < "yes" are classes 0 and 1, as fit encodes them: the same sweep to the last bit
    np.testing.assert_array_equal(words.losses, numbers.losses)
    np.testing.assert_array_equal(words.lrs, numbers.lrs)
    assert type(words.model).__name__ == "LogisticRegression"
    assert words.config["standardized"]  # ill-scaled features: standardized, as fit would
    assert np.all(np.isfinite(words.losses)) and 0 < words.lr < 10


def test_lr_find_on_parquet_and_regression_and_an_mlp_by_name(files):
    pq = ds.lab.lr_find("softmax", ds.data.open("words.parquet", target="y"), steps=40)
    assert len(pq.lrs) == 40 and pq.model.name == "softmax_regression"
    lin = ds.lab.lr_find("linear", ds.data.open("values.csv", target="y", features=["a", "b"]))
    assert lin.model.name == "linear_regression" and lin.stopped_early
    assert lin.losses[0] > lin.smoothed.min()  # the loss fell before the sweep blew up
    mlp = ds.lab.lr_find("mlp", ds.data.open("words.csv", target="y"), steps=30)
    assert mlp.model.output == "binary"  # chosen from the targets, as fit chooses it


def test_lr_find_on_arrays_is_the_sweep_it_always_was():
    """An in-memory sweep by hand: the same lr schedule, batches and smoothed loss."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((256, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.1 * rng.standard_normal(256)
    model = ds.models.LinearRegression(dtype="float64")
    # standardize=False: the data as given (by default fit, and so the sweep, scales the target)
    res = ds.lab.lr_find(model, (X, y), "sgd", steps=30, batch_size=32, end_lr=1.0, standardize=False)
    params = model.init(np.random.default_rng([0, 0]), 4, 1)
    src = ds.data.as_source((X, y))
    lrs = 1e-6 * (1.0 / 1e-6) ** (np.arange(30) / 29)
    losses, k, epoch = [], 0, 0
    while k < len(res.lrs):
        for batch in src.batches(epoch, 32, seed=0):
            loss, grads = model.loss_and_grad(params, batch.X, batch.y)
            losses.append(loss)
            for name in params:
                params[name] -= lrs[k] * grads[name]
            k += 1
            if k == len(res.lrs):
                break
        epoch += 1
    np.testing.assert_allclose(res.lrs, lrs[: len(res.lrs)], rtol=1e-12)
    np.testing.assert_allclose(res.losses, losses, rtol=1e-9)


def test_lr_find_leaves_given_params_untouched_and_starts_from_them():
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((128, 3)), rng.standard_normal(128)
    model = ds.models.LinearRegression(dtype="float64")
    start = {"W": np.full((3, 1), 5.0), "b": np.zeros(1)}
    before = {k: v.copy() for k, v in start.items()}
    res = ds.lab.lr_find(model, (X, y), steps=10, params=start)
    fresh = ds.lab.lr_find(model, (X, y), steps=10)
    assert all(np.array_equal(start[k], before[k]) for k in start)
    assert res.losses[0] > 10 * fresh.losses[0]  # it started from W = 5, far from the fit
    with pytest.raises(ValueError, match=r"params\['W'\] must have shape \(3, 1\)"):
        ds.lab.lr_find(model, (X, y), steps=10, params={"W": np.zeros(3), "b": np.zeros(1)})


def test_lr_find_on_a_dask_source():
    pytest.importorskip("distributed")
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    df = _frame(n=300)
    with (
        LocalCluster(n_workers=1, processes=False, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster),
    ):
        src = ds.data.from_dask(dd.from_pandas(df, npartitions=3), target="y")
        res = ds.lab.lr_find("logistic", src, steps=20, batch_size=None)
    assert len(res.lrs) == 20 and np.all(np.isfinite(res.losses))
    assert res.model.name == "logistic_regression"


@pytest.mark.parametrize("data", ["words.csv", "numbers.csv", "words.parquet"])
def test_lr_find_command_on_files(data, files, capsys):
    code, out, err = run_cli(capsys, "lr-find", data, "--target", "y", "--steps", "30", "--out", "lf")
    assert code == 0, err
    assert "model: logistic regression" in out and "recommended lr:" in out
    assert "features: standardized" in out
    summary = json.loads((files / "lf" / "summary.json").read_text())
    assert summary["steps"] == 30 and summary["standardized"] is True
    config = (files / "lf" / "config.yaml").read_text()
    assert "logistic_regression" in config


def test_lr_find_command_on_a_regression_file_with_chosen_features(files, capsys):
    code, out, err = run_cli(
        capsys, "lr-find", "values.csv", "--target", "y", "--features", "a,b", "--model", "linear", "--json"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["recommended"] > 0 and summary["stopped_early"]


# ------------------------------------------------------------------------------------ data files


def test_on_bad_rows_skip_trains_and_says_how_many_rows_it_dropped(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    df = _frame(n=200)
    df.loc[[3, 50, 51], "b"] = np.nan
    df.to_csv("holes.csv", index=False)
    code, out, err = run_cli(capsys, "train", "holes.csv", "--target", "y", "--epochs", "2", "--no-progress")
    assert code == 2 and "--on-bad-rows skip" in err and "on_bad_rows" not in err
    code, out, err = run_cli(
        capsys,
        "train",
        "holes.csv",
        "--target",
        "y",
        "--epochs",
        "2",
        "--no-progress",
        "--on-bad-rows",
        "skip",
    )
    assert code == 0, err
    assert "skipped 3 rows with a missing or non-numeric value (--on-bad-rows skip): 3 in holes.csv" in out
    code, out, err = run_cli(capsys, "lr-find", "holes.csv", "--target", "y", "--on-bad-rows", "skip")
    assert code == 0, err


@pytest.mark.parametrize("name", ["parts", "iris"])  # "iris" is also a built-in dataset's name
def test_a_directory_is_a_directory_with_or_without_a_trailing_slash(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path(name).mkdir()
    df = _frame(n=200)
    df.iloc[:100].to_parquet(f"{name}/part0.parquet")
    df.iloc[100:].to_parquet(f"{name}/part1.parquet")
    for data in (name, f"{name}/"):
        code, out, err = run_cli(capsys, "train", data, "--target", "y", "--epochs", "1", "--no-progress")
        assert code == 0, err
        assert f"the targets of {name}" in out  # the folder's targets, not a dataset's
        code, out, err = run_cli(capsys, "lr-find", data, "--target", "y", "--steps", "10")
        assert code == 0, err


# ------------------------------------------------------------------------------------ race

MODULE = """
import numpy as np
import descend as ds

rosenbrock50 = ds.functions.get("rosenbrock", dim=50)


def any_length(x):
    x = np.asarray(x)
    return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


def bowl(x):
    a, b = x
    return float(a**2 + 3 * b**2)


def bowl4(x):
    return float(np.sum(np.arange(1, 5) * np.asarray(x) ** 2))


bowl4.start = [1.0, -1.0, 2.0, 0.5]
"""


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = f"usermod_{os.getpid()}_{time.monotonic_ns()}"  # fresh: never a cached import
    (tmp_path / f"{name}.py").write_text(MODULE)
    yield name
    sys.modules.pop(name, None)


def test_the_descend_script_finds_a_module_in_the_current_directory(user_module, tmp_path):
    done = subprocess.run(
        [str(SCRIPT), "race", f"{user_module}:bowl", "--steps", "20", "--no-gif", "--optimizers", "adam"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert done.returncode == 0, done.stderr
    assert f"{user_module}:bowl from [1.0, 1.0], 20 steps" in done.stdout


def test_an_n_dimensional_objective_races_in_its_dimensions(user_module, capsys, tmp_path):
    code, out, err = run_cli(
        capsys,
        "race",
        f"{user_module}:rosenbrock50",
        "--steps",
        "30",
        "--optimizers",
        "sgd,adam",
        "--out",
        "r",
    )
    assert code == 0, err
    assert "rosenbrock from a 50-D start" in out
    assert "50 dimensions: loss curves only" in out
    with np.load(tmp_path / "r" / "paths.npz") as z:
        assert z["adam/path"].shape == (31, 50)
        np.testing.assert_array_equal(z["adam/path"][0], ds.functions.get("rosenbrock", dim=50).start)
        assert z["adam/loss"][-1] > 1.0  # far from the minimum: not the 2-D slice's 7.7e-19
    assert (tmp_path / "r" / "race_loss.png").exists()
    assert not (tmp_path / "r" / "race_contour.png").exists()
    assert (tmp_path / "r" / "report.html").exists()


def test_a_function_of_any_length_needs_its_start_and_then_races_in_that_many(user_module, capsys, tmp_path):
    code, _, err = run_cli(capsys, "race", f"{user_module}:any_length", "--steps", "5")
    assert code == 2
    assert "takes points of any length, so its dimension is unknown" in err
    assert "--start X1,X2,..." in err and "start=[" not in err
    assert not (tmp_path / "runs").exists()
    code, _out, err = run_cli(
        capsys, "race", f"{user_module}:any_length", "--start", "0,0,0,0,0", "--steps", "10", "--out", "r"
    )
    assert code == 0, err
    with np.load(tmp_path / "r" / "paths.npz") as z:
        assert z["sgd/path"].shape == (11, 5)


def test_a_callable_that_declares_its_start_races_from_it(user_module, capsys, tmp_path):
    code, _out, err = run_cli(
        capsys, "race", f"{user_module}:bowl4", "--steps", "5", "--optimizers", "adam", "--out", "r"
    )
    assert code == 0, err
    with np.load(tmp_path / "r" / "paths.npz") as z:
        np.testing.assert_array_equal(z["adam/path"][0], [1.0, -1.0, 2.0, 0.5])


# ------------------------------------------------------------------------------------ Ctrl-C


def _interrupt_at(monkeypatch, step):
    """Ctrl-C (a real SIGINT to this process) as fit finishes update ``step``."""
    from descend.train import progress

    def update(self, s, *args):
        if s == step:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(progress.Progress, "update", update)


def test_ctrl_c_stops_at_a_step_saves_the_run_and_the_printed_command_resumes_it(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    args = ["train", "iris", "--epochs", "6", "--batch-size", "16", "--no-progress", "--seed", "3"]
    with monkeypatch.context() as m:
        _interrupt_at(m, 20)  # iris: 120 training rows, 8 batches an epoch: step 20 is in epoch 3
        code, out, err = run_cli(capsys, *args, "--out", "x")
    assert code == 130
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0] == (
        "descend train: interrupted at epoch 3, step 20: saved x; resume with: descend train iris "
        "--batch-size 16 --epochs 6 --seed 3 --no-progress --out x --resume"
    )
    summary = json.loads((tmp_path / "x" / "summary.json").read_text())
    assert summary["steps"] == 20 and summary["stop_reason"].startswith("interrupted at epoch 3, step 20")
    for name in ("config.yaml", "metrics.csv", "params.npz", "report.html", "checkpoints/checkpoint.npz"):
        assert (tmp_path / "x" / name).exists(), name
    resume = lines[0].split("resume with: descend ", 1)[1].split()
    code, out, err = run_cli(capsys, *resume)
    assert code == 0, err
    assert "resumed from step 20" in out and "completed 6 epochs" in out
    code, out, err = run_cli(capsys, *args, "--out", "whole")
    assert code == 0, err
    with np.load(tmp_path / "x" / "params.npz") as a, np.load(tmp_path / "whole" / "params.npz") as b:
        for k in b.files:  # interrupted and resumed: the uninterrupted run's parameters, bit for bit
            assert a[k].tobytes() == b[k].tobytes(), k


def test_ctrl_c_from_outside_a_running_train_command(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.Popen(
        [str(SCRIPT), "train", "linear", "--epochs", "1000000", "--out", "run"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        seen = []
        while not seen or not seen[-1].startswith("fit "):  # progress starts once training has begun
            line = proc.stderr.readline()
            assert line, (seen, proc.communicate())
            seen.append(line)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    last = err.strip().splitlines()[-1]
    m = re.fullmatch(
        r"descend train: interrupted at epoch (\d+), step (\d+): saved run; resume with: "
        r"descend train linear --epochs 1000000 --out run --resume",
        last,
    )
    assert m, err
    assert "Traceback" not in err
    assert (tmp_path / "run" / "checkpoints" / "checkpoint.npz").exists()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == int(m.group(2)) > 0


# ------------------------------------------------------------------------------------ help


COMMANDS = [
    "",
    "demo",
    "race",
    "train",
    "predict",
    "lr-find",
    "schedule",
    "compare-batching",
    "make-data",
    "report",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_at_80_columns_has_no_type_placeholders_and_cuts_nothing(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    for flag in ("-h", "--help"):
        code = main([command, flag] if command else [flag])
        out, err = capsys.readouterr()
        assert code == 0 and not err, err
        assert "Usage: descend" in out
        assert not re.search(r"<(str|bool|int|float|list|int range|float range)", out), out
        assert "…" not in out and not any(line.rstrip().endswith("...") for line in out.splitlines()[1:])
        assert max(len(line) for line in out.splitlines()) <= 80
    if command == "train":
        assert "--on-bad-rows skip|error" in out and "--target COL" in out and "DATA  " in out


# ------------------------------------------------------------------------------------ progress


def test_progress_lines_count_epochs_from_one_up_to_the_epochs_completed(capsys):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 2)), rng.standard_normal(64)
    run = ds.fit("linear", (X, y), epochs=3, batch_size=32, progress="plain")
    err = capsys.readouterr().err
    epochs = [int(m) for m in re.findall(r"^step \d+/6 epoch (\d+) ", err, flags=re.M)]
    assert epochs[0] == 1 and epochs[-1] == 3, err
    assert run.stop_reason == "completed 3 epochs"
