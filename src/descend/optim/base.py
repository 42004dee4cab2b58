"""The optimizer abstraction: a validated config, explicit state, and an in-place step."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .._tree import as_float_array, flatten, leaf_paths, unflatten
from .._validation import check_bool, check_real, describe

__all__ = ["OptState", "Optimizer", "Schedule"]

Schedule = Callable[[int], float]


@dataclass
class OptState:
    """Everything an optimizer carries between steps, as plain arrays and numbers.

    ``t`` counts the steps taken (``np.int64``); ``buffers[name][i]`` is the ``name`` buffer of
    the i-th parameter leaf (same shape and dtype as that leaf); ``scalars`` holds per-run
    floats such as Nadam's running product of momentum coefficients.
    """

    optimizer: str
    t: np.int64
    treedef: tuple
    shapes: list[tuple[int, ...]]
    dtypes: list[np.dtype]
    buffers: dict[str, list[np.ndarray]] = field(default_factory=dict)
    scalars: dict[str, float] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        """Buffer ``name`` in the structure of the parameters (a view, not a copy)."""
        if name not in self.buffers:
            have = ", ".join(repr(k) for k in self.buffers) or "none"
            raise KeyError(f"{self.optimizer} state has no buffer {name!r}; buffers: {have}")
        return unflatten(self.treedef, self.buffers[name])

    @property
    def step(self) -> int:
        return int(self.t)

    def copy(self) -> OptState:
        return OptState(
            optimizer=self.optimizer,
            t=np.int64(self.t),
            treedef=self.treedef,
            shapes=list(self.shapes),
            dtypes=list(self.dtypes),
            buffers={k: [b.copy() for b in v] for k, v in self.buffers.items()},
            scalars=dict(self.scalars),
        )

    def restore_from(self, other: OptState) -> None:
        """Overwrite this state in place with the values of ``other`` (same layout)."""
        self.t = np.int64(other.t)
        for k, bufs in other.buffers.items():
            for dst, src in zip(self.buffers[k], bufs, strict=True):
                np.copyto(dst, src)
        self.scalars.update(other.scalars)


def _lerp_(buf: np.ndarray, x: np.ndarray, weight: float) -> None:
    """``buf += weight * (x - buf)`` in place, in the two-sided form torch's ``lerp_`` uses."""
    if weight < 0.5:
        diff = np.subtract(x, buf)
        diff *= weight
        buf += diff
    else:
        diff = np.subtract(x, buf)
        diff *= weight - 1.0
        np.add(x, diff, out=buf)


