"""``descend train`` at cluster scale: ``--sync-every H`` (local SGD on a Dask cluster), its record
in the run folder and the refusals of bad values (fit's, in the flag's words); ``--optimizer
lbfgs`` trains full batch unless ``--batch-size`` is given, in memory and on the cluster."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

pytest.importorskip("distributed")


from clusters import local_cluster

import descend as ds
from descend.cli import main


@pytest.fixture(scope="module")
def scheduler():
    with local_cluster() as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """Two Parquet files of 300 rows: two partitions on the cluster."""
    folder = tmp_path_factory.mktemp("parts")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 4))
    y = (X @ np.array([1.0, -1.0, 0.5, 0.0]) > 0).astype(np.int64)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(4)]).assign(y=y)
    for i in range(2):
        frame.iloc[i * 300 : (i + 1) * 300].to_parquet(folder / f"part-{i}.parquet")
    return folder


def _train(parts, out, *extra):
    args = ["train", str(parts / "*.parquet"), "--target", "y", "--optimizer", "sgd", "--lr", "0.2"]
    return main([*args, "--batch-size", "50", "--epochs", "2", "--val-fraction", "0", "--no-progress",
                 "--out", str(out), *extra])  # fmt: skip


def test_train_with_sync_every_runs_rounds_on_the_cluster_and_records_h(scheduler, parts, tmp_path, capsys):
    assert _train(parts, tmp_path / "local", "--dask", scheduler, "--sync-every", "3") == 0, (
        capsys.readouterr().err
    )
    config = yaml.safe_load((tmp_path / "local" / "config.yaml").read_text())
    assert config["sync_every"] == 3 and config["batch_size"] == 50
    run = ds.load_run(tmp_path / "local")
    assert run.steps_completed == 12  # 6 local batches per partition per epoch, 2 epochs
    # rounds of 3 local steps on both partitions, averaged: 4 rows of history, not 12
    metrics = pd.read_csv(tmp_path / "local" / "metrics.csv")
    assert metrics["step"].tolist() == [3, 6, 9, 12]
    assert metrics["local_steps"].tolist() == [3, 3, 3, 3]
    # and the per-step path (no --sync-every) records no sync_every
    assert _train(parts, tmp_path / "steps", "--dask", scheduler, "--epochs", "1") == 0
    assert "sync_every" not in yaml.safe_load((tmp_path / "steps" / "config.yaml").read_text())


@pytest.mark.parametrize(
    ("extra", "flag", "text"),
    [
        (["--sync-every", "0"], "--sync-every", "greater than or equal to 1, got '0'"),
        (["--sync-every", "-2"], "--sync-every", "greater than or equal to 1, got '-2'"),
        (["--sync-every", "x"], "--sync-every", "valid integer"),
        (
            ["--sync-every", "4"],
            "--sync-every",
            "4 (local SGD) needs data on a Dask cluster: add --dask tcp://HOST:PORT or --dask local:N",
        ),
    ],
)
def test_bad_sync_every_exits_2_naming_the_flag(parts, tmp_path, capsys, extra, flag, text):
    """In-memory data (the files read here, no --dask): fit's refusal, in the flag's words."""
    assert _train(parts, tmp_path / "r", *extra) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith(f"descend train: {flag}: "), err
    assert text in err[0]
    if extra[1] == "4":
        assert err[0].endswith("leave --sync-every out")
    assert not (tmp_path / "r").exists()  # a refused run leaves no folder


def test_sync_every_1_off_dask_is_the_per_step_path(parts, tmp_path):
    assert _train(parts, tmp_path / "one", "--sync-every", "1", "--epochs", "1") == 0
    assert _train(parts, tmp_path / "none", "--epochs", "1") == 0
    one, none = ds.load_run(tmp_path / "one"), ds.load_run(tmp_path / "none")
    assert all(np.array_equal(one.params[k], none.params[k]) for k in none.params)


def test_help_says_what_sync_every_does(capsys):
    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--sync-every H" in text and "Local SGD on a Dask cluster (--dask)" in text
    assert "multiply --lr by P" in text


def test_full_batch_with_sync_every_on_the_cluster_names_batch_size(scheduler, parts, tmp_path, capsys):
    args = ["--dask", scheduler, "--sync-every", "4", "--batch-size", "full"]
    assert _train(parts, tmp_path / "r", *args) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == [
        "descend train: --sync-every: takes mini-batch steps on each partition: give --batch-size B, not full"
    ]


# -- L-BFGS ------------------------------------------------------------------------------------------


def _config(folder):
    return yaml.safe_load((folder / "config.yaml").read_text())


def test_lbfgs_trains_full_batch_without_batch_size(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "iris", "--optimizer", "lbfgs", "--no-progress", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    config = _config(out)
    assert config["batch_size"] is None  # not the default 256
    assert config["optimizer"]["name"] == "lbfgs"
    assert config["optimizer"]["line_search_fn"] == "strong_wolfe"  # fit's choice for a model
    run = ds.load_run(out)
    # one iteration per epoch, every row each time; it stops on its own tolerances
    assert run.steps_completed == run.epochs_completed == len(run.history.epochs["epoch"])
    assert "iterations" in run.stop_reason and f"{run.steps_completed} steps with LBFGS(" in text
    assert run.quality.accuracy > 0.9
    # --batch-size full says the same; the resume line of an interrupted run would too
    again = tmp_path / "full"
    args = [
        "train",
        "iris",
        "--optimizer",
        "lbfgs",
        "--batch-size",
        "full",
        "--no-progress",
        "--out",
        str(again),
    ]
    assert main(args) == 0
    assert all(np.array_equal(ds.load_run(again).params[k], run.params[k]) for k in run.params)


@pytest.mark.parametrize("B", ["32", "256"])
def test_lbfgs_with_an_explicit_batch_size_is_refused_naming_the_flag(tmp_path, capsys, B):
    """An explicit B is passed on, even the default's value: fit's refusal, in the flag's words."""
    out = tmp_path / "r"
    assert main(["train", "iris", "--optimizer", "lbfgs", "--batch-size", B, "--out", str(out)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == [
        f"descend train: --batch-size: {B} with lbfgs: it takes full-batch iterations; give --batch-size "
        "full or leave it out"
    ]
    assert not out.exists()


def test_lbfgs_on_the_cluster_trains_full_batch(scheduler, parts, tmp_path):
    args = ["train", str(parts / "*.parquet"), "--target", "y", "--optimizer", "lbfgs", "--epochs", "3"]
    assert main([*args, "--dask", scheduler, "--no-progress", "--out", str(tmp_path / "r")]) == 0
    assert _config(tmp_path / "r")["batch_size"] is None
    run = ds.load_run(tmp_path / "r")
    assert run.steps_completed <= 3 and run.history.epochs["train_loss"][-1] < np.log(2)


@pytest.mark.parametrize(
    ("extra", "flag", "text"),
    [
        (["--schedule", "cosine:lr0=1,total_steps=10"], "--schedule", "does not apply to lbfgs"),
        (["--sync-every", "4"], "--sync-every", "does not apply to lbfgs"),
    ],
)
def test_flags_that_do_not_apply_to_lbfgs_are_refused_before_the_data_is_read(
    tmp_path, capsys, extra, flag, text
):
    out = tmp_path / "r"
    args = [
        "train",
        str(tmp_path / "no-such-file.parquet"),
        "--optimizer",
        "lbfgs",
        *extra,
        "--out",
        str(out),
    ]
    assert main(args) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith(f"descend train: {flag}: {text}"), err
    assert not out.exists()
