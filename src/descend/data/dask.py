"""Data on a Dask cluster: partitions persisted on the workers, gradients computed where they live.

A :class:`DaskSource` is a list of partitions (the row chunks of dask arrays, or the partitions
of a dask DataFrame), each turned into NumPy arrays by one *pure* task and persisted on the
workers: nothing is scattered, so a partition lost with a worker is recomputed from its graph.
``fit`` drives it through :meth:`DaskSource.gradients`: for every step the client ships the
current parameters to one task per partition that contributes rows to the batch; each task
returns that partition's (gradient sum, loss sum, weight, rows); the partial results are summed
in a fixed tree order over partition ids and the client divides. No task is pinned to a worker
and workers run BLAS on one thread (Dask's nanny default), so a partial result does not depend on
which worker computed it and two runs with the same seed give the same bits.
``fit(..., sync_every=H)`` (local SGD, :mod:`descend.train.local_sgd`) drives it through
:meth:`DaskSource.map_partitions` instead: one task per partition takes H steps on its own rows,
and the tasks' models are averaged in the same fixed tree.

An epoch's order is a pure function of ``(seed, epoch, layout)``, as for files: the partitions
are permuted (:func:`~descend.data.base.epoch_plan`), the rows of each partition are permuted
(:func:`~descend.data.base.window_order`, a partition being the window), the partitions are laid
end to end and batch ``b`` is positions ``[b*B, (b+1)*B)``. A batch therefore touches one or a few
partitions; full-batch gradient descent touches all of them, one task each.

Dask is optional: this module imports it only when a source is built (``pip install
'descend[dask]'``).
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .._validation import check_int, describe
from ..errors import ParameterError, ParameterTypeError
from ._moments import Moments, merge
from .base import (
    MAX_CLASSES,
    PART_ROWS,
    Chunk,
    DataError,
    DataSource,
    Summary,
    epoch_plan,
    n_batches_for,
    too_many_classes,
    window_order,
)
from .columns import id_name
from .objective import BLOCK_ROWS, FANIN, Partial, add, block_partial, concat_rows, tree_depth
from .objective import n_blocks as objective_blocks

__all__ = [
    "FANIN",
    "INLINE_BYTES",
    "TASK_ROWS",
    "DaskSource",
    "connect",
    "from_dask",
    "is_dask_collection",
    "read",
    "synthetic",
    "synthetic_arrays",
]

#: parameters up to this many bytes travel inline in every partition task; larger ones travel
#: once per step as a task of their own whose result the partition tasks fetch from its worker
INLINE_BYTES = 1 << 16
#: rows a partition task computes at a time. Smaller than fit's in-memory part: Dask's nanny sets
#: MALLOC_TRIM_THRESHOLD_, which pins glibc's mmap threshold at 128 KiB, so every temporary above
#: it is a fresh mapping to fault in; 16,384-row pieces ran ~1.5-2x faster than 65,536 on workers.
TASK_ROWS = 1 << 14

_INSTALL = "install it with: pip install 'descend[dask]'"


def _dask() -> Any:
    try:
        import dask
        import distributed  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"descend.data.dask needs dask and distributed ({exc}); {_INSTALL}") from None
    return dask


def is_dask_collection(x: Any) -> bool:
    """True for a dask array, DataFrame, Series or delayed object (without importing dask)."""
    if "dask" not in sys.modules:
        return False
    import dask

    return bool(dask.is_dask_collection(x))


def _client(client: Any, owner: str) -> Any:
    _dask()
    from distributed import Client, get_client

    if client is not None:
        if not isinstance(client, Client):
            raise ParameterTypeError(
                f"{owner}: client must be a distributed.Client, got {describe(client)}",
                owner=owner,
                param="client",
                value=client,
            )
        return client
    try:
        return get_client()
    except ValueError:
        raise ValueError(
            f"{owner}: no distributed.Client is running; connect one first "
            "(distributed.Client('tcp://scheduler:8786'), or descend.data.dask.connect('local:2')) "
            "or pass client="
        ) from None


# -- tasks run on the workers (pure functions of their arguments) ----------------------------------


def _first_bad(a: np.ndarray) -> tuple[int, int] | None:
    if a.dtype.kind != "f":
        return None
    finite = np.isfinite(a)
    if finite.all():
        return None
    bad = np.argwhere(~finite)[0]
    return int(bad[0]), int(bad[1]) if bad.size > 1 else 0


def _make_part(
    X: Any, y: Any, w: Any, index: int, description: str, columns: Sequence[Any] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One partition as NumPy arrays (X, y, w), checked: a NaN/inf names the partition and row."""
    X, y = np.asarray(X), np.asarray(y)
    if not (X.flags.aligned and X.flags.c_contiguous):
        # rows a transfer left at an odd address: copied once here, not in every step's tasks
        X = np.array(X, order="C")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    w = None if w is None else np.asarray(w, dtype=np.float64).reshape(-1)

    def fail(what: str, r: int, c: Any) -> None:
        col = "" if c is None else f", column {columns[c] if columns is not None else c}"
        raise DataError(
            f"{description}: partition {index} has {what} at row {r} of the partition{col}",
            file=f"partition {index}",
            row=r,
            column=None if c is None else (columns[c] if columns is not None else c),
        )

    bad = _first_bad(X)
    if bad is not None:
        fail(f"a non-finite value ({float(X[bad])!r})", *bad)
    if y.dtype.kind == "f":
        bad = _first_bad(y)
        if bad is not None:
            fail("a non-finite target", bad[0], None)
    elif y.dtype == object:
        missing = np.array([v is None or (isinstance(v, float) and math.isnan(v)) for v in y.tolist()])
        if missing.any():
            fail("a missing target", int(np.argmax(missing)), None)
    if w is not None:
        ok = np.isfinite(w) & (w >= 0)
        if not ok.all():
            r = int(np.argmax(~ok))
            fail(f"a sample weight that is not finite and >= 0 ({w[r]!r})", r, None)
    return X, y, w


