"""Seeded synthetic datasets written to Parquet, CSV or .npy in bounded memory (tests, benchmarks, demos)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import check_choice, check_int

__all__ = ["FORMATS", "TASKS", "make_data", "synthetic_rows"]

TASKS = ("classification", "regression")
FORMATS = ("parquet", "csv", "npy")
#: rows generated (and written as one Parquet row group) at a time
BLOCK_ROWS = 1 << 16


def _scales(d: int) -> np.ndarray:
    """Per-column scale: every third column ill-scaled (x100, x0.01, ...) so standardizing matters."""
    s = np.ones(d)
    s[0::3] = 100.0
    s[1::6] = 0.01
    return s


def synthetic_rows(
    rows: int, features: int, task: str, seed: int, classes: int = 2
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Blocks ``(X float32, y)`` of a seeded problem, the same whatever the block size consumer.

    Features are standard normal times an ill-scaling per column plus an offset; the target is
    a noisy linear function (regression) or a label drawn from a softmax over linear scores.
    """
    rng_w = np.random.default_rng([seed, 21])
    k = 1 if task == "regression" else (1 if classes == 2 else classes)
    w = rng_w.normal(size=(features, k)) / np.sqrt(features)
    scale, offset = _scales(features), rng_w.normal(size=features)
    for b, lo in enumerate(range(0, rows, BLOCK_ROWS)):
        n = min(BLOCK_ROWS, rows - lo)
        rng = np.random.default_rng([seed, 22, b])
        Z = rng.normal(size=(n, features))
        z = Z @ w
        X = (Z * scale + offset).astype(np.float32)
        if task == "regression":
            y = (z[:, 0] * 3.0 + 1.0 + 0.3 * rng.normal(size=n)).astype(np.float64)
        elif classes == 2:
            y = (rng.random(n) < 1 / (1 + np.exp(-2.0 * z[:, 0]))).astype(np.int64)
        else:
            logits = 2.0 * z
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            y = (rng.random((n, 1)) > np.cumsum(p, axis=1)).sum(1).astype(np.int64)
        yield X, y


def make_data(
    out: str | os.PathLike[str],
    *,
    rows: int,
    features: int,
    task: str = "classification",
    format: str = "parquet",
    seed: int = 0,
    classes: int = 2,
    labels: Sequence[str] | None = None,
) -> list[Path]:
    """Write a seeded synthetic dataset; returns the files written.

    Columns ``x0..x{D-1}`` (float32) and ``y``. ``labels`` names the classes (e.g.
    ``["stay", "churn"]``) so the target is stored as strings. Parquet is written in row groups of
    65,536 rows; ``npy`` writes ``OUT`` (features) and ``OUT`` with ``_y`` before the suffix.
    """
    owner = "make_data"
    rows = check_int(owner, "rows", rows, low=1)
    features = check_int(owner, "features", features, low=1)
    task = check_choice(owner, "task", task, TASKS)
    format = check_choice(owner, "format", format, FORMATS)
    seed = check_int(owner, "seed", seed, low=0)
    classes = check_int(owner, "classes", classes, low=2)
    if labels is not None:
        labels = [str(v) for v in labels]
        if len(labels) != classes or len(set(labels)) != classes:
            raise ValueError(f"{owner}: labels must be {classes} distinct names, got {labels!r}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    names = [f"x{j}" for j in range(features)]
    blocks = synthetic_rows(rows, features, task, seed, classes)

    def target(y: np.ndarray) -> Any:
        return y if labels is None or task == "regression" else np.asarray(labels, dtype=object)[y]

    if format in ("parquet", "csv"):
        import pyarrow as pa
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        sink: Any = None
        if format == "parquet":

            def open_writer(schema: Any) -> Any:
                return pq.ParquetWriter(out, schema)

            def write(writer: Any, table: Any) -> None:
                writer.write_table(table, row_group_size=BLOCK_ROWS)  # one row group per block
        else:
            # pyarrow writes each float32 as its shortest round-trip text: the file holds the same values
            gz = out.name.endswith(".gz")
            sink = pa.CompressedOutputStream(str(out), "gzip") if gz else pa.OSFile(str(out), "wb")

            def open_writer(schema: Any) -> Any:
                return pcsv.CSVWriter(sink, schema, write_options=pcsv.WriteOptions(quoting_style="none"))

            def write(writer: Any, table: Any) -> None:
                writer.write_table(table)

        writer = None
        try:
            for X, y in blocks:
                cols = {c: X[:, j] for j, c in enumerate(names)}
                cols["y"] = target(y)
                table = pa.table(cols)
                writer = writer or open_writer(table.schema)
                write(writer, table)
        finally:
            if writer is not None:
                writer.close()
            if sink is not None:
                sink.close()
        return [out]
    # npy: preallocated memory-mapped files filled block by block
    y_path = out.with_name(out.stem + "_y" + out.suffix)
    Xm = np.lib.format.open_memmap(out, mode="w+", dtype=np.float32, shape=(rows, features))
    y_dtype = np.float64 if task == "regression" else np.int64
    ym = np.lib.format.open_memmap(y_path, mode="w+", dtype=y_dtype, shape=(rows,))
    lo = 0
    for X, y in blocks:
        Xm[lo : lo + len(X)] = X
        ym[lo : lo + len(X)] = y
        lo += len(X)
    Xm.flush()
    ym.flush()
    del Xm, ym
    return [out, y_path]
