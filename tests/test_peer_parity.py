"""descend's update rules against their authors' own packages, side by side on the same gradients.

One section per peer package. Each case runs descend's rule and the peer's torch optimizer for
``STEPS`` steps on a random problem of several leaves (a matrix, a vector, a 3-D array, a
scalar and an all-zero vector), feeding both the same gradients, and compares every leaf after
every step: float64 to ``RTOL64`` relative, float32 to the case's looser tolerance. The cases
cover every option the rule shares with its peer, ``maximize`` (the peer minimizes ``-f``
where it has no such option) and lr schedules (set on the peer's param groups before each
step, which is how these packages take one). Without a peer its section skips (``need``),
under CI it fails.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from peers import need

import descend as ds

STEPS = 150
RTOL64 = 1e-10
#: the leaves of every problem; "zeros" starts at 0 (prodigyopt keeps such a p0 as a scalar)
SHAPES: dict[str, tuple[int, ...]] = {"W": (3, 4), "b": (5,), "T": (2, 2, 3), "c": (), "zeros": (4,)}


# -- the shared problem and driver ----------------------------------------------------------------
class Problem:
    """A noisy quadratic per leaf, ``0.5 h (x - target)^2`` plus fresh noise each step, seeded."""

    def __init__(self, seed: int):
        rng = np.random.default_rng(seed)
        self.x0 = {k: rng.normal(size=s) for k, s in SHAPES.items()}
        self.x0["zeros"] = np.zeros(SHAPES["zeros"])
        self.h = {k: rng.uniform(0.2, 3.0, size=s) for k, s in SHAPES.items()}
        self.target = {k: rng.normal(size=s) for k, s in SHAPES.items()}
        self.noise = [{k: 0.3 * rng.normal(size=s) for k, s in SHAPES.items()} for _ in range(STEPS)]

    def gradient(self, x: dict[str, np.ndarray], k: int, sign: float, dtype: type) -> dict[str, np.ndarray]:
        """The gradient of ``sign * f`` at ``x`` for step ``k``, in ``dtype``."""
        out = {}
        for name in SHAPES:
            g = self.h[name] * (x[name].astype(np.float64) - self.target[name]) + self.noise[k][name]
            out[name] = np.asarray(sign * g, dtype=dtype).reshape(SHAPES[name])
        return out


def side_by_side(
    opt: ds.Optimizer,
    make_peer: Callable[[list[Any]], Any],
    dtype: type,
    rtol: float,
    *,
    schedule: Callable[[int], float] | None = None,
    maximize: bool = False,
    peer_negates: bool = False,
    check: Callable[[int, ds.OptState, Any], None] | None = None,
    compare: Callable[[int, dict[str, np.ndarray], ds.OptState, Any], None] | None = None,
    seed: int = 0,
) -> None:
    """Step ``opt`` and ``make_peer(tensors)`` together; compare all leaves after every step.

    ``maximize`` (``opt`` has ``maximize=True``): descend ascends ``-f``, given ``-grad f``; the
    peer gets ``grad f`` when ``peer_negates`` (it has no maximize of its own), else ``-grad f``
    for its own flag. ``schedule(k)`` is written into the peer's param groups before
    step ``k``; ``check(k, state, peer)`` compares anything else after each step, and
    ``compare(k, params, state, peer)`` too, given descend's parameters.
    """
    torch = need("torch")
    problem = Problem(seed)
    x = {k: v.astype(dtype) for k, v in problem.x0.items()}
    tensors = [
        torch.tensor(x[k], dtype=torch.float64 if dtype == np.float64 else torch.float32) for k in SHAPES
    ]
    peer = make_peer(tensors)
    state = opt.init(x)
    # maximizing, descend ascends -f (its gradient is -grad f); a peer without maximize
    # descends f instead
    sign = -1.0 if maximize else 1.0
    peer_sign = -1.0 if (maximize and peer_negates) else 1.0
    for k in range(STEPS):
        g = problem.gradient(x, k, sign, dtype)
        if schedule is not None:
            for group in peer.param_groups:
                group["lr"] = schedule(k)
        for t, name in zip(tensors, SHAPES, strict=True):
            t.grad = torch.from_numpy(np.asarray(peer_sign * g[name], dtype=dtype))
        peer.step()
        opt.step(x, g, state)
        for t, name in zip(tensors, SHAPES, strict=True):
            want = t.detach().numpy()
            err = np.abs(x[name] - want) / np.maximum(1.0, np.abs(want))
            assert err.max() <= rtol, (
                f"{opt!r} differs from {type(peer).__module__}.{type(peer).__name__} at {name!r} after "
                f"step {k + 1}: max relative error {err.max():.3g}\n"
                f"descend: {x[name].ravel().tolist()}\npeer:    {want.ravel().tolist()}"
            )
        if check is not None:
            check(k, state, peer)
        if compare is not None:
            compare(k, x, state, peer)
    assert all(x[k].dtype == dtype for k in SHAPES)
    moved = min(float(np.abs(x[k].astype(np.float64) - problem.x0[k]).max()) for k in SHAPES)
    assert moved > 1e-3, "some leaf hardly moved: the comparison would prove little"


def case_id(kwargs: dict[str, Any]) -> str:
    """The options a case sets, as a test id (``-schedule`` for an lr schedule)."""
    parts = [k for k in kwargs if k != "lr"] + (["schedule"] if callable(kwargs.get("lr")) else [])
    return "-".join(parts) or "defaults"


def inverse_time(k: int) -> float:
    return 0.02 / (1 + 0.05 * k)


# -- lion-pytorch: Lion ---------------------------------------------------------------------------
LION_CASES = [
    {"lr": 0.01},
    {"lr": 0.01, "betas": (0.8, 0.95), "weight_decay": 0.5},
    {"lr": 0.01, "betas": (0.3, 0.4), "weight_decay": 0.1, "maximize": True},
    {"lr": 3e-3, "betas": (0.95, 0.98)},
    {"lr": inverse_time, "weight_decay": 0.2},
    {"lr": inverse_time, "betas": (0.5, 0.999), "maximize": True},
]


def run_lion(kwargs: dict[str, Any], dtype: type, rtol: float) -> None:
    lion_pytorch = need("lion_pytorch")
    lr = kwargs["lr"]
    schedule = lr if callable(lr) else None
    peer_kwargs = {k: v for k, v in kwargs.items() if k != "maximize"}
    peer_kwargs["lr"] = schedule(0) if schedule else lr
    side_by_side(
        ds.Lion(**kwargs),
        lambda tensors: lion_pytorch.Lion(tensors, **peer_kwargs),
        dtype,
        rtol,
        schedule=schedule,
        maximize=kwargs.get("maximize", False),
        peer_negates=True,
    )


@pytest.mark.parametrize("kwargs", LION_CASES, ids=[f"{case_id(kw)}-{i}" for i, kw in enumerate(LION_CASES)])
@pytest.mark.parametrize(
    ("dtype", "rtol"), [(np.float64, RTOL64), (np.float32, 1e-6)], ids=["float64", "float32"]
)
def test_lion_matches_lion_pytorch(kwargs, dtype, rtol):
    run_lion(kwargs, dtype, rtol)


@pytest.mark.parametrize("schedule", [None, inverse_time], ids=["constant", "schedule"])
def test_lion_pytorch_decoupled_weight_decay_is_weight_decay_over_the_initial_lr(schedule):
    """lion-pytorch's decoupled_weight_decay=True divides the decay by the lr it was built with:
    descend's ``weight_decay=wd / lr0`` gives the same steps (the Warning in ``Lion``)."""
    lion_pytorch = need("lion_pytorch")
    lr0, wd = (inverse_time(0) if schedule else 0.01), 0.004
    side_by_side(
        ds.Lion(lr=schedule or lr0, weight_decay=wd / lr0),
        lambda tensors: lion_pytorch.Lion(tensors, lr=lr0, weight_decay=wd, decoupled_weight_decay=True),
        np.float64,
        RTOL64,
        schedule=schedule,
    )


