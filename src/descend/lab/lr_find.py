"""The learning-rate range test: sweep lr exponentially, watch the loss, suggest a starting lr."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import check_int, check_real, invalid
from ..data import check_batching
from ..optim import Optimizer, rule
from ..schedules import Exponential
from ..train.callbacks import Callback
from ..train.history import Columns
from ..train.stopping import DivergenceGuard

__all__ = [
    "BACKOFF",
    "DECADES",
    "LRFindResult",
    "RecommendationCheck",
    "check_recommendation",
    "lr_find",
    "recommend",
    "suggest",
]

#: the recommended lr is the lr of the lowest smoothed loss divided by this: measured on four
#: bundled problems (docs/lr-find.md), where it lands within 10% of the best lr of a log grid
BACKOFF = 4.0


@dataclass
class LRFindResult:
    """Loss against learning rate for one sweep, with the suggested learning rates.

    ``lr`` is the one recommended lr and ``advice`` says why (see :func:`recommend`).
    ``suggestions`` holds other readings of the curve: ``"valley"`` (inside the longest stretch
    where the smoothed loss falls, two thirds of the way down: fastai's rule), ``"steep"``
    (steepest fall of the smoothed loss against log lr) and ``"min"`` (the lr of the lowest
    smoothed loss divided by 10: Smith's rule of thumb).
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestions: dict[str, float]
    stopped_early: bool
    reason: str
    config: dict[str, Any] = field(default_factory=dict)
    lr: float = math.nan
    advice: str = ""
    #: the model swept (resolved from its name when a name was given); not part of the summary
    model: Any = field(default=None, repr=False, compare=False)

    def marks(self) -> dict[str, float]:
        """The lrs a picture marks: the recommended one first, then the other readings."""
        return ({"recommended": self.lr} if math.isfinite(self.lr) else {}) | dict(self.suggestions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "recommended": self.lr,
            "advice": self.advice,
            "suggestions": self.suggestions,
            "stopped_early": self.stopped_early,
            "reason": self.reason,
            "steps": len(self.lrs),
            "lr_range": [float(self.lrs[0]), float(self.lrs[-1])] if len(self.lrs) else [],
            **self.config,
        }


def suggest(lrs: np.ndarray, smoothed: np.ndarray) -> dict[str, float]:
    """Suggested learning rates from a smoothed range-test curve (see :class:`LRFindResult`)."""
    lrs, smoothed = np.asarray(lrs, dtype=np.float64), np.asarray(smoothed, dtype=np.float64)
    if len(lrs) < 3:
        raise ValueError(f"lr_find: need at least 3 points to suggest a learning rate, got {len(lrs)}")
    i_min = int(np.argmin(smoothed))
    out = {"min": float(lrs[i_min] / 10.0)}
    slope = np.gradient(smoothed, np.log(lrs))
    out["steep"] = float(lrs[int(np.argmin(slope[: max(i_min, 1) + 1]))])
    falling = np.diff(smoothed) < 0
    best_len, best_start, run_start = 0, 0, None
    for i, f in enumerate(np.append(falling, False)):
        if f and run_start is None:
            run_start = i
        elif not f and run_start is not None:
            if i - run_start > best_len:
                best_len, best_start = i - run_start, run_start
            run_start = None
    out["valley"] = float(lrs[best_start + (2 * best_len) // 3]) if best_len else out["min"]
    return out


def recommend(lrs: np.ndarray, smoothed: np.ndarray, *, stopped_early: bool) -> tuple[float, str]:
    """One lr and the reason: the lr of the lowest smoothed loss divided by :data:`BACKOFF`.

    At the lowest point the lr is at the edge of what the model tolerates; a whole run at that
    lr overshoots, so the recommendation backs off by a factor of 4 (Smith suggests 10, which
    measured too cautious for short runs: docs/lr-find.md). When the loss was still falling at
    the end of the sweep, the edge was not found and the advice says so.
    """
    lrs, smoothed = np.asarray(lrs, dtype=np.float64), np.asarray(smoothed, dtype=np.float64)
    if len(lrs) < 3:
        raise ValueError(f"lr_find: need at least 3 points to recommend a learning rate, got {len(lrs)}")
    i = int(np.argmin(smoothed))
    edge = float(lrs[i])
    lr = edge / BACKOFF
    why = (
        f"the smoothed loss was lowest at lr={edge:.3g} (the edge of stability); a quarter of it "
        "trains steadily"
    )
    if i >= len(lrs) - 2 and not stopped_early:
        why += (
            f"; the loss was still falling at the end of the sweep (lr={float(lrs[-1]):.3g}), so a "
            "larger lr may be better: sweep to a larger end_lr"
        )
    return lr, why


class _Sweep(Callback):
    """Records each step's lr, batch loss and smoothed loss during an LR range test, and stops fit
    where the divergence guard every loop shares (:mod:`descend.train.stopping`) finds the
    smoothed loss above ``diverge_factor`` times its best; ``params`` (if given) replace the
    initial parameters before the first step."""

    def __init__(self, beta: float, diverge_factor: float, params: dict[str, np.ndarray] | None):
        self.diverge_factor, self.params = diverge_factor, params
        # "above diverge_factor times its best" is the guard's growth by diverge_factor - 1 times
        # the best, smoothed with lr_find's beta, its reference the first step, and no floor
        self.guard = DivergenceGuard(diverge_factor - 1.0, beta=beta, min_rows=1, floor=0.0)
        self.record = Columns(("step", "lr", "loss", "smoothed"))
        self.reason = ""
        self.model: Any = None
        self.standardized = False

    def on_train_begin(self, run: Any) -> None:
        self.model, self.standardized = run.model, run.scaler is not None
        if self.params is None:
            return
        if set(self.params) != set(run.params):
            raise ValueError(
                f"lr_find: params must hold the model's arrays {sorted(run.params)}, "
                f"got {sorted(self.params)}"
            )
        for k, v in run.params.items():
            given = np.asarray(self.params[k])
            if given.shape != v.shape:
                raise ValueError(f"lr_find: params[{k!r}] must have shape {v.shape}, got {given.shape}")
            np.copyto(v, given)  # the run's own arrays: the caller's stay untouched

    def on_step_end(self, run: Any, info: dict[str, Any]) -> bool | None:
        step, loss, lr = int(info["step"]), float(info["loss"]), float(info["lr"])
        found = self.guard.check(loss)
        self.record.append((step, lr, loss, self.guard.smoothed))
        if found is None:
            return None
        over = f", over {self.diverge_factor:g}x its best," if found.grew else ""
        self.reason = f"{'smoothed ' if found.grew else ''}{found.cause}{over} at step {step} (lr={lr:.3g})"
        return True


def _needs_objective(optimizer: str | Optimizer) -> bool:
    cls = type(optimizer) if isinstance(optimizer, Optimizer) else rule(optimizer).cls
    return cls.needs_objective


def lr_find(
    model: Any,
    data: Any,
    optimizer: str = "sgd",
    *,
    start_lr: float = 1e-6,
    end_lr: float = 10.0,
    steps: int = 100,
    batch_size: int | None = 64,
    beta: float = 0.9,
    diverge_factor: float = 4.0,
    params: dict[str, np.ndarray] | None = None,
    seed: int = 0,
    options: dict[str, Any] | None = None,
    standardize: bool | str = "auto",
    classes: Any = None,
) -> LRFindResult:
    """Run the LR range test (Smith, 2017; the fastai learning-rate finder).

    The lr grows geometrically from ``start_lr`` to ``end_lr`` over ``steps`` mini-batch updates;
    the loss of each batch is smoothed with a bias-corrected moving average (``beta``) and the
    sweep stops once the smoothed loss exceeds ``diverge_factor`` times its best value or turns
    non-finite. It works on a copy: ``params`` (if given) and everything else are left as they
    were, so a model under training is not disturbed.

    ``model`` and ``data`` are what :func:`descend.fit` takes (a model or its name; ``(X, y)``
    arrays or any :mod:`descend.data` source: files, Dask), and the sweep is a short ``fit``:
    class labels are found and encoded, and features standardized (``standardize``, as in
    ``fit``), exactly as the training the recommended lr is for.
    """
    from ..errors import DivergenceError
    from ..train import fit

    owner = "lr_find"
    if isinstance(optimizer, (str, Optimizer)) and _needs_objective(optimizer):
        raise invalid(
            owner,
            "optimizer",
            optimizer,
            "be a rule stepped by gradients: L-BFGS has no learning rate to find (its curvature "
            "pairs and line search set each step, on the whole objective); run it with "
            "ds.minimize(..., optimizer='lbfgs')",
        )
    start_lr = check_real(owner, "start_lr", start_lr, low=0.0, low_open=True)
    end_lr = check_real(owner, "end_lr", end_lr, low=0.0, low_open=True)
    if end_lr <= start_lr:
        raise invalid(owner, "end_lr", end_lr, f"be > start_lr ({start_lr!r})")
    steps = check_int(owner, "steps", steps, low=3)
    beta = check_real(owner, "beta", beta, low=0.0, high=1.0, high_open=True)
    diverge_factor = check_real(owner, "diverge_factor", diverge_factor, low=1.0, low_open=True)
    batch_size, _ = check_batching(owner, batch_size, None, False)
    gamma = (end_lr / start_lr) ** (1.0 / (steps - 1))
    schedule = Exponential(start_lr, gamma)
    sweep = _Sweep(beta, diverge_factor, params)
    reason, stopped = f"completed {steps} steps", False
    try:
        # every epoch holds at least one batch, so `steps` epochs always reach max_steps
        fit(
            model,
            data,
            optimizer,
            lr=schedule,
            batch_size=batch_size,
            epochs=steps,
            max_steps=steps,
            seed=seed,
            callbacks=[sweep],
            progress=False,
            divergence_factor=None,  # the sweep's own guard stops it (fit's still refuses NaN/inf)
            standardize=standardize,
            classes=classes,
            options=options,
        )
    except DivergenceError as exc:
        if sweep.model is None:  # it did not get as far as training
            raise
        lr = exc.lr if exc.lr is not None else schedule(max(int(exc.step) - 1, 0))
        reason, stopped = f"{exc.cause} at step {exc.step} (lr={float(lr):.3g})", True
    if sweep.reason:
        reason, stopped = sweep.reason, True
    lr_arr, sm_arr = sweep.record.array("lr", np.float64), sweep.record.array("smoothed", np.float64)
    # suggestions ignore the final blow-up, which the stop rule lets in by one point
    cut = len(lr_arr) - 1 if stopped and len(lr_arr) > 3 else len(lr_arr)
    recommended, advice = recommend(lr_arr[:cut], sm_arr[:cut], stopped_early=stopped)
    return LRFindResult(
        lrs=lr_arr,
        losses=sweep.record.array("loss", np.float64),
        smoothed=sm_arr,
        suggestions=suggest(lr_arr[:cut], sm_arr[:cut]),
        stopped_early=stopped,
        reason=reason,
        lr=recommended,
        advice=advice,
        config={
            "optimizer": optimizer if isinstance(optimizer, str) else optimizer.name,
            "start_lr": start_lr,
            "end_lr": end_lr,
            "batch_size": batch_size,
            "beta": beta,
            "diverge_factor": diverge_factor,
            "seed": seed,
            "standardized": sweep.standardized,
        },
        model=sweep.model,
    )


#: the 8-point log grid the recommendation is graded against
DECADES: tuple[float, ...] = tuple(10.0**k for k in range(-4, 4))


@dataclass(frozen=True)
class RecommendationCheck:
    """How the recommended lr of one range test fared: the validation loss after a fixed budget
    at the recommended lr and at every lr of a grid (``inf``: diverged)."""

    problem: str
    recommended: float
    recommended_loss: float
    grid: tuple[float, ...]
    grid_losses: tuple[float, ...]
    budget: str
    others: dict[str, tuple[float, float]] = field(default_factory=dict)  # reading -> (lr, loss)

    @property
    def best_lr(self) -> float:
        return self.grid[int(np.argmin(self.grid_losses))]

    @property
    def best_loss(self) -> float:
        return float(min(self.grid_losses))

    @property
    def ratio(self) -> float:
        """Recommended lr's loss over the best grid lr's (1.1 = 10% worse)."""
        return self.recommended_loss / self.best_loss


def check_recommendation(
    problem: str,
    make_model: Any,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    *,
    optimizer: str = "sgd",
    grid: tuple[float, ...] = DECADES,
    batch_size: int = 64,
    epochs: int = 10,
    seed: int = 0,
) -> RecommendationCheck:
    """Run the range test on ``train``, then train ``make_model()`` for ``epochs`` at the
    recommended lr, at each lr of ``grid`` and at the other readings of the curve; the score is
    the loss on ``validation``."""
    from ..errors import DivergenceError
    from ..train import fit

    def score(lr: float) -> float:
        try:
            run = fit(
                make_model(),
                train,
                optimizer=optimizer,
                lr=lr,
                batch_size=batch_size,
                epochs=epochs,
                seed=seed,
                progress=False,
                standardize=False,  # the problems come standardized; the lr is what is measured
            )
        except DivergenceError:
            return math.inf
        loss = run.loss(*validation)
        return loss if math.isfinite(loss) else math.inf

    found = lr_find(make_model(), train, optimizer, batch_size=batch_size, seed=seed, standardize=False)
    return RecommendationCheck(
        problem=problem,
        recommended=found.lr,
        recommended_loss=score(found.lr),
        grid=tuple(grid),
        grid_losses=tuple(score(lr) for lr in grid),
        budget=f"{optimizer}, batch size {batch_size}, {epochs} epochs, validation loss",
        others={k: (lr, score(lr)) for k, lr in found.suggestions.items()},
    )
