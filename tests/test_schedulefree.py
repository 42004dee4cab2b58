"""Schedule-Free's evaluation point: gradients are taken at y (the parameters the rule steps),
the model is the average x (``Optimizer.eval_params``). What the library does with it: fit's
validation, the Run (params, predict, save), checkpoints and resume, fit(init=...), callbacks,
the run folder and ``descend predict``, the scikit-learn estimators. Parity with the authors'
package is in test_peer_parity.py; the update itself is checked by the generic tests and
test_reference.py through tests/optim_registry.py."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import reference as ref
from optim_registry import BY_NAME

import descend as ds
from descend.data import as_source
from descend.train.callbacks import Callback, EarlyStopping
from descend.train.checkpoint import read_checkpoint
from descend.train.fit import _evaluate

RULES = ["schedulefree_sgd", "schedulefree_adamw"]
LR = {"schedulefree_sgd": 0.1, "schedulefree_adamw": 0.02}


def regression(n=300, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, X @ rng.normal(size=d) + 0.5 + 0.3 * rng.normal(size=n)


def classification(n=300, d=3, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    logits = X @ rng.normal(size=d)
    return X, (rng.random(n) < 1 / (1 + np.exp(-logits))).astype(np.int64)


def same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(a[k].tobytes() == b[k].tobytes() for k in a)


def x_of(run: ds.Run) -> dict[str, np.ndarray]:
    """The evaluation point of a run's training point and state, computed afresh."""
    return run.optimizer.eval_params(run.train_params, run.state)


# -- the optimizer ----------------------------------------------------------------------------------
def test_only_schedule_free_rules_have_a_separate_evaluation_point():
    separate = {n for n in ds.optim.names() if ds.optim.get(n).separate_eval_point}
    assert separate == set(RULES)
    p = {"W": np.ones((2, 2)), "b": np.zeros(2)}
    opt = ds.Adam(lr=0.1)
    state = opt.init(p)
    opt.step(p, {"W": np.ones((2, 2)), "b": np.ones(2)}, state)
    assert opt.eval_params(p, state) is p  # the parameters themselves


def test_names_are_read_one_way():
    assert type(ds.optimizer("schedulefree-sgd")) is ds.ScheduleFreeSGD
    assert type(ds.optimizer(" ScheduleFree AdamW")) is ds.ScheduleFreeAdamW


@pytest.mark.parametrize("name", RULES)
def test_eval_params_changes_nothing_and_is_y_before_any_step(name):
    opt = ds.optimizer(name, lr=LR[name], weight_decay=0.01)
    p = {"W": np.linspace(-1, 1, 6).reshape(2, 3), "b": np.array([0.5, -0.5, 2.0])}
    state = opt.init(p)
    x0 = opt.eval_params(p, state)
    assert same(x0, p) and x0["W"] is not p["W"]  # no step yet: x is y, as new arrays
    for k in range(5):
        opt.step(p, {key: v * (k + 1) + 0.1 for key, v in p.items()}, state)
    before_p, before_s = copy.deepcopy(p), state.copy()
    x = opt.eval_params(p, state)
    assert same(p, before_p) and int(state.t) == 5 and state.scalars == before_s.scalars
    for name_, bufs in state.buffers.items():
        assert all(a.tobytes() == b.tobytes() for a, b in zip(bufs, before_s.buffers[name_], strict=True))
    assert not np.allclose(x["W"], p["W"])  # the average lags behind y
    assert x["W"].dtype == p["W"].dtype and x["W"].shape == p["W"].shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", RULES)
