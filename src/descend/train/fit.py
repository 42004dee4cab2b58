"""fit(): train a model on any data source with any update rule, batch size and schedule."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import check_bool, check_int, describe
from ..data import ArraySource, DataSource, as_source, check_batching
from ..errors import DivergenceError
from ..optim import Optimizer, OptState
from ..optim import resolve as resolve_optimizer
from .callbacks import Callback, as_callback
from .checkpoint import CHECKPOINT_NAME, config_hash, diff_configs, read_checkpoint, write_checkpoint
from .minimize import global_norm
from .progress import make_progress

__all__ = ["DEFAULT_LR", "Run", "TrainHistory", "fit"]

#: lr used when fit() is given none: values that train standardized data well (checked by
#: tests/test_fit.py::test_default_lr_trains_standardized_data for every optimizer).
DEFAULT_LR: dict[str, float] = {
    "sgd": 0.1,
    "momentum": 0.01,
    "nesterov": 0.01,
    "adagrad": 0.1,
    "rmsprop": 3e-3,
    "adam": 3e-3,
    "amsgrad": 3e-3,
    "adamw": 3e-3,
    "nadam": 5e-3,
    "adamax": 1e-2,
    "adadelta": 1.0,
}

_STEP_COLUMNS = ("step", "epoch", "loss", "lr", "grad_norm", "samples_seen", "time")


def _rows(columns: dict[str, list[float]]) -> list[dict[str, float]]:
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


@dataclass
class TrainHistory:
    """Per-step and per-epoch records of a training run, as lists (``.steps_array`` for NumPy).

    ``steps[k]`` describes update ``k + 1``: the batch loss and gradient norm at the parameters
    before the update, the lr used, how many samples had been seen after it, and the wall time.
    ``epochs`` rows hold the mean training loss of the epoch and validation metrics.
    """

    steps: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in _STEP_COLUMNS})
    epochs: dict[str, list[float]] = field(default_factory=dict)

    def step_array(self, column: str) -> np.ndarray:
        return np.asarray(self.steps[column])

    def epoch_array(self, column: str) -> np.ndarray:
        return np.asarray(self.epochs[column])

    def add_epoch(self, row: dict[str, float]) -> None:
        n = len(next(iter(self.epochs.values()))) if self.epochs else 0
        for k in row:
            if k not in self.epochs:
                self.epochs[k] = [math.nan] * n
        for k in self.epochs:
            self.epochs[k].append(row.get(k, math.nan))

    def step_rows(self) -> list[dict[str, float]]:
        """The per-step columns as one dict per step (for CSV files and tables)."""
        return _rows(self.steps)

    def epoch_rows(self) -> list[dict[str, float]]:
        """The per-epoch columns as one dict per epoch."""
        return _rows(self.epochs)

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {f"step/{k}": np.asarray(v, dtype=np.float64) for k, v in self.steps.items()}
        out.update({f"epoch/{k}": np.asarray(v, dtype=np.float64) for k, v in self.epochs.items()})
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> TrainHistory:
        h = cls()
        for key, v in arrays.items():
            kind, col = key.split("/", 1)
            target = h.steps if kind == "step" else h.epochs
            values = [float(x) for x in np.asarray(v)]
            if col in ("step", "epoch", "samples_seen"):
                values = [int(x) for x in values]
            target[col] = values
        return h


@dataclass
class Run:
    """The outcome of :func:`fit`: parameters, history, and prediction helpers."""

    model: Any
    params: dict[str, np.ndarray]
    optimizer: Optimizer
    state: OptState
    history: TrainHistory
    config: dict[str, Any]
    n_features: int
    n_outputs: int
    validation: DataSource | None = None
    stop_reason: str = ""
    epochs_completed: int = 0
    steps_completed: int = 0
    checkpoint: Path | None = None

    def predict(self, X: Any) -> np.ndarray:
        """Predictions (labels for classifiers, values for regression)."""
        return self.model.predict(self.params, self._features(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (classifiers only)."""
        return self.model.predict_proba(self.params, self._features(X))

    def loss(self, X: Any, y: Any) -> float:
        src = as_source((X, y), owner="Run.loss")
        return _evaluate(self.model, self.params, src)["loss"]

    def evaluate(self, X: Any, y: Any) -> dict[str, float]:
        """Loss and the model's metric (accuracy or MSE) on ``(X, y)``."""
        return _evaluate(self.model, self.params, as_source((X, y), owner="Run.evaluate"))

    def _features(self, X: Any) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"Run.predict: X must have shape (n, {self.n_features}), got {X.shape}")
        return X.astype(self.model.dtype, copy=False)


