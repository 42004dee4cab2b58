"""Optimizer races: several update rules from one start on one surface, as a plain result."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._registry import normalize
from .._validation import check_int, check_real, describe
from ..optim import rule
from ..train import MinimizeResult, minimize
from .custom import resolve_function
from .tune import LR_GRID, tune_lr

__all__ = ["CLASSIC_SIX", "RaceEntry", "RaceResult", "race"]

#: the six optimizers of the classic pictures
CLASSIC_SIX: tuple[str, ...] = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")


@dataclass
class RaceEntry:
    """One optimizer's run in a race."""

    optimizer: str
    label: str  # name with the hyperparameters that matter, for legends
    hyperparameters: dict[str, Any]
    lr: float
    result: MinimizeResult
    steps_to_tol: int | None  # first step within ``tol`` of a known minimum (distance), else None
    distance: float  # final distance to the nearest known minimum (nan when none are known)
    tune_scores: dict[float, float] | None = None

    @property
    def path(self) -> np.ndarray:
        return self.result.history.path

    @property
    def losses(self) -> np.ndarray:
        return self.result.history.loss

    @property
    def diverged(self) -> bool:
        return self.result.diverged

    @property
    def final_loss(self) -> float:
        return float(self.result.fun)


@dataclass
class RaceResult:
    function: Any
    start: np.ndarray
    entries: list[RaceEntry]
    steps: int
    noise: float
    seed: int
    tol: float
    lr_rule: str
    grad_method: str
    extra: dict[str, Any] = field(default_factory=dict)

    def table(self) -> list[dict[str, Any]]:
        """One row per optimizer: the numbers the CLI prints and summary.json holds."""
        return [
            {
                "optimizer": e.optimizer,
                "label": e.label,
                "lr": e.lr,
                "final_loss": e.final_loss,
                "distance_to_nearest_minimum": e.distance,
                "steps_to_tol": e.steps_to_tol,
                "steps": e.result.nit,
                "evaluations": e.result.nfev,
                "diverged": e.diverged,
            }
            for e in self.entries
        ]


def _label(name: str, lr: float, opt: Any) -> str:
    """``"adam (lr=0.05, betas=(0.9, 0.999))"``: the hyperparameters that shape the path."""
    hp = opt.hyperparameters()
    parts = [f"lr={lr:g}"]
    shaping = ("momentum", "nesterov", "betas", "alpha", "rho", "centered", "amsgrad", "weight_decay")
    for key in (*shaping, "line_search_fn"):
        value = hp.get(key)
        if value in (None, False, 0.0) or (key == "nesterov" and name == "nesterov"):
            continue
        parts.append(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}")
    return f"{name} ({', '.join(parts)})"


def race(
    function: Any,
    optimizers: Sequence[str] = CLASSIC_SIX,
    *,
    lrs: dict[str, float] | float | None = None,
    tune: bool = False,
    steps: int = 500,
    start: Sequence[float] | None = None,
    noise: float = 0.0,
    seed: int = 0,
    tol: float = 1e-3,
    options: dict[str, dict[str, Any]] | None = None,
    grid: Sequence[float] = LR_GRID,
) -> RaceResult:
    """Run each optimizer from the same start on ``function`` for ``steps`` updates.

    ``lrs``: one lr for all, or a dict per optimizer; otherwise each rule's ``race_lr``, or with
    ``tune=True`` the best lr of ``grid`` for this run length (:func:`~descend.lab.tune_lr`).
    ``noise`` adds seeded Gaussian noise to every gradient (each optimizer sees the same draws).
    ``tol`` is the distance to a known minimum that counts as arrived (``steps_to_tol``).

    L-BFGS (``"lbfgs"``, the second-order baseline) runs as :func:`~descend.minimize` runs it:
    a step is one of its iterations, which may evaluate the function several times (the
    table's ``evaluations`` counts them, for every rule), and its path ends where it stops
    moving (its own tolerances), often well before ``steps``. Its default is torch's: fixed
    steps of ``lr``; ``options={"lbfgs": {"line_search_fn": "strong_wolfe"}}`` adds the line search.
    """
    owner = "race"
    f = resolve_function(function, start=start)
    steps = check_int(owner, "steps", steps, low=1)
    noise = check_real(owner, "noise", noise, low=0.0)
    tol = check_real(owner, "tol", tol, low=0.0, low_open=True)
    seed = check_int(owner, "seed", seed, low=0)
    if not optimizers:
        raise ValueError(f"{owner}: optimizers must name at least one optimizer, got {describe(optimizers)}")
    x0 = np.asarray(start if start is not None else f.start, dtype=np.float64)
    if x0.shape != (getattr(f, "dim", x0.size),):
        raise ValueError(f"{owner}: start must have {f.dim} coordinates, got {x0.tolist()}")
    # every name read once, as the registry reads it: " Adam" is "adam" in lrs and options too
    rules = [rule(name) for name in optimizers]
    optimizers = [r.name for r in rules]
    options = {normalize(k): v for k, v in (options or {}).items()}
    if isinstance(lrs, dict):
        lrs = {normalize(k): v for k, v in lrs.items()}
    for r in rules:
        r.make(**options.get(r.name, {}))  # validate every setting before running any
    entries: list[RaceEntry] = []
    given, defaults = [], []
    for r in rules:
        name = r.name
        opts = dict(options.get(name, {}))
        scores = None
        if tune:
            t = tune_lr(f, x0, name, grid=tuple(grid), steps=steps, options=opts, noise=noise, seed=seed)
            lr, scores = t.lr, t.scores
        elif isinstance(lrs, dict) and name in lrs:
            lr = float(lrs[name])
            given.append(f"{name} {lr:g}")
        elif isinstance(lrs, (int, float)) and not isinstance(lrs, bool):
            lr = float(lrs)
            given.append(f"{name} {lr:g}")
        else:
            lr = r.race_lr
            defaults.append(f"{name} {lr:g}")
        opt = r.make(lr=lr, **opts)
        res = minimize(
            f,
            x0,
            optimizer=opt,
            max_steps=steps,
            tol=None,
            noise=noise,
            seed=seed,
            on_divergence="stop",
            record_path=True,
        )
        minima = list(getattr(f, "minima", []) or [])
        distance, steps_to_tol = math.nan, None
        if minima:
            M = np.stack(minima)
            d = np.min(np.linalg.norm(res.history.path[:, None, :] - M[None], axis=2), axis=1)
            distance = float(d[-1])
            hit = np.flatnonzero(d <= tol)
            steps_to_tol = int(hit[0]) if hit.size else None
        entries.append(
            RaceEntry(
                name, _label(name, lr, opt), opt.hyperparameters(), lr, res, steps_to_tol, distance, scores
            )
        )
    if tune:
        lr_rule = f"tuned: best of {tuple(grid)} by mean loss over the second half of {steps} steps"
    else:
        parts = []
        if given:
            parts.append("given: " + ", ".join(given))
        if defaults:
            parts.append("race default (moves visibly on the built-in surfaces): " + ", ".join(defaults))
        lr_rule = "; ".join(parts)
    return RaceResult(
        function=f,
        start=x0,
        entries=entries,
        steps=steps,
        noise=noise,
        seed=seed,
        tol=tol,
        lr_rule=lr_rule,
        grad_method=getattr(f, "grad_method", "analytic"),
    )
