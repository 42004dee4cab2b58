"""fit()'s divergence guard before the loss is infinite, data fit()'s dtype cannot hold, and epochs
or validation sets that deliver no rows."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import numpy as np
import pytest
from typer.testing import CliRunner

import descend as ds
from descend.cli import main
from descend.data import ArraySource, DataError, DataSource
from descend.errors import ParameterError
from descend.train.stopping import DivergenceGuard, grown


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X - X.mean(0)) / (X.std(0) + 1e-9), y


# ------------------------------------------------------------------ the rule


def test_the_rule_compares_growth_with_the_best_and_the_first_loss():
    # factor x best, but never less than 10 x the first loss
    assert not grown(2.0e4, best=2.0, first=2.3, factor=1e4)
    assert grown(2.1e4, best=2.0, first=2.3, factor=1e4)
    assert not grown(20.0, best=1e-6, first=2.3, factor=1e4)  # best near 0: 10 x the first loss
    assert grown(24.0, best=1e-6, first=2.3, factor=1e4)
    assert not grown(-0.5, best=-1.0, first=3.0, factor=10.0)  # works for negative losses too


def test_the_guard_ignores_single_outlier_batches():
    guard = DivergenceGuard(1e4, batch_rows=1, min_rows=32)
    rng = np.random.default_rng(0)
    for k in range(20_000):
        loss = float(rng.exponential(0.3)) if k % 997 else 1e3  # a rare sample 3000x the mean
        assert not guard.update(loss, 1), k


def test_a_diverging_run_is_caught_at_once():
    guard = DivergenceGuard(1e4, batch_rows=32, min_rows=32)
    assert not guard.update(2.3, 32)
    assert guard.update(1e13, 32)


@pytest.mark.parametrize("value", [0, 1, -1, math.nan, math.inf, "big"])
def test_divergence_factor_is_validated(value):
    with pytest.raises((ParameterError, ds.errors.ParameterTypeError), match="divergence_factor"):
        ds.fit("logistic", (np.eye(4), np.array([0, 1, 0, 1])), divergence_factor=value, progress=False)


# ------------------------------------------------------------------ in fit


@pytest.mark.parametrize(
    ("optimizer", "activation", "batch_size"),
    [("adam", "relu", 32), ("adam", "tanh", None), ("rmsprop", "relu", 64), ("sgd", "relu", None)],
)
def test_lr_1e6_on_an_mlp_is_divergence_not_a_completed_run(digits, optimizer, activation, batch_size):
    X, y = digits
    model = ds.models.MLP(hidden=(32,), activation=activation, output="softmax")
    with pytest.raises(ds.DivergenceError, match=r"divergence_factor=10000") as exc:
        ds.fit(model, (X, y), optimizer=optimizer, lr=1e6, batch_size=batch_size, epochs=3, progress=False)
    err = exc.value
    assert err.quantity == "loss" and "grew" in err.cause
    run = err.run
    # the parameters are those of the last good state: a loss near the first one, not 1e13
    first = run.history.steps["loss"][0]
    loss = run.model.loss(run.params, X.astype(np.float32), y)
    assert np.isfinite(loss) and loss < 10 * first
    assert "diverged" in run.stop_reason


def test_divergence_factor_none_keeps_the_old_behaviour(digits):
    X, y = digits
    run = ds.fit(
        ds.models.MLP(hidden=(32,), activation="tanh", output="softmax"),
        (X, y),
        optimizer="adam",
        lr=1e6,
        batch_size=None,
        epochs=2,
        divergence_factor=None,
        progress=False,
    )
    assert run.history.steps["loss"][-1] > 1e4  # "completed", as before the guard


@pytest.mark.parametrize(
    ("model", "batch_size", "optimizer", "lr"),
    [
        ("mlp", 32, "adam", 3e-3),
        ("mlp", 1, "sgd", 0.05),
        ("softmax", 1, "sgd", 0.5),
        ("mlp", 8, "momentum", 0.01),
    ],
)
def test_ordinary_noisy_training_never_trips_the_guard(digits, model, batch_size, optimizer, lr):
    X, y = digits
    m = ds.models.MLP(hidden=(64,), output="softmax") if model == "mlp" else ds.models.SoftmaxRegression()
    run = ds.fit(m, (X, y), optimizer=optimizer, lr=lr, batch_size=batch_size, epochs=3, progress=False)
    assert run.stop_reason == "completed 3 epochs"


def test_noisy_regression_with_outliers_at_batch_size_1_does_not_trip():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(3000, 5))
    y = X @ rng.normal(size=5) + rng.standard_t(2, size=3000) * 5  # heavy tails
    run = ds.fit("linear", (X, y), optimizer="sgd", lr=1e-3, batch_size=1, epochs=2, progress=False)
    assert run.stop_reason == "completed 2 epochs"


def test_the_guard_state_is_checkpointed_and_resumed(tmp_path, digits):
    X, y = digits
    kw = dict(optimizer="adam", lr=3e-3, batch_size=64, checkpoint_dir=tmp_path, progress=False)
    model = ds.models.MLP(hidden=(16,), output="softmax")
    ds.fit(model, (X, y), epochs=1, checkpoint_every=10, **kw)
    from descend.train.checkpoint import read_checkpoint

    saved = read_checkpoint(tmp_path / "checkpoint.npz")[2]["extra"]["divergence_guard"]
    assert saved["best"] is not None and saved["first"] is not None
    run = ds.fit(model, (X, y), epochs=2, resume=True, **kw)
    assert run.stop_reason == "completed 2 epochs"


# ------------------------------------------------------------------ the command line


def test_descend_train_with_lr_1e6_exits_non_zero_with_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "digits",
            "--model",
            "mlp",
            "--lr",
            "1e6",
            "--epochs",
            "2",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("descend train: diverged at step")
    assert "grew" in err[0] and "try a smaller lr" in err[0] and "non-finite" not in err[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["diverged"]["step"] >= 1


def test_descend_train_exit_code_through_typer_too(tmp_path):
    from descend.cli import app

    result = CliRunner().invoke(
        app,
        [
            "train",
            "digits",
            "--model",
            "mlp",
            "--lr",
            "1e6",
            "--epochs",
            "1",
            "--no-progress",
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code != 0


# ------------------------------------------------------------------ data fit's dtype cannot hold


def test_a_feature_above_float32s_range_is_a_data_error_naming_row_and_column():
    X = np.ones((50, 3))
    X[17, 2] = 1e39  # finite in float64, inf in float32
    y = np.arange(50) % 2
    steps = []
    with pytest.raises(DataError, match=r"row 17, column 2.*float32") as exc:
        ds.fit("logistic", (X, y), callbacks=[lambda info: steps.append(1)], progress=False)
    assert "lr" not in str(exc.value)
    assert steps == []
    # float64 models take it
    ds.fit(ds.models.LogisticRegression(dtype=np.float64), (X, y), epochs=1, progress=False)


def test_a_regression_target_above_float32s_range_is_a_data_error():
    X = np.ones((20, 2))
    y = np.ones(20)
    y[4] = -1e40
    with pytest.raises(ValueError, match=r"float32.*row 4"):
        ds.fit("linear", (X, y), progress=False)


def test_a_memory_mapped_feature_above_float32s_range_is_a_data_error(tmp_path):
    X = np.ones((40, 3))
    X[33, 1] = 3e38 * 10
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", np.arange(40) % 2)
    src = ds.data.open(tmp_path / "X.npy", target=tmp_path / "y.npy")
    with pytest.raises(DataError, match=r"row 33, column 1.*float32"):
        ds.fit("logistic", src, epochs=1, standardize=False, progress=False)


@pytest.mark.parametrize("standardize", [False, True])
def test_a_streamed_feature_above_float32s_range_is_a_data_error(tmp_path, standardize):
    rows = ["a,b,c,y"] + [f"1,{1e39 if i == 33 else i},3,{i % 2}" for i in range(40)]
    (tmp_path / "big.csv").write_text("\n".join(rows) + "\n")
    src = ds.data.open(tmp_path / "big.csv", target="y")
    with pytest.raises(DataError, match=r"big.csv: row 34, column 1 \('b'\).*float32") as exc:
        ds.fit("logistic", src, epochs=1, standardize=standardize, progress=False)
    assert "lr" not in str(exc.value).replace("float", "")


# ------------------------------------------------------------------ epochs and validation with no rows


class _Hollow(DataSource):
    """Says it has rows, delivers none (a file truncated after its row count was read)."""

    description = "hollow"

    def __init__(self, n=64, d=3):
        self._n, self._d = n, d

    @property
    def n_features(self) -> int:
        return self._d

    def shard_sizes(self):
        return [self._n]

    def read_shard(self, shard: int, skip: int = 0) -> Iterator:
        return iter(())

    def batches(self, epoch, batch_size, **kw) -> Iterator:  # bypasses the base class's row count
        return iter(())


def test_an_epoch_that_runs_no_step_is_an_error():
    with pytest.raises(DataError, match=r"epoch 0 ran 0 steps.*64 rows"):
        ds.fit("linear", _Hollow(), epochs=2, standardize=False, progress=False)


def test_a_validation_set_that_delivers_no_rows_is_an_error_not_zero_division():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 3)), rng.normal(size=64)
    with pytest.raises(DataError, match=r"validation.*no rows"):
        ds.fit("linear", (X, y), validation=_Hollow(), epochs=1, standardize=False, progress=False)


def test_in_memory_sources_still_train_normally():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 3)), rng.normal(size=64)
    run = ds.fit("linear", ArraySource(X, y), validation=0.25, epochs=2, progress=False)
    assert len(run.history.epochs["val_loss"]) == 2


def test_a_blow_up_within_the_first_rows_is_a_divergence_error_not_a_type_error():
    """Before the guard has a best loss (its first min_rows rows) the reference is the first
    batch's loss; the error said 'grew from None' and failed formatting it."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 8))
    y = (X[:, 0] > 0).astype(int)
    with pytest.raises(ds.DivergenceError, match="grew from the first batch's") as err:
        ds.fit(
            ds.models.MLP(hidden=(16,), output="binary"),
            (X, y),
            optimizer="sgd",
            lr=1e4,
            batch_size=1,
            epochs=1,
            progress=False,
        )
    assert "step" in str(err.value)