def _evaluate(
    model: Any, params: dict[str, np.ndarray], src: DataSource, chunk: int = 8192
) -> dict[str, float]:
    """Mean loss and metric over a whole source, in chunks (bounded memory)."""
    total, n, correct, sq = 0.0, 0, 0, 0.0
    for b in src.batches(0, chunk, shuffle=False):
        X = b.X.astype(model.dtype, copy=False)
        y = model.check_targets(b.y)
        m = b.size
        total += model.loss(params, X, y) * m
        n += m
        if model.task == "regression":
            pred = model.predict(params, X)
            sq += float(np.sum((np.asarray(pred, dtype=np.float64).reshape(m, -1) - y.reshape(m, -1)) ** 2))
        else:
            correct += int(np.sum(model.predict(params, X) == np.asarray(y).reshape(-1)))
    out = {"loss": total / n}
    if model.task == "regression":
        out["mse"] = sq / n
    else:
        out["accuracy"] = correct / n
    return out


def _resolve_model(model: Any) -> Any:
    if isinstance(model, str):
        from .. import models as model_registry

        return model_registry.get(model)
    for attr in ("init", "loss_and_grad", "predict", "check_targets", "n_outputs"):
        if not callable(getattr(model, attr, None)):
            raise TypeError(f"fit: model must be a descend model (or its name), got {describe(model)}")
    return model


