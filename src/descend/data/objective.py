"""The full-batch objective over a source: the same bits from every kind of source.

A rule that needs the loss and gradient of the whole training set at trial points (L-BFGS in
:func:`~descend.fit`) asks :meth:`DataSource.objective <descend.data.DataSource.objective>`
for them. Where the rows live decides who computes (this process, or the Dask workers that
hold the partitions), not what is computed:

- the rows are taken in their stored order (no shuffling) and cut into *blocks* of
  :data:`BLOCK_ROWS` rows at fixed positions 0, ``BLOCK_ROWS``, ``2 * BLOCK_ROWS``, ... of
  that order, whatever the files, row groups or partitions are (a block that straddles two
  partitions is put together from both);
- each block gives a :class:`Partial`: its loss and gradient (the model's weighted means over
  the block, in the model's dtype) times its weight (rows, or the sum of its sample weights),
  in float64;
- the blocks are added in one fixed tree (:class:`TreeSum`): groups of :data:`FANIN`
  consecutive blocks, then groups of those sums, and so on, the last level left to right;
- the loss is the total weighted loss over the total weight, the gradient likewise, cast to
  the parameters' dtype.

Floating-point addition is not associative: any other grouping (per file, per partition)
would make the result depend on the layout. With this one, an array, a memory-mapped
``.npy`` file, a Parquet or CSV file and a Dask collection holding the same rows give the same
bits (tested), so an L-BFGS run is the same run on each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["BLOCK_ROWS", "FANIN", "Partial", "TreeSum", "add", "block_partial", "n_blocks", "tree_depth"]

#: rows of one block of the objective (the unit every source computes alike). Small enough for
#: a Dask task's temporaries (see ``descend.data.dask.TASK_ROWS``), and a divisor of
#: ``PART_ROWS``, the rows in which other sources deliver a full batch.
BLOCK_ROWS = 1 << 14
#: partial results added by one node of the tree
FANIN = 8


@dataclass
class Partial:
    """Some rows' contribution to a loss and gradient: sums (not means), so partials simply add."""

    grads: dict[str, np.ndarray]  # float64, gradient * weight
    loss: float  # loss * weight
    weight: float  # rows, or the sum of the sample weights
    rows: int

    def mean(self, params: dict[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
        """(loss, gradients) as means over the weight, each gradient in its parameter's dtype."""
        w = self.weight
        grads = {k: (self.grads[k] / w).astype(v.dtype, copy=False) for k, v in params.items()}
        return self.loss / w, grads


def add(*partials: Partial) -> Partial:
    """The partials added in the order given (the caller fixes it)."""
    first = partials[0]
    grads = {k: v.copy() for k, v in first.grads.items()}
    loss, weight, rows = first.loss, first.weight, first.rows
    for p in partials[1:]:
        for k, v in p.grads.items():
            grads[k] += v
        loss += p.loss
        weight += p.weight
        rows += p.rows
    return Partial(grads, loss, weight, rows)


def tree_depth(n: int) -> int:
    """Levels of groups below the root of the tree over ``n`` leaves."""
    depth = 0
    while n > FANIN:
        n = -(-n // FANIN)
        depth += 1
    return depth


class TreeSum:
    """The fixed tree over ``n`` leaves, added as they arrive in order (at most ``FANIN``
    partials held per level): the same sums, in the same order, as grouping a list of all
    ``n`` by ``FANIN`` again and again until ``FANIN`` or fewer are left, then adding those."""

    def __init__(self, n: int):
        if n < 1:
            raise ValueError("TreeSum: at least one leaf")
        self.n, self.seen = n, 0
        self.depth = tree_depth(n)
        self.levels: list[list[Partial]] = [[] for _ in range(self.depth + 1)]

    def push(self, partial: Partial) -> None:
        self.seen += 1
        self._put(partial, 0)

    def _put(self, partial: Partial, level: int) -> None:
        held = self.levels[level]
        held.append(partial)
        if level < self.depth and len(held) == FANIN:
            self.levels[level] = []
            self._put(add(*held), level + 1)

    def result(self) -> Partial:
        if self.seen != self.n:
            raise RuntimeError(f"TreeSum: {self.seen} leaves given, {self.n} expected")
        for level in range(self.depth):  # the last, short groups, lowest level first
            held = self.levels[level]
            if held:
                self.levels[level] = []
                self._put(add(*held), level + 1)
        return add(*self.levels[self.depth])


def n_blocks(n_rows: int) -> int:
    return max(1, -(-n_rows // BLOCK_ROWS))


def block_partial(
    model: Any,
    params: dict[str, np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray | None,
    prepare: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
) -> Partial:
    """One block's :class:`Partial`: ``prepare(X, y)`` gives the rows as the model takes them.

    A block whose weight is 0 still counts as a leaf of the tree (zeros), so the tree's shape
    depends only on the number of rows.
    """
    rows = int(X.shape[0])
    weight = float(rows) if w is None else float(np.sum(w, dtype=np.float64))
    if weight == 0.0:
        return Partial({k: np.zeros(v.shape) for k, v in params.items()}, 0.0, 0.0, rows)
    Xm, ym = prepare(X, y)
    with np.errstate(over="ignore", invalid="ignore"):  # a blow-up shows as inf for the caller
        loss, grads = model.loss_and_grad(params, Xm, ym, w)
        sums = {k: np.asarray(grads[k], dtype=np.float64) * weight for k in params}
        return Partial(sums, float(loss) * weight, weight, rows)


def in_process(source: Any, model: Any, params: dict[str, np.ndarray], prep: Any, encoded: bool) -> Partial:
    """The objective of a source whose rows this process reads (:meth:`DataSource.batches`:
    a full batch comes in parts of ``PART_ROWS`` rows at fixed positions, each cut into blocks)."""
    from .base import PART_ROWS

    assert PART_ROWS % BLOCK_ROWS == 0, "blocks must not straddle the parts a source delivers"
    tree = TreeSum(n_blocks(source.n_samples))
    for batch in source.batches(0, None, shuffle=False):
        for lo in range(0, batch.size, BLOCK_ROWS):
            hi = min(lo + BLOCK_ROWS, batch.size)
            w = None if batch.w is None else batch.w[lo:hi]
            where = None if batch.lines is None else _shifted(batch.where, lo)

            def prepare(X: np.ndarray, y: np.ndarray, where: Any = where) -> tuple[np.ndarray, np.ndarray]:
                return prep(X, y, encoded, where)

            tree.push(block_partial(model, params, batch.X[lo:hi], batch.y[lo:hi], w, prepare))
    return tree.result()


def _shifted(where: Callable[[int], str], offset: int) -> Callable[[int], str]:
    return lambda i: where(offset + i)


def concat_rows(pieces: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray | None]]) -> tuple[Any, Any, Any]:
    """One block from pieces of consecutive partitions (a block that straddles a boundary)."""
    pieces = list(pieces)
    if len(pieces) == 1:
        return pieces[0]
    X = np.concatenate([p[0] for p in pieces])
    y = np.concatenate([p[1] for p in pieces])
    ws = [p[2] for p in pieces]
    w = None if all(v is None for v in ws) else np.concatenate(ws)  # a source weights all rows or none
    return X, y, w
