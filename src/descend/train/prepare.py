"""What fit() learns about the data before training: class labels, feature scaling and target
scaling; and the check that the data fit the model's dtype."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data import DataError, DataSource
from ..data._moments import scale_or_one, varies

__all__ = ["Labels", "Preparer", "Scaler", "check_range", "find_labels"]

#: rows checked at a time for values beyond the model's dtype (a memmap is never loaded whole)
_RANGE_CHUNK = 1 << 16


def _first_too_big(a: np.ndarray, limit: float) -> tuple[int, int] | None:
    """(row, column) of the first value of ``a`` with magnitude above ``limit``, else None."""
    for lo in range(0, a.shape[0], _RANGE_CHUNK):
        chunk = np.asarray(a[lo : lo + _RANGE_CHUNK])
        big = np.abs(chunk) > limit
        if big.any():
            bad = np.argwhere(big)[0]
            return lo + int(bad[0]), int(bad[1]) if bad.size > 1 else 0
    return None


def _too_big(owner: str, what: str, value: float, at: str, dtype: np.dtype) -> DataError:
    info = np.finfo(dtype)
    return DataError(
        f"{owner}: {what} {value!r} at {at} is beyond {info.dtype.name}'s range "
        f"(|x| <= {float(info.max):.4g}), the precision the model computes in; rescale that column "
        "(or give the model dtype='float64')"
    )


def check_range(
    owner: str,
    a: np.ndarray,
    dtype: Any,
    *,
    what: str = "the feature value",
    names: Any = None,
    where: Any = None,
) -> None:
    """Refuse values of ``a`` (float64 data) that the model's ``dtype`` cannot hold: cast, they
    would become inf, and training would then report a divergence (try a smaller lr) instead of
    the data error it is. The message names the row (``where(i)`` when given) and the column
    (its name when ``names`` has one)."""
    a_dtype, dtype = np.dtype(a.dtype), np.dtype(dtype)
    if a_dtype.kind != "f" or a_dtype.itemsize <= dtype.itemsize:
        return
    bad = _first_too_big(a, float(np.finfo(dtype).max))
    if bad is None:
        return
    r, c = bad
    value = float(a[r, c] if a.ndim == 2 else a[r])
    at = where(r) if where is not None else f"row {r}"
    if a.ndim == 2:
        at += f", column {c}" + (f" ({names[c]!r})" if names is not None and c < len(names) else "")
    raise _too_big(owner, what, value, at, dtype)


def _tidy(classes: np.ndarray) -> np.ndarray:
    """Sorted distinct labels: whole-number floats become int64; strings stay strings."""
    classes = np.asarray(classes)
    if classes.dtype == object:
        kinds = {type(v) for v in classes.tolist()}
        if kinds <= {str}:
            classes = classes.astype(str)
        elif all(
            isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in classes.tolist()
        ):
            classes = classes.astype(np.float64)
        else:
            raise DataError(
                f"class labels must all be numbers or all be strings, got {sorted(map(repr, kinds))}"
            )
    if classes.dtype.kind == "b":
        classes = classes.astype(np.int64)
    if classes.dtype.kind == "f":
        if not np.all(np.isfinite(classes)):
            raise DataError("class labels must be finite")
        if np.all(classes == np.floor(classes)):
            classes = classes.astype(np.int64)
        else:
            bad = classes[classes != np.floor(classes)][0].item()
            raise DataError(
                f"class labels must be integers or strings, got {bad!r}: real-valued targets need a "
                "regression model"
            )
    return np.unique(classes)


#: label dtypes that class indices are turned back into (ints and strings come out as they are)
_KEPT_KINDS = "bf"


@dataclass
class Labels:
    """The classes of a classifier and the mapping between stored labels and class indices.

    ``classes`` are sorted and tidied (whole-number floats and bools become int64, so that
    ``1.0`` and ``1`` are one class); ``dtype`` names the dtype :meth:`decode` returns when the
    labels came in as bools or floats (``"bool"``, ``"float64"``), else None.
    """

    classes: np.ndarray
    dtype: str | None = None

    @classmethod
    def of(cls, classes: Any, *, like: Any = None) -> Labels:
        """The labels ``classes``, decoded in the dtype of ``like`` (the targets or the classes as
        given) when that is bool or float."""
        classes = np.asarray(classes)
        ref = np.asarray(like) if like is not None else classes
        tidy = _tidy(classes)
        keep = ref.dtype.kind in _KEPT_KINDS and ref.dtype != tidy.dtype
        return cls(tidy, ref.dtype.name if keep else None)

    @property
    def identity(self) -> bool:
        """True when the labels already are the indices ``0..K-1``."""
        c = self.classes
        return c.dtype.kind in "iu" and bool(np.array_equal(c, np.arange(len(c))))

    def encode(self, y: np.ndarray, owner: str, where: Any = None) -> np.ndarray:
        """Class indices (int64) of stored labels; an unknown label names its row."""
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(f"{owner}: class labels must be a 1-D array (n_samples,), got shape {y.shape}")
        c = self.classes
        if c.dtype.kind in "iu":
            if y.dtype.kind in "iu" and self.identity:
                if y.size and (y.min() < 0 or y.max() >= len(c)):
                    return self._unknown(y, owner, where)
                return y.astype(np.int64, copy=False)
            yv = y.astype(np.float64) if y.dtype.kind in "biuf" else y
        elif c.dtype.kind == "U":
            yv = y.astype(str)
        else:
            yv = y
        try:
            idx = np.searchsorted(c, yv)
        except TypeError:
            return self._unknown(y, owner, where)
        idx = np.minimum(idx, len(c) - 1)
        if not np.array_equal(c[idx], yv):
            return self._unknown(y, owner, where, idx=idx, yv=yv)
        return idx.astype(np.int64)

    def _unknown(self, y: np.ndarray, owner: str, where: Any, idx=None, yv=None) -> np.ndarray:
        if idx is None:
            bad = next(i for i, v in enumerate(y.tolist()) if v not in set(self.classes.tolist()))
        else:
            bad = int(np.argmax(self.classes[idx] != yv))
        at = f"row {bad}" if where is None else where(bad)
        value = y[bad].item()
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        shown = ", ".join(map(repr, self.classes.tolist()[:20]))
        raise DataError(
            f"{owner}: label {value!r} at {at} is not one of the classes [{shown}] "
            "(give classes= to name every class)"
        )

    def decode(self, idx: np.ndarray) -> np.ndarray:
        """Stored labels of class indices, in the labels' own dtype."""
        out = np.asarray(idx) if self.identity else self.classes[np.asarray(idx)]
        return out if self.dtype is None else out.astype(self.dtype)

    @property
    def values(self) -> np.ndarray:
        """The classes as :meth:`decode` returns them (in the labels' own dtype)."""
        return self.classes if self.dtype is None else self.classes.astype(self.dtype)

    def to_array(self) -> np.ndarray:
        return self.classes


