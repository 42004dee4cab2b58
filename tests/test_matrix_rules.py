"""Rules that mix the elements of a leaf (Adafactor's factored moments, Muon's orthogonalised
momentum): their state is not leaf-shaped, and it still saves, restores and resumes exactly."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import descend as ds
from descend.cli import app
from descend.errors import UnknownNameError


def grads_of(params, k):
    leaves, treedef = ds._tree.flatten(params)
    rng = np.random.default_rng(k)
    return ds._tree.unflatten(treedef, [2.0 * p + rng.normal(size=p.shape) for p in leaves])


def steps(opt, params, state, n, start=0):
    for k in range(start, start + n):
        opt.step(params, grads_of(params, k), state)


# -- state that is not leaf-shaped ---------------------------------------------------------------
def test_adafactor_keeps_row_and_column_means_of_the_last_two_dimensions():
    params = {"T": np.ones((2, 3, 4)), "W": np.ones((100, 200)), "b": np.ones(5), "s": np.array(1.0)}
    state = ds.Adafactor().init(params)
    shapes = {name: {k: v.shape for k, v in state[name].items()} for name in state.buffers}
    assert shapes == {
        "row_var": {"T": (2, 3), "W": (100,), "b": (0,), "s": (0,)},
        "col_var": {"T": (2, 4), "W": (200,), "b": (0,), "s": (0,)},
        "variance": {"T": (0,), "W": (0,), "b": (5,), "s": ()},
    }
    # the memory of a matrix's sides, not of the matrix: 300 numbers for 20,000 parameters
    assert state.buffers["row_var"][1].size + state.buffers["col_var"][1].size == 300


def test_a_saved_factored_state_loads_and_continues_bit_identically(tmp_path):
    params = {"W": np.random.default_rng(0).normal(size=(4, 3)), "b": np.ones(3)}
    opt = ds.Adafactor(lr=0.05, weight_decay=0.01)
    state = opt.init(params)
    steps(opt, params, state, 5)
    ds.save_state(state, tmp_path / "s.npz")
    resumed, loaded = {k: v.copy() for k, v in params.items()}, ds.load_state(tmp_path / "s.npz")
    assert [b.shape for b in loaded.buffers["row_var"]] == [(4,), (0,)]
    steps(opt, params, state, 5, start=5)
    steps(opt, resumed, loaded, 5, start=5)
    assert all(params[k].tobytes() == resumed[k].tobytes() for k in params)


def test_a_buffer_of_the_wrong_shape_is_refused_on_load():
    state = ds.Adafactor().init({"W": np.ones((4, 3))})
    saved = ds.save_state(state)
    saved["buffer/row_var/0"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"buffer row_var/0 has shape \(3,\), expected \(4,\)"):
        ds.load_state(saved)


def test_a_state_saved_before_buffer_shapes_existed_still_loads():
    params = {"W": np.ones((2, 2)), "b": np.ones(2)}
    opt = ds.Adam(lr=0.1)
    state = opt.init(params)
    steps(opt, params, state, 2)
    saved = ds.save_state(state)
    del saved["buffer_shapes"]  # what descend wrote before: every buffer leaf-shaped
    loaded = ds.load_state(saved)
    assert all(
        a.tobytes() == b.tobytes() for a, b in zip(loaded.buffers["v"], state.buffers["v"], strict=True)
    )


def test_restoring_from_a_state_of_another_layout_is_refused_and_changes_nothing():
    a = ds.Adafactor().init({"W": np.ones((4, 3))})
    b = ds.Adafactor().init({"W": np.ones((3, 4))})
    b.t = np.int64(3)
    with pytest.raises(ValueError, match="buffer 'row_var' has shapes"):
        a.restore_from(b)
    assert a.t == 0


def test_an_empty_leaf_is_left_alone():
    params = {"W": np.ones((0, 3)), "b": np.ones(3)}
    for opt in (ds.Adafactor(), ds.Muon()):
        state = opt.init(params)
        steps(opt, params, state, 3)
        assert params["W"].shape == (0, 3) and np.all(np.isfinite(params["b"]))


# -- fit: checkpoints and resuming -------------------------------------------------------------------
def classification(n=120, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, (X @ rng.normal(size=(4, 3))).argmax(1)


@pytest.mark.parametrize("name", ["adafactor", "muon"])
def test_fit_resumes_from_a_checkpoint_bit_identically(name, tmp_path):
    X, y = classification()
    kw = dict(optimizer=name, batch_size=16, progress=False, seed=0)
    model = ds.models.MLP(hidden=(8,))
    ds.fit(model, (X, y), epochs=2, checkpoint_dir=tmp_path, **kw)
    longer = ds.fit(model, (X, y), epochs=4, checkpoint_dir=tmp_path, resume=True, **kw)
    straight = ds.fit(model, (X, y), epochs=4, **kw)
    assert all(longer.params[k].tobytes() == straight.params[k].tobytes() for k in straight.params)
    assert straight.history.epochs["train_loss"][-1] < straight.history.epochs["train_loss"][0]


def test_fit_trains_an_mlp_with_biases_with_muon_and_nothing_else_to_do():
    X, y = classification(n=300)
    run = ds.fit(
        ds.models.MLP(hidden=(16,)), (X, y), optimizer="muon", batch_size=32, epochs=10, progress=False
    )
    assert run.optimizer.lr == ds.Muon.fit_lr and run.optimizer.companion.name == "adamw"
    assert run.history.epochs["train_loss"][-1] < 0.6 * run.history.epochs["train_loss"][0]
    assert np.mean(run.predict(X) == y) > 0.85


# -- Muon: the matrices, a lone vector, and the companion for the rest ------------------------------
def test_muon_steps_the_matrices_and_its_companion_the_other_leaves_as_if_alone():
    rng = np.random.default_rng(0)
    params = {"W": rng.normal(size=(4, 3)), "b": rng.normal(size=3), "s": np.array(0.5)}
    W, rest = params["W"].copy(), {"b": params["b"].copy(), "s": params["s"].copy()}
    muon = ds.Muon(lr=0.02, weight_decay=0.05)
    alone, companion = ds.Muon(lr=0.02, weight_decay=0.05), ds.AdamW(lr=ds.AdamW.fit_lr, weight_decay=0.05)
    state, s_alone, s_companion = muon.init(params), alone.init([W]), companion.init(rest)
    assert sorted(state.buffers) == ["adamw.m", "adamw.v", "b"]
    for k in range(20):
        g = grads_of(params, k)
        muon.step(params, g, state)
        alone.step([W], [g["W"]], s_alone)
        companion.step(rest, {"b": g["b"], "s": g["s"]}, s_companion)
    assert params["W"].tobytes() == W.tobytes()
    assert params["b"].tobytes() == rest["b"].tobytes() and params["s"].tobytes() == rest["s"].tobytes()
    assert state["adamw.m"]["b"].tobytes() == s_companion["m"]["b"].tobytes()


def test_a_lone_vector_is_a_one_row_matrix():
    """The point of minimize and races: Muon steps along its momentum's direction."""
    x, row = np.array([3.0, -1.0, 0.5]), np.array([[3.0, -1.0, 0.5]])
    opt = ds.Muon(lr=0.1, companion=None)
    sx, srow = opt.init(x), opt.init(row)
    for k in range(5):
        g = 2.0 * x + k
        opt.step(x, g, sx)
        opt.step(row, g[None, :], srow)
    assert x.tobytes() == row[0].tobytes()
    # a rank-one matrix starts Newton-Schulz at singular value 1: every step has one length
    y = np.zeros(4)
    opt = ds.Muon(lr=0.1, weight_decay=0.0, nesterov=False, momentum=0.0)
    s = opt.init(y)
    lengths = []
    for g in ([1.0, 0, 0, 0], [0, 50.0, 0, 0], [1e-3, 1e-3, 0, 0]):
        before = y.copy()
        opt.step(y, np.array(g), s)
        lengths.append(np.linalg.norm(y - before))
    np.testing.assert_allclose(lengths, lengths[0], rtol=1e-12)
    assert 0.05 < lengths[0] < 0.12


