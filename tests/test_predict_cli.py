"""Issue 17 at the command line: ``descend train`` on a file says what it trains on and how well,
and keeps ``model.npz``; ``descend predict RUN DATA`` streams a file into a file of predictions,
equal to ``ds.load_run(RUN).predict``, and refuses what it cannot use in one line (exit 2)."""

from __future__ import annotations

import inspect
import json
import re
import shutil

import numpy as np
import pytest

import descend as ds
from descend import cli
from descend.cli import main

pd = pytest.importorskip("pandas")
pq = pytest.importorskip("pyarrow.parquet")


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def customers(n, seed):
    """An id, a customer key, columns far apart in scale, a yes/no label and a value of mean 57."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 3))
    df = pd.DataFrame(
        {
            "id": np.arange(n),
            "customer_id": [f"C{v:06d}" for v in rng.permutation(10**6)[:n]],
            "income": 5e4 + 1.5e4 * Z[:, 0],
            "share": 2e-3 + 1e-3 * Z[:, 1],
            "age": 45 + 12 * Z[:, 2],
        }
    )
    z = Z @ np.array([1.5, -1.0, 0.5])
    df["churned"] = np.where(z + 0.5 * rng.normal(size=n) > 0, "yes", "no")
    df["spend"] = 57 + Z @ np.array([4.0, 2.0, -3.0]) + rng.normal(size=n)
    return df


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two run folders trained by the command line on customers.csv: a classifier and a
    regression (each leaving the other's target out with --drop)."""
    d = tmp_path_factory.mktemp("job")
    customers(1500, 0).to_csv(d / "customers.csv", index=False)
    new = customers(300, 1)
    new[["age", "customer_id", "share", "id", "income"]].to_csv(d / "new.csv", index=False)
    new[["age", "customer_id", "share", "id", "income"]].to_parquet(d / "new.parquet")
    for name, target, drop in (("clf", "churned", "spend"), ("reg", "spend", "churned")):
        args = ["train", d / "customers.csv", "--target", target, "--drop", drop, "--out", d / name]
        assert main([str(a) for a in [*args, "--no-progress"]]) == 0
    return d


# ------------------------------------------------------------------------------------ train


def test_train_defaults_are_fits():
    """One set of defaults: the command line's batch size, epochs and scaling are fit's."""
    fit = inspect.signature(ds.fit).parameters
    train = {p.name: p.default for p in inspect.signature(cli.train).parameters.values()}
    assert cli._batch_size(train["batch_size"]) == fit["batch_size"].default == 256
    assert cli._epochs(train["epochs"]) is fit["epochs"].default is None
    assert cli._standardize(train["standardize"]) == fit["standardize"].default == "auto"
    assert train["val_fraction"] == 0.2  # the command line's own: a file run shows its quality


