"""Models: analytic gradients against finite differences, losses against naive references, dtypes, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from descend import models
from descend.models import MLP, LinearRegression, LogisticRegression, Model, SoftmaxRegression

N, D = 7, 4  # a small batch


def make_data(model: Model, *, n: int = N, d: int = D, k: int = 3, seed: int = 0):
    """Random ``X`` and targets fitting ``model``'s task; ``k`` outputs (regression) or classes."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    if model.task == "regression":
        y = rng.normal(size=n) if k == 1 else rng.normal(size=(n, k))
    elif model.task == "binary":
        y = np.arange(n) % 2
    else:
        y = np.arange(n) % k
    return X, y


def random_params(model: Model, n_outputs: int, *, d: int = D, seed: int = 1, scale: float = 0.7):
    """Params of the right layout with every entry random (biases too), so every gradient is exercised."""
    rng = np.random.default_rng(seed)
    params = model.init(rng, d, n_outputs)
    return {key: (scale * rng.normal(size=p.shape)).astype(p.dtype) for key, p in params.items()}


def numeric_grad(model: Model, params, X, y, h: float = 1e-6):
    grads = {}
    for key, p in params.items():
        g = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + h
            up = model.loss(params, X, y)
            p[idx] = old - h
            down = model.loss(params, X, y)
            p[idx] = old
            g[idx] = (up - down) / (2 * h)
        grads[key] = g
    return grads


# id -> (factory for a float64 model, number of outputs)
GRAD_CASES = {
    "linear": (lambda: LinearRegression(dtype="float64"), 1),
    "linear-l2": (lambda: LinearRegression(l2=0.3, dtype="float64"), 1),
    "linear-multi-output": (lambda: LinearRegression(l2=0.1, dtype="float64"), 3),
    "linear-no-intercept": (lambda: LinearRegression(fit_intercept=False, dtype="float64"), 2),
    "logistic": (lambda: LogisticRegression(dtype="float64"), 1),
    "logistic-l2": (lambda: LogisticRegression(l2=0.5, dtype="float64"), 1),
    "logistic-no-intercept": (lambda: LogisticRegression(fit_intercept=False, dtype="float64"), 1),
    "softmax": (lambda: SoftmaxRegression(dtype="float64"), 3),
    "softmax-l2": (lambda: SoftmaxRegression(l2=0.2, dtype="float64"), 3),
    "softmax-no-intercept": (lambda: SoftmaxRegression(fit_intercept=False, dtype="float64"), 3),
    **{
        f"mlp-{act}-{out}": (
            lambda act=act, out=out: MLP((5, 3), activation=act, output=out, dtype="float64"),
            {"regression": 2, "binary": 1, "softmax": 3}[out],
        )
        for act in ("relu", "sigmoid", "tanh", "leaky_relu")
        for out in ("regression", "binary", "softmax")
    },
    **{
        f"mlp-init-{init}": (lambda init=init: MLP((6,), init=init, output="softmax", dtype="float64"), 3)
        for init in ("he", "xavier", "normal")
    },
    "mlp-l2": (lambda: MLP((4, 4), activation="tanh", output="binary", l2=0.7, dtype="float64"), 1),
    "mlp-leaky-slope": (
        lambda: MLP((5,), activation="leaky_relu", leaky_slope=0.3, output="regression", dtype="float64"),
        1,
    ),
    "mlp-deep": (lambda: MLP((3, 4, 3), activation="sigmoid", output="regression", dtype="float64"), 1),
}


@pytest.mark.parametrize("case", list(GRAD_CASES))
def test_gradient_matches_central_differences(case):
    factory, k = GRAD_CASES[case]
    model = factory()
    X, y = make_data(model, k=k)
    for params in (random_params(model, k), model.init(np.random.default_rng(2), D, k)):
        loss, grads = model.loss_and_grad(params, X, y)
        assert loss == pytest.approx(model.loss(params, X, y), rel=1e-14)
        assert list(grads) == list(params)
        numeric = numeric_grad(model, params, X, y)
        for key in params:
            assert grads[key].shape == params[key].shape and grads[key].dtype == np.float64
            scale = max(np.abs(numeric[key]).max(), 1e-3)
            np.testing.assert_allclose(grads[key], numeric[key], rtol=1e-6, atol=1e-6 * scale, err_msg=key)


