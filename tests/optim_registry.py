"""The optimizers under test: one entry per rule descend registers drives every generic test
(test_optim.py, test_fused.py, test_kernel_cache.py) and the comparison with the rule's scalar
reference (test_reference.py, through ``reference.REFERENCES``).

``REGISTRY`` must name exactly the rules ``descend.optim.names()`` lists, and each one must have
a reference: test_registry.py checks both ways, with the messages of :func:`coverage_problems`.
"""

from __future__ import annotations

import importlib
import inspect
import math
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import reference

import descend as ds


def decay(lr0: float, tau: int, final: float = 0.01) -> Callable[[int], float]:
    """Goodfellow's linear decay to ``final * lr0`` at step ``tau`` (written out: tests stay
    independent of descend.schedules)."""
    return lambda k: lr0 * (1.0 - min(k, tau) / tau * (1.0 - final))


@dataclass(frozen=True)
class OptimizerInfo:
    name: str
    cls: type
    #: settings that converge on the test problems (lr and friends)
    quadratic: dict[str, Any]
    rosenbrock: dict[str, Any]
    rosenbrock_steps: int
    #: non-default settings exercised by the state round-trip and dtype tests
    variants: list[dict[str, Any]] = field(default_factory=list)
    #: (kwargs, parameter named in the message, exception type)
    bad: list[tuple[dict[str, Any], str, type]] = field(default_factory=list)
    #: settings compared step by step with the rule's scalar reference (test_reference.py), by id
    reference: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the parameter shapes test_reference.py compares each reference setting on: a vector by
    #: default; a rule that mixes the elements of a leaf (matrices, factored moments) adds its own
    shapes: tuple[tuple[int, ...], ...] = ((5,),)
    #: buffers that are not leaf-shaped, by name: their shapes for test_optim.make_params' leaves
    #: (W (3, 4), b (4,), layers (2,) and ()); every other buffer has its leaf's shape
    buffer_shapes: dict[str, list[tuple[int, ...]]] = field(default_factory=dict)

    def make(self, **kwargs: Any) -> ds.Optimizer:
        """The rule as its registry name builds it (preset included), with ``kwargs``."""
        return ds.optimizer(self.name, **kwargs)


def inverse_time(k: int) -> float:
    return 0.1 / (1 + k)


def _common_bad() -> list[tuple[dict[str, Any], str, type]]:
    return [
        ({"lr": -0.1}, "lr", ValueError),
        ({"lr": math.nan}, "lr", ValueError),
        ({"lr": math.inf}, "lr", ValueError),
        ({"lr": True}, "lr", TypeError),
        ({"lr": "0.1"}, "lr", TypeError),
        ({"lr": None}, "lr", TypeError),
        ({"weight_decay": -1e-3}, "weight_decay", ValueError),
        ({"weight_decay": math.nan}, "weight_decay", ValueError),
        ({"maximize": 1}, "maximize", TypeError),
        ({"maximize": "yes"}, "maximize", TypeError),
    ]


def _betas_bad() -> list[tuple[dict[str, Any], str, type]]:
    return [
        ({"betas": (1.0, 0.999)}, "beta1", ValueError),
        ({"betas": (-0.1, 0.999)}, "beta1", ValueError),
        ({"betas": (0.9, 1.0)}, "beta2", ValueError),
        ({"betas": (0.9, math.nan)}, "beta2", ValueError),
        ({"betas": (0.9, True)}, "beta2", TypeError),
        ({"betas": 0.9}, "betas", TypeError),
        ({"betas": (0.9, 0.99, 0.9)}, "betas", TypeError),
        ({"eps": 0.0}, "eps", ValueError),
        ({"eps": -1e-8}, "eps", ValueError),
        ({"eps": math.inf}, "eps", ValueError),
    ]


