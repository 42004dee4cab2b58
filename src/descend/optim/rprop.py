"""Rprop: a step size per element, grown while the gradient keeps its sign and shrunk when it flips."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_real, describe
from ._blocks import grad_in
from .base import Optimizer, Schedule

__all__ = ["Rprop"]


def _pair(owner: str, name: str, value: Any, parts: str) -> tuple[Any, Any]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise TypeError(f"{owner}: {name} must be a pair {parts}, got {describe(value)}")
    return value[0], value[1]


class Rprop(Optimizer):
    r"""Rprop, resilient backpropagation (Riedmiller & Braun, 1993), as PyTorch defines it.

    Each element :math:`i` keeps its own step size :math:`\Delta^i` (starting at ``lr``) and
    its previous gradient :math:`g^i_{prev}` (starting at 0); only the sign of the gradient
    moves the parameter:

    .. math::

        \Delta^i_t &= \min(\eta_+ \Delta^i_{t-1},\ \Delta_{max}) \quad (g^i_{prev}\, g^i_t > 0),
        \qquad \max(\eta_- \Delta^i_{t-1},\ \Delta_{min}) \quad (g^i_{prev}\, g^i_t < 0),
        \qquad \Delta^i_{t-1} \ \text{otherwise} \\
        g^i_t &\leftarrow 0 \quad \text{where } g^i_{prev}\, g^i_t < 0 \\
        p^i_t &= p^i_{t-1} - \Delta^i_t\, \operatorname{sign}(g^i_t), \qquad g^i_{prev} \leftarrow g^i_t

    with :math:`(\eta_-, \eta_+)` = ``etas`` and :math:`(\Delta_{min}, \Delta_{max})` =
    ``step_sizes`` (the step size is clipped to them at every step, the first included). Where
    the sign flips, the element stays put and its stored gradient becomes 0, so the next step
    neither grows nor shrinks its step size. The state holds ``state["step_size"]`` and
    ``state["prev"]`` in the parameters' structure.

    Rprop is meant for full-batch gradients: the noise of mini-batches flips signs, which
    shrinks the step sizes towards ``step_sizes[0]``.

    Parameters
    ----------
    lr : ``>= 0`` or schedule (default 1e-2): the initial step size of every element. A
    schedule is read once, at ``init`` (its value at step 0): after that the step sizes follow
    the signs alone, as in PyTorch, where lr is read when the state is created.
    etas : ``(etaminus, etaplus)`` with ``0 < etaminus < 1 < etaplus`` (default (0.5, 1.2)).
    step_sizes : ``(step_size_min, step_size_max)`` with ``0 <= min <= max`` (default
    (1e-6, 50)). weight_decay : ``>= 0`` (default 0), L2 added to the gradient before its sign
    is taken (PyTorch's Rprop has no weight decay: see the warning). maximize : ascend instead.
    nonfinite : ``"raise"`` (default), ``"skip"`` or ``"propagate"`` a NaN/inf gradient.
    fused : ``None`` (default: numba kernel when available), ``True`` or ``False`` (NumPy).

    Warning
    -------
    This is Rprop *without* weight-backtracking (PyTorch's form, often called Rprop-): the
    1993 paper takes back the previous step of an element whose gradient changed sign, which
    this does not. The paper starts every step size at 0.1; PyTorch and descend start it at
    ``lr`` (default 0.01). ``weight_decay`` is descend's: PyTorch's ``Rprop`` takes none; with
    ``weight_decay=0`` (the default) the steps are PyTorch's, and a nonzero value is the same
    as giving PyTorch the gradient plus ``weight_decay * p``.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> p = np.array([1.0, 1.0]); opt = ds.Rprop(lr=0.1); s = opt.init(p)
    >>> for g in ([3.0, 3.0], [0.5, -2.0], [1.0, 1.0]):
    ...     opt.step(p, np.array(g), s)
    >>> s["step_size"]                  # grew by 1.2 twice; shrank by 0.5 once, then kept
    array([0.144, 0.05 ])
    >>> np.round(p, 3)                  # the flipped element stayed put on that step
    array([0.636, 0.85 ])

    References: Riedmiller & Braun (1993), "A direct adaptive method for faster
    backpropagation learning: the RPROP algorithm", IEEE International Conference on Neural
    Networks, 586-591.
    """

    name = "rprop"
    # mini-batch noise flips signs and shrinks the steps: a larger start than torch's 1e-2
    # trains standardized data better (measured: logistic regression, MLPs at batch 32 and 256)
    fit_lr = 3e-2
    # only signs move it, so the surfaces' gradient scales do not matter
    race_lr = 1e-2
    color = "#ffbb78"
    marker = "d"
    elementwise = True

    def __init__(
        self,
        lr: float | Schedule = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50.0),
        *,
        weight_decay: float = 0.0,
        maximize: bool = False,
        nonfinite: str = "raise",
        fused: bool | None = None,
    ):
        super().__init__(lr, weight_decay=weight_decay, maximize=maximize, nonfinite=nonfinite, fused=fused)
        owner = self._owner
        minus, plus = _pair(owner, "etas", etas, "(etaminus, etaplus)")
        self.etas = (
            check_real(owner, "etaminus", minus, low=0.0, high=1.0, low_open=True, high_open=True),
            check_real(owner, "etaplus", plus, low=1.0, low_open=True),
        )
        low, high = _pair(owner, "step_sizes", step_sizes, "(step_size_min, step_size_max)")
        low = check_real(owner, "step_size_min", low, low=0.0)
        self.step_sizes = (low, check_real(owner, "step_size_max", high, low=low))

    def _buffer_names(self) -> tuple[str, ...]:
        return ("prev", "step_size")

    def _buffer_fill(self, name: str) -> float:
        return self.lr_at(0) if name == "step_size" else 0.0

    def _update(self, p: np.ndarray, g: np.ndarray, b: dict[str, np.ndarray], c: dict[str, Any]) -> None:
        etaminus, etaplus = self.etas
        prev, step_size = b["prev"], b["step_size"]
        s = g * prev
        factor = np.ones_like(step_size)  # the leaf's dtype: the etas round to it, as in torch
        factor[s > 0] = etaplus
        factor[s < 0] = etaminus
        step_size *= factor
        np.clip(step_size, *self.step_sizes, out=step_size)
        g = np.where(s < 0, 0, g)
        p -= np.sign(g) * step_size
        np.copyto(prev, g)

    def _kernel_args(self, c: dict[str, Any]) -> tuple[tuple[float, ...], tuple[bool, ...]]:
        return (*self.etas, *self.step_sizes), ()

    @staticmethod
    def _kernel():
        def kernel(p, g, prev, step_size, c):
            sign, l2, decay, etaminus, etaplus, step_min, step_max = c
            for i in range(p.size):
                pi, gi = grad_in(p[i], g[i], sign, l2, decay)
                s = gi * prev[i]
                step = step_size[i]
                if s > 0:
                    step = step * etaplus
                elif s < 0:
                    step = step * etaminus
                # torch's clamp: the lower bound first, then the upper one
                if step < step_min:
                    step = step_min
                if step > step_max:
                    step = step_max
                step_size[i] = step
                if s < 0:
                    prev[i] = 0.0
                    p[i] = pi
                else:
                    prev[i] = gi
                    if gi > 0:
                        p[i] = pi - step
                    elif gi < 0:
                        p[i] = pi + step
                    else:  # 0, or a NaN let in by nonfinite="propagate": as the NumPy path
                        p[i] = pi - np.sign(gi) * step

        return kernel

    _kernel_buffers = ("prev", "step_size")
