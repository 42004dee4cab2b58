"""Prodigy: Adam whose step size d is estimated from the run itself (one number for all leaves)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._tree import flatten
from .._validation import check_bool, check_real, invalid
from . import _backend
from ._checks import check_betas, check_eps
from .base import Optimizer, OptState, Schedule

__all__ = ["Prodigy"]


class Prodigy(Optimizer):
    r"""Prodigy (Mishchenko & Defazio, 2024), as the authors' ``prodigyopt`` 1.1.2 defines it.

    Adam whose learning rate is :math:`d\,\eta`: ``lr`` (:math:`\eta`, default 1) only scales or
    schedules it, and :math:`d`, an estimate of the distance from the initial point ``p0`` to a
    solution, grows from ``d0`` as the run goes. Step :math:`k` (from 0), with
    :math:`\hat\eta = d\,\eta\,\rho_k` and :math:`\rho_k = \sqrt{1 - \beta_2^{k+1}} / (1 -
    \beta_1^{k+1})` under ``use_bias_correction`` (else 1), sums over every element of every leaf:

    .. math::

        r &\leftarrow \beta_3\, r + \tfrac{d}{d_0}\, \hat\eta\, \langle g,\ p_0 - p \rangle \\
        m &\leftarrow \beta_1 m + (1 - \beta_1)\, d\, g, \qquad
        v \leftarrow \beta_2 v + (1 - \beta_2)\, d^2 g^2 \\
        s &\leftarrow \beta_3\, s + \tfrac{d}{d_0}\, \hat\eta\, g
            \quad (\texttt{safeguard\_warmup}:\ \tfrac{d}{d_0}\, d\, g) \\
        \hat d &= d_{\mathrm{coef}}\, r / \|s\|_1, \qquad
        d_{\max} \leftarrow \max(d_{\max}, \hat d), \qquad
        d \leftarrow \min(d_{\max},\ \gamma\, d)
            \quad (\text{first } d \leftarrow \max(d, \hat d) \text{ while } d = d_0) \\
        p &\leftarrow p - \hat\eta\, \frac{m}{\sqrt{v} + d\,\epsilon}
            \quad (\beta_1 = 0:\ p - \hat\eta\, d\, \frac{g}{\sqrt{v} + d\,\epsilon})

    with :math:`\gamma` = ``growth_rate`` and :math:`\beta_3` = ``beta3``; the last line uses the
    new :math:`d`, :math:`\hat\eta` the old one. ``r`` (``d_numerator``), ``d``, ``d_max`` and
    ``k`` are ``state.scalars`` (float64); ``p0`` (the params given to :meth:`init`), ``s``, ``m``
    and ``v`` are buffers. The step is not elementwise (``r`` and :math:`\|s\|_1` sum over all
    leaves), so it runs in two NumPy passes over the leaves; it has no fused kernel.

    Parameters
    ----------
    lr : ``>= 0`` or schedule (default 1.0): a multiplier of the estimated step, best left at 1
    or scheduled from 1 down to 0. betas : ``(beta1, beta2)``, each in ``[0, 1)`` (default
    ``(0.9, 0.999)``). beta3 : ``[0, 1]``, decay of ``r`` and ``s`` (default ``None``:
    :math:`\sqrt{\beta_2}`). eps : ``> 0`` (default 1e-8), scaled by ``d``.
    weight_decay : ``>= 0`` (default 0), decoupled unless ``decoupled_weight_decay=False``
    (then L2, added to the gradient). use_bias_correction : Adam's bias correction in
    :math:`\hat\eta` (default False). safeguard_warmup : leave :math:`\eta` out of ``s``, for
    warm-up schedules (default False). d0 : ``> 0``, the first estimate (default 1e-6).
    d_coef : ``> 0``, multiplies every estimate (default 1; 0.5 or 2 to tune).
    growth_rate : ``>= 1`` or ``inf`` (default): the most ``d`` may grow in one step.
    maximize : ascend instead. nonfinite : ``"raise"`` (default), ``"skip"`` or ``"propagate"``
    a NaN/inf gradient. fused : accepted for uniformity; there is no fused kernel.

    Warning
    -------
    The decoupled weight decay is scaled by the *estimated* step: :math:`p \leftarrow p -
    \lambda\hat\eta\, p` (prodigyopt), not by ``lr`` alone as AdamW's; prodigyopt calls the flag
    ``decouple``. A step whose ``s`` is all zero (every gradient so far zero) or whose lr is 0
    leaves params, ``d`` and ``k`` as they are, as prodigyopt does (the step counter ``t``
    still counts it). prodigyopt has no ``maximize`` (here it is minimizing ``-f``), sums in
    the leaves' dtype (as here) and supports ``slice_p`` and FSDP, which descend does not.
    optax's ``contrib.prodigy`` always bias-corrects, has no ``growth_rate`` and no first jump
    of ``d``, and calls ``d0``/``d_coef`` ``estim_lr0``/``estim_lr_coef``: its steps differ.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> p = np.array([3.0, -1.0]); opt = ds.Prodigy(); s = opt.init(p)
    >>> for _ in range(300):
    ...     opt.step(p, p - [1.0, 2.0], s)   # minimum at (1, 2): no lr to tune
    >>> np.round(p, 2), s.scalars["d"] > 1.0
    (array([1., 2.]), True)

    References
    ----------
    K. Mishchenko, A. Defazio, "Prodigy: An Expeditiously Adaptive Parameter-Free Learner",
    ICML 2024, arXiv:2306.06101. Code: https://github.com/konstmish/prodigy
    """

    name = "prodigy"
    fit_lr = 1.0
    race_lr = 1.0
    color = "#c5b0d5"
    marker = "x"
    elementwise = False

    def __init__(
        self,
        lr: float | Schedule = 1.0,
        betas: tuple[float, float] = (0.9, 0.999),
        beta3: float | None = None,
        eps: float = 1e-8,
        *,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = True,
        use_bias_correction: bool = False,
        safeguard_warmup: bool = False,
        d0: float = 1e-6,
        d_coef: float = 1.0,
        growth_rate: float = math.inf,
        maximize: bool = False,
        nonfinite: str = "raise",
        fused: bool | None = None,
    ):
        super().__init__(lr, weight_decay=weight_decay, maximize=maximize, nonfinite=nonfinite, fused=fused)
        owner = self._owner
        self.betas = check_betas(owner, betas)
        if beta3 is None:
            beta3 = math.sqrt(self.betas[1])
        self.beta3 = check_real(owner, "beta3", beta3, low=0.0, high=1.0)
        self.eps = check_eps(owner, eps)
        self.decoupled_weight_decay = check_bool(owner, "decoupled_weight_decay", decoupled_weight_decay)
        self.use_bias_correction = check_bool(owner, "use_bias_correction", use_bias_correction)
        self.safeguard_warmup = check_bool(owner, "safeguard_warmup", safeguard_warmup)
        self.d0 = check_real(owner, "d0", d0, low=0.0, low_open=True)
        self.d_coef = check_real(owner, "d_coef", d_coef, low=0.0, low_open=True)
        self.growth_rate = _check_growth_rate(owner, growth_rate)

    def hyperparameters(self) -> dict[str, Any]:
        out = super().hyperparameters()
        if math.isinf(self.growth_rate):
            out["growth_rate"] = "inf"  # JSON has no infinity, and run configs are JSON
        return out

    def _buffer_names(self) -> tuple[str, ...]:
        return ("p0", "s", "m", "v") if self.betas[0] > 0 else ("p0", "s", "v")

    def _initial_scalars(self) -> dict[str, float]:
        return {"d": self.d0, "d_max": self.d0, "d_numerator": 0.0, "k": 0.0}

    def init(self, params: Any) -> OptState:
        """Fresh state for ``params``; ``p0``, the point ``d`` measures distances from, is a
        copy of ``params``."""
        state = super().init(params)
        for p0, leaf in zip(state.buffers["p0"], flatten(params)[0], strict=True):
            np.copyto(p0, leaf)
        return state

    def _apply(
        self,
        p_leaves: list[np.ndarray],
        g_leaves: list[np.ndarray],
        state: OptState,
        *,
        check_finite: bool = True,
    ) -> None:
        # the base class's order: the schedule, the gradient in the params' dtype, the
        # non-finite check before anything changes, then the update and the step counter
        lr = self.lr_at(int(state.t))
        g_leaves = [
            g if type(g) is np.ndarray and g.dtype == p.dtype else np.asarray(g, dtype=p.dtype)
            for p, g in zip(p_leaves, g_leaves, strict=True)
        ]
        if check_finite and self.nonfinite != "propagate":
            bad = _backend.first_nonfinite(g_leaves)
            if bad >= 0:
                return self._nonfinite(bad, g_leaves, state)
        self._step(p_leaves, g_leaves, state.buffers, state.scalars, lr)
        state.t = np.int64(int(state.t) + 1)
        return None

    def _step(
        self,
        p_leaves: list[np.ndarray],
        g_leaves: list[np.ndarray],
        buffers: dict[str, list[np.ndarray]],
        scalars: dict[str, float],
        lr: float,
    ) -> None:
        """One Prodigy step: the sums over all leaves, the new ``d``, then the update."""
        if lr == 0.0:
            return  # prodigyopt skips a group whose lr is 0, so nothing is summed nor moved
        beta1, beta2 = self.betas
        beta3, d0, wd = self.beta3, self.d0, self.weight_decay
        d, d_max, k = scalars["d"], scalars["d_max"], int(scalars["k"])
        bias_correction = (
            ((1.0 - beta2 ** (k + 1)) ** 0.5) / (1.0 - beta1 ** (k + 1)) if self.use_bias_correction else 1.0
        )
        dlr = d * lr * bias_correction
        d_numerator = scalars["d_numerator"] * beta3
        s_weight = (d / d0) * d if self.safeguard_warmup else (d / d0) * dlr

        # pass 1: the moments, and the sums r and |s|_1 over every leaf
        delta_numerator, d_denom = 0.0, 0.0
        grads = []
        for i, (p, g) in enumerate(zip(p_leaves, g_leaves, strict=True)):
            if self.maximize:
                g = np.negative(g)
            if wd != 0.0 and not self.decoupled_weight_decay:
                g = g + wd * p
            grads.append(g)
            s, v = buffers["s"][i], buffers["v"][i]
            delta_numerator += (d / d0) * dlr * float(np.dot(g.ravel(), (buffers["p0"][i] - p).ravel()))
            if beta1 > 0.0:
                m = buffers["m"][i]
                m *= beta1
                m += (d * (1.0 - beta1)) * g
            v *= beta2
            v += (d * d * (1.0 - beta2)) * g * g
            s *= beta3
            s += s_weight * g
            d_denom += float(np.sum(np.abs(s)))
        if d_denom == 0.0:
            return  # no gradient yet: prodigyopt returns here, d and k unchanged

        d_numerator += delta_numerator
        d_hat = self.d_coef * d_numerator / d_denom
        if d == d0:
            d = max(d, d_hat)
        d_max = max(d_max, d_hat)
        d = min(d_max, d * self.growth_rate)
        scalars.update(d=d, d_max=d_max, d_numerator=d_numerator, k=float(k + 1))

        # pass 2: the Adam step with the new d in the denominator and the old one in dlr
        for i, p in enumerate(p_leaves):
            denom = np.sqrt(buffers["v"][i])
            denom += d * self.eps
            if wd != 0.0 and self.decoupled_weight_decay:
                p += (-wd * dlr) * p
            if beta1 > 0.0:
                p += (-dlr * buffers["m"][i]) / denom
            else:
                p += (-dlr * d * grads[i]) / denom


def _check_growth_rate(owner: str, value: Any) -> float:
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        if float(value) == math.inf:
            return math.inf
        if math.isfinite(value) and value >= 1.0:
            return float(value)
        raise invalid(owner, "growth_rate", value, "satisfy growth_rate >= 1 (or be inf: unlimited)")
    return check_real(owner, "growth_rate", value)  # raises the type error