def fit(
    model: Any,
    data: Any,
    optimizer: str | Optimizer = "adam",
    lr: Any = None,
    batch_size: int | None = 256,
    epochs: int = 10,
    shuffle: bool = True,
    seed: int = 0,
    validation: Any = None,
    callbacks: Any = (),
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    progress: Any = None,
    *,
    drop_last: bool = False,
    options: dict[str, Any] | None = None,
    max_steps: int | None = None,
) -> Run:
    """Train ``model`` on ``data`` by (stochastic / mini-batch / full-batch) gradient descent.

    Parameters
    ----------
    model : a :mod:`descend.models` instance or its name.
    data : ``(X, y)`` arrays or a :mod:`descend.data` source.
    optimizer : name or :class:`~descend.optim.Optimizer` instance; ``lr`` and ``options`` build
        a named one (``lr=None``: :data:`DEFAULT_LR`, values that train standardized data well).
    batch_size : ``None`` full-batch gradient descent, ``1`` stochastic, ``B`` mini-batch.
    epochs, shuffle, seed, drop_last : passes over the data; each epoch's order is a permutation
        drawn from ``(seed, epoch)``; ``drop_last`` skips a final short batch.
    validation : ``(X, y)`` or a source, evaluated after every epoch (``val_loss`` and
        ``val_accuracy`` or ``val_mse``).
    callbacks : :class:`~descend.train.callbacks.Callback` objects or plain functions
        ``f(info) -> bool`` called after each step (``True`` stops). A
        :class:`~descend.schedules.ReduceOnPlateau` lr is fed the validation loss (or the training
        loss without validation) after each epoch.
    checkpoint_dir, checkpoint_every, resume : write ``checkpoint.npz`` every N steps and at the
        end (atomically); ``resume=True`` continues from it bit-exactly, refusing a checkpoint made
        with another model, optimizer, batching or data.
    progress : ``None`` (a bar on a terminal, log lines otherwise), ``False`` silences it.
    max_steps : stop after this many updates in total.

    Raises
    ------
    DivergenceError
        when a loss or gradient becomes NaN/inf; parameters and optimizer state are left at the
        last step whose loss and gradient were finite.
    """
    owner = "fit"
    model = _resolve_model(model)
    epochs = check_int(owner, "epochs", epochs, low=1)
    shuffle = check_bool(owner, "shuffle", shuffle)
    seed = check_int(owner, "seed", seed, low=0)
    resume = check_bool(owner, "resume", resume)
    if max_steps is not None:
        max_steps = check_int(owner, "max_steps", max_steps, low=1)
    source = as_source(data, owner=owner)
    batch_size, drop_last = check_batching(owner, batch_size, source.n_samples, drop_last)
    val_source = None if validation is None else as_source(validation, owner=owner, name="validation")
    if val_source is not None and val_source.n_features != source.n_features:
        raise ValueError(
            f"{owner}: validation has {val_source.n_features} features but data has {source.n_features}"
        )
    cbs: list[Callback] = [as_callback(c) for c in (callbacks or ())]
    if checkpoint_every is not None:
        checkpoint_every = check_int(owner, "checkpoint_every", checkpoint_every, low=1)
        if checkpoint_dir is None:
            raise ValueError(f"{owner}: checkpoint_every={checkpoint_every} needs checkpoint_dir")
    if resume and checkpoint_dir is None:
        raise ValueError(f"{owner}: resume=True needs checkpoint_dir")
    reporter = make_progress(progress)

    # targets: validated up front when the source holds them (in-memory / memory-mapped)
    targets = source.targets
    if targets is not None:
        y_checked = model.check_targets(targets)
        n_outputs = model.n_outputs(y_checked)
        if isinstance(source, ArraySource) and y_checked is not targets:
            source = ArraySource._trusted(source.X, y_checked, source.description)
    else:
        n_outputs = model.n_outputs(None)
    if val_source is not None and val_source.targets is not None:
        model.check_targets(val_source.targets)

    opt = resolve_optimizer(optimizer, lr, options, owner=owner, default_lr=DEFAULT_LR)

    rng = np.random.default_rng([seed, 0])
    params = model.init(rng, source.n_features, n_outputs)
    state = opt.init(params)
    config = {
        "model": model.config(),
        "optimizer": {"name": opt.name, **opt.hyperparameters()},
        "batch_size": batch_size,
        "shuffle": shuffle,
        "seed": seed,
        "drop_last": drop_last,
        "data": source.fingerprint(),
        "params": {k: [list(v.shape), str(v.dtype)] for k, v in params.items()},
    }
    history = TrainHistory()
    run = Run(
        model=model,
        params=params,
        optimizer=opt,
        state=state,
        history=history,
        config=config,
        n_features=source.n_features,
        n_outputs=n_outputs,
        validation=val_source,
    )
    plateau = getattr(opt.lr, "observe", None)
    start_epoch, start_batch, step, samples = 0, 0, 0, 0
    epoch_loss_sum, epoch_batches = 0.0, 0

    ckpt_path = None if checkpoint_dir is None else Path(checkpoint_dir) / CHECKPOINT_NAME
    if resume and ckpt_path is not None and ckpt_path.exists():
        saved_params, saved_state, meta = read_checkpoint(ckpt_path)
        if meta["config_hash"] != config_hash(config):
            diffs = diff_configs(meta["config"], json_roundtrip(config))
            raise ValueError(
                f"{owner}: refusing to resume from {str(ckpt_path)!r}: it was made by a different run; "
                + "; ".join(diffs or ["configuration differs"])
            )
        for k, v in saved_params.items():
            np.copyto(params[k], v)
        state.restore_from(saved_state)
        extra = meta["extra"]
        start_epoch, start_batch = int(meta["epoch"]), int(meta["batch"])
        step, samples = int(meta["step"]), int(meta["samples_seen"])
        epoch_loss_sum, epoch_batches = float(extra["epoch_loss_sum"]), int(extra["epoch_batches"])
        run.history = history = TrainHistory.from_arrays(extra["history"])
        for cb, cb_state in zip(cbs, extra["callbacks"], strict=False):
            cb.load_state_dict(cb_state)
        if extra.get("schedule") is not None and hasattr(opt.lr, "load_state_dict"):
            opt.lr.load_state_dict(extra["schedule"])
        run.epochs_completed, run.steps_completed, run.checkpoint = start_epoch, step, ckpt_path
        if start_epoch >= epochs:
            run.stop_reason = f"resumed a run that had already completed {start_epoch} epochs"
            return run

    position = (start_epoch, start_batch)  # (epoch, next batch) where training continues

    def save_checkpoint(epoch: int, batch: int, finished: bool = False) -> None:
        if ckpt_path is None:
            return
        if not all(np.all(np.isfinite(p)) for p in params.values()):
            return  # never persist a non-finite state; the next loss check raises DivergenceError
        write_checkpoint(
            ckpt_path.parent,
            params=params,
            state=state,
            header={
                "config": json_roundtrip(config),
                "config_hash": config_hash(config),
                "epoch": epoch,
                "batch": batch,
                "step": step,
                "samples_seen": samples,
                "finished": finished,
                "schedule_step": int(state.t),
                # every random draw comes from generators seeded by (seed, purpose[, epoch]); the
                # state of the one ordering the current epoch is recorded as well
                "rng": {
                    "seed": seed,
                    "init_seed": [seed, 0],
                    "epoch_order_seed": [seed, 1, epoch],
                    "epoch_order_state": np.random.default_rng([seed, 1, epoch]).bit_generator.state,
                },
            },
            extra={
                "epoch_loss_sum": epoch_loss_sum,
                "epoch_batches": epoch_batches,
                "history": history.to_arrays(),
                "callbacks": [cb.state_dict() for cb in cbs],
                "schedule": opt.lr.state_dict() if hasattr(opt.lr, "state_dict") else None,
            },
        )
        run.checkpoint = ckpt_path

    n_batches = source.n_batches(batch_size, drop_last)
    total_steps = n_batches * epochs if max_steps is None else min(max_steps, n_batches * epochs)
    for cb in cbs:
        cb.on_train_begin(run)
    prev_params = {k: v.copy() for k, v in params.items()}
    prev_state = state.copy()
    dtype = model.dtype
    t0 = time.perf_counter() - (history.steps["time"][-1] if history.steps["time"] else 0.0)
    reporter.start(total_steps, f"fit {type(model).__name__} with {opt!r}, batch_size={batch_size}")
    stop = ""
    checked = False
    last_lr = math.nan
    leaves = list(params.values())
    try:
        for epoch in range(start_epoch, epochs):
            first = start_batch if epoch == start_epoch else 0
            if first == 0:
                epoch_loss_sum, epoch_batches = 0.0, 0
            for batch in source.batches(
                epoch, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last, start=first
            ):
                X = batch.X.astype(dtype, copy=False)
                y = batch.y if targets is not None else model.check_targets(batch.y)
                with np.errstate(over="ignore", invalid="ignore"):
                    loss, grads = model.loss_and_grad(params, X, y)
                    gnorm = global_norm(grads.values())
                if not (math.isfinite(loss) and math.isfinite(gnorm)):
                    if step > 0:
                        for k, v in prev_params.items():
                            np.copyto(params[k], v)
                        state.restore_from(prev_state)
                    what = "loss" if not math.isfinite(loss) else "gradient"
                    raise DivergenceError(
                        f"fit: the {what} became non-finite at step {step + 1} (epoch {epoch}, batch "
                        f"{batch.index}) with {opt!r}; parameters are left at the last finite step; "
                        "try a smaller learning rate",
                        step=step + 1,
                        epoch=epoch,
                        quantity=what,
                    )
                for cb in cbs:
                    cb.on_gradients(run, grads)
                lr_now = last_lr = opt.lr_at(int(state.t))
                for k, v in params.items():
                    np.copyto(prev_params[k], v)
                prev_state.restore_from(state)
                with np.errstate(over="ignore", invalid="ignore"):
                    if not checked:  # validate structure once; it cannot change afterwards
                        opt.step(params, grads, state)
                        checked = True
                    else:
                        opt._apply(leaves, list(grads.values()), state)
                step += 1
                samples += batch.size
                epoch_loss_sum += loss
                epoch_batches += 1
                now = time.perf_counter() - t0
                for col, val in zip(
                    _STEP_COLUMNS, (step, epoch, loss, lr_now, gnorm, samples, now), strict=True
                ):
                    history.steps[col].append(val)
                reporter.update(step, epoch, loss, lr_now, samples)
                info = {
                    "step": step,
                    "epoch": epoch,
                    "batch": batch.index,
                    "loss": loss,
                    "lr": lr_now,
                    "grad_norm": gnorm,
                    "samples_seen": samples,
                    "time": now,
                }
                stop_now = False
                for cb in cbs:
                    if cb.on_step_end(run, info) is True:
                        stop_now = True
                        stop = stop or f"stopped by {type(cb).__name__} at step {step} (epoch {epoch})"
                if max_steps is not None and step >= max_steps:
                    stop_now, stop = True, stop or f"max_steps={max_steps} reached"
                position = (epoch, batch.index + 1)
                if checkpoint_every is not None and step % checkpoint_every == 0:
                    save_checkpoint(*position)
                if stop_now:
                    break
            else:
                # the epoch ran to its end
                row = _epoch_row(
                    model,
                    params,
                    epoch,
                    epoch_loss_sum,
                    epoch_batches,
                    val_source,
                    last_lr,
                    samples,
                    time.perf_counter() - t0,
                )
                history.add_epoch(row)
                if plateau is not None:
                    plateau(row["val_loss"] if val_source is not None else row["train_loss"])
                for cb in cbs:
                    if cb.on_epoch_end(run, row) is True:
                        stop = stop or f"stopped by {type(cb).__name__} after epoch {epoch}"
                run.epochs_completed = epoch + 1
                position = (epoch + 1, 0)
                if checkpoint_every is not None:
                    save_checkpoint(*position)
                if stop:
                    break
                continue
            break  # a callback or max_steps stopped the run mid-epoch
        if not stop:
            stop = f"completed {epochs} epochs"
    finally:
        reporter.close()
    for cb in cbs:
        cb.on_train_end(run)
    run.stop_reason = stop
    run.steps_completed = step
    if ckpt_path is not None:
        save_checkpoint(*position, finished=True)
    return run


def _epoch_row(
    model, params, epoch, loss_sum, n_batches, val_source, lr, samples, elapsed
) -> dict[str, float]:
    row: dict[str, float] = {
        "epoch": epoch,
        "train_loss": loss_sum / max(n_batches, 1),
        "lr": lr,
        "samples_seen": samples,
        "time": elapsed,
    }
    if val_source is not None:
        metrics = _evaluate(model, params, val_source)
        row.update({f"val_{k}": v for k, v in metrics.items()})
    return row


def json_roundtrip(obj: Any) -> Any:
    import json

    return json.loads(json.dumps(obj, sort_keys=True, default=str))
