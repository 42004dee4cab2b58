"""Adam and AdamW (with the AMSGrad variant): bias-corrected first and second moments."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._validation import check_bool
from ._blocks import bias_correction, ema, ema_, ema_sq, ema_sq_, grad_in
from ._checks import check_betas, check_eps
from .base import Optimizer, Schedule

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), with optional AMSGrad (Reddi et al., 2018), as PyTorch defines it.

    .. math::

        m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \ \text{(amsgrad)}, \quad \hat v_t = v_t \text{ otherwise} \\
        p_t &= p_{t-1} - \frac{\eta}{1 - \beta_1^t}\,
               \frac{m_t}{\sqrt{\hat v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    Parameters
    ----------
    lr : ``>= 0`` or schedule (default 1e-3). betas : ``(beta1, beta2)``, each in ``[0, 1)``
    (default ``(0.9, 0.999)``). eps : ``> 0`` (default 1e-8). weight_decay : L2 penalty added
    to the gradient (use :class:`AdamW` for decoupled decay). amsgrad : keep the running maximum
    of ``v``. maximize : ascend instead.
    nonfinite : ``"raise"`` (default), ``"skip"`` or ``"propagate"`` a NaN/inf gradient.
    fused : ``None`` (default: numba kernel when available), ``True`` or ``False`` (NumPy).

    Warning
    -------
    eps is added *after* bias correction, outside the root (PyTorch, optax). The paper's
    "efficient" form and TensorFlow/Keras add :math:`\hat\epsilon` to the uncorrected
    :math:`\sqrt{v_t}` (Keras default eps=1e-7), which acts like a larger eps early on.
    PyTorch's AMSGrad takes the maximum of the *uncorrected* :math:`v_t` (as here); some
    implementations take it after bias correction.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> p = np.array([1.0, -1.0]); opt = ds.Adam(lr=0.1); s = opt.init(p)
    >>> opt.step(p, np.array([100.0, -0.001]), s)   # first step moves each coordinate ~lr
    >>> np.round(p, 4)
    array([ 0.9, -0.9])
    """

    name = "adam"
    fit_lr = 3e-3
    race_lr = 5e-2
    color = "#ff7f0e"
    marker = "P"
    elementwise = True
    _default_weight_decay = 0.0

    def __init__(
        self,
        lr: float | Schedule = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        *,
        weight_decay: float | None = None,
        amsgrad: bool = False,
        maximize: bool = False,
        nonfinite: str = "raise",
        fused: bool | None = None,
    ):
        if weight_decay is None:
            weight_decay = self._default_weight_decay
        super().__init__(lr, weight_decay=weight_decay, maximize=maximize, nonfinite=nonfinite, fused=fused)
        self.betas = check_betas(self._owner, betas)
        self.eps = check_eps(self._owner, eps)
        self.amsgrad = check_bool(self._owner, "amsgrad", amsgrad)

    def _buffer_names(self) -> tuple[str, ...]:
        return ("m", "v", "v_max") if self.amsgrad else ("m", "v")

    def _coefficients(self, t: int, lr: float, scalars: dict[str, float]) -> dict[str, Any]:
        beta1, beta2 = self.betas
        return {
            "step_size": lr / bias_correction(beta1, t),
            "bc2_sqrt": math.sqrt(bias_correction(beta2, t)),
        }

    def _update(self, p: np.ndarray, g: np.ndarray, b: dict[str, np.ndarray], c: dict[str, Any]) -> None:
        beta1, beta2 = self.betas
        m, v = b["m"], b["v"]
        ema_(m, g, 1.0 - beta1)
        ema_sq_(v, g, beta2)
        if self.amsgrad:
            np.maximum(b["v_max"], v, out=b["v_max"])
            v = b["v_max"]
        denom = np.sqrt(v)
        denom /= c["bc2_sqrt"]
        denom += self.eps
        p -= c["step_size"] * (m / denom)

    def _kernel_args(self, c: dict[str, Any]) -> tuple[tuple[float, ...], tuple[bool, ...]]:
        beta1, beta2 = self.betas
        w = 1.0 - beta1
        return (w, w - 1.0, beta2, 1.0 - beta2, c["step_size"], c["bc2_sqrt"], self.eps), (self.amsgrad,)

    @staticmethod
    def _kernel(amsgrad):
        """The fused update of one leaf, for one setting of ``amsgrad`` (compiled in)."""

        def kernel(p, g, m, v, v_max, c):
            sign, l2, decay, w, w_minus_1, beta2, one_minus_beta2, step_size, bc2_sqrt, eps = c
            for i in range(p.size):
                pi, gi = grad_in(p[i], g[i], sign, l2, decay)
                mi = ema(m[i], gi, w, w_minus_1)
                vi = ema_sq(v[i], gi, beta2, one_minus_beta2)
                m[i] = mi
                v[i] = vi
                if amsgrad:
                    if v_max[i] > vi:
                        vi = v_max[i]
                    v_max[i] = vi
                p[i] = pi - step_size * (mi / (np.sqrt(vi) / bc2_sqrt + eps))

        return kernel

    _kernel_buffers = ("m", "v", "v_max")


class AdamW(Adam):
    r"""AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay.

    .. math::

        p \leftarrow p\,(1 - \eta\lambda) \quad\text{then the Adam step on } p \text{ with } g_t

    with :math:`\lambda` = ``weight_decay`` (default 1e-2, as PyTorch). The decay is not fed
    through the moment estimates, so it is not rescaled by :math:`1/\sqrt{v}`.

    Warning
    -------
    PyTorch and optax multiply the decay by the learning rate (:math:`\eta\lambda`); the paper
    and Keras' ``AdamW`` schedule it separately. With a schedule, descend uses :math:`\eta_t`.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> p = np.array([1.0]); opt = ds.AdamW(lr=0.1, weight_decay=0.5); s = opt.init(p)
    >>> opt.step(p, np.array([0.0]), s)      # zero gradient: only the decay acts
    >>> p
    array([0.95])
    """

    name = "adamw"
    fit_lr = 3e-3
    race_lr = 5e-2
    color = "#e377c2"
    marker = "<"
    decoupled_weight_decay = True
    _default_weight_decay = 1e-2
