"""fit(): batching strategies, models reaching their optima, callbacks, divergence, checkpoints."""

from __future__ import annotations

import io
import json
import math
import signal
import textwrap
from pathlib import Path

import numpy as np
import pytest
from killable import run_script

import descend as ds
from descend.train.callbacks import Convergence, EarlyStopping, GradientClipping
from descend.train.checkpoint import read_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def regression_data(n=400, d=5, noise=0.5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = rng.normal(size=d)
    y = X @ w + 0.7 + noise * rng.normal(size=n)
    return X, y


def binary_data(n=500, d=4, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    logits = X @ rng.normal(size=d) + 0.3
    y = (rng.random(n) < 1 / (1 + np.exp(-logits))).astype(np.int64)  # noisy: not separable
    return X, y


def multiclass_data(n=600, d=4, k=3, seed=2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    logits = X @ rng.normal(size=(d, k))
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p])
    return X, y


# ---------------------------------------------------------------- models reach their optima


def test_full_batch_gd_linear_regression_matches_lstsq():
    X, y = regression_data()
    A = np.hstack([X, np.ones((len(X), 1))])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    kw = dict(optimizer="sgd", lr=0.2, batch_size=None, epochs=300, progress=False)
    # the target as given: the parameters are the least-squares coefficients themselves
    run = ds.fit(ds.models.LinearRegression(dtype="float64"), (X, y), standardize_target=False, **kw)
    assert run.target_scaler is None
    w = np.concatenate([run.params["W"].ravel(), run.params["b"].ravel()])
    np.testing.assert_allclose(w, coef, rtol=1e-6)
    assert run.steps_completed == 300  # full batch: one update per epoch
    assert len(run.history.epochs["train_loss"]) == 300
    # by default the target is standardized: the parameters are those of (y - mean) / std
    run = ds.fit(ds.models.LinearRegression(dtype="float64"), (X, y), **kw)
    t = run.target_scaler
    assert t is not None and t.mean[0] == pytest.approx(y.mean()) and t.scale[0] == pytest.approx(y.std())
    w = np.concatenate([run.params["W"].ravel() * t.scale[0], run.params["b"].ravel() * t.scale + t.mean])
    np.testing.assert_allclose(w, coef, rtol=1e-6)
    np.testing.assert_allclose(run.predict(X), A @ coef, rtol=1e-6, atol=1e-9)
    assert any("standardized the target" in n for n in run.notes)


def test_minibatch_sgd_with_linear_decay_reaches_optimal_mse_within_1_percent():
    X, y = regression_data(n=2000)
    A = np.hstack([X, np.ones((len(X), 1))])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    best_mse = float(np.mean((A @ coef - y) ** 2))
    epochs, bs = 30, 32
    tau = epochs * (len(X) // bs + 1)
    sched = ds.schedules.LinearDecay(0.05, 0.0005, tau)  # Goodfellow: final ~1% of initial
    run = ds.fit(
        ds.models.LinearRegression(),
        (X, y),
        optimizer="sgd",
        lr=sched,
        batch_size=bs,
        epochs=epochs,
        seed=0,
        progress=False,
    )
    mse = float(np.mean((run.predict(X) - y) ** 2))
    assert mse <= 1.01 * best_mse, (mse, best_mse)
    lrs = run.history.step_array("lr")
    assert lrs[0] == pytest.approx(0.05) and lrs[-1] == pytest.approx(sched(len(lrs) - 1))


def newton_logistic(X, y, l2, iters=50):
    """Optimal logistic regression by Newton's method (second order), written here independently."""
    A = np.hstack([X, np.ones((len(X), 1))])
    w = np.zeros(A.shape[1])
    reg = np.full(A.shape[1], l2)
    reg[-1] = 0.0  # no penalty on the intercept
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(A @ w)))
        g = A.T @ (p - y) / len(y) + reg * w
        H = (A * (p * (1 - p))[:, None]).T @ A / len(y) + np.diag(reg)
        w -= np.linalg.solve(H, g)
    z = A @ w
    loss = np.mean(np.logaddexp(0, z) - y * z) + 0.5 * l2 * np.sum(w[:-1] ** 2)
    return w, float(loss)


