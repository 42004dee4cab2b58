"""ds.lab.diagnose (issue 19): each instrument against an exact computation written here, and the
known-bad cases flagged while good ones are not."""

from __future__ import annotations

import math

import numpy as np
import pytest

import descend as ds
from descend.errors import ParameterError
from descend.lab._curvature import hutchinson, lanczos, rademacher, spectral_density
from descend.lab.diagnose import (
    DENSE_MAX_PARAMS,
    EXPLODING_RATIO,
    FLAGS,
    LANCZOS_STEPS,
    Diagnosis,
    diagnose,
    noise_two_batch,
    oscillation,
    stability_constant,
    update_ratio,
)

RTOL = 1e-6


def rel_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def regression_data(n=200, d=5, noise=0.5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) @ (np.eye(d) + 0.3 * rng.normal(size=(d, d)))  # correlated features
    w = rng.normal(size=d)
    return X, X @ w + 1.0 + noise * rng.normal(size=n), w


def with_ones(X):
    return np.hstack([X, np.ones((len(X), 1))])


def check_spectrum(d: Diagnosis, H: np.ndarray, k: int | None = None):
    """hessian_top (descending) and hessian_min against numpy's eigenvalues of H."""
    lam = np.linalg.eigvalsh(H)[::-1]
    k = len(d.hessian_top) if k is None else k
    assert len(d.hessian_top) == min(5, len(lam))
    assert np.all(np.diff(d.hessian_top) <= 0)
    # relative, except that an eigenvalue 0 (softmax's shift invariance) is 0 to rounding
    floor = 1e-12 * np.max(np.abs(lam))
    assert np.all(np.abs(d.hessian_top[:k] - lam[:k]) <= RTOL * np.abs(lam[:k]) + floor)
    assert abs(d.hessian_min - lam[-1]) <= RTOL * abs(lam[-1]) + floor


# ---------------------------------------------------------------------- exact curvature


@pytest.mark.parametrize("method", ["dense", "lanczos"])
@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_linear_regression_hessian_is_2_over_n_XtX(method, l2):
    X, y, _ = regression_data()
    model = ds.models.LinearRegression(l2=l2)
    params = {"W": np.full((5, 1), 0.2, dtype=np.float32), "b": np.zeros(1, dtype=np.float32)}
    d = diagnose(model, params, (X, y), method=method)
    Xt = with_ones(X)
    H = 2.0 / len(X) * Xt.T @ Xt + l2 * np.diag([1.0] * 5 + [0.0])
    check_spectrum(d, H)
    assert d.spectrum_method == method and d.hvp_method.startswith("exact")
    lam = np.linalg.eigvalsh(H)
    assert rel_err(d.condition_number, lam[-1] / lam[0]) <= RTOL
    assert rel_err(d.gd_rate, (d.condition_number - 1) / (d.condition_number + 1)) <= 1e-12


def test_logistic_regression_hessian_is_Xt_diag_p1p_X_over_n():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 6))
    y = (X[:, 0] - X[:, 1] + rng.normal(size=300) > 0).astype(int)
    params = {"W": rng.normal(size=(6, 1)), "b": np.array([0.3])}
    d = diagnose(ds.models.LogisticRegression(l2=0.1), params, (X, y))
    Xt = with_ones(X)
    p = 1 / (1 + np.exp(-(Xt @ np.r_[params["W"][:, 0], params["b"]])))
    H = Xt.T @ (Xt * (p * (1 - p))[:, None]) / len(X) + 0.1 * np.diag([1.0] * 6 + [0.0])
    check_spectrum(d, H)


