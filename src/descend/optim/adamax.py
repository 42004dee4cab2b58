"""Adamax: Adam with the infinity norm in place of the second moment."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import check_betas, check_eps
from .base import Optimizer, Schedule, _lerp_

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

    def __init__(
        self,
        lr: float | Schedule = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        *,
        weight_decay: float = 0.0,
        maximize: bool = False,
    ):
        super().__init__(lr, weight_decay=weight_decay, maximize=maximize)
        self.betas = check_betas(self._owner, betas)
        self.eps = check_eps(self._owner, eps)

    def _buffer_names(self) -> tuple[str, ...]:
        return ("m", "u")

    def _coefficients(self, t: int, lr: float, scalars: dict[str, float]) -> dict[str, Any]:
        return {"clr": lr / (1.0 - self.betas[0] ** t)}

    def _update(self, p: np.ndarray, g: np.ndarray, b: dict[str, np.ndarray], c: dict[str, Any]) -> None:
        beta1, beta2 = self.betas
        m, u = b["m"], b["u"]
        _lerp_(m, g, 1.0 - beta1)
        u *= beta2
        a = np.abs(g)
        a += self.eps
        np.maximum(u, a, out=u)
        p -= c["clr"] * (m / u)
