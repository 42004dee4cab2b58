"""ds.Monitor: per-layer norms, update ratios, unit health and curvature recorded during fit."""

from __future__ import annotations

import math

import numpy as np
import pytest

import descend as ds


def blobs(n=300, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X[:, 0] - 0.5 * X[:, 1] > 0).astype(int)
    return X, y


def test_update_ratio_and_norms_are_those_of_the_step_taken():
    X, y = blobs()
    seen = []

    class Spy(ds.train.Callback):
        def on_gradients(self, run, grads):
            seen.append(
                ({k: v.copy() for k, v in run.params.items()}, {k: v.copy() for k, v in grads.items()})
            )

    run = ds.fit(
        ds.models.LogisticRegression(dtype="float64"),
        (X, y),
        optimizer="sgd",
        lr=0.3,
        batch_size=None,
        epochs=3,
        standardize=False,
        callbacks=[Spy(), ds.Monitor(every=1)],
        progress=False,
    )
    m = run.history.monitor
    assert m["step"] == [1, 2, 3]
    for k, (params, grads) in enumerate(seen):
        g = math.sqrt(sum(float(np.sum(v**2)) for v in grads.values()))
        w = math.sqrt(sum(float(np.sum(v**2)) for v in params.values()))
        assert m["grad_norm/layer0"][k] == pytest.approx(g, rel=1e-12)
        assert m["weight_norm/layer0"][k] == pytest.approx(w, rel=1e-12)
        if w > 0:  # plain GD: the update is lr * g
            assert m["update_ratio/layer0"][k] == pytest.approx(0.3 * g / w, rel=1e-9)
    assert m["update_ratio/layer0"][0] == math.inf  # zero init: any move is infinitely large
    assert m["loss"] == run.history.steps["loss"]


def test_every_n_steps_and_nothing_else():
    X, y = blobs()
    run = ds.fit(
        ds.models.LogisticRegression(),
        (X, y),
        optimizer="adam",
        batch_size=50,
        epochs=2,
        callbacks=[ds.Monitor(every=4)],
        progress=False,
    )
    assert run.history.monitor["step"] == [4, 8, 12]
    assert len(run.history.steps["step"]) == 12


def test_unit_health_of_an_mlp_on_the_probe():
    X, y = blobs()
    model = ds.models.MLP(hidden=(8,), activation="relu", output="binary", dtype="float64")
    params = model.init(np.random.default_rng(0), X.shape[1], 1)
    params["b0"][:3] = -1e3  # three units that never fire
    params["W0"][:, 5] = params["W0"][:, 6]  # two units with the same incoming weights
    params["b0"][5] = params["b0"][6]
    params["W1"][5] = params["W1"][6]  # and going out: they get equal gradients and stay equal

    class Fixed(ds.models.MLP):  # starts from these params
        def init(self, rng, n_features, n_outputs):
            return {k: v.copy() for k, v in params.items()}

    run = ds.fit(
        Fixed(hidden=(8,), activation="relu", output="binary", dtype="float64"),
        (X, y),
        optimizer="sgd",
        lr=1e-3,
        batch_size=None,
        epochs=1,
        standardize=False,
        callbacks=[ds.Monitor(every=1, probe=(X, y))],
        progress=False,
    )
    m = run.history.monitor
    assert m["dead/layer0"] == [pytest.approx(3 / 8)]
    assert m["duplicate/layer0"] == [pytest.approx(2 / 8)]
    assert "saturated/layer0" not in m
    assert set(k.split("/")[1] for k in m if k.startswith("grad_norm/")) == {"layer0", "layer1"}
    assert m["first_last_grad_ratio"][0] == pytest.approx(m["grad_norm/layer0"][0] / m["grad_norm/layer1"][0])


def test_deep_sigmoid_net_shows_vanishing_gradients_and_saturation():
    X, y = blobs(seed=1)
    model = ds.models.MLP(hidden=(16,) * 6, activation="sigmoid", output="binary", dtype="float64")
    run = ds.fit(
        model,
        (X, y),
        optimizer="sgd",
        lr=0.1,
        batch_size=None,
        epochs=2,
        callbacks=[ds.Monitor(every=1, probe=(X, y))],
        progress=False,
    )
    ratio = run.history.monitor["first_last_grad_ratio"]
    assert max(ratio) < 1e-2  # the first layer's gradient is orders of magnitude below the last's
    assert all(f"saturated/layer{i}" in run.history.monitor for i in range(6))