def test_softmax_regression_hessian_is_the_kronecker_sum_of_diag_p_minus_ppT():
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(150, 3)), rng.integers(0, 3, 150)
    model = ds.models.SoftmaxRegression(dtype="float64")
    params = {"W": rng.normal(size=(3, 3)), "b": rng.normal(size=3)}
    d = diagnose(model, params, (X, y))
    Xt = with_ones(X)
    z = Xt @ np.vstack([params["W"], params["b"]])
    P = np.exp(z - z.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    H = sum(np.kron(np.outer(x, x), np.diag(p) - np.outer(p, p)) for x, p in zip(Xt, P, strict=True)) / len(X)
    # the model's params are W (3, 3) then b (3,), rows x class: the Kronecker order matches
    check_spectrum(d, H)


def test_lanczos_finds_the_top_eigenvalues_of_a_model_too_big_for_a_dense_hessian():
    d_features = DENSE_MAX_PARAMS + 100
    X, y, _ = regression_data(n=800, d=d_features)
    X[:, :3] *= [8.0, 5.0, 3.0]  # separated top eigenvalues, as a real spectrum's outliers are
    params = {"W": np.zeros((d_features, 1)), "b": np.zeros(1)}
    d = diagnose(ds.models.LinearRegression(), params, (X, y))
    assert d.spectrum_method == "lanczos"
    Xt = with_ones(X)
    lam = np.linalg.eigvalsh(2.0 / len(X) * Xt.T @ Xt)
    assert rel_err(d.hessian_top[:3], lam[::-1][:3]) <= RTOL
    # every Ritz value is within its residual bound of an eigenvalue, and inside the spectrum
    gaps = np.min(np.abs(d.hessian_top[:, None] - lam[None, :]), axis=1)
    assert np.all(gaps <= d.hessian_top_residual + 1e-9 * lam[-1])
    assert lam[0] - 1e-9 <= d.hessian_min and d.hessian_top[0] <= lam[-1] * (1 + 1e-12)
    # Hutchinson's trace within three of its standard errors
    assert 0 < d.hessian_trace_se and abs(d.hessian_trace - lam.sum()) <= 3 * d.hessian_trace_se


MODELS = [
    *(
        ds.models.MLP(hidden=(5, 3), activation=act, output=out, l2=0.1, dtype="float64")
        for act in ("relu", "sigmoid", "tanh", "leaky_relu")
        for out in ("regression", "binary", "softmax")
    ),
    ds.models.LinearRegression(l2=0.2, dtype="float64"),
    ds.models.LogisticRegression(dtype="float64", fit_intercept=False),
    ds.models.SoftmaxRegression(dtype="float64"),
]


@pytest.mark.parametrize("model", MODELS, ids=repr)
def test_model_hvp_and_per_sample_gradients_match_finite_differences_and_loops(model):
    rng = np.random.default_rng(11)
    X = rng.normal(size=(20, 4))
    y = {
        "regression": rng.normal(size=20),
        "binary": rng.integers(0, 2, 20),
        "multiclass": rng.integers(0, 3, 20),
    }[model.task]
    params = model.init(rng, 4, model.n_outputs(y))
    params = {k: v + 0.3 * rng.normal(size=v.shape) for k, v in params.items()}
    v = {k: rng.normal(size=a.shape) for k, a in params.items()}
    hv = model.hvp(params, X, y, v)
    h = 1e-5
    up = model.loss_and_grad({k: params[k] + h * v[k] for k in params}, X, y)[1]
    down = model.loss_and_grad({k: params[k] - h * v[k] for k in params}, X, y)[1]
    for k in params:
        fd = (up[k] - down[k]) / (2 * h)
        assert np.max(np.abs(hv[k] - fd)) <= 1e-7 * max(1.0, np.max(np.abs(fd)))
    data_model = ds.models.from_config({**model.config(), "l2": 0.0})
    per = model.per_sample_grads(params, X, y)
    sq = model.per_sample_sq_norms(params, X, y)
    for i in (0, 7):
        gi = data_model.loss_and_grad(params, X[i : i + 1], y[i : i + 1])[1]
        for k in params:
            assert np.allclose(per[k][i], gi[k], rtol=1e-12, atol=1e-14)
            assert np.isclose(sq[k][i], np.sum(gi[k] ** 2), rtol=1e-12, atol=1e-14)


def zoo_points():
    points = []
    for name in (
        "quadratic",
        "rosenbrock",
        "beale",
        "himmelblau",
        "rastrigin",
        "ackley",
        "goldstein_price",
        "six_hump_camel",
        "styblinski_tang",
        "saddle",
        "monkey_saddle",
        "two_well",
    ):
        f = ds.functions.get(name)
        rng = np.random.default_rng(len(name))
        lo, hi = np.array(f.domain).T
        for x in [f.start, *f.minima[:2], lo + (hi - lo) * rng.random(f.dim)]:
            points.append((name, np.asarray(x)))
    return points


@pytest.mark.parametrize(("name", "x"), zoo_points())
def test_test_functions_spectra_match_their_exact_hessians(name, x):
    f = ds.functions.get(name)
    H = f.hessian(x)
    if not np.all(np.isfinite(H)):  # Ackley's kink at its minimum
        with pytest.raises(ParameterError, match="twice differentiable"):
            diagnose(f, x)
        return
    d = diagnose(f, x)
    lam = np.linalg.eigvalsh(H)
    scale = max(abs(lam[0]), abs(lam[-1]), 1e-300)
    assert np.max(np.abs(d.hessian_top - lam[::-1])) <= RTOL * scale
    assert abs(d.hessian_min - lam[0]) <= RTOL * scale


def test_lanczos_with_full_reorthogonalization_is_exact_at_n_steps_and_slq_is_gauss_quadrature():
    rng = np.random.default_rng(3)
    A = rng.normal(size=(40, 40))
    H = A + A.T
    lam = np.linalg.eigvalsh(H)
    run = lanczos(lambda v: H @ v, rng.normal(size=40), 40)
    assert rel_err(run.theta, lam) <= 1e-10
    # m-step Lanczos from v integrates polynomials of degree <= 2m - 1 exactly: sum w theta^j = v' H^j v
    v = rademacher(rng, 40) / math.sqrt(40)
    small = lanczos(lambda u: H @ u, v, 6)
    for j in range(1, 12):
        exact = v @ np.linalg.matrix_power(H, j) @ v
        assert abs(np.sum(small.weights * small.theta**j) - exact) <= 1e-9 * np.sum(np.abs(lam) ** j) / 40
    density = spectral_density(lambda u: H @ u, 40, probes=4, steps=10, rng=rng)
    assert abs(density.weights.sum() - 1) < 1e-12 and np.all(np.diff(density.nodes) >= 0)
    assert lam[0] - 1e-9 <= density.nodes[0] and density.nodes[-1] <= lam[-1] + 1e-9


def test_hutchinson_standard_error_covers_the_trace_as_stated():
    rng = np.random.default_rng(4)
    A = rng.normal(size=(50, 50))
    H = A @ A.T / 50
    within = [
        abs((est := hutchinson(lambda v: H @ v, 50, 30, np.random.default_rng(s))).value - np.trace(H))
        <= 2 * est.standard_error
        for s in range(40)
    ]
    assert 0.85 <= np.mean(within) <= 1.0  # 95% nominal at 2 SE, 40 seeded trials


# ---------------------------------------------------------------------- gradient noise


def naive_noise(model, params, X, y):
    """B_simple from per-row gradients taken one row at a time (the penalty does not vary)."""
    data_model = ds.models.from_config({**model.config(), "l2": 0.0, "dtype": "float64"})
    model64 = ds.models.from_config({**model.config(), "dtype": "float64"})
    p64 = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    g = np.array(
        [
            np.concatenate(
                [v.ravel() for v in data_model.loss_and_grad(p64, X[i : i + 1], y[i : i + 1])[1].values()]
            )
            for i in range(len(X))
        ]
    )
    G = np.concatenate([v.ravel() for v in model64.loss_and_grad(p64, X, y)[1].values()])
    trace = np.sum(np.var(g, axis=0))  # population covariance over the rows
    return trace / (G @ G), trace


@pytest.mark.parametrize(
    "model",
    [
        ds.models.LinearRegression(l2=0.1),
        ds.models.LogisticRegression(),
        ds.models.MLP(hidden=(6, 4), activation="tanh", output="softmax", l2=0.01),
    ],
)
def test_b_simple_matches_per_sample_gradients_taken_one_row_at_a_time(model):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(120, 4))
    y = {
        "regression": X @ np.ones(4) + rng.normal(size=120),
        "binary": rng.integers(0, 2, 120),
        "multiclass": rng.integers(0, 3, 120),
    }[model.task]
    params = model.init(np.random.default_rng(0), 4, model.n_outputs(y))
    params = {k: v + 0.2 * rng.normal(size=v.shape) for k, v in params.items()}
    d = diagnose(model, params, (X, y), batch_size=8)
    b_simple, trace = naive_noise(model, params, X, y)
    assert d.noise_method.startswith("exact")
    assert rel_err(d.noise_scale, b_simple) <= 1e-9 and rel_err(d.grad_noise_trace, trace) <= 1e-9
    assert d.critical_batch_size == d.noise_scale
    assert set(d.layer_snr) == set(d.layer_grad_norms) and all(v > 0 for v in d.layer_snr.values())