def test_without_a_companion_a_leaf_that_is_not_a_matrix_is_refused_by_name():
    opt = ds.Muon(companion=None)
    with pytest.raises(ValueError) as e:
        opt.init({"W": np.ones((3, 2)), "b": np.ones(2)})
    assert str(e.value) == (
        "Muon.init: params['b'] has shape (2,), and Muon takes matrices (2-D leaves) only: give a "
        "companion rule for the others (companion='adamw', the default, or an Optimizer such as "
        "ds.AdamW(lr=3e-4)), or leave them out"
    )
    assert sorted(opt.init({"W": np.ones((3, 2))}).buffers) == ["b"]


def test_the_companion_by_name_instance_or_none():
    named = ds.Muon(weight_decay=0.2, maximize=True, companion="nadam")
    assert isinstance(named.companion, ds.Nadam)
    assert (named.companion.lr, named.companion.weight_decay, named.companion.maximize) == (
        ds.Nadam.fit_lr,
        0.2,
        True,
    )
    given = ds.Muon(companion=ds.SGD(lr=0.5, momentum=0.9))
    params = {"W": np.ones((2, 2)), "b": np.ones(2)}
    state = given.init(params)
    assert sorted(state.buffers) == ["b", "sgd.b"]
    given.step(params, {"W": np.zeros((2, 2)), "b": np.ones(2)}, state)
    np.testing.assert_array_equal(params["b"], [0.5, 0.5])  # the companion's own lr
    # a companion with step-wide numbers keeps them in Muon's scalars, under its name
    state = named.init(params)
    named.step(params, grads_of(params, 0), state)
    assert set(state.scalars) == {"nadam.mu_product"}
    loaded = ds.load_state(ds.save_state(state))
    assert loaded.scalars == state.scalars


