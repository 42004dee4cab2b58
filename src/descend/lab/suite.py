"""Run every optimizer on a set of test functions and tabulate how each one fares."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .. import functions as fns
from ..optim import names as optimizer_names
from ..optim import rule as optimizer_rule
from ..train import minimize
from .tune import LR_GRID, tune_lr

__all__ = ["DEMO_FUNCTIONS", "DEMO_OPTIMIZERS", "SuiteResult", "SuiteRow", "run_suite"]

DEMO_FUNCTIONS: tuple[str, ...] = ("quadratic", "rosenbrock", "beale", "two_well")
DEMO_OPTIMIZERS: tuple[str, ...] = tuple(optimizer_names())


@dataclass(frozen=True)
class SuiteRow:
    function: str
    optimizer: str
    lr: float
    loss: float
    distance: float  # to the nearest known minimum (nan if the function has none)
    found: str  # "global" / "local": the kind of minimum nearest the end point ("-" if none)
    steps: int
    converged: bool
    diverged: bool
    seconds: float


@dataclass
class SuiteResult:
    rows: list[SuiteRow]
    max_steps: int
    tol: float
    lr_rule: str
    grid: tuple[float, ...] = field(default=LR_GRID)

    def for_function(self, name: str) -> list[SuiteRow]:
        return [r for r in self.rows if r.function == name]

    def to_records(self) -> list[dict[str, Any]]:
        return [asdict(r) for r in self.rows]


def run_suite(
    functions: Iterable[str] = DEMO_FUNCTIONS,
    optimizers: Sequence[str] = DEMO_OPTIMIZERS,
    *,
    max_steps: int = 1000,
    tol: float = 1e-6,
    tune_steps: int | None = None,
    lrs: dict[str, float] | None = None,
    progress: Callable[[str], None] | None = None,
    grid: Sequence[float] = LR_GRID,
) -> SuiteResult:
    """Minimise each function from its default start with each optimizer.

    Each optimizer's lr is picked per function from ``grid`` (:data:`~descend.lab.LR_GRID`) by
    :func:`~descend.lab.tune_lr` over runs of ``tune_steps`` updates (default ``max_steps``: the
    lr that is best for this run length) unless ``lrs`` fixes it. The run then goes on for up to
    ``max_steps`` updates or until the gradient norm is ``<= tol``. A rule that needs the
    objective at trial points (L-BFGS) is not tuned: it runs at its ``race_lr`` (1, its own step).
    """
    tune_steps = max_steps if tune_steps is None else tune_steps
    rows: list[SuiteRow] = []
    for fname in functions:
        f = fns.get(fname)
        for oname in optimizers:
            if progress is not None:
                progress(f"{fname}: {oname}")
            t0 = time.perf_counter()
            entry = optimizer_rule(oname)
            if lrs and oname in lrs:
                lr = lrs[oname]
            elif entry.cls.needs_objective:
                # a quasi-Newton step is scaled by its curvature pairs: lr 1 (its race_lr) is the
                # method's own step, and each of its runs costs many evaluations per update
                lr = entry.race_lr
            else:
                # over the whole window (no tol): an lr is not rewarded for landing on the
                # minimum by chance (sign-like rules at lr 1 from the quadratic's start (1, 1))
                lr = tune_lr(f, f.start, oname, grid=tuple(grid), steps=tune_steps, tol=None).lr
            res = minimize(
                f,
                f.start,
                optimizer=oname,
                lr=lr,
                max_steps=max_steps,
                tol=tol,
                on_divergence="stop",
                record_path=False,
            )
            found = "-"
            distance = math.nan
            if f.minima:
                nearest, distance = f.nearest_minimum(res.x)
                is_global = any(np.array_equal(nearest, m) for m in f.global_minima)
                found = "global" if is_global else "local"
            rows.append(
                SuiteRow(
                    function=fname,
                    optimizer=oname,
                    lr=lr,
                    loss=float(res.fun),
                    distance=float(distance),
                    found=found,
                    steps=res.nit,
                    converged=res.success and not res.diverged,
                    diverged=res.diverged,
                    seconds=time.perf_counter() - t0,
                )
            )
    rule = (
        "given"
        if lrs
        else (
            f"tuned per function on the grid {tuple(grid)} (lowest mean loss over the second half of "
            f"{tune_steps} steps)"
        )
    )
    return SuiteResult(rows=rows, max_steps=max_steps, tol=tol, lr_rule=rule, grid=tuple(grid))