def test_eval_params_is_the_references_x(name, dtype):
    """x from y and z (the package's eval()) equals the average the reference keeps explicitly."""
    info = BY_NAME[name]
    for case, kwargs in info.reference.items():
        opt, reference = ds.optimizer(name, **kwargs), ref.REFERENCES[name](**kwargs)
        rng = np.random.default_rng(4)
        p = rng.normal(size=7).astype(dtype)
        p_ref = p.astype(np.float64).tolist()
        state = opt.init(p)
        sign = -1.0 if kwargs.get("maximize") else 1.0
        for _ in range(120):
            g = (sign * (p - 0.5) + 0.3 * rng.normal(size=7)).astype(dtype)
            opt.step(p, g, state)
            p_ref = reference.step(p_ref, g.astype(np.float64).tolist())
        rtol = 1e-10 if dtype == np.float64 else 2e-5
        np.testing.assert_allclose(
            opt.eval_params(p, state), reference.eval_point(), rtol=rtol, atol=rtol, err_msg=case
        )


def test_eval_params_refuses_a_foreign_state():
    opt = ds.ScheduleFreeSGD(lr=0.1)
    p = np.ones(3)
    with pytest.raises(ValueError, match="state belongs to optimizer 'adam'"):
        opt.eval_params(p, ds.Adam().init(p))
    with pytest.raises(ValueError, match=r"params is float64\[4\]; the state was made for float64\[3\]"):
        opt.eval_params(np.ones(4), opt.init(p))
    with pytest.raises(TypeError, match="state must be the OptState"):
        opt.eval_params(p, {"z": p})


def test_beta1_zero_is_refused_naming_why():
    with pytest.raises(
        ValueError, match=r"ScheduleFreeAdamW: beta1 must satisfy 0 < beta1 < 1 \(x is recovered"
    ):
        ds.ScheduleFreeAdamW(betas=(0.0, 0.999))


def test_warmup_shows_in_the_lr_of_each_step():
    opt = ds.ScheduleFreeSGD(lr=0.5, warmup_steps=4)
    assert [opt.lr_at(k) for k in range(6)] == [0.125, 0.25, 0.375, 0.5, 0.5, 0.5]


# -- fit ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", RULES)
def test_fit_validates_and_predicts_at_x(name):
    X, y = regression()
    Xv, yv = regression(n=100, seed=5)
    seen = []

    class Watch(Callback):
        def on_step_end(self, run, info):
            seen.append(same(run.params, x_of(run)))

        def on_epoch_end(self, run, info):
            seen.append(same(run.params, x_of(run)))

    run = ds.fit(
        ds.models.LinearRegression(),
        (X, y),
        optimizer=name,
        lr=LR[name],
        batch_size=32,
        epochs=3,
        validation=(Xv, yv),
        callbacks=[Watch()],
        standardize=False,
        progress=False,
    )
    assert all(seen) and len(seen) == 3 * 10 + 3  # callbacks see x after every step and epoch
    assert run.train_params is not None and not same(run.params, run.train_params)
    assert same(run.params, x_of(run))
    # the validation loss of the last epoch and run.quality are x's, not y's
    at_x = run.evaluate(Xv, yv)
    at_y = _evaluate(run.model, run.train_params, as_source((Xv, yv)), run._prepare_batch, None)
    assert run.history.epochs["val_loss"][-1] == at_x["loss"] != at_y["loss"]
    assert run.quality.rmse == at_x["rmse"]
    # predictions are x's
    np.testing.assert_array_equal(run.predict(Xv), run.model.predict(run.params, Xv))
    assert not np.array_equal(run.predict(Xv), run.model.predict(run.train_params, Xv))


def test_other_rules_keep_one_point():
    X, y = classification()
    run = ds.fit(ds.models.LogisticRegression(), (X, y), optimizer="adam", epochs=1, progress=False)
    assert run.train_params is None


