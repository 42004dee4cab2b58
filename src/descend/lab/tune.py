"""Choose a learning rate by a small, disclosed grid search (fair optimizer comparisons)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import check_int, check_real
from ..train import minimize

__all__ = ["LR_GRID", "TuneResult", "tune_lr"]

#: half-decade grid from 1e-4 to 10: wide enough for every optimizer's useful range.
LR_GRID: tuple[float, ...] = tuple(float(f"{v:.3g}") for v in 10.0 ** np.arange(-4.0, 1.01, 0.5))


@dataclass(frozen=True)
class TuneResult:
    """Best lr and the score (``inf`` if diverged) of every lr tried."""

    lr: float
    scores: dict[float, float]
    steps: int
    criterion: str = (
        "lowest mean loss over the second half of `steps` updates (a run that converged early "
        "keeps its final loss); diverged runs excluded"
    )


def tune_lr(
    fun: Any,
    x0: Any,
    optimizer: str,
    *,
    grid: tuple[float, ...] = LR_GRID,
    steps: int = 300,
    options: dict[str, Any] | None = None,
    noise: float = 0.0,
    seed: int = 0,
    tol: float | None = None,
) -> TuneResult:
    """Run ``optimizer`` from ``x0`` for ``steps`` updates at each lr of ``grid``; keep the best.

    The score is the mean loss over the second half of the run: unlike the final loss alone it
    does not reward an lr that bounces chaotically and happens to end low. With ``tol`` a run
    stops once its gradient norm is ``<= tol`` and keeps its final loss for the rest of the
    window. Ties go to the smaller lr. If every lr diverges, the smallest is returned
    with all scores ``inf``.

    >>> import descend as ds
    >>> f = ds.functions.get("quadratic", kappa=10)
    >>> tune_lr(f, f.start, "sgd", grid=(0.01, 0.1, 0.5), steps=50).lr
    0.1
    """
    steps = check_int("tune_lr", "steps", steps, low=1)
    if not grid:
        raise ValueError("tune_lr: grid must hold at least one learning rate, got ()")
    if tol is not None:
        tol = check_real("tune_lr", "tol", tol, low=0.0)
    scores: dict[float, float] = {}
    for lr in grid:
        res = minimize(
            fun,
            x0,
            optimizer=optimizer,
            lr=lr,
            max_steps=steps,
            tol=tol,
            options=options,
            noise=noise,
            seed=seed,
            on_divergence="stop",
            record_path=False,
        )
        losses = res.history.loss
        if len(losses) < steps + 1:  # converged early: it stays at its final loss
            losses = np.concatenate([losses, np.full(steps + 1 - len(losses), losses[-1])])
        score = float(np.mean(losses[(steps + 1) // 2 :])) if not res.diverged else math.inf
        scores[float(lr)] = score if math.isfinite(score) else math.inf
    best = min(scores, key=lambda lr: (scores[lr], lr))
    return TuneResult(lr=best, scores=scores, steps=steps)