class _NoHooks(ds.models.LinearRegression):
    """A model without exact curvature or per-sample hooks: diagnose falls back."""

    def _forward_r(self, *args):
        raise NotImplementedError

    def _per_sample_factors(self, *args):
        raise NotImplementedError


def test_a_model_without_hooks_gets_central_differences_and_the_two_batch_estimator():
    X, y, w = regression_data(n=400, noise=2.0)
    params = {"W": (w + 0.3)[:, None], "b": np.zeros(1)}
    exact = diagnose(ds.models.LinearRegression(), params, (X, y))
    fallback = diagnose(_NoHooks(), params, (X, y))
    assert fallback.hvp_method == "central difference of gradients"
    assert rel_err(fallback.hessian_top, exact.hessian_top) <= RTOL
    assert fallback.noise_method.startswith("two batch sizes")
    # the estimator is unbiased for tr(Sigma): with many repeats it lands close (here for W alone)
    model64 = ds.models.LinearRegression(dtype="float64")
    est = noise_two_batch(
        lambda idx: model64.loss_and_grad(params, X[idx], y[idx])[1]["W"].ravel(),
        len(X),
        small=4,
        big=64,
        repeats=400,
        rng=np.random.default_rng(0),
    )
    per_row = 2 * (X @ params["W"][:, 0] + params["b"][0] - y)[:, None] * X  # d(z_i - y_i)^2 / dW
    assert abs(est.trace - np.sum(np.var(per_row, axis=0))) <= 0.1 * np.sum(np.var(per_row, axis=0))
    G = per_row.mean(0)
    assert abs(est.grad_sq - G @ G) <= 0.1 * (G @ G) + 0.1 * np.sum(np.var(per_row, axis=0)) / 64


