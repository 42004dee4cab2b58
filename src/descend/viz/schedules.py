"""Drawings of learning-rate schedules: lr against step for one schedule or several side by side."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes

from .._validation import check_bool, check_int, describe
from ..schedules import Schedule
from . import _style
from ._shared import SERIES_COLORS

__all__ = ["plot_schedules", "save_schedule_png"]


def _as_list(schedules: Any) -> list[Callable[[int], float]]:
    items = [schedules] if callable(schedules) else schedules
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence) or not items:
        raise TypeError(
            f"plot_schedules: schedules must be a schedule or a non-empty list of schedules, "
            f"got {describe(schedules)}"
        )
    for i, s in enumerate(items):
        if not callable(s):
            raise TypeError(
                f"plot_schedules: schedules[{i}] must be a schedule (step -> lr), got {describe(s)}"
            )
    return list(items)


def _values(schedule: Callable[[int], float], steps: int) -> np.ndarray:
    if isinstance(schedule, Schedule):
        return schedule.values(steps)
    return np.array([float(schedule(k)) for k in range(steps)], dtype=np.float64)


def _label(schedule: Callable[[int], float]) -> str:
    if isinstance(schedule, Schedule):
        return repr(schedule)
    return getattr(schedule, "__name__", None) or repr(schedule)


def plot_schedules(
    schedules: Any,
    steps: int,
    ax: Axes | None = None,
    *,
    labels: Sequence[str] | None = None,
    log: bool = False,
    title: str | None = None,
) -> Axes:
    """Learning rate against step for one schedule or a list of them (any callable ``step -> lr``).

    Each line shows ``lr_k`` for ``k = 0 .. steps-1`` as a step function (the rate holds for
    one whole update). ``labels`` default to each schedule's repr; ``log=True`` puts the rate
    on a log axis (zero rates are left out there). Returns the Axes; ``ax.lines`` holds one
    line per schedule, in order.

    >>> from descend.schedules import Cosine, Warmup
    >>> ax = plot_schedules([Cosine(0.1, 100), Warmup(Cosine(0.1, 90), 10)], steps=100)
    >>> len(ax.lines)
    2
    """
    owner = "plot_schedules"
    items = _as_list(schedules)
    steps = check_int(owner, "steps", steps, low=1)
    log = check_bool(owner, "log", log)
    if labels is None:
        names = [_label(s) for s in items]
    else:
        names = [str(x) for x in labels]
        if len(names) != len(items):
            raise ValueError(
                f"{owner}: labels must have one entry per schedule ({len(items)}), got {len(names)}"
            )
    values = [_values(s, steps) for s in items]
    if log:
        if not any(np.any(v > 0) for v in values):
            raise ValueError(f"{owner}: log=True needs some positive learning rate, but every rate is <= 0")
        values = [np.where(v > 0, v, np.nan) for v in values]
    if ax is None:
        ax = _style.new_figure((800, 500)).add_subplot()
    colors = SERIES_COLORS  # the report's schedule colours too
    k = np.arange(steps)
    lines = []
    for i, v in enumerate(values):
        (line,) = ax.plot(k, v, drawstyle="steps-post", color=colors[i % len(colors)], linewidth=1.8)
        lines.append(line)
    if log:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=min(0.0, float(np.nanmin([np.nanmin(v) for v in values]))))
    ax.set_xlim(0, max(steps - 1, 1))
    ax.set_xlabel("step k")
    ax.set_ylabel("learning rate")
    ax.grid(True, alpha=0.3)
    ax.set_title(title if title is not None else f"learning-rate schedule{'s' if len(items) > 1 else ''}")
    _style.fit_legend(
        ax,
        lines,
        names,
        max_cols=1,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        borderaxespad=4.2,  # in font sizes: clears the tick labels and the x label
        frameon=False,
    )
    return ax


def save_schedule_png(
    schedules: Any,
    steps: int,
    path: str | os.PathLike[str],
    *,
    labels: Sequence[str] | None = None,
    log: bool = False,
    title: str | None = None,
    size: Sequence[int] = (800, 500),
    dpi: int = 100,
) -> Path:
    """:func:`plot_schedules` written to a PNG of exactly ``size`` pixels; returns its path."""
    owner = "save_schedule_png"
    size = _style.check_size(owner, size)
    dpi = check_int(owner, "dpi", dpi, low=10)
    fig = _style.new_figure(size, dpi)
    plot_schedules(schedules, steps, fig.add_subplot(), labels=labels, log=log, title=title)
    return _style.save_png(fig, path, dpi)