def test_lion_defaults_are_lion_pytorchs():
    lion_pytorch = need("lion_pytorch")
    theirs = inspect.signature(lion_pytorch.Lion).parameters
    ours = inspect.signature(ds.Lion).parameters
    for name in ("lr", "betas", "weight_decay"):
        assert ours[name].default == theirs[name].default, name


# -- prodigyopt: Prodigy --------------------------------------------------------------------------
def one_minus(k: int) -> float:
    """1 at step 0, straight down to 0 at the last step (the schedule Prodigy's authors advise)."""
    return 1.0 - k / (STEPS - 1)


#: descend's names for prodigyopt's
PRODIGY_NAMES = {"decoupled_weight_decay": "decouple"}

PRODIGY_CASES = [
    {},
    {"weight_decay": 0.1},
    {"weight_decay": 0.1, "decoupled_weight_decay": False},
    {"use_bias_correction": True},
    {"safeguard_warmup": True, "lr": one_minus},
    {"d_coef": 2.0, "growth_rate": 1.02, "d0": 1e-4},
    {"d_coef": 0.5, "growth_rate": 1.5, "use_bias_correction": True, "weight_decay": 0.3},
    {"betas": (0.0, 0.99), "beta3": 0.9, "eps": 1e-6},
    {"betas": (0.0, 0.9), "weight_decay": 0.05, "decoupled_weight_decay": False, "maximize": True},
    {
        "betas": (0.8, 0.99),
        "beta3": 0.95,
        "weight_decay": 0.05,
        "use_bias_correction": True,
        "maximize": True,
    },
    {"lr": one_minus},
    {"lr": lambda k: 0.0 if k % 7 == 3 else 0.5},  # steps with lr 0 change nothing, k included
    {"lr": lambda k: min(1.0, (k + 1) / 20), "safeguard_warmup": True, "use_bias_correction": True},
]


