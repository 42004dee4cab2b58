"""Drawings of optimizer races: paths over the contour, the 3-D surface, loss curves, PNGs, GIF and MP4."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import LogFormatterSciNotation, LogLocator, MaxNLocator, ScalarFormatter

from .._validation import check_bool, check_int, check_real, describe
from . import _style
from ._shared import (
    CONTOUR_RESOLUTION,
    ZScale,
    edge_color,
    entry_labels,
    entry_styles,
    evaluate,
    frame_steps,
    in_box,
    loss_axis,
    mesh,
    minima,
    view_box,
    z_scale,
)

__all__ = [
    "RacePlot",
    "plot_contour",
    "plot_loss",
    "plot_surface",
    "race_animation",
    "race_figure",
    "race_mp4",
    "save_race_pngs",
]

FFMPEG_HINT = (
    "install it (Debian/Ubuntu: `apt install ffmpeg`; macOS: `brew install ffmpeg`; conda: "
    "`conda install -c conda-forge ffmpeg`; Windows and others: https://ffmpeg.org/download.html) "
    "and make sure `ffmpeg` runs from a shell"
)


@dataclass
class RacePlot:
    """What a race drawing drew: the Axes and its artists, in race order, for restyling and tests."""

    ax: Axes
    paths: list[Line2D]  # one line per entry: its path (contour, surface) or its loss curve
    ends: list[Line2D] = field(default_factory=list)  # one marker per entry at its last iterate
    start: Line2D | None = None
    minima: list[Line2D] = field(default_factory=list)  # global minima first, then local ones
    diverged: list[Line2D] = field(default_factory=list)  # loss plot: where diverged runs stopped
    background: Any = None  # the filled contour set or the 3-D surface
    colorbar: Any = None
    legend: Any = None
    handles: list[Any] = field(default_factory=list)  # legend entries, also for a figure legend
    labels: list[str] = field(default_factory=list)

    @property
    def figure(self) -> Any:
        return self.ax.figure


# -- pieces of every race drawing (what the plotly report draws too is in _shared) -----------------
def _clip_path(path: np.ndarray, box: Any, margin: float = 1.0) -> np.ndarray:
    """``path`` up to where it leaves ``box`` widened by ``margin`` times its size on each side.

    The segment that leaves is cut at the widened edge, in its own direction, so a path that
    runs off keeps its heading out of the view while a diverged run (coordinates near 1e300)
    never reaches the renderer or the axes limits.
    """
    P = np.asarray(path, dtype=np.float64).reshape(-1, 2)
    lo = np.array([b[0] - margin * (b[1] - b[0]) for b in box])
    hi = np.array([b[1] + margin * (b[1] - b[0]) for b in box])
    with np.errstate(invalid="ignore"):
        inside = np.all(np.isfinite(P) & (P >= lo) & (P <= hi), axis=1)
    if inside.all():
        return P
    j = int(np.argmin(inside))  # first iterate outside
    if j == 0:
        return P[:0]
    a, b = P[j - 1], P[j]
    if not np.all(np.isfinite(b)):
        return P[:j]
    d = b - a
    with np.errstate(divide="ignore", invalid="ignore"):
        t_hi = np.where(b > hi, (hi - a) / d, np.inf)
        t_lo = np.where(b < lo, (lo - a) / d, np.inf)
    t = float(min(t_hi.min(), t_lo.min(), 1.0))
    return np.vstack([P[:j], a + t * d])


def _norm(scale: ZScale) -> Normalize:
    return LogNorm(scale.vmin, scale.vmax) if scale.kind == "log" else Normalize(scale.vmin, scale.vmax)


def _cmap(scale: ZScale) -> Any:
    return _style.light_cmap(scale.colormap)


def _title(race: Any, width: int = 80) -> str:
    f = race.function
    x0 = ", ".join(f"{v:.3g}" for v in race.start)
    head = f"{f.name}: {race.steps} steps from ({x0})"
    if race.noise:
        head += f", gradient noise σ={race.noise:g}"
    return head + "\n" + textwrap.fill(f"lr: {race.lr_rule}", width)


def _legend(ax: Axes, handles: list[Any], labels: list[str]) -> Any:
    """Legend below the axes: it never hides a path (constrained layout makes room for it)."""
    return _style.fit_legend(
        ax,
        handles,
        labels,
        max_cols=2 if len(labels) > 3 else 1,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        borderaxespad=4.2,  # in font sizes: clears the tick labels and the x label
        frameon=False,
    )


def _new_axes(ax: Axes | None, projection: str | None = None) -> Axes:
    if ax is not None:
        return ax
    fig = _style.new_figure((800, 600))
    return fig.add_subplot(projection=projection)


def _markevery(n: int) -> int:
    return max(1, n // 150)  # a marker per iterate shows the step size; thin them on long runs


# -- contour ----------------------------------------------------------------------------------------
def plot_contour(
    race: Any,
    ax: Axes | None = None,
    *,
    levels: int = 30,
    resolution: int = CONTOUR_RESOLUTION,
    legend: bool = True,
    colorbar: bool = True,
    title: bool | str = True,
) -> RacePlot:
    """Filled contour of the race's surface with every optimizer's path, the start, the ends and the minima.

    Colours follow ``log(f - f* + offset)`` where the function asks for a log scale, a linear
    scale symmetric about 0 where it is unbounded below (saddles), and a linear one otherwise.
    The view is the function's domain (widened only to show a start outside it): paths that
    leave it run off the edge, and a diverged run never moves the axes limits. Known minima
    are stars: gold for global, white for local ones.

    Parameters
    ----------
    race : a :class:`~descend.lab.race.RaceResult`.
    ax : Axes to draw into; a new 800x600 figure when None.
    levels : number of contour levels, ``>= 2``. resolution : grid points per axis, ``>= 10``.
    legend : draw the legend below the axes. colorbar : draw a colour bar.
    title : True for the race's own title, a string for that title, False for none.

    Returns
    -------
    RacePlot with one path line and one end marker per entry, the start marker, the minima
    markers, the contour set, colour bar and legend.
    """
    owner = "plot_contour"
    levels = check_int(owner, "levels", levels, low=2)
    resolution = check_int(owner, "resolution", resolution, low=10)
    ax = _new_axes(ax)
    f = race.function
    box = view_box(race)
    X, Y, Z = mesh(f, box, resolution)
    scale = z_scale(f, Z)
    W = np.ma.masked_invalid(scale(Z))
    lv = scale.levels(levels)
    cs = ax.contourf(X, Y, W, levels=lv, norm=_norm(scale), cmap=_cmap(scale), zorder=0)
    ax.contour(
        X, Y, W, levels=lv[::2], norm=_norm(scale), colors="white", linewidths=0.4, alpha=0.6, zorder=1
    )
    cbar = None
    if colorbar:
        cbar = ax.figure.colorbar(cs, ax=ax, label=scale.label, shrink=0.9, aspect=30)
        # ticks at round numbers (powers of ten on a log scale), not at the unround contour levels
        if scale.kind == "log":
            cbar.set_ticks(LogLocator())
            cbar.formatter = LogFormatterSciNotation()
        else:
            cbar.set_ticks(MaxNLocator(8))
            cbar.formatter = ScalarFormatter()
        cbar.update_ticks()

    paths, ends = [], []
    for entry, style in zip(race.entries, entry_styles(e.optimizer for e in race.entries), strict=True):
        P = _clip_path(entry.path, box)
        (line,) = ax.plot(
            P[:, 0],
            P[:, 1],
            color=style["color"],
            marker=style["marker"],
            markersize=3,
            markevery=_markevery(len(P)),
            linewidth=1.6,
            zorder=3,
        )
        last = P[-1:] if len(P) else np.full((1, 2), np.nan)
        (end,) = ax.plot(
            last[:, 0],
            last[:, 1],
            linestyle="none",
            marker=style["marker"],
            markersize=10,
            markerfacecolor=style["color"],
            markeredgecolor=edge_color(style),
            markeredgewidth=1.2,
            zorder=5,
        )
        paths.append(line)
        ends.append(end)
    (start,) = ax.plot([race.start[0]], [race.start[1]], linestyle="none", zorder=6, **_style.START_STYLE)

    handles: list[Any] = [*paths, start]
    labels = [*entry_labels(race), "start"]
    stars = []
    glob, local = minima(f)
    for points, style, name in (
        (glob, _style.GLOBAL_MIN_STYLE, "global minimum"),
        (local, _style.LOCAL_MIN_STYLE, "local minimum"),
    ):
        P = in_box(points, box)
        if len(P):
            (m,) = ax.plot(P[:, 0], P[:, 1], linestyle="none", zorder=4, **style)
            stars.append(m)
            handles.append(m)
            labels.append(name)

    (xlo, xhi), (ylo, yhi) = box
    ax.set_xlim(xlo, xhi)
    ax.set_ylim(ylo, yhi)
    ax.set_autoscale_on(False)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    if title:
        ax.set_title(_title(race) if title is True else str(title), fontsize="medium")
    leg = _legend(ax, handles, labels) if legend else None
    return RacePlot(ax, paths, ends, start, stars, [], cs, cbar, leg, handles, labels)


# -- 3-D surface ----------------------------------------------------------------------------------
def plot_surface(
    race: Any,
    ax: Axes | None = None,
    *,
    resolution: int = 60,
    legend: bool = True,
    title: bool | str = True,
    elev: float = 35.0,
    azim: float = -60.0,
) -> RacePlot:
    """The race's surface in 3-D with each path lifted onto it (height ``f`` of each iterate).

    Heights use the contour's colour scale, so a log-scale function is drawn as
    ``log10(f - f* + offset)``: the valley floor stays visible. Paths are drawn until they
    first leave the view box, on top of the surface (no depth sorting hides them).

    ``ax`` must be a 3-D Axes (``fig.add_subplot(projection="3d")``); a new figure when None.
    Returns a :class:`RacePlot` (``background`` is the surface).
    """
    owner = "plot_surface"
    resolution = check_int(owner, "resolution", resolution, low=4)
    elev = check_real(owner, "elev", elev)
    azim = check_real(owner, "azim", azim)
    ax = _new_axes(ax, projection="3d")
    if not hasattr(ax, "zaxis"):
        raise ValueError(
            f"{owner}: ax must be a 3-D Axes (fig.add_subplot(projection='3d')), got {describe(ax)}"
        )
    f = race.function
    box = view_box(race)
    X, Y, Z = mesh(f, box, resolution)
    scale = z_scale(f, Z, decades=4.0)  # fewer decades than the contour: no spikes into the floor
    H = scale.heights(Z)
    finite = H[np.isfinite(H)]
    zlo, zhi = float(finite.min()), float(finite.max())
    if zhi <= zlo:
        zlo, zhi = zlo - 0.5, zhi + 0.5
    lift = 0.01 * (zhi - zlo)  # a hair above the surface, so the path is not buried in it
    ax.computed_zorder = False  # mplot3d's depth sort would hide paths under the surface
    cmap = _cmap(scale)
    surf = ax.plot_surface(
        X,
        Y,
        np.clip(np.nan_to_num(H, nan=zhi, posinf=zhi, neginf=zlo), zlo, zhi),
        cmap=cmap,
        norm=Normalize(zlo, zhi),
        rcount=resolution,
        ccount=resolution,
        linewidth=0,
        antialiased=False,
        alpha=0.9,
        zorder=1,
    )

    def lifted(P: np.ndarray) -> np.ndarray:
        z = scale.heights(evaluate(f, P[:, 0], P[:, 1])) if len(P) else np.zeros(0)
        return np.clip(np.nan_to_num(z, nan=zhi, posinf=zhi, neginf=zlo), zlo, zhi) + lift

    (xlo, xhi), (ylo, yhi) = box
    paths, ends = [], []
    for entry, style in zip(race.entries, entry_styles(e.optimizer for e in race.entries), strict=True):
        P = np.asarray(entry.path, dtype=np.float64).reshape(-1, 2)
        with np.errstate(invalid="ignore"):
            out = ~((P[:, 0] >= xlo) & (P[:, 0] <= xhi) & (P[:, 1] >= ylo) & (P[:, 1] <= yhi))
        if out.any():
            P = P[: int(np.argmax(out))]
        z = lifted(P)
        (line,) = ax.plot(P[:, 0], P[:, 1], z, color=style["color"], linewidth=2.0, zorder=3)
        (end,) = ax.plot(
            P[-1:, 0],
            P[-1:, 1],
            z[-1:],
            linestyle="none",
            marker=style["marker"],
            markersize=8,
            markerfacecolor=style["color"],
            markeredgecolor=edge_color(style),
            zorder=5,
        )
        paths.append(line)
        ends.append(end)
    s = np.asarray(race.start, dtype=np.float64).reshape(1, 2)
    (start,) = ax.plot(s[:, 0], s[:, 1], lifted(s), linestyle="none", zorder=6, **_style.START_STYLE)
    handles: list[Any] = [*paths, start]
    labels = [*entry_labels(race), "start"]
    stars = []
    glob, local = minima(f)
    for points, style, name in (
        (glob, _style.GLOBAL_MIN_STYLE, "global minimum"),
        (local, _style.LOCAL_MIN_STYLE, "local minimum"),
    ):
        P = in_box(points, box)
        if len(P):
            (m,) = ax.plot(P[:, 0], P[:, 1], lifted(P), linestyle="none", zorder=4, **style)
            stars.append(m)
            handles.append(m)
            labels.append(name)

    ax.set_xlim(xlo, xhi)
    ax.set_ylim(ylo, yhi)
    ax.set_zlim(zlo, zhi + 2 * lift)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_zlabel(scale.height_label)
    ax.view_init(elev=elev, azim=azim)
    ax.set_box_aspect(None, zoom=0.9)  # room for the z label, which the layout does not reserve
    if title:
        ax.set_title(_title(race) if title is True else str(title), fontsize="medium")
    leg = _legend(ax, handles, labels) if legend else None
    return RacePlot(ax, paths, ends, start, stars, [], surf, None, leg, handles, labels)


# -- loss curves ------------------------------------------------------------------------------------
def plot_loss(
    race: Any, ax: Axes | None = None, *, legend: bool = True, title: bool | str = True
) -> RacePlot:
    """Loss per step, one line per optimizer, on a log axis.

    Where the minimum value ``f*`` is known the curve is ``f - f*`` (floored at a tiny positive
    number), so the log axis shows the rate of convergence. Otherwise the loss itself, on a
    log axis when it stays positive and on a symmetric-log axis when it goes below zero
    (unbounded functions such as saddles). A diverged run ends in an ``x`` at its last finite
    loss (at the top edge when that is beyond the view); the limits follow the other runs.

    Returns a :class:`RacePlot` whose ``paths`` are the loss lines and ``diverged`` the markers.
    """
    ax = _new_axes(ax)
    f = race.function
    axis = loss_axis(race)
    ys, ref_all = axis.ys, axis.ref  # the limits follow ref: the calm runs and every first loss
    if axis.kind == "log":
        ax.set_yscale("log")
    else:
        big = float(np.max(np.abs(ref_all))) if ref_all.size else 1.0
        linthresh = 10.0 ** np.floor(np.log10(big)) * 1e-3 if big > 0 else 1.0
        ax.set_yscale("symlog", linthresh=linthresh)

    lines, marks = [], []
    styles = entry_styles(e.optimizer for e in race.entries)
    for y, style in zip(ys, styles, strict=True):
        (line,) = ax.plot(np.arange(len(y)), y, color=style["color"], linewidth=1.6)
        lines.append(line)
    ax.set_xlim(0, race.steps)
    if ref_all.size:
        tr = ax.yaxis.get_transform()
        a, b = tr.transform([ref_all.min(), ref_all.max()])
        pad = 0.05 * (b - a) if b > a else 0.5
        lo, hi = tr.inverted().transform([a - pad, b + pad])
        ax.set_ylim(lo, hi)
    top = ax.get_ylim()[1]
    for end, style in zip(axis.ends, styles, strict=True):
        if end is not None:
            (m,) = ax.plot(
                [end[0]],
                [min(end[1], top)],
                linestyle="none",
                marker="x",
                markersize=10,
                markeredgewidth=2.5,
                color=style["color"],
                clip_on=False,
                zorder=5,
            )
            marks.append(m)
    ax.set_autoscale_on(False)
    ax.set_xlabel("step k")
    ax.set_ylabel(axis.label)
    ax.grid(True, which="major", alpha=0.3)
    if title:
        text = f"{f.name}: loss per step" if title is True else str(title)
        ax.set_title(text, fontsize="medium")
    labels = entry_labels(race)
    leg = _legend(ax, lines, labels) if legend else None
    return RacePlot(ax, lines, [], None, [], marks, None, None, leg, list(lines), labels)


# -- figures and files ------------------------------------------------------------------------------
def race_figure(
    race: Any,
    *,
    surface: bool = False,
    size: Sequence[int] | None = None,
    dpi: int = 100,
    resolution: int = CONTOUR_RESOLUTION,
) -> Figure:
    """One figure: contour with paths beside the loss curves (and the 3-D surface when ``surface``).

    ``size`` is in pixels, by default 1400x650 (1900x650 with the surface); one legend below all.
    """
    owner = "race_figure"
    surface = check_bool(owner, "surface", surface)
    dpi = check_int(owner, "dpi", dpi, low=10)
    size = _style.check_size(owner, size if size is not None else ((1900 if surface else 1400), 650))
    fig = _style.new_figure(size, dpi)
    axes = [fig.add_subplot(1, 3 if surface else 2, 1), fig.add_subplot(1, 3 if surface else 2, 2)]
    contour = plot_contour(race, axes[0], resolution=resolution, legend=False, title="paths on the surface")
    plot_loss(race, axes[1], legend=False, title="loss per step")
    if surface:
        ax3 = fig.add_subplot(1, 3, 3, projection="3d")
        plot_surface(race, ax3, resolution=min(resolution, 80), legend=False, title="surface")
    fig.suptitle(_title(race, width=150))
    _style.fit_legend(
        fig, contour.handles, contour.labels, max_cols=4, loc="outside lower center", frameon=False
    )
    return fig


def save_race_pngs(
    race: Any,
    out_dir: str | os.PathLike[str],
    *,
    size: Sequence[int] = (800, 600),
    dpi: int = 100,
    resolution: int = CONTOUR_RESOLUTION,
) -> dict[str, Path]:
    """Write ``race_contour.png``, ``race_surface.png`` and ``race_loss.png`` of exactly ``size`` pixels.

    Returns ``{"contour": path, "surface": path, "loss": path}``.
    """
    owner = "save_race_pngs"
    w, h = _style.check_size(owner, size)
    dpi = check_int(owner, "dpi", dpi, low=10)
    out = Path(out_dir)
    written: dict[str, Path] = {}
    for name in ("contour", "surface", "loss"):
        fig = _style.new_figure((w, h), dpi)
        if name == "contour":
            plot_contour(race, fig.add_subplot(), resolution=resolution)
        elif name == "surface":
            plot_surface(race, fig.add_subplot(projection="3d"), resolution=min(resolution, 80))
        else:
            plot_loss(race, fig.add_subplot())
        written[name] = _style.save_png(fig, out / f"race_{name}.png", dpi)
    return written


class _Animator:
    """Renders frames of a race contour fast: the contour is drawn once, then only the paths move."""

    def __init__(self, race: Any, size: tuple[int, int], dpi: int, resolution: int):
        self.race = race
        self.fig = _style.new_figure(size, dpi)
        ax = self.fig.add_subplot()
        self.plot = plot_contour(race, ax, resolution=resolution)
        self.data = [line.get_xydata() for line in self.plot.paths]
        self.colors = [str(line.get_color()) for line in self.plot.paths]
        self.steps = race.steps  # the whole race, also when every run diverged before its end
        # the step counter must stay readable (and keep frames distinct): if the full title with
        # the widest counter does not fit the width, the counter goes with the function name only
        head, _, rest = _title(race).partition("\n")
        self.head, self.rest = f"{head} — ", f"\n{rest}"
        ax.title.set_text(self.title_at(self.steps))
        if ax.title.get_window_extent().width > 0.98 * self.fig.bbox.width:
            self.head, self.rest = f"{race.function.name}: ", ""
            ax.title.set_text(self.title_at(self.steps))
        # drawn in this order over the background: the static plot's zorder, paths lowest
        self.dynamic: list[Any] = [*self.plot.paths, *self.plot.minima, *self.plot.ends, self.plot.start]
        for artist in [*self.dynamic, ax.title]:
            artist.set_animated(True)  # left out of the full draw: they go on the saved background
        with _style.quiet_layout():
            self.fig.canvas.draw()
        self.background = self.fig.canvas.copy_from_bbox(self.fig.bbox)

    def render(self, k: int) -> np.ndarray:
        """The frame that shows steps ``0..k`` of every path, as an ``(h, w, 3)`` uint8 array."""
        canvas, ax = self.fig.canvas, self.plot.ax
        canvas.restore_region(self.background)
        for line, end, P in zip(self.plot.paths, self.plot.ends, self.data, strict=True):
            m = min(k, len(P) - 1) + 1 if len(P) else 0
            line.set_data(P[:m, 0], P[:m, 1])
            end.set_data(P[m - 1 : m, 0], P[m - 1 : m, 1])
        for artist in self.dynamic:
            ax.draw_artist(artist)
        ax.title.set_text(self.title_at(k))
        ax.draw_artist(ax.title)
        return _style.render_rgb(self.fig)

    def title_at(self, k: int) -> str:
        return f"{self.head}step {k} of {self.steps}{self.rest}"


def _palette(last: Any, exact: list[str]) -> Any:
    """A 256-colour palette image: the drawing's own colours exactly, the rest fitted to ``last``.

    A palette fitted only to the pixels would merge a small end marker's red into a brown.
    """
    from matplotlib.colors import to_rgb
    from PIL import Image

    fixed = list(dict.fromkeys([*exact, "#000000", "#ffffff", "gold"]))
    rgb = [round(255 * c) for name in fixed for c in to_rgb(name)]
    fitted = last.quantize(256 - len(fixed), method=Image.Quantize.MEDIANCUT).getpalette() or []
    palette = (rgb + fitted[: 3 * (256 - len(fixed))] + [0] * 768)[:768]
    image = Image.new("P", (1, 1))
    image.putpalette(palette)
    return image


def _check_movie(owner: str, frames: Any, fps: Any, size: Any, dpi: Any, hold: Any) -> tuple:
    return (
        check_int(owner, "frames", frames, low=1),
        check_real(owner, "fps", fps, low=0.0, low_open=True, high=100.0),
        _style.check_size(owner, size),
        check_int(owner, "dpi", dpi, low=10),
        check_real(owner, "hold", hold, low=0.0),
    )


def race_animation(
    race: Any,
    path: str | os.PathLike[str],
    *,
    frames: int = 60,
    fps: float = 15.0,
    size: Sequence[int] = (800, 600),
    dpi: int = 100,
    resolution: int = CONTOUR_RESOLUTION,
    hold: float = 1.5,
) -> Path:
    """Write an animated GIF (Pillow) of the paths growing over the steps; returns its path.

    Frame ``i`` shows steps ``0..k_i`` with ``k_i`` spread evenly over the run (the last frame
    is the whole run, held for ``hold`` seconds); the title counts the steps. ``frames`` frames
    are written, or ``steps + 1`` when the run is shorter. All frames share one palette, made
    from the last frame, so the background does not flicker.
    """
    from PIL import Image

    owner = "race_animation"
    frames, fps, size, dpi, hold = _check_movie(owner, frames, fps, size, dpi, hold)
    anim = _Animator(race, size, dpi, check_int(owner, "resolution", resolution, low=10))
    ks = frame_steps(race.steps, frames)
    palette = _palette(Image.fromarray(anim.render(int(ks[-1]))), anim.colors)
    images = [
        Image.fromarray(anim.render(int(k))).quantize(palette=palette, dither=Image.Dither.NONE) for k in ks
    ]
    ms = max(20, round(1000.0 / fps))
    durations = [ms] * (len(images) - 1) + [max(ms, round(1000.0 * hold))]
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(
        out,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=durations if len(images) > 1 else durations[0],
        loop=0,
    )
    return out


def race_mp4(
    race: Any,
    path: str | os.PathLike[str],
    *,
    frames: int = 120,
    fps: float = 30.0,
    size: Sequence[int] = (800, 600),
    dpi: int = 100,
    resolution: int = CONTOUR_RESOLUTION,
    hold: float = 1.5,
) -> Path:
    """Write the :func:`race_animation` as an H.264 MP4 through ``ffmpeg``; returns its path.

    Raises RuntimeError, before drawing anything, when ``ffmpeg`` is not on PATH; the GIF of
    :func:`race_animation` needs only Pillow.
    """
    owner = "race_mp4"
    frames, fps, size, dpi, hold = _check_movie(owner, frames, fps, size, dpi, hold)
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError(
            f"{owner}: MP4 needs ffmpeg on PATH and none was found; {FFMPEG_HINT}. "
            "The GIF needs only Pillow and is written without it."
        )
    anim = _Animator(race, size, dpi, check_int(owner, "resolution", resolution, low=10))
    ks = list(frame_steps(race.steps, frames))
    ks += [ks[-1]] * round(hold * fps)
    w, h = size
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        ffmpeg,
        "-y",
        "-loglevel",
        "error",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{w}x{h}",
        "-r",
        f"{fps:g}",
        "-i",
        "-",
        "-an",
        "-vf",
        "pad=ceil(iw/2)*2:ceil(ih/2)*2",  # yuv420p needs even sides
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        str(out),
    ]
    # stderr to a file, not a pipe: a chatty ffmpeg cannot then block while we feed it frames
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=err)
        assert proc.stdin is not None
        try:
            for k in ks:
                proc.stdin.write(anim.render(int(k)).tobytes())
        except BrokenPipeError:
            pass  # ffmpeg stopped early; its exit status and message say why
        finally:
            proc.stdin.close()
        rc = proc.wait()
        if rc != 0:
            err.seek(0)
            message = err.read().decode(errors="replace").strip()[-800:]
            raise RuntimeError(
                f"{owner}: ffmpeg failed with exit status {rc} writing {str(out)!r}: {message}"
            )
    return out
