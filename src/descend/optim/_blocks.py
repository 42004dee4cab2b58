"""Building blocks of the update rules: moment averages and bias correction, written once.

Two forms of each average, the only places these formulas appear:

* **array forms** (``ema_``, ``ema_sq_``), in place on NumPy arrays, used by every rule's
  readable reference update (``Optimizer._update``);
* **scalar forms** (``ema``, ``ema_sq``, ``grad_in``), on one element, used by every rule's
  fused kernel (``_kernel`` in each rule's module), which :mod:`descend.optim._backend`
  compiles with numba on the first fused step. Written as plain Python, they also run
  uncompiled, which is how a kernel can be stepped through in a debugger.

Both forms compute the same operations in the same order (no fused multiply-add), so the fused
path reproduces the reference to the last bit for float32 and float64 in practice; the tests
hold it to 1e-12 (float64) and 1e-6 (float32) relative.

Step-wide numbers (bias corrections, step sizes) are computed once per step in Python by each
rule's ``_coefficients`` and shared by both paths.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bias_correction", "ema", "ema_", "ema_sq", "ema_sq_", "grad_in"]


def bias_correction(beta: float, t: int) -> float:
    r""":math:`1 - \beta^t`, the factor that unbiases a zero-initialised moving average."""
    return 1.0 - beta**t


# -- array forms (reference path) ----------------------------------------------------------------
def ema_(buf: np.ndarray, x: np.ndarray, weight: float) -> None:
    r"""``buf`` :math:`\leftarrow (1 - w)\,` ``buf`` :math:`+\ w\, x` in place (``w = 1 - beta``).

    Computed in the two-sided form of ``torch.lerp`` (``buf + w (x - buf)`` for ``w < 0.5``,
    ``x + (w - 1)(x - buf)`` otherwise), which is exact at both ends.
    """
    diff = np.subtract(x, buf)
    if weight < 0.5:
        diff *= weight
        buf += diff
    else:
        diff *= weight - 1.0
        np.add(x, diff, out=buf)


def ema_sq_(buf: np.ndarray, x: np.ndarray, beta: float) -> None:
    r"""``buf`` :math:`\leftarrow \beta\,` ``buf`` :math:`+ (1 - \beta)\, x^2` in place."""
    buf *= beta
    buf += (1.0 - beta) * (x * x)


# -- scalar forms (fused kernels) ------------------------------------------------------------------
# Coefficients arrive already rounded to the array's dtype (as NumPy rounds a Python float
# applied to a float32 array), and each form does the array form's operations in its order.
def ema(m, x, w, w_minus_1):
    """One element of :func:`ema_`; ``w_minus_1`` is ``w - 1`` rounded once, as NumPy does."""
    if w < 0.5:
        return m + w * (x - m)
    return x + w_minus_1 * (x - m)


def ema_sq(v, x, beta, one_minus_beta):
    """One element of :func:`ema_sq_`."""
    return beta * v + one_minus_beta * (x * x)


def grad_in(p, g, sign, l2, decay):
    """The parameter and gradient a rule sees, ``(p, g)``: ``g`` negated when maximizing
    (``sign = -1``), plus the L2 term ``l2 * p``; ``p`` scaled by ``decay = 1 - lr * wd`` for
    decoupled weight decay (AdamW). A rule uses L2 or decoupled decay, never both."""
    g = sign * g
    if l2 != 0:
        g = g + l2 * p
    if decay != 1:
        p = p * decay
    return p, g


#: the scalar forms a kernel may call; the compiler replaces each with its numba build.
KERNEL_HELPERS = {"ema": ema, "ema_sq": ema_sq, "grad_in": grad_in}
