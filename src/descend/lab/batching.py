"""Batch vs stochastic vs mini-batch gradient descent on one finite-sum problem, side by side."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import check_int
from ..train import fit
from ..train.callbacks import Callback
from .datasets import Dataset, load

__all__ = ["BatchingCurve", "BatchingResult", "compare_batching", "gradient_noise"]

#: constant lr per batch size for SGD on standardized least squares (curvature ~2): the full
#: batch can take big steps; single samples need small ones to keep their noise in check.
DEFAULT_BATCHING_LR: dict[int | None, float] = {None: 0.2, 1: 0.005}


def _default_lr(batch_size: int | None) -> float:
    if batch_size in DEFAULT_BATCHING_LR:
        return DEFAULT_BATCHING_LR[batch_size]
    assert batch_size is not None
    return min(0.2, 0.005 * batch_size)  # linear scaling rule, capped at the full-batch lr


@dataclass
class BatchingCurve:
    """Full-data loss of one strategy, measured ``evals_per_epoch`` times per epoch."""

    label: str
    batch_size: int | None
    lr: float
    updates_per_epoch: int
    updates: np.ndarray
    epochs: np.ndarray  # samples seen / n
    time: np.ndarray  # training wall time, evaluation time excluded
    loss: np.ndarray  # loss on the whole training set
    batch_loss: np.ndarray  # loss of each update's own batch

    @property
    def seconds_per_update(self) -> float:
        return float(self.time[-1] / max(self.updates[-1], 1))

    def roughness(self) -> float:
        """Share of the descent that was undone along the way: the summed increases of the
        full-data loss divided by its summed decreases. 0 for a monotone (smooth) descent; it
        grows as the path gets jagged."""
        d = np.diff(self.loss)
        down = float(-d[d < 0].sum())
        return float(d[d > 0].sum()) / down if down > 0 else 0.0


@dataclass
class BatchingResult:
    dataset: str
    n_samples: int
    optimal_loss: float
    curves: list[BatchingCurve]
    epochs: int
    config: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> list[dict[str, Any]]:
        rows = []
        for c in self.curves:
            after_one = float(np.interp(1.0, c.epochs, c.loss))
            rows.append(
                {
                    "strategy": c.label,
                    "batch_size": c.batch_size,
                    "lr": c.lr,
                    "updates_per_epoch": c.updates_per_epoch,
                    "ms_per_update": 1e3 * c.seconds_per_update,
                    "loss_after_1_epoch": after_one,
                    "final_loss": float(c.loss[-1]),
                    "excess_final_loss": float(c.loss[-1] - self.optimal_loss),
                    "roughness": c.roughness(),
                    "train_seconds": float(c.time[-1]),
                }
            )
        return rows


class _Recorder(Callback):
    def __init__(self, X: np.ndarray, y: np.ndarray, every: int, n: int):
        self.X, self.y, self.every, self.n = X, y, every, n
        self.eval_time = 0.0
        self.rows: list[tuple[int, float, float, float]] = []
        self.batch_losses: list[float] = []
        self.t_start = 0.0

    def on_train_begin(self, run: Any) -> None:
        self.t_start = time.perf_counter()
        self._record(run, 0, 0)

    def _record(self, run: Any, updates: int, samples: int) -> None:
        t0 = time.perf_counter()
        loss = run.model.loss(run.params, self.X, self.y)
        train_time = t0 - self.t_start - self.eval_time
        self.eval_time += time.perf_counter() - t0
        self.rows.append((updates, samples / self.n, train_time, loss))

    def on_step_end(self, run: Any, info: dict[str, Any]) -> None:
        self.batch_losses.append(float(info["loss"]))
        if info["step"] % self.every == 0:
            self._record(run, info["step"], info["samples_seen"])


def compare_batching(
    data: str | Dataset | tuple[np.ndarray, np.ndarray] = "linear",
    *,
    batch_sizes: Sequence[int | None] = (None, 1, 32),
    epochs: int = 10,
    lrs: dict[int | None, float] | None = None,
    optimizer: str = "sgd",
    model: Any = None,
    evals_per_epoch: int = 20,
    seed: int = 0,
) -> BatchingResult:
    """Train the same model with each batch size and record full-data loss vs epochs and time.

    The default problem is least squares on the built-in ``linear`` data (a finite sum whose
    optimum is known exactly), trained by plain SGD with a constant lr per batch size.
    """
    from .. import models

    epochs = check_int("compare_batching", "epochs", epochs, low=1)
    evals_per_epoch = check_int("compare_batching", "evals_per_epoch", evals_per_epoch, low=1)
    if isinstance(data, str):
        data = load(data, seed=seed)
    if isinstance(data, Dataset):
        name, X, y = data.name, data.X, data.y
    else:
        name, (X, y) = "arrays", data
    model = model or models.LinearRegression(dtype="float64")
    n = len(y)
    optimal = _optimal_loss(model, X, y)
    curves = []
    for bs in batch_sizes:
        lr = (lrs or {}).get(bs, _default_lr(bs))
        per_epoch = 1 if bs is None else -(-n // bs)
        rec = _Recorder(
            X.astype(model.dtype), model.check_targets(y), max(1, per_epoch // evals_per_epoch), n
        )
        fit(
            model,
            (X, y),
            optimizer=optimizer,
            lr=lr,
            batch_size=bs,
            epochs=epochs,
            seed=seed,
            callbacks=[rec],
            progress=False,
            standardize=False,  # the recorder scores the parameters on X as given
        )
        a = np.asarray(rec.rows)
        label = "full batch" if bs is None else ("stochastic (B=1)" if bs == 1 else f"mini-batch (B={bs})")
        curves.append(
            BatchingCurve(
                label,
                bs,
                lr,
                per_epoch,
                a[:, 0].astype(int),
                a[:, 1],
                a[:, 2],
                a[:, 3],
                np.asarray(rec.batch_losses),
            )
        )
    return BatchingResult(
        name, n, optimal, curves, epochs, {"optimizer": optimizer, "model": model.config(), "seed": seed}
    )


def _optimal_loss(model: Any, X: np.ndarray, y: np.ndarray) -> float:
    """Exact optimum for least squares (lstsq); NaN for other models."""
    if getattr(model, "name", "") != "linear_regression" or getattr(model, "l2", 0.0) != 0.0:
        return float("nan")
    A = np.hstack([X, np.ones((len(X), 1))])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    return float(np.mean((A @ coef - y) ** 2))


def gradient_noise(
    model: Any,
    params: dict[str, np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    batch_sizes: Sequence[int] = (1, 4, 16, 64, 256),
    *,
    draws: int = 200,
    seed: int = 0,
) -> dict[int, float]:
    """Mean squared distance between a mini-batch gradient and the full gradient, per batch size.

    For batches drawn without replacement it is ``sigma^2 / B * (n - B) / (n - 1)``: the noise of
    SGD shrinks like 1/B.
    """
    rng = np.random.default_rng([seed, 3])
    y = model.check_targets(y)
    _, full = model.loss_and_grad(params, X, y)
    full_vec = np.concatenate([g.ravel() for g in full.values()]).astype(np.float64)
    out = {}
    for b in batch_sizes:
        sq = 0.0
        for _ in range(draws):
            idx = rng.choice(len(y), size=b, replace=False)
            _, g = model.loss_and_grad(params, X[idx], y[idx])
            vec = np.concatenate([v.ravel() for v in g.values()]).astype(np.float64)
            sq += float(np.sum((vec - full_vec) ** 2))
        out[int(b)] = sq / draws
    return out
