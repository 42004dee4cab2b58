"""The optimizer abstraction: a validated config, explicit state, and an in-place step."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from .._tree import as_float_array, flatten, leaf_paths, unflatten
from .._validation import check_bool, check_choice, check_real, describe
from . import _backend

__all__ = ["OptState", "Optimizer", "Schedule"]

Schedule = Callable[[int], float]


@dataclass
class OptState:
    """Everything an optimizer carries between steps, as plain arrays and numbers.

    ``t`` counts the steps taken (``np.int64``); ``buffers[name][i]`` is the ``name`` buffer of
    the i-th parameter leaf (that leaf's dtype, and its shape unless the rule says otherwise in
    :meth:`Optimizer._buffer_shapes`: Adafactor's row and column factors, or ``(0,)`` for a
    buffer a leaf does not use); ``scalars`` holds per-run floats such as Nadam's running
    product of momentum coefficients.
    """

    optimizer: str
    t: np.int64
    treedef: tuple
    shapes: list[tuple[int, ...]]
    dtypes: list[np.dtype]
    buffers: dict[str, list[np.ndarray]] = field(default_factory=dict)
    scalars: dict[str, float] = field(default_factory=dict)
    # how the fused kernels see these buffers (flat views), made on the first fused step;
    # valid because steps and restore_from() update buffers in place and never rebind them
    _layouts: dict[tuple[str, ...], Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    _size: int = field(default=-1, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        # the layouts hold views and raw addresses of these very arrays: a pickled or deep-copied
        # state gets new arrays, so it must make its own layouts (else its steps would write
        # through the original's addresses)
        state = dict(self.__dict__)
        state["_layouts"], state["_size"] = {}, -1
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._layouts = {}

    def __getitem__(self, name: str) -> Any:
        """Buffer ``name`` in the structure of the parameters (a view, not a copy)."""
        if name not in self.buffers:
            have = ", ".join(repr(k) for k in self.buffers) or "none"
            raise KeyError(f"{self.optimizer} state has no buffer {name!r}; buffers: {have}")
        return unflatten(self.treedef, self.buffers[name])

    @property
    def step(self) -> int:
        return int(self.t)

    @property
    def size(self) -> int:
        """How many parameters (elements over all leaves) this state is for."""
        if self._size < 0:
            self._size = sum(math.prod(shape) for shape in self.shapes)
        return self._size

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
        """Overwrite this state in place with the values of ``other`` (same layout). A buffer
        only ``other`` has is copied in: a rule whose state grows as it goes (L-BFGS adds a
        buffer per curvature pair it keeps) restores a later state into an earlier one."""
        for k, bufs in other.buffers.items():
            if k not in self.buffers:
                continue
            mine = [b.shape for b in self.buffers[k]]
            if [b.shape for b in bufs] != mine:
                raise ValueError(
                    f"{self.optimizer} state: buffer {k!r} has shapes {[b.shape for b in bufs]} in "
                    f"the state to restore from, {mine} here: the states were made differently"
                )
        self.t = np.int64(other.t)
        for k, bufs in other.buffers.items():
            if k not in self.buffers:
                self.buffers[k] = [b.copy() for b in bufs]
                continue
            for dst, src in zip(self.buffers[k], bufs, strict=True):
                np.copyto(dst, src)
        self.scalars.update(other.scalars)


class Optimizer:
    """Base class of every update rule.

    Subclasses validate their hyperparameters in ``__init__``, name their per-parameter
    buffers, compute step-wide coefficients once in :meth:`_coefficients`, and give the update
    of one parameter leaf twice: the readable NumPy reference :meth:`_update`, and the fused
    kernel ``_kernel`` (one pass per array, compiled by numba; see :mod:`descend.optim`), fed
    by :meth:`_kernel_args`. The base class handles structure, ``maximize``, L2 or decoupled
    weight decay, learning-rate schedules, non-finite gradients, the choice between the two
    paths and the step counter.

    Options every rule takes (keyword-only):

    ``nonfinite="raise"``: a step whose gradient holds a NaN or infinity raises ``ValueError``
    naming the leaf, and changes nothing; ``"skip"`` leaves params and state as they are
    (the step counter too) and counts the skip in ``state.scalars["nonfinite_skipped"]``;
    ``"propagate"`` does not look (one read of the gradient less, as torch.optim): a NaN goes
    into params and state, for loops that check the gradient themselves, e.g. through its norm.

    ``fused=None``: run the fused kernels when the process-wide backend says so
    (:func:`descend.optim.set_backend`, default: whenever numba imports) and the step has
    at least ``MIN_FUSED`` (512) parameters, below which NumPy is quicker than the kernel
    calls; ``True`` always (``ImportError`` at construction without numba); ``False`` the
    NumPy reference. Both give the same numbers (bit for bit, in the tests).
    """

    #: True when the update of each element depends only on that element (and step-wide
    #: numbers): then applying it to all leaves laid end to end in one flat array gives the
    #: same result, which ``fit`` uses to update a small model in one pass (``optim/_flat.py``).
    #: Every built-in rule is; a subclass whose update mixes elements must leave it False.
    elementwise = False

    #: True for a rule that needs the objective at trial points (L-BFGS and its line search):
    #: it is driven by ``minimize`` and races, not by ``step(params, grads, state)``.
    needs_objective: ClassVar[bool] = False

    #: True for a rule whose parameters to evaluate and predict with are not the point it takes
    #: gradients at (Schedule-Free: gradients at ``y``, the model is the average ``x``):
    #: :meth:`eval_params` computes them from the parameters and the state. ``fit`` evaluates,
    #: predicts and saves the model with them (``run.params``), while its checkpoints keep the
    #: gradient point (``run.train_params``) and the state, from which training continues.
    separate_eval_point: ClassVar[bool] = False

    name: ClassVar[str] = ""

    # Facts about the rule that code outside it reads through its registry entry
    # (:func:`descend.optim.rule`). A registered class states each one itself (a subclass does
    # not inherit its parent's: a rule built on Adam is not tuned by Adam's numbers), unless
    # its entry gives it; a missing one fails at registration, naming the rule and the fact.
    #: lr ``fit`` and the sklearn estimators use when given none: one that trains standardized
    #: data well (tests/test_fit.py::test_default_lr_trains_standardized_data checks each).
    fit_lr: ClassVar[float]
    #: options ``fit`` and the estimators give the rule when it is named and the caller leaves
    #: them out (``options`` overrides each): what training a model with it needs beyond the
    #: class defaults, which follow the reference implementation (L-BFGS: a line search).
    fit_options: ClassVar[Mapping[str, Any]] = MappingProxyType({})
    #: lr a race uses when given none: it moves visibly but stably on the built-in 2-D
    #: surfaces, whose gradients are O(1)-O(100).
    race_lr: ClassVar[float]
    #: colour of the rule in every drawing, ``"#rrggbb"``, distinct from every other rule's.
    color: ClassVar[str]
    #: matplotlib marker of the rule in every drawing, so paths stay apart in greyscale.
    marker: ClassVar[str]
    #: weight decay added to the gradient (L2, PyTorch's default) unless decoupled (AdamW).
    decoupled_weight_decay: bool = False
    #: the rule applies ``weight_decay`` itself, in ``_update`` and its kernel (neither L2 nor
    #: decoupled: Schedule-Free AdamW adds it to the normalized step); the base class then leaves
    #: the gradient and the parameters alone.
    _weight_decay_in_update: ClassVar[bool] = False
    #: the fused update of one leaf: ``_kernel(*flags)`` returns a plain-Python elementwise
    #: loop ``kernel(p, g, *buffers, coefficients)`` that numba compiles (flags compiled in).
    _kernel: ClassVar[Callable[..., Any] | None] = None
    #: the buffers ``_kernel`` takes after ``(p, g)``, in order; absent ones are passed empty.
    _kernel_buffers: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        lr: float | Schedule,
        *,
        weight_decay: float = 0.0,
        maximize: bool = False,
        nonfinite: str = "raise",
        fused: bool | None = None,
    ):
        self.lr = self._check_lr(lr)
        self.weight_decay = check_real(self._owner, "weight_decay", weight_decay, low=0.0)
        self.maximize = check_bool(self._owner, "maximize", maximize)
        self.nonfinite = check_choice(self._owner, "nonfinite", nonfinite, ("raise", "skip", "propagate"))
        self.fused = _backend.check_fused(self._owner, fused)

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

    def _buffer_shapes(self, name: str, shapes: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
        """The shape of buffer ``name`` for each parameter leaf, given the leaves' shapes: each
        leaf's own by default. A rule whose buffers are not leaf-shaped (Adafactor's row and
        column factors) says so here, and gives a buffer a leaf does not use the shape ``(0,)``."""
        return shapes

    def _initial_scalars(self) -> dict[str, float]:
        return {}

    def _coefficients(self, t: int, lr: float, scalars: dict[str, float]) -> dict[str, Any]:
        """Step-wide numbers for step ``t`` (1-based, as PyTorch counts); may update scalars."""
        return {}

    def _update(self, p: np.ndarray, g: np.ndarray, b: dict[str, np.ndarray], c: dict[str, Any]) -> None:
        """The reference update of one leaf (``g`` already negated/decayed as configured)."""
        raise NotImplementedError

    def _kernel_args(self, c: dict[str, Any]) -> tuple[tuple[float, ...], tuple[bool, ...]]:
        """What the kernel needs this step: its floats (the caller rounds them to the leaf's
        dtype and puts the prologue ``sign, l2, decay`` first) and the flags ``_kernel`` takes."""
        return (), ()

    # -- public API ---------------------------------------------------------------------------
    def stability_constant(self) -> float | None:
        r"""``c`` such that this rule at lr :math:`\eta` is stable on a quadratic of top
        curvature :math:`\lambda` exactly when :math:`\eta \lambda < c` (2 for gradient
        descent); None where no such limit is set by the rule and the Hessian alone (adaptive
        rules divide each step by a running gradient size). :func:`descend.diagnose` judges a
        run's lr by it."""
        return None

    def hyperparameters(self) -> dict[str, Any]:
        """The configuration as plain values (a schedule is shown by its repr).

        ``fused`` is left out (it changes how, not what, is computed), and so is ``nonfinite``
        while it has its default ``"raise"``.
        """
        out: dict[str, Any] = {}
        for k, v in vars(self).items():
            if k.startswith("_") or k == "fused" or (k == "nonfinite" and v == "raise"):
                continue
            out[k] = v if isinstance(v, (int, float, bool, str, tuple)) else repr(v)
        return out

    def __repr__(self) -> str:
        args = ", ".join(
            f"{k}={v!r}" if not isinstance(v, str) or k in ("lr", "nonfinite") else f"{k}={v}"
            for k, v in self.hyperparameters().items()
        )
        if self.fused is not None:
            args += f", fused={self.fused}"
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
        shapes = [leaf.shape for leaf in leaves]
        buffers = {
            name: [
                np.full(shape, self._buffer_fill(name), dtype=leaf.dtype)
                for leaf, shape in zip(leaves, self._buffer_shapes(name, shapes), strict=True)
            ]
            for name in self._buffer_names()
        }
        return OptState(
            optimizer=self.name,
            t=np.int64(0),
            treedef=treedef,
            shapes=shapes,
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
        grads_out = []
        for p, g, shape, dtype in zip(p_leaves, g_leaves, state.shapes, state.dtypes, strict=True):
            if type(g) is not np.ndarray:
                g = np.asarray(g)
            if not (
                isinstance(p, np.ndarray)
                and p.dtype == dtype
                and p.shape == shape
                and g.shape == shape
                and g.dtype.kind in "fiu"
                and p.flags.writeable
            ):
                self._refuse_leaves(owner, p_leaves, g_leaves, state)
            grads_out.append(g)
        return p_leaves, grads_out

    def _refuse_leaves(self, owner: str, p_leaves: list[Any], g_leaves: list[Any], state: OptState) -> None:
        """Raise the error that describes the first bad leaf (the slow path of ``_check_call``)."""
        paths = leaf_paths(state.treedef)
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
            if g.dtype.kind not in "fiu":
                raise TypeError(f"{owner}: grads{path} must be a real-valued array, got dtype {g.dtype}")
            if not p.flags.writeable:
                raise ValueError(f"{owner}: params{path} is read-only; the update is made in place")
        raise AssertionError("unreachable: some leaf was refused")  # pragma: no cover

    def step(self, params: Any, grads: Any, state: OptState) -> None:
        """Apply one update to ``params`` and ``state`` in place.

        ``grads`` has the structure and shapes of ``params``; it is never modified.
        """
        p_leaves, g_leaves = self._check_call(params, grads, state)
        self._apply(p_leaves, g_leaves, state)

    def _apply(
        self,
        p_leaves: list[np.ndarray],
        g_leaves: list[np.ndarray],
        state: OptState,
        *,
        check_finite: bool = True,
    ) -> None:
        """The update itself, on already validated leaves (loops call this after one check).

        ``check_finite=False`` is for callers that have just checked the gradient themselves
        (e.g. through its norm); it saves one read of the gradient.
        """
        lr = self.lr_at(int(state.t))
        g_leaves = [
            g if type(g) is np.ndarray and g.dtype == p.dtype else np.asarray(g, dtype=p.dtype)
            for p, g in zip(p_leaves, g_leaves, strict=True)
        ]
        kernel = type(self)._kernel
        # a step this small is quicker in NumPy than through kernel calls (and needs no numba)
        small = self.fused is None and state.size < _backend.MIN_FUSED
        fused = kernel is not None and not small and _backend.use_fused(self.fused)
        layout = _backend.layout(state, p_leaves, self._kernel_buffers) if fused else None
        slow = range(len(p_leaves)) if layout is None else layout.slow
        check_finite = check_finite and self.nonfinite != "propagate"
        if check_finite:
            bad = _backend.first_nonfinite(g_leaves, slow)
            if bad >= 0:
                return self._nonfinite(bad, g_leaves, state)
        t = int(state.t) + 1
        scalars = dict(state.scalars)
        c = self._coefficients(t, lr, state.scalars)
        c.setdefault("lr", lr)
        c["t"] = t
        if layout is not None and layout.fast:
            bad = self._fused_leaves(kernel, layout, g_leaves, c, check_finite)
            if bad >= 0:
                state.scalars.clear()
                state.scalars.update(scalars)
                return self._nonfinite(bad, g_leaves, state)
        for i in slow:
            self._reference_leaf(
                p_leaves[i], g_leaves[i], {name: bufs[i] for name, bufs in state.buffers.items()}, c
            )
        state.t = np.int64(t)
        return None

    def _nonfinite(self, leaf: int, g_leaves: list[np.ndarray], state: OptState) -> None:
        """Skip the step or refuse it, for a gradient whose ``leaf`` is not finite."""
        if self.nonfinite == "skip":
            state.scalars["nonfinite_skipped"] = state.scalars.get("nonfinite_skipped", 0.0) + 1.0
            return
        path = leaf_paths(state.treedef)[leaf]
        raise ValueError(
            f"{self._owner}.step: grads{path} has a non-finite value "
            f"({_backend.describe_nonfinite(g_leaves[leaf])}) at step {int(state.t) + 1}; "
            "params and state are unchanged (pass nonfinite='skip' to skip such steps)"
        )

    def _reference_leaf(
        self, p: np.ndarray, g: np.ndarray, b: dict[str, np.ndarray], c: dict[str, Any]
    ) -> None:
        if self.maximize:
            g = np.negative(g)
        wd = self.weight_decay
        if wd != 0.0 and not self._weight_decay_in_update:
            if self.decoupled_weight_decay:
                p *= 1.0 - c["lr"] * wd
            else:
                g = g + wd * p
        self._update(p, g, b, c)

    def _fused_leaves(
        self,
        kernel: Callable[..., Any],
        layout: Any,
        g_leaves: list[np.ndarray],
        c: dict[str, Any],
        check: bool,
    ) -> int:
        """The kernel over every leaf it takes; -1, or (with ``check``) the first leaf whose
        gradient is not finite, in which case nothing was changed."""
        floats, flags = self._kernel_args(c)
        wd, decoupled = self.weight_decay, self.decoupled_weight_decay
        if self._weight_decay_in_update:  # the kernel takes it among its own floats
            wd = 0.0
        prologue = (
            -1.0 if self.maximize else 1.0,
            0.0 if decoupled else wd,
            1.0 - c["lr"] * wd if decoupled else 1.0,
        )
        coefficients = prologue + tuple(floats)
        # numba types a Python float as float64; float32 leaves get float32 coefficients, rounded
        # once here as NumPy rounds a Python float applied to a float32 array
        extras = {
            True: ((*map(np.float32, coefficients),),) if layout.has32 else None,
            False: (tuple(map(float, coefficients)),) if layout.has64 else None,
        }
        jobs = [
            # the kernels take C-contiguous arrays only (one compiled signature each)
            ((views[0], np.ascontiguousarray(g_leaves[i]).reshape(-1), *views[1:]), extras[is32])
            for i, views, is32 in zip(layout.fast, layout.views, layout.single, strict=True)
        ]
        bad = _backend.run(
            kernel,
            tuple(flags),
            jobs,
            layout.sizes,
            check=1 if check else None,
            tables=layout.tables,
            moved=layout.moved + (layout.grad_bytes if check else 0),
        )
        return layout.fast[bad] if bad >= 0 else -1

    # -- evaluation point ---------------------------------------------------------------------
    def eval_params(self, params: Any, state: OptState) -> Any:
        """The parameters to evaluate and predict with, given ``params`` (the point the rule
        takes gradients at, which :meth:`step` updates) and ``state``; neither is changed.

        For most rules these are ``params`` themselves, returned as they are (the same object).
        A rule with ``separate_eval_point`` (Schedule-Free) returns new arrays in the structure
        of ``params``: call this before computing a validation loss or predicting, and keep
        stepping ``params``.
        """
        owner = f"{self._owner}.eval_params"
        if not isinstance(state, OptState):
            raise TypeError(f"{owner}: state must be the OptState returned by init(), got {describe(state)}")
        if state.optimizer != self.name:
            raise ValueError(f"{owner}: state belongs to optimizer {state.optimizer!r}, not {self.name!r}")
        leaves, treedef = flatten(params)
        if treedef != state.treedef:
            raise ValueError(f"{owner}: params have a different structure from the one init() saw")
        paths = leaf_paths(treedef)
        for leaf, shape, dtype, path in zip(leaves, state.shapes, state.dtypes, paths, strict=True):
            if not isinstance(leaf, np.ndarray) or leaf.shape != shape or leaf.dtype != dtype:
                got = f"{leaf.dtype}{list(leaf.shape)}" if isinstance(leaf, np.ndarray) else describe(leaf)
                raise ValueError(
                    f"{owner}: params{path} is {got}; the state was made for {dtype}{list(shape)}"
                )
        if not self.separate_eval_point:
            return params
        missing = set(self._buffer_names()) - set(state.buffers)
        if missing:
            raise ValueError(
                f"{owner}: state lacks buffers {sorted(missing)}; it was made with another configuration"
            )
        t = int(state.t)
        out = [
            self._eval_leaf(p, {name: bufs[i] for name, bufs in state.buffers.items()}, t)
            for i, p in enumerate(leaves)
        ]
        return unflatten(treedef, out)

    def _eval_leaf(self, p: np.ndarray, b: dict[str, np.ndarray], t: int) -> np.ndarray:
        """The evaluation point of one leaf, as a new array (rules with ``separate_eval_point``);
        ``t`` counts the steps taken."""
        raise NotImplementedError

    # -- persistence ----------------------------------------------------------------------------
    def config_json(self) -> str:
        return json.dumps({"optimizer": self.name, **self.hyperparameters()}, sort_keys=True, default=repr)
