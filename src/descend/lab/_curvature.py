"""Curvature from Hessian-vector products alone: Lanczos, Hutchinson's trace, spectral density.

Every instrument takes ``hvp``, a function ``v -> H v`` on flat float64 vectors, so it serves a
test function's exact Hessian, a model's R-operator and a finite difference of gradients alike.
Randomness comes only from the ``np.random.Generator`` passed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

__all__ = [
    "BREAKDOWN_RTOL",
    "HVP",
    "LanczosResult",
    "SpectralDensity",
    "TraceEstimate",
    "central_difference_hvp",
    "dense_hessian",
    "hutchinson",
    "lanczos",
    "rademacher",
    "spectral_density",
]

HVP = Callable[[np.ndarray], np.ndarray]

#: Lanczos stops early when the next off-diagonal is below this times the largest entry of T
#: so far: the Krylov space is then invariant and its Ritz values are eigenvalues of H.
BREAKDOWN_RTOL = 1e-12

_CBRT_EPS = float(np.finfo(np.float64).eps) ** (1.0 / 3.0)


def central_difference_hvp(grad: Callable[[np.ndarray], np.ndarray], w: np.ndarray) -> HVP:
    r"""``v -> H v`` at ``w`` by a central difference of gradients, for objectives without an exact one.

    .. math::

        H v \approx \frac{\nabla f(w + \varepsilon v) - \nabla f(w - \varepsilon v)}{2 \varepsilon},
        \qquad
        \varepsilon = \frac{\sqrt[3]{\epsilon_{\text{mach}}}\, \max(1, \lVert w \rVert)}{\lVert v \rVert}

    in float64 (:math:`\sqrt[3]{\epsilon_{\text{mach}}} \approx 6 \cdot 10^{-6}`): the step that
    balances the truncation error, :math:`O(\varepsilon^2)`, against the rounding error of the
    gradients, :math:`O(\epsilon_{\text{mach}} / \varepsilon)`, for a step of relative size
    :math:`\varepsilon \lVert v \rVert / \max(1, \lVert w \rVert)`. Costs two gradients.

    >>> hvp = central_difference_hvp(lambda x: np.array([2 * x[0], -6 * x[1] ** 2]), np.array([1.0, 1.0]))
    >>> np.round(hvp(np.array([1.0, 1.0])), 6)
    array([  2., -12.])
    """
    w = np.asarray(w, dtype=np.float64)
    scale = _CBRT_EPS * max(1.0, float(np.linalg.norm(w)))

    def hvp(v: np.ndarray) -> np.ndarray:
        norm = float(np.linalg.norm(v))
        if norm == 0.0:
            return np.zeros_like(w)
        eps = scale / norm
        up = np.asarray(grad(w + eps * v), dtype=np.float64)
        down = np.asarray(grad(w - eps * v), dtype=np.float64)
        return (up - down) / (2.0 * eps)

    return hvp


def dense_hessian(hvp: HVP, n: int) -> np.ndarray:
    """The (n, n) Hessian from ``n`` products with the unit vectors, symmetrised as (H + H^T) / 2."""
    H = np.empty((n, n))
    e = np.zeros(n)
    for i in range(n):
        e[i] = 1.0
        H[:, i] = hvp(e)
        e[i] = 0.0
    return 0.5 * (H + H.T)


def rademacher(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` independent signs, +1 or -1 with probability 1/2 each, as float64."""
    return rng.integers(0, 2, size=n).astype(np.float64) * 2.0 - 1.0


class LanczosResult(NamedTuple):
    """Ritz values ``theta`` (ascending) of ``steps`` Lanczos steps, with for each the squared
    first component of its eigenvector of T (``weights``, summing to 1: the quadrature weights)
    and the residual bound ``residual`` = :math:`\\lVert H y - \\theta y \\rVert` of its Ritz
    vector y, which bounds the distance from ``theta`` to the nearest eigenvalue of H."""

    theta: np.ndarray
    weights: np.ndarray
    residual: np.ndarray
    steps: int


