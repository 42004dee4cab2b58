"""descend: gradient descent done completely — update rules, schedules, models and the lab."""

from __future__ import annotations

from . import data, functions, models, optim, schedules
from .errors import CheckpointError, CheckpointWarning, DivergenceError, RunFileError
from .optim import (
    ASGD,
    LBFGS,
    SGD,
    AdaDelta,
    Adafactor,
    AdaGrad,
    Adam,
    Adamax,
    AdamW,
    Lion,
    Momentum,
    Muon,
    Nadam,
    Nesterov,
    Optimizer,
    OptState,
    Prodigy,
    RAdam,
    RMSprop,
    Rprop,
    ScheduleFreeAdamW,
    ScheduleFreeSGD,
    load_state,
    optimizer,
    save_state,
)
from .train import MinimizeResult, Run, fit, load_run, minimize

__version__ = "0.1.0"

__all__ = [
    "ASGD",
    "LBFGS",
    "SGD",
    "AdaDelta",
    "AdaGrad",
    "Adafactor",
    "Adam",
    "AdamW",
    "Adamax",
    "CheckpointError",
    "CheckpointWarning",
    "Diagnosis",
    "DivergenceError",
    "Lion",
    "MinimizeResult",
    "Momentum",
    "Monitor",
    "Muon",
    "Nadam",
    "Nesterov",
    "OptState",
    "Optimizer",
    "Prodigy",
    "RAdam",
    "RMSprop",
    "Rprop",
    "Run",
    "RunFileError",
    "ScheduleFreeAdamW",
    "ScheduleFreeSGD",
    "__version__",
    "data",
    "diagnose",
    "fit",
    "functions",
    "load_run",
    "load_state",
    "minimize",
    "models",
    "optim",
    "optimizer",
    "save_state",
    "schedules",
]


def __getattr__(name: str):
    # the lab (and the drawing it leads to) loads on first use, so ``import descend`` stays cheap
    import importlib

    if name in ("lab", "viz", "sklearn"):  # sklearn: the estimators, and scikit-learn with them
        return importlib.import_module(f".{name}", __name__)
    if name in ("diagnose", "Diagnosis"):
        return getattr(importlib.import_module(".lab.diagnose", __name__), name)
    if name == "Monitor":
        return importlib.import_module(".lab.monitor", __name__).Monitor
    raise AttributeError(f"module 'descend' has no attribute {name!r}")
