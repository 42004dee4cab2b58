"""Callbacks for fit(): early stopping, gradient clipping, convergence stops, user hooks."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .._validation import check_bool, check_choice, check_int, check_real, describe
from .minimize import global_norm

if TYPE_CHECKING:  # pragma: no cover
    from .fit import Run

__all__ = ["Callback", "Convergence", "EarlyStopping", "GradientClipping", "LambdaCallback", "as_callback"]


class Callback:
    """Base class: override the hooks you need. Returning ``True`` from a hook stops training.

    Hooks run in this order each step: :meth:`on_gradients` (may modify the gradient dict in
    place, e.g. clipping), the update, :meth:`on_step_end`; and :meth:`on_epoch_end` after each
    epoch (with validation metrics). A callback that keeps state between steps implements
    :meth:`state_dict` / :meth:`load_state_dict` so that checkpoints resume it exactly.
    """

    #: True for a callback whose :meth:`on_gradients` only reads the gradients (a
    #: :class:`~descend.Monitor`): L-BFGS, whose iterations a changed gradient would break
    #: (its line search compares the gradients of the objective), shows it the gradient each
    #: iteration starts from and refuses the other callbacks that have ``on_gradients``
    reads_gradients_only: bool = False

    def on_train_begin(self, run: Run) -> None:
        pass

    def on_gradients(self, run: Run, grads: dict[str, np.ndarray]) -> None:
        pass

    def on_step_end(self, run: Run, info: dict[str, Any]) -> bool | None:
        return None

    def on_epoch_end(self, run: Run, info: dict[str, Any]) -> bool | None:
        return None

    def on_train_end(self, run: Run) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        """JSON-able values, and NumPy arrays (stored as arrays in the checkpoint)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def config(self) -> dict[str, Any]:
        return {"callback": type(self).__name__}


class LambdaCallback(Callback):
    """Wraps a plain function ``f(info) -> bool | None`` called after every step."""

    def __init__(self, on_step_end: Callable[[dict[str, Any]], Any]):
        if not callable(on_step_end):
            raise TypeError(f"LambdaCallback: on_step_end must be callable, got {describe(on_step_end)}")
        self.fn = on_step_end

    def on_step_end(self, run: Run, info: dict[str, Any]) -> bool | None:
        return self.fn(info) is True

    def config(self) -> dict[str, Any]:
        return {"callback": "LambdaCallback", "fn": getattr(self.fn, "__name__", repr(self.fn))}


class GradientClipping(Callback):
    """Clip each gradient entry to ``[-max_value, max_value]``, then rescale so the global L2 norm
    over all parameters is at most ``max_norm`` (PyTorch's ``clip_grad_value_`` / ``clip_grad_norm_``).
    """

    def __init__(self, max_norm: float | None = None, max_value: float | None = None):
        if max_norm is None and max_value is None:
            raise ValueError("GradientClipping: give max_norm, max_value or both, got neither")
        self.max_norm = (
            None
            if max_norm is None
            else check_real("GradientClipping", "max_norm", max_norm, low=0.0, low_open=True)
        )
        self.max_value = (
            None
            if max_value is None
            else check_real("GradientClipping", "max_value", max_value, low=0.0, low_open=True)
        )

    def on_gradients(self, run: Run, grads: dict[str, np.ndarray]) -> None:
        if self.max_value is not None:
            for g in grads.values():
                np.clip(g, -self.max_value, self.max_value, out=g)
        if self.max_norm is not None:
            total = global_norm(grads.values())
            if total > self.max_norm:
                scale = self.max_norm / (total + 1e-6)
                for g in grads.values():
                    g *= scale

    def config(self) -> dict[str, Any]:
        return {"callback": "GradientClipping", "max_norm": self.max_norm, "max_value": self.max_value}


