"""The whole job as a user does it (issue 17): a data scientist's CSV trained on with `descend
train` in a process of its own, stopped with Ctrl-C and resumed, then `descend predict` on new
customers; the predictions are `ds.load_run(...).predict`'s, and as good on held-out rows as
scikit-learn's logistic regression and the least-squares optimum, fitted on the same rows."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import descend as ds
from descend.data.split import holdout_mask

pd = pytest.importorskip("pandas")
sklearn_linear = pytest.importorskip("sklearn.linear_model")
sklearn_preprocessing = pytest.importorskip("sklearn.preprocessing")

FEATURES = ["income", "ratio", "age", "visits"]
#: descend train's default hold-out: --val-fraction 0.2, --seed 0
VAL_FRACTION, SEED = 0.2, 0


def customers(n: int, seed: int) -> pd.DataFrame:
    """A row counter, a customer key, features ~1e4 and ~1e-3 apart in scale, a yes/no label from
    a logistic model, and a spend of mean 57 linear in the features plus noise."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 4))
    df = pd.DataFrame(
        {
            "id": np.arange(n),
            "customer_id": [f"C{v:07d}" for v in rng.permutation(10**7)[:n]],
            "income": 5e4 + 1.5e4 * Z[:, 0],
            "ratio": 2e-3 + 1e-3 * Z[:, 1],
            "age": 45 + 12 * Z[:, 2],
            "visits": 3 + Z[:, 3],
        }
    )
    z = Z @ np.array([1.2, -0.8, 0.5, 0.3])
    df["churned"] = np.where(rng.random(n) < 1 / (1 + np.exp(-z)), "yes", "no")
    df["spend"] = 57 + Z @ np.array([6.0, 3.0, -2.0, 1.0]) + 4 * rng.normal(size=n)
    return df


def descend(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m descend ARGS`` as a user runs it: exit code, stdout, stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "descend", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=ENV,
    )
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    return done


ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "COLUMNS": "80"}


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """customers.csv (20,000 rows, three of them with a missing income) and new.csv (5,000 new
    customers, their columns shuffled and without the targets, two with a missing value); the
    new customers' true targets."""
    d = tmp_path_factory.mktemp("job")
    train = customers(20_000, seed=0)
    train.loc[[17, 4_000, 19_999], "income"] = np.nan
    train.to_csv(d / "customers.csv", index=False)
    new = customers(5_000, seed=1)
    new.loc[[3, 2_500], "ratio"] = np.nan
    new[["visits", "customer_id", "ratio", "age", "id", "income"]].to_csv(d / "new.csv", index=False)
    return d, train, new


def training_rows(train: pd.DataFrame) -> pd.DataFrame:
    """The rows descend trained on: complete, and not held out by (seed, row) for validation."""
    held_out = holdout_mask(SEED, np.arange(len(train)), VAL_FRACTION)
    complete = train[FEATURES].notna().all(axis=1).to_numpy()
    return train[complete & ~held_out]


def predicted(d: Path, run_dir: str, new: pd.DataFrame, out: str, columns: list[str]) -> pd.DataFrame:
    """``descend predict`` of new.csv into ``out``, checked against ``ds.load_run(run_dir).predict``;
    the predictions by customer, in the order of ``new``'s complete rows."""
    done = descend(
        "predict", run_dir, "new.csv", "--id", "customer_id", "--on-bad-rows", "skip", "--out", out, cwd=d
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"predicted 4,998 rows of new.csv with {run_dir}: wrote {out} (id column customer_id; "
        f"{', '.join(columns)}); skipped 2 rows with a missing value (--on-bad-rows skip)\n"
    )
    if out.endswith(".parquet"):
        got = pd.read_parquet(d / out)
    else:
        got = pd.read_csv(d / out, dtype={"customer_id": str})
    assert list(got.columns) == ["customer_id", *columns]
    complete = new.dropna(subset=FEATURES)
    assert list(got.customer_id) == list(complete.customer_id)  # file order, the two holes left out
    shuffled = pd.read_csv(d / "new.csv", dtype={"customer_id": str}).dropna()
    python = ds.load_run(d / run_dir).predict(shuffled)  # the same rows, columns matched by name
    if python.dtype.kind == "U":  # labels
        assert list(got.prediction) == list(python)
    else:
        np.testing.assert_allclose(got.prediction, python, rtol=1e-6)
    return got.set_index("customer_id").loc[complete.customer_id]


