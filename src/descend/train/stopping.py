"""When a loop stops on its own: fit's training loss has stopped improving (``epochs=None``), or
a run has diverged (:class:`DivergenceGuard`, shared by fit, minimize and lr_find).

The plateau rule, checked every ``period`` updates (about :data:`CHECK_SAMPLES` samples, or one epoch
when that is shorter, so SGD may stop in the middle of an epoch):

- ``m`` is the mean batch loss of the last period (each batch's loss is computed anyway, before
  its update, so the check costs nothing extra);
- a period *improves* when ``m < best - tol * max(|best|, 1)``, where ``best`` is the lowest
  ``m`` so far (scikit-learn's ``tol`` rule, relative to the loss's size);
- training stops after ``n_iter_no_change`` periods in a row without improvement, or at
  ``max_epochs``.

The mean over thousands of samples averages out most of the batch-to-batch noise; ``best`` is
the minimum of noisy means, so once the loss flattens later means rarely beat it by ``tol``.

The divergence guard, checked at every step on the loss and gradient norm the step computed
before its update: the run has diverged when either is NaN or infinite (every loop), or, with a
growth factor (fit's ``divergence_factor``, default ``1e4``; lr_find's ``diverge_factor``), when
the loss has grown by the rule below:

- ``s`` is the smoothed batch loss: a bias-corrected exponential moving average over about
  :data:`SMOOTH_ROWS` rows (at least 10 and at most 1,000 batches), so that one outlier batch moves
  it little while a blow-up, which multiplies the loss, moves it at once;
- ``best`` is the lowest ``s`` so far and ``first`` the first one (the loss at the initial
  parameters); both are taken once ``s`` covers :data:`MIN_ROWS` rows, so a batch of a few rows
  that happens to fit perfectly is not the reference (before that, with batches of fewer rows,
  only a growth by ``factor**2`` from the first batch's loss counts);
- the run has diverged when :func:`grown` holds: ``s - best > max(factor * |best|, 10 * |first|)``:
  the loss grew by ``factor`` times its best, and by more than ten times the loss it started
  from (the second term keeps a best near 0, as on separable data, from making ordinary noise
  look like growth).

At lr=1e6 an MLP's loss goes from about 2 to 1e13 in one update: the rule holds at the next step,
long before the loss is infinite. fit() then raises :class:`~descend.DivergenceError` with the
parameters of the last good state: the first state, and then a copy every ``window`` steps
(about :data:`SMOOTH_ROWS` rows) while ``s`` stays :func:`near_best` (into the same buffers each
time; the steps in between copy nothing).

lr_find's sweep is the same rule with its own constants: ``beta`` sets the smoothing, any row
count is enough for a reference, and there is no floor: it ends where the smoothed loss exceeds
``diverge_factor`` times its best (a growth by ``diverge_factor - 1`` times the best).
minimize checks finiteness only.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

__all__ = [
    "CHECK_SAMPLES",
    "MIN_ROWS",
    "SMOOTH_ROWS",
    "Divergence",
    "DivergenceGuard",
    "PlateauStop",
    "grown",
    "growth_limit",
    "near_best",
    "non_finite",
]

#: samples between two checks of the rule (or one epoch, whichever is shorter)
CHECK_SAMPLES = 50_000
#: rows the divergence rule's smoothed loss averages over (an EMA of 10 to 1,000 batches)
SMOOTH_ROWS = 1_000
#: rows the smoothed loss must cover before it becomes the divergence rule's reference
MIN_ROWS = 32
#: the divergence rule's floor: growth must also exceed this many times the first loss
FIRST_MULTIPLE = 10.0


def growth_limit(*, best: float, first: float, factor: float, floor: float = FIRST_MULTIPLE) -> float:
    """The loss above which :func:`grown` holds."""
    return best + max(factor * abs(best), floor * abs(first))


def grown(loss: float, *, best: float, first: float, factor: float, floor: float = FIRST_MULTIPLE) -> bool:
    """The divergence rule: ``loss`` has grown from ``best`` by more than ``factor * |best|`` and
    by more than ``floor`` (:data:`FIRST_MULTIPLE`) times ``|first|`` (the module docstring
    says why).

    >>> grown(5e12, best=2.3, first=2.3, factor=1e4), grown(20.0, best=1e-6, first=2.3, factor=1e4)
    (True, False)
    """
    return loss > growth_limit(best=best, first=first, factor=factor, floor=floor)


def near_best(loss: float, *, best: float, first: float) -> bool:
    """A state worth keeping as the last good one: ``loss`` within ``max(|best|, |first|)`` of
    ``best``."""
    return loss <= best + max(abs(best), abs(first))


class Divergence(NamedTuple):
    """What the guard found at a step: the ``quantity`` that diverged (``"loss"``,
    ``"gradient"``; fit also checks ``"update"`` and ``"optimizer state"``), the ``cause`` in
    words (what :class:`~descend.DivergenceError` carries: ``"loss became non-finite"``,
    ``"loss grew from 2.3 to 5e+12"``), and whether the loss ``grew`` (else a value is not
    finite)."""

    quantity: str
    cause: str
    grew: bool

    @classmethod
    def not_finite(cls, quantity: str) -> Divergence:
        return cls(quantity, f"{quantity} became non-finite", False)


def non_finite(loss: float, grad_norm: float) -> Divergence | None:
    """The finiteness half of the guard, on its own: a NaN or infinite loss (checked first) or
    gradient norm, else None.

    >>> non_finite(float("nan"), 1.0).cause, non_finite(1.0, 2.0)
    ('loss became non-finite', None)
    """
    if math.isfinite(loss) and math.isfinite(grad_norm):
        return None
    return Divergence.not_finite("loss" if not math.isfinite(loss) else "gradient")


class DivergenceGuard:
    """The divergence guard of every loop (the module docstring): fit, minimize and lr_find each
    call :meth:`check` once per step; its state is checkpointed.

    ``check(loss, grad_norm, rows)`` returns a :class:`Divergence` when the step's loss or
    gradient norm is not finite, or when (with a ``factor``; None checks finiteness only) the
    smoothed loss has grown by the rule; else None. ``keep_now`` then says whether the state
    before this update is a good one to keep: the first state, then every ``window`` steps while
    the loss is near its best. It runs once per step, so the two bounds are computed only when
    ``best`` changes. ``beta`` is the moving average's weight (by default ``1 - 1/window``, the
    window spanning about :data:`SMOOTH_ROWS` rows of ``batch_rows`` each) and ``floor`` the
    multiple of the first loss that growth must also exceed.
    """

    __slots__ = (
        "avg",
        "best",
        "beta",
        "decay",
        "factor",
        "first",
        "floor",
        "k",
        "keep_now",
        "kept",
        "limit",
        "min_rows",
        "near",
        "rows",
        "since_kept",
        "smoothed",
        "start",
        "window",
    )

    def __init__(
        self,
        factor: float | None,
        *,
        batch_rows: int = 1,
        min_rows: int = MIN_ROWS,
        beta: float | None = None,
        floor: float = FIRST_MULTIPLE,
    ):
        self.factor, self.floor = factor, floor
        if beta is None:
            self.window = min(max(10, -(-SMOOTH_ROWS // max(batch_rows, 1))), 1000)
            self.beta = 1.0 - 1.0 / self.window
        else:
            self.beta, self.window = beta, max(1, round(1.0 / (1.0 - beta)))
        self.min_rows = max(1, min_rows)
        self.avg, self.decay, self.k, self.rows = 0.0, 1.0, 0, 0
        self.smoothed = math.nan
        self.start: float | None = None  # the first batch loss
        self.best: float | None = None
        self.first: float | None = None
        self.limit = self.near = math.inf  # growth_limit and near_best's bound for best and first
        self.since_kept = 0
        self.kept = False  # not checkpointed: a resumed run keeps its first state anew
        self.keep_now = False

    def check(self, loss: float, grad_norm: float = 0.0, rows: int = 1) -> Divergence | None:
        """One step's loss and gradient norm (and the rows it trained on): what diverged, or None."""
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):  # non_finite's test, inline: per step
            return non_finite(loss, grad_norm)
        if self.factor is None:
            return None
        beta = self.beta
        self.k += 1
        self.rows += rows
        self.avg = beta * self.avg + (1.0 - beta) * loss
        self.decay *= beta  # beta**k: the bias correction
        s = self.smoothed = self.avg / (1.0 - self.decay)
        self.since_kept += 1
        self.keep_now = False
        if self.first is None:
            return self._grown() if self._warm_up(loss, s) else None
        if s < self.best:  # type: ignore[operator]
            self._set_best(s)
        elif s > self.limit:
            return self._grown()
        if self.since_kept >= self.window and s <= self.near:
            self.keep_now, self.since_kept = True, 0
        return None

    def update(self, loss: float, rows: int) -> bool:
        """Feed one batch loss to the growth rule alone; True when the loss has grown."""
        found = self.check(loss, 0.0, rows)
        return found is not None and found.grew

    @property
    def reference(self) -> float:
        """What the loss grew from: its best, or the first batch's loss before there is a best."""
        ref = self.best if self.best is not None else self.start
        return math.nan if ref is None else float(ref)

    def _grown(self) -> Divergence:
        return Divergence("loss", f"loss grew from {self.reference:.3g} to {self.smoothed:.3g}", True)

    def _warm_up(self, loss: float, s: float) -> bool:
        """Steps until ``s`` covers ``min_rows`` rows (and is not 0): the reference is not set."""
        if self.start is None:
            self.start = loss
        if self.rows < self.min_rows:
            # too few rows for a reference that one lucky batch cannot fake: only a growth by
            # factor**2 from the first batch counts (a blow-up is larger still)
            start, factor = self.start, self.factor
            assert factor is not None
            if start != 0.0 and grown(s, best=start, first=start, factor=factor**2, floor=self.floor):
                return True
        elif s != 0.0:  # a loss of exactly 0 has no scale to measure growth against yet
            self.first = s
            self._set_best(s)
        if not self.kept:
            self.keep_now, self.kept, self.since_kept = True, True, 0
        return False

    def _set_best(self, best: float) -> None:
        first, factor = self.first, self.factor
        assert first is not None and factor is not None
        self.best = best
        self.limit = growth_limit(best=best, first=first, factor=factor, floor=self.floor)
        self.near = best + max(abs(best), abs(first))

    def reason(self) -> str:
        """What grew, in fit's terms (``divergence_factor``), for its DivergenceError."""
        if self.first is None:
            return (
                f"the smoothed loss grew from the first batch's {self.start:.4g} to {self.smoothed:.4g} "
                f"within {self.min_rows} rows, more than divergence_factor**2={self.factor**2:g} times it"
            )
        return (
            f"the smoothed loss grew from its best {self.best:.4g} to {self.smoothed:.4g}, by more than "
            f"divergence_factor={self.factor:g} times its best and {self.floor:g} times the first "
            f"loss {self.first:.4g}"
        )

    def state_dict(self) -> dict[str, Any] | None:
        """What a checkpoint keeps (None for a guard that checks finiteness only)."""
        if self.factor is None:
            return None
        return {
            "avg": self.avg,
            "k": self.k,
            "rows": self.rows,
            "start": self.start,
            "best": self.best,
            "first": self.first,
        }

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if state is None or self.factor is None:
            return
        self.avg, self.k, self.rows = float(state["avg"]), int(state["k"]), int(state["rows"])
        self.decay = self.beta**self.k
        self.smoothed = self.avg / (1.0 - self.decay) if self.k else math.nan
        self.start, first, best = (
            None if state.get(key) is None else float(state[key]) for key in ("start", "first", "best")
        )
        self.first = first
        if first is not None and best is not None:
            self._set_best(best)


