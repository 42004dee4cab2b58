"""Training data: batching strategies and data sources behind one interface."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .arrays import ArraySource, check_arrays, from_npy
from .base import Batch, DataSource, check_batching, epoch_order

__all__ = [
    "ArraySource",
    "Batch",
    "DataSource",
    "as_source",
    "check_arrays",
    "check_batching",
    "epoch_order",
    "from_npy",
    "open",
]


def as_source(data: Any, *, owner: str = "fit", name: str = "data") -> DataSource:
    """A :class:`DataSource` from a source, or from an ``(X, y)`` pair of arrays."""
    if isinstance(data, DataSource):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return ArraySource(data[0], data[1], owner=owner)
    raise TypeError(
        f"{owner}: {name} must be an (X, y) pair of arrays or a descend.data source, "
        f"got {type(data).__name__}"
    )


def open(path: str | os.PathLike[str], *, target: str | os.PathLike[str] | None = None) -> DataSource:
    """Open training data from files without loading them whole.

    ``X.npy`` with ``target="y.npy"``: a memory-mapped pair. (Parquet and CSV streaming plug
    in here through the same interface.)
    """
    p = Path(path)
    if p.suffix == ".npy":
        if target is None:
            raise ValueError(
                f"data.open: a .npy feature file needs target='<targets>.npy', got {str(p)!r} alone"
            )
        return from_npy(p, target)
    raise ValueError(f"data.open: unsupported file type {p.suffix!r} for {str(p)!r}; supported: .npy")