def newton_softmax(X, y, k, iters=30):
    A = np.hstack([X, np.ones((len(X), 1))])
    n, d = A.shape
    W = np.zeros((d, k))
    Y = np.eye(k)[y]
    for _ in range(iters):
        Z = A @ W
        P = np.exp(Z - Z.max(1, keepdims=True))
        P /= P.sum(1, keepdims=True)
        G = (A.T @ (P - Y) / n).ravel()
        H = np.zeros((d * k, d * k))
        for i in range(k):
            for j in range(k):
                wij = P[:, i] * ((i == j) - P[:, j])
                H[i::k, j::k] = (A * wij[:, None]).T @ A / n
        step = np.linalg.lstsq(H, G, rcond=None)[0]  # softmax Hessian is singular along 1-vectors
        W -= step.reshape(d, k)
    Z = A @ W
    loss = np.mean(np.log(np.exp(Z - Z.max(1, keepdims=True)).sum(1)) + Z.max(1) - Z[np.arange(n), y])
    return float(loss)


def test_logistic_regression_reaches_newton_optimum_within_1_percent():
    X, y = binary_data()
    _, best = newton_logistic(X, y, l2=0.01)
    run = ds.fit(
        ds.models.LogisticRegression(l2=0.01),
        (X, y),
        optimizer="adam",
        lr=0.05,
        batch_size=64,
        epochs=60,
        progress=False,
    )
    loss = run.loss(X, y)
    assert best <= loss <= 1.01 * best, (loss, best)


def test_softmax_regression_reaches_newton_optimum_within_1_percent():
    X, y = multiclass_data()
    best = newton_softmax(X, y, 3)
    run = ds.fit(
        ds.models.SoftmaxRegression(),
        (X, y),
        optimizer="adam",
        lr=0.05,
        batch_size=64,
        epochs=60,
        progress=False,
    )
    loss = run.loss(X, y)
    assert best - 1e-9 <= loss <= 1.01 * best, (loss, best)
    proba = run.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    assert np.array_equal(run.predict(X), proba.argmax(1))


@pytest.mark.slow
def test_mlp_on_digits_reaches_97_percent_in_under_a_minute():
    import time

    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    mu, sd = X_train.mean(0), X_train.std(0) + 1e-8
    t0 = time.perf_counter()
    run = ds.fit(
        ds.models.MLP(hidden=(128,), output="softmax"),
        ((X_train - mu) / sd, y_train),
        optimizer="adam",
        lr=1e-3,
        batch_size=32,
        epochs=30,
        seed=0,
        progress=False,
    )
    elapsed = time.perf_counter() - t0
    acc = float(np.mean(run.predict((X_test - mu) / sd) == y_test))
    assert acc >= 0.97, acc
    assert elapsed < 60, elapsed


# ---------------------------------------------------------------- batching strategies


@pytest.mark.parametrize(("batch_size", "steps_per_epoch"), [(None, 1), (1, 40), (8, 5), (16, 3)])
def test_batching_strategies_share_one_loop(batch_size, steps_per_epoch):
    X, y = regression_data(n=40)
    run = ds.fit(
        ds.models.LinearRegression(),
        (X, y),
        optimizer="sgd",
        lr=0.01,
        batch_size=batch_size,
        epochs=2,
        progress=False,
    )
    assert run.steps_completed == 2 * steps_per_epoch
    assert run.history.steps["samples_seen"][-1] == 80
    assert run.history.steps["epoch"] == [0] * steps_per_epoch + [1] * steps_per_epoch


def test_drop_last_skips_the_short_batch():
    X, y = regression_data(n=40)
    run = ds.fit(
        ds.models.LinearRegression(),
        (X, y),
        optimizer="sgd",
        lr=0.01,
        batch_size=16,
        epochs=1,
        drop_last=True,
        progress=False,
    )
    assert run.steps_completed == 2 and run.history.steps["samples_seen"][-1] == 32


def test_same_seed_same_run_different_seed_different_run():
    X, y = binary_data()
    kw = dict(optimizer="sgd", lr=0.1, batch_size=8, epochs=2, progress=False)
    a = ds.fit(ds.models.LogisticRegression(), (X, y), seed=5, **kw)
    b = ds.fit(ds.models.LogisticRegression(), (X, y), seed=5, **kw)
    c = ds.fit(ds.models.LogisticRegression(), (X, y), seed=6, **kw)
    assert a.params["W"].tobytes() == b.params["W"].tobytes()
    assert a.params["W"].tobytes() != c.params["W"].tobytes()