class PlateauStop:
    """The ``epochs=None`` stopping rule (see the module docstring); its state is checkpointed."""

    def __init__(self, *, tol: float, n_iter_no_change: int, period: int, unit: str = "steps"):
        self.tol, self.patience, self.period = tol, n_iter_no_change, period
        self.unit = unit  # what update() is fed one loss of: "steps", or "rounds" of local SGD
        self.sum, self.count = 0.0, 0
        self.best = math.inf
        self.bad = 0
        self.checks = 0

    @staticmethod
    def period_for(n_samples: int, batch_rows: int) -> int:
        rows = min(n_samples, CHECK_SAMPLES)
        return max(1, -(-rows // max(batch_rows, 1)))

    def update(self, loss: float) -> bool:
        """Feed one batch loss; True when the rule says stop."""
        self.sum += loss
        self.count += 1
        if self.count < self.period:
            return False
        m = self.sum / self.count
        self.sum, self.count = 0.0, 0
        self.checks += 1
        if m < self.best - self.tol * max(abs(self.best), 1.0) or not math.isfinite(self.best):
            self.best, self.bad = m, 0
        else:
            self.bad += 1
        return self.bad >= self.patience

    def reason(self, step: int, epoch: int, samples: int) -> str:
        per = self.period
        return (
            f"converged at step {step} (epoch {epoch}): the mean training loss over {per} {self.unit} "
            f"did not improve by more than tol={self.tol:g} for {self.patience} checks in a row "
            f"(best {self.best:.6g}, {samples:,} samples seen)"
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "sum": self.sum,
            "count": self.count,
            "best": None if math.isinf(self.best) else self.best,  # checkpoints hold no inf
            "bad": self.bad,
            "checks": self.checks,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sum, self.count = float(state["sum"]), int(state["count"])
        self.best = math.inf if state["best"] is None else float(state["best"])
        self.bad, self.checks = int(state["bad"]), int(state["checks"])
