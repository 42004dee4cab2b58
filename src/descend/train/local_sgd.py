"""Local SGD on a Dask source (``fit(..., sync_every=H)``): rounds of H local steps, averaged.

Training on a :class:`~descend.data.DaskSource` otherwise pays one round trip to the workers per
step (the parameters out, the gradient sums back), which a mini-batch of a few hundred rows
cannot repay. Local SGD (periodic model averaging; Zinkevich et al. 2010, "Parallelized
stochastic gradient descent", averaging once at the end; Stich 2018, "Local SGD converges fast
and communicates little", averaging every H steps) pays it once per *round*:

- the client ships the parameters and the optimizer state (and the rule, the schedule and the
  data preparation) to one task per partition that has rows left in the epoch;
- each task takes up to H mini-batch steps of the rule on its own partition's rows, from that
  common start, and returns its parameters, its optimizer state and its losses;
- the client averages them, weighted by the rows each task trained on, into the next round's
  start: every parameter and every optimizer buffer is the rows-weighted mean, in float64,
  summed in a fixed tree over partition ids (:data:`~descend.data.dask.FANIN` at a time) and
  cast back to the parameters' dtype. The step counter ``t`` advances by the round's length (its
  longest task), so schedules and bias corrections advance by local steps; per-run numbers of a
  rule (``state.scalars``: Nadam's momentum product, Prodigy's ``d``) are those of the tasks that
  ran the whole round, averaged the same way where they differ.

Averaging the buffers of an adaptive rule (Adam's ``m`` and ``v``, AdaGrad's sum of squares) is a
choice, not a theorem: the mean of second moments is not the second moment of the mean update,
and the mean of P normalized steps is not the normalized mean step, so an adaptive rule's
effective step differs from the same rule run on one machine with P times the batch (by less as
the partitions' gradients agree). Averaging keeps them as plain state that resumes,
checkpoints and survives lost workers like the parameters. Plain SGD (with or without momentum)
is the rule the papers above analyse.

An epoch is every partition's rows once: partition ``p``'s rows are permuted by
``window_order(seed, epoch, p, n_p)`` (as the per-step path permutes them) and cut into local
batches of B rows; round ``r`` of an epoch runs local batches ``[first, first + H)`` of every
partition that has them, so an epoch has ``max_p ceil(n_p / B)`` local steps and a partition with
fewer rows sits out the last rounds (balance the partitions). A round trains on up to ``P * H * B``
rows (H batches on each of P partitions), and with P > 1 the result differs from sequential
SGD's: it is another algorithm. With one partition every round is sequential SGD, bit for bit
what ``sync_every=None`` does, whatever H.

Every task is a pure function of its inputs (the partition, the shipped start, the seed, epoch
and round), and no task is pinned to a worker: a task lost with a worker is recomputed from the
same inputs, so the same seed gives the same bits whichever worker ran what, and the client's
checkpoints (taken between rounds) resume bit for bit.

``max_steps`` is exact: a round that would pass it is cut short, and the run ends on that
round's average. Resuming such a run with a larger ``max_steps`` starts the next round where
the cut one ended, so it has averaged once more than a run never stopped there (which averaged
only at the end of the full round): the same algorithm, not the same bits. A run resumed after a
stop at a round's end (``max_steps`` a multiple of H within the epoch, or a checkpoint) is the
uninterrupted run's bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data.base import window_order
from ..optim import Optimizer, OptState
from ..optim._flat import FlatStep
from .minimize import global_norm

__all__ = ["Round", "RoundPlan", "plan_round", "run_round", "steps_per_epoch"]


# -- the plan: which partition takes which local steps ----------------------------------------------


def local_batches(n: int, batch_size: int, drop_last: bool) -> int:
    """Local batches of a partition of ``n`` rows (the last one short unless ``drop_last``)."""
    return n // batch_size if drop_last else -(-n // batch_size)


def steps_per_epoch(sizes: list[int], batch_size: int, drop_last: bool) -> int:
    """Local steps in an epoch: those of the partition with the most local batches."""
    return max((local_batches(n, batch_size, drop_last) for n in sizes), default=0)


@dataclass(frozen=True)
class RoundPlan:
    """One round of an epoch: local batches ``first .. first + steps - 1`` of every partition that
    has them. ``work`` lists ``(partition, local steps, rows)`` in partition order."""

    epoch: int
    first: int
    steps: int
    batch_size: int
    work: tuple[tuple[int, int, int], ...]

    @property
    def rows(self) -> int:
        return sum(r for _, _, r in self.work)


def plan_round(
    sizes: list[int], batch_size: int, drop_last: bool, epoch: int, first: int, steps: int
) -> RoundPlan:
    """The round of ``epoch`` that starts at local batch ``first`` and is ``steps`` long."""
    work = []
    for p, n in enumerate(sizes):
        k = min(local_batches(n, batch_size, drop_last) - first, steps)
        if k > 0:
            rows = min((first + k) * batch_size, n) - first * batch_size
            work.append((p, k, rows))
    return RoundPlan(epoch, first, steps, batch_size, tuple(work))


# -- on the workers ---------------------------------------------------------------------------------

#: partitions' row orders of the epochs in use on this worker: (seed, epoch) -> {(p, n): order}.
#: A cache of a pure function (window_order): what a task computes does not depend on it.
_ORDERS: dict[tuple[int, int], dict[tuple[int, int], np.ndarray]] = {}


def _row_order(seed: int, epoch: int, p: int, n: int) -> np.ndarray:
    key = (seed, epoch)
    if key not in _ORDERS:
        while len(_ORDERS) >= 2:  # rounds go epoch by epoch: older epochs are done with
            _ORDERS.pop(next(iter(_ORDERS)))
        _ORDERS[key] = {}
    orders = _ORDERS[key]
    if (p, n) not in orders:
        orders[(p, n)] = window_order(seed, epoch, p, n)
    return orders[(p, n)]


@dataclass
class _Start:
    """What every task of a round starts from (shipped once per round)."""

    params: dict[str, np.ndarray]
    state: OptState
    opt: Optimizer
    prep: Any
    seed: int
    epoch: int
    first: int
    batch_size: int
    shuffle: bool


@dataclass
class _Task:
    """What a partition's task reports besides its weighted parameters and buffers."""

    partition: int
    #: per local step taken: the batch's rows, loss and gradient norm (at the step's start)
    rows: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    norms: list[float] = field(default_factory=list)
    scalars: dict[str, float] = field(default_factory=dict)
    bad: str | None = None  # "loss" or "gradient": it stopped before the step that was not finite

    @property
    def steps(self) -> int:
        return len(self.rows)