class Optimizer:
    """Base class of every update rule.

    Subclasses validate their hyperparameters in ``__init__``, name their per-parameter
    buffers, compute step-wide coefficients once in :meth:`_coefficients` and update one
    parameter leaf in :meth:`_update`. The base class handles structure, ``maximize``,
    L2 or decoupled weight decay, learning-rate schedules and the step counter.
    """

    name: ClassVar[str] = ""
    #: weight decay added to the gradient (L2, PyTorch's default) unless decoupled (AdamW).
    decoupled_weight_decay: bool = False

    def __init__(self, lr: float | Schedule, *, weight_decay: float = 0.0, maximize: bool = False):
        self.lr = self._check_lr(lr)
        self.weight_decay = check_real(self._owner, "weight_decay", weight_decay, low=0.0)
        self.maximize = check_bool(self._owner, "maximize", maximize)

    # -- validation -------------------------------------------------------------------------
    @property
    def _owner(self) -> str:
        return type(self).__name__

    def _check_lr(self, lr: Any) -> float | Schedule:
        if callable(lr) and not isinstance(lr, (bool, np.bool_)):
            return lr
        if isinstance(lr, (bool, np.bool_)) or not isinstance(lr, (int, float, np.integer, np.floating)):
            raise TypeError(
                f"{self._owner}: lr must be a non-negative real number or a schedule "
                f"(callable step -> lr), got {describe(lr)}"
            )
        return check_real(self._owner, "lr", lr, low=0.0)

    # -- hooks for subclasses -----------------------------------------------------------------
    def _buffer_names(self) -> tuple[str, ...]:
        return ()

    def _buffer_fill(self, name: str) -> float:
        return 0.0

    def _initial_scalars(self) -> dict[str, float]:
        return {}

    def _coefficients(self, t: int, lr: float, scalars: dict[str, float]) -> dict[str, Any]:
        """Step-wide numbers for step ``t`` (1-based, as PyTorch counts); may update scalars."""
        return {}

    def _update(self, p: np.ndarray, g: np.ndarray, b: dict[str, np.ndarray], c: dict[str, Any]) -> None:
        raise NotImplementedError

    # -- public API ---------------------------------------------------------------------------
    def hyperparameters(self) -> dict[str, Any]:
        """The configuration as plain values (a schedule is shown by its repr)."""
        out: dict[str, Any] = {}
        for k, v in vars(self).items():
            if k.startswith("_"):
                continue
            out[k] = v if isinstance(v, (int, float, bool, str, tuple)) else repr(v)
        return out

    def __repr__(self) -> str:
        args = ", ".join(
            f"{k}={v!r}" if not isinstance(v, str) or k == "lr" else f"{k}={v}"
            for k, v in self.hyperparameters().items()
        )
        return f"{type(self).__name__}({args})"

    def lr_at(self, step: int) -> float:
        """Learning rate used by the update that follows ``step`` completed steps."""
        if not callable(self.lr):
            return float(self.lr)
        value = self.lr(int(step))
        if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)
        ):
            raise TypeError(
                f"{self._owner}: schedule {self.lr!r} returned {describe(value)} at step {step}; "
                "expected a real number"
            )
        value = float(value)
        if not math.isfinite(value) or value < 0:
            raise ValueError(
                f"{self._owner}: schedule {self.lr!r} returned lr={value!r} at step {step}; "
                "a learning rate must be finite and >= 0"
            )
        return value

    def init(self, params: Any) -> OptState:
        """Fresh state for ``params`` (an array, or a list/tuple/dict of arrays)."""
        leaves, treedef = flatten(params)
        paths = leaf_paths(treedef)
        for leaf, path in zip(leaves, paths, strict=True):
            as_float_array(leaf, what=f"{self._owner}.init: params{path}")
        buffers = {
            name: [np.full(leaf.shape, self._buffer_fill(name), dtype=leaf.dtype) for leaf in leaves]
            for name in self._buffer_names()
        }
        return OptState(
            optimizer=self.name,
            t=np.int64(0),
            treedef=treedef,
            shapes=[leaf.shape for leaf in leaves],
            dtypes=[leaf.dtype for leaf in leaves],
            buffers=buffers,
            scalars=self._initial_scalars(),
        )

    def _check_call(
        self, params: Any, grads: Any, state: OptState
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Validate everything before touching anything, so a rejected call mutates nothing."""
        owner = f"{self._owner}.step"
        if not isinstance(state, OptState):
            raise TypeError(f"{owner}: state must be the OptState returned by init(), got {describe(state)}")
        if state.optimizer != self.name:
            raise ValueError(f"{owner}: state belongs to optimizer {state.optimizer!r}, not {self.name!r}")
        missing = set(self._buffer_names()) - set(state.buffers)
        if missing:
            raise ValueError(
                f"{owner}: state lacks buffers {sorted(missing)}; it was made with a different "
                "configuration (e.g. amsgrad, centered or momentum changed): call init() again"
            )
        p_leaves, p_def = flatten(params)
        g_leaves, g_def = flatten(grads, what="grads")
        if p_def != state.treedef:
            raise ValueError(f"{owner}: params have a different structure from the one init() saw")
        if g_def != p_def:
            raise ValueError(f"{owner}: grads must have the same structure as params")
        paths = leaf_paths(p_def)
        grads_out = []
        for p, g, shape, dtype, path in zip(
            p_leaves, g_leaves, state.shapes, state.dtypes, paths, strict=True
        ):
            as_float_array(p, what=f"{owner}: params{path}")
            if p.shape != shape or p.dtype != dtype:
                raise ValueError(
                    f"{owner}: params{path} is {p.dtype}{list(p.shape)} but the state was made for "
                    f"{dtype}{list(shape)}"
                )
            g = np.asarray(g)
            if g.shape != p.shape:
                raise ValueError(f"{owner}: grads{path} has shape {g.shape}, params{path} has {p.shape}")
            if not (np.issubdtype(g.dtype, np.floating) or np.issubdtype(g.dtype, np.integer)):
                raise TypeError(f"{owner}: grads{path} must be a real-valued array, got dtype {g.dtype}")
            if not p.flags.writeable:
                raise ValueError(f"{owner}: params{path} is read-only; the update is made in place")
            grads_out.append(g)
        return p_leaves, grads_out

    def step(self, params: Any, grads: Any, state: OptState) -> None:
        """Apply one update to ``params`` and ``state`` in place.

        ``grads`` has the structure and shapes of ``params``; it is never modified.
        """
        p_leaves, g_leaves = self._check_call(params, grads, state)
        self._apply(p_leaves, g_leaves, state)

    def _apply(self, p_leaves: list[np.ndarray], g_leaves: list[np.ndarray], state: OptState) -> None:
        """The update itself, on already validated leaves (loops call this after one check)."""
        lr = self.lr_at(int(state.t))
        t = int(state.t) + 1
        c = self._coefficients(t, lr, state.scalars)
        c.setdefault("lr", lr)
        c["t"] = t
        wd = self.weight_decay
        for i, (p, g) in enumerate(zip(p_leaves, g_leaves, strict=True)):
            g = np.asarray(g, dtype=p.dtype)
            if self.maximize:
                g = np.negative(g)
            if wd != 0.0:
                if self.decoupled_weight_decay:
                    p *= 1.0 - lr * wd
                else:
                    g = g + wd * p
            b = {name: bufs[i] for name, bufs in state.buffers.items()}
            self._update(p, g, b, c)
        state.t = np.int64(t)

    # -- persistence ----------------------------------------------------------------------------
    def config_json(self) -> str:
        return json.dumps({"optimizer": self.name, **self.hyperparameters()}, sort_keys=True, default=repr)
