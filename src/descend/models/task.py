"""Which task the targets ask for (regression, two classes, several classes), where they leave
no doubt: used by ``fit`` for ``MLP(output=None)`` and by the command line to choose a model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ParameterError

__all__ = ["MAX_INFERRED_CLASSES", "Task", "infer_task", "source_task"]

#: integer targets with at most this many distinct values are read as class labels when the
#: task is inferred (more may be counts or ids: the model must then be named). A guess about
#: meaning, unlike :data:`descend.data.base.MAX_CLASSES`, the most labels a classifier accepts.
MAX_INFERRED_CLASSES = 20


@dataclass(frozen=True)
class Task:
    """What the targets ask for: ``"regression"``, ``"binary"`` or ``"multiclass"``, and why."""

    kind: str
    reason: str
    n_classes: int | None = None
    numeric: bool = True  # False: the labels are strings


def infer_task(targets: Any, *, name: str = "the targets") -> Task:
    """The task the targets leave no doubt about, or a :class:`~descend.errors.ParameterError`
    (``param="model"``) where they are ambiguous.

    Two distinct values (0/1, strings, bools): binary; 3 to :data:`MAX_INFERRED_CLASSES` distinct integers
    or strings: multiclass; non-integer reals or several columns: regression. Many distinct
    integers (counts? class ids?) and constant targets are refused: name the model.

    >>> import numpy as np
    >>> infer_task(np.array([0, 1, 1, 0])).reason
    'the targets hold 2 distinct integer labels (0, 1)'
    >>> infer_task(np.array([0.5, 1.25, 3.0])).kind
    'regression'
    """
    y = np.asarray(targets)
    if y.ndim == 2 and y.shape[1] > 1:
        return Task("regression", f"{name} have {y.shape[1]} columns")
    y = y.reshape(-1)
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        return Task("regression", f"{name} are real numbers")  # the data check names the bad row
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        return Task("regression", f"{name} are real numbers")
    labels = np.unique(y)
    k = len(labels)
    kind = "string" if y.dtype.kind in "USO" else "integer"
    shown = ", ".join(_label(v) for v in labels[:5]) + (", ..." if k > 5 else "")
    numeric = kind != "string"
    if k == 2:
        return Task("binary", f"{name} hold 2 distinct {kind} labels ({shown})", 2, numeric)
    if 2 < k <= MAX_INFERRED_CLASSES or (kind == "string" and k > 2):
        return Task("multiclass", f"{name} hold {k} distinct {kind} labels ({shown})", k, numeric)
    what = f"a single value ({shown})" if k == 1 else f"{k} distinct integers ({shown})"
    raise ParameterError(
        f"the model cannot be chosen from the targets: {name} hold {what}; name it: linear "
        "(regression), logistic (2 classes), softmax (classes) or mlp",
        owner="train",
        param="model",
        value=None,
    )


def _label(v: Any) -> str:
    v = v.item() if isinstance(v, np.generic) else v
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return repr(v) if isinstance(v, str) else str(v)


def source_task(source: Any, *, name: str = "the targets") -> Task:
    """:func:`infer_task` for a data source: from its targets when it holds them, else from the
    distinct targets one streaming pass finds."""
    y = getattr(source, "targets", None)
    if y is not None:
        return infer_task(y, name=name)
    summarize = getattr(source, "summarize", None)
    if summarize is None:
        raise ParameterError(
            "the model cannot be chosen from the targets of this source; name it with the model",
            owner="train",
            param="model",
        )
    try:
        classes = summarize(classes=True, moments=False).classes
    except ValueError as exc:  # real-valued targets are not labels
        if "real" in str(exc) or "integer" in str(exc):
            return Task("regression", f"{name} are real numbers")
        raise
    return infer_task(np.asarray(classes), name=name)