@pytest.mark.parametrize("name", RULES)
def test_checkpoints_keep_y_and_resume_bit_exactly(name, tmp_path):
    X, y = classification()
    Xv, yv = classification(n=80, seed=7)
    kw = dict(optimizer=name, lr=LR[name], batch_size=16, validation=(Xv, yv), progress=False)
    model = ds.models.MLP(hidden=(5,), output="binary")
    whole = ds.fit(model, (X, y), epochs=4, **kw)
    part = ds.fit(model, (X, y), epochs=4, max_steps=30, checkpoint_dir=tmp_path, checkpoint_every=7, **kw)
    saved_y, _, meta = read_checkpoint(tmp_path / "checkpoint.npz")
    assert meta["step"] == 30
    assert same(saved_y, part.train_params) and same(meta["extra"]["eval_params"], part.params)
    assert same(ds.load_run(tmp_path).params, part.params)  # a checkpoint's model is x
    rest = ds.fit(model, (X, y), epochs=4, checkpoint_dir=tmp_path, resume=True, **kw)
    assert rest.resumed_from_step == 30
    assert same(rest.train_params, whole.train_params) and same(rest.params, whole.params)
    for key in whole.state.buffers:
        assert all(
            a.tobytes() == b.tobytes()
            for a, b in zip(rest.state.buffers[key], whole.state.buffers[key], strict=True)
        )
    assert rest.state.scalars == whole.state.scalars
    assert rest.history.epochs["val_loss"] == whole.history.epochs["val_loss"]
    # a finished run resumed gives the model back as it was
    again = ds.fit(model, (X, y), epochs=4, checkpoint_dir=tmp_path, resume=True, **kw)
    assert same(again.params, whole.params)


@pytest.mark.parametrize("name", RULES)
def test_init_continues_from_y(name):
    X, y = classification()
    kw = dict(optimizer=name, lr=LR[name], batch_size=32, progress=False)
    whole = ds.fit(ds.models.LogisticRegression(), (X, y), epochs=4, **kw)
    first = ds.fit(ds.models.LogisticRegression(), (X, y), epochs=2, **kw)
    first_x = copy.deepcopy(first.params)
    more = ds.fit(ds.models.LogisticRegression(), (X, y), epochs=2, init=first, batch_size=32, progress=False)
    assert same(more.train_params, whole.train_params) and same(more.params, whole.params)
    assert same(first.params, first_x)  # init is not modified


def test_early_stopping_restores_the_best_x():
    X, y = regression(n=60, d=30, seed=2)  # overfits: the validation loss turns up
    Xv, yv = regression(n=200, d=30, seed=9)
    es = EarlyStopping(patience=2, restore_best=True)
    run = ds.fit(
        ds.models.LinearRegression(),
        (X, y),
        optimizer="schedulefree_adamw",
        lr=0.05,
        batch_size=None,
        epochs=400,
        validation=(Xv, yv),
        callbacks=[es],
        progress=False,
    )
    val = run.history.epochs["val_loss"]
    assert "EarlyStopping" in run.stop_reason and len(val) < 400
    assert run.loss(Xv, yv) == pytest.approx(min(val), rel=1e-12)
    assert run.quality.rmse == pytest.approx(run.evaluate(Xv, yv)["rmse"], rel=1e-12)


def test_a_callback_may_set_the_start_before_the_first_step():
    X, y = classification()
    firsts = []

    class Start(Callback):
        def on_train_begin(self, run):
            for v in run.params.values():
                v[...] = 0.25

        def on_gradients(self, run, grads):
            if not firsts:
                firsts.append(copy.deepcopy(run.train_params))

    ds.fit(
        ds.models.LogisticRegression(),
        (X, y),
        optimizer="schedulefree_sgd",
        epochs=1,
        callbacks=[Start()],
        progress=False,
    )
    assert all((v == 0.25).all() for v in firsts[0].values())


def test_a_diverged_run_carries_x_of_its_last_good_state():
    X, y = regression()
    with pytest.raises(ds.DivergenceError) as info:
        ds.fit(
            ds.models.LinearRegression(),
            (X * 1e3, y),
            optimizer="schedulefree_sgd",
            lr=10.0,
            epochs=5,
            standardize=False,
            progress=False,
        )
    run = info.value.run
    assert same(run.params, x_of(run))


