"""A small model's parameters, gradients and optimizer buffers as views into one flat array each.

An elementwise rule (every built-in one) computes the same numbers whether it is applied leaf
by leaf or to all leaves laid end to end, so a training loop can update a whole model with one
pass: one NumPy expression, or one kernel call, instead of one per leaf. For small models the
per-leaf calls are most of a step's cost (Adam on logistic regression: W and b, ~10 NumPy
operations each); for large ones the step is bound by memory traffic and the copy of the
gradient into the flat buffer would cost more than the calls it saves, so ``fit`` flattens
models of at most :data:`MAX_FLAT` parameters.

The arrays in ``params`` and in ``state.buffers`` are replaced, once, by views of the flat
arrays (values kept), so everything that reads them or writes them in place (checkpoints,
snapshots, callbacks, ``restore_from``) sees the same memory as the flat step.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .._tree import flatten
from .base import Optimizer, OptState

__all__ = ["MAX_FLAT", "FlatStep"]

#: models with more parameters than this are stepped leaf by leaf.
MAX_FLAT = 1 << 16


def _declared_elementwise(cls: type) -> bool:
    """``cls.elementwise``, trusted only if declared by the class that defines the update (or
    a subclass of it): a subclass of Adam whose own ``_update`` mixes elements inherits
    ``elementwise = True`` but has not said so."""
    mro = cls.__mro__
    flag = next((c for c in mro if "elementwise" in c.__dict__), None)
    rule = next((c for c in mro if "_update" in c.__dict__ or "_kernel" in c.__dict__), None)
    return (
        bool(getattr(cls, "elementwise", False))
        and flag is not None
        and (rule is None or issubclass(flag, rule))
    )


class FlatStep:
    """Step ``opt`` on ``params`` (a dict of arrays) through flat buffers.

    Use :meth:`applies` first. After construction ``params[k]`` and ``state.buffers[name][i]``
    are views of :attr:`flat` and of the flat state's buffers; :meth:`step` copies a gradient
    into :attr:`grad` and applies the rule once, keeping ``state.t`` in step.
    """

    @staticmethod
    def applies(opt: Optimizer, params: dict[str, np.ndarray]) -> bool:
        leaves = list(params.values())
        return (
            _declared_elementwise(type(opt))
            and len(leaves) > 1
            and len({leaf.dtype for leaf in leaves}) == 1
            and leaves[0].dtype.kind == "f"
            and sum(leaf.size for leaf in leaves) <= MAX_FLAT
        )

    def __init__(self, opt: Optimizer, params: dict[str, np.ndarray], state: OptState):
        self.opt = opt
        leaves = list(params.values())
        dtype = leaves[0].dtype
        self.shapes = [leaf.shape for leaf in leaves]
        sizes = [leaf.size for leaf in leaves]
        self.bounds = list(zip(np.cumsum([0, *sizes[:-1]]).tolist(), np.cumsum(sizes).tolist(), strict=True))
        self.flat = self._pack(leaves, dtype)
        for key, view in zip(list(params), self._views(self.flat), strict=True):
            params[key] = view
        flat_buffers = {}
        for name, bufs in state.buffers.items():
            flat_buffers[name] = [self._pack(bufs, dtype)]
            bufs[:] = self._views(flat_buffers[name][0])  # same list, now of views
        state._layouts.clear()  # the fused layouts were made for the old arrays
        self.state = OptState(
            optimizer=state.optimizer,
            t=state.t,
            treedef=flatten(self.flat)[1],
            shapes=[self.flat.shape],
            dtypes=[dtype],
            buffers=flat_buffers,
            scalars=state.scalars,  # the same dict: rules and restore_from update it in place
        )
        self.grad = np.empty_like(self.flat)
        self.flat_leaves, self.grad_leaves = [self.flat], [self.grad]
        self.grad_views = self._views(self.grad)

    def _pack(self, arrays: list[np.ndarray], dtype: np.dtype) -> np.ndarray:
        return np.concatenate([np.asarray(a, dtype=dtype).reshape(-1) for a in arrays])

    def _views(self, flat: np.ndarray) -> list[np.ndarray]:
        return [flat[lo:hi].reshape(shape) for (lo, hi), shape in zip(self.bounds, self.shapes, strict=True)]

    def load(self, grads: Iterable[np.ndarray]) -> np.ndarray:
        """Copy ``grads`` (one per leaf, in order) into :attr:`grad`, and return it."""
        for view, g in zip(self.grad_views, grads, strict=True):
            np.copyto(view, g, casting="same_kind")
        return self.grad

    def step(self, state: OptState) -> None:
        """One update of every leaf from the gradient last loaded (checked finite by the
        caller), in ``state``'s count of steps."""
        flat_state = self.state
        flat_state.t = state.t
        self.opt._apply(self.flat_leaves, self.grad_leaves, flat_state, check_finite=False)
        state.t = flat_state.t
