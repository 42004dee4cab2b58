"""Validation and conversion of targets for each task: regression values, binary labels, class indices.

Messages name the model, what is allowed, and the first offending value with its (0-based) row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_targets", "count_outputs"]


def _as_numeric(owner: str, y: Any, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise ValueError(f"{owner}: {what} must be numbers, got an array of dtype {y.dtype}")
    if y.size == 0:
        raise ValueError(f"{owner}: {what} are empty (shape {y.shape})")
    return y


def _labels_1d(owner: str, y: np.ndarray) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        return y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{owner}: labels must be a 1-D array (n_samples,), got shape {y.shape}")
    return y


def _first_bad(owner: str, rule: str, y: np.ndarray, ok: np.ndarray) -> None:
    if ok.all():
        return
    where = np.argwhere(~ok)[0]
    value = y[tuple(where)].item()
    at = f"row {where[0]}" if len(where) == 1 else f"row {where[0]}, column {where[1]}"
    raise ValueError(f"{owner}: {rule}, got {value!r} at {at}")


def _check_regression(owner: str, y: Any, n_outputs: int | None, dtype: np.dtype) -> np.ndarray:
    y = _as_numeric(owner, y, "targets")
    if y.ndim not in (1, 2):
        raise ValueError(
            f"{owner}: targets must be 1-D (n_samples,) or 2-D (n_samples, n_outputs), got shape {y.shape}"
        )
    if n_outputs is not None:
        k = 1 if y.ndim == 1 else y.shape[1]
        if k != n_outputs:
            raise ValueError(
                f"{owner}: targets have {k} output(s) (shape {y.shape}), expected n_outputs={n_outputs}"
            )
    with np.errstate(over="ignore"):  # a value too large for dtype becomes inf and is reported below
        out = y.astype(dtype)
    _first_bad(owner, f"targets must be finite {dtype} values", y, np.isfinite(out))
    return out


def _check_binary(owner: str, y: Any, n_outputs: int | None, dtype: np.dtype) -> np.ndarray:
    y = _labels_1d(owner, _as_numeric(owner, y, "labels"))
    if n_outputs is not None and n_outputs != 1:
        raise ValueError(f"{owner}: a binary model has n_outputs=1, got n_outputs={n_outputs}")
    _first_bad(owner, "labels must be 0 or 1", y, (y == 0) | (y == 1))
    return y.astype(dtype)


def _check_multiclass(owner: str, y: Any, n_outputs: int | None, dtype: np.dtype) -> np.ndarray:
    y = _labels_1d(owner, _as_numeric(owner, y, "labels"))
    ok = y >= 0
    if y.dtype.kind == "f":
        ok &= np.isfinite(y) & (y == np.floor(y))
    if n_outputs is None:
        rule = "labels must be integers 0..K-1"
    else:
        ok &= y < n_outputs
        rule = f"labels must be integers 0..{n_outputs - 1} (n_outputs={n_outputs})"
    _first_bad(owner, rule, y, ok)
    return y.astype(np.int64)


_CHECKS = {"regression": _check_regression, "binary": _check_binary, "multiclass": _check_multiclass}


def check_targets(owner: str, task: str, y: Any, n_outputs: int | None, dtype: np.dtype) -> np.ndarray:
    """``y`` checked for ``task`` and converted: ``dtype`` for regression/binary, int64 class indices."""
    return _CHECKS[task](owner, y, n_outputs, dtype)


def count_outputs(task: str, y: np.ndarray) -> int:
    """Number of model outputs for already checked targets ``y``."""
    if task == "multiclass":
        return int(y.max()) + 1
    if task == "binary" or y.ndim == 1:
        return 1
    return int(y.shape[1])
