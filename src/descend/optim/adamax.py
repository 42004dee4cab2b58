"""Adamax: Adam with the infinity norm in place of the second moment."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._blocks import bias_correction, ema, ema_, grad_in
from ._checks import check_betas, check_eps
from .base import Optimizer, Schedule

__all__ = ["Adamax"]


class Adamax(Optimizer):
    r"""Adamax (Kingma & Ba, 2015, section 7.1), as PyTorch defines it.

    .. math::

        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        u_t &= \max(\beta_2 u_{t-1},\ |g_t| + \epsilon) \\
        p_t &= p_{t-1} - \frac{\eta}{1 - \beta_1^t}\, \frac{m_t}{u_t}

    Parameters
    ----------
    lr : ``>= 0`` or schedule (default 2e-3). betas : each in ``[0, 1)`` (default (0.9, 0.999)).
    eps : ``> 0`` (default 1e-8). weight_decay, maximize : as everywhere.
    nonfinite : ``"raise"`` (default), ``"skip"`` or ``"propagate"`` a NaN/inf gradient.
    fused : ``None`` (default: numba kernel when available), ``True`` or ``False`` (NumPy).

    Warning
    -------
    PyTorch adds eps to :math:`|g_t|` inside the max (as here); Keras and optax add it to
    :math:`u_t` in the denominator instead.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> p = np.array([1.0]); opt = ds.Adamax(lr=0.1); s = opt.init(p)
    >>> opt.step(p, np.array([7.0]), s); np.round(p, 6)
    array([0.9])
    """

    name = "adamax"
    fit_lr = 1e-2
    race_lr = 5e-2
    color = "#7f7f7f"
    marker = "h"
    elementwise = True

    def __init__(
        self,
        lr: float | Schedule = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        *,
        weight_decay: float = 0.0,
        maximize: bool = False,
        nonfinite: str = "raise",
        fused: bool | None = None,
    ):
        super().__init__(lr, weight_decay=weight_decay, maximize=maximize, nonfinite=nonfinite, fused=fused)
        self.betas = check_betas(self._owner, betas)
        self.eps = check_eps(self._owner, eps)

    def _buffer_names(self) -> tuple[str, ...]:
        return ("m", "u")

    def _coefficients(self, t: int, lr: float, scalars: dict[str, float]) -> dict[str, Any]:
        return {"clr": lr / bias_correction(self.betas[0], t)}

    def _update(self, p: np.ndarray, g: np.ndarray, b: dict[str, np.ndarray], c: dict[str, Any]) -> None:
        beta1, beta2 = self.betas
        m, u = b["m"], b["u"]
        ema_(m, g, 1.0 - beta1)
        u *= beta2
        a = np.abs(g)
        a += self.eps
        np.maximum(u, a, out=u)
        p -= c["clr"] * (m / u)

    def _kernel_args(self, c: dict[str, Any]) -> tuple[tuple[float, ...], tuple[bool, ...]]:
        beta1, beta2 = self.betas
        w = 1.0 - beta1
        return (w, w - 1.0, beta2, self.eps, c["clr"]), ()

    @staticmethod
    def _kernel():
        def kernel(p, g, m, u, c):
            sign, l2, decay, w, w_minus_1, beta2, eps, clr = c
            for i in range(p.size):
                pi, gi = grad_in(p[i], g[i], sign, l2, decay)
                mi = ema(m[i], gi, w, w_minus_1)
                m[i] = mi
                ui = beta2 * u[i]
                ai = np.abs(gi) + eps
                if ai > ui:
                    ui = ai
                u[i] = ui
                p[i] = pi - clr * (mi / ui)

        return kernel

    _kernel_buffers = ("m", "u")
