"""AdaDelta: unit-corrected steps from running averages of squared gradients and updates."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_real
from ._blocks import ema_sq, ema_sq_, grad_in
from ._checks import check_eps
from .base import Optimizer, Schedule

__all__ = ["AdaDelta"]


class AdaDelta(Optimizer):
    r"""AdaDelta (Zeiler, 2012), as PyTorch defines it.

    .. math::

        v_t &= \rho\, v_{t-1} + (1 - \rho)\, g_t^2 \\
        \Delta_t &= \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, g_t \\
        u_t &= \rho\, u_{t-1} + (1 - \rho)\, \Delta_t^2 \\
        p_t &= p_{t-1} - \eta\, \Delta_t

    Parameters
    ----------
    lr : ``>= 0`` or schedule (default 1.0: the paper has no learning rate). rho : ``0 <= rho <= 1``
    (default 0.9). eps : ``> 0`` (default 1e-6). weight_decay, maximize : as everywhere.
    nonfinite : ``"raise"`` (default), ``"skip"`` or ``"propagate"`` a NaN/inf gradient.
    fused : ``None`` (default: numba kernel when available), ``True`` or ``False`` (NumPy).

    Warning
    -------
    The paper uses rho=0.95 and no lr; Keras defaults to lr=1e-3 and eps=1e-7, which makes
    it take tiny steps. PyTorch (and descend) default to lr=1.0, rho=0.9, eps=1e-6.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> p = np.array([1.0]); opt = ds.AdaDelta(); s = opt.init(p)
    >>> opt.step(p, np.array([1.0]), s); np.round(1.0 - p, 6)  # sqrt(eps)/sqrt(0.1+eps)
    array([0.003162])
    """

    name = "adadelta"
    fit_lr = 1.0
    race_lr = 1.0
    color = "#000000"
    marker = "p"
    elementwise = True

    def __init__(
        self,
        lr: float | Schedule = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        *,
        weight_decay: float = 0.0,
        maximize: bool = False,
        nonfinite: str = "raise",
        fused: bool | None = None,
    ):
        super().__init__(lr, weight_decay=weight_decay, maximize=maximize, nonfinite=nonfinite, fused=fused)
        self.rho = check_real(self._owner, "rho", rho, low=0.0, high=1.0)
        self.eps = check_eps(self._owner, eps)

    def _buffer_names(self) -> tuple[str, ...]:
        return ("v", "u")

    def _update(self, p: np.ndarray, g: np.ndarray, b: dict[str, np.ndarray], c: dict[str, Any]) -> None:
        rho, eps = self.rho, self.eps
        v, u = b["v"], b["u"]
        ema_sq_(v, g, rho)
        std = np.sqrt(v + eps)
        delta = np.sqrt(u + eps)
        delta /= std
        delta *= g
        ema_sq_(u, delta, rho)
        p -= c["lr"] * delta

    def _kernel_args(self, c: dict[str, Any]) -> tuple[tuple[float, ...], tuple[bool, ...]]:
        return (self.rho, 1.0 - self.rho, self.eps, c["lr"]), ()

    @staticmethod
    def _kernel():
        def kernel(p, g, v, u, c):
            sign, l2, decay, rho, one_minus_rho, eps, lr = c
            for i in range(p.size):
                pi, gi = grad_in(p[i], g[i], sign, l2, decay)
                vi = ema_sq(v[i], gi, rho, one_minus_rho)
                v[i] = vi
                delta = np.sqrt(u[i] + eps) / np.sqrt(vi + eps) * gi
                u[i] = ema_sq(u[i], delta, rho, one_minus_rho)
                p[i] = pi - lr * delta

        return kernel

    _kernel_buffers = ("v", "u")
