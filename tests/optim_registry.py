"""The optimizers under test: one entry each drives every generic test in test_optim.py.

Adding an optimizer means adding one entry here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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

    def make(self, **kwargs: Any) -> ds.Optimizer:
        return self.cls(**kwargs)


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
        quadratic={"lr": 0.05},
        rosenbrock={"lr": 5e-4},
        rosenbrock_steps=5000,
        variants=[{"lr": 0.05, "momentum": 0.8, "maximize": False, "weight_decay": 0.05}],
        bad=_common_bad()
        + [({"momentum": 0.0}, "nesterov", ValueError), ({"momentum": math.inf}, "momentum", ValueError)],
    ),
    OptimizerInfo(
        "adagrad",
        ds.AdaGrad,
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
        "adamw",
        ds.AdamW,
        quadratic={"lr": 0.05, "weight_decay": 0.0},
        rosenbrock={"lr": 0.02, "weight_decay": 0.0},
        rosenbrock_steps=5000,
        variants=[{"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}],
        bad=_common_bad() + _betas_bad(),
    ),
    OptimizerInfo(
        "nadam",
        ds.Nadam,
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
        "adamax",
        ds.Adamax,
        quadratic={"lr": 0.05},
        rosenbrock={"lr": 0.02},
        rosenbrock_steps=7000,
        variants=[{"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.01}],
        bad=_common_bad() + _betas_bad(),
    ),
    OptimizerInfo(
        "adadelta",
        ds.AdaDelta,
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
]

BY_NAME: dict[str, OptimizerInfo] = {info.name: info for info in REGISTRY}
ids: Callable[[OptimizerInfo], str] = lambda info: info.name  # noqa: E731