def test_lambda_max_is_the_top_hessian_eigenvalue_and_is_judged_against_the_limit():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 3)) * [1.0, 3.0, 0.3]
    y = X @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=200)
    model = ds.models.LinearRegression(dtype="float64")
    run = ds.fit(
        model,
        (X, y),
        optimizer="sgd",
        lr=0.01,
        batch_size=None,
        epochs=4,
        standardize=False,
        standardize_target=False,
        callbacks=[ds.Monitor(every=1, probe=(X, y), curvature_every=2)],
        progress=False,
    )
    m = run.history.monitor
    # MSE of z = X W + b: Hessian 2/n [X 1]^T [X 1], whatever the params
    A = np.hstack([X, np.ones((200, 1))])
    want = np.linalg.eigvalsh(2.0 / 200 * A.T @ A)[-1]
    lam = m["lambda_max"]
    assert lam[0] == pytest.approx(want, rel=1e-9) and lam[2] == pytest.approx(want, rel=1e-9)
    assert math.isnan(lam[1]) and math.isnan(lam[3])  # measured every 2nd record only
    assert m["lr_lambda"][0] == pytest.approx(0.01 * want) and m["stability_limit"][0] == 2.0


def test_records_survive_a_checkpoint_and_resume(tmp_path):
    X, y = blobs()
    kw = dict(
        model=ds.models.MLP(hidden=(6,), output="binary"),
        data=(X, y),
        optimizer="adam",
        batch_size=30,
        epochs=3,
        checkpoint_dir=tmp_path,
        checkpoint_every=5,
        progress=False,
    )
    whole = ds.fit(
        **{**kw, "checkpoint_dir": None, "checkpoint_every": None},
        callbacks=[ds.Monitor(every=3, probe=(X, y))],
    )
    ds.fit(**kw, max_steps=17, callbacks=[ds.Monitor(every=3, probe=(X, y))])
    resumed = ds.fit(**kw, resume=True, callbacks=[ds.Monitor(every=3, probe=(X, y))])
    assert resumed.history.monitor.keys() == whole.history.monitor.keys()
    for k, v in whole.history.monitor.items():
        np.testing.assert_array_equal(resumed.history.monitor[k], v, err_msg=k)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"every": 0}, "every"),
        ({"every": 2.5}, "every"),
        ({"curvature_every": 3}, "curvature_every"),
        ({"probe": np.zeros((3, 2))}, "probe"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_settings_name_the_parameter(kwargs, param):
    with pytest.raises((TypeError, ValueError), match=f"Monitor: {param}"):
        ds.Monitor(**kwargs)


def test_the_command_line_records_into_the_run_folder(tmp_path):
    import csv

    from typer.testing import CliRunner

    from descend.cli import app

    out = tmp_path / "run"
    args = ["train", "digits", "--hidden", "16", "--epochs", "1", "--monitor", "2", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--no-progress"])
    assert result.exit_code == 0, result.output
    with open(out / "monitor.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(2, 2 * len(rows) + 1, 2)) and rows
    assert {"grad_norm/layer0", "update_ratio/layer1", "first_last_grad_ratio"} <= set(rows[0])
    bad = CliRunner().invoke(app, [*args[:-2], "--monitor", "0", "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "--monitor" in bad.output


def test_fit_takes_the_monitor_by_name_and_refuses_anything_else():
    X, y = blobs()
    run = ds.fit(ds.models.LogisticRegression(), (X, y), epochs=1, batch_size=50, monitor=ds.Monitor(every=3))
    assert run.history.monitor["step"] == [3, 6]
    with pytest.raises(TypeError, match=r"fit: monitor must be a descend\.Monitor"):
        ds.fit(ds.models.LogisticRegression(), (X, y), epochs=1, monitor=3)
