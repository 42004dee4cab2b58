"""What the matplotlib and plotly drawings share, written once and free of any plotting library:
the view box, the surface mesh and its colour scale, the loss axis, the animation frames, the palette.

Both backends draw from these values, so a PNG, a GIF and the HTML report of one race agree on
what they show: the same box, the same log-or-linear rule, the same frames, the same colours.

>>> frame_steps(1000, 5).tolist()
[0, 250, 500, 750, 1000]
>>> log_worthy([1.0, 100.0]), log_worthy([1.0, 2.0])
(True, False)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, NamedTuple

import numpy as np

from ..optim import names as rule_names
from ..optim import rule

__all__ = [
    "CONTOUR_RESOLUTION",
    "LINE_MARKERS",
    "PLOTLY_DASHES",
    "PLOTLY_SYMBOLS",
    "SERIES_COLORS",
    "SUGGESTION_STYLE",
    "LossAxis",
    "Track",
    "ZScale",
    "draw_indices",
    "edge_color",
    "entry_labels",
    "entry_styles",
    "envelope_indices",
    "epoch_end_steps",
    "evaluate",
    "frame_steps",
    "in_box",
    "log_worthy",
    "loss_axis",
    "lr_find_ylim",
    "mesh",
    "minima",
    "optimizer_style",
    "path_track",
    "view_box",
    "z_scale",
]

#: grid points per axis of a race's contour, in a PNG, a GIF frame and the HTML report alike
CONTOUR_RESOLUTION = 200

Box = tuple[tuple[float, float], tuple[float, float]]


# -- the view and the surface ---------------------------------------------------------------------
def view_box(race: Any) -> Box:
    """The function's domain, widened to take in the start when a user started outside it."""
    box = []
    for axis, (lo, hi) in enumerate(race.function.domain):
        s = float(race.start[axis])
        if lo <= s <= hi:
            box.append((float(lo), float(hi)))
        else:
            lo, hi = min(lo, s), max(hi, s)
            pad = 0.05 * (hi - lo)
            box.append((lo - pad, hi + pad))
    return box[0], box[1]