def test_a_bad_companion_or_adjust_lr_fn_is_refused_naming_it():
    with pytest.raises(
        UnknownNameError, match=r"^Muon: companion: unknown optimizer 'adamm'; did you mean 'adam'\?"
    ):
        ds.Muon(companion="adamm")

    class LineSearch(ds.SGD):  # a rule driven by the objective (as L-BFGS), not by step()
        needs_objective = True

    for bad in ("muon", ds.Muon(), LineSearch(lr=0.1)):
        with pytest.raises(ValueError, match=r"^Muon: companion must be a rule stepped on gradients"):
            ds.Muon(companion=bad)
    with pytest.raises(ValueError, match=r"^Muon: companion must have maximize=False, as Muon has"):
        ds.Muon(companion=ds.AdamW(maximize=True))
    with pytest.raises(
        ValueError,
        match=r"^Muon: adjust_lr_fn must be None, 'original' or 'match_rms_adamw', got 'arbitrary'",
    ):
        ds.Muon(adjust_lr_fn="arbitrary")


def test_muon_is_trained_from_the_command_line_with_nothing_else_to_do(tmp_path):
    runner = CliRunner()
    out = tmp_path / "train"
    args = ["train", "iris", "--optimizer", "muon", "--model", "mlp", "--hidden", "8", "--epochs", "5"]
    r = runner.invoke(app, [*args, "--out", str(out), "--no-progress"], env={"COLUMNS": "300"})
    assert r.exit_code == 0, r.output
    assert "with Muon(lr=0.01," in r.output and "companion=AdamW(lr=0.003" in r.output
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["optimizer"]["name"] == "muon" and config["optimizer"]["companion"].startswith("AdamW(")
    # a race takes Muon's options, the companion among them, with --set
    race = ["race", "booth", "--steps", "20", "--no-gif", "--optimizers", "muon"]
    r = runner.invoke(app, [*race, "--set", "muon.companion=sgd", "--out", str(tmp_path / "r")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, [*race, "--set", "muon.companion=adamm", "--out", str(tmp_path / "r2")])
    assert r.exit_code != 0 and "Muon: companion: unknown optimizer 'adamm'" in str(r.exception)