def test_l2_penalises_weights_only():
    model = MLP((3,), output="binary", l2=2.0, dtype="float64")
    X, y = make_data(model)
    params = random_params(model, 1)
    plain = MLP((3,), output="binary", dtype="float64")
    loss, grads = model.loss_and_grad(params, X, y)
    loss0, grads0 = plain.loss_and_grad(params, X, y)
    penalty = 0.5 * 2.0 * sum(np.sum(params[k] ** 2) for k in ("W0", "W1"))
    assert loss == pytest.approx(loss0 + penalty, rel=1e-12)
    for key in params:
        expected = grads0[key] + 2.0 * params[key] if key.startswith("W") else grads0[key]
        np.testing.assert_allclose(grads[key], expected, rtol=1e-12)


# -- losses against naive references ------------------------------------------------------------


def naive_mse(Z, Y):
    Z, Y = np.atleast_2d(Z.T).T, np.atleast_2d(Y.T).T
    total = 0.0
    for i in range(Z.shape[0]):
        for j in range(Z.shape[1]):
            total += (Z[i, j] - Y[i, j]) ** 2
    return total / Z.size


def naive_log_loss(z, y):
    total = 0.0
    for zi, yi in zip(z, y, strict=True):
        p = 1.0 / (1.0 + math.exp(-zi))
        total -= yi * math.log(p) + (1 - yi) * math.log(1 - p)
    return total / len(z)


def naive_cross_entropy(Z, y):
    total = 0.0
    for zi, yi in zip(Z, y, strict=True):
        total -= math.log(math.exp(zi[yi]) / sum(math.exp(v) for v in zi))
    return total / len(y)


@pytest.mark.parametrize("k", [1, 3])
def test_linear_regression_loss_is_mse(k):
    model = LinearRegression(dtype="float64")
    X, y = make_data(model, k=k)
    params = random_params(model, k)
    Z = X @ params["W"] + params["b"]
    assert model.loss(params, X, y) == pytest.approx(naive_mse(Z, y), rel=1e-12)
    np.testing.assert_allclose(model.predict(params, X), Z[:, 0] if k == 1 else Z, rtol=1e-12)
    metrics = pytest.importorskip("sklearn.metrics")
    assert model.loss(params, X, y) == pytest.approx(metrics.mean_squared_error(y, model.predict(params, X)))


@pytest.mark.parametrize(
    "model", [LogisticRegression(dtype="float64"), MLP((4,), output="binary", dtype="float64")]
)
def test_binary_loss_is_log_loss(model):
    X, y = make_data(model)
    params = random_params(model, 1)
    z = model.decision_function(params, X)
    assert z.shape == (N,)
    assert model.loss(params, X, y) == pytest.approx(naive_log_loss(z, y), rel=1e-12)
    metrics = pytest.importorskip("sklearn.metrics")
    assert model.loss(params, X, y) == pytest.approx(metrics.log_loss(y, model.predict_proba(params, X)))


@pytest.mark.parametrize(
    "model", [SoftmaxRegression(dtype="float64"), MLP((4,), output="softmax", dtype="float64")]
)
def test_multiclass_loss_is_cross_entropy(model):
    X, y = make_data(model, k=3)
    params = random_params(model, 3)
    Z = model.decision_function(params, X)
    assert Z.shape == (N, 3)
    assert model.loss(params, X, y) == pytest.approx(naive_cross_entropy(Z, y), rel=1e-12)
    metrics = pytest.importorskip("sklearn.metrics")
    assert model.loss(params, X, y) == pytest.approx(metrics.log_loss(y, model.predict_proba(params, X)))


def test_mlp_forward_matches_explicit_layers():
    model = MLP((5, 3), activation="leaky_relu", leaky_slope=0.2, output="regression", dtype="float64")
    X, _ = make_data(model)
    p = random_params(model, 2)

    def leaky(z):
        return np.where(z > 0, z, 0.2 * z)

    h = leaky(X @ p["W0"] + p["b0"])
    h = leaky(h @ p["W1"] + p["b1"])
    np.testing.assert_allclose(model.predict(p, X), h @ p["W2"] + p["b2"], rtol=1e-12)


