"""What the training loops record: :class:`Columns` (named columns, one row per step), and the
histories of fit (:class:`TrainHistory`) and minimize (:class:`History`) built on it.

``fit``, ``minimize`` and ``lr_find`` each append one row per step to a :class:`Columns` and read
it back as arrays; their public histories keep the shapes the command line, the reports and the
checkpoints read (``run.history.steps["loss"]``, ``res.history.loss``, ``result.lrs``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Columns", "History", "TrainHistory"]


class Columns(dict[str, list[Any]]):
    """Named columns of equal length, one row per step (or epoch, or recorded step): a plain
    ``dict`` of lists, so ``cols["loss"]``, ``cols.get("step")`` and JSON read it as before.

    A loop appends rows by position (:meth:`append`, or straight to the lists of :meth:`lists` in
    a hot loop) or by name (:meth:`add_row`, which gives a column first seen later NaN for the
    earlier rows), and reads columns back as arrays (:meth:`array`, :meth:`to_arrays`).

    >>> cols = Columns(("step", "loss"))
    >>> cols.append((1, 0.5)); cols.add_row({"step": 2, "loss": 0.25, "lr": 0.1})
    >>> cols.n_rows, cols["lr"], cols.array("loss").tolist()
    (2, [nan, 0.1], [0.5, 0.25])
    """

    def __init__(self, columns: Iterable[str] | Mapping[str, Sequence[Any]] = ()):
        if isinstance(columns, Mapping):
            super().__init__((k, list(v)) for k, v in columns.items())
        else:
            super().__init__((k, []) for k in columns)

    @property
    def n_rows(self) -> int:
        return len(next(iter(self.values()))) if self else 0

    def lists(self, names: Iterable[str]) -> list[list[Any]]:
        """The lists of ``names`` themselves, in that order: a loop appends one value to each."""
        return [self[k] for k in names]

    def append(self, values: Iterable[Any]) -> None:
        """One row, one value per column in the columns' order."""
        for column, value in zip(self.values(), values, strict=True):
            column.append(value)

    def add_row(self, row: Mapping[str, Any]) -> None:
        """One row by name: NaN for a column the row lacks, and for the earlier rows of a column
        first seen in it."""
        n = self.n_rows
        for k in row:
            if k not in self:
                self[k] = [math.nan] * n
        for k, column in self.items():
            column.append(row.get(k, math.nan))

    def array(self, name: str, dtype: Any = None) -> np.ndarray:
        return np.asarray(self[name], dtype=dtype)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per row (for CSV files and tables)."""
        return [dict(zip(self, row, strict=True)) for row in zip(*self.values(), strict=True)]

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Every column as a float64 array, its key ``prefix + name`` (for ``.npz`` files)."""
        return {f"{prefix}{k}": np.asarray(v, dtype=np.float64) for k, v in self.items()}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any], ints: Iterable[str] = ()) -> Columns:
        """Columns from arrays (as :meth:`to_arrays` wrote them, prefix removed); the columns
        named in ``ints`` hold ints again."""
        ints = set(ints)
        out = cls()
        for k, v in arrays.items():
            values = [float(x) for x in np.asarray(v)]
            out[k] = [int(x) for x in values] if k in ints else values
        return out


#: fit's per-step columns, in the order each step appends them
STEP_COLUMNS = ("step", "epoch", "loss", "lr", "grad_norm", "samples_seen", "time")
#: columns that count (stored as float64 in a checkpoint, read back as ints)
_COUNTS = ("step", "epoch", "samples_seen", "round", "local_steps")


