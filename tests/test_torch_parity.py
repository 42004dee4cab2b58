"""descend's update rules against torch.optim itself, side by side on the same gradients."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from peers import need

import descend as ds

torch = need("torch")

STEPS = 200
H = np.array([0.5, 1.0, 2.0, 3.0, 0.2, 1.5])
TARGET = np.array([1.0, -2.0, 0.5, 3.0, -1.0, 0.0])
X0 = np.array([0.3, 0.7, -1.2, 2.0, 0.05, -0.4])


def inverse_time(k: int) -> float:
    return 0.1 / (1 + k)


# descend name -> (torch.optim class name, keyword arguments torch needs that descend implies)
TORCH_CLASS = {
    "SGD": ("SGD", {}),
    "Momentum": ("SGD", {"momentum": 0.9}),
    "Nesterov": ("SGD", {"momentum": 0.9, "nesterov": True}),
    "AdaGrad": ("Adagrad", {}),
    "RMSprop": ("RMSprop", {}),
    "Adam": ("Adam", {}),
    "AdamW": ("AdamW", {}),
    "Nadam": ("NAdam", {}),
    "Adamax": ("Adamax", {}),
    "AdaDelta": ("Adadelta", {}),
    "Adafactor": ("Adafactor", {}),
    "Muon": ("Muon", {}),
    "RAdam": ("RAdam", {}),
    "Rprop": ("Rprop", {}),
    "ASGD": ("ASGD", {}),
}
RENAMED = {"initial_accumulator": "initial_accumulator_value"}
# torch.optim.Muon has one implementation (no foreach argument) and no maximize: it is given the
# negated gradient instead
SINGLE_IMPLEMENTATION = {"Muon"}
NO_MAXIMIZE = {"Muon"}
# torch.optim.Rprop has no weight_decay: descend's L2 is given to torch in the gradient
# (g + weight_decay * p, negated like g when maximizing), which is what L2 means
L2_IN_GRADIENT = {"Rprop"}
# descend state (a buffer, or a float of state.scalars) -> torch's per-parameter state: compared too
TORCH_STATE = {
    # torch keeps the factors with their reduced dimension (keepdim); a leaf without the buffer
    # in torch has it empty in descend
    "Adafactor": {"row_var": "row_var", "col_var": "col_var", "variance": "variance"},
    "Muon": {"b": "momentum_buffer"},
    "RAdam": {"m": "exp_avg", "v": "exp_avg_sq"},
    "Rprop": {"prev": "prev", "step_size": "step_size"},
    "ASGD": {"ax": "ax", "eta": "eta", "mu": "mu"},
}

CASES = [
    ("SGD", {"lr": 0.05}),
    ("SGD", {"lr": 0.03, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.1}),
    ("SGD", {"lr": inverse_time, "momentum": 0.9, "nesterov": True, "maximize": True}),
    ("Momentum", {"lr": 0.03}),
    ("Nesterov", {"lr": 0.03, "weight_decay": 0.05}),
    ("AdaGrad", {"lr": 0.3}),
    ("AdaGrad", {"lr": 0.5, "lr_decay": 0.01, "initial_accumulator": 0.1, "eps": 1e-6, "weight_decay": 0.1}),
    ("AdaGrad", {"lr": inverse_time, "lr_decay": 0.05, "maximize": True}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "centered": True, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.005, "momentum": 0.9, "centered": True, "maximize": True}),
    ("RMSprop", {"lr": inverse_time, "momentum": 0.5, "eps": 1e-4}),
    ("Adam", {"lr": 0.05}),
    ("Adam", {"lr": 0.05, "amsgrad": True, "weight_decay": 0.1, "betas": (0.8, 0.99)}),
    ("Adam", {"lr": inverse_time, "eps": 1e-3, "maximize": True}),
    ("AdamW", {"lr": 0.05}),
    ("AdamW", {"lr": 0.05, "weight_decay": 0.3, "amsgrad": True, "maximize": True}),
    ("AdamW", {"lr": inverse_time}),
    ("Nadam", {"lr": 0.05}),
    ("Nadam", {"lr": 0.05, "momentum_decay": 0.05, "weight_decay": 0.1}),
    ("Nadam", {"lr": inverse_time, "weight_decay": 0.2, "decoupled_weight_decay": True, "maximize": True}),
    ("Adamax", {"lr": 0.05}),
    ("Adamax", {"lr": 0.05, "betas": (0.7, 0.9), "eps": 1e-2, "weight_decay": 0.1, "maximize": True}),
    ("Adamax", {"lr": inverse_time}),
    ("AdaDelta", {}),
    ("AdaDelta", {"lr": 0.5, "rho": 0.95, "eps": 1e-4, "weight_decay": 0.1, "maximize": True}),
    ("AdaDelta", {"lr": lambda k: 2.0 / (1 + 0.1 * k)}),
    # RAdam: torch's own test configurations (optim_inputs_func_radam), then betas, eps, a beta2
    # that never rectifies (rho_inf = 4) and a schedule
    ("RAdam", {}),
    ("RAdam", {"lr": 2e-3}),
    ("RAdam", {"eps": 1e-6}),
    ("RAdam", {"weight_decay": 0.1}),
    ("RAdam", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("RAdam", {"weight_decay": 0.1, "maximize": True}),
    ("RAdam", {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-3}),
    ("RAdam", {"lr": 0.05, "betas": (0.9, 0.6)}),
    ("RAdam", {"lr": inverse_time, "weight_decay": 0.2, "decoupled_weight_decay": True, "maximize": True}),
    # Rprop: torch's own test configurations (optim_inputs_func_rprop), then descend's L2, an lr
    # outside step_sizes (clipped at the first step) and a schedule (read once, as torch reads lr)
    ("Rprop", {}),
    ("Rprop", {"lr": 2e-4}),
    ("Rprop", {"etas": (0.5, 1.5)}),
    ("Rprop", {"step_sizes": (2e-6, 100)}),
    ("Rprop", {"maximize": True}),
    ("Rprop", {"weight_decay": 0.1}),
    ("Rprop", {"lr": 0.05, "weight_decay": 0.1, "maximize": True}),
    ("Rprop", {"lr": 0.3, "etas": (0.3, 1.1), "step_sizes": (1e-3, 0.2)}),
    ("Rprop", {"lr": inverse_time, "etas": (0.6, 1.5)}),
    # ASGD: torch's own test configurations (optim_inputs_func_asgd), then alpha with averaging
    # well inside the run and a schedule; the average ax, eta and mu are compared too
    ("ASGD", {}),
    ("ASGD", {"lambd": 0.1}),
    ("ASGD", {"lr": 0.02}),
    ("ASGD", {"t0": 100}),
    ("ASGD", {"maximize": True}),
    ("ASGD", {"weight_decay": 0.1}),
    ("ASGD", {"weight_decay": 0.1, "maximize": True}),
    ("ASGD", {"lr": 0.05, "lambd": 0.01, "alpha": 0.5, "t0": 20}),
    ("ASGD", {"lr": inverse_time, "lambd": 0.05, "t0": 30, "weight_decay": 0.05, "maximize": True}),
]
IDS = [
    f"{name}-"
    + "-".join(f"{k}" for k in kwargs if k != "lr")
    + ("-schedule" if callable(kwargs.get("lr")) else "")
    for name, kwargs in CASES
]


@pytest.fixture
def torch_float64_scalars():
    """Make torch keep its per-parameter scalars (step, NAdam's mu product) in float64.

    torch stores them in the default dtype's precision: float32 unless the default is float64,
    which alone would differ from an exact float64 run by ~1e-8.
    """
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def problem(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Curvatures, target and start for parameters of ``shape``: the vector above, or seeded draws."""
    if shape == X0.shape:
        return H, TARGET, X0
    rng = np.random.default_rng(list(shape))
    return rng.uniform(0.2, 3.0, shape), rng.normal(size=shape), rng.normal(size=shape)


def run_side_by_side(
    name: str, kwargs: dict, dtype: type[np.floating], rtol: float, shape: tuple[int, ...] = X0.shape
) -> None:
    h, target, x0 = problem(shape)
    schedule = kwargs["lr"] if callable(kwargs.get("lr")) else None
    opt = getattr(ds, name)(**kwargs)
    torch_name, implied = TORCH_CLASS[name]
    torch_kwargs = {RENAMED.get(k, k): v for k, v in {**implied, **kwargs}.items()}
    if schedule is not None:
        torch_kwargs["lr"] = schedule(0)
    if name not in SINGLE_IMPLEMENTATION:
        torch_kwargs["foreach"] = False
    torch_sign = 1.0
    if name in NO_MAXIMIZE and torch_kwargs.pop("maximize", False):
        torch_sign = -1.0
    l2 = torch_kwargs.pop("weight_decay", 0.0) if name in L2_IN_GRADIENT else 0.0
    x = x0.astype(dtype)
    p = torch.tensor(x0, dtype=torch.float64 if dtype == np.float64 else torch.float32)
    torch_opt = getattr(torch.optim, torch_name)([p], **torch_kwargs)
    state = opt.init(x)
    sign = -1.0 if kwargs.get("maximize", False) else 1.0
    noise = 0.3 * np.random.default_rng(0).standard_normal((STEPS, *shape))
    for k in range(STEPS):
        g = np.asarray(sign * h * (x.astype(np.float64) - target) + noise[k], dtype=dtype)
        if schedule is not None:
            torch_opt.param_groups[0]["lr"] = schedule(k)
        fed = g + (sign * l2) * p.detach().numpy() if l2 else g
        p.grad = torch.from_numpy(np.array(torch_sign * fed, dtype=dtype))
        torch_opt.step()
        opt.step(x, g, state)
        want = p.detach().numpy()
        err = np.abs(x - want) / np.maximum(1.0, np.abs(want))
        assert err.max() <= rtol, (
            f"{name}({kwargs}) differs from torch.optim.{torch_name} after step {k + 1}: "
            f"max relative error {err.max():.3g}\ndescend: {x.tolist()}\ntorch:   {want.tolist()}"
        )
        for mine, theirs in TORCH_STATE.get(name, {}).items():
            got = state[mine] if mine in state.buffers else state.scalars[mine]
            if theirs not in torch_opt.state[p]:
                assert np.size(got) == 0, f"{name}: torch has no {theirs!r} for this leaf, descend's is {got}"
                continue
            want = torch_opt.state[p][theirs].detach().numpy().reshape(np.shape(got))
            err = np.abs(got - want) / np.maximum(1.0, np.abs(want))
            assert err.max() <= rtol, (
                f"{name}({kwargs}): state {mine!r} differs from torch's {theirs!r} after step {k + 1}: "
                f"max relative error {err.max():.3g}"
            )
    assert x.dtype == dtype
    assert np.abs(x - x0).max() > 1e-3, "the parameters hardly moved: the comparison would prove nothing"


@pytest.mark.usefixtures("torch_float64_scalars")
@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
def test_matches_torch_float64(name, kwargs):
    run_side_by_side(name, kwargs, np.float64, rtol=1e-12)


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
def test_matches_torch_float32(name, kwargs):
    run_side_by_side(name, kwargs, np.float32, rtol=1e-6)


# -- rules that mix a leaf's elements, on matrices (and vectors, scalars, stacks of matrices) ----
# torch's own test configurations (common_optimizers.optim_inputs_func_adafactor / _muon) first,
# then every other option, weight decay, maximize and a schedule
MATRIX_CASES = [
    ("Adafactor", {}, (3, 4)),
    ("Adafactor", {"weight_decay": 0.1, "lr": 0.01}, (2, 3, 4)),
    ("Adafactor", {"weight_decay": 0.1, "maximize": True}, (3, 4)),
    ("Adafactor", {"beta2_decay": -1.0}, (5, 1)),
    ("Adafactor", {"d": 1.5}, (4, 3)),
    ("Adafactor", {}, (6,)),
    ("Adafactor", {"weight_decay": 0.1, "maximize": True}, ()),
    ("Adafactor", {"lr": 0.05, "eps": (1e-30, 1e-2), "d": 1.2}, (3, 4)),
    ("Adafactor", {"lr": 0.05, "eps": (1e-3, 0.0), "beta2_decay": 0.0}, (6,)),
    ("Adafactor", {"lr": inverse_time, "weight_decay": 0.2, "maximize": True}, (2, 3, 4)),
    ("Muon", {}, (3, 4)),
    ("Muon", {"lr": 0.01}, (5, 2)),
    ("Muon", {"weight_decay": 0.2}, (4, 4)),
    ("Muon", {"momentum": 0.8}, (3, 4)),
    ("Muon", {"ns_steps": 6}, (5, 2)),
    ("Muon", {"ns_coefficients": (3.4, -4.7, 2.0)}, (3, 4)),
    ("Muon", {"lr": 0.02, "nesterov": False, "maximize": True}, (5, 2)),
    ("Muon", {"lr": 0.02, "momentum": 0.0, "ns_steps": 0}, (3, 4)),
    ("Muon", {"lr": 0.02, "adjust_lr_fn": "original", "eps": 10.0}, (5, 2)),  # the norm's floor acts
    ("Muon", {"lr": 0.02, "adjust_lr_fn": "match_rms_adamw", "weight_decay": 0.05}, (3, 4)),
    ("Muon", {"lr": 0.02, "adjust_lr_fn": "match_rms_adamw"}, (5, 2)),
    ("Muon", {"lr": inverse_time, "maximize": True}, (4, 4)),
]
MATRIX_IDS = [
    f"{name}-{'x'.join(map(str, shape)) or 'scalar'}-"
    + "-".join(f"{k}" for k in kwargs if k != "lr")
    + ("-schedule" if callable(kwargs.get("lr")) else "")
    for name, kwargs, shape in MATRIX_CASES
]


@pytest.fixture
def muon_in_dtype(monkeypatch):
    """torch.optim.Muon with its Newton–Schulz iteration in the parameter's dtype, as descend runs
    it (NumPy has no bfloat16): torch's own function with only its bfloat16 cast taken out."""
    module = torch.optim._muon
    source = inspect.getsource(module._zeropower_via_newtonschulz)
    assert source.count("grad.bfloat16()") == 1, "torch's Newton–Schulz changed: review this fixture"
    namespace: dict = {}
    exec(source.replace("grad.bfloat16()", "grad.clone()"), vars(module), namespace)
    monkeypatch.setattr(module, "_zeropower_via_newtonschulz", namespace["_zeropower_via_newtonschulz"])


@pytest.mark.usefixtures("torch_float64_scalars", "muon_in_dtype")
@pytest.mark.parametrize(("name", "kwargs", "shape"), MATRIX_CASES, ids=MATRIX_IDS)
def test_matrix_rules_match_torch_float64(name, kwargs, shape):
    run_side_by_side(name, kwargs, np.float64, rtol=1e-12, shape=shape)


@pytest.mark.usefixtures("muon_in_dtype")
@pytest.mark.parametrize(("name", "kwargs", "shape"), MATRIX_CASES, ids=MATRIX_IDS)
def test_matrix_rules_match_torch_float32(name, kwargs, shape):
    # reductions and matrix products sum in another order than torch's: a few float32 ulps a step
    run_side_by_side(name, kwargs, np.float32, rtol=1e-5, shape=shape)


def test_muon_differs_from_torchs_bfloat16_iteration_by_its_rounding_only():
    """Unpatched torch (Newton–Schulz in bfloat16) and descend (in float64) take the same first
    step up to bfloat16's rounding (8 bits of mantissa, over five iterations), not exactly it."""
    rng = np.random.default_rng(5)
    W, G = rng.normal(size=(4, 6)), rng.normal(size=(4, 6))
    p = torch.tensor(W)
    p.grad = torch.tensor(G)
    torch.optim.Muon([p], lr=0.02, weight_decay=0.0).step()
    x = W.copy()
    opt = ds.Muon(lr=0.02, weight_decay=0.0)
    opt.step(x, G, opt.init(x))
    theirs, mine = p.detach().numpy() - W, x - W
    assert np.abs(mine - theirs).max() <= 0.05 * np.abs(mine).max()  # 2.3% here
    assert np.abs(mine - theirs).max() > 1e-6 * np.abs(mine).max()