def test_noise_dominated_at_batch_one_on_a_noisy_problem_and_not_at_full_batch():
    X, y, w = regression_data(n=1000, noise=3.0)
    params = {"W": (w + 0.05)[:, None], "b": np.array([1.0])}
    model = ds.models.LinearRegression()
    assert "noise_dominated" in diagnose(model, params, (X, y), batch_size=1).flags
    assert "noise_dominated" not in diagnose(model, params, (X, y)).flags
    assert "noise_dominated" not in diagnose(model, params, (X, y), batch_size=1000).flags


# ---------------------------------------------------------------------- layers


def test_layer_gradient_norms_match_finite_differences():
    rng = np.random.default_rng(6)
    X, y = rng.normal(size=(50, 3)), rng.integers(0, 2, 50)
    model = ds.models.MLP(hidden=(5, 4), activation="tanh", output="binary", dtype="float64", l2=0.05)
    params = model.init(rng, 3, 1)
    d = diagnose(model, params, (X, y))
    h = 1e-6
    for i in range(3):
        sq = 0.0
        for key in (f"W{i}", f"b{i}"):
            for j in np.ndindex(params[key].shape):
                up = {k: v.copy() for k, v in params.items()}
                down = {k: v.copy() for k, v in params.items()}
                up[key][j] += h
                down[key][j] -= h
                sq += ((model.loss(up, X, y) - model.loss(down, X, y)) / (2 * h)) ** 2
        assert rel_err(d.layer_grad_norms[f"layer{i}"], math.sqrt(sq)) <= 1e-6
    assert list(d.layer_grad_norms) == ["layer0", "layer1", "layer2"]


