"""In-memory and memory-mapped arrays as a data source."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import check_choice, check_int, describe
from .base import PART_ROWS, WINDOW_ROWS, Batch, Chunk, DataSource, Summary, _Accumulator, epoch_order
from .columns import column_names, named_matrix, series_name
from .split import holdout_mask

__all__ = ["ArraySource", "check_arrays", "from_npy"]

#: rows checked at a time for NaN/inf, so a memory-mapped file is never loaded whole
_CHECK_CHUNK = 1 << 16
#: rows per shard when arrays are read in the windowed (file-like) order
SHARD_ROWS = 1 << 16


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
    if y.dtype.kind not in "biufUSO":
        raise TypeError(f"{owner}: {y_name} must hold numbers or class labels, got dtype {y.dtype}")
    if y.dtype == object and not all(isinstance(v, (str, int, float, np.number)) for v in y.ravel()[:1000]):
        raise TypeError(f"{owner}: {y_name} must hold numbers or class labels (strings), got dtype object")
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


def _check_weights(owner: str, w: Any, n: int) -> np.ndarray:
    w = np.asarray(w)
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"{owner}: sample_weight must have one value per row ({n}), got shape {w.shape}")
    if w.dtype.kind not in "biuf":
        raise TypeError(f"{owner}: sample_weight must hold numbers, got dtype {w.dtype}")
    w = w.astype(np.float64)
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        r = int(np.argmax(bad))
        raise ValueError(f"{owner}: sample_weight must be finite and >= 0, got {w[r]!r} at row {r}")
    if not w.sum() > 0:
        raise ValueError(f"{owner}: sample_weight must not be all zero")
    return w


class ArraySource(DataSource):
    """Arrays (or memory-mapped arrays) ``X`` (n, d) and ``y`` (n,) or (n, k) as a data source.

    The arrays are checked once, at construction (NaN/inf, shapes, emptiness), and never copied
    except batch by batch. ``X`` may be a named table (a pandas DataFrame, a pyarrow Table, a
    dict of columns: :mod:`descend.data.columns`): its columns are read into one float64 matrix
    and their names kept as ``feature_names``, as is the name of a named ``y`` (a pandas Series)
    as ``target``. ``order="full"`` (in-memory default) shuffles an epoch by one
    permutation of every row; ``order="windowed"`` uses the file order of
    :mod:`descend.data.base` over shards of ``shard_rows`` consecutive rows (the default for
    memory-mapped files, and the way to reproduce a file run in memory: a Parquet file written
    with row groups of ``shard_rows`` rows gives the same batches).

    >>> import numpy as np
    >>> src = ArraySource(np.arange(10.0).reshape(5, 2), np.arange(5))
    >>> [b.y.tolist() for b in src.batches(0, 2, shuffle=False)]
    [[0, 1], [2, 3], [4]]
    """

    def __init__(
        self,
        X: Any,
        y: Any,
        *,
        description: str = "arrays",
        owner: str = "ArraySource",
        order: str = "full",
        shard_rows: int = SHARD_ROWS,
        window: int = WINDOW_ROWS,
        sample_weight: Any = None,
    ):
        names = column_names(X)
        if names is not None:  # a DataFrame, an Arrow table, a dict of columns: names kept
            X = named_matrix(X, None, owner=owner, check_finite=False)
            self.feature_names = self.columns = names
        self.target = series_name(y)
        if self.target is not None and self.columns is not None:
            self.columns = (*self.columns, self.target)
        self.X, self.y = check_arrays(owner, X, y)
        self.w = None if sample_weight is None else _check_weights(owner, sample_weight, self.X.shape[0])
        self.description = description
        self.order = check_choice(owner, "order", order, ("full", "windowed"))
        self.shard_rows = check_int(owner, "shard_rows", shard_rows, low=1)
        self.window = check_int(owner, "window", window, low=1)
        self.rows: np.ndarray | None = None  # a subset of rows (a held-out split), else all

    @classmethod
    def _trusted(cls, X: np.ndarray, y: np.ndarray, description: str) -> ArraySource:
        """A source over arrays already checked (e.g. targets converted by a model)."""
        src = cls.__new__(cls)
        src.X, src.y, src.description = X, y, description
        src.order, src.shard_rows, src.window, src.rows, src.w = "full", SHARD_ROWS, WINDOW_ROWS, None, None
        return src

    def subset(self, rows: np.ndarray, description: str) -> ArraySource:
        """The same arrays restricted to ``rows`` (sorted indices), without copying them."""
        src = copy.copy(self)
        src.rows = np.asarray(rows, dtype=np.int64)
        src.description = description
        return src

    def with_targets(self, y: np.ndarray) -> ArraySource:
        """The same rows with targets ``y`` in place of the stored ones (all rows, in order, as
        the model takes them: ``fit`` encodes, checks and scales in-memory targets once and
        trains on this copy), not checked again; ``X`` and the weights are shared."""
        src = copy.copy(self)
        src.y = y
        return src

    def split(self, fraction: float, seed: int) -> tuple[ArraySource, ArraySource]:
        """(training, validation): the rows :func:`~descend.data.split.holdout_mask` holds out,
        as index arrays into the same arrays (nothing copied or re-read)."""
        n = self.n_samples
        rows = np.arange(n) if self.rows is None else self.rows
        m = holdout_mask(seed, rows, fraction)
        if m.all() or not m.any():
            raise ValueError(
                f"fit: validation={fraction} holds out {int(m.sum())} of {n} rows; "
                "need at least one row on each side"
            )
        train = self.subset(rows[~m], f"{self.description} (training {1 - fraction:.0%})")
        val = self.subset(rows[m], f"{self.description} (validation {fraction:.0%})")
        return train, val

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0] if self.rows is None else len(self.rows))

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def targets(self) -> np.ndarray:
        return self.y if self.rows is None else self.y[self.rows]

    def fingerprint(self) -> dict[str, Any]:
        fp = super().fingerprint()
        if self.feature_names is not None:  # a table's columns in another order are other data
            fp["features"] = list(self.feature_names)
        if self.order == "windowed":
            fp.update(order="windowed", shard_rows=self.shard_rows, window=self.window)
        return fp

    def shard_sizes(self) -> list[int]:
        n, s = self.n_samples, self.shard_rows
        return [min(s, n - lo) for lo in range(0, n, s)]

    def read_shard(self, shard: int, skip: int = 0) -> Iterator[Chunk]:
        lo = shard * self.shard_rows + skip
        hi = min((shard + 1) * self.shard_rows, self.n_samples)
        w = self.w
        if self.rows is None:
            rows = np.arange(lo, hi)
            part_w = None if w is None else w[lo:hi]
            yield Chunk(np.asarray(self.X[lo:hi]), np.asarray(self.y[lo:hi]), rows, self.description, part_w)
        else:
            rows = self.rows[lo:hi]
            yield Chunk(self.X[rows], self.y[rows], rows, self.description, None if w is None else w[rows])

    def summarize(self, *, classes: bool, moments: bool, targets: bool = False) -> Summary:
        acc = _Accumulator(self.n_features, classes, moments, targets)
        n = self.n_samples
        for lo in range(0, n, _CHECK_CHUNK):  # in chunks: no full-size float64 copy
            if self.rows is None:
                acc.add(
                    np.asarray(self.X[lo : lo + _CHECK_CHUNK]), np.asarray(self.y[lo : lo + _CHECK_CHUNK])
                )
            else:
                idx = self.rows[lo : lo + _CHECK_CHUNK]
                acc.add(self.X[idx], self.y[idx])
        return acc.result()

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
        if self.order == "windowed":
            yield from super().batches(
                epoch, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last, start=start
            )
            return
        n = self.n_samples
        size = n if batch_size is None else min(batch_size, n)
        n_batches = self.n_batches(batch_size, drop_last)
        order = epoch_order(seed, epoch, n) if shuffle else None
        if self.rows is not None:
            order = self.rows if order is None else self.rows[order]
        for b in range(start, n_batches):
            lo, hi = b * size, min((b + 1) * size, n)
            parts = -(-(hi - lo) // PART_ROWS)
            for j in range(parts):
                a, z = lo + j * PART_ROWS, min(lo + (j + 1) * PART_ROWS, hi)
                w = self.w
                if order is None:
                    part_w = None if w is None else w[a:z]
                    yield Batch(np.asarray(self.X[a:z]), np.asarray(self.y[a:z]), b, j, parts, part_w)
                else:
                    idx = order[a:z]
                    yield Batch(self.X[idx], self.y[idx], b, j, parts, None if w is None else w[idx])


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
    return ArraySource(
        X,
        y,
        description=f"{paths[0].name} + {paths[1].name}",
        owner="data",
        order="windowed" if mmap else "full",
    )