def _frame_part(
    frame: Any,
    features: Sequence[str],
    target: str,
    weight: str | None,
    dtype: str,
    index: int,
    description: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A pandas partition of a DataFrame as checked NumPy arrays."""
    X = frame[list(features)].to_numpy(dtype=dtype, na_value=np.nan)
    col = frame[target]
    y = col.to_numpy(dtype=np.float64, na_value=np.nan) if col.dtype.kind in "biuf" else col.to_numpy()
    if y.dtype == object and all(isinstance(v, str) for v in y.tolist()):
        y = y.astype(str)
    w = None if weight is None else frame[weight].to_numpy(dtype=np.float64, na_value=np.nan)
    return _make_part(X, y, w, index, description, tuple(features))


def _holdout(
    part: tuple[np.ndarray, np.ndarray, Any], first: int, fraction: float, seed: int, held_out: bool
) -> tuple[np.ndarray, np.ndarray, Any]:
    """The rows of a partition on one side of the hold-out rule (global row numbers from ``first``)."""
    from .split import holdout_mask

    X, y, w = part
    keep = holdout_mask(seed, np.arange(first, first + X.shape[0]), fraction)
    if not held_out:
        keep = ~keep
    return X[keep], y[keep], None if w is None else w[keep]


def _persist(client: Any, parts: list[Any]) -> list[Any]:
    """Futures of the partitions, spread round-robin over the workers present now.

    The spread is a hint (``allow_other_workers=True``), not a pin: Dask's scheduler would
    otherwise fill each worker's queue before the next (a one-thread worker takes two root tasks),
    and a partition lost with its worker is still recomputed anywhere. Gradient tasks carry no
    restriction at all: they run where their partition is.
    """
    workers = sorted(client.nthreads())
    if len(workers) < 2:
        return client.compute(parts)
    return [
        client.compute(p, workers=[workers[i % len(workers)]], allow_other_workers=True)
        for i, p in enumerate(parts)
    ]


def _are_futures(items: Sequence[Any]) -> bool:
    from distributed import Future

    return all(isinstance(f, Future) for f in items)


def _part_rows(part: tuple[np.ndarray, np.ndarray, np.ndarray | None]) -> int:
    return int(part[0].shape[0])


def _part_slice(part: tuple[Any, Any, Any], lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, Any]:
    X, y, w = part
    return X[lo:hi].copy(), y[lo:hi].copy(), None if w is None else w[lo:hi].copy()


@functools.lru_cache(maxsize=64)
def _accepts_where(kind: type) -> bool:
    """Whether a preparer of this type takes ``where=`` (asked once per type: local SGD calls
    :func:`_partial` for every local step)."""
    import inspect

    try:
        return "where" in inspect.signature(kind.__call__).parameters
    except (TypeError, ValueError):
        return False


def _local_row(idx: Any, j: int) -> int:
    """The partition row of the ``j``-th row taken by ``idx`` (None, a slice or indices)."""
    if idx is None:
        return j
    if isinstance(idx, slice):
        return (idx.start or 0) + j
    return int(idx[j])


def _prepare(prep: Any, X: np.ndarray, y: np.ndarray, idx: Any, lo: int, index: int) -> tuple[Any, Any]:
    """Rows ``lo..`` of those ``idx`` takes from partition ``index``, as the model takes them
    (``prep``); a :class:`DataError` names the partition and the row within it."""

    def where(i: int) -> str:
        return f"partition {index}, row {_local_row(idx, lo + i)} of the partition"

    try:
        return prep(X, y, where=where) if _accepts_where(type(prep)) else prep(X, y)
    except DataError as exc:
        raise DataError(f"partition {index}: {exc}", file=f"partition {index}") from None


def _partial(
    part: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    params: Any,
    prep: Any,
    idx: Any,
    index: int,
) -> Partial:
    """(gradient sum, loss sum, weight, rows) of partition ``index``'s rows ``idx`` (None: all).

    Computed :data:`TASK_ROWS` rows at a time, as ``fit`` does in memory with larger pieces: the
    temporaries stay small (and in cache), whatever the partition's size.
    """
    params = params.value if isinstance(params, _Literal) else params
    prep = prep.value if isinstance(prep, _Literal) else prep
    X, y, w = part
    if idx is not None:
        X, y = X[idx], y[idx]
        w = None if w is None else w[idx]
    rows = int(X.shape[0])
    grads_sum = {k: np.zeros(v.shape) for k, v in params.items()}
    loss_sum = weight_sum = 0.0
    for lo in range(0, rows, TASK_ROWS):
        hi = min(lo + TASK_ROWS, rows)
        wc = None if w is None else w[lo:hi]
        weight = float(hi - lo) if wc is None else float(wc.sum())
        if weight == 0.0:  # rows that weigh 0 add nothing
            continue
        Xm, ym = _prepare(prep, X[lo:hi], y[lo:hi], idx, lo, index)
        with np.errstate(over="ignore", invalid="ignore"):
            loss, grads = prep.model.loss_and_grad(params, Xm, ym, wc)
            for k, g in grads.items():
                grads_sum[k] += np.asarray(g, dtype=np.float64) * weight
            loss_sum += float(loss) * weight
        weight_sum += weight
    return Partial(grads_sum, loss_sum, weight_sum, rows)


class _Literal:
    """A value a task takes as it is: dask does not look inside it (as it would in a dict or a
    dataclass), so parameters and the preparer travel as one pickled object."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value


def _params(params: _Literal) -> dict[str, np.ndarray]:
    return params.value


def _shipped(params: dict[str, np.ndarray], name: str) -> Any:
    """A copy of ``params`` as a task argument (fit updates them in place after the call): inline
    up to :data:`INLINE_BYTES`, else one task whose result the partition tasks fetch."""
    from dask import delayed

    copy = {k: np.array(v, copy=True) for k, v in params.items()}
    if sum(v.nbytes for v in copy.values()) > INLINE_BYTES:
        return delayed(_params, pure=False)(_Literal(copy), dask_key_name=f"{name}-params")
    return _Literal(copy)


def _task(fn: Any, part: Any, shared: Any, args: _Literal, index: int) -> Any:
    """``fn(partition, shared, args, index)``, the literals unwrapped (:meth:`DaskSource.map_partitions`)."""
    return fn(part, shared.value if isinstance(shared, _Literal) else shared, args.value, index)


def _objective_group(shared: Any, how: _Literal, spec: _Literal, *parts: Any) -> Partial:
    """The blocks ``spec`` of the objective (:mod:`descend.data.objective`), added in order when
    they are a group of the tree. ``spec`` is ``(blocks, grouped)``: each block a list of
    ``(j, p, lo, hi)`` pieces, rows ``lo..hi`` of ``parts[j]`` (partition ``p``)."""
    params = shared.value if isinstance(shared, _Literal) else shared
    prep = how.value
    block_specs, grouped = spec.value
    out = []
    for pieces in block_specs:
        X, y, w = concat_rows(
            (parts[j][0][lo:hi], parts[j][1][lo:hi], None if parts[j][2] is None else parts[j][2][lo:hi])
            for j, _, lo, hi in pieces
        )

        def where(i: int, pieces: Any = pieces) -> str:
            for _, p, lo, hi in pieces:
                if i < hi - lo:
                    return f"partition {p}, row {lo + i} of the partition"
                i -= hi - lo
            return "a row past the block"

        def prepare(Xb: np.ndarray, yb: np.ndarray, pieces: Any = pieces, where: Any = where) -> Any:
            try:
                return prep(Xb, yb, where=where) if _accepts_where(type(prep)) else prep(Xb, yb)
            except DataError as exc:
                p = pieces[0][1]
                raise DataError(f"partition {p}: {exc}", file=f"partition {p}") from None

        out.append(block_partial(prep.model, params, X, y, w, prepare))
    return add(*out) if grouped else out[0]


def _summary(
    part: tuple[np.ndarray, np.ndarray, Any], classes: bool, moments: bool, index: int, targets: bool = False
) -> tuple:
    """(:class:`~descend.data._moments.Moments`, sorted distinct labels) of one partition; with
    ``targets`` the mean and M2 of each target output follow those of the features."""
    X, y, _ = part
    n = int(X.shape[0])
    labels: list[Any] = []
    if classes and n:
        labels = np.unique(y).tolist()
        if len(labels) > MAX_CLASSES:
            raise too_many_classes(f"partition {index}")
    moments_p = Moments(n, None, None)
    if (moments or targets) and n:
        cols = [np.asarray(X, dtype=np.float64)] if moments else []
        if targets:
            cols.append(np.asarray(y, dtype=np.float64).reshape(n, -1))
        moments_p = Moments.of(np.concatenate(cols, axis=1))
    return moments_p, labels


# -- the source ------------------------------------------------------------------------------------


class DaskSource(DataSource):
    """Training data held as persisted partitions on a Dask cluster (see the module docstring).

    Build one with :func:`from_dask` (a dask DataFrame and its target column, or dask arrays),
    or pass ``(dask_X, dask_y)`` to ``fit``. ``fit`` calls :meth:`gradients`; :meth:`batches`
    (for a validation source or ``Run.evaluate``) brings the rows to the client a chunk of at
    most :data:`~descend.data.base.PART_ROWS` rows at a time, so memory stays bounded.
    """

    #: fit asks this source for each batch's (loss, gradient) instead of for its rows
    computes_gradients = True
    #: fit(sync_every=H) runs local SGD on it: H steps per partition task (map_partitions)
    runs_local_steps = True

    def __init__(
        self,
        parts: list[Any],
        *,
        client: Any,
        n_features: int,
        description: str,
        feature_names: tuple[str, ...] | None = None,
        sizes: Sequence[int] | None = None,
        kind: str = "arrays",
    ):
        self.client = client
        # persisted by pure tasks: a partition lost with a worker is recomputed from its graph
        self._parts = list(parts) if _are_futures(parts) else _persist(client, parts)
        self._n_features = int(n_features)
        self._known_sizes = None if sizes is None else [int(s) for s in sizes]
        self._sizes: list[int] | None = None
        self.description = description
        self.feature_names = feature_names
        self.kind = kind
        self._id = os.urandom(6).hex()  # names this source's task keys
        self._count = itertools.count()
        self._perms: dict[tuple[int, int, int], np.ndarray] = {}

    # -- what the source says about itself ------------------------------------------------------
    @property
    def n_features(self) -> int:
        return self._n_features

    @property
    def n_partitions(self) -> int:
        return len(self._parts)

    @property
    def targets(self) -> None:
        """Never gathered: classes and moments are found by tasks on the workers."""
        return None

    def shard_sizes(self) -> list[int]:
        """Rows per partition; the first call waits for the partitions to be persisted, so bad
        data (NaN/inf, a missing target) is reported here, naming the partition and the row."""
        if self._sizes is None:
            futures = [
                self.client.submit(_part_rows, f, key=f"descend-rows-{self._id}-{i}")
                for i, f in enumerate(self._parts)
            ]
            sizes = [int(s) for s in self.client.gather(futures)]
            if sum(sizes) == 0:
                raise DataError(f"{self.description} holds no rows")
            self._sizes = sizes
        return self._sizes

    @property
    def n_samples(self) -> int:
        return int(sum(self.shard_sizes()))

    def fingerprint(self) -> dict[str, Any]:
        import hashlib

        sizes = self.shard_sizes()
        layout = hashlib.sha256(np.asarray(sizes, dtype=np.int64).tobytes()).hexdigest()[:16]
        return {
            "description": self.description,
            "n_samples": self.n_samples,
            "n_features": self.n_features,
            "partitions": len(sizes),
            "layout": layout,
        }

    def summarize(self, *, classes: bool, moments: bool, targets: bool = False) -> Summary:
        """Classes and per-feature (and with ``targets``, per-output) mean/std from one task per
        partition, merged on the client in partition order (:func:`~descend.data._moments.merge`,
        Chan et al.'s pairwise update; the data stays on the workers)."""
        name = f"descend-{self._id}-{next(self._count)}-summary"  # keys unique per call
        futures = [
            self.client.submit(_summary, f, classes, moments, i, targets, key=f"{name}-{i}")
            for i, f in enumerate(self._parts)
        ]
        n, total = 0, Moments(0, None, None)
        labels: set[Any] = set()
        for part, labels_c in self.client.gather(futures):
            labels.update(labels_c)
            if classes and len(labels) > MAX_CLASSES:
                raise too_many_classes()
            if moments or targets:
                total = merge(total, part)
            n += part.n
        out = Summary(n_rows=n)
        if classes:
            out.classes = np.array(sorted(labels))
        d = self.n_features if moments else 0
        if total.n == 0:  # no rows at all
            total = Moments(0, np.zeros(d), np.zeros(d))
        mean, std = total.mean, total.std
        if moments:
            out.mean, out.std = mean[:d], std[:d]
        if targets and len(mean) > d:  # the targets' columns follow the features'
            out.target_mean, out.target_std = mean[d:], std[d:]
        return out

    def read_shard(self, shard: int, skip: int = 0) -> Iterator[Chunk]:
        """Rows of partition ``shard`` brought to the client, :data:`PART_ROWS` at a time."""
        sizes = self.shard_sizes()
        first = int(sum(sizes[:shard]))
        for lo in range(skip, sizes[shard], PART_ROWS):
            hi = min(lo + PART_ROWS, sizes[shard])
            X, y, w = self.client.submit(_part_slice, self._parts[shard], lo, hi, pure=False).result()
            yield Chunk(X, y, np.arange(first + lo, first + hi), f"{self.description} partition {shard}", w)

    def split(self, fraction: float, seed: int) -> tuple[DaskSource, DaskSource]:
        """(training, validation) sources: the rows :func:`~descend.data.split.holdout_mask` holds
        out by (seed, row number), as for every other source, cut by tasks on the workers."""
        sizes = self.shard_sizes()
        firsts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist()
        name = f"descend-{self._id}-{next(self._count)}-split"
        out = []
        for held_out, side, share in ((False, "training", 1 - fraction), (True, "validation", fraction)):
            parts = [
                self.client.submit(
                    _holdout, f, int(first), fraction, seed, held_out, key=f"{name}-{side}-{i}"
                )
                for i, (f, first) in enumerate(zip(self._parts, firsts, strict=True))
            ]
            src = DaskSource(
                parts,
                client=self.client,
                n_features=self.n_features,
                description=f"{self.description} ({side} {share:.0%})",
                feature_names=self.feature_names,
                kind=self.kind,
            )
            src.target, src.columns = self.target, self.columns
            out.append(src)
        for src in out:
            try:
                src.shard_sizes()
            except DataError:  # no rows on this side
                raise ValueError(
                    f"fit: validation={fraction} leaves no rows on the {src.description} side of "
                    f"{self.n_samples} rows; need at least one row on each side"
                ) from None
        return out[0], out[1]

    # -- gradients ------------------------------------------------------------------------------
    def _order(self, seed: int, epoch: int, p: int, n: int) -> np.ndarray:
        """Partition ``p``'s row order in ``epoch`` (cached for the partitions in use)."""
        key = (seed, epoch, p)
        if key not in self._perms:
            if len(self._perms) >= 4:
                self._perms.pop(next(iter(self._perms)))
            self._perms[key] = window_order(seed, epoch, p, n)
        return self._perms[key]

    def plan(
        self, epoch: int, batch_size: int | None, *, shuffle: bool, seed: int, batch: int
    ) -> list[tuple[int, Any]]:
        """``[(partition, rows)]`` of batch ``batch``, sorted by partition id; ``rows`` is None
        (the whole partition), a slice, or an index array into the partition."""
        sizes = np.asarray(self.shard_sizes(), dtype=np.int64)
        n = int(sizes.sum())
        if batch_size is None or batch_size >= n:
            return [(p, None) for p in range(len(sizes)) if sizes[p]]
        order = epoch_plan(seed, epoch, len(sizes), shuffle)
        ends = np.cumsum(sizes[order])
        lo, hi = batch * batch_size, min((batch + 1) * batch_size, n)
        out = []
        k = int(np.searchsorted(ends, lo, side="right"))
        while k < len(order) and (int(ends[k - 1]) if k else 0) < hi:
            start = int(ends[k - 1]) if k else 0
            p, size = int(order[k]), int(sizes[order[k]])
            a, z = max(lo - start, 0), min(hi - start, size)
            if z > a:
                if a == 0 and z == size:
                    rows: Any = None
                elif shuffle:
                    rows = self._order(seed, epoch, p, size)[a:z]
                else:
                    rows = slice(a, z)
                out.append((p, rows))
            k += 1
        return sorted(out, key=lambda t: t[0])

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
        """``(batch, loss, gradients, rows)`` for the batches of ``epoch`` from ``start`` on, each
        computed on the workers for ``params`` as they are when the batch is asked for."""
        n_b = n_batches_for(self.n_samples, batch_size, drop_last)
        for b in range(start, n_b):
            plan = self.plan(epoch, batch_size, shuffle=shuffle, seed=seed, batch=b)
            total = self.step(params, prep, plan)
            w = total.weight
            grads = {k: (total.grads[k] / w).astype(v.dtype, copy=False) for k, v in params.items()}
            yield b, total.loss / w, grads, total.rows

    def step(self, params: dict[str, np.ndarray], prep: Any, plan: list[tuple[int, Any]]) -> Partial:
        """Submit one task per contributing partition, sum in a fixed tree, return the total.

        The step's tasks go to the scheduler as one graph (one message, not one per task).
        """
        from dask import delayed

        step = next(self._count)
        name = f"descend-{self._id}-{step}"
        shipped = _shipped(params, name)
        how = _Literal(prep)
        level = [
            delayed(_partial, pure=False)(
                self._parts[p], shipped, how, rows, p, dask_key_name=f"{name}-partial-{p}"
            )
            for p, rows in plan
        ]
        return self._reduce(level, add, name)

    def objective(
        self, model: Any, params: dict[str, np.ndarray], prep: Any, *, encoded: bool = False
    ) -> Partial:
        """The full-batch objective's sums (:mod:`descend.data.objective`) computed on the
        workers: one task per group of ``FANIN`` blocks (a block that straddles partitions
        takes its rows from each), the groups added in the same tree as everywhere else, so the
        bits are those of the same rows in memory. ``encoded`` is ignored (the workers encode)."""
        from dask import delayed

        sizes = self.shard_sizes()
        n = int(sum(sizes))
        starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        n_blocks = objective_blocks(n)
        grouped = tree_depth(n_blocks) > 0
        width = FANIN if grouped else 1
        name = f"descend-{self._id}-{next(self._count)}"
        shipped = _shipped(params, name)
        how = _Literal(prep)
        level = []
        for g in range(0, n_blocks, width):
            used: list[int] = []  # partitions this task reads, in order
            block_specs = []
            for k in range(g, min(g + width, n_blocks)):
                lo, hi = k * BLOCK_ROWS, min((k + 1) * BLOCK_ROWS, n)
                pieces = []
                p = int(np.searchsorted(starts, lo, side="right")) - 1
                while lo < hi:
                    while sizes[p] == 0 or starts[p + 1] <= lo:
                        p += 1
                    a, z = lo - int(starts[p]), min(hi, int(starts[p + 1])) - int(starts[p])
                    if p not in used:
                        used.append(p)
                    pieces.append((used.index(p), p, a, z))
                    lo += z - a
                block_specs.append(pieces)
            level.append(
                delayed(_objective_group, pure=False)(
                    shipped,
                    how,
                    _Literal((block_specs, grouped)),
                    *[self._parts[p] for p in used],
                    dask_key_name=f"{name}-objective-{g}",
                )
            )
        return self._reduce(level, add, name)

    def map_partitions(
        self, fn: Any, shared: Any, work: Sequence[tuple[int, Any]], add: Any, *, shared_bytes: int
    ) -> Any:
        """``add`` over ``fn(partition, shared, args, p)`` for each ``(p, args)`` of ``work``:
        one task per listed partition, results added ``FANIN`` at a time in partition order (on
        the workers; the root on the client), as :meth:`step` sums gradients.

        ``fn`` and ``add`` are top-level functions, pure in their arguments (a task lost with a
        worker is recomputed from them); ``shared`` travels inline in every task when
        ``shared_bytes`` <= :data:`INLINE_BYTES`, else once, as a task whose result the others
        fetch. Nothing is pinned: the result does not depend on which worker ran what.
        """
        from dask import delayed

        name = f"descend-{self._id}-{next(self._count)}"
        shipped: Any = _Literal(shared)
        if shared_bytes > INLINE_BYTES:
            shipped = delayed(_params, pure=False)(shipped, dask_key_name=f"{name}-shared")
        level = [
            delayed(_task, pure=False)(
                fn, self._parts[p], shipped, _Literal(args), p, dask_key_name=f"{name}-task-{p}"
            )
            for p, args in sorted(work, key=lambda item: item[0])
        ]
        return self._reduce(level, add, name)

    def _reduce(self, level: list[Any], add: Any, name: str) -> Any:
        """``add`` over the delayed results ``level`` in a fixed tree: groups of ``FANIN`` in
        order, inner levels on the workers, the root on the client."""
        from dask import delayed

        depth = 0
        while len(level) > FANIN:  # inner levels on the workers, groups in partition order
            level = [
                delayed(add, pure=False)(*level[i : i + FANIN], dask_key_name=f"{name}-sum-{depth}-{i}")
                for i in range(0, len(level), FANIN)
            ]
            depth += 1
        futures = self.client.compute(level, optimize_graph=False)
        # the root on the client: one hop less than a last reduction task, same order and bits
        return add(*self.client.gather(futures))

    def __repr__(self) -> str:
        return f"DaskSource({self.description!r})"


# -- building sources ------------------------------------------------------------------------------


def _dtype_arg(owner: str, dtype: Any) -> np.dtype | None:
    if dtype is None:
        return None
    name = np.dtype(dtype).name
    if name not in ("float32", "float64"):
        raise ParameterError(
            f"{owner}: dtype must be 'float32', 'float64' or None, got {dtype!r}",
            owner=owner,
            param="dtype",
            value=dtype,
        )
    return np.dtype(name)


def _from_arrays(X: Any, y: Any, w: Any, client: Any, owner: str) -> DaskSource:
    import dask.array as da
    from dask import delayed

    for name, a in (("X", X), ("y", y), ("sample_weight", w)):
        if a is not None and not isinstance(a, da.Array):
            raise ParameterTypeError(
                f"{owner}: with a dask array X, {name} must be a dask array too, got {describe(a)}",
                owner=owner,
                param=name if name != "X" else "data",
                value=a,
            )
    if X.ndim != 2:
        raise ValueError(f"{owner}: X must be 2-D (samples x features), got shape {X.shape}")
    if y.ndim not in (1, 2):
        raise ValueError(f"{owner}: y must be 1-D or 2-D, got shape {y.shape}")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == np.bool_) or X.dtype.kind == "c":
        raise TypeError(f"{owner}: X must hold real numbers, got dtype {X.dtype}")
    if math.isnan(X.shape[1]) or X.shape[1] == 0:
        raise ValueError(f"{owner}: X must have a known, non-zero number of columns, got shape {X.shape}")
    rows_known = not any(math.isnan(c) for c in X.chunks[0])
    if rows_known and not any(math.isnan(s) for s in y.shape) and y.shape[0] != X.shape[0]:
        raise ValueError(f"{owner}: X has {X.shape[0]} rows but y has {y.shape[0]}; they must match")
    if X.numblocks[1] != 1:
        X = X.rechunk({1: -1})
    if y.ndim == 2 and y.numblocks[1] != 1:
        y = y.rechunk({1: -1})
    if rows_known and y.chunks[0] != X.chunks[0]:  # align y's row chunks with X's partitions
        y = y.rechunk({0: X.chunks[0]})
    if w is not None and rows_known and w.chunks[0] != X.chunks[0]:
        w = w.rechunk({0: X.chunks[0]})
    xs = X.to_delayed().reshape(-1)
    ys = y.to_delayed().reshape(-1)
    ws = [None] * len(xs) if w is None else list(w.to_delayed().reshape(-1))
    if len(ys) != len(xs) or len(ws) != len(xs):
        raise ValueError(
            f"{owner}: X and y must have the same row chunks (X has {len(xs)} partitions, y {len(ys)})"
        )
    n = int(X.shape[0]) if rows_known else None
    desc = f"dask arrays ({n if n is not None else '?'} x {X.shape[1]}, {len(xs)} partitions)"
    parts = [delayed(_make_part, pure=True)(xs[i], ys[i], ws[i], i, desc, None) for i in range(len(xs))]
    return DaskSource(
        parts,
        client=client,
        n_features=int(X.shape[1]),
        description=desc,
        sizes=list(X.chunks[0]) if rows_known else None,
    )


