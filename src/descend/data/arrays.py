"""In-memory and memory-mapped arrays as a data source."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import describe
from .base import Batch, DataSource, epoch_order

__all__ = ["ArraySource", "check_arrays", "from_npy"]

#: rows checked at a time for NaN/inf, so a memory-mapped file is never loaded whole
_CHECK_CHUNK = 1 << 16


def _first_bad(a: np.ndarray) -> tuple[int, int] | None:
    """(row, column) of the first NaN/inf in ``a`` (2-D, or 1-D with column 0), else None."""
    for lo in range(0, a.shape[0], _CHECK_CHUNK):
        chunk = np.asarray(a[lo : lo + _CHECK_CHUNK])
        finite = np.isfinite(chunk)
        if not finite.all():
            bad = np.argwhere(~finite)[0]
            return lo + int(bad[0]), int(bad[1]) if bad.size > 1 else 0
    return None


def check_arrays(
    owner: str, X: Any, y: Any, *, x_name: str = "X", y_name: str = "y"
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a feature matrix and its targets: shapes, dtypes, finiteness, emptiness."""
    if not isinstance(X, np.ndarray):
        X = np.asarray(X)
    if not isinstance(y, np.ndarray):
        y = np.asarray(y)
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == np.bool_):
        raise TypeError(f"{owner}: {x_name} must hold numbers, got dtype {X.dtype}")
    if np.issubdtype(X.dtype, np.complexfloating):
        raise TypeError(f"{owner}: {x_name} must be real, got dtype {X.dtype}")
    if y.dtype == object or not (np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_):
        raise TypeError(f"{owner}: {y_name} must hold numbers, got dtype {y.dtype}")
    if X.ndim != 2:
        raise ValueError(f"{owner}: {x_name} must be 2-D (samples x features), got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(
            f"{owner}: {x_name} is empty (shape {X.shape}); need at least one sample and feature"
        )
    if y.ndim not in (1, 2):
        raise ValueError(f"{owner}: {y_name} must be 1-D or 2-D, got shape {y.shape}")
    if y.shape[0] != X.shape[0]:
        raise ValueError(
            f"{owner}: {x_name} has {X.shape[0]} rows but {y_name} has {y.shape[0]}; they must match"
        )
    if np.issubdtype(X.dtype, np.floating):
        bad = _first_bad(X)
        if bad is not None:
            r, c = bad
            value = float(X[r, c])
            raise ValueError(f"{owner}: {x_name} has a non-finite value ({value!r}) at row {r}, column {c}")
    if np.issubdtype(y.dtype, np.floating):
        bad = _first_bad(y)
        if bad is not None:
            r, c = bad
            where = f"row {r}" if y.ndim == 1 else f"row {r}, column {c}"
            raise ValueError(f"{owner}: {y_name} has a non-finite value at {where}")
    return X, y


class ArraySource(DataSource):
    """Arrays (or memory-mapped arrays) ``X`` (n, d) and ``y`` (n,) or (n, k) as a data source.

    The arrays are checked once, at construction (NaN/inf, shapes, emptiness), and never copied
    except batch by batch.

    >>> import numpy as np
    >>> src = ArraySource(np.arange(10.0).reshape(5, 2), np.arange(5))
    >>> [b.y.tolist() for b in src.batches(0, 2, shuffle=False)]
    [[0, 1], [2, 3], [4]]
    """

    def __init__(self, X: Any, y: Any, *, description: str = "arrays", owner: str = "ArraySource"):
        self.X, self.y = check_arrays(owner, X, y)
        self.description = description

    @classmethod
    def _trusted(cls, X: np.ndarray, y: np.ndarray, description: str) -> ArraySource:
        """A source over arrays already checked (e.g. targets converted by a model)."""
        src = cls.__new__(cls)
        src.X, src.y, src.description = X, y, description
        return src

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def targets(self) -> np.ndarray:
        return self.y

    def batches(
        self,
        epoch: int,
        batch_size: int | None,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        start: int = 0,
    ) -> Iterator[Batch]:
        n = self.n_samples
        size = n if batch_size is None else min(batch_size, n)
        n_batches = self.n_batches(batch_size, drop_last)
        if batch_size is None and not shuffle:
            if start == 0:
                yield Batch(np.asarray(self.X), np.asarray(self.y), 0)
            return
        order = epoch_order(seed, epoch, n) if shuffle else None
        for b in range(start, n_batches):
            lo, hi = b * size, min((b + 1) * size, n)
            if order is None:
                yield Batch(np.asarray(self.X[lo:hi]), np.asarray(self.y[lo:hi]), b)
            else:
                idx = order[lo:hi]
                yield Batch(self.X[idx], self.y[idx], b)


def from_npy(
    x_path: str | os.PathLike[str], y_path: str | os.PathLike[str], *, mmap: bool = True
) -> ArraySource:
    """A source over a pair of ``.npy`` files, memory-mapped by default (never loaded whole)."""
    paths = [Path(x_path), Path(y_path)]
    for p in paths:
        if not p.exists():
            raise FileNotFoundError(f"data: no such file {str(p)!r}")
    mode = "r" if mmap else None
    try:
        X = np.load(paths[0], mmap_mode=mode, allow_pickle=False)
        y = np.load(paths[1], mmap_mode=mode, allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"data: could not read {describe(str(paths))}: {exc}") from None
    return ArraySource(X, y, description=f"{paths[0].name} + {paths[1].name}", owner="data")
