"""Stochastic gradient descent with optional (Nesterov) momentum: SGD, Momentum, Nesterov."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._validation import check_bool, check_real
from ._blocks import grad_in
from .base import Optimizer, Schedule

__all__ = ["SGD", "Momentum", "Nesterov"]


class SGD(Optimizer):
    r"""Gradient descent, with optional heavy-ball or Nesterov momentum, as PyTorch defines it.

    With :math:`g_t` the gradient (negated if ``maximize``, plus ``weight_decay * p`` if set):

    .. math::

        b_1 &= g_1, \qquad b_t = \mu\, b_{t-1} + (1 - \tau)\, g_t \quad (t > 1) \\
        d_t &= g_t + \mu\, b_t \ \text{(nesterov)} \quad\text{or}\quad d_t = b_t \\
        p_t &= p_{t-1} - \eta\, d_t

    where :math:`\mu` is ``momentum``, :math:`\tau` is ``dampening`` and :math:`\eta` is ``lr``.
    With ``momentum=0`` this is plain gradient descent :math:`p_t = p_{t-1} - \eta g_t`.

    Parameters
    ----------
    lr : float or schedule, ``lr >= 0`` (default 1e-3, as in PyTorch).
    momentum : ``0 <= momentum <= 1``. 1 is friction-free (it never settles); kept for teaching.
    dampening : ``0 <= dampening <= 1``; scales the new gradient into the velocity.
    nesterov : Nesterov's look-ahead form; needs ``momentum > 0`` and ``dampening == 0``.
    weight_decay : L2 penalty added to the gradient, ``>= 0``.
    maximize : ascend instead of descend.
    nonfinite : ``"raise"`` (default), ``"skip"`` or ``"propagate"`` a NaN/inf gradient.
    fused : ``None`` (default: numba kernel when available), ``True`` or ``False`` (NumPy).

    Warning
    -------
    The learning rate sits *outside* the velocity (PyTorch). Sutskever et al. (2013) and
    Keras/TensorFlow put it inside (:math:`v = \mu v - \eta g;\ p = p + v`): the two agree for a
    constant lr but differ when lr changes during training. The first velocity is the gradient
    itself, not :math:`(1-\tau) g`.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> p = np.array([1.0, -2.0])
    >>> opt = ds.SGD(lr=0.1, momentum=0.9)
    >>> state = opt.init(p)
    >>> opt.step(p, 2 * p, state)          # gradient of ||p||^2
    >>> p
    array([ 0.8, -1.6])

    References: Polyak (1964), Nesterov (1983), Sutskever et al. (2013) "On the importance of
    initialization and momentum in deep learning".
    """

    name = "sgd"
    fit_lr = 0.1
    race_lr = 1e-3
    color = "#d62728"
    marker = "o"
    elementwise = True

    def __init__(
        self,
        lr: float | Schedule = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        *,
        weight_decay: float = 0.0,
        maximize: bool = False,
        nonfinite: str = "raise",
        fused: bool | None = None,
    ):
        super().__init__(lr, weight_decay=weight_decay, maximize=maximize, nonfinite=nonfinite, fused=fused)
        self.momentum = check_real(self._owner, "momentum", momentum, low=0.0, high=1.0)
        self.dampening = check_real(self._owner, "dampening", dampening, low=0.0, high=1.0)
        self.nesterov = check_bool(self._owner, "nesterov", nesterov)
        if self.nesterov and (self.momentum == 0.0 or self.dampening != 0.0):
            raise ValueError(
                f"{self._owner}: nesterov=True requires momentum > 0 and dampening == 0, "
                f"got momentum={self.momentum!r}, dampening={self.dampening!r}"
            )

    def stability_constant(self) -> float:
        r"""From the 2x2 recurrence of one eigendirection of a quadratic (PyTorch's form,
        ``b = mu b + (1 - tau) g``, ``p -= lr b``): :math:`c = 2` for plain gradient descent,
        :math:`2 + 2\mu` with heavy-ball momentum :math:`\mu`, :math:`(2 + 2\mu) / (1 + 2\mu)`
        with Nesterov's; dampening :math:`\tau` scales the step by :math:`1 - \tau`, so c is
        divided by it.

        >>> SGD(lr=0.1).stability_constant(), SGD(lr=0.1, momentum=0.9).stability_constant()
        (2.0, 3.8)
        """
        mu = float(self.momentum)
        c = 2.0 + 2.0 * mu
        if self.nesterov:
            c /= 1.0 + 2.0 * mu
        damp = 1.0 - float(self.dampening) if mu else 1.0
        return c / damp if damp > 0 else math.inf

    def _buffer_names(self) -> tuple[str, ...]:
        return ("b",) if self.momentum != 0.0 else ()

    def _update(self, p: np.ndarray, g: np.ndarray, b: dict[str, np.ndarray], c: dict[str, Any]) -> None:
        mu = self.momentum
        if mu != 0.0:
            buf = b["b"]
            if c["t"] == 1:
                np.copyto(buf, g)
            else:
                buf *= mu
                buf += (1.0 - self.dampening) * g
            g = g + mu * buf if self.nesterov else buf
        p -= c["lr"] * g

    def _kernel_args(self, c: dict[str, Any]) -> tuple[tuple[float, ...], tuple[bool, ...]]:
        floats = (c["lr"], self.momentum, 1.0 - self.dampening)
        return floats, (self.momentum != 0.0, c["t"] == 1, self.nesterov)

    @staticmethod
    def _kernel(momentum, first, nesterov):
        """The fused update of one leaf; the flags (momentum on, first step, Nesterov) are
        compiled in, so each setting gets its own branch-free loop."""

        def kernel(p, g, b, c):
            sign, l2, decay, lr, mu, one_minus_dampening = c
            for i in range(p.size):
                pi, gi = grad_in(p[i], g[i], sign, l2, decay)
                if momentum:
                    bi = gi if first else mu * b[i] + one_minus_dampening * gi
                    b[i] = bi
                    gi = gi + mu * bi if nesterov else bi
                p[i] = pi - lr * gi

        return kernel

    _kernel_buffers = ("b",)


class Momentum(SGD):
    r"""Heavy-ball momentum: :class:`SGD` with ``momentum=0.9`` by default.

    .. math::

        b_t = \mu\, b_{t-1} + g_t, \qquad p_t = p_{t-1} - \eta\, b_t

    Examples
    --------
    >>> import descend as ds
    >>> ds.Momentum(lr=0.01).momentum
    0.9
    """

    def __init__(
        self,
        lr: float | Schedule = 1e-3,
        momentum: float = 0.9,
        dampening: float = 0.0,
        *,
        weight_decay: float = 0.0,
        maximize: bool = False,
        nonfinite: str = "raise",
        fused: bool | None = None,
    ):
        super().__init__(
            lr,
            momentum,
            dampening,
            nesterov=False,
            weight_decay=weight_decay,
            maximize=maximize,
            nonfinite=nonfinite,
            fused=fused,
        )

    name = "momentum"
    fit_lr = 1e-2
    race_lr = 1e-3
    color = "#1f77b4"
    marker = "s"


class Nesterov(SGD):
    r"""Nesterov momentum: :class:`SGD` with ``nesterov=True`` and ``momentum=0.9`` by default.

    .. math::

        b_t = \mu\, b_{t-1} + g_t, \qquad p_t = p_{t-1} - \eta\,(g_t + \mu\, b_t)

    This is PyTorch's reformulation (gradient at the current point, look-ahead folded into the
    step), equivalent to evaluating the gradient at :math:`p - \eta\mu b` for constant lr.

    Examples
    --------
    >>> import descend as ds
    >>> ds.Nesterov(lr=0.01).nesterov
    True
    """

    name = "nesterov"
    fit_lr = 1e-2
    race_lr = 1e-3
    color = "#17becf"
    marker = "D"

    def __init__(
        self,
        lr: float | Schedule = 1e-3,
        momentum: float = 0.9,
        *,
        weight_decay: float = 0.0,
        maximize: bool = False,
        nonfinite: str = "raise",
        fused: bool | None = None,
    ):
        super().__init__(
            lr,
            momentum,
            0.0,
            nesterov=True,
            weight_decay=weight_decay,
            maximize=maximize,
            nonfinite=nonfinite,
            fused=fused,
        )