@pytest.fixture(scope="module")
def deep_data():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(128, 16))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


@pytest.mark.parametrize("seed", [0, 1])
def test_ten_sigmoid_layers_with_small_init_vanish_and_relu_with_he_init_does_not(deep_data, seed):
    X, y = deep_data
    sig = ds.models.MLP(hidden=(24,) * 10, activation="sigmoid", init="normal", output="binary")
    relu = ds.models.MLP(hidden=(24,) * 10, activation="relu", init="he", output="binary")
    bad = diagnose(sig, sig.init(np.random.default_rng(seed), 16, 1), (X, y), seed=seed)
    good = diagnose(relu, relu.init(np.random.default_rng(seed), 16, 1), (X, y), seed=seed)
    assert "vanishing_gradients" in bad.flags and bad.grad_norm_ratio < 1e-10
    assert not {"vanishing_gradients", "exploding_gradients"} & good.flags
    row = next(v for v in bad.verdicts() if v.flag == "vanishing_gradients")
    assert "ReLU" in row.fix and "He/Xavier" in row.fix


def test_a_first_layer_gradient_far_above_the_last_flags_exploding_gradients():
    rng = np.random.default_rng(12)
    X = rng.normal(size=(64, 5))
    y = X[:, 0] - X[:, 1]
    model = ds.models.MLP(hidden=(8,), activation="tanh", output="regression")
    params = model.init(rng, 5, 1)
    # tiny hidden activations feed large output weights: the last layer's gradient (a^T delta,
    # with the output bias already at the mean target) is tiny, the first layer's is not
    params["W0"] *= 1e-6
    params["W1"] *= 10.0
    params["b1"][:] = y.mean()
    d = diagnose(model, params, (X, y))
    assert "exploding_gradients" in d.flags and d.grad_norm_ratio > 1e3
    assert "vanishing_gradients" not in d.flags


def test_all_equal_init_flags_symmetric_units_and_a_random_init_does_not():
    rng = np.random.default_rng(8)
    X, y = rng.normal(size=(64, 5)), rng.integers(0, 2, 64)
    model = ds.models.MLP(hidden=(8,), activation="tanh", output="binary")
    params = model.init(rng, 5, 1)
    equal = {k: np.full_like(v, 0.1) for k, v in params.items()}
    d = diagnose(model, equal, (X, y))
    assert "symmetric_units" in d.flags and d.duplicate_fraction == {"layer0": 1.0}
    assert "symmetric_units" not in diagnose(model, params, (X, y)).flags


def test_dead_relu_and_saturated_units_are_flagged():
    rng = np.random.default_rng(9)
    X, y = rng.normal(size=(64, 5)), rng.integers(0, 2, 64)
    relu = ds.models.MLP(hidden=(16,), activation="relu", output="binary")
    params = relu.init(rng, 5, 1)
    params["b0"][:8] = -50.0  # half the units never fire
    d = diagnose(relu, params, (X, y))
    assert "dead_relu" in d.flags and d.dead_fraction["layer0"] == 0.5
    tanh = ds.models.MLP(hidden=(16,), activation="tanh", output="binary")
    params = tanh.init(rng, 5, 1)
    assert "saturated_units" not in diagnose(tanh, params, (X, y)).flags
    params["W0"] *= 20.0
    assert "saturated_units" in diagnose(tanh, params, (X, y)).flags