def from_dask(
    data: Any,
    target: str | None = None,
    features: Sequence[str] | None = None,
    *,
    weight: str | None = None,
    dtype: Any = None,
    client: Any = None,
    owner: str = "from_dask",
) -> DaskSource:
    """A data source over a dask DataFrame (and its ``target`` column) or dask arrays.

    ``data`` is a dask DataFrame (e.g. ``dask.dataframe.read_parquet`` on shared storage) with
    ``target=`` naming its target column and ``features`` its feature columns (default: every
    other column, which must be numeric; ``weight=`` names a sample-weight column), or an
    ``(X, y)`` / ``(X, y, sample_weight)`` tuple of dask arrays whose row chunks are the
    partitions. ``dtype`` of the features: ``"float32"``, ``"float64"`` or None (float32 when
    every feature column is float32 or narrower, else float64; arrays keep theirs).

    Each partition is computed by one pure task and persisted on the workers of ``client``
    (default: the current :class:`distributed.Client`); the client never gathers the data.
    """
    dask = _dask()
    client = _client(client, owner)
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        if target is not None or features is not None or weight is not None:
            raise ParameterTypeError(
                f"{owner}: target, features and weight apply to a dask DataFrame, not to arrays",
                owner=owner,
                param="target",
                value=target,
            )
        X, y, w = data[0], data[1], data[2] if len(data) == 3 else None
        return _from_arrays(X, y, w, client, owner)
    import dask.dataframe as dd

    if not isinstance(data, dd.DataFrame):
        raise ParameterTypeError(
            f"{owner}: data must be a dask DataFrame or an (X, y) tuple of dask arrays, got {describe(data)}",
            owner=owner,
            param="data",
            value=data,
        )
    columns = [str(c) for c in data.columns]
    if not isinstance(target, str) or target not in columns:
        raise ParameterError(
            f"{owner}: target must name a column of the DataFrame, got {target!r}; columns: "
            + ", ".join(columns),
            owner=owner,
            param="target",
            value=target,
        )
    taken = {target} | ({weight} if weight is not None else set())
    if weight is not None and weight not in columns:
        raise ParameterError(
            f"{owner}: weight must name a column of the DataFrame, got {weight!r}",
            owner=owner,
            param="weight",
            value=weight,
        )
    dtypes = data.dtypes
    excluded: dict[str, str] = {}
    if features is None:
        # identifiers by name are left out, as ds.data.open leaves them out of a file's features
        # (their values are not looked at here: that would compute a partition)
        excluded = {c: "an identifier by its name" for c in columns if c not in taken and id_name(c)}
        feats = [c for c in columns if c not in taken and c not in excluded]
        bad = [c for c in feats if dtypes[c].kind not in "biuf"]
        if bad:
            raise DataError(
                f"{owner}: column {bad[0]!r} is not numeric ({dtypes[bad[0]]}); pass features=[...] to "
                "choose the feature columns",
                column=bad[0],
            )
    else:
        feats = [str(c) for c in features]
        missing = [c for c in feats if c not in columns]
        if missing:
            raise ParameterError(
                f"{owner}: feature column(s) {', '.join(map(repr, missing))} not in the DataFrame; columns: "
                + ", ".join(columns),
                owner=owner,
                param="features",
                value=features,
            )
        if taken & set(feats):
            raise ParameterError(
                f"{owner}: the target (or weight) column is also listed in features",
                owner=owner,
                param="features",
                value=features,
            )
        bad = [c for c in feats if dtypes[c].kind not in "biuf"]
        if bad:
            raise DataError(
                f"{owner}: feature column {bad[0]!r} is not numeric ({dtypes[bad[0]]})", column=bad[0]
            )
    if not feats:
        raise DataError(f"{owner}: the DataFrame has no feature columns besides the target {target!r}")
    dt = _dtype_arg(owner, dtype)
    if dt is None:
        narrow = all(dtypes[c].kind == "f" and dtypes[c].itemsize <= 4 for c in feats)
        dt = np.dtype(np.float32 if narrow else np.float64)
    frames = data.to_delayed()
    desc = f"dask DataFrame ({len(feats)} features, target {target!r}, {len(frames)} partitions)"
    parts = [
        dask.delayed(_frame_part, pure=True)(f, tuple(feats), target, weight, dt.name, i, desc)
        for i, f in enumerate(frames)
    ]
    source = DaskSource(
        parts,
        client=client,
        n_features=len(feats),
        description=desc,
        feature_names=tuple(feats),
        kind="dataframe",
    )
    # named like a file's: a run keeps them, and prediction data may hold the target
    source.target, source.columns = target, tuple(columns)
    source.excluded = excluded
    source.notes = [
        f"from_dask left out column {c!r} ({why}); name it in features=[...] to train on it"
        for c, why in excluded.items()
    ]
    return source