# -- stability ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_extreme_logits_give_finite_loss_and_grads(dtype):
    X = np.array([[1.0], [-1.0], [1.0], [-1.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        logistic = LogisticRegression(dtype=dtype)
        params = {"W": np.array([[1000.0]], dtype=dtype), "b": np.zeros(1, dtype=dtype)}
        # logits +-1000, half of them on the wrong side: loss = 1000 * 2 / 4
        loss, grads = logistic.loss_and_grad(params, X, np.array([1, 1, 0, 0]))
        assert loss == pytest.approx(500.0)
        np.testing.assert_allclose(grads["W"], [[0.5]])  # X^T (sigma(z) - y) / n = (1 + 1) / 4
        assert logistic.loss(params, X, np.array([1, 0, 1, 0])) == 0.0
        proba = logistic.predict_proba(params, X)
        np.testing.assert_array_equal(proba, [[0, 1], [1, 0], [0, 1], [1, 0]])

        softmax = SoftmaxRegression(dtype=dtype)
        params = {"W": np.array([[1000.0, -1000.0, 0.0]], dtype=dtype), "b": np.zeros(3, dtype=dtype)}
        loss, grads = softmax.loss_and_grad(params, X, np.array([1, 0, 2, 2]))
        assert loss == pytest.approx((2000 + 2000 + 1000 + 1000) / 4)
        assert all(np.isfinite(g).all() for g in grads.values())
        assert np.isfinite(softmax.predict_proba(params, X)).all()

        for act in ("sigmoid", "tanh", "relu", "leaky_relu"):
            for out in ("binary", "softmax"):
                mlp = MLP((3,), activation=act, output=out, dtype=dtype)
                params = random_params(mlp, 1 if out == "binary" else 3, d=1, scale=1000.0)
                loss, grads = mlp.loss_and_grad(params, X * 1000, np.array([0, 1, 1, 0]))
                assert math.isfinite(loss) and all(np.isfinite(g).all() for g in grads.values())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("label", [0, 1])
def test_binary_loss_and_gradient_are_relatively_accurate_at_any_logit(dtype, label):
    """Each sample's log-loss and its gradient sigma(z) - y are within |z| eps (relatively) of
    the exact values for either label, also where the sample is confidently right and both are
    tiny (e^-80), and exact far out."""
    from descend.models._losses import LOSSES

    bce = LOSSES["binary"]
    z = np.linspace(-80, 80, 4001, dtype=dtype)[:, None]
    y = np.full_like(z, label)
    n = len(z)
    loss, cache = bce.forward(z, y)
    grad = bce.backward(z, y, cache) * n
    zl = z.astype(np.longdouble)
    sign = 1 - 2 * label  # sigma(z) - y = sign * sigma(sign z), without cancellation
    exact_grad = sign / (1 + np.exp(-sign * zl))
    exact_per = np.log1p(np.exp(zl)) - label * zl if label == 0 else np.log1p(np.exp(-zl))
    bound = (np.abs(z) + 4) * np.finfo(dtype).eps
    assert grad.dtype == dtype
    assert np.all(np.abs(grad - exact_grad) <= bound * np.abs(exact_grad))
    assert loss == pytest.approx(float(np.mean(exact_per)), rel=8 * float(np.finfo(dtype).eps))
    per = cache[2]  # the per-sample losses the mean is taken over
    assert np.all(np.abs(per - exact_per) <= bound * exact_per)
    far = np.array([[-1e4], [1e4]], dtype=dtype)
    yf = np.full_like(far, label)
    loss, cache = bce.forward(far, yf)
    np.testing.assert_array_equal(bce.backward(far, yf, cache) * 2, [[0.0 - label], [1.0 - label]])
    assert loss == 5e3  # one sample right by 1e4 (loss 0), one wrong by 1e4


# -- dtypes ------------------------------------------------------------------------------------


ALL_KINDS = [
    (lambda dt: LinearRegression(l2=0.1, dtype=dt), 2),
    (lambda dt: LogisticRegression(l2=0.1, dtype=dt), 1),
    (lambda dt: SoftmaxRegression(l2=0.1, dtype=dt), 3),
    *[
        (lambda dt, a=a: MLP((4,), activation=a, output="softmax", l2=0.1, dtype=dt), 3)
        for a in ("relu", "sigmoid", "tanh", "leaky_relu")
    ],
    (lambda dt: MLP((4,), output="binary", dtype=dt), 1),
    (lambda dt: MLP((4,), output="regression", init="xavier", dtype=dt), 1),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", range(len(ALL_KINDS)))
def test_dtype_is_kept_end_to_end(kind, dtype):
    factory, k = ALL_KINDS[kind]
    model = factory(dtype)
    assert model.dtype == np.dtype(dtype)
    X, y = make_data(model, k=k)
    params = model.init(np.random.default_rng(0), D, k)
    assert all(p.dtype == np.dtype(dtype) for p in params.values())
    for X_in in (X.astype(dtype), X, X.astype(np.float32)):  # float64 data into a float32 model too
        loss, grads = model.loss_and_grad(params, X_in, y)
        assert type(loss) is float and type(model.loss(params, X_in, y)) is float
        assert all(g.dtype == np.dtype(dtype) for g in grads.values())
        assert model.decision_function(params, X_in).dtype == np.dtype(dtype)
        if model.task != "regression":
            assert model.predict_proba(params, X_in).dtype == np.dtype(dtype)
            assert model.predict(params, X_in).dtype == np.int64
        else:
            assert model.predict(params, X_in).dtype == np.dtype(dtype)


def test_dtype_accepts_numpy_types():
    assert LinearRegression(dtype=np.float64).dtype == np.float64
    assert MLP(dtype=np.dtype("float32")).dtype == np.float32


def test_float32_matches_float64():
    m32, m64 = (
        MLP((6,), activation="tanh", output="softmax"),
        MLP((6,), activation="tanh", output="softmax", dtype="float64"),
    )
    X, y = make_data(m32)
    p64 = random_params(m64, 3)
    p32 = {k: v.astype(np.float32) for k, v in p64.items()}
    l32, g32 = m32.loss_and_grad(p32, X, y)
    l64, g64 = m64.loss_and_grad(p64, X, y)
    assert l32 == pytest.approx(l64, rel=1e-5)
    for key in p64:
        np.testing.assert_allclose(g32[key], g64[key], rtol=1e-4, atol=1e-6)


# -- predictions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "k"),
    [
        (LogisticRegression(), 1),
        (SoftmaxRegression(), 4),
        (MLP((5,), output="binary"), 1),
        (MLP((5,), output="softmax"), 4),
    ],
)
def test_classifier_predictions_are_consistent(model, k):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, D))
    params = random_params(model, k, scale=2.0)
    proba = model.predict_proba(params, X)
    labels = model.predict(params, X)
    n_classes = 2 if model.task == "binary" else k
    assert proba.shape == (50, n_classes) and labels.shape == (50,)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert (proba >= 0).all() and (proba <= 1).all()
    np.testing.assert_array_equal(labels, proba.argmax(axis=1))
    assert len(np.unique(labels)) > 1  # the check above is not vacuous
    scores = model.decision_function(params, X)
    assert scores.shape == ((50,) if model.task == "binary" else (50, k))


def test_regression_prediction_shapes_and_no_proba():
    model = LinearRegression()
    X = np.ones((6, D))
    assert model.predict(model.init(np.random.default_rng(0), D, 1), X).shape == (6,)
    params = model.init(np.random.default_rng(0), D, 3)
    assert model.predict(params, X).shape == (6, 3)
    with pytest.raises(
        AttributeError, match="LinearRegression: predict_proba is only available for classifiers"
    ):
        model.predict_proba(params, X)
    with pytest.raises(AttributeError, match="MLP: predict_proba"):
        MLP((2,), output="regression").predict_proba(
            MLP((2,), output="regression").init(np.random.default_rng(0), D, 1), X
        )


def test_predict_on_empty_batch():
    model = SoftmaxRegression()
    params = model.init(np.random.default_rng(0), D, 3)
    assert model.predict(params, np.zeros((0, D))).shape == (0,)
    assert model.predict_proba(params, np.zeros((0, D))).shape == (0, 3)


# -- targets -----------------------------------------------------------------------------------


def test_n_outputs():
    assert LinearRegression().n_outputs(np.zeros(5)) == 1
    assert LinearRegression().n_outputs(np.zeros((5, 3))) == 3
    assert LogisticRegression().n_outputs([0, 1, 1]) == 1
    assert SoftmaxRegression().n_outputs([0, 4, 2]) == 5
    assert MLP(output="softmax").n_outputs([0.0, 2.0]) == 3
    assert MLP(output="binary").n_outputs([True, False]) == 1


def test_check_targets_converts():
    y = LogisticRegression().check_targets([[0], [1], [1.0]])
    assert y.dtype == np.float32 and y.shape == (3,)
    y = SoftmaxRegression().check_targets(np.array([0.0, 2.0, 1.0]))
    assert y.dtype == np.int64 and y.tolist() == [0, 2, 1]
    y = LinearRegression(dtype="float64").check_targets(np.array([1, 2]))
    assert y.dtype == np.float64
    assert LinearRegression().check_targets(np.zeros((4, 2)), n_outputs=2).shape == (4, 2)


@pytest.mark.parametrize(
    ("model", "y", "n_outputs", "message"),
    [
        (
            LogisticRegression(),
            [0, 1] * 8 + [1, 2],
            None,
            "LogisticRegression: labels must be 0 or 1, got 2 at row 17",
        ),
        (LogisticRegression(), [0.0, 0.5], None, "labels must be 0 or 1, got 0.5 at row 1"),
        (MLP(output="binary"), [0, np.nan], None, "MLP: labels must be 0 or 1, got nan at row 1"),
        (
            SoftmaxRegression(),
            [0, 1, 2, -1],
            None,
            "SoftmaxRegression: labels must be integers 0..K-1, got -1 at row 3",
        ),
        (
            SoftmaxRegression(),
            [0, 1, 3.5, 1],
            None,
            "SoftmaxRegression: labels must be integers 0..K-1, got 3.5 at row 2",
        ),
        (SoftmaxRegression(), [0, np.inf], None, "got inf at row 1"),
        (SoftmaxRegression(), [0, 1, 3], 3, "labels must be integers 0..2 (n_outputs=3), got 3 at row 2"),
        (
            LinearRegression(),
            [1.0, 2.0, np.nan],
            None,
            "LinearRegression: targets must be finite float32 values, got nan at row 2",
        ),
        (LinearRegression(), [[1.0, 2.0], [np.inf, 0.0]], None, "got inf at row 1, column 0"),
        (LinearRegression(), [1e300], None, "targets must be finite float32 values, got 1e+300 at row 0"),
        (
            LinearRegression(),
            np.zeros((3, 2)),
            3,
            "targets have 2 output(s) (shape (3, 2)), expected n_outputs=3",
        ),
        (LinearRegression(), np.zeros((3, 2, 1)), None, "targets must be 1-D (n_samples,) or 2-D"),
        (
            SoftmaxRegression(),
            np.zeros((3, 2)),
            None,
            "labels must be a 1-D array (n_samples,), got shape (3, 2)",
        ),
        (SoftmaxRegression(), ["a", "b"], None, "labels must be numbers, got an array of dtype <U1"),
        (LinearRegression(), [], None, "LinearRegression: targets are empty"),
        (LogisticRegression(), [0, 1], 2, "a binary model has n_outputs=1, got n_outputs=2"),
    ],
)
def test_check_targets_errors(model, y, n_outputs, message):
    with pytest.raises(ValueError) as info:
        model.check_targets(y, n_outputs)
    assert message in str(info.value)


def test_n_outputs_validates_targets():
    with pytest.raises(
        ValueError, match=r"SoftmaxRegression: labels must be integers 0\.\.K-1, got -2 at row 0"
    ):
        SoftmaxRegression().n_outputs([-2, 1])


def test_bad_batch_targets_are_caught_in_loss_and_grad():
    model = SoftmaxRegression()
    params = model.init(np.random.default_rng(0), D, 3)
    X = np.zeros((3, D))
    with pytest.raises(ValueError, match=r"labels must be integers 0\.\.2 \(n_outputs=3\), got 3 at row 1"):
        model.loss_and_grad(params, X, [0, 3, 1])
    with pytest.raises(ValueError, match="got -1 at row 2"):
        model.loss_and_grad(params, X, np.array([0, 1, -1]))
    assert model.loss(params, X, np.array([0.0, 2.0, 1.0])) == pytest.approx(math.log(3))
    with pytest.raises(
        ValueError, match=r"SoftmaxRegression: y must have one row per row of X \(3\), got shape \(2,\)"
    ):
        model.loss_and_grad(params, X, [0, 1])
    reg = LinearRegression()
    params = reg.init(np.random.default_rng(0), D, 2)
    with pytest.raises(ValueError, match=r"LinearRegression: y must have shape \(3, 2\), got \(3,\)"):
        reg.loss_and_grad(params, X, np.zeros(3))


# -- input checks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model", [LinearRegression(), LogisticRegression(), SoftmaxRegression(), MLP((3,), output="regression")]
)
def test_X_shape_errors_name_the_model(model):
    params = model.init(np.random.default_rng(0), 4, 1)
    name = type(model).__name__
    first = "W0" if name == "MLP" else "W"
    for call in (
        lambda X: model.loss_and_grad(params, X, np.zeros(len(X))),
        lambda X: model.predict(params, X),
        lambda X: model.decision_function(params, X),
    ):
        with pytest.raises(
            ValueError, match=rf"{name}: X has 3 features, but the params were made for 4 \({first} has shape"
        ):
            call(np.zeros((2, 3)))
        with pytest.raises(
            ValueError, match=rf"{name}: X must be 2-D \(n_samples, n_features\), got shape \(4,\)"
        ):
            call(np.zeros(4))
    with pytest.raises(ValueError, match=f"{name}: X has no rows"):
        model.loss_and_grad(params, np.zeros((0, 4)), np.zeros(0))


