"""descend's update rules against the independent scalar references of ``tests/reference.py``."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import descend as ds

try:
    from . import reference as ref
    from .optim_registry import STEPPED, inverse_time
except ImportError:  # tests/ is not a package: pytest puts this folder on sys.path
    import reference as ref
    from optim_registry import STEPPED, inverse_time

STEPS = 120
RTOL = 1e-12
H = np.array([0.5, 1.0, 2.0, 3.0, 0.2])  # curvatures of the quadratic part
TARGET = np.array([1.0, -2.0, 0.5, 3.0, -1.0])
X0 = np.array([0.3, 0.7, -1.2, 2.0, 0.05])


def noisy_quadratic_grad(
    x: np.ndarray, k: int, noise: np.ndarray, sign: float, h: np.ndarray = H, target: np.ndarray = TARGET
) -> np.ndarray:
    """Gradient of sign * (0.5 (x - c)^T H (x - c)) plus a fixed seeded noise vector for step k.

    With ``maximize`` the objective is flipped (sign = -1), so ascent converges too.
    """
    return sign * h * (x - target) + noise[k]


def problem(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Curvatures, target and start of the quadratic for parameters of ``shape``: the vector
    above, or seeded draws of that shape (for rules compared on matrices)."""
    if shape == X0.shape:
        return H, TARGET, X0
    rng = np.random.default_rng(list(shape))
    return rng.uniform(0.2, 3.0, shape), rng.normal(size=shape), rng.normal(size=shape)


def assert_close(got: np.ndarray, want: list[float], step: int, what: str = "params") -> None:
    want_arr = np.asarray(want, dtype=np.float64)
    err = np.abs(got - want_arr) / np.maximum(1.0, np.abs(want_arr))
    assert err.max() <= RTOL, (
        f"{what} differ from the reference after step {step}: max relative error {err.max():.3g}\n"
        f"descend:   {got.tolist()}\nreference: {want_arr.tolist()}"
    )


def run_against_reference(
    opt: ds.Optimizer, reference: ref.Reference, *, maximize: bool, shape: tuple[int, ...] = X0.shape
) -> None:
    """Feed both the same gradients for STEPS steps; compare the parameters after every step."""
    h, target, x0 = problem(shape)
    noise = 0.3 * np.random.default_rng(0).standard_normal((STEPS, *shape))
    sign = -1.0 if maximize else 1.0
    x = x0.copy()
    x_ref = x0.tolist()
    state = opt.init(x)
    moved = 0.0
    for k in range(STEPS):
        g = noisy_quadratic_grad(x, k, noise, sign, h, target)
        before = x.copy()
        opt.step(x, g, state)
        x_ref = reference.step(x_ref, g.tolist())
        moved = max(moved, float(np.abs(x - before).max()))
        assert_close(x, x_ref, k + 1)
    assert state.step == STEPS
    assert moved > 1e-4, "the parameters hardly moved: the comparison would prove nothing"


# every rule descend registers, at each of its reference settings in tests/optim_registry.py;
# test_registry.py checks that REGISTRY and reference.REFERENCES name exactly those rules
# (and on each of the shapes the entry names: a vector unless the rule mixes a leaf's elements)
CASES = [
    pytest.param(
        info.name,
        kwargs,
        shape,
        id=f"{info.name}-{case}" + ("" if shape == X0.shape else "-" + "x".join(map(str, shape))),
    )
    for info in STEPPED
    for case, kwargs in info.reference.items()
    for shape in info.shapes
]


@pytest.mark.parametrize(("name", "kwargs", "shape"), CASES)
def test_matches_reference(name, kwargs, shape):
    opt = ds.optimizer(name, **kwargs)
    reference = ref.REFERENCES[name](**kwargs)
    run_against_reference(opt, reference, maximize=kwargs.get("maximize", False), shape=shape)


def test_every_rule_is_compared_with_its_reference():
    compared = {c.values[0] for c in CASES}
    assert compared == {info.name for info in STEPPED}
    assert set(ds.optim.names()) == set(ref.REFERENCES), (
        f"compared: {sorted(compared)}; registered: {ds.optim.names()}; references: {sorted(ref.REFERENCES)}"
    )