# ---------------------------------------------------------------------- learning rate


def test_lr_above_two_over_lambda_max_is_flagged_and_momentum_raises_the_limit():
    X, y, w = regression_data()
    params = {"W": w[:, None], "b": np.ones(1)}
    model = ds.models.LinearRegression()
    lam = diagnose(model, params, (X, y)).hessian_top[0]
    assert "lr_above_stability" in diagnose(model, params, (X, y), lr=2.02 / lam).flags
    assert not diagnose(model, params, (X, y), lr=1.98 / lam).flags & {"lr_above_stability", "lr_too_small"}
    assert "lr_too_small" in diagnose(model, params, (X, y), lr=0.005 * 2 / lam).flags
    # heavy ball with beta = 0.9 is stable up to (2 + 2 beta) / lambda_max
    d = diagnose(model, params, (X, y), optimizer="momentum", lr=3.0 / lam)
    assert "lr_above_stability" not in d.flags and rel_err(d.lr_max, 3.8 / lam) <= 1e-12
    assert "lr_above_stability" in diagnose(model, params, (X, y), optimizer="momentum", lr=3.9 / lam).flags
    # adaptive rules have no such limit: no lr flag, and the verdict says why
    d = diagnose(model, params, (X, y), optimizer=ds.Adam(lr=10.0))
    assert d.lr_max is None and not d.flags & {"lr_above_stability", "lr_too_small"}
    assert any(v.threshold == "not defined by this rule" for v in d.verdicts())


@pytest.mark.parametrize(
    "opt",
    [ds.SGD(), ds.Momentum(momentum=0.9), ds.Nesterov(momentum=0.9), ds.SGD(momentum=0.5, dampening=0.5)],
)
def test_stability_constants_are_where_the_rules_start_to_diverge(opt):
    c = stability_constant(opt)
    lam = 4.0

    def final(factor):
        rule = ds.SGD(factor * c / lam, opt.momentum, opt.dampening, opt.nesterov)
        x = np.array([1.0])
        state = rule.init(x)
        for _ in range(3000):
            rule.step(x, lam * x, state)
            if abs(x[0]) > 1e6:
                break
        return abs(float(x[0]))

    assert final(0.97) < 1e-3 and final(1.03) > 1e3


def test_oscillation_and_update_ratio():
    quad = ds.functions.get("quadratic", kappa=10)
    smooth = ds.minimize(quad, quad.start, optimizer="sgd", lr=0.05, max_steps=60)
    bouncing = ds.minimize(quad, quad.start, optimizer="momentum", lr=0.15, max_steps=60)
    assert not oscillation(smooth.history.loss).oscillating
    assert oscillation(bouncing.history.loss).oscillating
    r = update_ratio({"W": np.ones(4), "b": np.zeros(2)}, {"W": np.ones(4) * 1.1, "b": np.zeros(2)})
    assert r["W"] == pytest.approx(0.1) and r["b"] == 0.0 and r["total"] == pytest.approx(0.1)


# ---------------------------------------------------------------------- saddles and plateaus


def test_saddle_flat_and_minimum_on_the_zoo():
    assert diagnose(ds.functions.get("saddle"), [0.0, 0.0]).critical_point == "saddle"
    monkey = diagnose(ds.functions.get("monkey_saddle"), [0.0, 0.0])
    assert monkey.critical_point == "flat" and "flat" in monkey.flags
    well = ds.functions.get("two_well")
    roots = np.sort(np.roots([4.0, 0.0, -4.0, 0.3]).real)  # f_x = 4x^3 - 4x + 0.3
    barrier = diagnose(well, [roots[1], 0.0])
    assert barrier.critical_point == "saddle" and "saddle" in barrier.flags
    for m in well.minima:
        d = diagnose(well, m)
        assert d.critical_point == "minimum" and not d.flags & {"saddle", "flat"}
    assert diagnose(well, well.start).critical_point is None  # not stationary
    row = next(v for v in barrier.verdicts() if v.flag == "saddle")
    assert "momentum" in row.fix


