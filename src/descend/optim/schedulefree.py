"""Schedule-Free SGD and AdamW: gradients at an interpolation y, the model is the average x."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_int, check_real, invalid
from ._blocks import bias_correction, ema, ema_, ema_sq, ema_sq_, grad_in
from ._checks import check_betas, check_eps
from .base import Optimizer, Schedule

__all__ = ["ScheduleFreeAdamW", "ScheduleFreeSGD"]


class _ScheduleFree:
    """What both Schedule-Free rules share (a mixin, put before :class:`Optimizer`): warm-up,
    the lr-weighted average and the evaluation point. ``params`` hold y; the buffer ``z``
    holds the base sequence; x is never stored."""

    separate_eval_point = True

    def _check_schedule_free(self, warmup_steps: Any, r: Any, weight_lr_power: Any) -> None:
        owner = self._owner
        self.warmup_steps = check_int(owner, "warmup_steps", warmup_steps, low=0)
        self.r = check_real(owner, "r", r, low=0.0)
        self.weight_lr_power = check_real(owner, "weight_lr_power", weight_lr_power, low=0.0)

    @property
    def _beta(self) -> float:
        """The interpolation constant of y between z and x (SGD's momentum, AdamW's beta1)."""
        raise NotImplementedError

    def lr_at(self, step: int) -> float:
        """The lr of the update that follows ``step`` steps: ``lr`` (or its schedule) times the
        linear warm-up ``(step + 1) / warmup_steps`` during the first ``warmup_steps`` steps."""
        lr = super().lr_at(step)
        if step < self.warmup_steps:
            lr = lr * ((step + 1) / self.warmup_steps)
        return lr

    def _initial_scalars(self) -> dict[str, float]:
        return {"lr_max": -1.0, "weight_sum": 0.0}

    def _coefficients(self, t: int, lr: float, scalars: dict[str, float]) -> dict[str, Any]:
        # the package's order of float operations, step k = t - 1 (lr already warmed up)
        lr_max = scalars["lr_max"] = max(lr, scalars["lr_max"])
        weight = (t**self.r) * (lr_max**self.weight_lr_power)
        weight_sum = scalars["weight_sum"] = scalars["weight_sum"] + weight
        ckp1 = weight / weight_sum if weight_sum != 0.0 else 0.0  # no weight yet: x stays
        return {"lr": lr, "ckp1": ckp1, "y_step": lr * (self._beta * (1 - ckp1) - 1)}

    def _buffer_names(self) -> tuple[str, ...]:
        return ("z",)

    def _eval_leaf(self, p: np.ndarray, b: dict[str, np.ndarray], t: int) -> np.ndarray:
        if t == 0:  # no step yet: z is not set, and x is y
            return p.copy()
        # x = lerp(y, z, 1 - 1/beta), in torch.lerp's two forms (the package's eval())
        w = 1 - 1 / self._beta
        z = b["z"]
        diff = np.subtract(z, p)
        if abs(w) < 0.5:
            diff *= w
            return np.add(p, diff)
        diff *= 1 - w
        return np.subtract(z, diff)


class ScheduleFreeSGD(_ScheduleFree, Optimizer):
    r"""Schedule-Free SGD (Defazio et al., 2024), as the authors' package ``schedulefree``
    (``SGDScheduleFree``, 1.4.1) computes it.

    .. math::

        y_k &= (1 - \beta)\, z_k + \beta\, x_k \quad\text{(params)} \\
        z_{k+1} &= z_k - \gamma_k\, g(y_k) \\
        x_{k+1} &= (1 - c_{k+1})\, x_k + c_{k+1}\, z_{k+1} \\
        \gamma_k &= \eta \min\!\left(1, \tfrac{k + 1}{\text{warmup}}\right), \quad
        w_{k+1} = (k + 1)^r \,(\max_{i \le k} \gamma_i)^{p}, \quad
        c_{k+1} = \frac{w_{k+1}}{\sum_{i \le k + 1} w_i}

    with :math:`\beta` = ``momentum``, :math:`p` = ``weight_lr_power``, :math:`z_0 = x_0 = y_0`
    (the parameters at the first step). Only y and z are kept, as in the package: one step is
    :math:`y \leftarrow \mathrm{lerp}(y, z, c_{k+1}) + \gamma_k(\beta(1 - c_{k+1}) - 1)\, g`,
    :math:`z \leftarrow z - \gamma_k g`, and :math:`x = \mathrm{lerp}(y, z, 1 - 1/\beta)`
    (:meth:`eval_params`). ``weight_decay`` is L2 at y, added to the gradient.

    Parameters
    ----------
    lr : ``>= 0`` or schedule (default 1.0, the package's; there is no decay to schedule).
    momentum : :math:`\beta`, in ``(0, 1)`` (default 0.9). weight_decay : L2 penalty added to
    the gradient at y. warmup_steps : linear warm-up of the lr over this many steps (default 0).
    r : ``>= 0``, polynomial weighting :math:`(k+1)^r` of the average (default 0).
    weight_lr_power : ``>= 0``, weight of each point by the largest lr so far to this power
    (default 2; 0: no lr weighting). maximize : ascend instead.
    nonfinite : ``"raise"`` (default), ``"skip"`` or ``"propagate"`` a NaN/inf gradient.
    fused : ``None`` (default: numba kernel when available), ``True`` or ``False`` (NumPy).

    Warning
    -------
    ``params`` hold **y**, the point where gradients are taken, not the model: call
    ``x = opt.eval_params(params, state)`` before evaluating, predicting or saving, and keep
    stepping ``params``. This is the package's ``optimizer.eval()`` / ``optimizer.train()``, and
    its users learned the hard way that a loss measured at y looks worse and that a model saved
    from y is not the one trained. :func:`descend.fit` and the scikit-learn estimators do it
    for you: ``run.params`` and predictions are x, while checkpoints keep y
    (``run.train_params``) and the state, from which training continues.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> p = np.array([1.0]); opt = ds.ScheduleFreeSGD(lr=0.1); s = opt.init(p)
    >>> for _ in range(3): opt.step(p, 2 * p, s)         # minimise p**2
    >>> x = opt.eval_params(p, s)                         # the average: what to evaluate
    >>> np.round(p, 4), np.round(x, 4)
    (array([0.631]), array([0.6459]))

    References
    ----------
    A. Defazio, X. Yang, H. Mehta, K. Mishchenko, A. Khaled, A. Cutkosky, "The Road Less
    Scheduled", NeurIPS 2024 (arXiv:2405.15682); github.com/facebookresearch/schedule_free.
    """

    name = "schedulefree_sgd"
    fit_lr = 0.1
    race_lr = 3e-3
    color = "#c49c94"
    marker = "1"
    elementwise = True

    def __init__(
        self,
        lr: float | Schedule = 1.0,
        momentum: float = 0.9,
        *,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        maximize: bool = False,
        nonfinite: str = "raise",
        fused: bool | None = None,
    ):
        super().__init__(lr, weight_decay=weight_decay, maximize=maximize, nonfinite=nonfinite, fused=fused)
        self.momentum = check_real(
            self._owner, "momentum", momentum, low=0.0, high=1.0, low_open=True, high_open=True
        )
        self._check_schedule_free(warmup_steps, r, weight_lr_power)

    @property
    def _beta(self) -> float:
        return self.momentum

    def _update(self, p: np.ndarray, g: np.ndarray, b: dict[str, np.ndarray], c: dict[str, Any]) -> None:
        z = b["z"]
        if c["t"] == 1:
            np.copyto(z, p)
        ema_(p, z, c["ckp1"])  # y <- lerp(y, z, ckp1)
        p += c["y_step"] * g
        z -= c["lr"] * g

    def _kernel_args(self, c: dict[str, Any]) -> tuple[tuple[float, ...], tuple[bool, ...]]:
        ckp1 = c["ckp1"]
        return (ckp1, ckp1 - 1.0, c["y_step"], c["lr"]), (c["t"] == 1,)

    @staticmethod
    def _kernel(first):
        """The fused update of one leaf; ``first`` (the first step: z starts at y) compiled in."""

        def kernel(p, g, z, c):
            sign, l2, decay, ckp1, ckp1_minus_1, y_step, lr = c
            for i in range(p.size):
                pi, gi = grad_in(p[i], g[i], sign, l2, decay)
                zi = pi if first else z[i]
                p[i] = ema(pi, zi, ckp1, ckp1_minus_1) + y_step * gi
                z[i] = zi - lr * gi

        return kernel

    _kernel_buffers = ("z",)


class ScheduleFreeAdamW(_ScheduleFree, Optimizer):
    r"""Schedule-Free AdamW (Defazio et al., 2024), as the authors' package ``schedulefree``
    (``AdamWScheduleFree``, 1.4.1) computes it.

    .. math::

        v_{k+1} &= \beta_2 v_k + (1 - \beta_2)\, g_k^2, \qquad
        \hat g_k = \frac{g_k}{\sqrt{v_{k+1} / (1 - \beta_2^{k+1})} + \epsilon} + \lambda\, y_k \\
        y_k &= (1 - \beta_1)\, z_k + \beta_1 x_k \quad\text{(params)}, \qquad
        z_{k+1} = z_k - \gamma_k\, \hat g_k \\
        x_{k+1} &= (1 - c_{k+1})\, x_k + c_{k+1}\, z_{k+1}

    with :math:`g_k = g(y_k)`, :math:`\lambda` = ``weight_decay`` and :math:`\gamma_k`,
    :math:`c_{k+1}` as in :class:`ScheduleFreeSGD` (warm-up, lr-weighted average). There is
    no first moment: :math:`\beta_1` is the interpolation between z and x. Only y, z and v are
    kept: :math:`y \leftarrow \mathrm{lerp}(y, z, c_{k+1}) + \gamma_k(\beta_1(1 - c_{k+1}) - 1)
    \hat g_k`, :math:`z \leftarrow z - \gamma_k \hat g_k`, and
    :math:`x = \mathrm{lerp}(y, z, 1 - 1/\beta_1)` (:meth:`eval_params`).

    Parameters
    ----------
    lr : ``>= 0`` or schedule (default 0.0025, the package's). betas : ``(beta1, beta2)``,
    beta1 in ``(0, 1)`` (at 0, y = z and x cannot be recovered), beta2 in ``[0, 1)`` (default
    (0.9, 0.999)). eps : ``> 0`` (default 1e-8). weight_decay : :math:`\lambda`, added at y
    to the normalized step (default 0). warmup_steps, r, weight_lr_power : as for
    :class:`ScheduleFreeSGD`. maximize : ascend instead.
    nonfinite : ``"raise"`` (default), ``"skip"`` or ``"propagate"`` a NaN/inf gradient.
    fused : ``None`` (default: numba kernel when available), ``True`` or ``False`` (NumPy).

    Warning
    -------
    ``params`` hold **y**, the point where gradients are taken, not the model: call
    ``x = opt.eval_params(params, state)`` before evaluating, predicting or saving, and keep
    stepping ``params``. This is the package's ``optimizer.eval()`` / ``optimizer.train()``, and
    its users learned the hard way that a loss measured at y looks worse and that a model saved
    from y is not the one trained. :func:`descend.fit` and the scikit-learn estimators do it
    for you: ``run.params`` and predictions are x, while checkpoints keep y
    (``run.train_params``) and the state, from which training continues.

    The weight decay is the package's: :math:`\lambda y` joins the step *after* the division by
    :math:`\sqrt{v}` (as in AdamW it is not rescaled by it), and moves z by
    :math:`\gamma\lambda y`, not the parameters by :math:`\eta\lambda p`; its ``decay_at_z``
    variant (reference implementation only) is not offered. eps is added after bias
    correction, outside the root, and v is divided by :math:`1 - \beta_2^{k+1}` before the
    root (PyTorch's Adam divides the root).

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> p = np.array([1.0]); opt = ds.ScheduleFreeAdamW(lr=0.1); s = opt.init(p)
    >>> for _ in range(3): opt.step(p, 2 * p, s)
    >>> np.round(p, 4), np.round(opt.eval_params(p, s), 4)
    (array([0.7968]), array([0.8061]))

    References
    ----------
    A. Defazio, X. Yang, H. Mehta, K. Mishchenko, A. Khaled, A. Cutkosky, "The Road Less
    Scheduled", NeurIPS 2024 (arXiv:2405.15682); github.com/facebookresearch/schedule_free.
    """

    name = "schedulefree_adamw"
    fit_lr = 1e-2
    race_lr = 5e-2
    color = "#f7b6d2"
    marker = "2"
    elementwise = True
    _weight_decay_in_update = True

    def __init__(
        self,
        lr: float | Schedule = 0.0025,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        *,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        maximize: bool = False,
        nonfinite: str = "raise",
        fused: bool | None = None,
    ):
        super().__init__(lr, weight_decay=weight_decay, maximize=maximize, nonfinite=nonfinite, fused=fused)
        self.betas = check_betas(self._owner, betas)
        if self.betas[0] == 0.0:  # y = z then, and x = lerp(y, z, 1 - 1/beta1) is lost
            raise invalid(
                self._owner, "beta1", 0.0, "satisfy 0 < beta1 < 1 (x is recovered from y and z through it)"
            )
        self.eps = check_eps(self._owner, eps)
        self._check_schedule_free(warmup_steps, r, weight_lr_power)

    @property
    def _beta(self) -> float:
        return self.betas[0]

    def _buffer_names(self) -> tuple[str, ...]:
        return ("z", "v")

    def _coefficients(self, t: int, lr: float, scalars: dict[str, float]) -> dict[str, Any]:
        c = super()._coefficients(t, lr, scalars)
        c["bc2"] = bias_correction(self.betas[1], t)
        return c

    def _update(self, p: np.ndarray, g: np.ndarray, b: dict[str, np.ndarray], c: dict[str, Any]) -> None:
        z, v = b["z"], b["v"]
        if c["t"] == 1:
            np.copyto(z, p)
        ema_sq_(v, g, self.betas[1])
        denom = np.sqrt(v / c["bc2"])
        denom += self.eps
        g = g / denom
        if self.weight_decay != 0.0:  # at y, after the normalization
            g += self.weight_decay * p
        ema_(p, z, c["ckp1"])  # y <- lerp(y, z, ckp1)
        p += c["y_step"] * g
        z -= c["lr"] * g

    def _kernel_args(self, c: dict[str, Any]) -> tuple[tuple[float, ...], tuple[bool, ...]]:
        beta2, ckp1 = self.betas[1], c["ckp1"]
        floats = (beta2, 1.0 - beta2, c["bc2"], self.eps, self.weight_decay, ckp1, ckp1 - 1.0)
        return (*floats, c["y_step"], c["lr"]), (c["t"] == 1,)

    @staticmethod
    def _kernel(first):
        """The fused update of one leaf; ``first`` (the first step: z starts at y) compiled in."""

        def kernel(p, g, z, v, c):
            sign, l2, decay, beta2, one_minus_beta2, bc2, eps, wd, ckp1, ckp1_minus_1, y_step, lr = c
            for i in range(p.size):
                pi, gi = grad_in(p[i], g[i], sign, l2, decay)
                zi = pi if first else z[i]
                vi = ema_sq(v[i], gi, beta2, one_minus_beta2)
                v[i] = vi
                gi = gi / (np.sqrt(vi / bc2) + eps)
                if wd != 0:
                    gi = gi + wd * pi
                p[i] = ema(pi, zi, ckp1, ckp1_minus_1) + y_step * gi
                z[i] = zi - lr * gi

        return kernel

    _kernel_buffers = ("z", "v")