def test_init_argument_errors():
    with pytest.raises(TypeError, match=r"MLP.init: rng must be a numpy.random.Generator .*got 0"):
        MLP(output="regression").init(0, 3, 1)
    with pytest.raises(
        ValueError, match=r"LinearRegression\.init: n_features must satisfy n_features >= 1, got 0"
    ):
        LinearRegression().init(np.random.default_rng(0), 0, 1)
    with pytest.raises(TypeError, match=r"n_outputs must be an integer, got 1.0"):
        LinearRegression().init(np.random.default_rng(0), 2, 1.0)
    with pytest.raises(ValueError, match=r"LogisticRegression\.init: a binary model has n_outputs=1, got 2"):
        LogisticRegression().init(np.random.default_rng(0), 2, 2)


# -- construction ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (
            lambda: MLP(activation="gelu"),
            ValueError,
            "MLP: activation must be one of 'relu', 'sigmoid', 'tanh', 'leaky_relu', got 'gelu' (str)",
        ),
        (
            lambda: MLP(init="zeros"),
            ValueError,
            "MLP: init must be one of 'he', 'xavier', 'normal', got 'zeros' (str)",
        ),
        (
            lambda: MLP(output="multiclass"),
            ValueError,
            "MLP: output must be one of 'regression', 'binary', 'softmax', got 'multiclass'",
        ),
        (
            lambda: MLP(hidden=()),
            ValueError,
            "MLP: hidden must be a non-empty tuple of positive ints, got () (tuple)",
        ),
        (
            lambda: MLP(hidden=(4, 0)),
            ValueError,
            "MLP: hidden must be a non-empty tuple of positive ints, got (4, 0)",
        ),
        (lambda: MLP(hidden=(4.0,)), TypeError, "MLP: hidden must be a non-empty tuple of positive ints"),
        (lambda: MLP(hidden=(True,)), TypeError, "MLP: hidden must be a non-empty tuple of positive ints"),
        (
            lambda: MLP(hidden="64"),
            TypeError,
            "MLP: hidden must be a non-empty tuple of positive ints, got '64' (str)",
        ),
        (lambda: MLP(l2=-0.1), ValueError, "MLP: l2 must satisfy l2 >= 0 (finite), got -0.1"),
        (
            lambda: MLP(leaky_slope=1.0),
            ValueError,
            "MLP: leaky_slope must satisfy 0 <= leaky_slope < 1, got 1.0",
        ),
        (
            lambda: MLP(dtype="float16"),
            ValueError,
            "MLP: dtype must be one of 'float32', 'float64', got 'float16'",
        ),
        (
            lambda: LinearRegression(l2=float("nan")),
            ValueError,
            "LinearRegression: l2 must satisfy l2 >= 0 (finite), got nan",
        ),
        (
            lambda: LogisticRegression(l2="0.1"),
            TypeError,
            "LogisticRegression: l2 must be a real number, got '0.1' (str)",
        ),
        (
            lambda: SoftmaxRegression(fit_intercept=1),
            TypeError,
            "SoftmaxRegression: fit_intercept must be True or False, got 1",
        ),
        (
            lambda: LinearRegression(dtype="int32"),
            ValueError,
            "LinearRegression: dtype must be one of 'float32', 'float64', got 'int32'",
        ),
    ],
)
def test_constructor_validation(build, error, message):
    with pytest.raises(error) as info:
        build()
    assert message in str(info.value)