def test_an_mlp_at_a_symmetric_point_is_a_saddle_or_a_plateau():
    rng = np.random.default_rng(10)
    X = rng.normal(size=(80, 3))
    y = X[:, 0] * X[:, 1]
    y -= y.mean()  # the zero output bias is then optimal: the all-zero point is stationary
    shapes = ds.models.MLP(hidden=(4,), output="regression").init(rng, 3, 1)
    zeros = {k: np.zeros_like(v) for k, v in shapes.items()}
    tanh = diagnose(ds.models.MLP(hidden=(4,), activation="tanh", output="regression"), zeros, (X, y))
    assert tanh.critical_point == "saddle" and {"saddle", "symmetric_units"} <= tanh.flags
    relu = diagnose(ds.models.MLP(hidden=(4,), activation="relu", output="regression"), zeros, (X, y))
    assert relu.critical_point == "flat" and {"flat", "dead_relu"} <= relu.flags


# ---------------------------------------------------------------------- conditioning


def test_ill_conditioning_from_unscaled_features_is_flagged_with_the_notes_fix():
    X, y, w = regression_data()
    params = {"W": w[:, None], "b": np.ones(1)}
    model = ds.models.LinearRegression()
    d = diagnose(model, params, (X * [1, 1, 1, 30, 100], y))
    assert "ill_conditioned" in d.flags and d.feature_scale_ratio > 10
    row = next(v for v in d.verdicts() if v.flag == "ill_conditioned")
    assert "standardise" in row.fix
    Xs = (X - X.mean(0)) / X.std(0)
    assert "ill_conditioned" not in diagnose(model, params, (Xs, y)).flags
    # the quadratic with kappa 1e4: ill-conditioned for GD, and momentum's sqrt(kappa)/2 = 50 steps is not
    quad = ds.functions.get("quadratic", kappa=1e4)
    assert "ill_conditioned" in diagnose(quad, quad.start).flags
    d = diagnose(quad, quad.start, optimizer="momentum", lr=1e-4)
    assert "ill_conditioned" not in d.flags and d.condition_number == pytest.approx(1e4)


# ---------------------------------------------------------------------- a healthy run


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    sd = X.std(0)
    return (X - X.mean(0)) / np.where(sd > 0, sd, 1.0), y


def test_a_well_tuned_adam_run_on_standardized_digits_raises_no_flag(digits):
    X, y = digits
    run = ds.fit(
        ds.models.MLP(hidden=(32,)),
        (X, y),
        optimizer="adam",
        lr=3e-3,
        batch_size=128,
        epochs=5,
        seed=0,
        standardize=False,
        progress=False,
    )
    d = diagnose(run.model, run.params, (X, y), optimizer="adam", lr=3e-3, batch_size=128)
    assert d.flags == set(), str(d)
    assert d.spectrum_method == "lanczos" and d.n_params == 64 * 32 + 32 + 32 * 10 + 10
    assert d.hessian_top[0] > 0 and set(d.timings) >= {"gradient", "lanczos", "hutchinson", "noise"}
    assert abs(d.spectrum.weights.sum() - 1) < 1e-12


# ---------------------------------------------------------------------- inputs


def test_arrays_and_a_data_source_give_the_same_diagnosis():
    X, y, w = regression_data(n=300)
    params = {"W": w[:, None], "b": np.zeros(1)}
    a = diagnose(ds.models.LinearRegression(), params, (X, y), batch_size=4)
    b = diagnose("linear", params, ds.data.ArraySource(X, y), batch_size=4)
    assert a.probe_rows == b.probe_rows == 300
    assert rel_err(b.noise_scale, a.noise_scale) <= 1e-12 and rel_err(b.hessian_top, a.hessian_top) <= 1e-12
    sampled = diagnose("linear", params, (X, y), probe_rows=100)
    assert sampled.probe_rows == 100 and sampled.noise_scale != a.noise_scale


