"""The loop's shape: fit's arguments checked once into a FitConfig before anything is created; one
divergence guard (train/stopping.py) and one column store (train/history.py) shared by fit,
minimize and lr_find."""

from __future__ import annotations

import dataclasses
import math
import pickle
from pathlib import Path

import numpy as np
import pytest

import descend as ds
from descend.errors import DivergenceError, InvalidParameter, ParameterError, ParameterTypeError
from descend.optim import Optimizer
from descend.train.callbacks import Callback
from descend.train.config import FitConfig
from descend.train.history import Columns, History, TrainHistory
from descend.train.progress import Progress
from descend.train.stopping import Divergence, DivergenceGuard, non_finite


def _data(n: int = 64, d: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, (X[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(np.int64)


class _Spy(Callback):
    def __init__(self) -> None:
        self.calls = 0

    def on_train_begin(self, run):
        self.calls += 1

    def on_gradients(self, run, grads):
        self.calls += 1


# ------------------------------------------------------------------ the configuration

#: (arguments, exception type, how the message starts); every one is refused by FitConfig.of
REFUSED = [
    ({"epochs": 0}, ParameterError, "fit: epochs must satisfy epochs >= 1, got 0"),
    ({"epochs": 2.5}, ParameterTypeError, "fit: epochs must be an integer, got 2.5"),
    ({"epochs": None, "max_epochs": 0}, ParameterError, "fit: max_epochs must satisfy max_epochs >= 1"),
    ({"epochs": None, "tol": -1.0}, ParameterError, "fit: tol must satisfy tol >= 0"),
    ({"epochs": None, "n_iter_no_change": 0}, ParameterError, "fit: n_iter_no_change must satisfy"),
    ({"shuffle": "yes"}, ParameterTypeError, "fit: shuffle must be True or False"),
    ({"seed": -1}, ParameterError, "fit: seed must satisfy seed >= 0, got -1"),
    ({"resume": "no"}, ParameterTypeError, "fit: resume must be True or False"),
    ({"standardize": "sometimes"}, ParameterTypeError, "fit: standardize must be True or False"),
    ({"standardize_target": 2}, ParameterTypeError, "fit: standardize_target must be True or False"),
    ({"max_steps": 0}, ParameterError, "fit: max_steps must satisfy max_steps >= 1, got 0"),
    ({"divergence_factor": 1.0}, ParameterError, "fit: divergence_factor must satisfy divergence_factor > 1"),
    ({"init": "run"}, TypeError, "fit: init must be a Run returned by fit"),
    ({"validation": 1.5}, ParameterError, "fit: validation must satisfy 0 < validation < 1, got 1.5"),
    ({"batch_size": 0}, ParameterError, "fit: batch_size must satisfy batch_size >= 1, got 0"),
    ({"batch_size": 2.5}, TypeError, "fit: batch_size must be None (full batch), 1 (stochastic)"),
    ({"drop_last": "x"}, ParameterTypeError, "fit: drop_last must be True or False"),
    ({"callbacks": [5]}, TypeError, "fit: callbacks must be Callback instances or callables, got 5"),
    ({"monitor": "yes"}, TypeError, "fit: monitor must be a descend.Monitor"),
    ({"checkpoint_dir": 5}, ParameterTypeError, "fit: checkpoint_dir must be a folder path (str or Path)"),
    ({"checkpoint_every": 0}, ParameterError, "fit: checkpoint_every must satisfy checkpoint_every >= 1"),
    ({"progress": "fancy"}, ValueError, "fit: progress must be None, True, False, 'rich' or 'plain'"),
    ({"optimizer": "adamm"}, ParameterError, "optimizer: unknown optimizer 'adamm'"),
    ({"lr": -1.0}, ParameterError, "Adam: lr must satisfy lr >= 0"),
    ({"sync_every": 0}, ParameterError, "fit: sync_every must satisfy sync_every >= 1, got 0"),
    ({"sync_every": 2.5}, ParameterTypeError, "fit: sync_every must be an integer, got 2.5"),
]
#: refused because checkpoint_dir is missing: no folder is given to check
NEEDS_FOLDER = [
    ({"checkpoint_every": 5}, ValueError, "fit: checkpoint_every=5 needs checkpoint_dir"),
    ({"resume": True}, ValueError, "fit: resume=True needs checkpoint_dir"),
]


def _ids(table):
    return ["-".join(f"{k}={v!r}" for k, v in kw.items()) for kw, _, _ in table]


@pytest.mark.parametrize(("kwargs", "exc", "start"), REFUSED + NEEDS_FOLDER, ids=_ids(REFUSED + NEEDS_FOLDER))
def test_the_config_refuses_each_bad_argument_with_fits_message(kwargs, exc, start):
    with pytest.raises(exc) as info:
        FitConfig.of("logistic", **kwargs)
    assert str(info.value).startswith(start), str(info.value)


@pytest.mark.parametrize(("kwargs", "exc", "start"), REFUSED + NEEDS_FOLDER, ids=_ids(REFUSED + NEEDS_FOLDER))
def test_fit_refuses_it_before_anything_is_created_or_called(tmp_path, kwargs, exc, start):
    folder = tmp_path / "ck"
    spy = _Spy()
    kw = {"progress": False, "callbacks": [spy], **kwargs}
    if not any(k in kwargs for k in ("checkpoint_dir", "checkpoint_every", "resume")):
        kw["checkpoint_dir"] = folder
    with pytest.raises(exc) as info:
        ds.fit("logistic", _data(), **kw)
    assert str(info.value).startswith(start)
    assert not folder.exists() and list(tmp_path.iterdir()) == []
    assert spy.calls == 0


def test_a_parameter_error_names_its_parameter_for_the_command_line():
    named = 0
    for kwargs, _, _ in REFUSED:
        try:
            FitConfig.of("logistic", **kwargs)
        except InvalidParameter as exc:  # the CLI maps param to its flag
            named += 1
            assert exc.param == {"optimizer": "name"}.get(list(kwargs)[-1], list(kwargs)[-1])
        except (TypeError, ValueError):
            pass  # messages older than the parameter attribute (init, callbacks, monitor, progress)
    assert named >= 20


def test_a_refusal_that_needs_the_data_removes_the_folder_it_created(tmp_path):
    X, y = _data(n=20)
    for kwargs, match in [
        ({"batch_size": 64, "drop_last": True}, "leaves no batch"),  # batch_size against the rows
        ({"sync_every": 3}, "needs data on a Dask cluster"),  # sync_every against the source
        ({"optimizer": "lbfgs"}, r"batch_size=256 \(fit's default\) with LBFGS"),
        ({"validation": (np.ones((3, 5)), np.ones(3))}, "validation has 5 features but data has 3"),
    ]:
        folder = tmp_path / "ck"
        with pytest.raises(ValueError, match=match):
            ds.fit("logistic", (X, y), checkpoint_dir=folder, progress=False, **kwargs)
        assert not folder.exists()


def test_the_config_is_typed_and_frozen(tmp_path):
    config = FitConfig.of(
        "logistic",
        optimizer="sgd",
        lr=0.1,
        epochs=None,
        max_epochs=7,
        callbacks=[lambda info: None],
        monitor=ds.Monitor(every=5),
        checkpoint_dir=str(tmp_path / "ck"),
        validation=0.25,
        progress=False,
    )
    assert config.model.name == "logistic_regression"
    assert isinstance(config.optimizer, Optimizer) and config.optimizer.name == "sgd"
    assert config.epochs == 7 and config.until_converged and config.epochs_name == "max_epochs"
    assert (config.tol, config.n_iter_no_change) == (1e-3, 5)
    assert all(isinstance(cb, Callback) for cb in config.callbacks) and len(config.callbacks) == 2
    assert isinstance(config.callbacks[-1], ds.Monitor)
    assert config.checkpoint_dir == tmp_path / "ck" and isinstance(config.checkpoint_dir, Path)
    assert (config.validation, config.validation_fraction) == (None, 0.25)
    assert isinstance(config.progress, Progress)
    assert not (tmp_path / "ck").exists()  # checking creates nothing
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 3  # type: ignore[misc]
    fixed = FitConfig.of("logistic", epochs=3, tol=-5.0)  # tol is the plateau rule's: unused here
    assert fixed.epochs == 3 and not fixed.until_converged and fixed.tol is None


def test_init_brings_its_optimizer_and_is_checked_against_the_model():
    X, y = _data()
    first = ds.fit("logistic", (X, y), epochs=1, progress=False)
    config = FitConfig.of("logistic", init=first)  # optimizer is init's
    assert config.optimizer is first.optimizer
    with pytest.raises(ParameterError, match=r"^fit: init continues its own optimizer Adam\("):
        FitConfig.of("logistic", init=first, optimizer="sgd")  # refused, not ignored
    with pytest.raises(ValueError, match=r"^fit: init was trained with"):
        FitConfig.of(ds.models.LogisticRegression(l2=0.5), init=first)


# ------------------------------------------------------------------ one divergence guard


def test_the_guard_names_what_is_not_finite_in_every_configuration():
    for guard in (DivergenceGuard(None), DivergenceGuard(1e4, batch_rows=32), DivergenceGuard(3.0, beta=0.9)):
        assert guard.check(math.nan, 1.0) == Divergence("loss", "loss became non-finite", False)
        assert guard.check(1.0, math.inf) == Divergence("gradient", "gradient became non-finite", False)
        assert guard.check(math.inf, math.nan).quantity == "loss"  # the loss is named first
        assert guard.check(1.0, 1.0) is None
    assert non_finite(1.0, math.nan) == Divergence.not_finite("gradient")


def test_without_a_factor_the_guard_checks_finiteness_only():
    guard = DivergenceGuard(None)
    assert all(guard.check(loss, 1.0) is None for loss in (1.0, 1e10, 1e300))
    assert not guard.keep_now and guard.state_dict() is None


def test_the_guard_with_lr_finds_constants_is_lr_finds_old_rule():
    """The sweep's rule as lr_find wrote it (a bias-corrected moving average that stops once it
    exceeds diverge_factor times its lowest value) against the shared guard."""
    rng = np.random.default_rng(5)
    for beta, factor in [(0.9, 4.0), (0.0, 2.0), (0.98, 10.0)]:
        losses = np.exp(np.cumsum(rng.normal(0.02, 0.3, size=400)))
        avg, best, expected = 0.0, math.inf, None
        for k, loss in enumerate(losses):
            avg = beta * avg + (1 - beta) * loss
            sm = avg / (1 - beta ** (k + 1))
            best = min(best, sm)
            if k > 0 and sm > factor * best:
                expected = k
                break
        guard = DivergenceGuard(factor - 1.0, beta=beta, min_rows=1, floor=0.0)
        got = next((k for k, loss in enumerate(losses) if guard.check(float(loss)) is not None), None)
        assert got == expected, (beta, factor)


def test_a_diverging_fit_names_the_step_and_the_quantity():
    X, y = _data(n=256)
    X = X * 1e3
    with pytest.raises(DivergenceError) as info:
        ds.fit(
            ds.models.LinearRegression(),
            (X, y * 1e3),
            optimizer="sgd",
            lr=10.0,
            batch_size=32,
            epochs=50,
            standardize=False,
            divergence_factor=None,
            progress=False,
        )
    err = info.value
    assert err.quantity in ("loss", "gradient", "update", "optimizer state")
    assert f"the {err.quantity} became non-finite at step {err.step} " in str(err)
    assert err.cause == f"{err.quantity} became non-finite"
    # growth: the same guard, with fit's factor
    with pytest.raises(DivergenceError) as info:
        ds.fit(
            ds.models.LogisticRegression(), _data(n=256), optimizer="sgd", lr=1e7, epochs=20, progress=False
        )
    err = info.value
    assert err.quantity == "loss" and err.cause.startswith("loss grew from ")
    assert f"diverged at step {err.step} " in str(err)


def test_a_diverging_minimize_names_the_step_and_the_quantity():
    f = ds.functions.get("rosenbrock")
    with pytest.raises(DivergenceError) as info:
        ds.minimize(f, f.start, optimizer="sgd", lr=1.0, max_steps=100)
    err = info.value
    assert err.quantity in ("loss", "gradient") and err.cause == f"{err.quantity} became non-finite"
    assert f"the {err.quantity} became non-finite at step {err.step} " in str(err)
    res = ds.minimize(f, f.start, optimizer="sgd", lr=1.0, max_steps=100, on_divergence="stop")
    assert res.diverged and res.message == str(err)
    assert len(res.history) == err.step  # rows 0 .. step - 1: the finite iterates


def test_a_diverging_lr_find_stops_naming_the_step_and_the_quantity():
    X, y = _data(n=512)
    res = ds.lab.lr_find("logistic", (X, y), "sgd", steps=200, end_lr=1e6)
    assert res.stopped_early
    assert res.reason.startswith("smoothed loss grew from ") and "over 4x its best" in res.reason
    assert f"at step {len(res.lrs)} (lr=" in res.reason
    # a sweep that reaches inf before it grows diverge_factor times: fit's guard names it
    Xl = np.random.default_rng(0).normal(size=(256, 3)) * 1e3
    yl = Xl @ np.array([1.0, 2.0, 3.0])
    res = ds.lab.lr_find(
        ds.models.LinearRegression(),
        (Xl, yl),
        "sgd",
        steps=300,
        end_lr=1e30,
        diverge_factor=1e300,
        standardize=False,
    )
    assert res.stopped_early and " became non-finite at step " in res.reason
    quantity = res.reason.split(" became")[0]
    assert quantity in ("loss", "gradient", "update", "optimizer state")


# ------------------------------------------------------------------ one column store


def test_columns_append_by_position_or_by_name_and_read_back_as_arrays():
    cols = Columns(("step", "loss"))
    cols.append((1, 2.0))
    cols.add_row({"step": 2, "loss": 1.0, "lr": 0.5})
    cols.add_row({"step": 3})
    assert isinstance(cols, dict) and cols.n_rows == 3
    assert cols["step"] == [1, 2, 3] and cols.array("step").dtype.kind == "i"
    np.testing.assert_array_equal(cols.array("lr"), [np.nan, 0.5, np.nan])
    assert cols.rows()[1] == {"step": 2, "loss": 1.0, "lr": 0.5}
    back = Columns.from_arrays(cols.to_arrays(), ints=("step",))
    assert back["step"] == [1, 2, 3] and np.isnan(back["lr"][0])
    with pytest.raises(ValueError):
        cols.append((4,))  # a row is one value per column


def test_fit_minimize_and_lr_find_record_into_the_same_store():
    X, y = _data()
    run = ds.fit("logistic", (X, y), epochs=2, batch_size=16, progress=False)
    assert isinstance(run.history.steps, Columns) and isinstance(run.history.epochs, Columns)
    assert run.history.steps.n_rows == 8 and run.history.step_array("step").tolist() == list(range(1, 9))
    f = ds.functions.get("rosenbrock")
    res = ds.minimize(f, f.start, optimizer="adam", lr=0.01, max_steps=5, tol=None)
    assert isinstance(res.history, History) and res.history.step.tolist() == [0, 1, 2, 3, 4, 5]
    assert np.isnan(res.history.lr[-1]) and np.all(res.history.lr[:-1] == 0.01)
    found = ds.lab.lr_find("logistic", (X, y), steps=10)
    assert found.lrs.dtype == np.float64 and len(found.lrs) == len(found.losses) == len(found.smoothed) == 10


def test_a_train_history_from_plain_dicts_or_a_pickle_is_columns(tmp_path):
    h = TrainHistory(steps={"step": [1, 2], "loss": [0.5, 0.4]}, epochs={"epoch": [0]})
    assert isinstance(h.steps, Columns) and h.step_array("loss").tolist() == [0.5, 0.4]
    h.add_epoch({"epoch": 1, "val_loss": 0.3})
    assert h.epochs["val_loss"][0] != h.epochs["val_loss"][0]  # NaN for the earlier epoch
    old = TrainHistory()
    old.__dict__["steps"] = {"step": [1], "loss": [0.1]}  # as an older pickle holds it
    back = pickle.loads(pickle.dumps(old))
    assert isinstance(back.steps, Columns) and back.step_rows() == [{"step": 1, "loss": 0.1}]
    again = TrainHistory.from_arrays(h.to_arrays())
    assert again.steps == h.steps and again.epochs["epoch"] == [0, 1]
    assert TrainHistory.from_arrays({}).steps == TrainHistory().steps  # fit's columns, empty