# -- where the model goes -----------------------------------------------------------------------------
def test_saved_run_and_run_folder_hold_x(tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    from descend.cli import main

    X, y = regression(n=400, seed=3)
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(target=y)
    df.to_csv(tmp_path / "train.csv", index=False)
    df.drop(columns="target").head(50).to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "run"
    args = ["train", tmp_path / "train.csv", "--target", "target", "--optimizer", "schedulefree-adamw"]
    assert main([str(a) for a in [*args, "--epochs", "3", "--out", out, "--no-progress"]]) == 0
    y_ckpt, state, _ = read_checkpoint(out / "checkpoints" / "checkpoint.npz")
    x = ds.ScheduleFreeAdamW().eval_params(y_ckpt, state)  # x depends on beta1 alone
    loaded = ds.load_run(out)
    assert same(loaded.params, x) and not same(loaded.params, y_ckpt)
    with np.load(out / "params.npz") as saved:
        assert same(dict(saved), x)
    # descend predict predicts with x
    assert main([str(a) for a in ["predict", out, tmp_path / "new.csv", "--out", tmp_path / "p.csv"]]) == 0
    capsys.readouterr()
    got = pd.read_csv(tmp_path / "p.csv")["prediction"].to_numpy()
    new = pd.read_csv(tmp_path / "new.csv")
    np.testing.assert_allclose(got, loaded.predict(new), rtol=1e-6)  # float32, as written
    at_y = copy.copy(loaded)
    at_y.params = y_ckpt
    assert np.abs(got - at_y.predict(new)).max() > 1e-3


def test_run_save_writes_x(tmp_path):
    X, y = classification()
    run = ds.fit(
        ds.models.LogisticRegression(), (X, y), optimizer="schedulefree_sgd", epochs=2, progress=False
    )
    run.save(tmp_path)
    loaded = ds.load_run(tmp_path)
    assert same(loaded.params, run.params) and loaded.train_params is None
    np.testing.assert_array_equal(loaded.predict_proba(X), run.predict_proba(X))


# -- scikit-learn -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", RULES)
def test_estimators_predict_with_x(name):
    from descend.sklearn import DescendClassifier, DescendRegressor

    X, y = regression()
    reg = DescendRegressor(optimizer=name, epochs=5, tol=None, random_state=0).fit(X, y)
    run = reg.run_
    assert same(run.params, x_of(run)) and not same(run.params, run.train_params)
    W, b = run.params["W"][:, 0], run.params["b"][0]
    np.testing.assert_allclose(reg.coef_, W * reg._y_scale[0], rtol=1e-12)
    np.testing.assert_allclose(reg.predict(X), (X @ W + b) * reg._y_scale[0] + reg._y_mean[0], rtol=1e-10)

    Xc, yc = classification()
    clf = DescendClassifier(optimizer=name, epochs=5, tol=None, random_state=0).fit(Xc, yc)
    run = clf.run_
    assert same(run.params, x_of(run))
    np.testing.assert_array_equal(clf.decision_function(Xc), run.model.decision_function(run.params, Xc))
    # partial_fit continues from y and the state
    once = DescendClassifier(optimizer=name, epochs=2, tol=None, random_state=0).fit(Xc, yc)
    twice = DescendClassifier(optimizer=name, epochs=1, tol=None, random_state=0).fit(Xc, yc)
    twice.partial_fit(Xc, yc)
    assert same(twice.run_.train_params, once.run_.train_params) and same(twice.run_.params, once.run_.params)


# -- minimize -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", RULES)
def test_minimize_returns_the_average_x_and_its_value(name):
    f = ds.functions.get("rosenbrock")
    res = ds.minimize(f, f.start, optimizer=name, lr=LR[name] / 20, max_steps=300, tol=None)
    opt = ds.optimizer(name, lr=LR[name] / 20)
    assert res.train_x is not None and not np.array_equal(res.x, res.train_x)
    np.testing.assert_array_equal(res.x, opt.eval_params(res.train_x, res.state))
    assert res.fun == f(res.x) and res.history.loss[-1] == f(res.train_x)
    assert res.nfev == res.nit + 2  # one per iterate, and the average's
    np.testing.assert_array_equal(res.history.path[-1], res.train_x)
    plain = ds.minimize(f, f.start, optimizer="adam", lr=0.01, max_steps=10, tol=None)
    assert plain.train_x is None and plain.fun == plain.history.loss[-1]