def test_any_objective_with_a_gradient():
    f = ds.functions.get("rosenbrock")
    x = np.array([-0.5, 0.7])
    exact = diagnose(f, x)
    by_grad = diagnose(lambda v: f(v), x, grad=f.grad)
    by_pair = diagnose(f.value_and_grad, x, grad=True)
    for d in (by_grad, by_pair):
        assert d.hvp_method == "central difference of gradients"
        assert rel_err(d.hessian_top, exact.hessian_top) <= 1e-6
    with pytest.raises(TypeError, match="diagnose: grad must be"):
        diagnose(lambda v: float(v @ v), x)


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (
            lambda: diagnose(ds.models.LinearRegression(), {"W": np.zeros((3, 1)), "b": np.zeros(1)}, None),
            "data",
        ),
        (
            lambda: diagnose(
                "linear", {"W": np.zeros((2, 1)), "b": np.zeros(1)}, (np.ones((4, 3)), np.ones(4))
            ),
            "params",
        ),
        (lambda: diagnose(ds.functions.get("saddle"), [0, 0], method="exact"), "method"),
        (lambda: diagnose(ds.functions.get("saddle"), [0, 0], lr=-1.0), "lr"),
        (
            lambda: diagnose("linear", {"W": np.zeros((3, 1))}, (np.ones((4, 3)), np.ones(4)), batch_size=0),
            "batch_size",
        ),
    ],
)
def test_bad_arguments_name_the_parameter(call, param):
    with pytest.raises((ParameterError, TypeError)) as info:
        call()
    assert f"diagnose: {param} must" in str(info.value)


def test_every_flag_has_a_verdict_with_a_fix_and_flags_are_known():
    seen = set()
    for d in (
        diagnose(ds.functions.get("saddle"), [0.0, 0.0], lr=2.0),
        diagnose(ds.functions.get("quadratic", kappa=1e4), [1.0, 1.0], lr=1e-9),
    ):
        assert d.flags <= set(FLAGS)
        for v in d.verdicts():
            assert v.threshold and v.meaning
            if v.flag:
                seen.add(v.flag)
                assert v.fix
        assert seen >= d.flags
        assert "!" in str(d) and d.to_dict()["flags"] == sorted(d.flags)
    assert LANCZOS_STEPS >= 20


def test_a_maximum_is_called_a_maximum_not_a_saddle():
    def hill(v):
        return -float(v @ v), -2.0 * v

    d = diagnose(hill, np.zeros(2), grad=True)
    assert d.critical_point == "maximum"
    assert "saddle" not in d.flags and "flat" not in d.flags
    assert diagnose(ds.functions.get("saddle"), [0.0, 0.0]).critical_point == "saddle"


def test_relu_gradients_blown_up_in_every_layer_alike_are_flagged_through_the_step_size(deep_data):
    """With ReLU and 4x He's weight scale every layer's gradient grows alike (the first/last ratio
    stays near 1), and one step at an ordinary lr moves the layers by more than their size."""
    X, y = deep_data
    model = ds.models.MLP(hidden=(32,) * 8, activation="relu", output="binary", dtype="float64")
    he = model.init(np.random.default_rng(0), X.shape[1], 1)
    big = {k: 4.0 * v if k.startswith("W") else v for k, v in he.items()}
    d_big = diagnose(model, big, (X, y), optimizer="sgd", lr=0.1)
    assert EXPLODING_RATIO >= d_big.grad_norm_ratio >= 1 / EXPLODING_RATIO
    assert "exploding_gradients" in d_big.flags
    row = next(v for v in d_big.verdicts() if v.measurement.startswith("largest lr x |g| / |w|"))
    assert row.value > 1.0 and row.flag == "exploding_gradients"
    d_he = diagnose(model, he, (X, y), optimizer="sgd", lr=0.1)
    assert "exploding_gradients" not in d_he.flags