def test_hidden_accepts_list_and_int():
    assert MLP(hidden=[8, 4]).hidden == (8, 4)
    assert MLP(hidden=16).hidden == (16,)
    assert MLP(hidden=(np.int64(3),)).hidden == (3,)


def test_attributes_config_repr_and_registry():
    assert models.names() == ["linear_regression", "logistic_regression", "softmax_regression", "mlp"]
    expected = {
        "linear_regression": (LinearRegression, "regression"),
        "logistic_regression": (LogisticRegression, "binary"),
        "softmax_regression": (SoftmaxRegression, "multiclass"),
        "mlp": (MLP, "unresolved"),  # output=None: fit chooses it from the targets
    }
    for name, (cls, task) in expected.items():
        model = models.get(name)
        assert type(model) is cls and model.name == name and model.task == task
        assert model.dtype == np.float32
    assert [MLP(output=o).task for o in ("regression", "binary", "softmax")] == [
        "regression",
        "binary",
        "multiclass",
    ]
    model = MLP((8, 2), activation="tanh", init="xavier", output="softmax", l2=0.01, dtype="float64")
    config = json.loads(json.dumps(model.config()))
    assert config == {
        "model": "mlp", "hidden": [8, 2], "activation": "tanh", "init": "xavier", "output": "softmax",
        "l2": 0.01, "dtype": "float64", "leaky_slope": 0.01,
    }  # fmt: skip
    rebuilt = models.from_config(config)
    assert rebuilt.config() == model.config() and repr(rebuilt) == repr(model)
    assert repr(model) == (
        "MLP(hidden=(8, 2), activation='tanh', init='xavier', output='softmax', l2=0.01, dtype='float64', "
        "leaky_slope=0.01)"
    )
    assert (
        repr(LinearRegression(fit_intercept=False))
        == "LinearRegression(l2=0.0, fit_intercept=False, dtype='float32')"
    )
    assert models.get("Softmax-Regression", l2=0.5).l2 == 0.5
    with pytest.raises(ValueError, match=r"models\.get: unknown model 'svm'; known: linear_regression, "):
        models.get("svm")
    with pytest.raises(
        TypeError,
        match=r"models\.get: 'logistic_regression' takes parameters 'l2', 'fit_intercept', 'dtype', "
        r"got 'hidden'",
    ):
        models.get("logistic_regression", hidden=(3,))


