"""Matplotlib drawings of the lab's other experiments: the LR range test, batching, training runs."""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text

from .._validation import check_int, describe
from ._shared import (  # the same rules and colours as the plotly report's
    SERIES_COLORS,
    SUGGESTION_STYLE,
    epoch_end_steps,
    log_worthy,
    lr_find_ylim,
)
from ._style import check_size, new_figure

__all__ = [
    "BATCHING_X",
    "SUGGESTION_STYLE",
    "Drawn",
    "batching_figure",
    "epoch_end_steps",
    "log_worthy",
    "plot_batching",
    "plot_lr_find",
    "plot_training",
    "save_png",
    "training_figure",
]

#: x axes that :func:`plot_batching` knows: the curve attribute and the axis label
BATCHING_X: dict[str, str] = {
    "epochs": "epochs (samples seen / n)",
    "time": "training wall time (s)",
    "updates": "updates",
}


@dataclass
class Drawn:
    """What one plotting call drew: its axes (``figure`` is the axes' figure) and the artists by name.

    ``lines`` holds one line per curve (keyed by its label), ``markers`` the vertical marker lines
    (LR suggestions), ``texts`` their labels.
    """

    ax: Axes
    lines: dict[str, Line2D] = field(default_factory=dict)
    markers: dict[str, Line2D] = field(default_factory=dict)
    texts: dict[str, Text] = field(default_factory=dict)

    @property
    def figure(self) -> Figure:
        fig = self.ax.get_figure()
        assert isinstance(fig, Figure)
        return fig


def _axes(ax: Axes | None, size: tuple[int, int] = (900, 600)) -> Axes:
    return new_figure(size).add_subplot() if ax is None else ax


def _positive(values: Any) -> np.ndarray:
    """Float copy with non-positive and non-finite entries as NaN (gaps on a log axis)."""
    a = np.array(values, dtype=np.float64)
    a[~(np.isfinite(a) & (a > 0))] = np.nan
    return a


# ------------------------------------------------------------------------------------- lr-find


def plot_lr_find(result: Any, ax: Axes | None = None) -> Drawn:
    """The LR range test: smoothed loss (and the raw batch loss, faint) against lr on a log axis,
    with a vertical marker and a label for the recommended lr and each other reading
    (``valley``, ``steep``, ``min``)."""
    ax = _axes(ax)
    lrs = np.asarray(result.lrs, dtype=np.float64)
    drawn = Drawn(ax)
    (drawn.lines["loss"],) = ax.plot(lrs, result.losses, color="#1f77b4", alpha=0.3, lw=1, label="batch loss")
    (drawn.lines["smoothed"],) = ax.plot(lrs, result.smoothed, color="#1f77b4", lw=2, label="smoothed loss")
    ax.set_xscale("log")
    ylim = lr_find_ylim(result.smoothed)  # the view on the useful part, not the final blow-up
    if ylim is not None:
        ax.set_ylim(*ylim)
    for i, (name, lr) in enumerate(result.marks().items()):
        style = SUGGESTION_STYLE.get(name, {"color": "black", "linestyle": "--"})
        drawn.markers[name] = ax.axvline(lr, lw=1.5, label=f"{name}: {lr:.3g}", **style)
        drawn.texts[name] = ax.annotate(
            f"{name}\n{lr:.2g}",
            xy=(lr, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -4 - 26 * i),
            textcoords="offset points",
            va="top",
            fontsize=8,
            color=style["color"],
        )
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title(f"LR range test ({result.reason})", fontsize=10)
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    return drawn


# ------------------------------------------------------------------------------------ batching


def _batching_y(result: Any, curve: Any) -> tuple[np.ndarray, bool]:
    """Loss minus the optimum when the optimum is known (then positive: log axis), else the loss."""
    opt = float(result.optimal_loss)
    if math.isfinite(opt):
        return _positive(np.asarray(curve.loss, dtype=np.float64) - opt), True
    return np.asarray(curve.loss, dtype=np.float64), False


