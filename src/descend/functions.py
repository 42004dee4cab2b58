"""Test objectives for optimizers: value, analytic gradient and Hessian, known minima, start, domain."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from ._registry import Registry, check_keywords
from ._validation import check_int, check_real, describe

__all__ = ["Objective", "get", "names"]

#: lattices of local minima (Rastrigin, Styblinski-Tang, Ackley) are listed in full up to this many
#: points; beyond it only the global minima and the minima one coordinate away from them are listed.
MAX_LISTED_MINIMA = 2048

_EPS = np.finfo(np.float64).eps

Point = np.ndarray
Domain = tuple[tuple[float, float], ...]


class Objective:
    r"""A test objective :math:`f: \mathbb{R}^n \to \mathbb{R}` with exact derivatives and known minima.

    Build one with :func:`get`. Every objective evaluates in float64 and takes any array-like of
    ``dim`` real numbers; a wrong length raises ``ValueError`` naming the function, ``dim`` and
    the shape given.

    Attributes
    ----------
    name : registry name (``get(name)`` builds it). dim : dimension of this instance.
    params : the parameters it was built with. description : one line.
    minima : known minima, global ones first, then local ones by increasing value; each a
        read-only 1-D float64 array. Minima forming a lattice (Rastrigin, Styblinski-Tang, Ackley)
        are listed in full while there are at most :data:`MAX_LISTED_MINIMA`; beyond that only the
        global minima and those differing from one in a single coordinate are listed.
    global_minima : the global ones. minimum_value : the global minimum value, ``None`` where
        ``f`` is unbounded below (the saddles). start : the customary or an instructive start
        (a fresh writable copy on each access, so in-place optimizers may use it directly).
    domain : ``(lo, hi)`` per axis, the box to plot (and to sample test points from).
    log_scale : whether contour colours read better on a log scale of ``f - minimum_value``.

    Examples
    --------
    >>> import descend as ds
    >>> f = ds.functions.get("rosenbrock")
    >>> f(f.start), f.grad([1.0, 1.0]), f.minima
    (24.2, array([0., 0.]), [array([1., 1.])])
    >>> f.hessian([1.0, 1.0])
    array([[ 802., -400.],
           [-400.,  200.]])
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    log_scale: ClassVar[bool] = False

    def __init__(
        self,
        dim: int,
        params: dict[str, Any],
        *,
        start: Sequence[float],
        domain: Sequence[tuple[float, float]],
        minimum_value: float | None = None,
    ) -> None:
        self.dim = dim
        self.params = dict(params)
        self._start = np.array(start, dtype=np.float64)
        self._start.setflags(write=False)
        self.domain: Domain = tuple((float(lo), float(hi)) for lo, hi in domain)
        self._minimum_value = minimum_value
        self._minima: tuple[list[Point], list[Point]] | None = None

    # ---- what each objective defines: batched value, gradient and Hessian at one point ----------

    def _value(self, x: np.ndarray) -> np.ndarray:
        """Value at ``x`` of shape ``(dim, *batch)``, reduced over axis 0."""
        raise NotImplementedError

    def _grad(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _hessian(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _value_and_grad(self, p: np.ndarray) -> tuple[float, np.ndarray]:
        """Value and gradient at one checked point: what every loop step asks for. An objective
        may give it in scalar arithmetic (a 2-D surface costs a few microseconds that way
        instead of a dozen NumPy calls on two numbers) with the same operations in the same
        order as ``_value`` and ``_grad``, so the same bits (tests/test_functions.py)."""
        return float(self._value(p)), np.asarray(self._grad(p), dtype=np.float64)

    def _find_minima(self) -> tuple[list[Point], list[Point]]:
        """(global minima, local minima), computed on first use."""
        raise NotImplementedError

    # ---- public interface -------------------------------------------------------------------------

    def __call__(self, x: Any) -> float:
        return float(self._value(self._point(x)))

    def grad(self, x: Any) -> np.ndarray:
        """Gradient at ``x``, shape ``(dim,)``."""
        return np.asarray(self._grad(self._point(x)), dtype=np.float64)

    def hessian(self, x: Any) -> np.ndarray:
        """Hessian at ``x``, shape ``(dim, dim)``, symmetric."""
        return np.asarray(self._hessian(self._point(x)), dtype=np.float64)

    def value_and_grad(self, x: Any) -> tuple[float, np.ndarray]:
        """``(f(x), grad f(x))``, the form ``minimize(..., grad=True)`` takes."""
        return self._value_and_grad(self._point(x))

    def grid(self, X: Any, Y: Any) -> np.ndarray:
        """Values on a meshgrid ``(X, Y)`` in one vectorised call (2-D objectives only)."""
        if self.dim != 2:
            raise ValueError(f"{self.name}: grid() needs a 2-D objective, this one has dim={self.dim}")
        X = np.asarray(X, dtype=np.float64)
        Y = np.asarray(Y, dtype=np.float64)
        try:
            X, Y = np.broadcast_arrays(X, Y)
        except ValueError:
            raise ValueError(
                f"{self.name}: grid() needs X and Y of the same shape, got {X.shape} and {Y.shape}"
            ) from None
        return self._value(np.stack([X, Y]))

    def nearest_minimum(self, x: Any) -> tuple[np.ndarray, float]:
        """The listed minimum closest to ``x`` (Euclidean) and its distance."""
        p = self._point(x)
        minima = self.minima
        if not minima:
            raise ValueError(f"{self.name}: has no minima (it is unbounded below)")
        dist = np.linalg.norm(np.stack(minima) - p, axis=1)
        i = int(np.argmin(dist))
        return minima[i].copy(), float(dist[i])

    @property
    def start(self) -> np.ndarray:
        return self._start.copy()

    @property
    def minima(self) -> list[np.ndarray]:
        glob, loc = self._minima_lists()
        return glob + loc

    @property
    def global_minima(self) -> list[np.ndarray]:
        return list(self._minima_lists()[0])

    @property
    def minimum_value(self) -> float | None:
        if self._minimum_value is None:
            glob = self._minima_lists()[0]
            if glob:
                self._minimum_value = float(self._value(glob[0]))
        return self._minimum_value

    def __repr__(self) -> str:
        args = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"Objective({self.name!r}{args})"

    # ---- helpers ----------------------------------------------------------------------------------

    def _point(self, x: Any) -> np.ndarray:
        try:
            p = np.asarray(x)
        except (TypeError, ValueError):  # ragged sequences
            p = np.empty(0, dtype=object)
        if p.dtype.kind not in "iuf":  # refuse None (numpy would read NaN), strings, complex, bools
            raise TypeError(
                f"{self.name}: x must be an array-like of {self.dim} real numbers, got {describe(x)}"
            )
        p = p.astype(np.float64, copy=False)
        if p.shape != (self.dim,):
            raise ValueError(
                f"{self.name}: x must have shape ({self.dim},) since dim={self.dim}, got shape {p.shape}"
            )
        return p

    def _minima_lists(self) -> tuple[list[Point], list[Point]]:
        if self._minima is None:
            glob, loc = self._find_minima()
            glob = [_frozen(m) for m in glob]
            loc = [_frozen(m) for m in loc]
            loc.sort(key=lambda m: float(self._value(m)))
            self._minima = (glob, loc)
        return list(self._minima[0]), list(self._minima[1])

    def _newton(self, x0: Sequence[float], max_iter: int = 100) -> np.ndarray | None:
        """Polish ``x0`` into a stationary point by Newton's method; ``None`` unless a strict minimum."""
        x = np.array(x0, dtype=np.float64)
        try:
            for _ in range(max_iter):
                step = self._newton_step(x)
                x = x - step
                if not np.all(np.isfinite(x)):
                    return None
                if np.max(np.abs(step)) <= 1e-12 * max(1.0, float(np.max(np.abs(x)))):
                    x = x - self._newton_step(x)  # quadratic convergence: one more step reaches eps
                    break
            return x if self._strict_minimum(x) else None
        except (np.linalg.LinAlgError, ZeroDivisionError):  # singular Hessian on the way
            return None

    def _newton_step(self, x: np.ndarray) -> np.ndarray:
        return np.linalg.solve(self._hessian(x), self._grad(x))

    def _strict_minimum(self, x: np.ndarray) -> bool:
        h = self._hessian(x)
        return bool(np.all(np.isfinite(h)) and np.linalg.eigvalsh(h)[0] > 0)


def _frozen(x: Any) -> np.ndarray:
    a = np.array(x, dtype=np.float64)
    a.setflags(write=False)
    return a


def _col(v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``v`` (one entry per axis) shaped to broadcast against ``x`` of shape ``(dim, *batch)``."""
    return v.reshape(v.shape + (1,) * (x.ndim - 1))


def _separable_minima(z: np.ndarray, g: np.ndarray, dim: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Minima of ``f(x) = sum_i g(x_i)`` from the 1-D minima ``z`` with values ``g``.

    Every combination of 1-D minima is a minimum of ``f``; see :data:`MAX_LISTED_MINIMA` for how
    many are listed.
    """
    z = np.asarray(z, dtype=np.float64)
    best = np.flatnonzero(g == g.min()).tolist()
    others = [j for j in range(len(z)) if j not in best]

    def at_most_max(log_count: float) -> bool:  # counts compared in logs: 11**dim is huge
        return log_count <= math.log(MAX_LISTED_MINIMA) + 1e-9

    if at_most_max(dim * math.log(len(z))):
        combos: Any = itertools.product(range(len(z)), repeat=dim)
    elif at_most_max(math.log(dim * len(others)) + (dim - 1) * math.log(len(best))):
        one_off = (
            c[:i] + (j,) + c[i:]
            for c in itertools.product(best, repeat=dim - 1)
            for i in range(dim)
            for j in others
        )
        combos = itertools.chain(itertools.product(best, repeat=dim), one_off)
    else:
        combos = itertools.product(best, repeat=dim)
    glob, loc = [], []
    for c in combos:
        (glob if set(best).issuperset(c) else loc).append(z[list(c)])
    return glob, loc


# ---- quadratics ----------------------------------------------------------------------------------


class _Quadratic(Objective):
    r"""Convex quadratic with condition number ``kappa``.

    .. math::

        f(x) = \tfrac12 \sum_{i=1}^n \lambda_i x_i^2, \qquad
        \lambda_i = \kappa^{(i-1)/(n-1)} \ \text{(log-spaced from 1 to } \kappa),

    so the Hessian is :math:`\operatorname{diag}(\lambda)` and gradient descent with
    ``lr = 2 / (1 + kappa)`` contracts by :math:`(\kappa - 1)/(\kappa + 1)` per step.
    The minimum is 0 at the origin. Start: all ones (every eigen-direction equally excited).
    ``dim=1`` has the single eigenvalue 1, so it needs ``kappa=1``.
    """

    name = "quadratic"
    description = "ill-conditioned convex quadratic, eigenvalues log-spaced from 1 to kappa"

    def __init__(self, *, dim: int = 2, kappa: float = 10.0) -> None:
        dim = check_int(self.name, "dim", dim, low=1)
        kappa = check_real(self.name, "kappa", kappa, low=1.0)
        if dim == 1 and kappa != 1.0:
            raise ValueError(f"{self.name}: kappa must be 1 when dim=1 (one eigenvalue), got {kappa!r}")
        self.eigenvalues = _frozen(np.geomspace(1.0, kappa, dim))
        super().__init__(
            dim,
            self._params(dim, kappa),
            start=np.ones(dim),
            domain=[(-2.0, 2.0)] * dim,
            minimum_value=0.0,
        )

    def _params(self, dim: int, kappa: float) -> dict[str, Any]:
        return {"dim": dim, "kappa": kappa}

    def _value(self, x: np.ndarray) -> np.ndarray:
        return 0.5 * np.sum(_col(self.eigenvalues, x) * x * x, axis=0)

    def _grad(self, x: np.ndarray) -> np.ndarray:
        return self.eigenvalues * x

    def _value_and_grad(self, p: np.ndarray) -> tuple[float, np.ndarray]:
        if self.dim != 2:
            return super()._value_and_grad(p)
        (l0, l1), (x0, x1) = self.eigenvalues.tolist(), p.tolist()
        g0, g1 = l0 * x0, l1 * x1
        return 0.5 * (g0 * x0 + g1 * x1), np.array([g0, g1])

    def _hessian(self, x: np.ndarray) -> np.ndarray:
        return np.diag(self.eigenvalues)

    def _find_minima(self) -> tuple[list[Point], list[Point]]:
        return [np.zeros(self.dim)], []


class _Sphere(_Quadratic):
    r"""The sphere: the quadratic with :math:`\kappa = 1`.

    .. math::

        f(x) = \tfrac12 \sum_{i=1}^n x_i^2

    Minimum 0 at the origin; start all ones.
    """

    name = "sphere"
    description = "perfectly conditioned quadratic 0.5*|x|^2"

    def __init__(self, *, dim: int = 2) -> None:
        super().__init__(dim=dim, kappa=1.0)

    def _params(self, dim: int, kappa: float) -> dict[str, Any]:
        return {"dim": dim}


# ---- valleys and sums of squares -----------------------------------------------------------------


class _Rosenbrock(Objective):
    r"""Rosenbrock's banana valley (Rosenbrock 1960), in N-D in its chained ("generalized") form.

    .. math::

        f(x) = \sum_{i=1}^{n-1} \left[ b\,(x_{i+1} - x_i^2)^2 + (a - x_i)^2 \right]

    Global minimum 0 at :math:`(a, a^2)` in 2-D and at :math:`(1, \dots, 1)` in N-D (there
    ``a`` must be 1). For :math:`4 \le n \le 7` (proved by Shang & Qiu, 2006) and numerically
    beyond, with the classic ``b = 100``, a second, local minimum lies near
    :math:`(-1, 1, \dots, 1)`; it is found by Newton's method and listed when it exists.
    Start: the customary :math:`(-1.2, 1)`, repeated as :math:`(-1.2, 1, -1.2, 1, \dots)`.
    Domain: the classic :math:`[-2, 2] \times [-1, 3]` in 2-D, :math:`[-2, 2]^n` otherwise.
    """

    name = "rosenbrock"
    description = "curved narrow valley; GD crawls along its floor"
    log_scale = True

    def __init__(self, *, dim: int = 2, a: float = 1.0, b: float = 100.0) -> None:
        dim = check_int(self.name, "dim", dim, low=2)
        self.a = check_real(self.name, "a", a)
        self.b = check_real(self.name, "b", b, low=0.0, low_open=True)
        if dim > 2 and self.a != 1.0:
            raise ValueError(
                f"{self.name}: a must be 1 when dim > 2 (the N-D minimum is known for a=1 only), "
                f"got {self.a!r}"
            )
        start = np.where(np.arange(dim) % 2 == 0, -1.2, 1.0)
        super().__init__(
            dim,
            {"dim": dim, "a": self.a, "b": self.b},
            start=start,
            domain=[(-2.0, 2.0), (-1.0, 3.0)] if dim == 2 else [(-2.0, 2.0)] * dim,
            minimum_value=0.0,
        )

    def _value(self, x: np.ndarray) -> np.ndarray:
        u, v = x[:-1], x[1:]
        return np.sum(self.b * (v - u * u) ** 2 + (self.a - u) ** 2, axis=0)

    def _grad(self, x: np.ndarray) -> np.ndarray:
        u, v = x[:-1], x[1:]
        r = v - u * u
        g = np.zeros_like(x)
        g[:-1] = -4.0 * self.b * u * r - 2.0 * (self.a - u)
        g[1:] += 2.0 * self.b * r
        return g

    def _value_and_grad(self, p: np.ndarray) -> tuple[float, np.ndarray]:
        if self.dim != 2:
            return super()._value_and_grad(p)
        a, b = self.a, self.b
        u, v = p.tolist()
        r = v - u * u
        value = b * (r * r) + (a - u) * (a - u)
        return value, np.array([-4.0 * b * u * r - 2.0 * (a - u), 0.0 + 2.0 * b * r])

    def _tridiagonal(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Diagonal and off-diagonal of the (tridiagonal) Hessian."""
        u, v = x[:-1], x[1:]
        diag = np.zeros_like(x)
        diag[:-1] = 12.0 * self.b * u * u - 4.0 * self.b * v + 2.0
        diag[1:] += 2.0 * self.b
        return diag, -4.0 * self.b * u

    def _hessian(self, x: np.ndarray) -> np.ndarray:
        diag, off = self._tridiagonal(x)
        return np.diag(diag) + np.diag(off, 1) + np.diag(off, -1)

    def _ldl(self, x: np.ndarray) -> tuple[list[float], list[float]]:
        """``H = L D L^T`` with unit lower-bidiagonal ``L``: O(n), so large ``dim`` stays cheap."""
        d, e = (a.tolist() for a in self._tridiagonal(x))
        D, L = [d[0]], [0.0]
        for i in range(1, len(d)):
            L.append(e[i - 1] / D[-1])
            D.append(d[i] - L[i] * e[i - 1])
        return D, L

    def _newton_step(self, x: np.ndarray) -> np.ndarray:
        D, L = self._ldl(x)
        z = self._grad(x).tolist()
        for i in range(1, len(z)):
            z[i] -= L[i] * z[i - 1]
        s = [zi / di for zi, di in zip(z, D, strict=True)]
        for i in range(len(s) - 2, -1, -1):
            s[i] -= L[i + 1] * s[i + 1]
        return np.array(s)

    def _strict_minimum(self, x: np.ndarray) -> bool:
        return min(self._ldl(x)[0]) > 0  # Sylvester: positive pivots <=> positive definite

    def _find_minima(self) -> tuple[list[Point], list[Point]]:
        glob = np.ones(self.dim)
        if self.dim == 2:
            glob = np.array([self.a, self.a**2])
        local = []
        if self.dim >= 4:
            m = self._newton(np.r_[-1.0, np.ones(self.dim - 1)])
            if m is not None and np.linalg.norm(m - glob) > 1e-6:
                local.append(m)
        return [glob], local


class _SumOfSquares(Objective):
    r"""Objectives :math:`f = \sum_k r_k(x)^2`: gradient :math:`2J^\top r`, Hessian
    :math:`2(J^\top J + \sum_k r_k \nabla^2 r_k)`."""

    def _residuals(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _jacobian(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _residual_hessians(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _value(self, x: np.ndarray) -> np.ndarray:
        return np.sum(self._residuals(x) ** 2, axis=0)

    def _grad(self, x: np.ndarray) -> np.ndarray:
        return 2.0 * self._jacobian(x).T @ self._residuals(x)

    def _hessian(self, x: np.ndarray) -> np.ndarray:
        J = self._jacobian(x)
        r = self._residuals(x)
        return 2.0 * (J.T @ J + np.einsum("k,kij->ij", r, self._residual_hessians(x)))


class _Beale(_SumOfSquares):
    r"""Beale's function (Beale 1958): flat plateaus and sharp ridges near the axes.

    .. math::

        f(x, y) = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2

    Global minimum 0 at :math:`(3, 0.5)`, the only minimum in the domain (checked by a
    multistart search; a saddle sits at :math:`(0, 1)`). Start: :math:`(1, 1)` (Moré, Garbow &
    Hillstrom 1981).
    """

    name = "beale"
    description = "plateaus and sharp ridges; minimum at (3, 0.5)"
    log_scale = True

    def __init__(self) -> None:
        super().__init__(2, {}, start=[1.0, 1.0], domain=[(-4.5, 4.5)] * 2, minimum_value=0.0)

    def _residuals(self, x: np.ndarray) -> np.ndarray:
        X, Y = x[0], x[1]
        return np.stack([1.5 - X + X * Y, 2.25 - X + X * Y**2, 2.625 - X + X * Y**3])

    def _jacobian(self, x: np.ndarray) -> np.ndarray:
        X, Y = x
        return np.array([[Y - 1, X], [Y**2 - 1, 2 * X * Y], [Y**3 - 1, 3 * X * Y**2]])

    def _residual_hessians(self, x: np.ndarray) -> np.ndarray:
        X, Y = x
        return np.array(
            [[[0, 1], [1, 0]], [[0, 2 * Y], [2 * Y, 2 * X]], [[0, 3 * Y**2], [3 * Y**2, 6 * X * Y]]]
        )

    def _value_and_grad(self, p: np.ndarray) -> tuple[float, np.ndarray]:
        X, Y = p.tolist()
        try:  # the powers as _residuals takes them (NumPy's scalar power is C's pow, as Python's)
            Y2, Y3 = Y**2, Y**3
        except OverflowError:  # Python raises where NumPy gives inf
            return super()._value_and_grad(p)
        r1, r2, r3 = 1.5 - X + X * Y, 2.25 - X + X * Y2, 2.625 - X + X * Y3
        value = r1 * r1 + r2 * r2 + r3 * r3
        gx = 2.0 * (Y - 1) * r1 + 2.0 * (Y2 - 1) * r2 + 2.0 * (Y3 - 1) * r3
        gy = 2.0 * X * r1 + 2.0 * (2 * X * Y) * r2 + 2.0 * (3 * X * Y2) * r3
        return value, np.array([gx, gy])

    def _find_minima(self) -> tuple[list[Point], list[Point]]:
        return [np.array([3.0, 0.5])], []


class _Booth(_SumOfSquares):
    r"""Booth's function: a convex quadratic with condition number 9 along the diagonal.

    .. math::

        f(x, y) = (x + 2y - 7)^2 + (2x + y - 5)^2

    Global minimum 0 at :math:`(1, 3)`; Hessian :math:`[[10, 8], [8, 10]]` (eigenvalues 18
    and 2). No customary start; :math:`(-7, 8)` excites both eigen-directions.
    """

    name = "booth"
    description = "tilted convex quadratic (condition number 9); minimum at (1, 3)"

    _J = _frozen([[1.0, 2.0], [2.0, 1.0]])

    def __init__(self) -> None:
        super().__init__(2, {}, start=[-7.0, 8.0], domain=[(-10.0, 10.0)] * 2, minimum_value=0.0)

    def _residuals(self, x: np.ndarray) -> np.ndarray:
        return np.stack([x[0] + 2 * x[1] - 7, 2 * x[0] + x[1] - 5])

    def _jacobian(self, x: np.ndarray) -> np.ndarray:
        return self._J

    def _residual_hessians(self, x: np.ndarray) -> np.ndarray:
        return np.zeros((2, 2, 2))

    def _find_minima(self) -> tuple[list[Point], list[Point]]:
        return [np.linalg.solve(self._J, [7.0, 5.0])], []


class _Himmelblau(_SumOfSquares):
    r"""Himmelblau's function (1972): four global minima of value 0.

    .. math::

        f(x, y) = (x^2 + y - 11)^2 + (x + y^2 - 7)^2

    The minima are the zeros of both residuals: :math:`y = 11 - x^2` with
    :math:`x^4 - 22x^2 + x + 114 = 0`, i.e. :math:`(3, 2)`, :math:`(-2.805, 3.131)`,
    :math:`(-3.779, -3.283)`, :math:`(3.584, -1.848)`. A local maximum sits near
    :math:`(-0.271, -0.923)`. Start: :math:`(-0.27, -0.9)`, beside that maximum, so the
    basin an optimizer picks depends on its path.
    """

    name = "himmelblau"
    description = "four global minima of value 0 around a central maximum"
    log_scale = True

    def __init__(self) -> None:
        super().__init__(2, {}, start=[-0.27, -0.9], domain=[(-5.0, 5.0)] * 2, minimum_value=0.0)

    def _residuals(self, x: np.ndarray) -> np.ndarray:
        return np.stack([x[0] ** 2 + x[1] - 11, x[0] + x[1] ** 2 - 7])

    def _jacobian(self, x: np.ndarray) -> np.ndarray:
        return np.array([[2 * x[0], 1.0], [1.0, 2 * x[1]]])

    def _residual_hessians(self, x: np.ndarray) -> np.ndarray:
        return np.array([[[2.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 2.0]]])

    def _find_minima(self) -> tuple[list[Point], list[Point]]:
        xs = np.roots([1.0, 0.0, -22.0, 1.0, 114.0]).real
        glob = [self._newton([x, 11.0 - x * x]) for x in xs]
        glob.sort(key=lambda m: np.hypot(m[0] - 3.0, m[1] - 2.0))  # the classic (3, 2) first
        return glob, []


# ---- many local minima ---------------------------------------------------------------------------


class _Rastrigin(Objective):
    r"""Rastrigin's function: a bowl covered in a lattice of cosine dimples (A = 10).

    .. math::

        f(x) = A n + \sum_{i=1}^n \left[ x_i^2 - A \cos(2\pi x_i) \right]

    Global minimum 0 at the origin. It is separable: each coordinate sits at a 1-D minimum
    :math:`z_k \approx k` (the root of :math:`2z + 2\pi A \sin 2\pi z` near the integer ``k``),
    :math:`k = -5, \dots, 5` in the domain :math:`[-5.12, 5.12]^n`, so there are :math:`11^n`
    minima (see :class:`Objective` for how many are listed). Start: :math:`(2.2, \dots, 2.2)`,
    from which gradient descent is caught by the dimple near :math:`(2, \dots, 2)`.
    """

    name = "rastrigin"
    description = "bowl with a lattice of local minima; global minimum 0 at the origin"

    A = 10.0

    def __init__(self, *, dim: int = 2) -> None:
        dim = check_int(self.name, "dim", dim, low=1)
        super().__init__(
            dim, {"dim": dim}, start=np.full(dim, 2.2), domain=[(-5.12, 5.12)] * dim, minimum_value=0.0
        )

    def _value(self, x: np.ndarray) -> np.ndarray:
        # A*(1 - cos) instead of A*n - A*cos: exact 0 at the origin, no cancellation.
        return np.sum(x * x + self.A * (1.0 - np.cos(2 * np.pi * x)), axis=0)

    def _grad(self, x: np.ndarray) -> np.ndarray:
        return 2 * x + 2 * np.pi * self.A * np.sin(2 * np.pi * x)

    def _hessian(self, x: np.ndarray) -> np.ndarray:
        return np.diag(2 + 4 * np.pi**2 * self.A * np.cos(2 * np.pi * x))

    def _find_minima(self) -> tuple[list[Point], list[Point]]:
        z = np.arange(-5.0, 6.0)
        for _ in range(50):  # Newton on the 1-D derivative, all k at once
            step = (2 * z + 2 * np.pi * self.A * np.sin(2 * np.pi * z)) / (
                2 + 4 * np.pi**2 * self.A * np.cos(2 * np.pi * z)
            )
            z = z - step
            if np.max(np.abs(step)) <= 4 * _EPS * 5:
                break
        g = z * z + self.A * (1.0 - np.cos(2 * np.pi * z))
        return _separable_minima(z, g, self.dim)


class _Ackley(Objective):
    r"""Ackley's function (2-D): a nearly flat, dimpled plateau around a sharp central funnel.

    .. math::

        f(x, y) = -20 \exp\!\left(-0.2 \sqrt{\tfrac12 (x^2 + y^2)}\right)
                  - \exp\!\left(\tfrac12 (\cos 2\pi x + \cos 2\pi y)\right) + 20 + e

    Global minimum 0 at the origin, a cone point where ``f`` is not differentiable: ``grad``
    returns 0 there by convention (0 lies in the subdifferential, and it is where gradient
    descent should stop), and ``hessian`` returns a matrix of NaN there (undefined).
    A local minimum lies near each other integer point of the domain :math:`[-5, 5]^2`; these
    120 are found by Newton's method from the integer points and listed. Start: :math:`(2.2, 1.6)`,
    inside the dimple near :math:`(2, 2)`, where plain gradient descent is trapped.
    """

    name = "ackley"
    description = "dimpled plateau around a sharp central funnel; minimum 0 at the origin"

    def __init__(self) -> None:
        super().__init__(2, {}, start=[2.2, 1.6], domain=[(-5.0, 5.0)] * 2, minimum_value=0.0)

    def _value(self, x: np.ndarray) -> np.ndarray:
        r = np.sqrt(0.5 * np.sum(x * x, axis=0))
        c = 0.5 * np.sum(np.cos(2 * np.pi * x), axis=0)
        # grouped so the origin gives exactly 0
        return 20.0 * (1.0 - np.exp(-0.2 * r)) + (math.e - np.exp(c))

    def _parts(self, x: np.ndarray) -> tuple[float, float, float]:
        r = math.sqrt(0.5 * float(x @ x))
        E = math.exp(0.5 * float(np.sum(np.cos(2 * np.pi * x))))
        return r, math.exp(-0.2 * r), E

    def _grad(self, x: np.ndarray) -> np.ndarray:
        r, e1, E = self._parts(x)
        cone = 0.0 if r == 0.0 else 4.0 * e1 * 0.5 / r  # the convention: 0 at the origin
        return cone * x + np.pi * E * np.sin(2 * np.pi * x)

    def _hessian(self, x: np.ndarray) -> np.ndarray:
        r, e1, E = self._parts(x)
        if r == 0.0:
            return np.full((2, 2), np.nan)
        c = 0.5
        h_cone = 4 * c * e1 * (np.eye(2) / r - c * np.outer(x, x) * (0.2 * r + 1) / r**3)
        s = np.sin(2 * np.pi * x)
        h_cos = 4 * np.pi**2 * c * E * (np.diag(np.cos(2 * np.pi * x)) - c * np.outer(s, s))
        return h_cone + h_cos

    def _find_minima(self) -> tuple[list[Point], list[Point]]:
        local = []
        for k in itertools.product(range(-5, 6), repeat=2):
            if k != (0, 0):
                m = self._newton(k)
                if m is not None:
                    local.append(m)
        return [np.zeros(2)], local


class _GoldsteinPrice(Objective):
    r"""Goldstein-Price function (1971): steep walls, values spanning six orders of magnitude.

    .. math::

        f(x, y) = \left[1 + (x + y + 1)^2 (19 - 14x + 3x^2 - 14y + 6xy + 3y^2)\right]
                  \left[30 + (2x - 3y)^2 (18 - 32x + 12x^2 + 48y - 36xy + 27y^2)\right]

    With :math:`u = x + y` and :math:`t = 2x - 3y` it factors as :math:`f = A(u) B(t)`,
    :math:`A = 3u^4 - 8u^3 - 6u^2 + 24u + 20 \ge 1`, :math:`B = 3t^4 - 16t^3 + 18t^2 + 30 \ge 3`,
    so its minima are exactly the pairs of 1-D minima :math:`u \in \{-1, 2\}`,
    :math:`t \in \{0, 3\}`: global :math:`(0, -1)` with value 3, local :math:`(-0.6, -0.4)`
    (30), :math:`(1.8, 0.2)` (84) and :math:`(1.2, 0.8)` (840). Start: :math:`(0.5, 0.5)`, from
    which gradient descent (checked for lr 1e-5 to 1e-4) is caught by the local minimum
    :math:`(-0.6, -0.4)`.
    """

    name = "goldstein_price"
    description = "steep polynomial with 4 minima; global minimum 3 at (0, -1)"
    log_scale = True

    _T = _frozen([[1.0, 1.0], [2.0, -3.0]])  # (u, t) = _T @ (x, y)

    def __init__(self) -> None:
        super().__init__(2, {}, start=[0.5, 0.5], domain=[(-2.0, 2.0)] * 2, minimum_value=3.0)

    @staticmethod
    def _A(u: Any) -> tuple[Any, Any, Any]:
        return (
            (((3 * u - 8) * u - 6) * u + 24) * u + 20,
            ((12 * u - 24) * u - 12) * u + 24,
            (36 * u - 48) * u - 12,
        )

    @staticmethod
    def _B(t: Any) -> tuple[Any, Any, Any]:
        return (((3 * t - 16) * t + 18) * t * t + 30, ((12 * t - 48) * t + 36) * t, (36 * t - 96) * t + 36)

    def _value(self, x: np.ndarray) -> np.ndarray:
        return self._A(x[0] + x[1])[0] * self._B(2 * x[0] - 3 * x[1])[0]

    def _grad(self, x: np.ndarray) -> np.ndarray:
        (A, dA, _), (B, dB, _) = self._A(x[0] + x[1]), self._B(2 * x[0] - 3 * x[1])
        return self._T.T @ np.array([dA * B, A * dB])

    def _hessian(self, x: np.ndarray) -> np.ndarray:
        (A, dA, d2A), (B, dB, d2B) = self._A(x[0] + x[1]), self._B(2 * x[0] - 3 * x[1])
        H_ut = np.array([[d2A * B, dA * dB], [dA * dB, A * d2B]])
        return self._T.T @ H_ut @ self._T

    def _find_minima(self) -> tuple[list[Point], list[Point]]:
        # A' = 12(u+1)(u-1)(u-2), B' = 12t(t-1)(t-3); the minima of each are where A'', B'' > 0.
        us = [u for u in (-1.0, 1.0, 2.0) if self._A(u)[2] > 0]
        ts = [t for t in (0.0, 1.0, 3.0) if self._B(t)[2] > 0]
        pts = [np.array([(3 * u + t) / 5, (2 * u - t) / 5]) for u in us for t in ts]  # invert _T
        pts.sort(key=lambda p: float(self._value(p)))
        return pts[:1], pts[1:]


class _SixHumpCamel(Objective):
    r"""Six-hump camel function: two global minima and four local ones.

    .. math::

        f(x, y) = \left(4 - 2.1x^2 + \tfrac{x^4}{3}\right)x^2 + xy + (-4 + 4y^2)\,y^2

    Global minima :math:`\pm(0.0898, -0.7126)` with value :math:`-1.0316`; local minima
    :math:`\pm(-1.7036, 0.7961)` (:math:`-0.2155`) and :math:`\pm(1.6071, 0.5687)`
    (:math:`2.1043`). All are computed from the stationary points: :math:`f_y = 0` gives
    :math:`x = 8y - 16y^3`, which turns :math:`f_x = 0` into a polynomial in ``y`` whose real
    roots are polished by Newton's method. Start: :math:`(-1.5, -0.9)`, from which gradient
    descent ends in the highest local minimum :math:`(-1.6071, -0.5687)`.
    """

    name = "six_hump_camel"
    description = "two global and four local minima"

    def __init__(self) -> None:
        super().__init__(2, {}, start=[-1.5, -0.9], domain=[(-2.0, 2.0), (-1.0, 1.0)])

    def _value(self, x: np.ndarray) -> np.ndarray:
        X, Y = x[0], x[1]
        X2, Y2 = X * X, Y * Y
        return (4 - 2.1 * X2 + X2 * X2 / 3) * X2 + X * Y + (-4 + 4 * Y2) * Y2

    def _grad(self, x: np.ndarray) -> np.ndarray:
        X, Y = x
        return np.array([8 * X - 8.4 * X**3 + 2 * X**5 + Y, X - 8 * Y + 16 * Y**3])

    def _hessian(self, x: np.ndarray) -> np.ndarray:
        X, Y = x
        return np.array([[8 - 25.2 * X**2 + 10 * X**4, 1.0], [1.0, -8 + 48 * Y**2]])

    def _find_minima(self) -> tuple[list[Point], list[Point]]:
        P = np.polynomial.Polynomial
        xy = P([0.0, 8.0, 0.0, -16.0])  # x as a function of y on f_y = 0
        fx = 8 * xy - 8.4 * xy**3 + 2 * xy**5 + P([0.0, 1.0])
        mins = []
        for y in fx.roots():
            if abs(y.imag) < 1e-8:
                m = self._newton([xy(y.real), y.real])
                if m is not None and all(np.linalg.norm(m - q) > 1e-8 for q in mins):
                    mins.append(m)
        vals = np.array([float(self._value(m)) for m in mins])
        glob = [m for m, v in zip(mins, vals, strict=True) if v <= vals.min() + 1e-12]
        glob.sort(key=lambda m: m[0])
        return glob, [m for m, v in zip(mins, vals, strict=True) if v > vals.min() + 1e-12]


class _StyblinskiTang(Objective):
    r"""Styblinski-Tang function: separable quartic with :math:`2^n` minima.

    .. math::

        f(x) = \tfrac12 \sum_{i=1}^n \left( x_i^4 - 16 x_i^2 + 5 x_i \right)

    Each coordinate sits at one of the two 1-D minima, the roots of :math:`4z^3 - 32z + 5`:
    :math:`z_- \approx -2.9035` (global) or :math:`z_+ \approx 2.7468`. Global minimum
    :math:`(z_-, \dots, z_-)` with value :math:`\approx -39.166\,n`. Start:
    :math:`(0.5, \dots, 0.5)`, right of the 1-D maximum at 0.157, so gradient descent ends in
    the worst minimum :math:`(z_+, \dots, z_+)`.
    """

    name = "styblinski_tang"
    description = "separable quartic with 2^n minima"

    def __init__(self, *, dim: int = 2) -> None:
        dim = check_int(self.name, "dim", dim, low=1)
        super().__init__(dim, {"dim": dim}, start=np.full(dim, 0.5), domain=[(-5.0, 5.0)] * dim)

    def _value(self, x: np.ndarray) -> np.ndarray:
        x2 = x * x
        return 0.5 * np.sum(x2 * x2 - 16 * x2 + 5 * x, axis=0)

    def _grad(self, x: np.ndarray) -> np.ndarray:
        return 2 * x**3 - 16 * x + 2.5

    def _hessian(self, x: np.ndarray) -> np.ndarray:
        return np.diag(6 * x * x - 16)

    def _find_minima(self) -> tuple[list[Point], list[Point]]:
        z = np.sort(np.roots([4.0, 0.0, -32.0, 5.0]).real)[[0, 2]]  # the middle root is a maximum
        for _ in range(3):  # Newton polish of the 1-D roots
            z = z - (2 * z**3 - 16 * z + 2.5) / (6 * z * z - 16)
        g = 0.5 * (z**4 - 16 * z**2 + 5 * z)
        return _separable_minima(z, g, self.dim)


# ---- saddles and wells ---------------------------------------------------------------------------


class _Saddle(Objective):
    r"""The saddle :math:`f = x^2 - y^2`: a stationary point that is not a minimum.

    .. math::

        f(x, y) = x^2 - y^2, \qquad \nabla^2 f = \operatorname{diag}(2, -2)

    No minima; unbounded below (``minimum_value`` is ``None``). Start: :math:`(1, 10^{-4})`,
    a hair off the stable manifold ``y = 0``: gradient descent with step ``lr`` shrinks ``x``
    by :math:`1 - 2\,\text{lr}` per step and grows ``y`` by :math:`1 + 2\,\text{lr}`, so it
    reaches the saddle quickly and then needs about :math:`\ln(10^4) / (2\,\text{lr})`
    steps to escape: the plateau that saddles cause in training curves.
    """

    name = "saddle"
    description = "x^2 - y^2: GD stalls near the saddle before escaping"

    def __init__(self) -> None:
        super().__init__(2, {}, start=[1.0, 1e-4], domain=[(-1.5, 1.5)] * 2)

    def _value(self, x: np.ndarray) -> np.ndarray:
        return x[0] ** 2 - x[1] ** 2

    def _grad(self, x: np.ndarray) -> np.ndarray:
        return np.array([2 * x[0], -2 * x[1]])

    def _hessian(self, x: np.ndarray) -> np.ndarray:
        return np.diag([2.0, -2.0])

    def _find_minima(self) -> tuple[list[Point], list[Point]]:
        return [], []


class _MonkeySaddle(Objective):
    r"""The monkey saddle :math:`f = x^3 - 3xy^2`: a degenerate saddle (zero Hessian at 0).

    .. math::

        f(x, y) = x^3 - 3xy^2, \qquad
        \nabla f = (3x^2 - 3y^2,\ -6xy), \qquad
        \nabla^2 f = \begin{pmatrix} 6x & -6y \\ -6y & -6x \end{pmatrix}

    No minima; unbounded below. Start: :math:`(1, 10^{-4})`: along ``y = 0`` the gradient
    vanishes quadratically, so gradient descent approaches the origin only like
    :math:`1/(3\,\text{lr}\,t)` and escapes slowly along one of the three descending valleys.
    """

    name = "monkey_saddle"
    description = "x^3 - 3xy^2: degenerate saddle with three descending valleys"

    def __init__(self) -> None:
        super().__init__(2, {}, start=[1.0, 1e-4], domain=[(-1.5, 1.5)] * 2)

    def _value(self, x: np.ndarray) -> np.ndarray:
        return x[0] ** 3 - 3 * x[0] * x[1] ** 2

    def _grad(self, x: np.ndarray) -> np.ndarray:
        return np.array([3 * x[0] ** 2 - 3 * x[1] ** 2, -6 * x[0] * x[1]])

    def _hessian(self, x: np.ndarray) -> np.ndarray:
        return np.array([[6 * x[0], -6 * x[1]], [-6 * x[1], -6 * x[0]]])

    def _find_minima(self) -> tuple[list[Point], list[Point]]:
        return [], []


class _TwoWell(Objective):
    r"""A tilted double well: one shallow and one deep minimum separated by a barrier.

    .. math::

        f(x, y) = (x^2 - 1)^2 + 0.3\,x + y^2

    The minima are the roots of :math:`f_x = 4x^3 - 4x + 0.3` with :math:`f_{xx} > 0`, at
    ``y = 0``: the deep (global) one near :math:`(-1.036, 0)` with value :math:`\approx -0.305`
    and the shallow one near :math:`(0.960, 0)` with value :math:`\approx 0.294`; the barrier
    top is near :math:`x = 0.075`. Start: :math:`(1.8, 0.8)`, on the shallow side, so plain
    gradient descent with a small step ends in the shallow minimum, while enough momentum
    carries an optimizer over the barrier into the deep one.
    """

    name = "two_well"
    description = "tilted double well: shallow minimum near (0.96, 0), deep one near (-1.04, 0)"

    def __init__(self) -> None:
        super().__init__(2, {}, start=[1.8, 0.8], domain=[(-2.0, 2.0), (-1.5, 1.5)])

    def _value(self, x: np.ndarray) -> np.ndarray:
        X, Y = x[0], x[1]
        return (X * X - 1) ** 2 + 0.3 * X + Y * Y

    def _grad(self, x: np.ndarray) -> np.ndarray:
        return np.array([4 * x[0] ** 3 - 4 * x[0] + 0.3, 2 * x[1]])

    def _hessian(self, x: np.ndarray) -> np.ndarray:
        return np.array([[12 * x[0] ** 2 - 4, 0.0], [0.0, 2.0]])

    def _find_minima(self) -> tuple[list[Point], list[Point]]:
        roots = np.roots([4.0, 0.0, -4.0, 0.3])
        xs = [r.real for r in roots if abs(r.imag) < 1e-12 and 12 * r.real**2 - 4 > 0]
        mins = [self._newton([x, 0.0]) for x in xs]
        mins.sort(key=lambda m: float(self._value(m)))
        return mins[:1], mins[1:]


# ---- registry ------------------------------------------------------------------------------------

_REGISTRY: Registry[type[Objective]] = Registry(
    "function",
    {
        cls.name: cls
        for cls in (
            _Quadratic,
            _Sphere,
            _Rosenbrock,
            _Beale,
            _Booth,
            _Himmelblau,
            _Rastrigin,
            _Ackley,
            _GoldsteinPrice,
            _SixHumpCamel,
            _StyblinskiTang,
            _Saddle,
            _MonkeySaddle,
            _TwoWell,
        )
    },
    owner="functions.get",
)


def names() -> list[str]:
    """Names accepted by :func:`get`, in a stable order."""
    return _REGISTRY.names()


def get(name: str, **params: Any) -> Objective:
    """Build the objective registered as ``name`` (case-insensitive; ``-`` reads as ``_``).

    Parameters: ``quadratic(dim=2, kappa=10.0)``, ``sphere(dim=2)``,
    ``rosenbrock(dim=2, a=1.0, b=100.0)``, ``rastrigin(dim=2)``, ``styblinski_tang(dim=2)``;
    the others take none.

    >>> get("quadratic", dim=3, kappa=100).hessian([0, 0, 0]).diagonal()
    array([  1.,  10., 100.])
    """
    key = _REGISTRY.key(name)
    cls = _REGISTRY[key]
    check_keywords("functions.get", repr(key), cls, params)
    return cls(**params)