def test_train_interrupt_resume_and_predict_a_classifier_as_good_as_sklearns(job):
    d, train, new = job
    args = ["train", "customers.csv", "--target", "churned", "--drop", "spend", "--on-bad-rows", "skip"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "descend", *args, "--out", "runs/churn"],
        cwd=d,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        first = proc.stderr.readline()  # fit's progress line: training has begun
        assert first.startswith("fit LogisticRegression with Adam("), (first, proc.communicate())
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "features (4): income, ratio, age, visits" in out
    assert "left out: id (an identifier by its name); customer_id (an identifier by its name)" in out
    m = re.fullmatch(
        r"descend train: interrupted at epoch (\d+), step (\d+): saved runs/churn; resume with: "
        r"(descend train customers\.csv --target churned --drop spend --on-bad-rows skip --out runs/churn "
        r"--resume)",
        err.strip().splitlines()[-1],
    )
    assert m, err
    stopped_at = int(m.group(2))
    interrupted = ds.load_run(d / "runs" / "churn")  # saved: model.npz of the step it stopped at
    assert interrupted.steps_completed == stopped_at > 0
    assert (d / "runs" / "churn" / "checkpoints" / "checkpoint.npz").exists()

    done = descend(*m.group(3).split()[1:], cwd=d)
    assert done.returncode == 0, done.stderr
    assert f"resumed from step {stopped_at}" in done.stdout
    assert re.search(r"^converged at step \d+ \(epoch \d+\): ", done.stdout, re.M), done.stdout
    assert re.search(r"^validation \(\d,\d{3} rows\): accuracy 0\.\d{4}$", done.stdout, re.M)
    assert "skipped 3 rows with a missing or non-numeric value (--on-bad-rows skip)" in done.stdout
    run = ds.load_run(d / "runs" / "churn")
    assert run.steps_completed > stopped_at and run.feature_names == tuple(FEATURES)
    rows = training_rows(train)
    assert run.quality.rows == len(train) - 3 - len(rows)  # the validation rows: the complete others

    got = predicted(d, "runs/churn", new, "churn.csv", ["prediction", "proba_no", "proba_yes"])
    complete = new.dropna(subset=FEATURES)
    accuracy = (got.prediction.to_numpy() == complete.churned.to_numpy()).mean()
    scaler = sklearn_preprocessing.StandardScaler().fit(rows[FEATURES])
    reference = sklearn_linear.LogisticRegression(C=np.inf, max_iter=1000)
    reference.fit(scaler.transform(rows[FEATURES]), rows.churned)
    theirs = (reference.predict(scaler.transform(complete[FEATURES])) == complete.churned).mean()
    assert abs(accuracy - theirs) <= 0.01, (accuracy, theirs)
    assert accuracy > 0.7  # the labels are noisy (a logistic model's draws), not a coin


def test_train_and_predict_a_target_of_mean_57_to_the_least_squares_optimum(job):
    d, train, new = job
    t0 = time.perf_counter()
    done = descend(
        "train", "customers.csv", "--target", "spend", "--drop", "churned", "--on-bad-rows", "skip",
        "--out", "runs/spend", cwd=d,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert time.perf_counter() - t0 < 60
    assert re.search(
        r"^validation \(\d,\d{3} rows\): R² 0\.\d{4}, RMSE [\d.]+ \(spend's units\)$", done.stdout, re.M
    )
    assert re.search(r"^standardized the target 'spend' \(mean 5[67]\.\d+, std 8\.\d+\)", done.stdout, re.M)

    got = predicted(d, "runs/spend", new, "spend.parquet", ["prediction"])
    complete = new.dropna(subset=FEATURES)
    rows = training_rows(train)
    A = np.c_[rows[FEATURES].to_numpy(), np.ones(len(rows))]
    w = np.linalg.lstsq(A, rows.spend.to_numpy(), rcond=None)[0]
    optimum = np.mean(
        (np.c_[complete[FEATURES].to_numpy(), np.ones(len(complete))] @ w - complete.spend) ** 2
    )
    mse = np.mean((got.prediction.to_numpy() - complete.spend.to_numpy()) ** 2)
    assert mse <= 1.01 * optimum, (mse, optimum)
    assert abs(got.prediction.mean() - 57) < 1  # predictions in the target's units