def plot_batching(result: Any, x: str = "epochs", ax: Axes | None = None) -> Drawn:
    """Full-data loss of each batching strategy against ``x`` (``"epochs"``, ``"time"`` or
    ``"updates"``); the excess over the optimal loss on a log axis when the optimum is known.
    Time and updates use a log x axis (strategies differ by orders of magnitude there)."""
    if x not in BATCHING_X:
        raise ValueError(f"plot_batching: x must be one of {sorted(BATCHING_X)}, got {describe(x)}")
    ax = _axes(ax)
    drawn = Drawn(ax)
    ys = []
    excess = False
    for i, c in enumerate(result.curves):
        xs = np.asarray(getattr(c, x), dtype=np.float64)
        y, excess = _batching_y(result, c)
        if x != "epochs":
            xs = _positive(xs)
        (drawn.lines[c.label],) = ax.plot(
            xs, y, lw=1.5, color=SERIES_COLORS[i % len(SERIES_COLORS)], label=c.label
        )
        ys.append(y)
    if excess or log_worthy(*ys):  # the excess is positive by construction (others are NaN)
        ax.set_yscale("log")
    if x != "epochs":
        ax.set_xscale("log")
    ax.set_xlabel(BATCHING_X[x])
    ax.set_ylabel("loss − optimal loss (full data)" if excess else "loss (full data)")
    ax.set_title(f"{result.dataset}: loss vs {x}", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    return drawn


def batching_figure(result: Any, size: tuple[int, int] = (1200, 500)) -> Figure:
    """Two panels side by side: loss against epochs and against wall time."""
    fig = new_figure(check_size("batching_figure", size))
    left, right = fig.subplots(1, 2)
    plot_batching(result, "epochs", ax=left)
    plot_batching(result, "time", ax=right)
    return fig


# ------------------------------------------------------------------------------------ training


def plot_training(run: Any, ax: Axes | None = None) -> Drawn:
    """Loss of a :func:`~descend.fit` run: every update's batch loss (light), the epoch means of the
    training loss and, when validation was given, the validation loss, against update steps."""
    ax = _axes(ax)
    h = run.history
    drawn = Drawn(ax)
    steps = np.asarray(h.steps["step"], dtype=np.float64)
    loss = np.asarray(h.steps["loss"], dtype=np.float64)
    (drawn.lines["batch loss"],) = ax.plot(steps, loss, color="#1f77b4", alpha=0.3, lw=1, label="batch loss")
    curves = [loss]
    at = epoch_end_steps(h)
    for key, label, color in (
        ("train_loss", "train loss (epoch)", "#1f77b4"),
        ("val_loss", "val loss", "#d62728"),
    ):
        if key in h.epochs:
            y = np.asarray(h.epochs[key], dtype=np.float64)
            (drawn.lines[label],) = ax.plot(at, y, "o-", color=color, lw=2, ms=4, label=label)
            curves.append(y)
    if log_worthy(*curves):
        ax.set_yscale("log")
    ax.set_xlabel("update step")
    ax.set_ylabel("loss")
    ax.set_title("training loss", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    return drawn


def _plot_step_column(ax: Axes, run: Any, column: str, label: str, color: str) -> Line2D:
    h = run.history
    y = np.asarray(h.steps[column], dtype=np.float64)
    (line,) = ax.plot(np.asarray(h.steps["step"], dtype=np.float64), y, color=color, lw=1.2, label=label)
    if log_worthy(y):
        ax.set_yscale("log")
    ax.set_xlabel("update step")
    ax.set_ylabel(label)
    ax.set_title(label, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    return line


def training_figure(run: Any, size: tuple[int, int] = (1500, 450)) -> Figure:
    """Three panels: loss (steps and epochs), learning rate, gradient norm."""
    fig = new_figure(check_size("training_figure", size))
    a, b, c = fig.subplots(1, 3)
    plot_training(run, ax=a)
    _plot_step_column(b, run, "lr", "learning rate", "#2ca02c")
    _plot_step_column(c, run, "grad_norm", "gradient norm", "#ff7f0e")
    return fig


# ------------------------------------------------------------------------------------- output


def save_png(
    fig: Figure, path: str | os.PathLike[str], size: tuple[int, int] = (900, 600), dpi: int = 100
) -> Path:
    """Write ``fig`` as a PNG of exactly ``size = (width, height)`` pixels (the figure is resized)."""
    w, h = check_size("save_png", size)
    dpi = check_int("save_png", "dpi", dpi, low=1)
    fig.set_size_inches(w / dpi, h / dpi)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # at thumbnail sizes the layout cannot fit the labels; the picture is still written whole
        warnings.filterwarnings("ignore", "constrained_layout not applied", UserWarning)
        # no bbox_inches="tight": it would change the pixel size
        fig.savefig(out, format="png", dpi=dpi)
    return out


# ------------------------------------------------------------------------------------ diagnose


def plot_spectrum(diagnosis: Any, ax: Axes | None = None) -> Drawn:
    """The Hessian's eigenvalue density from a :class:`~descend.Diagnosis` (exact eigenvalues
    for a dense Hessian, stochastic Lanczos quadrature otherwise) as a weighted histogram, with
    :math:`\\lambda_{\\max}` and, where the rule has one, the stability limit ``c / lr`` marked:
    a top eigenvalue right of the limit means the lr is too high for that direction."""
    ax = _axes(ax)
    drawn = Drawn(ax)
    spec = diagnosis.spectrum
    nodes = np.asarray(spec.nodes, dtype=np.float64)
    weights = np.asarray(spec.weights, dtype=np.float64)
    keep = np.isfinite(nodes) & np.isfinite(weights)
    nodes, weights = nodes[keep], weights[keep]
    lam = float(diagnosis.hessian_top[0]) if len(diagnosis.hessian_top) else math.nan
    if nodes.size:
        lo, hi = float(nodes.min()), float(nodes.max())
        if hi == lo:
            hi, lo = hi + 0.5, lo - 0.5
        bins = np.linspace(lo, hi, 41)
        ax.hist(nodes, bins=bins, weights=weights, color="#1f77b4", alpha=0.7, label="eigenvalue density")
        ax.set_yscale("log")
    if math.isfinite(lam):
        drawn.markers["lambda_max"] = ax.axvline(lam, color="#d62728", lw=1.5, label=f"λ_max {lam:.3g}")
    limit = getattr(diagnosis, "lr_max", None)
    lr = getattr(diagnosis, "lr", None)
    if limit is not None and lr and math.isfinite(limit) and limit > 0:
        curvature = lam * limit / lr if math.isfinite(lam) else math.nan  # lr_max = c/lam: c/lr
        if math.isfinite(curvature):
            drawn.markers["limit"] = ax.axvline(
                curvature,
                color="black",
                linestyle="--",
                lw=1.5,
                label=f"stability limit c/lr = {curvature:.3g} ({diagnosis.rule}, lr {lr:g})",
            )
    ax.set_xlabel("Hessian eigenvalue")
    ax.set_ylabel("density (weight)")
    ax.set_title(f"Hessian spectrum of {diagnosis.subject} ({diagnosis.spectrum_method})", fontsize=10)
    ax.legend(loc="upper center", fontsize=8)
    ax.grid(True, alpha=0.3)
    return drawn


def plot_monitor(history: Any, column: str = "grad_norm", ax: Axes | None = None) -> Drawn:
    """One line per layer of a :class:`~descend.Monitor`'s column family over training
    (``"grad_norm"``, ``"weight_norm"``, ``"update_ratio"``, ``"dead"``, ``"saturated"``,
    ``"duplicate"``), on a log axis when the values span decades: vanishing gradients show as
    the first layers' lines far below the last's."""
    ax = _axes(ax)
    drawn = Drawn(ax)
    table = history.monitor
    if not table:
        raise ValueError(
            "plot_monitor: the history has no monitor records (fit with callbacks=[ds.Monitor()])"
        )
    steps = np.asarray(table["step"], dtype=np.float64)
    names = [k for k in table if k.startswith(column + "/")]
    if not names:
        have = sorted({k.split("/")[0] for k in table if "/" in k})
        raise ValueError(f"plot_monitor: column must be one of {have}, got {column!r}")
    cmap = matplotlib.colormaps["viridis"]
    values = [np.asarray(table[k], dtype=np.float64) for k in names]
    for i, (k, v) in enumerate(zip(names, values, strict=True)):
        color = cmap(i / max(1, len(names) - 1))
        (drawn.lines[k],) = ax.plot(steps, v, color=color, lw=1.5, label=k.split("/", 1)[1])
    if log_worthy(*values):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(column.replace("_", " "))
    ax.set_title(f"{column.replace('_', ' ')} per layer over training", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return drawn


def plot_noise(diagnosis: Any, ax: Axes | None = None) -> Drawn:
    """Gradient noise against batch size from a :class:`~descend.Diagnosis`: the expected
    :math:`\\lVert g_B - G\\rVert^2 / \\lVert G\\rVert^2 = B_\\text{simple} / B` of a batch-B
    gradient (McCandlish et al. 2018), log-log, with the noise scale (where noise equals signal:
    larger batches buy little) and the run's batch size marked."""
    ax = _axes(ax)
    drawn = Drawn(ax)
    b_simple = float(diagnosis.noise_scale)
    if not (math.isfinite(b_simple) and b_simple > 0):
        ax.text(0.5, 0.5, "no noise scale measured", ha="center", va="center", transform=ax.transAxes)
        return drawn
    batch = diagnosis.batch_size
    top = max(10.0 * b_simple, 10.0 * (batch or 1), 10.0)
    bs = np.geomspace(1.0, top, 200)
    (drawn.lines["noise"],) = ax.plot(
        bs, b_simple / bs, color="#1f77b4", lw=2, label="noise / signal = B_simple / B"
    )
    drawn.markers["b_simple"] = ax.axvline(
        b_simple, color="#d62728", linestyle="--", lw=1.5, label=f"B_simple {b_simple:.3g} (critical batch)"
    )
    ax.axhline(1.0, color="grey", lw=0.8)
    if batch:
        drawn.markers["batch"] = ax.axvline(
            batch, color="black", lw=1.5, label=f"batch size {batch} (noise/signal {b_simple / batch:.3g})"
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("batch size B")
    ax.set_ylabel("expected gradient noise / signal")
    ax.set_title("gradient noise against batch size", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    return drawn