@dataclass
class _Sum:
    """Rows-weighted sums (float64) of parameters and optimizer buffers, and the tasks summed."""

    params: dict[str, np.ndarray]
    buffers: dict[str, list[np.ndarray]]
    tasks: list[_Task] = field(default_factory=list)


@dataclass(frozen=True)
class _Prepared:
    """The preparer of rows that are prepared already (a round's, at once: the preparer works row
    by row, so the rows come out as they would one batch at a time)."""

    model: Any

    def __call__(self, X: np.ndarray, y: np.ndarray, where: Any = None) -> tuple[np.ndarray, np.ndarray]:
        return X, y


def local_steps(part: tuple[np.ndarray, np.ndarray, Any], start: _Start, args: Any, p: int) -> _Sum:
    """Partition ``p``'s task: ``steps`` local steps from ``start`` on its own rows, returned as
    ``factor`` times the parameters and buffers reached (``factor``: its share of the round's rows).

    A pure function of its arguments: a copy of the start is stepped, the rows are those of the
    epoch's order (:func:`~descend.data.base.window_order`), and each gradient is computed as the
    per-step path computes it (:func:`~descend.data.dask._partial`, then the mean in the
    parameters' dtype) and applied as ``fit`` applies it. The round's rows are gathered and
    prepared once, then cut into its batches.
    """
    from ..data.dask import _partial, _prepare

    steps, factor = args
    params = {k: np.array(v, copy=True) for k, v in start.params.items()}
    state = start.state.copy()
    opt, B = start.opt, start.batch_size
    flat = FlatStep(opt, params, state) if FlatStep.applies(opt, params) else None
    leaves = list(params.values())
    X, y, w = part
    n = int(X.shape[0])
    first, last = start.first * B, min((start.first + steps) * B, n)
    if first == 0 and last == n and steps == 1:
        rows: Any = None  # the whole partition in one batch, in stored order (as the per-step path)
    elif start.shuffle:
        rows = _row_order(start.seed, start.epoch, p, n)[first:last]
    else:
        rows = slice(first, last)
    if rows is not None:
        X, y, w = X[rows], y[rows], None if w is None else w[rows]
    Xm, ym = _prepare(start.prep, X, y, rows, 0, p)
    prepared, ready = (Xm, ym, w), _Prepared(start.prep.model)
    task = _Task(p)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for j in range(steps):
            batch = None if rows is None else slice(j * B, min((j + 1) * B, last - first))
            total = _partial(prepared, params, ready, batch, p)
            weight = total.weight
            grads = [(total.grads[k] / weight).astype(v.dtype, copy=False) for k, v in params.items()]
            loss = total.loss / weight
            gnorm = global_norm(grads)
            if not (math.isfinite(loss) and math.isfinite(gnorm)):
                task.bad = "loss" if not math.isfinite(loss) else "gradient"
                break
            if flat is not None:
                flat.load(grads)
                flat.step(state)
            else:
                opt._apply(leaves, grads, state, check_finite=False)
            task.rows.append(total.rows)
            task.losses.append(loss)
            task.norms.append(gnorm)
    task.scalars = dict(state.scalars)
    return _Sum(
        params={k: v.astype(np.float64) * factor for k, v in params.items()},
        buffers={name: [b.astype(np.float64) * factor for b in bufs] for name, bufs in state.buffers.items()},
        tasks=[task],
    )


