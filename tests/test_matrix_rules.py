"""Rules that mix the elements of a leaf (Adafactor's factored moments, Muon's orthogonalised
momentum): their state is not leaf-shaped, and it still saves, restores and resumes exactly."""

from __future__ import annotations

import numpy as np
import pytest

import descend as ds


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
    for opt in (ds.Adafactor(),):
        state = opt.init(params)
        steps(opt, params, state, 3)
        assert params["W"].shape == (0, 3) and np.all(np.isfinite(params["b"]))


# -- fit: checkpoints and resuming -------------------------------------------------------------------
def classification(n=120, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, (X @ rng.normal(size=(4, 3))).argmax(1)


@pytest.mark.parametrize("name", ["adafactor"])
def test_fit_resumes_from_a_checkpoint_bit_identically(name, tmp_path):
    X, y = classification()
    kw = dict(optimizer=name, batch_size=16, progress=False, seed=0)
    model = ds.models.MLP(hidden=(8,))
    ds.fit(model, (X, y), epochs=2, checkpoint_dir=tmp_path, **kw)
    longer = ds.fit(model, (X, y), epochs=4, checkpoint_dir=tmp_path, resume=True, **kw)
    straight = ds.fit(model, (X, y), epochs=4, **kw)
    assert all(longer.params[k].tobytes() == straight.params[k].tobytes() for k in straight.params)
    assert straight.history.epochs["train_loss"][-1] < straight.history.epochs["train_loss"][0]
