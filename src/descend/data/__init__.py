"""Training data: batching strategies and data sources behind one interface."""

from __future__ import annotations

import codecs
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validation import check_choice, check_int
from ..errors import ParameterError
from .arrays import ArraySource, check_arrays, from_npy
from .base import (
    PART_ROWS,
    WINDOW_ROWS,
    Batch,
    Chunk,
    DataError,
    DataSource,
    Summary,
    check_batching,
    epoch_order,
)
from .dask import DaskSource, from_dask, is_dask_collection
from .files import ON_BAD_ROWS, SUPPORTED, CSVSource, FileChangedError, ParquetSource, _expand, check_encoding
from .split import holdout_mask, split
from .synth import make_data

__all__ = [
    "PART_ROWS",
    "WINDOW_ROWS",
    "ArraySource",
    "Batch",
    "CSVSource",
    "Chunk",
    "DaskSource",
    "DataError",
    "DataSource",
    "FileChangedError",
    "ParquetSource",
    "Summary",
    "as_source",
    "check_arrays",
    "check_batching",
    "epoch_order",
    "from_dask",
    "from_npy",
    "holdout_mask",
    "make_data",
    "open",
    "split",
]


def as_source(data: Any, *, owner: str = "fit", name: str = "data") -> DataSource:
    """A :class:`DataSource` from a source, or from an ``(X, y)`` pair of arrays."""
    if isinstance(data, DataSource):
        return data
    if isinstance(data, (tuple, list)) and len(data) in (2, 3) and is_dask_collection(data[0]):
        return from_dask(tuple(data), owner=owner)  # dask arrays: gradients computed on the workers
    if is_dask_collection(data):
        raise TypeError(
            f"{owner}: {name} is a dask collection; pass (dask_X, dask_y) arrays or "
            "descend.data.from_dask(ddf, target='y') for a dask DataFrame"
        )
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return ArraySource(data[0], data[1], owner=owner)
    if isinstance(data, (tuple, list)) and len(data) == 3:  # (X, y, sample_weight)
        return ArraySource(data[0], data[1], owner=owner, sample_weight=data[2])
    raise TypeError(
        f"{owner}: {name} must be an (X, y) pair of arrays or a descend.data source, "
        f"got {type(data).__name__}"
    )


def open(
    path: str | os.PathLike[str],
    *,
    target: str | os.PathLike[str] | None = None,
    features: Sequence[str] | None = None,
    drop: Sequence[str] | None = None,
    format: str | None = None,
    dtype: str | None = None,
    on_bad_rows: str = "raise",
    window: int = WINDOW_ROWS,
    encoding: str = "utf-8",
) -> DataSource:
    """Open training data from files without loading them whole.

    - Parquet: one file, a directory of files, or a glob (``"data/*.parquet"``); read by row
      group, only the ``features`` and ``target`` columns.
    - CSV with a header row (``.csv``; ``.tsv`` tab-separated; either also compressed as
      ``.gz``, ``.bz2``, ``.zst`` or ``.lz4``), streamed by pyarrow. Quoted fields may hold
      line breaks; blank lines are skipped.
    - ``X.npy`` with ``target="y.npy"``: a memory-mapped pair.

    ``target`` names the target column. ``features=None`` takes every other column but the
    identifiers, which must all be numeric (a non-numeric one is an error naming it: choose
    columns with ``features``, or leave some out with ``drop=[...]``). An identifier is a column
    named ``id``, ``*_id``, ``*Id``/``*ID`` (camelCase), ``uuid`` or ``guid``, a text column whose
    values all differ, or an integer column counting the rows (0, 1, 2, ... or 1, 2, 3, ...):
    the rule is in :mod:`descend.data.columns`. Each one left out is named, with the reason, in
    ``source.notes`` (and ``run.notes`` after ``fit``) and ``source.excluded``; name it in
    ``features=[...]`` to train on it. ``source.columns`` lists every column of the files.
    ``dtype`` of the features: ``"float32"``, ``"float64"`` or None (float64 for CSV and for
    64-bit Parquet columns, else float32). ``on_bad_rows="raise"`` stops at the first missing or
    non-numeric value naming the file, row and column; ``"skip"`` drops such rows and counts them
    per file (``source.skipped``). ``window``: rows whose order is shuffled together.
    ``encoding`` of a CSV's text: UTF-8 by default; any ASCII-compatible codec (``"latin-1"``,
    ``"cp1252"``, ...). Text that does not decode is an error naming the file and row.

    Files are read as they were when opened: one that changes afterwards (truncated, appended,
    rewritten, other row groups) raises :class:`FileChangedError` naming it, before an epoch or
    as soon as a read meets it; open it again to train on its new contents.
    """
    check_choice("data.open", "on_bad_rows", on_bad_rows, ON_BAD_ROWS)
    window = check_int("data.open", "window", window, low=1)
    if dtype is not None:
        dtype = check_choice(
            "data.open",
            "dtype",
            str(np.dtype(dtype)) if not isinstance(dtype, str) else dtype,
            ("float32", "float64"),
        )
    if format is not None:
        format = check_choice("data.open", "format", format, ("parquet", "csv", "npy"))
    encoding = check_encoding(encoding)
    files, kind = _expand(path)
    kind = format or kind
    if kind != "csv" and codecs.lookup(encoding).name != "utf-8":
        raise ParameterError(
            f"data.open: encoding applies to CSV files, not to {os.fspath(path)!r}, got {encoding!r}",
            owner="data.open",
            param="encoding",
            value=encoding,
        )
    if drop is not None:
        if isinstance(drop, str) or not all(isinstance(c, str) for c in drop):
            raise ParameterError(
                f"data.open: drop must be a list of column names, got {drop!r}",
                owner="data.open",
                param="drop",
                value=drop,
            )
        if kind == "npy":
            raise ParameterError(
                "data.open: drop=[...] names columns of a Parquet or CSV file; a .npy pair has none",
                owner="data.open",
                param="drop",
                value=list(drop),
            )
    if kind == "npy":
        if target is None:
            raise ValueError(
                f"data.open: a .npy feature file needs target='<targets>.npy', got {os.fspath(path)!r} alone"
            )
        return from_npy(files[0], target)
    if kind not in ("parquet", "csv"):
        raise ValueError(
            f"data.open: unsupported file type {''.join(files[0].suffixes[-2:])!r} for "
            f"{os.fspath(path)!r}; supported: {SUPPORTED} (or pass format=)"
        )
    if target is None or not isinstance(target, str):
        raise TypeError(
            f"data.open: target must name the target column of {os.fspath(path)!r}, got {target!r}"
        )
    kw: dict[str, Any] = dict(
        target=target, features=features, dtype=dtype, on_bad_rows=on_bad_rows, window=window, drop=drop
    )
    if kind == "csv":
        return CSVSource(files, encoding=encoding, **kw)
    return ParquetSource(files, **kw)
