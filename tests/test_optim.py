"""Generic tests run over every optimizer in the registry (tests/optim_registry.py)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from optim_registry import REGISTRY, STEPPED, ids, registry_mismatch

import descend as ds

A = np.diag([1.0, 10.0])  # convex quadratic, condition number 10


def quad(x):
    return float(0.5 * x @ A @ x)


def quad_grad(x):
    return A @ x


def rosen(x):
    return float((1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2)


def rosen_grad(x):
    return np.array([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2), 200 * (x[1] - x[0] ** 2)])


def run_steps(opt, params, grad_fn, state, n):
    for _ in range(n):
        grads = grad_fn(params)
        opt.step(params, grads, state)


def tree_grad(params):
    """Gradient of sum_i 0.5 * c_i * ||leaf_i||^2 with a different c per leaf, plus a cross term."""
    leaves, treedef = ds._tree.flatten(params)
    grads = [(i + 1.0) * leaf + 0.1 * np.sin(leaf) for i, leaf in enumerate(leaves)]
    return ds._tree.unflatten(treedef, grads)


def make_params(dtype=np.float64):
    rng = np.random.default_rng(1)
    return {
        "W": rng.normal(size=(3, 4)).astype(dtype),
        "b": rng.normal(size=(4,)).astype(dtype),
        "layers": [rng.normal(size=(2,)).astype(dtype), np.array(0.7, dtype=dtype)],
    }


@pytest.mark.parametrize("info", STEPPED, ids=ids)
def test_loss_decreases_in_20_steps(info):
    x = np.array([1.0, 1.0])
    opt = info.make(**info.quadratic)
    state = opt.init(x)
    start = quad(x)
    losses = []
    for _ in range(20):
        opt.step(x, quad_grad(x), state)
        losses.append(quad(x))
    assert losses[-1] < 0.9 * start
    assert state.t == 20 and state.t.dtype == np.int64


@pytest.mark.parametrize("info", STEPPED, ids=ids)
def test_converges_on_convex_quadratic(info):
    res = ds.minimize(
        quad, [1.0, 1.0], grad=quad_grad, optimizer=info.make(**info.quadratic), max_steps=2000, tol=None
    )
    assert np.linalg.norm(res.x) < 1e-4, res.x


@pytest.mark.parametrize("info", STEPPED, ids=ids)
def test_converges_on_rosenbrock_from_standard_start(info):
    res = ds.minimize(
        rosen,
        [-1.2, 1.0],
        grad=rosen_grad,
        optimizer=info.make(**info.rosenbrock),
        max_steps=info.rosenbrock_steps,
        tol=None,
    )
    assert not res.diverged
    assert np.linalg.norm(res.x - 1.0) < 1e-3, res.x
    assert res.fun < 1e-4


@pytest.mark.parametrize("info", STEPPED, ids=ids)
def test_zero_gradient_is_a_no_op(info):
    params = make_params()
    before = copy.deepcopy(params)
    opt = info.make(**{**info.quadratic, "weight_decay": 0.0})
    state = opt.init(params)
    zeros = ds._tree.unflatten(
        ds._tree.flatten(params)[1], [np.zeros_like(p) for p in ds._tree.flatten(params)[0]]
    )
    for _ in range(5):
        opt.step(params, zeros, state)
    for a, b in zip(ds._tree.flatten(params)[0], ds._tree.flatten(before)[0], strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("info", STEPPED, ids=ids)
def test_dtype_shape_and_structure_preserved(info, dtype):
    seen = set()
    for kwargs in [info.quadratic, *info.variants]:
        params = make_params(dtype)
        ids_before = [id(p) for p in ds._tree.flatten(params)[0]]
        opt = info.make(**kwargs)
        state = opt.init(params)
        run_steps(opt, params, tree_grad, state, 3)
        leaves = ds._tree.flatten(params)[0]
        assert [id(p) for p in leaves] == ids_before, "params must be updated in place"
        assert [p.shape for p in leaves] == [(3, 4), (4,), (2,), ()]
        assert all(p.dtype == dtype for p in leaves)
        for name, bufs in state.buffers.items():
            assert [b.dtype for b in bufs] == [dtype] * 4
            assert [b.shape for b in bufs] == info.buffer_shapes.get(name, [(3, 4), (4,), (2,), ()]), name
            seen.add(name)
        assert all(np.all(np.isfinite(p)) for p in leaves)
        # a float64 gradient on float32 params still leaves float32 params
        opt.step(params, tree_grad({k: v for k, v in params.items()}), state)
        assert all(p.dtype == dtype for p in ds._tree.flatten(params)[0])
    assert set(info.buffer_shapes) <= seen, "buffer_shapes names a buffer no setting of the rule has"


@pytest.mark.parametrize("container", ["array", "list", "tuple", "dict"])
def test_all_container_kinds_give_identical_updates(container):
    rng = np.random.default_rng(0)
    base = rng.normal(size=5)
    grads = [rng.normal(size=5) for _ in range(10)]
    ref = base.copy()
    opt = ds.Adam(lr=0.1)
    st = opt.init(ref)
    for g in grads:
        opt.step(ref, g, st)
    wrap = {"array": lambda a: a, "list": lambda a: [a], "tuple": lambda a: (a,), "dict": lambda a: {"w": a}}[
        container
    ]
    x = base.copy()
    params = wrap(x)
    st = opt.init(params)
    for g in grads:
        opt.step(params, wrap(g), st)
    np.testing.assert_array_equal(x, ref)


@pytest.mark.parametrize("info", STEPPED, ids=ids)
def test_state_round_trip_continues_bit_identically(info, tmp_path):
    for i, kwargs in enumerate([info.quadratic, *info.variants]):
        params = make_params()
        opt = info.make(**kwargs)
        state = opt.init(params)
        run_steps(opt, params, tree_grad, state, 7)
        saved_params = copy.deepcopy(params)
        file = tmp_path / f"state{i}.npz"
        ds.save_state(state, file)
        run_steps(opt, params, tree_grad, state, 11)  # the uninterrupted run

        resumed = saved_params
        loaded = ds.load_state(file)
        assert loaded.t == 7 and loaded.t.dtype == np.int64
        run_steps(opt, resumed, tree_grad, loaded, 11)
        for a, b in zip(ds._tree.flatten(params)[0], ds._tree.flatten(resumed)[0], strict=True):
            assert a.tobytes() == b.tobytes()
        for name in state.buffers:
            for a, b in zip(state.buffers[name], loaded.buffers[name], strict=True):
                assert a.tobytes() == b.tobytes()
        assert state.scalars == loaded.scalars


def test_saved_state_is_plain_arrays_without_pickle(tmp_path):
    params = make_params()
    opt = ds.Nadam(lr=0.01)
    state = opt.init(params)
    run_steps(opt, params, tree_grad, state, 3)
    d = ds.save_state(state, tmp_path / "s.npz")
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in d.values())
    with np.load(tmp_path / "s.npz", allow_pickle=False) as z:
        assert set(z.files) == set(d)
    # the returned dict is a snapshot
    run_steps(opt, params, tree_grad, state, 1)
    assert int(d["t"]) == 3


@pytest.mark.parametrize(
    ("info", "kwargs", "param", "exc"),
    [(info, kw, p, e) for info in REGISTRY for kw, p, e in info.bad],
    ids=[
        f"{info.name}-{p}-{kw[p] if p in kw else next(iter(kw.values()))!r}"
        for info in REGISTRY
        for kw, p, e in info.bad
    ],
)
def test_bad_hyperparameters_raise_a_clear_error(info, kwargs, param, exc):
    with pytest.raises(exc) as excinfo:
        info.make(**kwargs)
    msg = str(excinfo.value)
    assert msg.startswith(info.cls.__name__ + ":"), msg
    assert param in msg, msg
    if param in kwargs and param not in ("betas", "nesterov"):
        assert repr(kwargs[param]) in msg or str(kwargs[param]) in msg, msg
    elif param in ("beta1", "beta2"):
        assert str(kwargs["betas"][int(param[-1]) - 1]) in msg or "betas" in msg
    if exc is ValueError and param not in ("nesterov",):
        assert "must satisfy" in msg  # names the allowed range


def test_error_message_format_matches_design():
    with pytest.raises(ValueError, match=r"^Adam: beta2 must satisfy 0 <= beta2 < 1, got 1\.0$"):
        ds.Adam(betas=(0.9, 1.0))
    with pytest.raises(ValueError, match=r"^SGD: lr must satisfy lr >= 0 \(finite\), got -0\.1$"):
        ds.SGD(lr=-0.1)
    with pytest.raises(
        TypeError, match=r"lr must be a non-negative real number or a schedule.*True \(bool\)"
    ):
        ds.Adam(lr=True)


@pytest.mark.parametrize("info", STEPPED, ids=ids)
def test_rejected_step_mutates_nothing(info):
    params = make_params()
    opt = info.make(**(info.variants[0] if info.variants else info.quadratic))
    state = opt.init(params)
    run_steps(opt, params, tree_grad, state, 2)
    snap_params = copy.deepcopy(params)
    snap_state = state.copy()
    good = tree_grad(params)
    bad_calls = []
    wrong_shape = dict(good, b=np.zeros(5))
    bad_calls.append((params, wrong_shape, state, ValueError, "grads['b']"))
    missing = {k: v for k, v in good.items() if k != "b"}
    bad_calls.append((params, missing, state, ValueError, "structure"))
    other = ds.SGD(lr=0.1).init(params) if info.name != "sgd" else ds.Adam().init(params)
    bad_calls.append((params, good, other, ValueError, "state belongs to"))
    bad_calls.append((params, dict(good, W=good["W"].astype(np.complex128)), state, TypeError, "real"))
    bad_calls.append((params, good, "not a state", TypeError, "OptState"))
    for p, g, s, exc, text in bad_calls:
        with pytest.raises(exc, match=text.replace("[", r"\[").replace("]", r"\]")):
            opt.step(p, g, s)
        for a, b in zip(ds._tree.flatten(params)[0], ds._tree.flatten(snap_params)[0], strict=True):
            np.testing.assert_array_equal(a, b)
        assert state.t == snap_state.t
        for name in state.buffers:
            for a, b in zip(state.buffers[name], snap_state.buffers[name], strict=True):
                np.testing.assert_array_equal(a, b)


def test_grads_are_never_modified():
    for info in STEPPED:
        params = make_params()
        opt = info.make(**info.variants[0]) if info.variants else info.make(**info.quadratic)
        state = opt.init(params)
        grads = tree_grad(params)
        snap = copy.deepcopy(grads)
        for _ in range(3):
            opt.step(params, grads, state)
        for a, b in zip(ds._tree.flatten(grads)[0], ds._tree.flatten(snap)[0], strict=True):
            np.testing.assert_array_equal(a, b)


def test_non_float_or_non_array_params_are_refused():
    with pytest.raises(TypeError, match="floating dtype"):
        ds.Adam().init(np.array([1, 2, 3]))
    with pytest.raises(TypeError, match="NumPy array"):
        ds.Adam().init([1.0, 2.0])
    ro = np.ones(3)
    ro.flags.writeable = False
    opt = ds.SGD(lr=0.1)
    st = opt.init(ro)
    with pytest.raises(ValueError, match="read-only"):
        opt.step(ro, np.ones(3), st)


@pytest.mark.parametrize("info", STEPPED, ids=ids)
def test_maximize_ascends_what_minimize_descends(info):
    kw = info.quadratic
    x1 = np.array([1.0, -2.0])
    x2 = x1.copy()
    o1, o2 = info.make(**kw), info.make(**kw, maximize=True)
    s1, s2 = o1.init(x1), o2.init(x2)
    for _ in range(15):
        o1.step(x1, quad_grad(x1), s1)
        o2.step(x2, -quad_grad(x2), s2)  # gradient of -quad
    np.testing.assert_allclose(x1, x2, rtol=0, atol=0)


def test_schedule_lr_is_called_with_completed_steps():
    seen = []

    def sched(k):
        seen.append(k)
        return 0.1 / (k + 1)

    x = np.array([0.0])
    opt = ds.SGD(lr=sched)
    st = opt.init(x)
    for _ in range(3):
        opt.step(x, np.array([1.0]), st)
    assert seen == [0, 1, 2]
    np.testing.assert_allclose(x, [-(0.1 + 0.05 + 0.1 / 3)], rtol=1e-15)


def test_schedule_returning_bad_value_is_refused_before_the_update():
    x = np.array([1.0])
    opt = ds.SGD(lr=lambda k: float("nan"))
    st = opt.init(x)
    with pytest.raises(ValueError, match="returned lr=nan at step 0"):
        opt.step(x, np.array([1.0]), st)
    assert x[0] == 1.0 and st.t == 0


def test_optimizer_by_name():
    assert isinstance(ds.optimizer("adam", lr=0.01), ds.Adam)
    assert ds.optimizer("AMSGrad").amsgrad is True
    assert ds.optimizer("nesterov").nesterov is True
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamm'; did you mean 'adam'\? known: sgd, mom"):
        ds.optimizer("adamm")
    opt = ds.SGD(lr=0.1)
    assert ds.optimizer(opt) is opt
    assert ds.optimizer(" AdamW ").hyperparameters() == ds.optimizer("adamw").hyperparameters()


def test_test_registry_equals_the_librarys():
    """Both ways: every registered rule gets the generic tests, and every entry is registered."""
    problems = registry_mismatch(ds.optim.names(), REGISTRY)
    assert not problems, "\n".join(problems)


def test_defaults_follow_pytorch():
    assert ds.SGD().lr == 1e-3
    a = ds.Adam()
    assert (a.lr, a.betas, a.eps, a.weight_decay, a.amsgrad) == (1e-3, (0.9, 0.999), 1e-8, 0.0, False)
    assert ds.AdamW().weight_decay == 1e-2
    g = ds.AdaGrad()
    assert (g.lr, g.eps, g.initial_accumulator, g.lr_decay) == (1e-2, 1e-10, 0.0, 0.0)
    r = ds.RMSprop()
    assert (r.lr, r.alpha, r.eps, r.centered, r.momentum) == (1e-2, 0.99, 1e-8, False, 0.0)
    n = ds.Nadam()
    assert (n.lr, n.momentum_decay) == (2e-3, 4e-3)
    assert ds.Adamax().lr == 2e-3
    d = ds.AdaDelta()
    assert (d.lr, d.rho, d.eps) == (1.0, 0.9, 1e-6)


def test_state_buffers_readable_in_param_structure():
    params = make_params()
    opt = ds.Adam(lr=0.1)
    st = opt.init(params)
    opt.step(params, tree_grad(params), st)
    m = st["m"]
    assert set(m) == {"W", "b", "layers"} and m["W"].shape == (3, 4)
    with pytest.raises(KeyError, match="no buffer 'q'"):
        st["q"]


def test_changed_configuration_needs_a_new_state():
    x = np.ones(2)
    st = ds.Adam().init(x)
    with pytest.raises(ValueError, match="lacks buffers"):
        ds.Adam(amsgrad=True).step(x, np.ones(2), st)
