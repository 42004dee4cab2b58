"""RAdam: Adam whose adaptive step is switched on and rectified as its variance becomes tractable."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_bool
from ._blocks import bias_correction, ema, ema_, ema_sq, ema_sq_, grad_in
from ._checks import check_betas, check_eps
from .base import Optimizer, Schedule

__all__ = ["RAdam"]


class RAdam(Optimizer):
    r"""RAdam, rectified Adam (Liu et al., 2020), as PyTorch defines it.

    .. math::

        m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2 \\
        \rho_\infty &= \frac{2}{1 - \beta_2} - 1, \qquad
        \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1 - \beta_2^t} \\
        r_t &= \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\,\rho_\infty}
                          {(\rho_\infty - 4)(\rho_\infty - 2)\,\rho_t}} \\
        p_t &= p_{t-1} - \eta\, \frac{m_t}{1 - \beta_1^t}\,
               \frac{\sqrt{1 - \beta_2^t}}{\sqrt{v_t} + \epsilon}\, r_t
               \quad (\rho_t > 5), \qquad
        p_t = p_{t-1} - \eta\, \frac{m_t}{1 - \beta_1^t} \quad \text{otherwise}

    While :math:`\rho_t \le 5` (the first 5 steps with the default betas) the variance of the
    adaptive step is too large to trust, and the step is the bias-corrected momentum alone
    (SGD with momentum); after that, the adaptive step is scaled by :math:`r_t`, which grows
    towards 1: a warm-up built into the rule.

    Parameters
    ----------
    lr : ``>= 0`` or schedule (default 1e-3). betas : ``(beta1, beta2)``, each in ``[0, 1)``
    (default ``(0.9, 0.999)``). eps : ``> 0`` (default 1e-8). weight_decay : ``>= 0``
    (default 0): L2 added to the gradient, or, with ``decoupled_weight_decay=True``, the
    parameters shrunk by :math:`1 - \eta\lambda` before the step (RAdamW).
    maximize : ascend instead.
    nonfinite : ``"raise"`` (default), ``"skip"`` or ``"propagate"`` a NaN/inf gradient.
    fused : ``None`` (default: numba kernel when available), ``True`` or ``False`` (NumPy).

    Warning
    -------
    eps is added to the *uncorrected* :math:`\sqrt{v_t}` (PyTorch and the authors' code),
    not after bias correction as in descend's and PyTorch's :class:`~descend.Adam`: the same
    eps weighs :math:`1/\sqrt{1 - \beta_2^t}` times more here early on. The authors' code
    (LiyuanLucasLiu/RAdam) rectifies from :math:`\rho_t \ge 5` (PyTorch and descend:
    :math:`\rho_t > 5`), decays weights decoupled, and by default leaves the parameters where
    they are during the first steps instead of taking the momentum step.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> p = np.array([1.0]); opt = ds.RAdam(lr=0.1); s = opt.init(p)
    >>> opt.step(p, np.array([5.0]), s)   # first step: lr * m / (1 - beta1) = lr * g
    >>> np.round(p, 6)
    array([0.5])

    References: Liu, Jiang, He, Chen, Liu, Gao & Han (2020), "On the variance of the adaptive
    learning rate and beyond", ICLR.
    """

    name = "radam"
    # r_t is well below 1 for the first thousands of steps (beta2 = 0.999): a short training
    # wants ~10x Adam's lr (measured on standardized data, logistic regression and an MLP)
    fit_lr = 3e-2
    # the first steps are momentum steps on the raw gradient (O(100) on Rosenbrock): SGD's scale
    race_lr = 5e-3
    color = "#aec7e8"
    marker = "*"
    elementwise = True

    def __init__(
        self,
        lr: float | Schedule = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        *,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        maximize: bool = False,
        nonfinite: str = "raise",
        fused: bool | None = None,
    ):
        super().__init__(lr, weight_decay=weight_decay, maximize=maximize, nonfinite=nonfinite, fused=fused)
        self.betas = check_betas(self._owner, betas)
        self.eps = check_eps(self._owner, eps)
        self.decoupled_weight_decay = check_bool(
            self._owner, "decoupled_weight_decay", decoupled_weight_decay
        )

    def _buffer_names(self) -> tuple[str, ...]:
        return ("m", "v")

    def _coefficients(self, t: int, lr: float, scalars: dict[str, float]) -> dict[str, Any]:
        beta1, beta2 = self.betas
        bc2 = bias_correction(beta2, t)
        # PyTorch's expressions, in its order of operations
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * t * (beta2**t) / bc2
        rectified = rho_t > 5.0
        rect = (
            ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            if rectified
            else 1.0
        )
        return {
            "bc1": bias_correction(beta1, t),
            "bc2_sqrt": bc2**0.5,
            "rect": rect,
            "rectified": rectified,
        }

    def _update(self, p: np.ndarray, g: np.ndarray, b: dict[str, np.ndarray], c: dict[str, Any]) -> None:
        beta1, beta2 = self.betas
        m, v = b["m"], b["v"]
        ema_(m, g, 1.0 - beta1)
        ema_sq_(v, g, beta2)
        m_hat = m / c["bc1"]
        if c["rectified"]:
            denom = np.sqrt(v)
            denom += self.eps
            p -= m_hat * c["lr"] * (c["bc2_sqrt"] / denom) * c["rect"]
        else:
            p -= m_hat * c["lr"]

    def _kernel_args(self, c: dict[str, Any]) -> tuple[tuple[float, ...], tuple[bool, ...]]:
        beta1, beta2 = self.betas
        w = 1.0 - beta1
        floats = (w, w - 1.0, beta2, 1.0 - beta2, c["bc1"], c["lr"], c["bc2_sqrt"], self.eps, c["rect"])
        return floats, (c["rectified"],)

    @staticmethod
    def _kernel(rectified):
        """The fused update of one leaf; ``rectified`` (rho_t > 5) is compiled in."""

        def kernel(p, g, m, v, c):
            sign, l2, decay, w, w_minus_1, beta2, one_minus_beta2, bc1, lr, bc2_sqrt, eps, rect = c
            for i in range(p.size):
                pi, gi = grad_in(p[i], g[i], sign, l2, decay)
                mi = ema(m[i], gi, w, w_minus_1)
                vi = ema_sq(v[i], gi, beta2, one_minus_beta2)
                m[i] = mi
                v[i] = vi
                m_hat = mi / bc1
                if rectified:
                    p[i] = pi - m_hat * lr * (bc2_sqrt / (np.sqrt(vi) + eps)) * rect
                else:
                    p[i] = pi - m_hat * lr

        return kernel

    _kernel_buffers = ("m", "v")