def read(
    path: str,
    *,
    target: str,
    features: Sequence[str] | None = None,
    dtype: Any = None,
    client: Any = None,
    blocksize: str | int | None = "64MiB",
) -> DaskSource:
    """A source over Parquet or CSV files read *by the workers* (``dask.dataframe``): the path
    must be visible to every worker (shared storage, or one machine). ``.csv.gz`` is read one
    partition per file (gzip cannot be split)."""
    owner = "descend.data.dask.read"
    _dask()
    import dask.dataframe as dd

    p = str(path)
    if p.endswith(".npy"):
        raise ParameterError(
            f"{owner}: .npy files are not read on a cluster; write Parquet (one file per partition), "
            f"got {p!r}",
            owner=owner,
            param="data",
            value=p,
        )
    if p.endswith((".csv", ".csv.gz")) or p.endswith(".gz"):
        frame = dd.read_csv(p, blocksize=None if p.endswith(".gz") else blocksize)
    else:
        frame = dd.read_parquet(p)
    return from_dask(frame, target=target, features=features, dtype=dtype, client=client, owner=owner)


def connect(spec: str, *, owner: str = "connect", param: str = "dask") -> tuple[Any, Any]:
    """``(client, cluster)`` for ``--dask SPEC``: ``"tcp://HOST:PORT"`` connects to a running
    scheduler (``cluster`` is None); ``"local:N"`` starts a :class:`distributed.LocalCluster` of N
    worker processes (one thread each, loopback only, no work stealing) for this run. The caller
    closes both, the client first: ``client.close()`` and, when not None, ``cluster.close()``.
    """
    _dask()
    from distributed import Client, LocalCluster

    if not isinstance(spec, str):
        raise ParameterTypeError(
            f"{owner}: {param} must be 'tcp://HOST:PORT' or 'local:N', got {describe(spec)}",
            owner=owner,
            param=param,
            value=spec,
        )
    if spec.startswith("local:"):
        try:
            n = int(spec.split(":", 1)[1])
        except ValueError:
            n = 0
        if n < 1:
            raise ParameterError(
                f"{owner}: {param} must be 'local:N' with N >= 1 worker processes, got {spec!r}",
                owner=owner,
                param=param,
                value=spec,
            )
        import dask

        # no work stealing: a gradient task's input is a whole partition, cheaper to wait for than
        # to move (results are the same either way; only the time differs)
        with dask.config.set({"distributed.scheduler.work-stealing": False}), warnings.catch_warnings():
            # no dashboard; the scheduler's small HTTP server moves off a busy port 8787 (on loopback)
            warnings.filterwarnings("ignore", message="Port 8787 is already in use")
            cluster = LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
            )
        return Client(cluster), cluster
    if "://" not in spec:
        raise ParameterError(
            f"{owner}: {param} must be 'tcp://HOST:PORT' (a running scheduler) or 'local:N' (N worker "
            f"processes started for this run), got {spec!r}",
            owner=owner,
            param=param,
            value=spec,
        )
    try:
        return Client(spec, timeout="10s"), None
    except OSError as exc:
        raise ParameterError(
            f"{owner}: could not reach the Dask scheduler at {spec!r}: {exc}",
            owner=owner,
            param=param,
            value=spec,
        ) from None