class EarlyStopping(Callback):
    """Stop when a monitored epoch metric stops improving; optionally restore the best parameters.

    ``monitor`` names a per-epoch history column: ``"val_loss"`` (default), ``"train_loss"`` or a
    validation metric such as ``"val_accuracy"`` (use ``mode="max"``). An improvement is a change
    beyond ``min_delta``. As in Keras, training stops after the ``patience``-th epoch in a row
    without one: with ``patience=3`` and the best value at epoch 4, the last epoch run is 7
    (``patience=0`` stops at the first epoch that does not improve). With ``restore_best``, a
    stopped run gets the best epoch's parameters back and ``restored_epoch`` says which epoch
    that was (``None`` when nothing was restored).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        *,
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "min",
        restore_best: bool = True,
    ):
        owner = "EarlyStopping"
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"{owner}: monitor must be a metric name, got {describe(monitor)}")
        self.monitor = monitor
        self.patience = check_int(owner, "patience", patience, low=0)
        self.min_delta = check_real(owner, "min_delta", min_delta, low=0.0)
        self.mode = check_choice(owner, "mode", mode, ("min", "max"))
        self.restore_best = check_bool(owner, "restore_best", restore_best)
        self._reset()

    def _reset(self) -> None:
        self.best: float | None = None
        self.best_epoch = -1
        self.wait = 0
        self.best_params: dict[str, np.ndarray] | None = None
        self.stopped_epoch: int | None = None
        self.restored_epoch: int | None = None

    def on_train_begin(self, run: Run) -> None:
        if self.monitor.startswith("val_") and run.validation is None:
            raise ValueError(
                f"EarlyStopping: monitor={self.monitor!r} needs validation data; pass validation=(X, y)"
            )

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, run: Run, info: dict[str, Any]) -> bool | None:
        if self.monitor not in info:
            have = ", ".join(sorted(k for k in info if isinstance(info[k], float)))
            raise ValueError(f"EarlyStopping: monitor={self.monitor!r} is not an epoch metric; have {have}")
        value = float(info[self.monitor])
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, int(info["epoch"]), 0
            if self.restore_best:
                self.best_params = {k: v.copy() for k, v in run.params.items()}
            return None
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = int(info["epoch"])
            return True
        return None

    def on_train_end(self, run: Run) -> None:
        if self.restore_best and self.best_params is not None and self.stopped_epoch is not None:
            for k, v in self.best_params.items():
                np.copyto(run.params[k], v)
            self.restored_epoch = self.best_epoch

    def state_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
        }
        if self.best_params is not None:
            out["best_params"] = self.best_params
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]
        self.best_epoch = int(state["best_epoch"])
        self.wait = int(state["wait"])
        self.stopped_epoch = state["stopped_epoch"]
        bp = state.get("best_params")
        self.best_params = None if bp is None else {k: np.array(v) for k, v in bp.items()}

    def config(self) -> dict[str, Any]:
        return {
            "callback": "EarlyStopping",
            "monitor": self.monitor,
            "patience": self.patience,
            "min_delta": self.min_delta,
            "mode": self.mode,
            "restore_best": self.restore_best,
        }


class Convergence(Callback):
    """Stop mid-epoch once training has converged: SGD need not see all the data.

    Stops after the step where the exponentially smoothed batch loss (smoothing ``beta``) falls
    to ``target_loss`` or below, or, with ``rel_tol``, when it has changed by less than
    ``rel_tol`` (relative) over the last ``window`` steps.
    """

    def __init__(
        self,
        target_loss: float | None = None,
        *,
        rel_tol: float | None = None,
        window: int = 100,
        beta: float = 0.9,
    ):
        owner = "Convergence"
        if target_loss is None and rel_tol is None:
            raise ValueError(f"{owner}: give target_loss, rel_tol or both, got neither")
        self.target_loss = None if target_loss is None else check_real(owner, "target_loss", target_loss)
        self.rel_tol = (
            None if rel_tol is None else check_real(owner, "rel_tol", rel_tol, low=0.0, low_open=True)
        )
        self.window = check_int(owner, "window", window, low=1)
        self.beta = check_real(owner, "beta", beta, low=0.0, high=1.0, high_open=True)
        self.smoothed: float | None = None
        self.n = 0
        self.history: list[float] = []

    def on_step_end(self, run: Run, info: dict[str, Any]) -> bool | None:
        loss = float(info["loss"])
        self.n += 1
        self.smoothed = loss if self.smoothed is None else self.beta * self.smoothed + (1 - self.beta) * loss
        value = self.smoothed  # starts at the first loss, so no bias correction is needed
        if self.target_loss is not None and value <= self.target_loss:
            return True
        if self.rel_tol is not None:
            self.history.append(value)
            if len(self.history) > self.window:
                old = self.history.pop(0)
                if abs(old - value) <= self.rel_tol * max(abs(old), 1e-300):
                    return True
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"smoothed": self.smoothed, "n": self.n, "history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.smoothed = state["smoothed"]
        self.n = int(state["n"])
        self.history = [float(v) for v in state["history"]]

    def config(self) -> dict[str, Any]:
        return {
            "callback": "Convergence",
            "target_loss": self.target_loss,
            "rel_tol": self.rel_tol,
            "window": self.window,
            "beta": self.beta,
        }


def as_callback(obj: Any) -> Callback:
    if isinstance(obj, Callback):
        return obj
    if callable(obj):
        return LambdaCallback(obj)
    raise TypeError(f"fit: callbacks must be Callback instances or callables, got {describe(obj)}")