# -- initialisation ----------------------------------------------------------------------------


def test_init_schemes_have_the_documented_spread():
    fan_in, fan_out = 300, 200
    rng = np.random.default_rng(0)
    he = MLP((fan_out,), init="he", output="regression").init(rng, fan_in, 1)
    xavier = MLP((fan_out,), init="xavier", output="regression").init(rng, fan_in, 1)
    normal = MLP((fan_out,), init="normal", output="regression").init(rng, fan_in, 1)
    assert he["W0"].std() == pytest.approx(math.sqrt(2 / fan_in), rel=0.02)
    assert he["W1"].shape == (fan_out, 1)
    limit = math.sqrt(6 / (fan_in + fan_out))
    assert np.abs(xavier["W0"]).max() <= limit and np.abs(xavier["W0"]).max() > 0.99 * limit
    assert xavier["W0"].std() == pytest.approx(limit / math.sqrt(3), rel=0.02)
    assert abs(xavier["W0"].mean()) < 0.01 * limit
    assert normal["W0"].std() == pytest.approx(0.01, rel=0.02)
    for params in (he, xavier, normal):
        assert not params["b0"].any() and not params["b1"].any()
    # the draw depends on the seed only
    again = MLP((fan_out,), init="he", output="regression").init(np.random.default_rng(5), fan_in, 1)
    np.testing.assert_array_equal(
        again["W0"],
        MLP((fan_out,), init="he", output="regression").init(np.random.default_rng(5), fan_in, 1)["W0"],
    )


