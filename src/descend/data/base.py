"""The one interface every kind of training data is read through: seeded batches per epoch."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import check_bool, check_int, describe

__all__ = ["Batch", "DataSource", "check_batching", "epoch_order"]


@dataclass(frozen=True)
class Batch:
    """One batch: features, targets, its index within the epoch and how many rows it holds."""

    X: np.ndarray
    y: np.ndarray
    index: int

    @property
    def size(self) -> int:
        return int(self.X.shape[0])


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The sample order of ``epoch``: a permutation drawn from a generator seeded by (seed, epoch).

    Deriving each epoch's order from ``(seed, epoch)`` means a run can resume at any epoch
    without replaying earlier draws, and the global NumPy random state is never touched.
    """
    rng = np.random.default_rng([seed, 1, epoch])
    return rng.permutation(n)


def check_batching(
    owner: str, batch_size: Any, n_samples: int | None, drop_last: Any
) -> tuple[int | None, bool]:
    """Validate ``batch_size`` (None = full batch, 1 = stochastic, B = mini-batch) and ``drop_last``."""
    drop_last = check_bool(owner, "drop_last", drop_last)
    if batch_size is None:
        return None, drop_last
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(
            f"{owner}: batch_size must be None (full batch), 1 (stochastic) or an integer B >= 1 "
            f"(mini-batch), got {describe(batch_size)}"
        )
    batch_size = check_int(owner, "batch_size", batch_size, low=1)
    if drop_last and n_samples is not None and batch_size > n_samples:
        raise ValueError(
            f"{owner}: drop_last=True with batch_size={batch_size} > {n_samples} samples leaves no batch"
        )
    return batch_size, drop_last


class DataSource:
    """Base class of data sources.

    A source knows its width and, when it can, its length; :meth:`batches` yields the batches of
    one epoch in an order fixed by ``(seed, epoch)``, starting at batch ``start`` so that an
    interrupted epoch can be resumed exactly.
    """

    #: short human description, used in messages and run configs
    description: str = "data"

    @property
    def n_samples(self) -> int:
        raise NotImplementedError

    @property
    def n_features(self) -> int:
        raise NotImplementedError

    @property
    def targets(self) -> np.ndarray | None:
        """All targets when cheap to get (in-memory sources), else None."""
        return None

    def fingerprint(self) -> dict[str, Any]:
        """What identifies this data for checkpoint compatibility."""
        return {"description": self.description, "n_samples": self.n_samples, "n_features": self.n_features}

    def n_batches(self, batch_size: int | None, drop_last: bool = False) -> int:
        n = self.n_samples
        if batch_size is None or batch_size >= n:
            return 0 if (drop_last and batch_size is not None and batch_size > n) else 1
        return n // batch_size if drop_last else -(-n // batch_size)

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
        raise NotImplementedError