def add(*sums: _Sum) -> _Sum:
    """The sums added in the order given (the caller fixes it: by partition id)."""
    first = sums[0]
    params = {k: v.copy() for k, v in first.params.items()}
    buffers = {name: [b.copy() for b in bufs] for name, bufs in first.buffers.items()}
    for s in sums[1:]:
        for k, v in s.params.items():
            params[k] += v
        for name, bufs in s.buffers.items():
            for mine, b in zip(buffers[name], bufs, strict=True):
                mine += b
    return _Sum(params, buffers, [t for s in sums for t in s.tasks])


# -- on the client --------------------------------------------------------------------------------


@dataclass
class Round:
    """The outcome of one round: the averaged parameters and optimizer state (new arrays), the
    rows-weighted mean batch loss and gradient norm over every local step, and the rows."""

    params: dict[str, np.ndarray]
    state: OptState
    loss: float
    grad_norm: float
    rows: int
    #: ``(partition, local steps it took, "loss" | "gradient")`` when a task met a non-finite value
    bad: tuple[int, int, str] | None = None
    #: the rows-weighted mean loss and gradient norm of the tasks' first local batches, at the
    #: round's start, and their rows: where a run's divergence guard starts from (a round whose
    #: steps blow up has a mean loss that is already huge)
    start: tuple[float, float, int] | None = None


def _scalars(tasks: list[_Task], steps: int) -> dict[str, float]:
    """Per-run numbers of the rule from the tasks that ran the whole round: their common value,
    or their rows-weighted mean where they differ."""
    full = [t for t in tasks if t.steps == steps] or tasks
    out: dict[str, float] = {}
    for key in full[0].scalars:
        values = [t.scalars[key] for t in full]
        if all(v == values[0] for v in values):
            out[key] = values[0]
        else:
            out[key] = _mean(values, [sum(t.rows) for t in full])
    return out


def _mean(values: list[float], rows: list[int]) -> float:
    """The rows-weighted mean, in the order given (one value comes back unchanged)."""
    total = sum(rows)
    return float(sum(v * (r / total) for v, r in zip(values, rows, strict=True))) if total else math.nan


def run_round(
    source: Any,
    opt: Optimizer,
    params: dict[str, np.ndarray],
    state: OptState,
    prep: Any,
    plan: RoundPlan,
    *,
    seed: int,
    shuffle: bool,
) -> Round:
    """Run ``plan`` on ``source`` (a :class:`~descend.data.DaskSource`) from ``params`` and
    ``state``, which are left as they are."""
    start = _Start(
        params={k: np.array(v, copy=True) for k, v in params.items()},
        state=state.copy(),
        opt=opt,
        prep=prep,
        seed=seed,
        epoch=plan.epoch,
        first=plan.first,
        batch_size=plan.batch_size,
        shuffle=shuffle,
    )
    size = sum(v.nbytes for v in params.values()) + sum(
        b.nbytes for bufs in state.buffers.values() for b in bufs
    )
    total_rows = plan.rows
    work = [(p, (k, rows / total_rows)) for p, k, rows in plan.work]
    total = source.map_partitions(local_steps, start, work, add, shared_bytes=size)
    tasks = total.tasks
    rows = [r for t in tasks for r in t.rows]
    bad = next(((t.partition, t.steps, t.bad) for t in tasks if t.bad is not None), None)
    new_state = state.copy()
    if bad is None:
        for name, bufs in total.buffers.items():
            for dst, src in zip(new_state.buffers[name], bufs, strict=True):
                np.copyto(dst, src, casting="unsafe")
        new_state.t = np.int64(int(state.t) + plan.steps)
        new_state.scalars = _scalars(tasks, plan.steps)
    return Round(
        params={k: total.params[k].astype(v.dtype) for k, v in params.items()},
        state=new_state,
        loss=_mean([v for t in tasks for v in t.losses], rows),
        grad_norm=_mean([v for t in tasks for v in t.norms], rows),
        rows=sum(rows),
        bad=bad,
        start=_start_of(tasks),
    )


def _start_of(tasks: list[_Task]) -> tuple[float, float, int] | None:
    firsts = [t for t in tasks if t.steps]
    if not firsts:
        return None
    rows = [t.rows[0] for t in firsts]
    return _mean([t.losses[0] for t in firsts], rows), _mean([t.norms[0] for t in firsts], rows), sum(rows)