def test_float32_by_default():
    X, y = binary_data()
    run = ds.fit(ds.models.LogisticRegression(), (X, y), epochs=1, progress=False)
    assert all(p.dtype == np.float32 for p in run.params.values())


# every rule fit trains with mini-batches (L-BFGS takes full batches: tests/test_fit_lbfgs.py)
@pytest.mark.parametrize("name", [n for n in ds.optim.names() if not ds.optim.get(n).needs_objective])
def test_default_lr_trains_standardized_data(name):
    X, y = binary_data(n=400)
    X = (X - X.mean(0)) / X.std(0)
    _, best = newton_logistic(X, y, l2=0.0)
    run = ds.fit(
        ds.models.LogisticRegression(), (X, y), optimizer=name, batch_size=32, epochs=20, progress=False
    )
    assert run.optimizer.lr == ds.optim.rule(name).fit_lr
    assert run.loss(X, y) <= 1.05 * best, (name, run.loss(X, y), best)


# ---------------------------------------------------------------- callbacks


def test_early_stopping_restores_best_parameters():
    X, y = regression_data(n=60, d=30, noise=2.0)  # overfits: val loss turns up
    Xv, yv = regression_data(n=200, d=30, noise=2.0, seed=9)
    es = EarlyStopping(patience=2, restore_best=True)
    run = ds.fit(
        ds.models.LinearRegression(dtype="float64"),
        (X, y),
        optimizer="adam",
        lr=0.05,
        batch_size=None,
        epochs=400,
        validation=(Xv, yv),
        callbacks=[es],
        progress=False,
    )
    assert "EarlyStopping" in run.stop_reason
    val = run.history.epochs["val_loss"]
    assert len(val) < 400
    assert es.best == pytest.approx(min(val))
    assert run.loss(Xv, yv) == pytest.approx(min(val), rel=1e-9)


def test_early_stopping_needs_validation():
    X, y = regression_data(n=50)
    with pytest.raises(ValueError, match="needs validation data"):
        ds.fit(ds.models.LinearRegression(), (X, y), callbacks=[EarlyStopping()], progress=False)


def test_gradient_clipping_by_value_and_norm():
    X, y = regression_data(n=50)
    y = y * 1000  # huge gradients
    seen = []

    class Spy(ds.train.callbacks.Callback):
        def on_gradients(self, run, grads):
            seen.append(math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values())))

    ds.fit(
        ds.models.LinearRegression(),
        (X, y),
        optimizer="sgd",
        lr=1e-3,
        batch_size=10,
        epochs=1,
        callbacks=[GradientClipping(max_norm=1.0), Spy()],
        progress=False,
    )
    assert max(seen) <= 1.0 + 1e-4
    vals = []

    class SpyMax(ds.train.callbacks.Callback):
        def on_gradients(self, run, grads):
            vals.append(max(float(np.abs(g).max()) for g in grads.values()))

    ds.fit(
        ds.models.LinearRegression(),
        (X, y),
        optimizer="sgd",
        lr=1e-3,
        batch_size=10,
        epochs=1,
        callbacks=[GradientClipping(max_value=0.5), SpyMax()],
        progress=False,
    )
    assert max(vals) <= 0.5


def test_plateau_schedule_is_fed_and_cuts_the_lr():
    X, y = regression_data(n=100, noise=1.0)
    sched = ds.schedules.ReduceOnPlateau(0.05, factor=0.5, patience=1)
    run = ds.fit(
        ds.models.LinearRegression(),
        (X, y),
        optimizer="sgd",
        lr=sched,
        batch_size=None,
        epochs=400,
        progress=False,
    )
    lrs = run.history.epochs["lr"]
    assert lrs[0] == pytest.approx(0.05) and min(lrs) < 0.05 / 4