def test_linear_models_start_at_zero():
    params = SoftmaxRegression().init(np.random.default_rng(0), 3, 4)
    assert params["W"].shape == (3, 4) and params["b"].shape == (4,)
    assert not params["W"].any() and not params["b"].any()
    assert list(LinearRegression(fit_intercept=False).init(np.random.default_rng(0), 3, 1)) == ["W"]


# -- a quick fit -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "lr"),
    [
        (LinearRegression(), 0.1),
        (LogisticRegression(l2=1e-3), 0.5),
        (SoftmaxRegression(), 0.5),
        (MLP((16,), activation="tanh", output="regression"), 0.1),
        (MLP((16,), activation="relu", output="binary"), 0.5),
        (MLP((16, 8), activation="leaky_relu", output="softmax", init="xavier"), 0.5),
        (MLP((16,), activation="sigmoid", output="softmax"), 1.0),
    ],
)
def test_gradient_descent_fits(model, lr):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)).astype(np.float32)
    if model.task == "regression":
        y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.05 * rng.normal(size=200)
    elif model.task == "binary":
        y = (
            (X[:, 0] * X[:, 1] > 0).astype(int)
            if isinstance(model, MLP)
            else (X[:, 0] - X[:, 2] > 0).astype(int)
        )
    else:
        y = np.digitize(X[:, 0] + X[:, 1], [-0.7, 0.7])
    y = model.check_targets(y)
    params = model.init(rng, 3, model.n_outputs(y))
    losses = []
    for _ in range(300):
        loss, grads = model.loss_and_grad(params, X, y)
        losses.append(loss)
        for key in params:
            params[key] -= lr * grads[key]
    first, final = losses[0], model.loss(params, X, y)
    assert all(p.dtype == np.float32 for p in params.values())
    assert final < 0.5 * first
    if model.task == "regression":
        assert final < 0.05, final
    else:
        assert (model.predict(params, X) == y).mean() > 0.9, (model.predict(params, X) == y).mean()


def test_mlp_output_none_is_chosen_by_fit_from_the_targets():
    import descend as ds

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    labels = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0).astype(int)  # 0, 1, 2
    run = ds.fit(MLP((8,)), (X, labels), epochs=2, progress=False)
    assert run.model.output == "softmax" and "3 distinct integer labels" in run.notes[0]
    assert set(run.predict(X).tolist()) <= {0, 1, 2}
    run = ds.fit(MLP((8,)), (X, np.where(X[:, 0] > 0, "yes", "no")), epochs=1, progress=False)
    assert run.model.output == "binary" and run.predict(X[:3]).dtype.kind == "U"
    run = ds.fit(MLP((8,)), (X, X[:, 0] * 2.5), epochs=1, progress=False)
    assert run.model.output == "regression"
    with pytest.raises(ValueError, match=r"MLP\(output=None\) cannot choose its output .* 200 distinct"):
        ds.fit(MLP((8,)), (X, np.arange(200)), epochs=1, progress=False)
    with pytest.raises(ValueError, match="output=None is chosen by fit"):
        MLP((8,)).init(rng, 4, 1)