def lanczos(hvp: HVP, v0: np.ndarray, steps: int) -> LanczosResult:
    r"""``steps`` steps of the Lanczos iteration from ``v0``, with full reorthogonalization.

    Builds an orthonormal basis :math:`Q` of the Krylov space
    :math:`\{v_0, H v_0, \dots, H^{k-1} v_0\}` and the tridiagonal :math:`T = Q^\top H Q`;
    the eigenvalues of :math:`T` (Ritz values) approach the extreme eigenvalues of :math:`H`
    first, at both ends, from inside: :math:`\lambda_{\min} \le \theta_{\min}` and
    :math:`\theta_{\max} \le \lambda_{\max}`. Each new vector is orthogonalized against all the
    previous ones, twice (classical Gram-Schmidt twice is enough in floating point), which
    keeps spurious copies of converged eigenvalues out. Stops early when the space becomes
    invariant (off-diagonal below :data:`BREAKDOWN_RTOL` times the largest entry of T); then
    the Ritz values are eigenvalues of H. ``k`` products with H and :math:`O(k^2 n)` flops.

    >>> H = np.diag([1.0, 2.0, 5.0])
    >>> lanczos(lambda v: H @ v, np.ones(3), steps=3).theta.round(12)
    array([1., 2., 5.])
    """
    v0 = np.asarray(v0, dtype=np.float64)
    n = len(v0)
    m = min(int(steps), n)
    Q = np.zeros((m, n))
    Q[0] = v0 / np.linalg.norm(v0)
    alphas: list[float] = []
    betas: list[float] = []
    last_beta = 0.0
    scale = 0.0
    for j in range(m):
        w = np.asarray(hvp(Q[j]), dtype=np.float64).copy()
        alpha = float(Q[j] @ w)
        alphas.append(alpha)
        basis = Q[: j + 1]
        for _ in range(2):
            w -= basis.T @ (basis @ w)
        beta = float(np.linalg.norm(w))
        scale = max(scale, abs(alpha), beta)
        if beta <= BREAKDOWN_RTOL * scale:
            last_beta = 0.0
            break
        last_beta = beta
        if j + 1 < m:
            betas.append(beta)
            Q[j + 1] = w / beta
    k = len(alphas)
    T = np.diag(alphas) + np.diag(betas[: k - 1], 1) + np.diag(betas[: k - 1], -1)
    theta, S = np.linalg.eigh(T)
    return LanczosResult(theta, S[0] ** 2, last_beta * np.abs(S[-1]), k)


class TraceEstimate(NamedTuple):
    """Hutchinson's estimate of tr(H), its standard error and the per-probe samples."""

    value: float
    standard_error: float
    samples: np.ndarray


def hutchinson(hvp: HVP, n: int, probes: int, rng: np.random.Generator) -> TraceEstimate:
    r"""Hutchinson's unbiased trace estimate with Rademacher probes :math:`z`.

    .. math::

        \operatorname{tr} H \approx \frac1m \sum_{j=1}^m z_j^\top H z_j, \qquad
        \text{SE} = \frac{s}{\sqrt m}

    with :math:`s` the sample standard deviation of the :math:`m` terms (``ddof=1``). A
    Rademacher probe's variance is :math:`2 \sum_{i \ne j} H_{ij}^2`: exact for a diagonal H.
    Costs ``probes`` products with H.

    >>> H = np.array([[2.0, 1.0], [1.0, 3.0]])
    >>> est = hutchinson(lambda v: H @ v, 2, 400, np.random.default_rng(0))
    >>> abs(est.value - 5.0) < 3 * est.standard_error
    True
    """
    samples = np.empty(probes)
    for j in range(probes):
        z = rademacher(rng, n)
        samples[j] = float(z @ hvp(z))
    se = float(samples.std(ddof=1) / math.sqrt(probes)) if probes > 1 else math.inf
    return TraceEstimate(float(samples.mean()), se, samples)


class SpectralDensity(NamedTuple):
    """A spectral density as point masses: eigenvalue ``nodes`` and their ``weights`` (sum 1)."""

    nodes: np.ndarray
    weights: np.ndarray


def spectral_density(
    hvp: HVP,
    n: int,
    *,
    probes: int,
    steps: int,
    rng: np.random.Generator,
    first: LanczosResult | None = None,
) -> SpectralDensity:
    r"""The eigenvalue density of H by stochastic Lanczos quadrature (Ubaru, Chen & Saad, 2017).

    For each of ``probes`` normalised Rademacher vectors :math:`v`, ``steps`` Lanczos steps give
    Ritz values :math:`\theta_i` and weights :math:`\tau_i` (squared first components of T's
    eigenvectors), the Gauss quadrature of :math:`v^\top g(H) v` for any smooth :math:`g`; the
    average over probes estimates :math:`\frac1n \sum_j g(\lambda_j)`, so the point masses
    :math:`(\theta_i, \tau_i / \text{probes})` stand for the density (Ghorbani, Krishnan & Xiao,
    2019). ``first``, a Lanczos run already made from such a vector, counts as the first probe.
    Costs ``probes * steps`` products with H (fewer with ``first``).
    """
    runs = [first] if first is not None else []
    while len(runs) < probes:
        runs.append(lanczos(hvp, rademacher(rng, n), steps))
    nodes = np.concatenate([r.theta for r in runs])
    weights = np.concatenate([r.weights for r in runs]) / len(runs)
    order = np.argsort(nodes, kind="stable")
    return SpectralDensity(nodes[order], weights[order])