def test_user_callback_and_convergence_stop_mid_epoch():
    X, y = regression_data(n=5000, noise=0.1)
    calls = []
    run = ds.fit(
        ds.models.LinearRegression(),
        (X, y),
        optimizer="sgd",
        lr=0.05,
        batch_size=1,
        epochs=1,
        callbacks=[Convergence(target_loss=0.05), lambda info: calls.append(info["step"])],
        progress=False,
    )
    assert "Convergence" in run.stop_reason
    seen = run.history.steps["samples_seen"][-1]
    assert seen < len(X) // 2  # SGD converged without seeing all the data
    assert calls == list(range(1, run.steps_completed + 1))
    assert float(np.mean((run.predict(X) - y) ** 2)) < 0.1


def test_user_callback_returning_true_stops():
    X, y = regression_data(n=100)
    run = ds.fit(
        ds.models.LinearRegression(),
        (X, y),
        batch_size=10,
        epochs=5,
        callbacks=[lambda info: info["step"] == 7],
        progress=False,
    )
    assert run.steps_completed == 7


# ---------------------------------------------------------------- divergence


def test_divergence_raises_and_keeps_last_finite_step(tmp_path):
    X, y = regression_data(n=64)
    with pytest.raises(
        ds.DivergenceError, match=r"non-finite at step \d+ \(epoch \d+, batch \d+\).*smaller learning rate"
    ) as exc:
        ds.fit(
            ds.models.LinearRegression(dtype="float64"),
            (X, y),
            optimizer="sgd",
            lr=50.0,
            batch_size=8,
            epochs=50,
            checkpoint_dir=tmp_path,
            checkpoint_every=1,
            progress=False,
            divergence_factor=None,  # the non-finite path (the growth guard would stop it sooner)
        )
    err = exc.value
    assert err.epoch is not None and err.step > 1
    params, state, meta = read_checkpoint(tmp_path / "checkpoint.npz")
    assert all(np.all(np.isfinite(v)) for v in params.values())
    assert all(np.all(np.isfinite(b)) for bufs in state.buffers.values() for b in bufs)
    assert meta["step"] <= err.step - 1


def test_divergence_leaves_run_params_finite():
    X, y = regression_data(n=64)
    model = ds.models.LinearRegression(dtype="float64")
    captured = {}

    class Keep(ds.train.callbacks.Callback):
        def on_train_begin(self, run):
            captured["run"] = run

    with pytest.raises(ds.DivergenceError):
        ds.fit(
            model,
            (X, y),
            optimizer="sgd",
            lr=50.0,
            batch_size=8,
            epochs=50,
            callbacks=[Keep()],
            progress=False,
        )
    run = captured["run"]
    assert all(np.all(np.isfinite(v)) for v in run.params.values())
    assert np.isfinite(model.loss(run.params, X, y))


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("model", "data", "kwargs", "exc", "text"),
    [
        ("lin", "nan_x", {}, ValueError, "X has a non-finite value (nan) at row 3, column 1"),
        ("lin", "inf_y", {}, ValueError, "y has a non-finite value at row 2"),
        ("lin", "wide_val", {"validation": "wide"}, ValueError, "validation has 6 features but data has 5"),
        ("lin", "empty", {}, ValueError, "X is empty"),
        ("log", "labels_2", {}, ValueError, "labels"),
        ("soft", "half_labels", {}, ValueError, "class labels must be integers or strings, got 0.5"),
        ("lin", "ok", {"batch_size": 0}, ValueError, "batch_size must satisfy batch_size >= 1, got 0"),
        ("lin", "ok", {"batch_size": -3}, ValueError, "got -3"),
        ("lin", "ok", {"epochs": 0}, ValueError, "fit: epochs must satisfy epochs >= 1, got 0"),
        ("lin", "ok", {"optimizer": "adamm"}, ValueError, "optimizer: unknown optimizer 'adamm'"),
        ("lin", "ok", {"lr": -1.0}, ValueError, "lr must satisfy"),
        ("lin", "ok", {"checkpoint_every": 5}, ValueError, "needs checkpoint_dir"),
        ("lin", "ok", {"progress": "fancy"}, ValueError, "progress must be"),
        ("lin", "array_only", {}, TypeError, r"data must be an (X, y) pair"),
    ],
)
def test_bad_input_fails_before_any_update(model, data, kwargs, exc, text):
    X, y = regression_data(n=20)
    Xb, yb = binary_data(n=20)
    models = {
        "lin": ds.models.LinearRegression(),
        "log": ds.models.LogisticRegression(),
        "soft": ds.models.SoftmaxRegression(),
    }
    datasets = {
        "ok": (X, y),
        "nan_x": (np.where(np.arange(20)[:, None] * 10 + np.arange(5) == 31, np.nan, X), y),
        "inf_y": (X, np.where(np.arange(20) == 2, np.inf, y)),
        "wide_val": (X, y),
        "empty": (X[:0], y[:0]),
        "labels_2": (Xb, np.where(np.arange(20) == 4, 2, yb)),
        "half_labels": (Xb, np.where(np.arange(20) == 4, 0.5, yb)),
        "array_only": X,
    }
    if kwargs.get("validation") == "wide":
        kwargs = {**kwargs, "validation": (np.ones((5, 6)), np.ones(5))}
    d = datasets[data]
    snapshot = [np.array(a, copy=True) for a in (d if isinstance(d, tuple) else (d,))]
    calls = []

    class Spy(ds.train.callbacks.Callback):
        def on_gradients(self, run, grads):
            calls.append(1)

    with pytest.raises(exc, match=text.replace("(", r"\(").replace(")", r"\)")):
        ds.fit(models[model], d, callbacks=[Spy()], **{"progress": False, **kwargs})
    assert calls == []
    for before, after in zip(snapshot, d if isinstance(d, tuple) else (d,), strict=True):
        np.testing.assert_array_equal(before, after)


