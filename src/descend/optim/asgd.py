"""ASGD: gradient descent on a decaying step size, with a running average of its iterates."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_real
from ._blocks import grad_in
from .base import Optimizer, Schedule

__all__ = ["ASGD"]


class ASGD(Optimizer):
    r"""Averaged stochastic gradient descent (Polyak & Juditsky, 1992), as PyTorch defines it.

    .. math::

        p_t &= (1 - \lambda \eta_{t-1})\, p_{t-1} - \eta_{t-1}\, g_t \\
        \bar p_t &= \bar p_{t-1} + \mu_{t-1} (p_t - \bar p_{t-1})
            \quad (\mu_{t-1} \ne 1), \qquad \bar p_t = p_t \quad (\mu_{t-1} = 1) \\
        \eta_t &= \frac{\text{lr}}{(1 + \lambda\, \text{lr}\, t)^{\alpha}}, \qquad
        \mu_t = \frac{1}{\max(1,\ t - t_0)}, \qquad \eta_0 = \text{lr},\ \mu_0 = 1

    with :math:`\lambda` = ``lambd``, :math:`\alpha` = ``alpha``, :math:`t_0` = ``t0``. The
    parameters follow plain SGD on a slowly decaying step size; the averaged iterate
    :math:`\bar p` (``ax``) is a copy of them up to step :math:`t_0 + 2` and from then on the
    mean of :math:`p_{t_0+2}, \dots, p_t` (for a whole :math:`t_0`). It is the estimate the
    theory is about:
    read it from the state, ``state["ax"]``, in the parameters' structure (a view: copy it to
    keep it). The step-wide :math:`\eta` and :math:`\mu` are floats in ``state.scalars`` (float64,
    the values the next step uses).

    Parameters
    ----------
    lr : ``>= 0`` or schedule (default 1e-2). lambd : ``>= 0`` (default 1e-4), the decay of the
    step size and of the parameters (:math:`1 - \lambda\eta` each step). alpha : ``>= 0``
    (default 0.75), the power of the step-size decay. t0 : ``>= 0`` (default 1e6), the step
    after which averaging starts. weight_decay : ``>= 0`` (default 0), L2 added to the
    gradient. maximize : ascend instead.
    nonfinite : ``"raise"`` (default), ``"skip"`` or ``"propagate"`` a NaN/inf gradient.
    fused : ``None`` (default: numba kernel when available), ``True`` or ``False`` (NumPy).

    Warning
    -------
    PyTorch's schedule (followed here) is that of Bottou's sgd-2.0 code (through Lua Torch's
    ``optim.asgd``), not the paper's: each step uses the :math:`\eta` and :math:`\mu` computed
    at the step before; the average starts only after ``t0`` steps, so with the default
    ``t0=1e6`` there is no averaging in most runs (``state["ax"]`` equals the parameters); and
    :math:`\lambda` also shrinks the parameters. Polyak & Juditsky average every iterate from
    the start, with a step size decaying more slowly than :math:`1/t` (such as
    :math:`t^{-\alpha}`, :math:`1/2 < \alpha < 1`). A schedule's value at step 0 is the first
    :math:`\eta`, as PyTorch reads lr when it creates the state; later values enter
    :math:`\eta_t` above.

    Examples
    --------
    With ``t0=0`` the average runs over the iterates from step 2 on, and is read in the
    structure of the parameters:

    >>> import numpy as np, descend as ds
    >>> params = {"w": np.array([4.0])}
    >>> opt = ds.ASGD(lr=0.5, lambd=0.0, t0=0); s = opt.init(params)
    >>> for _ in range(4):
    ...     opt.step(params, {"w": params["w"]}, s)   # gradient of w^2 / 2
    >>> params["w"], s["ax"]["w"]                     # iterates 2, 1, 0.5, 0.25; mean of the last 3
    (array([0.25]), array([0.58333333]))
    >>> s.scalars["eta"], s.scalars["mu"]             # what step 5 uses
    (0.5, 0.25)

    References: Polyak & Juditsky (1992), "Acceleration of stochastic approximation by
    averaging", SIAM Journal on Control and Optimization 30(4), 838-855; the schedule: Bottou,
    sgd-2.0 (ASGD for linear models, https://leon.bottou.org/projects/sgd).
    """

    name = "asgd"
    # its parameters follow SGD with eta ~ lr over a short run (default t0 = 1e6): SGD's numbers,
    # measured the same (logistic regression on standardized data; the built-in surfaces)
    fit_lr = 0.1
    race_lr = 1e-3
    color = "#98df8a"
    marker = "H"
    elementwise = True

    def __init__(
        self,
        lr: float | Schedule = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        *,
        weight_decay: float = 0.0,
        maximize: bool = False,
        nonfinite: str = "raise",
        fused: bool | None = None,
    ):
        super().__init__(lr, weight_decay=weight_decay, maximize=maximize, nonfinite=nonfinite, fused=fused)
        self.lambd = check_real(self._owner, "lambd", lambd, low=0.0)
        self.alpha = check_real(self._owner, "alpha", alpha, low=0.0)
        self.t0 = check_real(self._owner, "t0", t0, low=0.0)

    def _buffer_names(self) -> tuple[str, ...]:
        return ("ax",)

    def _initial_scalars(self) -> dict[str, float]:
        # PyTorch creates eta from the lr of the first step
        return {"eta": self.lr_at(0), "mu": 1.0}

    def _coefficients(self, t: int, lr: float, scalars: dict[str, float]) -> dict[str, Any]:
        eta, mu = scalars["eta"], scalars["mu"]
        lambd = self.lambd
        scalars["eta"] = lr / ((1 + lambd * lr * t) ** self.alpha)
        scalars["mu"] = 1 / max(1, t - self.t0)
        return {"shrink": 1 - lambd * eta, "eta": eta, "mu": mu, "average": mu != 1}

    def _update(self, p: np.ndarray, g: np.ndarray, b: dict[str, np.ndarray], c: dict[str, Any]) -> None:
        p *= c["shrink"]
        p -= c["eta"] * g
        ax = b["ax"]
        if c["average"]:
            ax += (p - ax) * c["mu"]
        else:
            np.copyto(ax, p)

    def _kernel_args(self, c: dict[str, Any]) -> tuple[tuple[float, ...], tuple[bool, ...]]:
        return (c["shrink"], c["eta"], c["mu"]), (c["average"],)

    @staticmethod
    def _kernel(average):
        """The fused update of one leaf; ``average`` (mu != 1) is compiled in."""

        def kernel(p, g, ax, c):
            sign, l2, decay, shrink, eta, mu = c
            for i in range(p.size):
                pi, gi = grad_in(p[i], g[i], sign, l2, decay)
                pi = pi * shrink
                pi = pi - eta * gi
                p[i] = pi
                if average:
                    ax[i] = ax[i] + (pi - ax[i]) * mu
                else:
                    ax[i] = pi

        return kernel

    _kernel_buffers = ("ax",)
