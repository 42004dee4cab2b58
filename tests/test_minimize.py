"""minimize(): stopping rules, gradient modes, divergence handling, history, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

import descend as ds

A = np.diag([1.0, 10.0])


def quad(x):
    return float(0.5 * x @ A @ x)


def quad_grad(x):
    return A @ x


def test_stops_on_gradient_tolerance():
    res = ds.minimize(quad, [1.0, 1.0], grad=quad_grad, optimizer="sgd", lr=0.1, max_steps=10_000, tol=1e-8)
    assert res.success and "converged" in res.message
    assert res.grad_norm <= 1e-8
    assert np.linalg.norm(quad_grad(res.x)) <= 1e-8
    # plain GD on this quadratic: the slow coordinate contracts by (1 - 0.1) per step
    expected_nit = int(np.ceil(np.log(1e-8) / np.log(0.9)))
    assert abs(res.nit - expected_nit) <= 1


def test_stops_at_max_steps_and_reports_failure():
    res = ds.minimize(quad, [1.0, 1.0], grad=quad_grad, optimizer="sgd", lr=1e-3, max_steps=50, tol=1e-8)
    assert not res.success and res.nit == 50 and "max_steps=50" in res.message
    assert len(res.history) == 51  # x_0 .. x_50
    res = ds.minimize(quad, [1.0, 1.0], grad=quad_grad, optimizer="sgd", lr=1e-3, max_steps=50, tol=None)
    assert res.success and res.nit == 50


def test_history_columns_are_consistent():
    res = ds.minimize(quad, [1.0, 1.0], grad=quad_grad, optimizer="adam", lr=0.1, max_steps=30, tol=None)
    h = res.history
    assert list(h.step) == list(range(31))
    np.testing.assert_allclose(h.loss, [quad(p) for p in h.path])
    np.testing.assert_allclose(h.grad_norm, [np.linalg.norm(quad_grad(p)) for p in h.path])
    assert np.all(h.lr[:-1] == 0.1) and np.isnan(h.lr[-1])
    assert np.all(np.diff(h.time) >= 0)
    np.testing.assert_array_equal(h.path[-1], res.x)
    assert set(h.columns()) == {"step", "loss", "lr", "grad_norm", "time"}


def test_grad_modes_agree():
    f = ds.functions.get("rosenbrock")
    kw = dict(optimizer="adam", lr=0.01, max_steps=200, tol=None)
    a = ds.minimize(f, f.start, grad=f.grad, **kw)
    b = ds.minimize(f, f.start, **kw)  # picks up f.grad
    c = ds.minimize(lambda x: (f(x), f.grad(x)), f.start, grad=True, **kw)
    d = ds.minimize(lambda x: f(x), f.start, **kw)  # central differences
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.x, c.x)
    assert a.grad_method == "analytic" and d.grad_method == "central differences"
    np.testing.assert_allclose(d.x, a.x, rtol=1e-6)


def test_central_difference_gradient_is_accurate():
    f = ds.functions.get("beale")
    x = np.array([0.7, -0.4])
    np.testing.assert_allclose(ds.train.central_difference_grad(f, x), f.grad(x), rtol=1e-7)


def test_x0_is_not_modified_and_dtype_kept():
    x0 = np.array([1.0, 1.0], dtype=np.float32)
    res = ds.minimize(quad, x0, grad=quad_grad, optimizer="sgd", lr=0.1, max_steps=5, tol=None)
    assert x0.tolist() == [1.0, 1.0]
    assert res.x.dtype == np.float32
    res = ds.minimize(quad, [1, 1], grad=quad_grad, optimizer="sgd", lr=0.1, max_steps=5, tol=None)
    assert res.x.dtype == np.float64


def test_divergence_raises_naming_the_step_and_keeps_last_finite_point():
    with pytest.raises(ds.DivergenceError, match=r"non-finite at step \d+ .*smaller learning rate") as exc:
        ds.minimize(quad, [1.0, 1.0], grad=quad_grad, optimizer="sgd", lr=0.3, max_steps=5000)
    err = exc.value
    res = err.result
    assert res.diverged and not res.success
    assert np.all(np.isfinite(res.x)) and np.isfinite(quad(res.x))
    assert res.nit == err.step - 1
    assert res.state.t == res.nit
    # GD with lr=0.3 on curvature 10 multiplies x[1] by -2 each step: x_k = (-2)^k, so the
    # last finite point is exactly the (step-1)-th iterate.
    assert res.x[1] == (-2.0) ** res.nit
    assert np.all(np.isfinite(res.history.loss))


def test_divergence_can_stop_instead_of_raise_and_rolls_back_state():
    res = ds.minimize(
        quad, [1.0, 1.0], grad=quad_grad, optimizer="adam", lr=1e300, max_steps=50, on_divergence="stop"
    )
    assert res.diverged and not res.success
    assert np.all(np.isfinite(res.x))
    for bufs in res.state.buffers.values():
        assert all(np.all(np.isfinite(b)) for b in bufs)


@pytest.mark.parametrize("optimizer", ["adam", "nadam", "rprop", "adafactor"])
def test_divergence_rolls_back_to_exactly_the_last_finite_step(optimizer):
    """x, every buffer, t and the scalars (Nadam's running product) are those of a run that
    stopped one step before the one that blew up, to the bit."""

    def cliff(x):  # a downhill slope that ends in NaN past x[0] = 3
        return (math.nan if x[0] > 3.0 else -float(x.sum())), np.array([-1.0, -0.5])

    kw = dict(grad=True, optimizer=optimizer, lr=0.3, tol=None, record_path=False)
    res = ds.minimize(cliff, [0.0, 0.0], max_steps=200, on_divergence="stop", **kw)
    assert res.diverged and res.nit >= 3, res.message
    again = ds.minimize(cliff, [0.0, 0.0], max_steps=res.nit, **kw)
    np.testing.assert_array_equal(res.x, again.x)
    assert res.state.t == again.state.t == res.nit
    assert res.state.scalars == again.state.scalars
    for name, bufs in again.state.buffers.items():
        for got, want in zip(res.state.buffers[name], bufs, strict=True):
            np.testing.assert_array_equal(got, want)


def test_callback_sees_every_step_and_can_stop():
    seen = []

    def cb(info):
        seen.append(info["step"])
        return info["step"] == 7

    res = ds.minimize(quad, [1.0, 1.0], grad=quad_grad, optimizer="sgd", lr=0.01, max_steps=100, callback=cb)
    assert seen == list(range(1, 8)) and res.nit == 7 and res.success
    assert "callback" in res.message


def test_gradient_noise_is_seeded_and_reproducible():
    kw = dict(grad=quad_grad, optimizer="sgd", lr=0.01, max_steps=100, tol=None, noise=0.5)
    a = ds.minimize(quad, [1.0, 1.0], seed=3, **kw)
    b = ds.minimize(quad, [1.0, 1.0], seed=3, **kw)
    c = ds.minimize(quad, [1.0, 1.0], seed=4, **kw)
    np.testing.assert_array_equal(a.history.path, b.history.path)
    assert not np.array_equal(a.x, c.x)
    state = np.random.get_state()  # noqa: NPY002
    ds.minimize(quad, [1.0, 1.0], seed=3, **kw)
    assert np.random.get_state()[1].tolist() == state[1].tolist()  # noqa: NPY002


def test_schedule_and_options_are_passed_to_named_optimizer():
    res = ds.minimize(
        quad,
        [1.0, 1.0],
        grad=quad_grad,
        optimizer="sgd",
        lr=lambda k: 0.1 / (1 + k),
        options={"momentum": 0.5},
        max_steps=5,
        tol=None,
    )
    assert res.optimizer.momentum == 0.5
    np.testing.assert_allclose(res.history.lr[:5], [0.1 / (1 + k) for k in range(5)])


def test_path_recorded_only_for_low_dimension_by_default():
    big = ds.minimize(
        lambda x: float(x @ x),
        np.ones(50),
        grad=lambda x: 2 * x,
        optimizer="sgd",
        lr=0.1,
        max_steps=3,
        tol=None,
    )
    assert big.history.path is None
    forced = ds.minimize(
        lambda x: float(x @ x),
        np.ones(50),
        grad=lambda x: 2 * x,
        optimizer="sgd",
        lr=0.1,
        max_steps=3,
        tol=None,
        record_path=True,
    )
    assert forced.history.path.shape == (4, 50)


@pytest.mark.parametrize(
    ("kwargs", "exc", "text"),
    [
        ({"max_steps": -1}, ValueError, "minimize: max_steps must satisfy max_steps >= 0, got -1"),
        ({"max_steps": 2.5}, TypeError, "max_steps must be an integer"),
        ({"tol": -1.0}, ValueError, "tol must satisfy"),
        ({"noise": float("nan")}, ValueError, "noise must satisfy"),
        ({"on_divergence": "ignore"}, ValueError, "on_divergence must be one of 'raise', 'stop'"),
        ({"optimizer": "newton"}, ValueError, "optimizer: unknown optimizer 'newton'"),
        ({"optimizer": ds.SGD(lr=0.1), "lr": 0.2}, TypeError, "apply to a named optimizer"),
        ({"x0": [np.nan, 1.0]}, ValueError, "x0 must be finite"),
        ({"x0": []}, ValueError, "x0 must be a non-empty array"),
        ({"grad": 3}, TypeError, "grad must be None, True or a callable"),
        ({"callback": 1}, TypeError, "callback must be callable"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, exc, text):
    args = {"x0": [1.0, 1.0], "grad": quad_grad, **kwargs}
    with pytest.raises(exc, match=text.replace("(", r"\(").replace(")", r"\)")):
        ds.minimize(quad, **args)


def test_wrong_gradient_shape_is_reported():
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\), x has shape \(2,\)"):
        ds.minimize(quad, [1.0, 1.0], grad=lambda x: np.ones(3))
