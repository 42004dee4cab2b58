"""AdaGrad: per-coordinate step sizes from the sum of all past squared gradients."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_real
from ._blocks import grad_in
from ._checks import check_eps
from .base import Optimizer, Schedule

__all__ = ["AdaGrad"]


class AdaGrad(Optimizer):
    r"""AdaGrad (Duchi, Hazan & Singer, 2011), as PyTorch defines it.

    .. math::

        \eta_t &= \eta / (1 + (t - 1)\,\delta) \\
        s_t &= s_{t-1} + g_t^2, \qquad s_0 = \text{initial\_accumulator} \\
        p_t &= p_{t-1} - \eta_t\, g_t / (\sqrt{s_t} + \epsilon)

    with :math:`\delta` = ``lr_decay``. Because :math:`s_t` only grows, the effective step
    :math:`\eta_t/\sqrt{s_t}` decays for every coordinate; coordinates with rare (sparse) large
    gradients keep larger steps than frequently updated ones.

    Parameters
    ----------
    lr : ``>= 0`` or schedule (default 1e-2). eps : ``> 0`` (default 1e-10).
    initial_accumulator : ``>= 0`` (default 0). lr_decay : ``>= 0`` (default 0).
    weight_decay : L2 penalty ``>= 0``. maximize : ascend instead.
    nonfinite : ``"raise"`` (default), ``"skip"`` or ``"propagate"`` a NaN/inf gradient.
    fused : ``None`` (default: numba kernel when available), ``True`` or ``False`` (NumPy).

    Warning
    -------
    PyTorch starts the accumulator at 0 with eps=1e-10 outside the root. TensorFlow/Keras start
    it at 0.1 (eps=1e-7); optax starts it at 0.1 and puts eps inside the root,
    ``g / sqrt(s + eps)``. The first steps differ noticeably between libraries for that reason.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> p = np.array([1.0, 1.0]); opt = ds.AdaGrad(lr=0.5); s = opt.init(p)
    >>> opt.step(p, np.array([3.0, -0.01]), s)   # both coordinates move by ~lr
    >>> np.round(p, 6)
    array([0.5, 1.5])
    """

    name = "adagrad"
    fit_lr = 0.1
    race_lr = 0.3
    color = "#2ca02c"
    marker = "^"
    elementwise = True

    def __init__(
        self,
        lr: float | Schedule = 1e-2,
        *,
        eps: float = 1e-10,
        initial_accumulator: float = 0.0,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        maximize: bool = False,
        nonfinite: str = "raise",
        fused: bool | None = None,
    ):
        super().__init__(lr, weight_decay=weight_decay, maximize=maximize, nonfinite=nonfinite, fused=fused)
        self.eps = check_eps(self._owner, eps)
        self.initial_accumulator = check_real(
            self._owner, "initial_accumulator", initial_accumulator, low=0.0
        )
        self.lr_decay = check_real(self._owner, "lr_decay", lr_decay, low=0.0)

    def _buffer_names(self) -> tuple[str, ...]:
        return ("s",)

    def _buffer_fill(self, name: str) -> float:
        return self.initial_accumulator

    def _coefficients(self, t: int, lr: float, scalars: dict[str, float]) -> dict[str, Any]:
        return {"clr": lr / (1.0 + (t - 1) * self.lr_decay)}

    def _update(self, p: np.ndarray, g: np.ndarray, b: dict[str, np.ndarray], c: dict[str, Any]) -> None:
        s = b["s"]
        s += g * g
        std = np.sqrt(s)
        std += self.eps
        step = g / std
        step *= c["clr"]
        p -= step

    def _kernel_args(self, c: dict[str, Any]) -> tuple[tuple[float, ...], tuple[bool, ...]]:
        return (c["clr"], self.eps), ()

    @staticmethod
    def _kernel():
        def kernel(p, g, s, c):
            sign, l2, decay, clr, eps = c
            for i in range(p.size):
                pi, gi = grad_in(p[i], g[i], sign, l2, decay)
                si = s[i] + gi * gi
                s[i] = si
                p[i] = pi - clr * (gi / (np.sqrt(si) + eps))

        return kernel

    _kernel_buffers = ("s",)