# PyTorch's documented defaults (torch.optim, 2.x), written out rather than read from anywhere.
TORCH_DEFAULTS = {
    ds.SGD: {"lr": 1e-3, "momentum": 0.0, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0},
    ds.AdaGrad: {"lr": 1e-2, "lr_decay": 0.0, "weight_decay": 0.0, "initial_accumulator": 0.0, "eps": 1e-10},
    ds.RMSprop: {
        "lr": 1e-2,
        "alpha": 0.99,
        "eps": 1e-8,
        "weight_decay": 0.0,
        "momentum": 0.0,
        "centered": False,
    },
    ds.Adam: {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False},
    ds.AdamW: {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-2, "amsgrad": False},
    ds.Nadam: {
        "lr": 2e-3,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.0,
        "momentum_decay": 4e-3,
        "decoupled_weight_decay": False,
    },
    ds.Adamax: {"lr": 2e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0},
    ds.AdaDelta: {"lr": 1.0, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.0},
    ds.Adafactor: {"lr": 1e-2, "beta2_decay": -0.8, "eps": (None, 1e-3), "d": 1.0, "weight_decay": 0.0},
    ds.Muon: {
        "lr": 1e-3,
        "weight_decay": 0.1,
        "momentum": 0.95,
        "nesterov": True,
        "ns_coefficients": (3.4445, -4.7750, 2.0315),
        "eps": 1e-7,
        "ns_steps": 5,
        "adjust_lr_fn": None,
    },
    ds.RAdam: {
        "lr": 1e-3,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.0,
        "decoupled_weight_decay": False,
    },
    ds.Rprop: {"lr": 1e-2, "etas": (0.5, 1.2), "step_sizes": (1e-6, 50)},  # torch's Rprop: no weight_decay
    ds.ASGD: {"lr": 1e-2, "lambd": 1e-4, "alpha": 0.75, "t0": 1e6, "weight_decay": 0.0},
}


@pytest.mark.parametrize("cls", list(TORCH_DEFAULTS), ids=lambda c: c.__name__)
def test_defaults_are_pytorchs(cls):
    expected = {**TORCH_DEFAULTS[cls], "maximize": False}
    signature = inspect.signature(cls).parameters
    opt = cls()
    for name, value in expected.items():
        assert name in signature, f"{cls.__name__} has no parameter {name!r}"
        if name == "weight_decay":  # Adam/AdamW may use None for "the class's default"
            assert opt.weight_decay == value, f"{cls.__name__}: weight_decay defaults to {opt.weight_decay}"
        else:
            default = signature[name].default
            assert default == value and type(default) is type(value), (
                f"{cls.__name__}: {name} defaults to {default!r}, PyTorch uses {value!r}"
            )
    # ... and the defaults behave as PyTorch's: same trajectory as the reference given them.
    run_against_reference(opt, ref.REFERENCES[cls.name](**expected), maximize=False)


@pytest.mark.parametrize("t0", [0.0, 10.0, 1e6])
def test_asgd_average_matches_reference(t0):
    """ASGD's averaged iterate, state["ax"], follows the reference's average of each coordinate
    (before, at and long after t0), and eta and mu are the reference's step-wide numbers."""
    kwargs = {"lr": 0.05, "lambd": 0.01, "alpha": 0.6, "t0": t0, "weight_decay": 0.02}
    opt, reference = ds.ASGD(**kwargs), ref.ASGD(**kwargs)
    params = {"W": X0[:4].reshape(2, 2).copy(), "b": X0[4:].copy()}
    noise = 0.3 * np.random.default_rng(3).standard_normal((STEPS, X0.size))
    state = opt.init(params)
    x_ref = X0.tolist()
    for k in range(STEPS):
        g = H * (_flat(params) - TARGET) + noise[k]
        opt.step(params, {"W": g[:4].reshape(2, 2), "b": g[4:]}, state)
        x_ref = reference.step(x_ref, g.tolist())
        assert_close(_flat(params), x_ref, k + 1)
        assert_close(_flat(state["ax"]), [s["ax"] for s in reference.states], k + 1, what="state['ax']")
        scalars = np.array([state.scalars["eta"], state.scalars["mu"]])
        assert_close(scalars, [reference.eta, reference.mu], k + 1, what="eta and mu")
    averaged = np.abs(_flat(state["ax"]) - _flat(params)).max()
    assert (averaged > 1e-3) == (t0 < STEPS), "the average differs from the iterate once it runs"


