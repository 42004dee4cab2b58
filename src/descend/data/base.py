"""The one interface every kind of training data is read through: seeded batches per epoch.

A source is a list of *shards* (row groups, files, fixed row ranges) that can each be read
from any row on. An epoch's order is a pure function of ``(seed, epoch, layout)``: the shards
are permuted, their rows are laid end to end, and the rows inside each window of
``window`` consecutive positions are permuted (:func:`epoch_plan`). Batch ``b`` is positions
``[b*B, (b+1)*B)`` of that order, so an epoch can start at any batch by reading from the shard
that holds its first row: nothing is buffered between runs and nothing is replayed.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from .._validation import check_bool, check_int, describe
from ._moments import Moments, merge

__all__ = [
    "PART_ROWS",
    "WINDOW_ROWS",
    "Batch",
    "Chunk",
    "DataError",
    "DataSource",
    "check_batching",
    "epoch_order",
    "epoch_plan",
]

#: rows a batch is computed in at most: a larger batch (full-batch GD on a large source) comes
#: as several parts whose gradients fit() sums, so memory stays bounded by the part size.
PART_ROWS = 1 << 16
#: default number of consecutive positions whose rows are permuted together in a file epoch
WINDOW_ROWS = 1 << 16


class DataError(ValueError):
    """Bad data: a non-numeric, missing or non-finite value, or files that do not match.

    ``file``, ``row`` (data row counting from 1 after any header) and ``column`` locate it
    where there is a location.
    """

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None, column: Any = None):
        super().__init__(message)
        self.file, self.row, self.column = file, row, column


class Batch:
    """One batch (or one part of a batch larger than :data:`PART_ROWS`).

    ``index`` is the batch's position in the epoch; ``part`` / ``parts`` say which piece of
    that batch this is (``0`` / ``1`` for an ordinary batch). ``y`` holds the targets as stored
    (class labels are encoded by ``fit``); ``w`` the sample weights, if any; ``file`` and
    ``lines`` where the rows came from (files only), for messages.
    """

    __slots__ = ("X", "file", "index", "lines", "part", "parts", "w", "y")

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        index: int,
        part: int = 0,
        parts: int = 1,
        w: np.ndarray | None = None,
        file: str | None = None,
        lines: np.ndarray | None = None,
    ):
        self.X, self.y, self.index, self.part, self.parts = X, y, index, part, parts
        self.w, self.file, self.lines = w, file, lines

    def __repr__(self) -> str:
        return f"Batch(index={self.index}, rows={self.size}, part={self.part}/{self.parts})"

    @property
    def size(self) -> int:
        return int(self.X.shape[0])

    @property
    def weight(self) -> float:
        """What the batch counts for when parts are averaged: rows, or the sum of sample weights."""
        return float(self.X.shape[0]) if self.w is None else float(self.w.sum())

    def where(self, i: int) -> str:
        """``"train.csv: row 17"`` for the i-th row of the batch (0-based batch row without a file)."""
        if self.lines is None:
            return f"row {i}"
        return f"{self.file}: row {int(self.lines[i])}"


@dataclass
class Chunk:
    """Rows read from one shard: features, raw targets, each row's global 0-based index, and
    (for files) each row's data row number in its file, counting from 1 after the header."""

    X: np.ndarray
    y: np.ndarray
    rows: np.ndarray
    file: str
    w: np.ndarray | None = None
    lines: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def take(self, idx: Any) -> Chunk:
        return Chunk(
            self.X[idx],
            self.y[idx],
            self.rows[idx],
            self.file,
            None if self.w is None else self.w[idx],
            None if self.lines is None else self.lines[idx],
        )


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The sample order of ``epoch``: a permutation drawn from a generator seeded by (seed, epoch).

    Deriving each epoch's order from ``(seed, epoch)`` means a run can resume at any epoch
    without replaying earlier draws, and the global NumPy random state is never touched.
    """
    rng = np.random.default_rng([seed, 1, epoch])
    return rng.permutation(n)


def epoch_plan(seed: int, epoch: int, n_shards: int, shuffle: bool) -> np.ndarray:
    """The order in which an epoch visits shards: a permutation drawn from ``(seed, epoch)``."""
    if not shuffle:
        return np.arange(n_shards)
    return np.random.default_rng([seed, 3, epoch]).permutation(n_shards)


def window_order(seed: int, epoch: int, window: int, n: int) -> np.ndarray:
    """The permutation of the ``n`` rows in window number ``window`` of ``epoch``."""
    return np.random.default_rng([seed, 4, epoch, window]).permutation(n)


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


def n_batches_for(n: int, batch_size: int | None, drop_last: bool) -> int:
    if batch_size is None or batch_size >= n:
        return 0 if (drop_last and batch_size is not None and batch_size > n) else 1
    return n // batch_size if drop_last else -(-n // batch_size)


@dataclass
class Summary:
    """What one streaming pass learned: row counts, classes, feature moments, target moments
    (per output), skipped rows."""

    n_rows: int = 0
    classes: np.ndarray | None = None
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    skipped: dict[str, int] = field(default_factory=dict)
    target_mean: np.ndarray | None = None
    target_std: np.ndarray | None = None


class DataSource:
    """The one interface ``fit`` reads every kind of data through.

    **What every source provides** (a subclass implements these three):

    - :attr:`n_features`: the width of a row of features;
    - :meth:`shard_sizes`: rows in each shard (row group, file, row range, partition);
    - :meth:`read_shard`: the rows of one shard from any row on, in chunks.

    From them this base class derives :attr:`n_samples`, :meth:`summarize` (one streaming pass:
    classes, feature and target moments), :meth:`batches` (the seeded, windowed order of the
    module docstring, read ahead in a background thread), :meth:`n_batches`,
    :meth:`fingerprint`, :meth:`split` and :meth:`objective` (the full-batch loss and gradient,
    the same bits from every source); a source may override any of them with a faster
    equivalent (arrays permute in memory; Dask summarizes, splits and evaluates the objective
    on its workers).

    **What a source may declare** (the defaults below hold otherwise; ``fit`` reads each as a
    plain attribute, never by probing for it): its :attr:`description`, column names
    (:attr:`feature_names`, :attr:`target`, :attr:`columns`), the columns it left out and why
    (:attr:`excluded`) and other choices it made (:attr:`notes`); :attr:`targets` when they
    are in memory and :attr:`n_targets` when they are not; the rows it skipped
    (:attr:`skipped`); the row range of a shard (:meth:`shard_range`), which lets a split count
    its rows without reading them; and whether it computes gradients where its rows live
    (:attr:`computes_gradients`, with :meth:`gradients`).
    """

    #: short human description, used in messages and run configs
    description: str = "data"
    #: column names of the features, when the data has names
    feature_names: tuple[str, ...] | None = None
    #: the target column's name, when the data names it
    target: str | None = None
    #: every column of the data, when it has names: the features, the target and any others
    columns: tuple[str, ...] | None = None
    #: what the source chose on its own and why (e.g. identifier columns left out of the features)
    notes: Sequence[str] = ()
    #: columns left out of the features by default, each with the reason (e.g. identifiers)
    excluded: Mapping[str, str] = MappingProxyType({})
    #: rows skipped per file in the last whole pass (``on_bad_rows="skip"``); empty when none
    skipped: Mapping[str, int] = MappingProxyType({})
    #: target columns per row, for a source whose :attr:`targets` are not in memory (a
    #: regression model gets one output per target column)
    n_targets: int = 1
    #: True: ``fit`` asks :meth:`gradients` for each batch's loss and gradient, computed where
    #: the rows live, instead of reading the rows through :meth:`batches`
    computes_gradients: bool = False
    #: True: ``fit(sync_every=H)`` runs local SGD on it, H steps per partition task
    #: (:meth:`~descend.data.DaskSource.map_partitions`, :mod:`descend.train.local_sgd`)
    runs_local_steps: bool = False
    #: rows whose order is permuted together (see module docstring)
    window: int = WINDOW_ROWS

    # -- what every source says about itself ----------------------------------------------------
    @property
    def n_features(self) -> int:
        raise NotImplementedError

    @property
    def n_samples(self) -> int:
        """Number of rows an epoch covers (may read the file's layout the first time)."""
        return int(sum(self.shard_sizes()))

    @property
    def targets(self) -> np.ndarray | None:
        """All targets when cheap to get (in-memory sources), else None."""
        return None

    def fingerprint(self) -> dict[str, Any]:
        """What identifies this data for checkpoint compatibility."""
        return {"description": self.description, "n_samples": self.n_samples, "n_features": self.n_features}

    def shard_sizes(self) -> Sequence[int]:
        """Rows in each shard, in file order."""
        raise NotImplementedError

    def read_shard(self, shard: int, skip: int = 0) -> Iterator[Chunk]:
        """The rows of ``shard`` from its ``skip``-th row on, in file order, in chunks."""
        raise NotImplementedError

    def shard_range(self, shard: int) -> tuple[int, int] | None:
        """(first global row number, rows) of ``shard`` when its rows are that fixed range of
        row numbers, or None when only reading the shard tells which rows it holds (rows may
        be skipped)."""
        return None

    def split(self, fraction: float, seed: int) -> tuple[DataSource, DataSource]:
        """(training, validation) sources: the rows :func:`~descend.data.split.holdout_mask`
        holds out by (seed, row number). Here two views that filter the rows as they are read;
        a source that can cut its rows where they are overrides this (arrays by index, Dask on
        the workers), holding out the same rows."""
        from .split import RowSplit  # split.py builds on this module

        return (
            RowSplit(self, fraction=fraction, seed=seed, held_out=False),
            RowSplit(self, fraction=fraction, seed=seed, held_out=True),
        )

    def gradients(
        self,
        model: Any,
        params: dict[str, np.ndarray],
        prep: Any,
        epoch: int,
        batch_size: int | None,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        start: int = 0,
    ) -> Iterator[tuple[int, float, dict[str, np.ndarray], int]]:
        """``(batch, loss, gradients, rows)`` for the batches of ``epoch`` from ``start`` on,
        computed where the rows live with ``prep`` (a picklable
        :class:`~descend.train.prepare.Preparer`) for ``params`` as they are when each batch is
        asked for. Only a source with :attr:`computes_gradients` provides it."""
        raise NotImplementedError(f"{type(self).__name__} does not compute gradients")

    def objective(
        self, model: Any, params: dict[str, np.ndarray], prep: Any, *, encoded: bool = False
    ) -> Any:
        """The full-batch loss and gradient of ``model`` at ``params`` over every row, as a
        :class:`~descend.data.objective.Partial` (sums; ``.mean(params)`` gives the means):
        blocks at fixed positions added in a fixed tree, so every source holding the same rows
        gives the same bits (:mod:`descend.data.objective`). ``prep`` is a
        :class:`~descend.train.prepare.Preparer`; ``encoded``: the targets are already in the
        model's form. Here the rows are read in this process; Dask computes on its workers."""
        from .objective import in_process

        return in_process(self, model, params, prep, encoded)

    def summarize(self, *, classes: bool, moments: bool, targets: bool = False) -> Summary:
        """One streaming pass: the sorted distinct targets, per-feature mean and std, and/or
        (``targets``) the mean and std of each numeric target output."""
        acc = _Accumulator(self.n_features, classes, moments, targets)
        for shard in range(len(self.shard_sizes())):
            for chunk in self.read_shard(shard):
                acc.add(chunk.X, chunk.y)
        return acc.result()

    # -- batches --------------------------------------------------------------------------------
    def n_batches(self, batch_size: int | None, drop_last: bool = False) -> int:
        return n_batches_for(self.n_samples, batch_size, drop_last)

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
        """The batches of ``epoch`` from batch ``start`` on (parts of big batches in order)."""
        return _prefetched(self._window_batches(epoch, batch_size, shuffle, seed, drop_last, start))

    def _positions(self, epoch: int, shuffle: bool, seed: int, first: int) -> Iterator[Chunk]:
        """The epoch's rows in order from position ``first`` on, one window at a time."""
        sizes = np.asarray(self.shard_sizes(), dtype=np.int64)
        plan = epoch_plan(seed, epoch, len(sizes), shuffle)
        ends = np.cumsum(sizes[plan])
        W = self.window
        w = first // W  # windows are permuted whole: read from the start of the one holding `first`
        k0 = int(np.searchsorted(ends, w * W, side="right"))
        skip = w * W - (int(ends[k0 - 1]) if k0 else 0)
        buf: list[Chunk] = []
        have = 0

        def window_rows(w: int) -> Chunk:
            c = _concat(buf)
            buf.clear()  # the chunks go before the permuted copy is made: two windows at most
            if shuffle:
                c = c.take(window_order(seed, epoch, w, len(c)))
            drop = first - w * W
            return c.take(slice(drop, None)) if drop > 0 else c

        for k in range(k0, len(plan)):
            for chunk in self.read_shard(int(plan[k]), skip if k == k0 else 0):
                while len(chunk):
                    need = W - have
                    buf.append(chunk.take(slice(0, need)))
                    have += len(buf[-1])
                    chunk = chunk.take(slice(need, None))
                    if have == W:
                        out = window_rows(w)
                        have, w = 0, w + 1
                        yield out
                        del out
        if have:
            yield window_rows(w)

    def _window_batches(
        self, epoch: int, batch_size: int | None, shuffle: bool, seed: int, drop_last: bool, start: int
    ) -> Iterator[list[Batch]]:
        n = self.n_samples
        n_b = n_batches_for(n, batch_size, drop_last)
        if start >= n_b:
            return
        B = n if batch_size is None else min(batch_size, n)
        pieces = _pieces(n, B, n_b, start)
        want = next(pieces)
        carry: Chunk | None = None
        delivered = start * B  # rows of the epoch's order read so far
        for chunk in self._positions(epoch, shuffle, seed, start * B):
            delivered += len(chunk)
            c = chunk if carry is None else _concat([carry, chunk])
            out: list[Batch] = []
            while want is not None and len(c) >= want[3]:
                b, j, parts, size = want
                piece, c = c.take(slice(0, size)), c.take(slice(size, None))
                lines = piece.lines
                out.append(Batch(piece.X, piece.y, b, j, parts, piece.w, piece.file, lines))
                want = next(pieces, None)
            carry = c if len(c) else None
            if out:
                yield out
            if want is None:
                return
        # the rows ran out before the batches did: an epoch short of what the source reported
        # (or with no step at all) would pass for a whole one
        raise DataError(
            f"{self.description}: epoch {epoch} ended after {delivered} of the {n} rows the source "
            f"reported (batch {want[0]} of {n_b} incomplete): the data changed while it was read, "
            "or was miscounted"
        )


def _pieces(n: int, B: int, n_b: int, start: int) -> Iterator[tuple[int, int, int, int]]:
    """(batch, part, parts, rows) for each piece of batches ``start..n_b-1``."""
    for b in range(start, n_b):
        size = min(B, n - b * B)
        parts = -(-size // PART_ROWS)
        for j in range(parts):
            yield b, j, parts, min(PART_ROWS, size - j * PART_ROWS)


class _Accumulator:
    """Streaming class discovery, and mean and variance merged block by block (:func:`merge`)."""

    #: rows of a chunk taken at a time for the moments (fewer for wide rows, see below): a
    #: block's float64 copy stays in cache between the passes over it (sum, centre, square),
    #: so the data is read from memory once
    BLOCK_ROWS = 2048

    def __init__(self, d: int, classes: bool, moments: bool, targets: bool = False):
        self.d, self.want_classes, self.want_moments = d, classes, moments
        #: the moments of the targets: an accumulator of their own, made at the first rows
        self.want_targets = targets
        self.y_acc: _Accumulator | None = None
        self.moments = Moments(0, np.zeros(d), np.zeros(d))
        self.rows = 0  # rows seen (the moments count only the rows they were computed on)
        self.labels: set[Any] = set()
        # at most ~2 MB of float64 rows at a time, however wide the rows
        self.block = max(1, min(self.BLOCK_ROWS, (1 << 21) // (8 * max(d, 1))))
        self.buf = np.empty((self.block, d)) if moments else None

    def add(self, X: np.ndarray, y: np.ndarray) -> None:
        m = X.shape[0]
        if m == 0:
            return
        if self.want_classes:
            self.labels.update(_distinct(y))
            if len(self.labels) > MAX_CLASSES:
                raise too_many_classes()
        if self.want_targets:
            self._add_targets(y)
        if self.want_moments:
            X = np.asarray(X)
            for lo in range(0, m, self.block):
                self._add_block(X[lo : lo + self.block])
        self.rows += m

    def _add_targets(self, y: np.ndarray) -> None:
        y = np.asarray(y)
        if y.dtype.kind not in "biuf":
            example = y.reshape(-1)[0] if y.size else None
            raise DataError(
                f"a regression model needs numeric targets, got {y.dtype} values (e.g. {example!r}); "
                "use a classifier for class labels"
            )
        y2 = y.reshape(len(y), -1)
        if self.y_acc is None:
            self.y_acc = _Accumulator(y2.shape[1], False, True)
        self.y_acc.add(y2, y2)

    def _add_block(self, X: np.ndarray) -> None:
        m = X.shape[0]
        buf = self.buf[:m]
        if X.dtype == np.float64:
            mean_c = X.sum(axis=0) / m
            np.subtract(X, mean_c, out=buf)
        else:
            np.copyto(buf, X)
            mean_c = buf.sum(axis=0) / m
            buf -= mean_c
        m2_c = np.einsum("ij,ij->j", buf, buf)
        self.moments = merge(self.moments, Moments(m, mean_c, m2_c))

    def result(self) -> Summary:
        s = Summary(n_rows=self.rows)
        if self.want_classes:
            s.classes = np.array(sorted(self.labels))
        if self.want_moments:
            s.mean, s.std = self.moments.mean, self.moments.std
        if self.y_acc is not None:
            t = self.y_acc.result()
            s.target_mean, s.target_std = t.mean, t.std
        return s


def _distinct(y: np.ndarray) -> list[Any]:
    """The distinct values of ``y`` (a chunk of targets): by counting for integers in a
    narrow range (no sort), else by ``np.unique``."""
    y = np.asarray(y).reshape(-1)
    if y.dtype.kind in "iu" and y.size:
        lo, hi = int(y.min()), int(y.max())
        small = np.iinfo(np.intp).min <= lo and hi <= np.iinfo(np.intp).max
        if small and hi - lo < 4 * y.size:
            present = np.flatnonzero(np.bincount(np.subtract(y, lo, dtype=np.intp)))
            return [int(i) + lo for i in present]
    return np.unique(y).tolist()


#: at most this many distinct labels are accepted when classes are discovered from the data
#: (a bound on memory and on the softmax's width, not a guess at the task: for that see
#: :data:`descend.models.task.MAX_INFERRED_CLASSES`)
MAX_CLASSES = 1000


def too_many_classes(where: str | None = None) -> DataError:
    """The error for targets with more than :data:`MAX_CLASSES` distinct values, found while
    classes were discovered; ``where`` (e.g. ``"partition 3"``) says where, when known."""
    return DataError(
        (f"{where}: " if where else "")
        + f"the target has more than {MAX_CLASSES} distinct values; a classifier needs class "
        "labels (use a regression model for real-valued targets, or give classes=)",
        file=where,
    )


def _concat(chunks: list[Chunk]) -> Chunk:
    if len(chunks) == 1:
        return chunks[0]
    first = chunks[0]
    return Chunk(
        np.concatenate([c.X for c in chunks]),
        np.concatenate([c.y for c in chunks]),
        np.concatenate([c.rows for c in chunks]),
        chunks[-1].file,
        None if first.w is None else np.concatenate([c.w for c in chunks]),
        None if first.lines is None else np.concatenate([c.lines for c in chunks]),
    )


_DONE = object()


class _Readers:
    """Long-lived reader threads, reused from epoch to epoch.

    A new thread per epoch would give the allocator a new per-thread arena each time, and
    the memory those arenas keep would grow the process epoch after epoch; reusing idle
    threads keeps it flat. A thread is only ever lent to one iteration at a time, so nested
    iterations (a validation pass during an epoch) each get their own.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.idle: list[queue.SimpleQueue[Any]] = []

    def run(self, job: Any) -> None:
        with self.lock:
            inbox = self.idle.pop() if self.idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(inbox,), name="descend-reader", daemon=True).start()
        inbox.put(job)

    def _serve(self, inbox: queue.SimpleQueue[Any]) -> None:
        while True:
            job = inbox.get()
            try:
                job()
            finally:
                with self.lock:
                    self.idle.append(inbox)


_READERS = _Readers()


def _prefetched(windows: Iterator[list[Batch]], depth: int = 1) -> Iterator[Batch]:
    """Run ``windows`` in a background thread, ``depth`` windows ahead of the consumer.

    The queue bounds memory (the window being trained on, ``depth`` ready, one being read);
    an exception in the reader is raised in the consumer; a consumer that stops early stops
    the reader.
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    finished = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for w in windows:
                if not put(w):
                    return
            put(_DONE)
        except BaseException as exc:  # surfaces in the training thread
            put(exc)
        finally:
            finished.set()

    _READERS.run(produce)
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()
        finished.wait()
