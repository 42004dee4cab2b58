"""Columns by name: named tables (DataFrames, Arrow tables, dicts of columns) as feature matrices,
matched to a model's feature names; and the rule that tells identifier columns from features.

**Named tables** are duck-typed, so that no table library is a dependency: a ``dict`` of
columns (string keys), anything with ``column_names`` and ``column(name)`` (a pyarrow
``Table`` or ``RecordBatch``), or anything with a ``columns`` list of strings and ``X[name]``
(a pandas or polars ``DataFrame``). A table whose column names are not all strings (pandas'
default ``RangeIndex``) is read by position, as a plain array.

**Identifiers** (:func:`id_reason`) are left out of the features that ``ds.data.open`` takes
by default (``features=None``), each with a note saying why; ``features=[...]`` names the
features instead, and ``drop=[...]`` leaves out more. A column is an identifier when

- its name says so: ``id``, ``uuid`` or ``guid`` in any case, a name ending in ``_id``, ``-id``,
  ``.id`` or `` id`` in any case (``customer_id``, ``Order ID``), or a camelCase name ending in
  ``Id`` or ``ID`` after a lower-case letter or digit (``customerId``, ``userID``);
- or its values say so, judged on the rows read when the file is opened (at least
  :data:`MIN_KEY_ROWS` of them): a text column whose values all differ (a key), or an integer
  column that counts the rows, ``0, 1, 2, ...`` or ``1, 2, 3, ...`` (a row number). A row
  count is kept, with a note, when no other numeric feature would remain (toy data whose
  ``x`` is ``0, 1, 2, ...``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import DataError

__all__ = [
    "MIN_KEY_ROWS",
    "check_columns",
    "column_names",
    "id_name",
    "id_reason",
    "key_reason",
    "named_matrix",
    "numeric_column",
    "series_name",
]

#: the fewest rows on which a column's values may mark it as a key or a row number
MIN_KEY_ROWS = 10
_ID_NAMES = ("id", "uuid", "guid")
_ID_SUFFIXES = ("_id", "-id", ".id", " id")


def id_name(name: str) -> bool:
    """Whether ``name`` is an identifier's name (the rule in the module docstring).

    >>> [id_name(c) for c in ("id", "ID", "customer_id", "customerId", "userID", "paid", "valid")]
    [True, True, True, True, True, False, False]
    """
    n = str(name).strip()
    low = n.lower()
    if low in _ID_NAMES or low.endswith(_ID_SUFFIXES):
        return True
    return len(n) > 2 and n.endswith(("Id", "ID")) and (n[-3].islower() or n[-3].isdigit())


def key_reason(values: Any, kind: str) -> str | None:
    """Why a column whose first rows hold ``values`` is a key rather than a feature, or None.

    ``kind`` is ``"text"`` (a key: every value differs) or ``"integer"`` (a row number: the
    values count the rows from 0 or 1). Fewer than :data:`MIN_KEY_ROWS` values decide nothing.
    """
    vals = [v for v in values if v is not None]
    if len(vals) < MIN_KEY_ROWS:
        return None
    if kind == "text":
        if len(set(vals)) == len(vals):
            return f"a text column whose values all differ (a key; {len(vals)} rows checked)"
        return None
    if kind == "integer" and len(vals) == len(values):
        a = np.asarray(vals)
        if a.dtype.kind not in "iu":
            return None
        for start in (0, 1):
            if np.array_equal(a, np.arange(start, start + len(a))):
                return f"an integer column that counts the rows ({start}, {start + 1}, {start + 2}, ...)"
    return None


def id_reason(name: str, values: Any = None, kind: str | None = None) -> str | None:
    """Why column ``name`` (whose first rows hold ``values`` of ``kind``) is an identifier, or None."""
    if id_name(name):
        return "an identifier by its name"
    if values is not None and kind is not None:
        why = key_reason(values, kind)
        if why is not None:
            return f"an identifier: {why}"
    return None


# ---------------------------------------------------------------------------------- named tables
def column_names(X: Any) -> tuple[str, ...] | None:
    """The column names of a named table, in order; None for arrays (and tables whose names are
    not all strings, which are read by position)."""
    if isinstance(X, np.ndarray):
        return None
    if isinstance(X, dict):
        names = tuple(X)
    elif isinstance(getattr(X, "column_names", None), (list, tuple)) and callable(getattr(X, "column", None)):
        names = tuple(X.column_names)  # pyarrow Table / RecordBatch
    else:
        cols = getattr(X, "columns", None)
        if cols is None or callable(cols) or not hasattr(X, "__getitem__"):
            return None
        try:
            names = tuple(cols)
        except TypeError:
            return None
    if not all(isinstance(c, str) for c in names):
        return None
    return names


def series_name(y: Any) -> str | None:
    """The name of a named target column (a pandas Series, a polars Series), else None."""
    name = getattr(y, "name", None)
    return name if isinstance(name, str) and not isinstance(y, np.ndarray) else None


def _column(X: Any, name: str) -> Any:
    if isinstance(X, dict):
        return X[name]
    if callable(getattr(X, "column", None)) and not hasattr(X, "iloc"):
        return X.column(name)
    return X[name]


def numeric_column(values: Any, *, owner: str, name: str) -> np.ndarray:
    """One column of a named table as a float64 array, NaN where a value is missing; a column
    that is not numeric is a :class:`DataError` naming it."""
    pa_type = getattr(values, "type", None)
    if pa_type is not None and callable(getattr(values, "to_numpy", None)) and hasattr(values, "null_count"):
        import pyarrow as pa

        if not (
            pa.types.is_integer(pa_type) or pa.types.is_floating(pa_type) or pa.types.is_boolean(pa_type)
        ):
            raise DataError(f"{owner}: column {name!r} is not numeric ({pa_type})", column=name)
        if pa.types.is_boolean(pa_type):
            values = values.cast(pa.int8())
        return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
    try:  # pandas: nullable integer and boolean columns give NaN for their missing values
        a = values.to_numpy(dtype=np.float64, na_value=np.nan)
    except (AttributeError, TypeError, ValueError):
        a = np.asarray(values)
    a = np.asarray(a)
    if a.ndim != 1:
        raise DataError(f"{owner}: column {name!r} must be 1-D, got shape {a.shape}", column=name)
    if a.dtype.kind not in "biuf":
        example = next((v for v in a.tolist() if not isinstance(v, (int, float))), None)
        shown = f" (e.g. {example!r})" if example is not None else ""
        raise DataError(f"{owner}: column {name!r} is not numeric: dtype {a.dtype}{shown}", column=name)
    return a.astype(np.float64, copy=False)


def check_columns(
    names: Sequence[str],
    wanted: Sequence[str],
    *,
    owner: str,
    ignorable: Sequence[str] = (),
    where: str = "the data",
    advice: str = "leave the others out (e.g. select X[run.feature_names])",
) -> None:
    """Refuse columns ``names`` (of ``where``) that cannot be matched to the features ``wanted``
    by name: duplicate names, a wanted column missing (every one named), or a column that is
    neither wanted nor ``ignorable`` nor an identifier by its name (:func:`id_name`)."""
    dupes = sorted({c for c in names if list(names).count(c) > 1})
    if dupes:
        raise DataError(
            f"{owner}: {where} has duplicate column names {', '.join(map(repr, dupes))}", column=dupes[0]
        )
    have = set(names)
    missing = [c for c in wanted if c not in have]
    if missing:
        raise DataError(
            f"{owner}: {where} lacks the feature column(s) {', '.join(map(repr, missing))} that the "
            f"model was trained on; it has {', '.join(map(repr, names))}",
            column=missing[0],
        )
    known = set(wanted) | set(ignorable)
    extra = [c for c in names if c not in known and not id_name(c)]
    if extra:
        raise DataError(
            f"{owner}: {where} has column(s) {', '.join(map(repr, extra))} that were not in the "
            f"training data; the model's features are {', '.join(map(repr, wanted))}: {advice}",
            column=extra[0],
        )


def named_matrix(
    X: Any,
    wanted: Sequence[str] | None,
    *,
    owner: str,
    ignorable: Sequence[str] = (),
    check_finite: bool = True,
) -> np.ndarray:
    """The columns ``wanted`` of the named table ``X`` (all of its columns when None), in that
    order, as a float64 matrix.

    A wanted column that ``X`` lacks is a :class:`DataError` naming every missing one. A column
    of ``X`` that is not wanted is ignored only when it is in ``ignorable`` (the training data's
    target and other columns) or is an identifier by its name (:func:`id_name`); any other is a
    :class:`DataError` naming it, so that a table meant for another model is not read silently.
    ``check_finite``: a missing or non-finite value is an error naming its (0-based) row and
    column.
    """
    names = column_names(X)
    if names is None:
        raise TypeError(f"{owner}: expected a table with column names, got {type(X).__name__}")
    if wanted is None:
        check_columns(names, names, owner=owner)
        wanted = names
    else:
        check_columns(names, wanted, owner=owner, ignorable=ignorable)
    cols = [numeric_column(_column(X, c), owner=owner, name=c) for c in wanted]
    n = {len(c) for c in cols}
    if len(n) > 1:
        raise DataError(f"{owner}: the columns have different lengths {sorted(n)}")
    out = np.column_stack(cols) if cols else np.empty((0, 0))
    if check_finite:
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(out)
        if bad.any():
            r, j = (int(v) for v in np.argwhere(bad)[0])
            what = "a missing value" if np.isnan(out[r, j]) else f"the value {out[r, j]!r}"
            raise DataError(f"{owner}: row {r}, column {wanted[j]!r}: {what}", row=r, column=wanted[j])
    return out