# ---------------------------------------------------------------- progress


def test_progress_plain_lines_when_not_a_terminal(capsys):
    X, y = regression_data(n=200)
    ds.fit(ds.models.LinearRegression(), (X, y), batch_size=10, epochs=2, progress=None)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("step ")]
    assert 15 <= len(lines) <= 25  # about one line per 5% of the 40 steps
    assert "loss" in lines[0] and "samples/s" in lines[0] and "eta" in lines[0]


def test_progress_false_is_silent(capsys):
    X, y = regression_data(n=50)
    ds.fit(ds.models.LinearRegression(), (X, y), batch_size=10, epochs=1, progress=False)
    assert capsys.readouterr().err == ""


def test_progress_rich_bar_renders():
    from descend.train.progress import make_progress

    buf = io.StringIO()
    p = make_progress("rich", stream=buf)
    p.start(10, "fit")
    for i in range(1, 11):
        p.update(i, 0, 1.0 / i, 0.1, i * 32)
    p.close("done")
    out = buf.getvalue()
    assert "10/10" in out and "done" in out


def test_progress_rich_bar_formats_at_most_every_50_ms_and_ends_on_the_last_step(monkeypatch):
    """Numbers are formatted for the bar at most 20 times a second (a step of a small model is
    a few µs), and closing shows those of the last step even when it came between updates."""
    from descend.train import progress

    shown = []
    monkeypatch.setattr(progress._Rich, "_show", lambda self, *values: shown.append(values[:3]))
    p = progress.make_progress("rich", stream=io.StringIO())
    p.start(None, "fit")  # no total: a run that stops when it converges
    for i in range(1, 1001):
        p.update(i, 0, 1.0 / i, 0.1, i * 32)
    assert 1 <= len(shown) < 100 and shown[0] == (1, 0, 1.0)
    p.close()
    assert shown[-1] == (1000, 0, 1.0 / 1000)


# ---------------------------------------------------------------- checkpoints and resume

