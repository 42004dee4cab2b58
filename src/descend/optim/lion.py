"""Lion: the sign of an interpolated momentum, with decoupled weight decay."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._blocks import ema, ema_, grad_in
from ._checks import check_betas
from .base import Optimizer, Schedule

__all__ = ["Lion"]


class Lion(Optimizer):
    r"""Lion (Chen et al., 2023), as the authors' ``lion-pytorch`` package defines it.

    .. math::

        p &\leftarrow p\,(1 - \eta\lambda) \\
        c_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t \\
        p_t &= p - \eta\, \operatorname{sign}(c_t) \\
        m_t &= \beta_2 m_{t-1} + (1 - \beta_2)\, g_t

    with :math:`\lambda` = ``weight_decay`` (decoupled, as AdamW's) and
    :math:`\operatorname{sign}(0) = 0` (``torch.sign``'s convention): a coordinate whose
    interpolation is exactly zero (a zero gradient on a zero momentum) does not move. Every
    other coordinate moves by exactly :math:`\eta` per step, whatever its gradient's size; the
    only state is the momentum ``m`` (half of Adam's memory).

    Parameters
    ----------
    lr : ``>= 0`` or schedule (default 1e-4). betas : ``(beta1, beta2)``, each in ``[0, 1)``
    (default ``(0.9, 0.99)``): ``beta1`` interpolates the step's direction, ``beta2`` is the
    momentum's decay. weight_decay : ``>= 0``, decoupled (default 0).
    maximize : ascend instead (lion-pytorch has no such option: it is minimizing ``-f``).
    nonfinite : ``"raise"`` (default), ``"skip"`` or ``"propagate"`` a NaN/inf gradient.
    fused : ``None`` (default: numba kernel when available), ``True`` or ``False`` (NumPy).

    Warning
    -------
    Lion's steps are larger than Adam's (each coordinate moves by the whole :math:`\eta`), so
    the paper advises an lr 3-10x *smaller* than AdamW's and a weight decay 3-10x *larger*, to
    keep the decay's strength :math:`\eta\lambda`. Defaults differ between libraries:
    lion-pytorch (as here) has lr 1e-4 and weight decay 0; optax's ``lion`` has no default lr
    and weight decay 1e-3, added as :math:`\eta\lambda p` to the step (the same update);
    Keras' ``Lion`` has lr 1e-3. lion-pytorch's ``decoupled_weight_decay=True`` divides the
    weight decay by the *initial* lr (a decay independent of the lr's scale); here pass
    ``weight_decay=wd / lr0`` for it, which gives the same steps, with a schedule too.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> p = np.array([1.0, 1.0, 1.0]); opt = ds.Lion(lr=0.1); s = opt.init(p)
    >>> opt.step(p, np.array([1e3, -1e-3, 0.0]), s)   # each coordinate moves by lr, or not at all
    >>> p
    array([0.9, 1.1, 1. ])

    References
    ----------
    X. Chen, C. Liang, D. Huang, E. Real, K. Wang, Y. Liu, H. Pham, X. Dong, T. Luong,
    C.-J. Hsieh, Y. Lu, Q. V. Le, "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023,
    arXiv:2302.06675. Code: https://github.com/lucidrains/lion-pytorch
    """

    name = "lion"
    fit_lr = 3e-3
    race_lr = 3e-2
    color = "#ff9896"
    marker = "8"
    elementwise = True
    decoupled_weight_decay = True

    def __init__(
        self,
        lr: float | Schedule = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        *,
        weight_decay: float = 0.0,
        maximize: bool = False,
        nonfinite: str = "raise",
        fused: bool | None = None,
    ):
        super().__init__(lr, weight_decay=weight_decay, maximize=maximize, nonfinite=nonfinite, fused=fused)
        self.betas = check_betas(self._owner, betas)

    def _buffer_names(self) -> tuple[str, ...]:
        return ("m",)

    def _update(self, p: np.ndarray, g: np.ndarray, b: dict[str, np.ndarray], c: dict[str, Any]) -> None:
        beta1, beta2 = self.betas
        m = b["m"]
        interpolation = m.copy()
        ema_(interpolation, g, 1.0 - beta1)
        p -= c["lr"] * np.sign(interpolation)
        ema_(m, g, 1.0 - beta2)

    def _kernel_args(self, c: dict[str, Any]) -> tuple[tuple[float, ...], tuple[bool, ...]]:
        beta1, beta2 = self.betas
        w1, w2 = 1.0 - beta1, 1.0 - beta2
        return (c["lr"], w1, w1 - 1.0, w2, w2 - 1.0), ()

    @staticmethod
    def _kernel():
        """The fused update of one leaf."""

        def kernel(p, g, m, c):
            sign, l2, decay, lr, w1, w1_minus_1, w2, w2_minus_1 = c
            for i in range(p.size):
                pi, gi = grad_in(p[i], g[i], sign, l2, decay)
                mi = m[i]
                p[i] = pi - lr * np.sign(ema(mi, gi, w1, w1_minus_1))
                m[i] = ema(mi, gi, w2, w2_minus_1)

        return kernel

    _kernel_buffers = ("m",)