def test_alias_defaults():
    # Momentum and Nesterov are descend's readable names for SGD with momentum 0.9.
    for cls in (ds.Momentum, ds.Nesterov):
        signature = inspect.signature(cls).parameters
        assert signature["momentum"].default == 0.9
        assert signature["weight_decay"].default == 0.0
        assert signature["maximize"].default is False
    assert inspect.signature(ds.Momentum).parameters["dampening"].default == 0.0


def _flat(tree: dict[str, np.ndarray]) -> np.ndarray:
    return np.concatenate([leaf.ravel() for leaf in tree.values()])


@pytest.mark.parametrize(
    ("opt", "reference"),
    [
        (
            ds.Adam(lr=0.05, amsgrad=True, weight_decay=0.01),
            ref.Adam(lr=0.05, amsgrad=True, weight_decay=0.01),
        ),
        (
            ds.SGD(lr=0.02, momentum=0.9, nesterov=True),
            ref.SGD(lr=0.02, momentum=0.9, nesterov=True),
        ),
        (ds.RMSprop(lr=0.01, centered=True, momentum=0.3), ref.RMSprop(lr=0.01, centered=True, momentum=0.3)),
        (
            ds.Nadam(lr=inverse_time, weight_decay=0.1, decoupled_weight_decay=True),
            ref.Nadam(lr=inverse_time, weight_decay=0.1, decoupled_weight_decay=True),
        ),
    ],
    ids=["adam-amsgrad", "nesterov", "rmsprop-centered", "nadam-decoupled"],
)
def test_dict_params_match_reference(opt, reference):
    """A dict of arrays of different shapes: every coordinate follows its scalar reference."""
    rng = np.random.default_rng(1)
    params = {"W": rng.standard_normal((2, 3)), "b": rng.standard_normal(3)}
    target = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    noise = [{k: 0.3 * rng.standard_normal(v.shape) for k, v in params.items()} for _ in range(STEPS)]
    x0 = _flat(params)
    x_ref = x0.tolist()
    state = opt.init(params)
    for k in range(STEPS):
        grads = {name: 2.0 * (params[name] - target[name]) + noise[k][name] for name in params}
        opt.step(params, grads, state)
        x_ref = reference.step(x_ref, _flat(grads).tolist())
        assert_close(_flat(params), x_ref, k + 1)
    assert state.step == STEPS
    assert np.abs(_flat(params) - x0).min() > 1e-3, "every coordinate should have moved"


ZERO_D_CASES = [
    ("sgd-nesterov", ds.SGD, ref.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("adagrad", ds.AdaGrad, ref.AdaGrad, {"lr": 0.3}),
    ("rmsprop-momentum", ds.RMSprop, ref.RMSprop, {"lr": 0.01, "momentum": 0.5}),
    ("rmsprop-centered", ds.RMSprop, ref.RMSprop, {"lr": 0.01, "centered": True}),
    ("adam-amsgrad", ds.Adam, ref.Adam, {"lr": 0.05, "amsgrad": True}),
    ("adamw", ds.AdamW, ref.AdamW, {"lr": 0.05}),
    ("nadam", ds.Nadam, ref.Nadam, {"lr": 0.05}),
    ("adamax", ds.Adamax, ref.Adamax, {"lr": 0.05}),
    ("adadelta", ds.AdaDelta, ref.AdaDelta, {}),
]


@pytest.mark.parametrize(
    ("ds_cls", "ref_cls", "kwargs"),
    [pytest.param(*c[1:], id=c[0]) for c in ZERO_D_CASES],
)
def test_zero_d_param_matches_reference(ds_cls, ref_cls, kwargs):
    """A scalar parameter stored as a 0-d array is an ndarray like any other."""
    opt, reference = ds_cls(**kwargs), ref_cls(**kwargs)
    noise = 0.3 * np.random.default_rng(2).standard_normal(STEPS)
    x = np.array(0.5)
    x_ref = [0.5]
    state = opt.init(x)
    for k in range(STEPS):
        g = np.array(2.0 * (float(x) - 1.5) + noise[k])
        opt.step(x, g, state)
        x_ref = reference.step(x_ref, [float(g)])
        assert_close(np.atleast_1d(x), x_ref, k + 1)
    assert abs(float(x) - 0.5) > 1e-3
