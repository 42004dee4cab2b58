"""RMSprop: step sizes from an exponential moving average of squared gradients."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_bool, check_real
from ._blocks import ema, ema_, ema_sq, ema_sq_, grad_in
from ._checks import check_eps
from .base import Optimizer, Schedule

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop (Hinton, Coursera lecture 6e, 2012), as PyTorch defines it.

    .. math::

        v_t &= \alpha\, v_{t-1} + (1 - \alpha)\, g_t^2 \\
        \bar g_t &= \alpha\, \bar g_{t-1} + (1 - \alpha)\, g_t
            \quad\text{and}\quad \tilde v_t = v_t - \bar g_t^2 \quad\text{(centered)},
            \qquad \tilde v_t = v_t \text{ otherwise} \\
        b_t &= \mu\, b_{t-1} + g_t / (\sqrt{\tilde v_t} + \epsilon), \qquad
        p_t = p_{t-1} - \eta\, b_t \quad (\mu > 0) \\
        p_t &= p_{t-1} - \eta\, g_t / (\sqrt{\tilde v_t} + \epsilon) \quad (\mu = 0)

    Unlike AdaGrad's sum, the moving average forgets old gradients, so the step does not
    decay to zero on long runs.

    Parameters
    ----------
    lr : ``>= 0`` or schedule (default 1e-2). alpha : ``0 <= alpha < 1`` (default 0.99).
    eps : ``> 0`` (default 1e-8). centered : normalise by the variance estimate.
    momentum : ``0 <= momentum <= 1`` (default 0). weight_decay, maximize : as everywhere.
    nonfinite : ``"raise"`` (default), ``"skip"`` or ``"propagate"`` a NaN/inf gradient.
    fused : ``None`` (default: numba kernel when available), ``True`` or ``False`` (NumPy).

    Warning
    -------
    PyTorch adds eps *outside* the root and starts ``v`` at 0; TensorFlow/Keras use
    ``rho=0.9``, eps=1e-7 outside the root; optax adds eps *inside* the root by default
    (``sqrt(v + eps)``). The first steps differ between them.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> p = np.array([1.0]); opt = ds.RMSprop(lr=0.01); s = opt.init(p)
    >>> opt.step(p, np.array([5.0]), s)   # first step: lr / sqrt(1 - alpha)
    >>> np.round(1.0 - p, 4)
    array([0.1])
    """

    name = "rmsprop"
    fit_lr = 3e-3
    race_lr = 1e-2
    color = "#9467bd"
    marker = "v"
    elementwise = True

    def __init__(
        self,
        lr: float | Schedule = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        centered: bool = False,
        momentum: float = 0.0,
        *,
        weight_decay: float = 0.0,
        maximize: bool = False,
        nonfinite: str = "raise",
        fused: bool | None = None,
    ):
        super().__init__(lr, weight_decay=weight_decay, maximize=maximize, nonfinite=nonfinite, fused=fused)
        self.alpha = check_real(self._owner, "alpha", alpha, low=0.0, high=1.0, high_open=True)
        self.eps = check_eps(self._owner, eps)
        self.centered = check_bool(self._owner, "centered", centered)
        self.momentum = check_real(self._owner, "momentum", momentum, low=0.0, high=1.0)

    def _buffer_names(self) -> tuple[str, ...]:
        names = ["v"]
        if self.centered:
            names.append("g_avg")
        if self.momentum > 0.0:
            names.append("b")
        return tuple(names)

    def _update(self, p: np.ndarray, g: np.ndarray, b: dict[str, np.ndarray], c: dict[str, Any]) -> None:
        alpha = self.alpha
        v = b["v"]
        ema_sq_(v, g, alpha)
        if self.centered:
            g_avg = b["g_avg"]
            ema_(g_avg, g, 1.0 - alpha)
            avg = np.sqrt(v - g_avg * g_avg)
        else:
            avg = np.sqrt(v)
        avg += self.eps
        if self.momentum > 0.0:
            buf = b["b"]
            buf *= self.momentum
            buf += g / avg
            p -= c["lr"] * buf
        else:
            p -= c["lr"] * (g / avg)

    def _kernel_args(self, c: dict[str, Any]) -> tuple[tuple[float, ...], tuple[bool, ...]]:
        alpha, w = self.alpha, 1.0 - self.alpha
        floats = (alpha, 1.0 - alpha, w, w - 1.0, self.eps, self.momentum, c["lr"])
        return floats, (self.centered, self.momentum > 0.0)

    @staticmethod
    def _kernel(centered, momentum):
        """The fused update of one leaf; ``centered`` and ``momentum`` (on or off) are compiled
        in, so each setting gets its own branch-free loop."""

        def kernel(p, g, v, g_avg, b, c):
            sign, l2, decay, alpha, one_minus_alpha, w, w_minus_1, eps, mu, lr = c
            for i in range(p.size):
                pi, gi = grad_in(p[i], g[i], sign, l2, decay)
                vi = ema_sq(v[i], gi, alpha, one_minus_alpha)
                v[i] = vi
                if centered:
                    ai = ema(g_avg[i], gi, w, w_minus_1)
                    g_avg[i] = ai
                    avg = np.sqrt(vi - ai * ai) + eps
                else:
                    avg = np.sqrt(vi) + eps
                if momentum:
                    bi = mu * b[i] + gi / avg
                    b[i] = bi
                    p[i] = pi - lr * bi
                else:
                    p[i] = pi - lr * (gi / avg)

        return kernel

    _kernel_buffers = ("v", "g_avg", "b")
