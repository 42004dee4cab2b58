"""A race re-run over a grid of learning rates (and momentum coefficients) per optimizer, as a plain result.

Each optimizer of a :class:`~descend.lab.race.RaceResult` runs again from the same start, for the
same steps, with the same gradient noise and seed, at its race lr times each factor of a grid
(powers of two by default), and, for a rule with a momentum coefficient (``momentum``,
``nesterov``), at each coefficient of a second grid: the report's learning-rate slider shows these
runs, so overshoot and crawl are one control apart. The race's own run is the grid's start (factor
1 and its own momentum) and is reused, not run again.

>>> from descend.lab.race import race
>>> r = race("rosenbrock", ["sgd", "momentum"], steps=50)
>>> s = race_sweep(r, factors=(0.5, 1.0, 2.0), momenta=(0.5,))
>>> s.factors, s.lr_index, s.entries[1].momenta, s.entries[0].momenta
((0.5, 1.0, 2.0), 1, (0.5, 0.9), ())
>>> s.entries[1].run(s.lr_index) is r.entries[1]  # the race's own run: lr x 1, momentum 0.9
True
>>> s.entries[1].run(2, 0).label
'momentum (lr=0.002, momentum=0.5)'
"""

from __future__ import annotations

import copy
import inspect
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._validation import describe
from ..optim import rule
from .race import RaceEntry, RaceResult, race

__all__ = ["LR_FACTORS", "MOMENTA", "RaceSweep", "SweepEntry", "race_sweep"]

#: the race's lr times 1/16 ... 16: from a crawl to an overshoot for the classic six on the
#: built-in surfaces at their race lrs
LR_FACTORS: tuple[float, ...] = tuple(2.0**k for k in range(-4, 5))
#: momentum coefficients tried for a rule that has one (the race's own is added)
MOMENTA: tuple[float, ...] = (0.5, 0.9, 0.99)


@dataclass
class SweepEntry:
    """One optimizer of the race over the grid.

    ``runs[j][i]`` ran at ``lrs[i]`` and momentum ``momenta[j]``; a rule without a momentum
    coefficient has ``momenta == ()`` and one row of runs. ``momentum_index`` is the row of the
    race's own coefficient.
    """

    optimizer: str
    lrs: tuple[float, ...]
    momenta: tuple[float, ...]
    runs: list[list[RaceEntry]]
    momentum_index: int = 0

    def run(self, lr_index: int, momentum_index: int | None = None) -> RaceEntry:
        """The run at ``lrs[lr_index]`` and ``momenta[momentum_index]`` (default: the race's own)."""
        j = self.momentum_index if momentum_index is None else momentum_index
        return self.runs[j][lr_index]


@dataclass
class RaceSweep:
    """A race over a grid: ``entries[k]`` is ``race.entries[k]``'s optimizer at every grid point;
    ``factors[lr_index] == 1`` is the race's own lr."""

    race: RaceResult
    factors: tuple[float, ...]
    lr_index: int
    entries: list[SweepEntry]
    seconds: float  # wall time of the runs made (the race's own are reused)

    @property
    def runs(self) -> int:
        """Number of runs in the grid, the race's own included."""
        return sum(len(row) for e in self.entries for row in e.runs)


def _grid(owner: str, param: str, values: Sequence[float], keep: float, *, high: float | None) -> tuple:
    """``values`` with ``keep`` added, sorted, each checked (positive, finite, below ``high``)."""
    try:
        vals = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: {param} must be a sequence of numbers, got {describe(values)}") from None
    for v in vals:
        if not (math.isfinite(v) and v > 0 and (high is None or v < high)):
            allowed = "positive and finite" if high is None else f"in (0, {high:g})"
            raise ValueError(f"{owner}: every value of {param} must be {allowed}, got {v!r} in {vals}")
    return tuple(sorted({*vals, keep}))


def _options(owner: str, e: RaceEntry) -> dict[str, Any]:
    """The keyword arguments, lr aside, that rebuild ``e``'s optimizer: the settings of its class's
    constructor, read from the optimizer the race ran (as objects: ``hyperparameters()`` shows
    some as text, a companion optimizer or a None), or, for a race read back from its folder,
    from the hyperparameters it saved. What a rule fixes (Momentum's ``nesterov=False``) is the
    class's own and is not passed. Checked: the rebuilt optimizer has the race's hyperparameters."""
    r = rule(e.optimizer)
    params = inspect.signature(r.cls.__init__).parameters
    opt = getattr(e.result, "optimizer", None)
    if isinstance(opt, r.cls):
        source = {k: v for k, v in vars(opt).items() if not k.startswith("_")}
        want = opt.hyperparameters()
    else:  # a folder's YAML has lists where the optimizer had tuples
        source = {k: tuple(v) if isinstance(v, list) else v for k, v in e.hyperparameters.items()}
        want = {k: v for k, v in source.items() if k != "name"}
    opts = {k: v for k, v in source.items() if k not in ("self", "lr") and k in params}
    try:
        rebuilt = r.make(lr=e.lr, **copy.deepcopy(opts)).hyperparameters()
    except (TypeError, ValueError) as exc:
        rebuilt = {"error": str(exc)}
    if rebuilt != {**want, "lr": e.lr}:
        raise ValueError(
            f"{owner}: cannot rebuild {e.optimizer} of the race from its hyperparameters {want} "
            f"(rebuilt: {rebuilt}); the sweep re-runs each optimizer as the race made it"
        )
    return opts


def race_sweep(
    result: RaceResult,
    *,
    factors: Sequence[float] = LR_FACTORS,
    momenta: Sequence[float] = MOMENTA,
) -> RaceSweep:
    """Re-run every optimizer of ``result`` at its lr times each of ``factors`` (1 is added when
    missing: the race's own lr), and a rule with a momentum coefficient (``momentum > 0`` among
    its hyperparameters) also at each coefficient of ``momenta`` (the race's own added), as
    :func:`~descend.lab.race.race` runs it: same function, start, steps, noise and seed.

    The race's own runs are reused. A run that diverges stops there, as in the race.
    """
    owner = "race_sweep"
    if not isinstance(result, RaceResult):
        raise TypeError(
            f"{owner}: result must be a RaceResult (from descend.lab.race.race), got {describe(result)}"
        )
    factors = _grid(owner, "factors", factors, 1.0, high=None)
    lr_index = factors.index(1.0)
    t0 = time.perf_counter()
    entries = []
    for e in result.entries:
        opts = _options(owner, e)
        lrs = tuple(e.lr * c for c in factors)
        own = opts.get("momentum")
        has_momentum = isinstance(own, float) and own > 0.0
        grid = _grid(owner, "momenta", momenta, own, high=1.0) if has_momentum else ()
        rows = []
        for mu in grid or (None,):
            row = []
            for i, lr in enumerate(lrs):
                if i == lr_index and (mu is None or mu == own):
                    row.append(e)
                    continue
                # a copy each: a run must not share an optimizer object (a companion) with another
                run_opts = copy.deepcopy(opts if mu is None else {**opts, "momentum": mu})
                one = race(
                    result.function,
                    [e.optimizer],
                    lrs={e.optimizer: lr},
                    steps=result.steps,
                    start=result.start,
                    noise=result.noise,
                    seed=result.seed,
                    tol=result.tol,
                    options={e.optimizer: run_opts},
                )
                row.append(one.entries[0])
            rows.append(row)
        entries.append(SweepEntry(e.optimizer, lrs, grid, rows, grid.index(own) if grid else 0))
    return RaceSweep(result, factors, lr_index, entries, time.perf_counter() - t0)