def find_labels(source: DataSource, classes: Any, owner: str, *, found: Any = None) -> Labels:
    """The classes: as given, else ``found`` by fit's streaming pass, else from in-memory targets.

    Given classes and in-memory targets keep their dtype (bools and floats are returned by
    predict as such); classes found in files do not (a file's numbers are read as floats,
    whatever they mean)."""
    try:
        if classes is not None:
            labels = Labels.of(classes)
        elif found is not None:
            labels = Labels(_tidy(np.asarray(found)))
        else:
            t = np.asarray(source.targets)
            labels = Labels.of(np.unique(t if t.ndim == 1 else t.reshape(len(t), -1)[:, 0]), like=t)
    except DataError as exc:  # keep the kind (e.g. FileChangedError) and where it happened
        raise type(exc)(f"{owner}: {exc}", file=exc.file, row=exc.row, column=exc.column) from None
    if len(labels.classes) < 2:
        raise DataError(
            f"{owner}: a classifier needs at least 2 classes, the targets hold "
            f"{len(labels.classes)}: {labels.classes.tolist()}"
        )
    return labels


@dataclass
class Scaler:
    """Per-feature standardization ``(x - mean) / scale``, applied to every batch and to predict."""

    mean: np.ndarray
    scale: np.ndarray

    #: "auto" standardizes when standard deviations differ by more than this factor, or a mean
    #: is more than this many standard deviations from 0
    ILL_SCALED = 10.0

    @classmethod
    def needed(cls, mean: np.ndarray, std: np.ndarray) -> bool:
        """Whether features with these moments are ill-scaled enough to standardize."""
        std = np.asarray(std, dtype=np.float64)
        live = varies(mean, std)
        if not live.any():
            return False
        spread = std[live].max() / std[live].min()
        offset = np.max(np.abs(np.asarray(mean)[live]) / std[live])
        return bool(spread > cls.ILL_SCALED or offset > cls.ILL_SCALED)

    @classmethod
    def from_moments(cls, mean: np.ndarray, std: np.ndarray) -> Scaler:
        """Scale each column by its std, except a constant one, which keeps scale 1: its
        computed std is rounding noise, and dividing by it would blow the column up (the rule
        and its threshold: :data:`~descend.data._moments.CONSTANT_RTOL`)."""
        return cls(np.asarray(mean, dtype=np.float64), scale_or_one(mean, std))

    @classmethod
    def for_targets(cls, mean: np.ndarray, std: np.ndarray) -> Scaler:
        """The standardization of regression targets with these per-output moments (a constant
        output keeps scale 1)."""
        return cls.from_moments(np.atleast_1d(mean), np.atleast_1d(std))

    def scale_targets(self, y: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """``(y - mean) / scale`` for targets (n,) or (n, k), computed in float64 and returned in
        ``dtype``: a target far from 0 keeps its precision."""
        y = np.asarray(y, dtype=np.float64)
        mean, scale = (self.mean[0], self.scale[0]) if y.ndim == 1 else (self.mean, self.scale)
        return ((y - mean) / scale).astype(dtype, copy=False)

    def undo(self, z: np.ndarray) -> np.ndarray:
        """``z * scale + mean`` in float64: values on the original scale (``z`` (n,) or (n, k))."""
        z = np.asarray(z, dtype=np.float64)
        mean, scale = (self.mean[0], self.scale[0]) if z.ndim == 1 else (self.mean, self.scale)
        return z * scale + mean

    def apply(self, X: np.ndarray, dtype: np.dtype, *, copy: bool = True) -> np.ndarray:
        """``(X - mean) / scale`` in ``dtype``; ``copy=False`` may scale ``X`` itself in place."""
        out = np.asarray(X, dtype=dtype)
        if copy and (out is X or (isinstance(X, np.ndarray) and np.shares_memory(out, X))):
            out = out.copy()
        out -= self.mean.astype(dtype)
        out /= self.scale.astype(dtype)
        return out


@dataclass
class Preparer:
    """Turns stored rows into what the model takes: scaled features, encoded and checked targets.

    Small and picklable, so that a distributed source can apply it where the data lives.
    """

    model: Any
    labels: Labels | None = None
    scaler: Scaler | None = None
    #: check that the features fit the model's dtype (False: fit checked them all up front)
    check_range: bool = True
    feature_names: Any = None
    #: the standardization of regression targets (``fit(standardize_target=...)``), or None
    target_scaler: Scaler | None = None

    def __call__(
        self, X: np.ndarray, y: np.ndarray, encoded: bool = False, where: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        model = self.model
        if not X.flags.aligned:
            # rows deserialized from a Dask transfer may start at any byte: NumPy then multiplies
            # them without BLAS, in another order, and the bits would depend on where rows lived
            X = np.array(X)
        if self.check_range and X.dtype.kind == "f" and X.dtype.itemsize > np.dtype(model.dtype).itemsize:
            # the cast itself reports overflow: no extra pass over the batch when all is well
            try:
                with np.errstate(over="raise"):
                    cast = X.astype(model.dtype)
            except FloatingPointError:
                check_range("fit", X, model.dtype, names=self.feature_names, where=where)
                raise
            X = cast if self.scaler is None else self.scaler.apply(cast, model.dtype, copy=False)
        elif self.scaler is not None:
            X = self.scaler.apply(X, model.dtype)
        else:
            X = X.astype(model.dtype, copy=False)
        if encoded:
            return X, y
        if self.labels is not None:
            y = self.labels.encode(y, "fit", where)
            if model.task == "binary":
                y = y.astype(model.dtype)
        elif y.dtype == object:
            raise DataError(
                f"fit: {type(model).__name__} is a regression model but the targets are not numbers "
                f"(e.g. {y[0]!r}); use a classifier for class labels"
            )
        else:  # regression values in the model's dtype, as in-memory targets are checked to
            if self.check_range and y.dtype.itemsize > np.dtype(model.dtype).itemsize:
                check_range("fit", y, model.dtype, what="the target value", where=where)
            if self.target_scaler is not None:
                y = self.target_scaler.scale_targets(y, model.dtype)
            else:
                y = y.astype(model.dtype, copy=False)
        return X, y