REGISTRY: list[OptimizerInfo] = [
    OptimizerInfo(
        "sgd",
        ds.SGD,
        reference={
            "plain": {"lr": 0.05},
            "wd": {"lr": 0.05, "weight_decay": 0.1},
            "momentum": {"lr": 0.03, "momentum": 0.9},
            "dampening": {"lr": 0.03, "momentum": 0.8, "dampening": 0.3},
            "nesterov": {"lr": 0.03, "momentum": 0.9, "nesterov": True},
            "nesterov-wd-max": {
                "lr": 0.03,
                "momentum": 0.7,
                "nesterov": True,
                "weight_decay": 0.05,
                "maximize": True,
            },
            "schedule": {"lr": inverse_time, "momentum": 0.5, "dampening": 0.5},
        },
        quadratic={"lr": 0.15},
        rosenbrock={"lr": 1.5e-3},
        rosenbrock_steps=15000,
        variants=[
            {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
            {"lr": 0.05, "momentum": 0.5, "nesterov": True},
        ],
        bad=_common_bad()
        + [
            ({"momentum": -0.5}, "momentum", ValueError),
            ({"momentum": 1.5}, "momentum", ValueError),
            ({"momentum": math.nan}, "momentum", ValueError),
            ({"dampening": 2.0}, "dampening", ValueError),
            ({"nesterov": True}, "nesterov", ValueError),
            ({"nesterov": True, "momentum": 0.9, "dampening": 0.5}, "nesterov", ValueError),
            ({"nesterov": "no"}, "nesterov", TypeError),
        ],
    ),
    OptimizerInfo(
        "momentum",
        ds.Momentum,
        reference={
            "plain": {"lr": 0.03},
            "dampening-wd": {"lr": 0.03, "momentum": 0.5, "dampening": 0.2, "weight_decay": 0.1},
        },
        quadratic={"lr": 0.05},
        rosenbrock={"lr": 5e-4},
        rosenbrock_steps=5000,
        variants=[{"lr": 0.05, "momentum": 0.95, "weight_decay": 0.1}],
        bad=_common_bad()
        + [({"momentum": -0.1}, "momentum", ValueError), ({"momentum": 1.01}, "momentum", ValueError)],
    ),
    OptimizerInfo(
        "nesterov",
        ds.Nesterov,
        reference={
            "plain": {"lr": 0.03},
            "schedule-max": {"lr": inverse_time, "momentum": 0.6, "maximize": True},
        },
        quadratic={"lr": 0.05},
        rosenbrock={"lr": 5e-4},
        rosenbrock_steps=5000,
        variants=[{"lr": 0.05, "momentum": 0.8, "maximize": False, "weight_decay": 0.05}],
        bad=_common_bad()
        + [({"momentum": 0.0}, "nesterov", ValueError), ({"momentum": math.inf}, "momentum", ValueError)],
    ),
    OptimizerInfo(
        "asgd",
        ds.ASGD,
        reference={
            "defaults": {},
            "lambd-alpha": {"lr": 0.05, "lambd": 0.1, "alpha": 0.5},
            "averaging": {"lr": 0.05, "t0": 10},
            "wd-max": {"lr": 0.05, "weight_decay": 0.1, "maximize": True, "t0": 50},
            "schedule": {"lr": inverse_time, "lambd": 0.05, "t0": 30},
        },
        # lambd shrinks the parameters like a weight decay: off where a zero gradient must not move them
        quadratic={"lr": 0.15, "lambd": 0.0},
        rosenbrock={"lr": 1.5e-3},
        rosenbrock_steps=15000,
        variants=[  # t0 small: the average runs within the tests' few steps
            {"lr": 0.05, "lambd": 0.01, "alpha": 0.5, "t0": 3, "weight_decay": 0.01},
            {"lr": 0.02, "t0": 0.0, "maximize": True},
        ],
        bad=_common_bad()
        + [
            ({"lambd": -1e-4}, "lambd", ValueError),
            ({"lambd": math.nan}, "lambd", ValueError),
            ({"lambd": "0.1"}, "lambd", TypeError),
            ({"alpha": -0.75}, "alpha", ValueError),
            ({"alpha": math.inf}, "alpha", ValueError),
            ({"t0": -1.0}, "t0", ValueError),
            ({"t0": math.inf}, "t0", ValueError),
            ({"t0": None}, "t0", TypeError),
        ],
    ),
    OptimizerInfo(
        "adagrad",
        ds.AdaGrad,
        reference={
            "plain": {"lr": 0.3},
            "decay-init": {"lr": 0.5, "lr_decay": 0.01, "initial_accumulator": 0.1, "eps": 1e-6},
            "wd-max": {"lr": 0.3, "weight_decay": 0.1, "maximize": True},
            "schedule": {"lr": inverse_time, "lr_decay": 0.05},
        },
        quadratic={"lr": 0.5},
        rosenbrock={"lr": 0.3},
        rosenbrock_steps=12000,
        variants=[{"lr": 0.1, "lr_decay": 0.01, "initial_accumulator": 0.1, "weight_decay": 0.01}],
        bad=_common_bad()
        + [
            ({"eps": 0.0}, "eps", ValueError),
            ({"initial_accumulator": -1.0}, "initial_accumulator", ValueError),
            ({"lr_decay": -0.1}, "lr_decay", ValueError),
            ({"lr_decay": math.nan}, "lr_decay", ValueError),
        ],
    ),
    OptimizerInfo(
        "rmsprop",
        ds.RMSprop,
        reference={
            "plain": {"lr": 0.01},
            "centered": {"lr": 0.01, "alpha": 0.9, "centered": True},
            "momentum": {"lr": 0.005, "momentum": 0.9, "eps": 1e-4},
            "centered-momentum-wd-max": {
                "lr": 0.005,
                "centered": True,
                "momentum": 0.5,
                "weight_decay": 0.1,
                "maximize": True,
            },
            "schedule": {"lr": inverse_time, "alpha": 0.95},
        },
        quadratic={"lr": decay(0.01, 1500)},
        rosenbrock={"lr": decay(1e-3, 12000)},
        rosenbrock_steps=15000,
        variants=[
            {"lr": 0.01, "centered": True, "momentum": 0.9, "weight_decay": 0.01},
            {"lr": 0.01, "alpha": 0.9, "momentum": 0.5},
        ],
        bad=_common_bad()
        + [
            ({"alpha": 1.0}, "alpha", ValueError),
            ({"alpha": -0.1}, "alpha", ValueError),
            ({"eps": 0.0}, "eps", ValueError),
            ({"momentum": -1.0}, "momentum", ValueError),
            ({"centered": 1}, "centered", TypeError),
        ],
    ),
    OptimizerInfo(
        "adam",
        ds.Adam,
        reference={
            "plain": {"lr": 0.05},
            "betas-eps": {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-3},
            "amsgrad": {"lr": 0.05, "amsgrad": True},
            "schedule": {"lr": inverse_time, "betas": (0.5, 0.9)},
        },
        quadratic={"lr": 0.05},
        rosenbrock={"lr": 0.02},
        rosenbrock_steps=5000,
        variants=[
            {"lr": 0.01, "amsgrad": True, "weight_decay": 0.01},
            {"lr": 0.01, "betas": (0.5, 0.9), "eps": 1e-6},
        ],
        bad=_common_bad() + _betas_bad() + [({"amsgrad": "true"}, "amsgrad", TypeError)],
    ),
    OptimizerInfo(
        "amsgrad",
        ds.Adam,
        reference={
            "plain": {"lr": 0.05},
            "wd-max": {"lr": 0.05, "weight_decay": 0.1, "maximize": True},
            "schedule": {"lr": inverse_time, "betas": (0.5, 0.9)},
        },
        quadratic={"lr": 0.05},
        rosenbrock={"lr": 0.03},
        rosenbrock_steps=6000,
        variants=[
            {"lr": 0.01, "weight_decay": 0.01},
            {"lr": 0.01, "betas": (0.5, 0.9), "eps": 1e-6},
        ],
        bad=_common_bad() + _betas_bad() + [({"amsgrad": "true"}, "amsgrad", TypeError)],
    ),
    OptimizerInfo(
        "adamw",
        ds.AdamW,
        reference={
            "plain": {"lr": 0.05},
            "wd-amsgrad": {"lr": 0.05, "weight_decay": 0.3, "amsgrad": True},
            "schedule-max": {"lr": inverse_time, "maximize": True},
        },
        quadratic={"lr": 0.05, "weight_decay": 0.0},
        rosenbrock={"lr": 0.02, "weight_decay": 0.0},
        rosenbrock_steps=5000,
        variants=[{"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}],
        bad=_common_bad() + _betas_bad(),
    ),
    OptimizerInfo(
        "nadam",
        ds.Nadam,
        reference={
            "plain": {"lr": 0.05},
            "decay": {"lr": 0.05, "momentum_decay": 0.05, "betas": (0.8, 0.99)},
            "l2": {"lr": 0.05, "weight_decay": 0.1},
            "decoupled-max": {
                "lr": 0.05,
                "weight_decay": 0.2,
                "decoupled_weight_decay": True,
                "maximize": True,
            },
            "schedule": {"lr": inverse_time},
        },
        quadratic={"lr": 0.05},
        rosenbrock={"lr": decay(0.01, 10000)},
        rosenbrock_steps=12000,
        variants=[
            {"lr": 0.01, "momentum_decay": 0.01, "weight_decay": 0.01},
            {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True},
        ],
        bad=_common_bad()
        + _betas_bad()
        + [
            ({"momentum_decay": -1.0}, "momentum_decay", ValueError),
            ({"decoupled_weight_decay": 0}, "decoupled_weight_decay", TypeError),
        ],
    ),
    OptimizerInfo(
        "radam",
        ds.RAdam,
        reference={
            "plain": {"lr": 0.05},
            "betas-eps": {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-3},
            "never-rectified": {"lr": 0.05, "betas": (0.9, 0.6)},  # rho_inf = 4: momentum steps only
            "l2": {"lr": 0.05, "weight_decay": 0.1},
            "decoupled-max": {
                "lr": 0.05,
                "weight_decay": 0.2,
                "decoupled_weight_decay": True,
                "maximize": True,
            },
            "schedule": {"lr": inverse_time, "betas": (0.5, 0.9)},
        },
        quadratic={"lr": 0.05},
        # its first 5 steps are momentum steps on the raw gradient (|g| ~ 200 at the start)
        rosenbrock={"lr": 5e-3},
        rosenbrock_steps=10000,
        variants=[
            {"lr": 0.01, "weight_decay": 0.01},
            {
                "lr": 0.01,
                "betas": (0.5, 0.9),
                "eps": 1e-6,
                "weight_decay": 0.1,
                "decoupled_weight_decay": True,
            },
        ],
        bad=_common_bad()
        + _betas_bad()
        + [({"decoupled_weight_decay": 1}, "decoupled_weight_decay", TypeError)],
    ),
    OptimizerInfo(
        "rprop",
        ds.Rprop,
        reference={
            "defaults": {},
            "etas-steps": {"lr": 0.3, "etas": (0.3, 1.1), "step_sizes": (1e-3, 0.2)},  # lr clipped
            "wd-max": {"lr": 0.05, "weight_decay": 0.1, "maximize": True},
            "schedule": {"lr": inverse_time, "etas": (0.6, 1.5)},  # read once: the first step size
        },
        quadratic={"lr": 0.1},
        # it stalls in Rosenbrock's valley with the default etas (step sizes at their minimum)
        rosenbrock={"lr": 1e-2, "etas": (0.7, 1.2)},
        rosenbrock_steps=4000,
        variants=[
            {"lr": 0.01, "etas": (0.4, 1.5), "step_sizes": (1e-4, 1.0), "weight_decay": 0.01},
            {"lr": 1e-3, "etas": (0.5, 1.2), "maximize": True},
        ],
        bad=_common_bad()
        + [
            ({"etas": (0.0, 1.2)}, "etaminus", ValueError),
            ({"etas": (1.0, 1.2)}, "etaminus", ValueError),
            ({"etas": (0.5, 1.0)}, "etaplus", ValueError),
            ({"etas": (0.5, math.inf)}, "etaplus", ValueError),
            ({"etas": (0.5, "1.2")}, "etaplus", TypeError),
            ({"etas": 0.5}, "etas", TypeError),
            ({"etas": (0.5, 1.2, 2.0)}, "etas", TypeError),
            ({"step_sizes": (-1e-6, 50.0)}, "step_size_min", ValueError),
            ({"step_sizes": (1e-3, 1e-4)}, "step_size_max", ValueError),
            ({"step_sizes": (1e-6, math.nan)}, "step_size_max", ValueError),
            ({"step_sizes": "small"}, "step_sizes", TypeError),
        ],
    ),
    OptimizerInfo(
        "adamax",
        ds.Adamax,
        reference={
            "plain": {"lr": 0.05},
            "betas-eps": {"lr": 0.05, "betas": (0.7, 0.9), "eps": 1e-2},
            "wd-max": {"lr": 0.05, "weight_decay": 0.1, "maximize": True},
            "schedule": {"lr": inverse_time},
        },
        quadratic={"lr": 0.05},
        rosenbrock={"lr": 0.02},
        rosenbrock_steps=7000,
        variants=[{"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.01}],
        bad=_common_bad() + _betas_bad(),
    ),
    OptimizerInfo(
        "adadelta",
        ds.AdaDelta,
        reference={
            "defaults": {},
            "rho-eps": {"lr": 0.5, "rho": 0.95, "eps": 1e-4},
            "wd-max": {"weight_decay": 0.1, "maximize": True},
            "schedule": {"lr": lambda k: 2.0 / (1 + 0.1 * k)},
        },
        quadratic={"lr": 0.3, "rho": 0.99},
        rosenbrock={"lr": decay(0.5, 15000), "rho": 0.99},
        rosenbrock_steps=20000,
        variants=[{"lr": 0.5, "rho": 0.95, "eps": 1e-5, "weight_decay": 0.01}],
        bad=_common_bad()
        + [
            ({"rho": 1.5}, "rho", ValueError),
            ({"rho": -0.1}, "rho", ValueError),
            ({"eps": 0.0}, "eps", ValueError),
        ],
    ),
    # Schedule-Free: params are y (where gradients are taken); the convergence tests read y. It
    # converges on the quadratic at the defaults; on Rosenbrock, with momentum 0.9 and the
    # uniform average (r=0), y and x swing slowly along the valley for 40,000 steps and more, so
    # SGD is tested with r=2 (later points weigh more) and momentum 0.5.
    OptimizerInfo(
        "schedulefree_sgd",
        ds.ScheduleFreeSGD,
        reference={
            "plain": {"lr": 0.1},
            "momentum-wd": {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.1},
            "warmup-r-power-max": {
                "lr": 0.1,
                "warmup_steps": 10,
                "r": 1.0,
                "weight_lr_power": 1.0,
                "maximize": True,
            },
            "schedule": {"lr": inverse_time, "momentum": 0.7},
            "rising-schedule": {"lr": lambda k: 0.002 * (1 + k), "warmup_steps": 30},
        },
        quadratic={"lr": 0.1},
        rosenbrock={"lr": 2e-3, "momentum": 0.5, "r": 2.0},  # minimize returns the average x, which trails y
        rosenbrock_steps=15000,
        variants=[
            {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.01, "warmup_steps": 5, "r": 1.0},
            {"lr": 0.05, "weight_lr_power": 0.0},
        ],
        bad=_common_bad()
        + [
            ({"momentum": 0.0}, "momentum", ValueError),
            ({"momentum": 1.0}, "momentum", ValueError),
            ({"momentum": math.nan}, "momentum", ValueError),
            ({"warmup_steps": -1}, "warmup_steps", ValueError),
            ({"warmup_steps": 2.5}, "warmup_steps", TypeError),
            ({"r": -1.0}, "r", ValueError),
            ({"weight_lr_power": -2.0}, "weight_lr_power", ValueError),
            ({"weight_lr_power": math.inf}, "weight_lr_power", ValueError),
        ],
    ),
    OptimizerInfo(
        "schedulefree_adamw",
        ds.ScheduleFreeAdamW,
        reference={
            "plain": {"lr": 0.05},
            "betas-eps-wd": {"lr": 0.05, "betas": (0.5, 0.99), "eps": 1e-3, "weight_decay": 0.1},
            "warmup-r-power-max": {
                "lr": 0.05,
                "warmup_steps": 20,
                "r": 2.0,
                "weight_lr_power": 0.0,
                "weight_decay": 0.05,
                "maximize": True,
            },
            "schedule": {"lr": inverse_time, "betas": (0.95, 0.9)},
        },
        quadratic={"lr": 0.05},
        rosenbrock={"lr": 5e-3},
        rosenbrock_steps=20000,
        variants=[
            {"lr": 0.01, "weight_decay": 0.1, "warmup_steps": 5, "r": 1.0},
            {"lr": 0.01, "betas": (0.5, 0.9), "eps": 1e-6, "weight_lr_power": 1.0},
        ],
        bad=_common_bad()
        + _betas_bad()
        + [
            ({"betas": (0.0, 0.999)}, "beta1", ValueError),
            ({"warmup_steps": -5}, "warmup_steps", ValueError),
            ({"r": math.nan}, "r", ValueError),
            ({"weight_lr_power": -1.0}, "weight_lr_power", ValueError),
        ],
    ),
    OptimizerInfo(
        "lion",
        ds.Lion,
        reference={
            "plain": {"lr": 0.01},
            "betas-wd": {"lr": 0.01, "betas": (0.8, 0.95), "weight_decay": 0.5},
            "low-betas-max": {"lr": 0.01, "betas": (0.3, 0.4), "maximize": True},  # the other lerp form
            "schedule": {"lr": inverse_time, "weight_decay": 0.1},
        },
        # each coordinate moves by the whole lr: it settles only as the lr decays
        quadratic={"lr": decay(0.05, 1800, final=1e-3)},
        rosenbrock={"lr": decay(5e-3, 7200, final=1e-3)},
        rosenbrock_steps=8000,
        variants=[
            {"lr": 0.01, "weight_decay": 0.1},
            {"lr": 0.01, "betas": (0.3, 0.5), "weight_decay": 0.01},
        ],
        bad=_common_bad() + [bad for bad in _betas_bad() if bad[1] != "eps"],
    ),
    OptimizerInfo(
        "prodigy",
        ds.Prodigy,
        reference={
            "defaults": {},
            "bias-safeguard": {"use_bias_correction": True, "safeguard_warmup": True},
            "l2-max": {"weight_decay": 0.1, "decoupled_weight_decay": False, "maximize": True},
            "decoupled-growth": {"weight_decay": 0.3, "growth_rate": 1.05, "d_coef": 2.0, "d0": 1e-4},
            "no-momentum": {"betas": (0.0, 0.99), "beta3": 0.9, "eps": 1e-6},
            "schedule": {"lr": decay(1.0, 100)},
            "lr-zero-steps": {"lr": lambda k: 0.0 if k % 7 == 3 else 1.0},
        },
        quadratic={},
        rosenbrock={},
        rosenbrock_steps=5000,
        variants=[
            {"weight_decay": 0.01, "use_bias_correction": True},
            {
                "betas": (0.0, 0.99),
                "weight_decay": 0.1,
                "decoupled_weight_decay": False,
                "growth_rate": 1.02,
                "safeguard_warmup": True,
            },
        ],
        bad=_common_bad()
        + _betas_bad()
        + [
            ({"beta3": 1.5}, "beta3", ValueError),
            ({"beta3": -0.1}, "beta3", ValueError),
            ({"d0": 0.0}, "d0", ValueError),
            ({"d0": -1e-6}, "d0", ValueError),
            ({"d_coef": 0.0}, "d_coef", ValueError),
            ({"d_coef": math.inf}, "d_coef", ValueError),
            ({"growth_rate": 0.5}, "growth_rate", ValueError),
            ({"growth_rate": math.nan}, "growth_rate", ValueError),
            ({"growth_rate": "fast"}, "growth_rate", TypeError),
            ({"use_bias_correction": 1}, "use_bias_correction", TypeError),
            ({"safeguard_warmup": "no"}, "safeguard_warmup", TypeError),
            ({"decoupled_weight_decay": 0}, "decoupled_weight_decay", TypeError),
        ],
    ),
    OptimizerInfo(
        "adafactor",
        ds.Adafactor,
        reference={
            "defaults": {},
            "wd": {"lr": 0.05, "weight_decay": 0.1},
            "decay-d-eps-max": {"beta2_decay": -1.0, "d": 1.5, "eps": (1e-30, 1e-2), "maximize": True},
            "schedule": {"lr": inverse_time, "beta2_decay": -0.5},
        },
        shapes=((5,), (3, 4), (2, 3, 4)),  # a vector's full variance; factored over the last two dims
        quadratic={"lr": 0.05},
        # the step is relative to RMS(p) ~ 1 near (1, 1): it settles as the lr decays
        rosenbrock={"lr": decay(0.02, 15000, final=1e-3)},
        rosenbrock_steps=20000,
        variants=[
            {"lr": 0.05, "weight_decay": 0.01},
            {"lr": 0.05, "beta2_decay": -0.5, "eps": (1e-20, 1e-3), "d": 2.0},
        ],
        bad=_common_bad()
        + [
            ({"beta2_decay": 0.8}, "beta2_decay", ValueError),
            ({"beta2_decay": math.nan}, "beta2_decay", ValueError),
            ({"eps": (0.0, 1e-3)}, "eps1", ValueError),
            ({"eps": (-1e-30, 1e-3)}, "eps1", ValueError),
            ({"eps": (None, -1.0)}, "eps2", ValueError),
            ({"eps": 1e-3}, "eps", TypeError),
            ({"eps": (None, 1e-3, 1.0)}, "eps", TypeError),
            ({"d": 0.5}, "d", ValueError),
            ({"d": math.inf}, "d", ValueError),
        ],
        buffer_shapes={
            "row_var": [(3,), (0,), (0,), (0,)],
            "col_var": [(4,), (0,), (0,), (0,)],
            "variance": [(0,), (4,), (2,), ()],
        },
    ),
    OptimizerInfo(
        "muon",
        ds.Muon,
        reference={
            "defaults": {},
            "momentum-wd": {"lr": 0.02, "momentum": 0.8, "weight_decay": 0.2},
            "plain-max": {"lr": 0.02, "nesterov": False, "maximize": True},
            "ns-eps": {"lr": 0.02, "ns_steps": 6, "ns_coefficients": (3.4, -4.7, 2.0), "eps": 10.0},
            "match-rms": {"lr": 0.01, "adjust_lr_fn": "match_rms_adamw", "weight_decay": 0.0},
            "schedule": {"lr": inverse_time, "adjust_lr_fn": "original", "momentum": 0.0},
        },
        # a lone vector is a 1 x n matrix (the point of minimize and races), a wide, a tall and a
        # square matrix
        shapes=((5,), (3, 4), (5, 2), (4, 4)),
        # steps of nearly fixed length along the momentum: it settles only as the lr decays
        quadratic={"lr": decay(0.1, 1500, final=1e-4)},
        rosenbrock={"lr": decay(0.01, 4000, final=1e-3), "weight_decay": 0.0},
        rosenbrock_steps=5000,
        variants=[
            {"lr": 0.02, "momentum": 0.9, "nesterov": False, "weight_decay": 0.05, "companion": "nesterov"},
            {
                "lr": 0.02,
                "adjust_lr_fn": "match_rms_adamw",
                "ns_steps": 3,
                "companion": ds.Adam(lr=0.01, amsgrad=True, weight_decay=0.01),
            },
        ],
        bad=_common_bad()
        + [
            ({"momentum": 1.0}, "momentum", ValueError),
            ({"momentum": -0.1}, "momentum", ValueError),
            ({"nesterov": "yes"}, "nesterov", TypeError),
            ({"ns_coefficients": (3.4, -4.7)}, "ns_coefficients", TypeError),
            ({"ns_coefficients": (3.4, math.nan, 2.0)}, "ns_coefficients[1]", ValueError),
            ({"ns_steps": -1}, "ns_steps", ValueError),
            ({"ns_steps": 2.5}, "ns_steps", TypeError),
            ({"eps": 0.0}, "eps", ValueError),
            ({"companion": 3}, "companion", TypeError),
        ],
        buffer_shapes={
            "b": [(3, 4), (0,), (0,), (0,)],
            "adamw.m": [(0,), (4,), (2,), ()],
            "adamw.v": [(0,), (4,), (2,), ()],
            "nesterov.b": [(0,), (4,), (2,), ()],
            "adam.m": [(0,), (4,), (2,), ()],
            "adam.v": [(0,), (4,), (2,), ()],
            "adam.v_max": [(0,), (4,), (2,), ()],
        },
    ),
    OptimizerInfo(
        "lbfgs",
        ds.LBFGS,
        # driven by minimize_step(fun_and_grad, ...), not step(): STEPPED leaves it out of the
        # generic tests; tests/test_lbfgs.py runs these settings against torch.optim.LBFGS and
        # reference.LBFGS on every built-in surface
        reference={
            "defaults": {},
            "strong-wolfe": {"line_search_fn": "strong_wolfe"},
            "history-2": {"history_size": 2},
            "history-3-wolfe": {"history_size": 3, "line_search_fn": "strong_wolfe"},
            "short-calls": {"lr": 0.5, "max_iter": 4, "max_eval": 6, "line_search_fn": "strong_wolfe"},
            "tolerances-history-1": {"tolerance_grad": 1e-5, "tolerance_change": 1e-5, "history_size": 1},
        },
        quadratic={},
        rosenbrock={"line_search_fn": "strong_wolfe", "tolerance_change": 1e-14},
        rosenbrock_steps=40,
        variants=[{"history_size": 5}, {"line_search_fn": "strong_wolfe", "max_iter": 5}],
        bad=[
            ({"lr": -1.0}, "lr", ValueError),
            ({"lr": math.nan}, "lr", ValueError),
            ({"lr": True}, "lr", TypeError),
            ({"lr": inverse_time}, "lr", TypeError),
            ({"max_iter": 0}, "max_iter", ValueError),
            ({"max_iter": 2.5}, "max_iter", TypeError),
            ({"max_eval": 0}, "max_eval", ValueError),
            ({"tolerance_grad": -1e-7}, "tolerance_grad", ValueError),
            ({"tolerance_change": math.inf}, "tolerance_change", ValueError),
            ({"history_size": 0}, "history_size", ValueError),
            ({"history_size": "10"}, "history_size", TypeError),
        ],
    ),
]

BY_NAME: dict[str, OptimizerInfo] = {info.name: info for info in REGISTRY}
#: rules stepped with ``opt.step(params, grads, state)`` (all but those that need the objective
#: at trial points, such as L-BFGS, which have tests of their own): the generic tests run these
STEPPED: list[OptimizerInfo] = [info for info in REGISTRY if not info.cls.needs_objective]
#: rules with a fused kernel (every elementwise one must have one: test_fused.py checks)
FUSED: list[OptimizerInfo] = [info for info in STEPPED if info.cls._kernel is not None]
ids: Callable[[OptimizerInfo], str] = lambda info: info.name  # noqa: E731


# -- coverage: what CI says when a rule lacks a piece -------------------------------------------
HERE = "tests/optim_registry.py REGISTRY"


def registry_mismatch(library: Iterable[str], tests: Iterable[OptimizerInfo]) -> list[str]:
    """How the library's registry (names) and the test registry differ, both ways."""
    tests = list(tests)
    library, mine = list(library), [info.name for info in tests]
    out = [
        f"optimizer {n!r} is registered in descend but has no OptimizerInfo in {HERE}: add one "
        "(settings that converge on the test problems, variants, bad inputs, settings to compare "
        "with its scalar reference) so the generic tests run for it"
        for n in library
        if n not in mine
    ]
    out += [
        f"{HERE} has {n!r}, which descend does not register (ds.optim.names()): register the "
        "rule in src/descend/optim/__init__.py, or remove the entry"
        for n in mine
        if n not in library
    ]
    out += [f"{HERE} lists {n!r} twice" for n in dict.fromkeys(mine) if mine.count(n) > 1]
    for info in tests:
        if info.name in library and ds.optim.get(info.name) is not info.cls:
            out.append(
                f"{HERE}[{info.name!r}] says {info.cls.__name__}, descend registers "
                f"{ds.optim.get(info.name).__name__}"
            )
    return out


def reference_mismatch(
    library: Iterable[str], references: dict[str, Any], tests: Iterable[OptimizerInfo]
) -> list[str]:
    """Rules without a scalar reference (``reference.REFERENCES``) or settings to compare it at."""
    library = list(library)
    out = [
        f"optimizer {n!r} has no scalar reference: write one in tests/reference.py from the paper "
        "or the peer library's code (never importing descend) and add it to REFERENCES "
        f"under {n!r}"
        for n in library
        if n not in references
    ]
    out += [
        f"tests/reference.py REFERENCES has {n!r}, which descend does not register (ds.optim.names())"
        for n in references
        if n not in library
    ]
    out += [
        f"{HERE}[{info.name!r}] has no reference settings: give it reference={{id: kwargs}} to "
        "compare with its scalar reference over many steps"
        for info in tests
        if info.name in library and not info.reference
    ]
    return out


def rule_classes() -> list[type]:
    """Every update rule defined in a module of ``descend.optim`` (a file a contributor added
    is found here whether or not anything imports it)."""
    found: dict[type, None] = {}
    for mod in pkgutil.iter_modules(ds.optim.__path__, "descend.optim."):
        module = importlib.import_module(mod.name)
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, ds.Optimizer)
                and obj is not ds.Optimizer
                and obj.__module__ == module.__name__
            ):
                found[obj] = None
    return list(found)


def unregistered(classes: Iterable[type], library: Iterable[str]) -> list[str]:
    """Rule classes no registry entry builds."""
    registered = {ds.optim.get(n) for n in library}
    return [
        f"{c.__module__}.{c.__qualname__} is an update rule with no registry entry: add "
        f"register({c.__qualname__}) to src/descend/optim/__init__.py and its facts "
        f"({', '.join(ds.optim.FACTS)}) to the class"
        for c in classes
        if c not in registered
    ]


def coverage_problems() -> list[str]:
    """Everything a registered rule lacks in the tests, as the messages CI prints."""
    library = ds.optim.names()
    return (
        unregistered(rule_classes(), library)
        + registry_mismatch(library, REGISTRY)
        + reference_mismatch(library, reference.REFERENCES, REGISTRY)
    )
