"""Column statistics written once: Chan et al.'s merge of (rows, mean, M2), and when a column is constant.

Every streaming pass (files and arrays in :class:`~descend.data.base._Accumulator`, Dask
partitions merged on the client, the validation R²) and every standardization (fit's feature
and target scalers, the scikit-learn estimators' targets, ``diagnose``'s feature scale) reads
these two pieces from here.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = ["CONSTANT_ATOL", "CONSTANT_RTOL", "Moments", "merge", "scale_or_one", "varies"]

#: a column is constant when its standard deviation is at most
#: ``CONSTANT_ATOL + CONSTANT_RTOL * |mean|`` (the form of ``np.isclose``). ``CONSTANT_RTOL`` is
#: about 8 float32 rounding steps (float32's epsilon is 1.19e-7): values that agree to float32
#: rounding (a float32 column computed along different paths, float32 data read as float64)
#: have a std of at most ~1.2e-7 |mean|, and float64 rounding (~1e-16 |mean|) lies far below.
#: Dividing such a column by its std would turn rounding noise into a feature of unit scale;
#: a constant column keeps scale 1 instead (it is still centred). A float64 column that truly
#: varies by less than 1e-6 of its mean is thereby left unscaled, not lost: in a float32 model
#: it could not be told from rounding anyway.
CONSTANT_RTOL = 1e-6
#: the absolute part of the rule: a column within 1e-12 of 0 everywhere (rounding residue such
#: as ``0.1 + 0.2 - 0.3``) is constant too.
CONSTANT_ATOL = 1e-12


def varies(mean: Any, std: Any) -> np.ndarray:
    """True for the columns that are not constant: ``std > CONSTANT_ATOL + CONSTANT_RTOL * |mean|``.

    >>> varies([0.1, 0.1, 0.0], [1e-9, 1e-3, 0.0]).tolist()
    [False, True, False]
    """
    std = np.asarray(std, dtype=np.float64)
    return std > CONSTANT_ATOL + CONSTANT_RTOL * np.abs(np.asarray(mean, dtype=np.float64))


def scale_or_one(mean: Any, std: Any) -> np.ndarray:
    """The standardizing scale of each column: its std, or 1 where the column is constant."""
    std = np.asarray(std, dtype=np.float64)
    return np.where(varies(mean, std), std, 1.0)


class Moments(NamedTuple):
    """Rows ``n``, per-column ``mean`` and ``m2`` (the sum of squared deviations from the mean)."""

    n: int
    mean: Any
    m2: Any

    @classmethod
    def of(cls, X: Any) -> Moments:
        """The moments of the rows of ``X`` (n, d), in float64: mean, then squares about it."""
        X = np.asarray(X, dtype=np.float64)
        mean = X.mean(axis=0)
        return cls(int(X.shape[0]), mean, ((X - mean) ** 2).sum(axis=0))

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation ``sqrt(m2 / n)`` (0 for no rows)."""
        return np.sqrt(np.asarray(self.m2, dtype=np.float64) / max(self.n, 1))


def merge(a: Moments, b: Moments) -> Moments:
    """The moments of the rows of ``a`` and ``b`` together (Chan, Golub & LeVeque's pairwise update).

    .. math::

        n = n_a + n_b, \\quad \\delta = \\bar x_b - \\bar x_a, \\quad
        \\bar x = \\bar x_a + \\delta \\, n_b / n, \\quad
        M_2 = M_{2,a} + M_{2,b} + \\delta^2 \\, n_a n_b / n

    Merging pieces in a fixed order gives the same bits every time; either side may be empty
    (the other is returned as it is).

    Reference: T. F. Chan, G. H. Golub, R. J. LeVeque, "Updating formulae and a pairwise
    algorithm for computing sample variances", Stanford CS report STAN-CS-79-773 (1979).

    >>> import numpy as np
    >>> x = np.array([[1.0], [2.0], [4.0], [8.0]])
    >>> m = merge(Moments.of(x[:1]), Moments.of(x[1:]))
    >>> m.n, m.mean.tolist(), m.std.tolist() == x.std(axis=0).tolist()
    (4, [3.75], True)
    """
    if b.n == 0:
        return a
    if a.n == 0:
        return b
    n = a.n + b.n
    delta = b.mean - a.mean
    mean = a.mean + delta * (b.n / n)
    m2 = a.m2 + b.m2 + delta**2 * (a.n * b.n / n)
    return Moments(n, mean, m2)