# -- data generated on the workers (benchmarks, tests, examples) ----------------------------------


def _synthetic_block(
    seed: int, index: int, rows: int, n_features: int, task: str, dtype: str
) -> tuple[np.ndarray, np.ndarray]:
    """Partition ``index`` of :func:`synthetic`: a pure function of its arguments."""
    coef = np.random.default_rng([seed, 0]).standard_normal(n_features)
    rng = np.random.default_rng([seed, 1, index])
    X = rng.standard_normal((rows, n_features)).astype(dtype)
    z = X.astype(np.float64) @ coef + 0.5 * rng.standard_normal(rows)
    if task == "regression":
        return X, z.astype(dtype)
    if task == "binary":
        return X, (z > 0).astype(np.int64)
    return X, np.digitize(z, np.quantile(z, [1 / 3, 2 / 3])).astype(np.int64)


def _partition_rows(n_rows: int, partitions: int) -> list[int]:
    base, extra = divmod(n_rows, partitions)
    return [base + (i < extra) for i in range(partitions)]


def synthetic(
    n_rows: int,
    n_features: int,
    *,
    partitions: int,
    seed: int = 0,
    task: str = "binary",
    dtype: str = "float64",
) -> tuple[Any, Any]:
    """``(X, y)`` dask arrays generated on the workers, one pure task per partition (nothing
    travels from the client). ``task``: ``"regression"``, ``"binary"`` or ``"multiclass"`` (3
    classes). :func:`synthetic_arrays` gives the same numbers in memory."""
    _dask()
    import dask.array as da
    from dask import delayed

    n_rows = check_int("synthetic", "n_rows", n_rows, low=1)
    partitions = check_int("synthetic", "partitions", partitions, low=1, high=n_rows)
    xs, ys = [], []
    ydt = np.dtype(dtype) if task == "regression" else np.dtype(np.int64)
    for i, rows in enumerate(_partition_rows(n_rows, partitions)):
        block = delayed(_synthetic_block, pure=True, nout=2)(seed, i, rows, n_features, task, dtype)
        xs.append(da.from_delayed(block[0], (rows, n_features), dtype=np.dtype(dtype)))
        ys.append(da.from_delayed(block[1], (rows,), dtype=ydt))
    return da.concatenate(xs), da.concatenate(ys)


def synthetic_arrays(
    n_rows: int,
    n_features: int,
    *,
    partitions: int,
    seed: int = 0,
    task: str = "binary",
    dtype: str = "float64",
) -> tuple[np.ndarray, np.ndarray]:
    """The rows of :func:`synthetic` as NumPy arrays, computed here (for in-memory references)."""
    blocks = [
        _synthetic_block(seed, i, rows, n_features, task, dtype)
        for i, rows in enumerate(_partition_rows(n_rows, partitions))
    ]
    return np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks])