def evaluate(f: Any, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``f`` on arrays of points; overflow far out is expected and shows as inf/nan, not as a warning."""
    with np.errstate(all="ignore"):
        return np.asarray(f.grid(X, Y), dtype=np.float64)


def mesh(f: Any, box: Box, resolution: int = CONTOUR_RESOLUTION) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``X, Y, Z``: ``f`` on a ``resolution`` x ``resolution`` grid spanning ``box`` edge to edge."""
    (xlo, xhi), (ylo, yhi) = box
    X, Y = np.meshgrid(np.linspace(xlo, xhi, resolution), np.linspace(ylo, yhi, resolution))
    Z = evaluate(f, X, Y)
    if not np.isfinite(Z).any():
        raise ValueError(f"{f.name}: no finite value on the plotted box {box}; nothing to draw")
    return X, Y, Z


@dataclass(frozen=True)
class ZScale:
    """How function values map to colours (and heights in 3-D): log of ``f - f*``, linear, or symmetric."""

    kind: str  # "log", "linear" or "symmetric"
    fmin: float  # subtracted before the log (0 otherwise)
    offset: float  # added before the log so that the minimum itself has a finite colour
    vmin: float
    vmax: float
    label: str  # of a colour bar over __call__'s values

    def __call__(self, values: Any) -> np.ndarray:
        """The values coloured: ``f - f* + offset`` (never below ``offset``) on a log scale, else ``f``."""
        v = np.asarray(values, dtype=np.float64)
        if self.kind == "log":
            with np.errstate(invalid="ignore"):
                return np.maximum(v - self.fmin, 0.0) + self.offset
        return v

    def heights(self, values: Any) -> np.ndarray:
        """The values on a linear axis: ``log10`` of :meth:`__call__` on a log scale (3-D heights,
        plotly's colours, which have no log colour axis)."""
        h = self(values)
        if self.kind == "log":
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.log10(h)
        return h

    @property
    def height_range(self) -> tuple[float, float]:
        """``(vmin, vmax)`` in the units of :meth:`heights`."""
        if self.kind == "log":
            return float(np.log10(self.vmin)), float(np.log10(self.vmax))
        return self.vmin, self.vmax

    @property
    def height_label(self) -> str:
        return "log10(f - f*)" if self.kind == "log" else "f"

    @property
    def colormap(self) -> str:
        """Name of the colour map (the same name in matplotlib and plotly): diverging about 0 for
        a symmetric scale."""
        return "RdBu_r" if self.kind == "symmetric" else "viridis"

    def levels(self, n: int) -> np.ndarray:
        """``n`` contour levels from ``vmin`` to ``vmax`` (geometric on a log scale)."""
        if self.kind == "log":
            lv = np.geomspace(self.vmin, self.vmax, n)
        else:
            lv = np.linspace(self.vmin, self.vmax, n)
        # nudge the outer levels out so that rounding cannot leave the extreme values uncoloured
        tiny = 1e-9 * (lv[-1] - lv[0])
        lv[0] = lv[0] * (1 - 1e-9) if self.kind == "log" else lv[0] - tiny
        lv[-1] = lv[-1] + tiny
        return lv


def z_scale(f: Any, Z: np.ndarray, decades: float = 6.0) -> ZScale:
    """The colour scale of ``f``'s values ``Z``.

    Log of ``f - f*`` when the function asks for it and its minimum value ``f*`` is known, over
    ``decades`` decades below the top (six: enough to follow a path to the valley floor); a
    linear scale symmetric about 0 when ``f`` is unbounded below (no ``f*``) and ``Z`` has both
    signs (saddles); linear otherwise. Without a known ``f*`` there is no log scale: the grid's
    lowest value is not the function's, and a floor taken from it would be an artefact.
    """
    finite = Z[np.isfinite(Z)]
    lo, hi = float(finite.min()), float(finite.max())
    fmin = getattr(f, "minimum_value", None)
    if getattr(f, "log_scale", False) and fmin is not None and hi > fmin:
        top = hi - fmin
        offset = top * 10.0**-decades
        return ZScale("log", float(fmin), offset, offset, top + offset, "f - f* (log scale)")
    if fmin is None and lo < 0.0 < hi:  # unbounded below (saddles): zero in the middle of the colours
        m = max(-lo, hi)
        return ZScale("symmetric", 0.0, 0.0, -m, m, "f")
    if hi <= lo:  # a flat surface still needs a colour range
        lo, hi = lo - 0.5, hi + 0.5
    return ZScale("linear", 0.0, 0.0, lo, hi, "f")


def minima(f: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``(global, local)``: the known minima of ``f``, the global ones apart (in any order)."""
    known = [np.asarray(m, dtype=np.float64) for m in (getattr(f, "minima", None) or [])]
    glob = [np.asarray(m, dtype=np.float64) for m in (getattr(f, "global_minima", None) or [])]
    local = [m for m in known if not any(np.array_equal(m, g) for g in glob)]
    return glob, local


def in_box(points: list[np.ndarray], box: Box) -> np.ndarray:
    """The ``points`` inside ``box``, as an ``(n, 2)`` array."""
    P = np.array(points, dtype=np.float64).reshape(-1, 2)
    (xlo, xhi), (ylo, yhi) = box
    keep = (P[:, 0] >= xlo) & (P[:, 0] <= xhi) & (P[:, 1] >= ylo) & (P[:, 1] <= yhi)
    return P[keep]


# -- paths as drawn --------------------------------------------------------------------------------
def draw_indices(path: Any, max_points: int, eps: float = 0.0) -> np.ndarray:
    """Which points of ``path`` (``(n, d)``) to draw when only ``max_points`` may be: all of them
    when there are few enough; else, first point and last always, the points that moved at least
    ``eps`` from the last one kept (moves too small to see go), and when those are still too many,
    the first two thirds of the budget in order and then evenly spread *pairs* of consecutive
    points. Pairs, not single points: an even stride through a zigzag of period 2 would draw one
    side of it only and show a smooth path where the run overshoots at every step.

    >>> draw_indices(np.zeros((5, 2)), 10).tolist()
    [0, 1, 2, 3, 4]
    >>> k = np.arange(40.0)
    >>> zigzag = np.column_stack([k, (-1.0) ** k])
    >>> i = draw_indices(zigzag, 15)
    >>> i.tolist()  # the first twelve, then two pairs: each shows both sides of the zigzag
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 37, 38, 39]
    >>> draw_indices(np.column_stack([k / 1000, 0 * k]), 10, eps=0.0095).tolist()  # a crawl
    [0, 10, 20, 30, 39]
    """
    P = np.asarray(path, dtype=np.float64)
    n = len(P)
    if n <= max_points:
        return np.arange(n)
    if eps > 0:
        with np.errstate(all="ignore"):
            kept = [0]
            last = P[0]
            for k in range(1, n - 1):
                d = P[k] - last
                if not float(np.dot(d, d)) < eps * eps:  # a non-finite move is kept, not dropped
                    kept.append(k)
                    last = P[k]
        cand = np.asarray([*kept, n - 1])
    else:
        cand = np.arange(n)
    if len(cand) <= max_points:
        return cand
    head = max(1, (2 * max_points) // 3)
    pairs = max(1, (max_points - head - 1) // 2)  # and the last point
    rest = cand[head:-1]
    starts = np.unique(np.round(np.linspace(0, len(rest) - 2, pairs)).astype(int)) if len(rest) > 1 else []
    tail = [rest[i : i + 2] for i in starts]
    return np.unique(np.concatenate([cand[:head], *tail, cand[-1:]])).astype(np.int64)


def envelope_indices(y: Any, buckets: int) -> np.ndarray:
    """Which points of the curve ``y`` to draw with about ``2 * buckets``: all when there are
    few enough; else the lowest and the highest finite value in each of ``buckets`` even runs of
    steps, the first and last point always, so that an oscillating loss keeps its band.

    >>> envelope_indices([3.0, 1.0, 2.0, 0.0, 5.0, 4.0], 2).tolist()
    [0, 1, 3, 4, 5]
    """
    v = np.asarray(y, dtype=np.float64)
    n = len(v)
    if n <= 2 * buckets:
        return np.arange(n)
    edges = np.unique(np.round(np.linspace(0, n, buckets + 1)).astype(int))
    keep = [0, n - 1]
    finite = np.where(np.isfinite(v), v, np.nan)
    for a, b in pairwise(edges):
        part = finite[a:b]
        if np.isfinite(part).any():
            keep += [a + int(np.nanargmin(part)), a + int(np.nanargmax(part))]
    return np.unique(keep).astype(np.int64)


class Track(NamedTuple):
    """A run's path as drawn: the step, coordinates and loss of each drawn point, and how it ends."""

    steps: np.ndarray  # int64, increasing
    xy: np.ndarray  # (n, 2)
    loss: np.ndarray  # the loss of the iterate at each step (at an edge point: the first one outside)
    end: str  # "" (in view), "left the view" or "diverged"


def _edge(p0: np.ndarray, p1: np.ndarray, box: Box) -> np.ndarray:
    """Where the segment from ``p0`` (inside ``box``) to ``p1`` (outside) crosses the box's edge."""
    d = p1 - p0
    if not np.all(np.isfinite(d)):
        return p0.copy()
    t = 1.0
    for axis, (lo, hi) in enumerate(box):
        if d[axis] > 0:
            t = min(t, (hi - p0[axis]) / d[axis])
        elif d[axis] < 0:
            t = min(t, (lo - p0[axis]) / d[axis])
    return p0 + max(t, 0.0) * d


def path_track(
    path: Any,
    losses: Any,
    *,
    max_points: int,
    box: Box | None = None,
    diverged: bool = False,
    also: Any = (),
) -> Track:
    """The points of a run's path to draw: :func:`draw_indices` (moves under a thousandth of the
    box's diagonal go when the path must be thinned), plus the steps in ``also`` (animation
    frames end on them).

    With a ``box``, a path that ends outside it (it ran away or diverged) is cut where it leaves
    the box for good: it ends on the box's edge, so a run that blew up does not stretch a
    drawing to 1e100, and ``end`` says why it stopped there.
    """
    P = np.asarray(path, dtype=np.float64)
    L = np.asarray(losses, dtype=np.float64)
    n = len(P)
    end, last, edge = ("diverged" if diverged else ""), n - 1, None
    if box is not None:
        (xlo, xhi), (ylo, yhi) = box
        with np.errstate(invalid="ignore"):
            inside = (P[:, 0] >= xlo) & (P[:, 0] <= xhi) & (P[:, 1] >= ylo) & (P[:, 1] <= yhi)
        if not inside[-1] and inside.any():
            last = int(np.flatnonzero(inside)[-1])
            edge = _edge(P[last], P[last + 1], box)
            end = end or "left the view"
    eps = 0.0
    if box is not None:
        (xlo, xhi), (ylo, yhi) = box
        eps = 1e-3 * float(np.hypot(xhi - xlo, yhi - ylo))
    idx = draw_indices(P[: last + 1], max_points, eps)
    extra = np.asarray(also, dtype=np.int64).reshape(-1)
    idx = np.union1d(idx, extra[extra <= last]).astype(np.int64)
    steps, xy, loss = idx, P[idx], L[idx]
    if edge is not None:
        steps = np.append(steps, last + 1)
        xy = np.vstack([xy, edge])
        loss = np.append(loss, L[last + 1])
    return Track(steps, xy, loss, end)


# -- loss axes --------------------------------------------------------------------------------------
def log_worthy(*arrays: Any) -> bool:
    """Whether a log axis suits these values: all finite ones positive, spanning more than 10x."""
    vals = (
        np.concatenate([np.ravel(np.asarray(a, dtype=np.float64)) for a in arrays]) if arrays else np.empty(0)
    )
    vals = vals[np.isfinite(vals)]
    return bool(vals.size) and bool(np.all(vals > 0)) and float(vals.max() / vals.min()) > 10


@dataclass(frozen=True)
class LossAxis:
    """A race's loss curves as drawn: one array per entry, the axis kind and label, the values
    the view follows, and where each diverged run stopped."""

    ys: list[np.ndarray]
    kind: str  # "log", or "symlog" (plotly, which has none, draws it linear)
    label: str
    ref: np.ndarray  # finite values of the runs that did not diverge, and every run's first
    ends: list[tuple[int, float] | None]  # per entry: last finite (step, value) of a diverged run


def loss_axis(race: Any) -> LossAxis:
    """Loss per step of each entry, as both backends draw it.

    Where ``f*`` is known the curves are ``f - f*`` floored at ``1e-16 max(1, |f*|)``, so a run
    that reaches the minimum stays on the log axis; otherwise the loss itself, on a log axis when
    it stays positive and a symmetric-log one when it goes below zero.
    """
    fmin = getattr(race.function, "minimum_value", None)
    ys = [np.asarray(e.losses, dtype=np.float64) for e in race.entries]
    if fmin is not None:
        floor = 1e-16 * max(1.0, abs(fmin))
        with np.errstate(invalid="ignore"):
            ys = [np.maximum(y - fmin, floor) for y in ys]
        kind, label = "log", "f(x_k) - f*"
    else:
        finite = np.concatenate([y[np.isfinite(y)] for y in ys] or [np.zeros(1)])
        kind, label = ("log" if finite.size and finite.min() > 0 else "symlog"), "f(x_k)"
    calm = [y for y, e in zip(ys, race.entries, strict=True) if not e.diverged] + [y[:1] for y in ys]
    ref = np.concatenate(calm) if calm else np.zeros(0)
    ends: list[tuple[int, float] | None] = []
    for y, e in zip(ys, race.entries, strict=True):
        done = np.flatnonzero(np.isfinite(y))
        ends.append((int(done[-1]), float(y[done[-1]])) if e.diverged and done.size else None)
    return LossAxis(ys, kind, label, ref[np.isfinite(ref)], ends)


def lr_find_ylim(smoothed: Any) -> tuple[float, float] | None:
    """``(bottom, top)`` of an LR range test's loss axis: from the lowest smoothed loss to a
    quarter above the first, since the final blow-up can be orders of magnitude above the rest
    (None when no smoothed loss is finite)."""
    sm = np.asarray(smoothed, dtype=np.float64)
    finite = sm[np.isfinite(sm)]
    if not finite.size:
        return None
    lo, first = float(finite.min()), float(finite[0])
    top = max(first, lo) + 0.25 * (max(first, lo) - lo) + 1e-12
    return lo - 0.1 * (top - lo), top


def epoch_end_steps(history: Any) -> np.ndarray:
    """The update count at which each recorded epoch ended (epoch rows carry samples seen)."""
    step_samples = np.asarray(history.steps["samples_seen"], dtype=np.float64)
    epoch_samples = np.asarray(history.epochs.get("samples_seen", []), dtype=np.float64)
    steps = np.asarray(history.steps["step"], dtype=np.float64)
    if not steps.size:
        return np.zeros(len(epoch_samples))
    idx = np.clip(np.searchsorted(step_samples, epoch_samples, side="left"), 0, len(steps) - 1)
    return steps[idx]


# -- animation --------------------------------------------------------------------------------------
def frame_steps(steps: int, frames: int) -> np.ndarray:
    """The step each animation frame shows: ``frames`` steps spread evenly over ``0..steps``, the
    first and the last included (fewer when the run is shorter; one frame shows the whole run)."""
    n = min(frames, steps + 1)
    if n <= 1:
        return np.array([steps], dtype=np.int64)
    return np.unique(np.round(np.linspace(0, steps, n)).astype(np.int64))


# -- palette ----------------------------------------------------------------------------------------
# colours for a second run of one rule in a drawing (its own colour is taken by the first)
_SPARE_COLORS = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354")

#: colours of series that are not optimizers (batching strategies, schedules), in order
SERIES_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2")

#: colour and (matplotlib) line style of each LR range-test suggestion
SUGGESTION_STYLE: dict[str, dict[str, str]] = {
    "recommended": {"color": "#000000", "linestyle": "-"},
    "valley": {"color": "#2ca02c", "linestyle": "--"},
    "steep": {"color": "#d62728", "linestyle": ":"},
    "min": {"color": "#9467bd", "linestyle": "-."},
}
#: matplotlib line style -> plotly dash
PLOTLY_DASHES = {"-": "solid", "--": "dash", ":": "dot", "-.": "dashdot"}

#: matplotlib marker (the registry's ``marker``) -> the plotly symbol that looks like it
PLOTLY_SYMBOLS: dict[str, str] = {
    ".": "circle",
    ",": "square",
    "o": "circle",
    "v": "triangle-down",
    "^": "triangle-up",
    "<": "triangle-left",
    ">": "triangle-right",
    "1": "y-down",
    "2": "y-up",
    "3": "y-left",
    "4": "y-right",
    "8": "octagon",
    "s": "square",
    "p": "pentagon",
    "P": "cross",
    "*": "star",
    "h": "hexagon",
    "H": "hexagon2",
    "+": "cross-thin",
    "x": "x-thin",
    "X": "x",
    "D": "diamond",
    "d": "diamond-tall",
    "|": "line-ns",
    "_": "line-ew",
}
#: markers made of lines only: no face to fill, so their edge carries the run's colour
LINE_MARKERS = frozenset("1234+x|_")


def optimizer_style(name: str) -> dict[str, str]:
    """``{"color": ..., "marker": ...}`` of an update rule, the same in every drawing: the
    ``color`` and ``marker`` of its registry entry (:func:`descend.optim.rule`).

    >>> optimizer_style(" Adam")
    {'color': '#ff7f0e', 'marker': 'P'}
    """
    entry = rule(name)
    return {"color": entry.color, "marker": entry.marker}


def entry_styles(names: Iterable[str]) -> list[dict[str, str]]:
    """Styles for the runs of one drawing: the rule's style, unless an earlier run already has
    that colour (the same rule twice), which then gets the first colour no run has."""
    styles: list[dict[str, str]] = []
    used: set[str] = set()
    palette = (*(rule(n).color for n in rule_names()), *_SPARE_COLORS)
    for name in names:
        style = optimizer_style(name)
        if style["color"] in used:
            free = [c for c in palette if c not in used]
            if free:  # more runs than colours: repeat rather than fail
                style = {**style, "color": free[0]}
        used.add(style["color"])
        styles.append(style)
    return styles


def edge_color(style: dict[str, str]) -> str:
    """Edge colour of a run's end marker: black around a filled marker, the run's own colour for
    a marker of lines only (a black ``x`` would lose which run it is)."""
    return style["color"] if style["marker"] in LINE_MARKERS else "black"


def entry_labels(race: Any) -> list[str]:
    """Legend label of each entry: its label, marked when the run diverged."""
    return [e.label + (" (diverged)" if e.diverged else "") for e in race.entries]