@dataclass
class TrainHistory:
    """Per-step and per-epoch records of a training run, as lists (``.step_array`` for NumPy).

    ``steps[k]`` describes update ``k + 1``: the batch loss and gradient norm at the parameters
    before the update, the lr used, how many samples had been seen after it, and the wall time.
    With local SGD (``fit(sync_every=H)``) a row is a *round*: ``step`` counts local steps
    (those of the round's longest partition task, as the optimizer's ``t``), ``round`` and
    ``local_steps`` say which round and how many local steps it took, and ``loss`` and
    ``grad_norm`` are rows-weighted means over every local step of the round (each at the
    parameters before that step), ``lr`` the one of its last local step.
    ``epochs`` rows hold the mean training loss of the epoch and validation metrics.
    Each of the three is a :class:`Columns` (a dict of equal-length lists).
    """

    steps: Columns = field(default_factory=lambda: Columns(STEP_COLUMNS))
    epochs: Columns = field(default_factory=Columns)
    #: what a :class:`~descend.Monitor` records every few steps (``step`` first); empty without one
    monitor: Columns = field(default_factory=Columns)

    def __post_init__(self) -> None:
        # plain dicts of lists (a run folder's CSV, an older pickle) become Columns
        for name in ("steps", "epochs", "monitor"):
            value = getattr(self, name)
            if not isinstance(value, Columns):
                setattr(self, name, Columns(value))

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__post_init__()

    def step_array(self, column: str) -> np.ndarray:
        return self.steps.array(column)

    def epoch_array(self, column: str) -> np.ndarray:
        return self.epochs.array(column)

    def add_epoch(self, row: dict[str, float]) -> None:
        self.epochs.add_row(row)

    def step_rows(self) -> list[dict[str, float]]:
        """The per-step columns as one dict per step (for CSV files and tables)."""
        return self.steps.rows()

    def epoch_rows(self) -> list[dict[str, float]]:
        """The per-epoch columns as one dict per epoch."""
        return self.epochs.rows()

    def monitor_rows(self) -> list[dict[str, float]]:
        """The monitor's columns as one dict per recorded step."""
        return self.monitor.rows()

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Every column as a float64 array keyed ``step/…``, ``epoch/…``, ``monitor/…`` (what a
        checkpoint stores)."""
        return {
            **self.steps.to_arrays("step/"),
            **self.epochs.to_arrays("epoch/"),
            **self.monitor.to_arrays("monitor/"),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> TrainHistory:
        parts: dict[str, dict[str, Any]] = {"step": {}, "epoch": {}, "monitor": {}}
        for key, v in arrays.items():
            kind, col = key.split("/", 1)
            parts[kind if kind in ("step", "monitor") else "epoch"][col] = v
        steps = Columns.from_arrays(parts["step"], ints=_COUNTS)
        return cls(
            steps=steps if steps else Columns(STEP_COLUMNS),  # none stored: fit's, empty
            epochs=Columns.from_arrays(parts["epoch"], ints=_COUNTS),
            monitor=Columns.from_arrays(parts["monitor"], ints=_COUNTS),
        )


#: minimize's per-iterate columns
ITERATE_COLUMNS = ("step", "loss", "lr", "grad_norm", "time")


@dataclass
class History:
    """Per-step record of a :func:`~descend.minimize` run, as columns (NumPy arrays of equal
    length).

    Row ``k`` describes iterate ``x_k``: its loss, its gradient norm, the learning rate used
    to leave it (NaN on the last row, unless the run diverged: then the lr of the step that
    failed; for L-BFGS the step length ``t`` taken along its direction) and the wall time since
    the start. ``path[k]`` is ``x_k`` itself when the path was recorded.
    """

    step: np.ndarray
    loss: np.ndarray
    lr: np.ndarray
    grad_norm: np.ndarray
    time: np.ndarray
    path: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.step)

    def columns(self) -> dict[str, np.ndarray]:
        cols = {
            "step": self.step,
            "loss": self.loss,
            "lr": self.lr,
            "grad_norm": self.time * 0 + self.grad_norm,
        }
        cols["time"] = self.time
        return cols

    @classmethod
    def of(cls, rows: Columns, path: list[np.ndarray] | None = None) -> History:
        """The arrays of the rows a run recorded (:data:`ITERATE_COLUMNS`), with its iterates."""
        return cls(
            step=rows.array("step", np.int64),
            loss=rows.array("loss", np.float64),
            lr=rows.array("lr", np.float64),
            grad_norm=rows.array("grad_norm", np.float64),
            time=rows.array("time", np.float64),
            path=np.asarray(path) if path else None,
        )
