"""A validation split held out by a hash of (seed, row): deterministic, streaming, never in training."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from .base import Chunk, DataSource

__all__ = ["RowSplit", "holdout_mask", "split"]

_M1, _M2, _GOLDEN = (
    np.uint64(0xBF58476D1CE4E5B9),
    np.uint64(0x94D049BB133111EB),
    np.uint64(0x9E3779B97F4A7C15),
)


def holdout_mask(seed: int, rows: np.ndarray, fraction: float) -> np.ndarray:
    """True for the rows held out: ``u(seed, row) < fraction`` with ``u`` from splitmix64.

    Each row's side depends on nothing but the seed and the row's index, so any part of the
    data can be split without seeing the rest.
    """
    with np.errstate(over="ignore"):
        z = np.asarray(rows, dtype=np.uint64) + np.uint64(seed + 1) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return u < fraction


class RowSplit(DataSource):
    """The rows of ``base`` on one side of :func:`holdout_mask` (``held_out=True``: validation)."""

    def __init__(self, base: DataSource, *, fraction: float, seed: int, held_out: bool):
        self.base, self.fraction, self.seed, self.held_out = base, fraction, seed, held_out
        side = "validation" if held_out else "training"
        self.description = f"{base.description} ({side} {fraction if held_out else 1 - fraction:.0%})"
        self.feature_names = base.feature_names
        self.target, self.columns, self.notes = base.target, base.columns, base.notes
        self.excluded, self.n_targets, self.window = base.excluded, base.n_targets, base.window
        self._sizes: list[int] | None = None

    @property
    def n_features(self) -> int:
        return self.base.n_features

    @property
    def skipped(self) -> Mapping[str, int]:  # the base's, known after a pass
        return self.base.skipped

    def fingerprint(self) -> dict[str, Any]:
        return {**self.base.fingerprint(), "split": [self.fraction, self.seed, self.held_out]}

    def _keep(self, rows: np.ndarray) -> np.ndarray:
        m = holdout_mask(self.seed, rows, self.fraction)
        return m if self.held_out else ~m

    def shard_sizes(self) -> list[int]:
        if self._sizes is None:
            sizes = []
            for shard in range(len(self.base.shard_sizes())):
                span = self.base.shard_range(shard)
                if span is not None:  # the rows of the shard are a known range: none read
                    first, n = span
                    sizes.append(int(self._keep(np.arange(first, first + n)).sum()))
                else:
                    sizes.append(sum(int(self._keep(c.rows).sum()) for c in self.base.read_shard(shard)))
            self._sizes = sizes
        return self._sizes

    def read_shard(self, shard: int, skip: int = 0) -> Iterator[Chunk]:
        for chunk in self.base.read_shard(shard):
            c = chunk.take(self._keep(chunk.rows))
            if skip:
                cut = min(skip, len(c))
                c, skip = c.take(slice(cut, None)), skip - cut
            if len(c):
                yield c


def split(source: DataSource, fraction: float, seed: int) -> tuple[DataSource, DataSource]:
    """(training, validation) sources: rows held out by :func:`holdout_mask`
    (:meth:`DataSource.split <descend.data.base.DataSource.split>`)."""
    return source.split(fraction, seed)