def run_prodigy(kwargs: dict[str, Any], dtype: type, rtol: float) -> None:
    prodigyopt = need("prodigyopt")
    lr = kwargs.get("lr", 1.0)
    schedule = lr if callable(lr) else None
    peer_kwargs = {PRODIGY_NAMES.get(k, k): v for k, v in kwargs.items() if k != "maximize"}
    # prodigyopt refuses lr=0 at construction, not later: the schedule sets each step's lr
    peer_kwargs["lr"] = 1.0 if schedule else lr

    def same_estimates(k: int, state: ds.OptState, peer: Any) -> None:
        group = peer.param_groups[0]
        for mine, theirs in (("d", "d"), ("d_max", "d_max"), ("d_numerator", "d_numerator"), ("k", "k")):
            want = float(group[theirs])
            got = state.scalars[mine]
            assert abs(got - want) <= rtol * max(1.0, abs(want)), (mine, k + 1, got, want)

    side_by_side(
        ds.Prodigy(**kwargs),
        lambda tensors: prodigyopt.Prodigy(tensors, **peer_kwargs),
        dtype,
        rtol,
        schedule=schedule,
        maximize=kwargs.get("maximize", False),
        peer_negates=True,
        check=same_estimates,
    )


PRODIGY_IDS = [f"{case_id(kw)}-{i}" for i, kw in enumerate(PRODIGY_CASES)]


@pytest.mark.parametrize("kwargs", PRODIGY_CASES, ids=PRODIGY_IDS)
def test_prodigy_matches_prodigyopt_float64(kwargs):
    run_prodigy(kwargs, np.float64, RTOL64)


@pytest.mark.parametrize("kwargs", PRODIGY_CASES, ids=PRODIGY_IDS)
def test_prodigy_matches_prodigyopt_float32(kwargs):
    # both sum in float32 but in different orders; d, a ratio of sums, carries the difference
    run_prodigy(kwargs, np.float32, 3e-5)


def test_prodigy_defaults_are_prodigyopts():
    prodigyopt = need("prodigyopt")
    theirs = inspect.signature(prodigyopt.Prodigy).parameters
    ours = inspect.signature(ds.Prodigy).parameters
    for name in (
        "lr",
        "betas",
        "beta3",
        "eps",
        "weight_decay",
        "decoupled_weight_decay",
        "use_bias_correction",
        "safeguard_warmup",
        "d0",
        "d_coef",
        "growth_rate",
    ):
        peer_default = theirs[PRODIGY_NAMES.get(name, name)].default
        assert ours[name].default == peer_default, (name, ours[name].default, peer_default)
    assert math.isinf(ds.Prodigy().growth_rate) and ds.Prodigy().beta3 == math.sqrt(0.999)


# -- schedulefree: ScheduleFreeSGD, ScheduleFreeAdamW --------------------------------------------
def rising(k: int) -> float:
    """An lr that grows for a while: the largest lr so far (lr_max) changes from step to step."""
    return 0.002 * min(k + 1, 40)


def zero_first(k: int) -> float:
    """lr 0 for three steps: weights 0 and weight_sum 0 (the package's ZeroDivisionError path)."""
    return 0.0 if k < 3 else 0.05


SF_SGD_CASES = [
    {"lr": 0.1},
    {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.1},  # eval's lerp weight is -1: its other form
    {"lr": 0.1, "warmup_steps": 20, "r": 1.0, "weight_lr_power": 1.0, "maximize": True},
    {"lr": 0.2, "momentum": 0.95, "warmup_steps": 400, "r": 0.5},  # warm-up longer than the run
    {"lr": inverse_time, "weight_decay": 0.05},
    {"lr": rising, "weight_lr_power": 3.0, "momentum": 0.7, "maximize": True},
    {"lr": zero_first, "warmup_steps": 5},
]
SF_ADAMW_CASES = [
    {},
    {"lr": 0.02},
    {"lr": 0.02, "betas": (0.5, 0.99), "eps": 1e-3, "weight_decay": 0.1},
    {
        "lr": 0.05,
        "warmup_steps": 30,
        "r": 2.0,
        "weight_lr_power": 0.0,
        "weight_decay": 0.01,
        "maximize": True,
    },
    {"lr": inverse_time, "betas": (0.95, 0.9)},
    {"lr": rising, "weight_decay": 0.2, "eps": 1e-6},
    {"lr": zero_first, "betas": (0.7, 0.999), "warmup_steps": 10},
]
#: steps after which the package is switched to eval() and its parameters compared with x
SF_EVAL_AT = (0, 49, 99, STEPS - 1)


