"""Nadam: Adam with Nesterov momentum and Dozat's momentum-decay schedule."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_bool, check_real
from ._blocks import bias_correction, ema, ema_, ema_sq, ema_sq_, grad_in
from ._checks import check_betas, check_eps
from .base import Optimizer, Schedule

__all__ = ["Nadam"]


class Nadam(Optimizer):
    r"""Nadam (Dozat, 2016), as PyTorch defines it.

    .. math::

        \mu_t &= \beta_1 \left(1 - \tfrac12\, 0.96^{t\psi}\right), \qquad
        \Pi_t = \textstyle\prod_{i \le t} \mu_i \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        d_t &= \sqrt{v_t / (1 - \beta_2^t)} + \epsilon \\
        p_t &= p_{t-1} - \eta \frac{1 - \mu_t}{1 - \Pi_t}\frac{g_t}{d_t}
                       - \eta \frac{\mu_{t+1}}{1 - \Pi_t\,\mu_{t+1}}\frac{m_t}{d_t}

    with :math:`\psi` = ``momentum_decay``.

    Parameters
    ----------
    lr : ``>= 0`` or schedule (default 2e-3). betas : each in ``[0, 1)`` (default (0.9, 0.999)).
    eps : ``> 0`` (default 1e-8). momentum_decay : ``>= 0`` (default 4e-3).
    weight_decay : L2 added to the gradient, or decoupled (AdamW-style) with
    ``decoupled_weight_decay=True``. maximize : ascend instead.
    nonfinite : ``"raise"`` (default), ``"skip"`` or ``"propagate"`` a NaN/inf gradient.
    fused : ``None`` (default: numba kernel when available), ``True`` or ``False`` (NumPy).

    Warning
    -------
    Keras' Nadam uses the same :math:`\mu_t` schedule but eps=1e-7; optax's ``nadam`` has no
    momentum-decay schedule (constant :math:`\beta_1`), so its steps differ from these.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> p = np.array([1.0]); opt = ds.Nadam(lr=0.01); s = opt.init(p)
    >>> opt.step(p, np.array([2.0]), s); bool(p[0] < 1.0)
    True
    """

    name = "nadam"
    fit_lr = 5e-3
    race_lr = 5e-2
    color = "#bcbd22"
    marker = ">"
    elementwise = True

    def __init__(
        self,
        lr: float | Schedule = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        *,
        momentum_decay: float = 4e-3,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        maximize: bool = False,
        nonfinite: str = "raise",
        fused: bool | None = None,
    ):
        super().__init__(lr, weight_decay=weight_decay, maximize=maximize, nonfinite=nonfinite, fused=fused)
        self.betas = check_betas(self._owner, betas)
        self.eps = check_eps(self._owner, eps)
        self.momentum_decay = check_real(self._owner, "momentum_decay", momentum_decay, low=0.0)
        self.decoupled_weight_decay = check_bool(
            self._owner, "decoupled_weight_decay", decoupled_weight_decay
        )

    def _buffer_names(self) -> tuple[str, ...]:
        return ("m", "v")

    def _initial_scalars(self) -> dict[str, float]:
        return {"mu_product": 1.0}

    def _coefficients(self, t: int, lr: float, scalars: dict[str, float]) -> dict[str, Any]:
        beta1, beta2 = self.betas
        psi = self.momentum_decay
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * psi))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
        scalars["mu_product"] = scalars["mu_product"] * mu
        prod = scalars["mu_product"]
        return {
            "bc2": bias_correction(beta2, t),
            "coef_g": lr * (1.0 - mu) / (1.0 - prod),
            "coef_m": lr * mu_next / (1.0 - prod * mu_next),
        }

    def _update(self, p: np.ndarray, g: np.ndarray, b: dict[str, np.ndarray], c: dict[str, Any]) -> None:
        beta1, beta2 = self.betas
        m, v = b["m"], b["v"]
        ema_(m, g, 1.0 - beta1)
        ema_sq_(v, g, beta2)
        denom = np.sqrt(v / c["bc2"])
        denom += self.eps
        p -= c["coef_g"] * (g / denom)
        p -= c["coef_m"] * (m / denom)

    def _kernel_args(self, c: dict[str, Any]) -> tuple[tuple[float, ...], tuple[bool, ...]]:
        beta1, beta2 = self.betas
        w = 1.0 - beta1
        return (w, w - 1.0, beta2, 1.0 - beta2, c["bc2"], self.eps, c["coef_g"], c["coef_m"]), ()

    @staticmethod
    def _kernel():
        def kernel(p, g, m, v, c):
            sign, l2, decay, w, w_minus_1, beta2, one_minus_beta2, bc2, eps, coef_g, coef_m = c
            for i in range(p.size):
                pi, gi = grad_in(p[i], g[i], sign, l2, decay)
                mi = ema(m[i], gi, w, w_minus_1)
                vi = ema_sq(v[i], gi, beta2, one_minus_beta2)
                m[i] = mi
                v[i] = vi
                denom = np.sqrt(vi / bc2) + eps
                pi = pi - coef_g * (gi / denom)
                p[i] = pi - coef_m * (mi / denom)

        return kernel

    _kernel_buffers = ("m", "v")
