"""Adafactor: a second moment factored into row and column averages, with relative steps."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_real, wrong_type
from ._blocks import ema_
from .base import Optimizer, Schedule

__all__ = ["Adafactor"]


class Adafactor(Optimizer):
    r"""Adafactor (Shazeer & Stern, 2018), as PyTorch's ``torch.optim.Adafactor`` defines it.

    .. math::

        w_t &= t^{\tau}, \quad \rho_t = \min(\eta, 1/\sqrt t), \quad
        \alpha_t = \max(\epsilon_2, \mathrm{RMS}(p_{t-1}))\, \rho_t \\
        R_t &= (1 - w_t) R_{t-1} + w_t\, \mathrm{mean}_{j}(g_t^2), \quad
        C_t = (1 - w_t) C_{t-1} + w_t\, \mathrm{mean}_{i}(g_t^2) \\
        \hat V_t &= R_t C_t^\top / \max(\mathrm{mean}_i(R_t), \epsilon_1) \quad
        \text{(a leaf of 2 or more dimensions; others: } \hat V_t = (1 - w_t)\hat V_{t-1} + w_t g_t^2) \\
        u_t &= g_t / \max(\sqrt{\hat V_t}, \epsilon_1), \quad
        p_t = p_{t-1} - \frac{\alpha_t}{\max(1, \mathrm{RMS}(u_t) / d)}\, u_t

    A leaf of two or more dimensions keeps only the row means :math:`R` (``row_var``, shape
    ``shape[:-1]``) and column means :math:`C` (``col_var``, shape ``shape[:-2] + shape[-1:]``)
    of its squared gradient over the last two dimensions, instead of a full second moment: the
    memory of a matrix's sides, not of the matrix. A vector or scalar keeps a full ``variance``.
    The step is relative: :math:`\alpha_t` scales with the parameter's own RMS, and the update
    is clipped to RMS at most ``d``.

    Parameters
    ----------
    lr : ``>= 0`` or schedule (default 1e-2): the largest relative step :math:`\rho_t`, and the
    factor of the weight decay. beta2_decay : ``<= 0`` (default -0.8), :math:`\tau`: the
    second moment averages with weight :math:`t^\tau`. eps : ``(eps1, eps2)`` (default
    ``(None, 1e-3)``): ``eps1 > 0`` floors :math:`\sqrt{\hat V}` (``None``: the machine epsilon of
    the leaf's dtype), ``eps2 >= 0`` floors the RMS of a parameter. d : ``>= 1`` (default 1.0),
    the clipping threshold. weight_decay : decoupled, :math:`p \leftarrow p (1 - \eta\lambda)`
    after :math:`\alpha_t` is measured (default 0.0). maximize : ascend instead.
    nonfinite : ``"raise"`` (default), ``"skip"`` or ``"propagate"`` a NaN/inf gradient.
    fused : accepted for a uniform interface; Adafactor mixes the elements of a leaf and always
    runs in NumPy.

    Warning
    -------
    PyTorch departs from the paper, and so does descend with it: the paper has no learning
    rate (its :math:`\rho_t` is capped at 0.01, the default lr here), adds :math:`\epsilon_1`
    (1e-30) to the squared gradient before averaging, and uses sums where PyTorch uses means;
    PyTorch floors :math:`\hat V` and the row mean instead. Hugging Face's ``Adafactor`` and
    optax's ``adafactor`` follow the paper's :math:`\epsilon_1`, factor only matrices above a
    size, and default to other decay rates. PyTorch lets ``eps1 = 0`` (which turns a zero
    gradient into NaN); descend asks for ``eps1 > 0``. PyTorch reads ``eps1 = None`` from the
    dtype of the first parameter for every leaf; descend from each leaf's own.

    Examples
    --------
    >>> import numpy as np, descend as ds
    >>> W = np.ones((2, 3)); opt = ds.Adafactor(); s = opt.init(W)
    >>> s.buffers["row_var"][0].shape, s.buffers["col_var"][0].shape
    ((2,), (3,))
    >>> opt.step(W, np.full((2, 3), 5.0), s)   # first step: RMS(W) * min(lr, 1) = 0.01
    >>> np.round(W, 4)
    array([[0.99, 0.99, 0.99],
           [0.99, 0.99, 0.99]])

    References
    ----------
    N. Shazeer and M. Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost",
    ICML 2018, https://arxiv.org/abs/1804.04235.
    """

    name = "adafactor"
    # the step is relative to RMS(p), which is 0 for zero-initialised weights: they move by
    # eps2 * rho_t until they grow, and an lr of 0.1 (rho_t = 1/sqrt(t) from step 100) lets them
    # grow in a few epochs where torch's 0.01 leaves a logistic regression 18% above its optimum
    fit_lr = 1e-1
    race_lr = 5e-2  # first steps as long as Adam's at its race lr, from the surfaces' starts
    color = "#c7c7c7"
    marker = "3"
    decoupled_weight_decay = True

    def __init__(
        self,
        lr: float | Schedule = 1e-2,
        beta2_decay: float = -0.8,
        eps: tuple[float | None, float] = (None, 1e-3),
        d: float = 1.0,
        *,
        weight_decay: float = 0.0,
        maximize: bool = False,
        nonfinite: str = "raise",
        fused: bool | None = None,
    ):
        super().__init__(lr, weight_decay=weight_decay, maximize=maximize, nonfinite=nonfinite, fused=fused)
        self.beta2_decay = check_real(self._owner, "beta2_decay", beta2_decay, high=0.0)
        if isinstance(eps, (str, bytes)) or not hasattr(eps, "__len__") or len(eps) != 2:
            raise wrong_type(self._owner, "eps", eps, "a pair (eps1, eps2)")
        eps1 = None if eps[0] is None else check_real(self._owner, "eps1", eps[0], low=0.0, low_open=True)
        self.eps = (eps1, check_real(self._owner, "eps2", eps[1], low=0.0))
        self.d = check_real(self._owner, "d", d, low=1.0)

    def _buffer_names(self) -> tuple[str, ...]:
        return ("row_var", "col_var", "variance")

    def _buffer_shapes(self, name: str, shapes: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
        # a leaf of two or more dimensions keeps the row and column means of g^2 over its last
        # two dimensions; a vector or scalar keeps the whole variance
        out = []
        for s in shapes:
            if len(s) < 2:
                out.append(s if name == "variance" else (0,))
            else:
                out.append({"row_var": s[:-1], "col_var": s[:-2] + s[-1:], "variance": (0,)}[name])
        return out

    def _coefficients(self, t: int, lr: float, scalars: dict[str, float]) -> dict[str, Any]:
        return {"w": t**self.beta2_decay, "rho": min(lr, 1 / (t**0.5))}

    def _reference_leaf(
        self, p: np.ndarray, g: np.ndarray, b: dict[str, np.ndarray], c: dict[str, Any]
    ) -> None:
        # as torch: alpha is measured on the parameter before the decay shrinks it, so the decay
        # is applied here rather than by the base class
        if p.size == 0:
            return
        if self.maximize:
            g = np.negative(g)
        c = {**c, "alpha": max(self.eps[1], float(np.linalg.norm(p.ravel())) / (p.size**0.5)) * c["rho"]}
        if self.weight_decay != 0.0:
            p *= 1.0 - c["lr"] * self.weight_decay
        self._update(p, g, b, c)

    def _update(self, p: np.ndarray, g: np.ndarray, b: dict[str, np.ndarray], c: dict[str, Any]) -> None:
        eps1 = float(np.finfo(p.dtype).eps) if self.eps[0] is None else self.eps[0]
        w = c["w"]
        if p.ndim >= 2:
            row, col = b["row_var"], b["col_var"]
            ema_(row, np.square(np.linalg.norm(g, axis=-1)) / g.shape[-1], w)
            ema_(col, np.square(np.linalg.norm(g, axis=-2)) / g.shape[-2], w)
            v = row[..., :, None] * col[..., None, :]
            v /= np.maximum(row.mean(axis=-1), eps1)[..., None, None]
        else:
            ema_(b["variance"], g * g, w)
            v = b["variance"].copy()
        u = np.maximum(v, eps1 * eps1, out=v)  # out=: a 0-d leaf stays an array
        np.sqrt(u, out=u)
        np.divide(1.0, u, out=u)
        u *= g
        denom = max(1.0, float(np.linalg.norm(u.ravel())) / ((u.size**0.5) * self.d))
        p -= (c["alpha"] / denom) * u