def run_schedulefree(name: str, kwargs: dict[str, Any], dtype: type, rtol: float, foreach: bool) -> None:
    """descend's rule and the package's, side by side; after every step also z, v, lr_max and
    weight_sum, and at ``SF_EVAL_AT`` the package's eval() parameters against eval_params."""
    schedulefree = need("schedulefree")
    torch = need("torch")
    cls = {
        "schedulefree_sgd": schedulefree.SGDScheduleFree,
        "schedulefree_adamw": schedulefree.AdamWScheduleFree,
    }
    opt = ds.optimizer(name, **kwargs)
    lr = kwargs.get("lr", opt.lr)
    schedule = lr if callable(lr) else None
    peer_kwargs = {k: v for k, v in kwargs.items() if k != "maximize"}
    peer_kwargs["lr"] = schedule(0) if schedule else lr

    def make_peer(tensors: list[Any]) -> Any:
        peer = cls[name](tensors, foreach=foreach, **peer_kwargs)
        peer.train()  # the package refuses to step in eval mode
        return peer

    def same_state(k: int, x: dict[str, np.ndarray], state: ds.OptState, peer: Any) -> None:
        group = peer.param_groups[0]
        for key in ("lr_max", "weight_sum"):
            want = float(group[key])
            assert abs(state.scalars[key] - want) <= rtol * max(1.0, abs(want)), (key, k + 1)
        buffers = {"z": "z", "v": "exp_avg_sq"} if name == "schedulefree_adamw" else {"z": "z"}
        for t, leaf, i in zip(group["params"], SHAPES, range(len(SHAPES)), strict=True):
            for mine, theirs in buffers.items():
                want = peer.state[t][theirs].numpy()
                got = state.buffers[mine][i]
                err = np.abs(got - want) / np.maximum(1.0, np.abs(want))
                assert err.max() <= rtol, (mine, leaf, k + 1, err.max())
        if k in SF_EVAL_AT:
            x_eval = opt.eval_params(x, state)
            with torch.no_grad():
                peer.eval()
                for t, leaf in zip(group["params"], SHAPES, strict=True):
                    want = t.numpy()
                    err = np.abs(x_eval[leaf] - want) / np.maximum(1.0, np.abs(want))
                    assert err.max() <= rtol, ("x", leaf, k + 1, err.max())
                    assert x_eval[leaf].dtype == dtype
                peer.train()

    side_by_side(
        opt,
        make_peer,
        dtype,
        rtol,
        schedule=schedule,
        maximize=kwargs.get("maximize", False),
        peer_negates=True,
        compare=same_state,
    )


SF_CASES = [("schedulefree_sgd", kw) for kw in SF_SGD_CASES]
SF_CASES += [("schedulefree_adamw", kw) for kw in SF_ADAMW_CASES]
SF_IDS = [f"{name.split('_')[1]}-{case_id(kw)}-{i}" for i, (name, kw) in enumerate(SF_CASES)]


@pytest.mark.parametrize("foreach", [False, True], ids=["loop", "foreach"])
@pytest.mark.parametrize(("name", "kwargs"), SF_CASES, ids=SF_IDS)
def test_schedulefree_matches_the_package_float64(name, kwargs, foreach):
    run_schedulefree(name, kwargs, np.float64, RTOL64, foreach)


@pytest.mark.parametrize(("name", "kwargs"), SF_CASES, ids=SF_IDS)
def test_schedulefree_matches_the_package_float32(name, kwargs):
    # each does the same float32 operations, torch's lerp and add with fused multiply-adds
    run_schedulefree(name, kwargs, np.float32, 1e-6, False)


def test_schedulefree_defaults_are_the_packages():
    schedulefree = need("schedulefree")
    for ours, theirs, names in (
        (ds.ScheduleFreeSGD, schedulefree.SGDScheduleFree, ("lr", "momentum", "weight_decay")),
        (ds.ScheduleFreeAdamW, schedulefree.AdamWScheduleFree, ("lr", "betas", "eps", "weight_decay")),
    ):
        mine, peer = inspect.signature(ours).parameters, inspect.signature(theirs).parameters
        for name in (*names, "warmup_steps", "r", "weight_lr_power"):
            assert mine[name].default == peer[name].default, (ours.__name__, name)