WORKER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import descend as ds

    out, resume, pause = sys.argv[1], sys.argv[2] == "1", float(sys.argv[3])
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 6))
    y = (X @ rng.normal(size=6) + 0.3 * rng.normal(size=90) > 0).astype(int)

    def tick(info):
        print(info["step"], flush=True)
        time.sleep(pause)

    run = ds.fit(ds.models.MLP(hidden=(8,), output="binary"), (X, y), optimizer="adam", lr=0.01,
                 batch_size=16, epochs=4, seed=3, checkpoint_dir=out, checkpoint_every=2,
                 resume=resume, callbacks=[tick], progress=False)
    np.savez(out + "/final.npz", **run.params)
    print("done", run.steps_completed, flush=True)
    """
)


def _worker(tmp_path, out, resume, pause=0.0, kill_at=None):
    kill = None if kill_at is None else str(kill_at)
    return run_script(tmp_path / "worker.py", WORKER, [str(out), "1" if resume else "0", str(pause)], kill)


@pytest.mark.parametrize("kill_points", [[3], [6], [13, 19]], ids=["mid-epoch-0", "epoch-end", "twice"])
def test_kill_and_resume_is_bit_exact(tmp_path, kill_points):
    ref_dir = tmp_path / "ref"
    rc, lines = _worker(tmp_path, ref_dir, resume=False)
    assert rc == 0 and lines[-1] == "done 24"  # 90 samples / 16 = 6 batches x 4 epochs
    run_dir = tmp_path / "run"
    for k in kill_points:
        rc, lines = _worker(tmp_path, run_dir, resume=True, pause=0.02, kill_at=k)
        assert rc == -signal.SIGKILL
        assert (run_dir / "checkpoint.npz").exists()
    rc, lines = _worker(tmp_path, run_dir, resume=True)
    assert rc == 0
    # the resumed process starts from the last checkpoint (every 2 steps), not from step 1
    assert int(lines[0]) > 1
    with np.load(ref_dir / "final.npz") as a, np.load(run_dir / "final.npz") as b:
        assert set(a.files) == set(b.files)
        for k in a.files:
            assert a[k].tobytes() == b[k].tobytes(), k


def test_checkpoint_contents_and_atomicity(tmp_path):
    X, y = binary_data(n=100)
    run = ds.fit(
        ds.models.LogisticRegression(),
        (X, y),
        optimizer="adam",
        lr=0.01,
        batch_size=16,
        epochs=2,
        checkpoint_dir=tmp_path,
        checkpoint_every=5,
        progress=False,
    )
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["checkpoint.npz", "checkpoint.prev.npz"]  # no temp files or lock left behind
    params, state, meta = read_checkpoint(tmp_path / "checkpoint.npz")
    assert meta["finished"] and meta["step"] == run.steps_completed == 14
    assert meta["epoch"] == 2 and meta["batch"] == 0
    assert state.t == 14
    assert meta["rng"]["seed"] == 0 and len(meta["config_hash"]) == 64
    assert meta["schedule_step"] == 14 and meta["rng"]["epoch_order_seed"] == [0, 1, 2]
    assert meta["rng"]["epoch_order_state"]["bit_generator"] == "PCG64"
    for k, v in run.params.items():
        assert v.tobytes() == params[k].tobytes()
    with np.load(tmp_path / "checkpoint.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
    assert json.loads(str(np.load(tmp_path / "checkpoint.npz")["meta"]))["config"]["batch_size"] == 16


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"optimizer": "sgd"}, "optimizer.name: 'adam' (checkpoint) vs 'sgd' (this run)"),
        ({"batch_size": 8}, "batch_size: 16 (checkpoint) vs 8 (this run)"),
        ({"model": "mlp"}, "model."),
        ({"data": "wider"}, "data.n_features: 4 (checkpoint) vs 5 (this run)"),
    ],
)
def test_mismatched_checkpoint_is_refused_naming_what_differs(tmp_path, change, text):
    X, y = binary_data(n=100)
    ds.fit(
        ds.models.LogisticRegression(),
        (X, y),
        optimizer="adam",
        lr=0.01,
        batch_size=16,
        epochs=1,
        checkpoint_dir=tmp_path,
        progress=False,
    )
    kw = dict(optimizer="adam", lr=0.01, batch_size=16, epochs=2)
    model = ds.models.LogisticRegression()
    data = (X, y)
    if "optimizer" in change:
        kw["optimizer"] = change["optimizer"]
    if "batch_size" in change:
        kw["batch_size"] = change["batch_size"]
    if "model" in change:
        model = ds.models.MLP(hidden=(4,), output="binary")
    if "data" in change:
        data = (np.hstack([X, X[:, :1]]), y)
    before = (tmp_path / "checkpoint.npz").read_bytes()
    with pytest.raises(ValueError, match="refusing to resume") as exc:
        ds.fit(model, data, checkpoint_dir=tmp_path, resume=True, progress=False, **kw)
    assert text in str(exc.value)
    assert (tmp_path / "checkpoint.npz").read_bytes() == before


def test_resume_can_extend_a_finished_run(tmp_path):
    X, y = binary_data(n=100)
    kw = dict(optimizer="adam", lr=0.01, batch_size=16, checkpoint_dir=tmp_path, progress=False)
    ds.fit(ds.models.LogisticRegression(), (X, y), epochs=2, **kw)
    longer = ds.fit(ds.models.LogisticRegression(), (X, y), epochs=4, resume=True, **kw)
    straight = ds.fit(
        ds.models.LogisticRegression(),
        (X, y),
        epochs=4,
        optimizer="adam",
        lr=0.01,
        batch_size=16,
        progress=False,
    )
    assert longer.params["W"].tobytes() == straight.params["W"].tobytes()
    assert len(longer.history.epochs["train_loss"]) == 4


# ---------------------------------------------------------------- defaults that stop on time


def ill_scaled_binary(n=20_000, d=12, seed=5):
    from descend.data.synth import synthetic_rows

    Xs, ys = zip(*synthetic_rows(n, d, "classification", seed), strict=True)
    return np.concatenate(Xs), np.concatenate(ys)


def test_epochs_none_stops_when_the_loss_stops_improving_and_says_why():
    X, y = ill_scaled_binary()
    run = ds.fit("logistic", (X, y), progress=False)
    assert run.stop_reason.startswith("converged at step")
    assert "tol=0.001" in run.stop_reason
    assert run.epochs_completed < 100  # well before the cap
    capped = ds.fit("logistic", (X, y), progress=False, max_epochs=1, tol=0.0)
    assert "max_epochs=1" in capped.stop_reason and capped.epochs_completed == 1
    exact = ds.fit("logistic", (X, y), progress=False, epochs=3)
    assert exact.epochs_completed == 3 and exact.stop_reason == "completed 3 epochs"


def test_the_stopping_rule_is_checked_mid_epoch():
    X, y = ill_scaled_binary(n=200_000, d=5)
    run = ds.fit("logistic", (X, y), progress=False, batch_size=256)
    steps_per_epoch = -(-len(X) // 256)
    # a check every ~50,000 samples: the rule can stop inside the first epochs
    assert run.steps_completed % steps_per_epoch != 0 or run.epochs_completed <= 2


def test_auto_standardize_only_for_ill_scaled_features_and_reaches_the_optimum():
    X, y = ill_scaled_binary()
    run = ds.fit("logistic", (X, y), progress=False)
    assert run.scaler is not None  # columns x100 and x0.01 apart: scaled
    from scipy.optimize import minimize

    Z = (X - run.scaler.mean) / run.scaler.scale
    yf = y.astype(float)

    def f(wb):
        z = Z @ wb[:-1] + wb[-1]
        p = 1 / (1 + np.exp(-z))
        r = (p - yf) / len(yf)
        return np.mean(np.logaddexp(0, z) - yf * z), np.concatenate([Z.T @ r, [r.sum()]])

    best = minimize(f, np.zeros(X.shape[1] + 1), jac=True, method="L-BFGS-B", options={"gtol": 1e-10}).fun
    assert run.evaluate(X, y)["loss"] <= 1.01 * best
    Xn, yn = binary_data()
    assert ds.fit("logistic", (Xn, yn), progress=False, epochs=1).scaler is None  # already well scaled
    off = ds.fit("logistic", (X, y), progress=False, epochs=1, standardize=False)
    assert off.scaler is None


def test_ordinary_steps_take_no_snapshot_and_a_blow_up_is_rolled_back(monkeypatch):
    import importlib

    fit_module = importlib.import_module("descend.train.fit")

    calls = []
    real = fit_module._Training.take_snapshot

    def counting(self):
        calls.append(self.step)
        return real(self)

    monkeypatch.setattr(fit_module._Training, "take_snapshot", counting)
    X, y = regression_data(n=64)
    ds.fit(ds.models.LinearRegression(), (X, y), optimizer="sgd", lr=0.01, epochs=20, progress=False)
    assert calls == []  # no copy of the parameters on ordinary steps
    with pytest.raises(ds.DivergenceError) as exc:
        ds.fit(
            ds.models.LinearRegression(),
            (X, y),
            optimizer="sgd",
            lr=50.0,
            batch_size=8,
            epochs=50,
            progress=False,
            divergence_factor=None,  # the overflow guard (the growth guard would stop it sooner)
        )
    assert calls  # the updates near float32's range were snapshotted
    run = exc.value.run
    assert all(np.all(np.isfinite(v)) for v in run.params.values())
    assert np.isfinite(run.model.loss(run.params, X.astype(np.float32), y.astype(np.float32)))


# -- small models are stepped through one flat buffer -------------------------------------------------
@pytest.mark.parametrize(
    ("model", "optimizer", "options"),
    [
        ("logistic", "adam", {}),
        ("softmax", "momentum", {"weight_decay": 1e-3}),
        (ds.models.MLP(hidden=(8, 4), output="regression"), "rmsprop", {"centered": True}),
        ("linear", "nadam", {}),
    ],
)
def test_flat_step_equals_leaf_by_leaf(monkeypatch, model, optimizer, options):
    """A small model's leaves become views of one buffer and are updated in one pass; the
    numbers are those of the leaf-by-leaf update, bit for bit, clipping callback included."""
    from descend.optim import _flat

    X, y = multiclass_data() if model == "softmax" else binary_data()
    if not isinstance(model, str) or model == "linear":
        y = y.astype(np.float64)

    def train(flat: bool):
        monkeypatch.setattr(_flat, "MAX_FLAT", 1 << 16 if flat else 0)
        return ds.fit(
            model,
            (X, y),
            optimizer=optimizer,
            lr=0.01,
            options=options,
            batch_size=32,
            epochs=3,
            callbacks=[GradientClipping(max_norm=0.5)],
            progress=False,
        )

    flat, plain = train(True), train(False)
    leaves = list(flat.params.values())
    assert all(v.base is not None for v in leaves)
    assert len({id(v.base) for v in leaves}) == 1  # one buffer behind every leaf
    first, *rest = plain.params.values()
    assert not any(np.shares_memory(first, v) for v in rest)
    for k in plain.params:
        np.testing.assert_array_equal(flat.params[k], plain.params[k])
    for name, bufs in plain.state.buffers.items():
        for a, b in zip(flat.state.buffers[name], bufs, strict=True):
            np.testing.assert_array_equal(a, b)
    assert int(flat.state.t) == int(plain.state.t) == flat.steps_completed
    assert flat.history.steps["loss"] == plain.history.steps["loss"]


def test_flat_step_continues_and_skips_non_elementwise_rules():
    """init=run continues through the flat buffers; a rule not marked elementwise (its update
    could mix elements) keeps its own arrays per leaf."""
    X, y = binary_data()
    run = ds.fit("logistic", (X, y), optimizer="adam", lr=0.01, epochs=1, progress=False)
    more = ds.fit("logistic", (X, y), init=run, epochs=1, progress=False)
    assert int(more.state.t) == 2 * int(run.state.t)
    assert not np.shares_memory(more.params["W"], run.params["W"])

    class LeafNormalized(ds.optim.SGD):
        name = "sgd"
        elementwise = False

    mine = ds.fit("logistic", (X, y), optimizer=LeafNormalized(lr=0.01), epochs=1, progress=False)
    assert all(v.base is None for v in mine.params.values())

    class OwnUpdate(ds.optim.Adam):  # inherits elementwise = True, but its update is its own
        name = "adam"

        def _update(self, p, g, b, c):
            p -= c["lr"] * g / max(float(np.linalg.norm(g)), 1e-12)  # mixes the leaf's elements

    own = ds.fit("logistic", (X, y), optimizer=OwnUpdate(lr=0.01, fused=False), epochs=1, progress=False)
    assert all(v.base is None for v in own.params.values())


def test_a_stop_at_the_last_batch_of_an_epoch_still_records_the_epoch():
    """max_steps (or the convergence rule, or a callback) stopping a run at an epoch's last batch
    ends that epoch: its row, its validation metrics and epochs_completed."""
    X, y = binary_data(n=400)
    run = ds.fit(
        ds.models.LogisticRegression(),
        (X, y),
        batch_size=100,
        epochs=5,
        max_steps=8,
        validation=(X, y),
        progress=False,
    )
    assert run.steps_completed == 8 and run.epochs_completed == 2
    assert run.history.epochs["epoch"] == [0, 1] and run.history.epochs["samples_seen"][-1] == 800
    assert len(run.history.epochs["val_loss"]) == 2