def test_train_on_a_file_says_what_it_trained_on_why_it_stopped_and_how_well(trained, tmp_path, capsys):
    code, out, err = run_cli(
        capsys, "train", trained / "customers.csv", "--target", "churned", "--drop", "spend",
        "--out", tmp_path / "r", "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    lines = out.splitlines()
    assert lines[1] == "features (3): income, share, age"
    assert lines[2] == (
        "left out: id (an identifier by its name); customer_id (an identifier by its name); "
        "--features or --drop chooses the columns"
    )
    assert re.search(r"^validation \(\d+ rows\): accuracy 0\.\d{4}$", out, re.M), out
    assert "--standardize auto: scaled the features to mean 0, sd 1 (they are ill-scaled)" in out
    run = ds.load_run(tmp_path / "r")
    # why it stopped (fit's rule: on 1,200 rows, 100 epochs at 5 steps each come first)
    assert lines[3].startswith(f"{run.stop_reason}; {run.steps_completed} steps with Adam(")
    assert re.match(r"(converged at step|reached max_epochs=100 before the convergence rule)", lines[3])
    assert run.feature_names == ("income", "share", "age") and run.quality.accuracy > 0.8
    assert f"accuracy {run.quality.accuracy:.4f}" in out
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["features"] == ["income", "share", "age"] and summary["validation"]["rows"] > 250
    assert "model.npz" in summary["files"]


def test_train_regression_prints_fits_notes_in_the_words_of_the_command_line(trained, capsys):
    summary = json.loads((trained / "reg" / "summary.json").read_text())
    assert re.match(r"validation \(\d+ rows\): R² 0\.9\d+, RMSE [\d.]+ \(spend's units\)", summary["quality"])
    code, out, err = run_cli(
        capsys, "train", trained / "customers.csv", "--target", "spend", "--drop", "churned",
        "--epochs", "2", "--val-fraction", "0", "--standardize", "off", "--out", trained / "reg-off",
        "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    assert "completed 2 epochs" in out and "validation (" not in out  # --val-fraction 0: none
    assert "--standardize off: trained on the data as given" in out
    assert "standardized the target" not in out
    code, out, err = run_cli(
        capsys, "train", trained / "customers.csv", "--target", "spend", "--drop", "churned",
        "--epochs", "1", "--out", trained / "reg-auto", "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    note = next(line for line in out.splitlines() if line.startswith("standardized the target 'spend'"))
    assert "(--standardize off trains on the target as given)" in note and "standardize_target" not in note


# ------------------------------------------------------------------------------------ predict


@pytest.mark.parametrize("name", ["clf", "reg"])
def test_predict_writes_a_csv_named_after_the_data_equal_to_load_run_predict(
    name, trained, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "predict", trained / name, trained / "new.csv")
    assert code == 0, err
    written = tmp_path / "new.predictions.csv"  # in the current folder, named after DATA
    run = ds.load_run(trained / name)
    new = pd.read_csv(trained / "new.csv")
    got = pd.read_csv(written, dtype={"customer_id": str})
    probas = ["proba_no", "proba_yes"] if name == "clf" else []
    assert list(got.columns) == ["customer_id", "prediction", *probas]
    assert list(got.customer_id) == list(new.customer_id)  # the first identifier column, in file order
    expected = run.predict(new)  # the columns shuffled: matched by name
    if name == "clf":
        assert list(got.prediction) == list(expected)
        np.testing.assert_allclose(got[probas].to_numpy(), run.predict_proba(new), rtol=1e-6)
    else:
        np.testing.assert_allclose(got.prediction, expected, rtol=1e-6)
        assert abs(got.prediction.mean() - 57) < 2  # in the target's units
    assert out == (
        f"predicted 300 rows of {trained / 'new.csv'} with {trained / name}: wrote new.predictions.csv "
        f"(id column customer_id; {', '.join(['prediction', *probas])})\n"
    )


def test_predict_to_parquet_with_a_chosen_id_column_from_parquet(trained, tmp_path, capsys):
    out_file = tmp_path / "sub" / "preds.parquet"
    code, out, err = run_cli(
        capsys, "predict", trained / "clf", trained / "new.parquet", "--id", "id", "--out", out_file
    )
    assert code == 0, err
    table = pq.read_table(out_file)
    assert table.column_names == ["id", "prediction", "proba_no", "proba_yes"]
    assert table.column("id").to_pylist() == list(range(300))
    new = pd.read_parquet(trained / "new.parquet")
    assert table.column("prediction").to_pylist() == list(ds.load_run(trained / "clf").predict(new))
    assert "(id column id;" in out


def test_predict_without_an_id_column_numbers_the_rows(trained, tmp_path, capsys):
    pd.read_csv(trained / "new.csv")[["income", "share", "age"]].to_csv(tmp_path / "bare.csv", index=False)
    code, out, err = run_cli(
        capsys, "predict", trained / "clf", tmp_path / "bare.csv", "--out", tmp_path / "p.csv"
    )
    assert code == 0, err
    got = pd.read_csv(tmp_path / "p.csv")
    assert list(got.columns[:2]) == ["row", "prediction"] and list(got.row) == list(range(1, 301))
    assert out.endswith("(no id column: rows numbered in 'row'; prediction, proba_no, proba_yes)\n")


def test_missing_values_stop_predict_or_are_skipped_or_left_empty(trained, tmp_path, capsys):
    df = pd.read_csv(trained / "new.csv")
    df.loc[[4, 9], "income"] = np.nan
    df.to_csv(tmp_path / "holes.csv", index=False)
    code, out, err = run_cli(
        capsys, "predict", trained / "clf", tmp_path / "holes.csv", "--out", tmp_path / "p.csv"
    )
    assert code == 2 and not (tmp_path / "p.csv").exists()
    assert err.strip() == (
        f"descend predict: {tmp_path / 'holes.csv'}: row 5, column 'income': a missing value (fix the "
        "file, or pass --on-bad-rows skip or empty)"
    )
    code, out, err = run_cli(
        capsys,
        "predict",
        trained / "clf",
        tmp_path / "holes.csv",
        "--on-bad-rows",
        "skip",
        "--out",
        tmp_path / "s.csv",
    )
    assert code == 0, err
    assert len(pd.read_csv(tmp_path / "s.csv")) == 298 and "skipped 2 rows with a missing value" in out
    code, out, err = run_cli(
        capsys,
        "predict",
        trained / "clf",
        tmp_path / "holes.csv",
        "--on-bad-rows",
        "empty",
        "--out",
        tmp_path / "e.csv",
    )
    assert code == 0, err
    got = pd.read_csv(tmp_path / "e.csv")
    assert len(got) == 300 and got.prediction.isna().sum() == 2 and "2 rows with a missing value" in out


def test_predict_refuses_in_one_line_what_it_cannot_use(trained, tmp_path, capsys):
    new = pd.read_csv(trained / "new.csv")
    new.drop(columns="share").to_csv(tmp_path / "lacking.csv", index=False)
    new.assign(extra=1.0).to_csv(tmp_path / "extra.csv", index=False)
    (tmp_path / "notes.csv").write_bytes(bytes(range(256)) * 4)
    cases = [
        (tmp_path / "lacking.csv", "lacks the feature column(s) 'share' that the model was trained on"),
        (tmp_path / "extra.csv", "has column(s) 'extra' that were not in the training data"),
        (tmp_path / "extra.csv", "leave the others out of the file, or name its id column with --id COL"),
        (tmp_path / "notes.csv", "notes.csv"),
    ]
    for data, text in cases:
        code, out, err = run_cli(capsys, "predict", trained / "clf", data, "--out", tmp_path / "p.csv")
        assert code == 2, (data, out)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("descend predict: ") and text in lines[0], err
        assert not (tmp_path / "p.csv").exists()


def test_predict_reads_a_run_folder_from_its_checkpoint_and_warns_of_a_diverged_run(
    trained, tmp_path, capsys
):
    folder = tmp_path / "run"
    shutil.copytree(trained / "clf", folder)
    (folder / "model.npz").unlink()  # an older run folder: the newest checkpoint is the model
    for run, name in ((folder, "a.csv"), (trained / "clf", "b.csv")):
        code, _, err = run_cli(capsys, "predict", run, trained / "new.csv", "--out", tmp_path / name)
        assert code == 0, err
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()

    code, _, err = run_cli(
        capsys, "train", trained / "customers.csv", "--target", "churned", "--drop", "spend",
        "--optimizer", "sgd", "--lr", "1e7", "--out", tmp_path / "gone", "--no-progress",
    )  # fmt: skip
    assert code == 1 and "diverged at step" in err
    assert (tmp_path / "gone" / "model.npz").exists()  # its last good state
    code, _, err = run_cli(
        capsys, "predict", tmp_path / "gone", trained / "new.csv", "--out", tmp_path / "c.csv"
    )
    assert code == 0
    assert re.fullmatch(
        r"descend predict: warning: the run diverged at step \d+ \(epoch \d+\): these are the "
        r"predictions of its last good state\n",
        err,
    ), err


def test_an_interrupted_run_keeps_its_model(trained, tmp_path, monkeypatch, capsys):
    """Ctrl-C saves model.npz with the run folder: predict uses the model as it was."""
    import signal

    from descend.train import progress

    def update(self, s, *args):
        if s == 5:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(progress.Progress, "update", update)
    code, _, err = run_cli(
        capsys, "train", trained / "customers.csv", "--target", "churned", "--drop", "spend",
        "--out", tmp_path / "cut", "--no-progress",
    )  # fmt: skip
    assert code == 130 and "interrupted at epoch 1, step 5" in err
    assert "--drop spend" in err  # the resume command keeps the flags that chose the columns
    run = ds.load_run(tmp_path / "cut")
    assert run.steps_completed == 5
    with np.load(tmp_path / "cut" / "params.npz") as saved:
        assert all(np.array_equal(saved[k], run.params[k]) for k in saved.files)


def test_a_dask_runs_folder_predicts_a_file_that_holds_the_target(trained, tmp_path, capsys):
    """A run trained on a cluster knows its target's name, as a file run does."""
    pytest.importorskip("distributed")
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    df = pd.read_csv(trained / "customers.csv")
    with (
        LocalCluster(n_workers=1, processes=False, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster),
    ):
        src = ds.data.from_dask(
            dd.from_pandas(df, npartitions=3), target="churned", features=["income", "share"]
        )
        run = ds.fit("logistic", src, batch_size=None, lr=0.03, epochs=20, validation=0.2, progress=False)
    assert run.target == "churned" and run.quality.rows > 200
    run.save(tmp_path / "dask-run")
    code, out, err = run_cli(
        capsys, "predict", tmp_path / "dask-run", trained / "customers.csv", "--out", tmp_path / "p.csv"
    )
    assert code == 0, err  # churned (the target) and age, spend (columns it had) are not features
    assert "(id column id; prediction, proba_no, proba_yes)" in out
    assert list(pd.read_csv(tmp_path / "p.csv").prediction) == list(run.predict(df))


@pytest.mark.parametrize(
    ("data", "name"),
    [
        ("new.csv", "new.predictions.csv"),
        ("data/new.csv.gz", "new.predictions.csv"),
        ("sales.2024.parquet", "sales.2024.predictions.csv"),
        ("parts/", "parts.predictions.csv"),
        ("data/*.parquet", "data.predictions.csv"),
    ],
)
def test_the_default_output_is_named_after_the_data(data, name):
    assert cli._predictions_name(data) == name


def test_predict_help_at_80_columns(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["predict", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: descend predict [OPTIONS] RUN DATA")
    assert "--on-bad-rows skip|empty|error" in out and "--id COL" in out and "--out FILE" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert main(["--help"]) == 0
    assert re.search(r"^  predict +Predict with a trained run", capsys.readouterr().out, re.M)
