"""The HTML report: one self-contained page of interactive plotly figures and tables (works offline).

Section builders turn lab results into :class:`Section` objects; :func:`write_report` writes them,
in order, into one HTML file that embeds plotly.js once and loads nothing from the network.

>>> s = table_section([{"optimizer": "adam", "final_loss": 1.5e-9}], "results")
>>> s.title, len(s.parts)
('results', 1)
>>> '<td class="num">1.5e-09</td>' in render_table([{"optimizer": "adam", "final_loss": 1.5e-9}])
True
"""

from __future__ import annotations

import datetime as _dt
import html
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

# the rules the matplotlib pictures draw by, from _shared: a report must not import matplotlib
from ._shared import (
    CONTOUR_RESOLUTION,
    PLOTLY_DASHES,
    PLOTLY_SYMBOLS,
    SERIES_COLORS,
    SUGGESTION_STYLE,
    edge_color,
    entry_labels,
    entry_styles,
    epoch_end_steps,
    frame_steps,
    in_box,
    log_worthy,
    loss_axis,
    lr_find_ylim,
    mesh,
    minima,
    view_box,
    z_scale,
)

__all__ = [
    "MAX_FRAMES",
    "MAX_PATH_POINTS",
    "Section",
    "batching_section",
    "interactive_race_figure",
    "lr_find_section",
    "race_section",
    "render_report",
    "render_table",
    "schedules_section",
    "table_section",
    "text_section",
    "training_section",
    "write_report",
]

#: most animation frames of a race figure: steps are subsampled evenly (the last step always shown)
MAX_FRAMES = 60
#: most points drawn per optimizer path: keeps a 5000-step race's page small
MAX_PATH_POINTS = 300


def _template() -> go.layout.Template:
    """plotly_white with exponents written as powers of ten (10⁻⁶), not SI prefixes (1µ)."""
    import plotly.io as pio

    t = go.layout.Template(pio.templates["plotly_white"])
    for axis in (
        t.layout.xaxis,
        t.layout.yaxis,
        t.layout.scene.xaxis,
        t.layout.scene.yaxis,
        t.layout.scene.zaxis,
    ):
        axis.exponentformat = "power"
    return t


_TEMPLATE = _template()
_CONFIG = {"displaylogo": False, "responsive": True}


@dataclass
class Section:
    """One part of the report: a heading, an optional plain-text intro (escaped), then parts in
    order, each a plotly figure or an HTML fragment (inserted as is: build it with
    :func:`render_table` or :func:`html.escape`)."""

    title: str
    parts: list[go.Figure | str] = field(default_factory=list)
    intro: str = ""

    @property
    def figures(self) -> list[go.Figure]:
        return [p for p in self.parts if isinstance(p, go.Figure)]


def _esc(text: Any) -> str:
    """Text for plotly labels: plotly reads a little HTML in labels, so show user text literally."""
    return html.escape(str(text), quote=False)


# ---------------------------------------------------------------------------------------- tables


def _cell(value: Any) -> str:
    """A table cell as the terminal shows it: ``-`` for a missing value or NaN."""
    if value is None or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}" if math.isfinite(value) else str(float(value))
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(_cell(v) for v in value)
    return str(value)


def _td(value: Any) -> str:
    numeric = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )
    cls = ' class="num"' if numeric else ""
    return f"<td{cls}>{html.escape(_cell(value))}</td>"


def render_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """An HTML table of dict rows (columns: the union of keys in first-seen order); every cell is
    escaped, floats shown with 4 significant digits, ``None`` and NaN as ``-`` (as in the terminal)."""
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_td(row.get(c)) for c in columns) + "</tr>\n" for row in rows)
    return (
        f'<div class="table-wrap"><table class="descend-table">\n<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{body}</tbody>\n</table></div>"
    )


def table_section(rows: Sequence[Mapping[str, Any]], title: str, *, intro: str = "") -> Section:
    """A section holding one table of ``rows``."""
    return Section(title, [render_table(rows)], intro)


def text_section(html_fragment: str, title: str = "") -> Section:
    """A section of trusted HTML (inserted as is); escape any user text inside it yourself."""
    return Section(title, [html_fragment])


# ------------------------------------------------------------------------------------------ race


def _path_hover(e: Any) -> str:
    return (
        f"<b>{_esc(e.label)}</b><br>step %{{customdata[0]}}<br>x = %{{x:.5g}}<br>y = %{{y:.5g}}"
        "<br>loss = %{customdata[1]:.5g}<extra></extra>"
    )


def interactive_race_figure(
    race: Any, *, max_frames: int = MAX_FRAMES, max_points: int = MAX_PATH_POINTS
) -> go.Figure:
    """The race on its surface, animated: each optimizer's path grows frame by frame (Play/Pause
    and a step slider), with the start and known minima marked and step, x, y and loss on hover.

    The figure opens on the final step; Play replays from step 0. Clicking a legend entry hides
    that optimizer (its path and its head together).
    """
    f = race.function
    if getattr(f, "dim", 2) != 2:
        raise ValueError(f"interactive_race_figure: needs a 2-D objective, {f.name} has dim={f.dim}")
    box = view_box(race)
    X, Y, Z = mesh(f, box, CONTOUR_RESOLUTION)
    scale = z_scale(f, Z)  # the PNG's colour scale; plotly has no log colour axis, so log10 heights
    H = scale.heights(Z)
    zlabel = scale.height_label
    zmin, zmax = scale.height_range
    fig = go.Figure()
    fig.add_trace(
        go.Contour(
            x=X[0],
            y=Y[:, 0],
            z=np.where(np.isfinite(H), H, np.nan),
            zmin=zmin,
            zmax=zmax,
            colorscale=scale.colormap,
            opacity=0.75,
            ncontours=30,
            contours={"coloring": "fill", "showlines": True},
            line={"width": 0.5},
            colorbar={"title": {"text": _esc(zlabel), "side": "right"}},
            hovertemplate="x = %{x:.4g}<br>y = %{y:.4g}<br>" + _esc(zlabel) + " = %{z:.4g}<extra></extra>",
            name="surface",
            showlegend=False,
        )
    )
    glob, local = minima(f)
    for points, name, size, color in (
        (glob, "global minimum", 18, "gold"),
        (local, "local minimum", 12, "white"),
    ):
        P = in_box(points, box)
        if len(P):
            fig.add_trace(
                go.Scatter(
                    x=P[:, 0],
                    y=P[:, 1],
                    mode="markers",
                    name=name,
                    marker={
                        "symbol": "star",
                        "size": size,
                        "color": color,
                        "line": {"width": 1, "color": "black"},
                    },
                    hovertemplate=name + "<br>x = %{x:.5g}<br>y = %{y:.5g}<extra></extra>",
                )
            )
    fig.add_trace(
        go.Scatter(
            x=[race.start[0]],
            y=[race.start[1]],
            mode="markers",
            name="start",
            marker={"symbol": "circle", "size": 12, "color": "white", "line": {"width": 2, "color": "black"}},
            hovertemplate="start<br>x = %{x:.5g}<br>y = %{y:.5g}<extra></extra>",
        )
    )
    shown_steps = frame_steps(race.steps, max_frames)
    animated: list[int] = []
    tracks = []  # per entry: (drawn point indices, path, losses)
    styles = entry_styles(e.optimizer for e in race.entries)
    for e, style, label in zip(race.entries, styles, entry_labels(race), strict=True):
        path = np.asarray(e.path, dtype=np.float64)
        losses = np.asarray(e.losses, dtype=np.float64)
        n = len(path)
        keep = np.round(np.linspace(0, n - 1, min(n, max_points))).astype(int)
        idx = np.union1d(keep, shown_steps[shown_steps < n])
        tracks.append((idx, path, losses))
        group = f"opt{len(tracks)}"
        edge = edge_color(style)  # a marker of lines only is drawn in the run's colour
        fig.add_trace(
            go.Scatter(
                x=path[idx, 0],
                y=path[idx, 1],
                customdata=np.column_stack([idx, losses[idx]]),
                mode="lines+markers",
                name=_esc(label),
                legendgroup=group,
                line={"color": style["color"], "width": 2},
                marker={"size": 4, "color": style["color"]},
                hovertemplate=_path_hover(e),
            )
        )
        fig.add_trace(
            go.Scatter(
                x=path[-1:, 0],
                y=path[-1:, 1],
                customdata=[[n - 1, losses[-1]]],
                mode="markers",
                name=_esc(e.label),
                legendgroup=group,
                showlegend=False,
                marker={
                    "symbol": PLOTLY_SYMBOLS.get(style["marker"], "circle"),
                    "size": 12,
                    "color": style["color"],
                    "line": {"width": 1 if edge == "black" else 2, "color": edge},
                },
                hovertemplate=_path_hover(e),
            )
        )
        animated += [len(fig.data) - 2, len(fig.data) - 1]
    frames = []
    for s in shown_steps:
        data: list[dict[str, Any]] = []
        for idx, path, losses in tracks:
            last = min(int(s), len(path) - 1)  # a diverged run stopped early: it stays where it stopped
            shown = idx[idx <= last]
            # only x and y change: the trace's customdata (same order, a prefix) keeps the hover right
            data.append({"type": "scatter", "x": path[shown, 0], "y": path[shown, 1]})
            head = path[last : last + 1]
            data.append(
                {"type": "scatter", "x": head[:, 0], "y": head[:, 1], "customdata": [[last, losses[last]]]}
            )
        # plain dicts: validated once on assignment (go.Frame objects would be validated twice, ~3x slower)
        frames.append({"data": data, "traces": animated, "name": str(int(s))})
    fig.frames = frames
    # redraw: plotly.js drops the contour from the plot when frames animate without a full redraw
    # (plotly.js#4491, plotly.py#2151); a redraw of this figure takes ~0.1 s in headless Chromium
    still = {"mode": "immediate", "frame": {"duration": 0, "redraw": True}, "transition": {"duration": 0}}
    (x0, x1), (y0, y1) = box
    fig.update_layout(
        template=_TEMPLATE,
        title={"text": _esc(f"{f.name}: {len(race.entries)} optimizers, {race.steps} steps"), "x": 0.01},
        xaxis={"title": {"text": "x"}, "range": [x0, x1], "constrain": "domain"},
        yaxis={"title": {"text": "y"}, "range": [y0, y1]},
        height=680,
        margin={"l": 60, "r": 20, "t": 60, "b": 40},
        legend={"orientation": "h", "y": -0.32, "x": 0.0, "font": {"size": 11}},
        hovermode="closest",
        updatemenus=[
            {
                "type": "buttons",
                "direction": "left",
                "x": 0.0,
                "y": -0.08,
                "xanchor": "left",
                "yanchor": "top",
                "pad": {"t": 0, "r": 10},
                "showactive": False,
                "buttons": [
                    {
                        "label": "▶ Play",
                        "method": "animate",
                        "args": [
                            None,
                            {
                                "frame": {"duration": 80, "redraw": True},
                                "transition": {"duration": 0},
                                "fromcurrent": True,
                                "mode": "immediate",
                            },
                        ],
                    },
                    {"label": "❚❚ Pause", "method": "animate", "args": [[None], still]},
                ],
            }
        ],
        sliders=[
            {
                "active": len(shown_steps) - 1,
                "x": 0.16,
                "len": 0.84,
                "y": -0.06,
                "yanchor": "top",
                "currentvalue": {"prefix": "step ", "font": {"size": 12}},
                "pad": {"t": 0, "b": 0},
                "steps": [
                    {"label": str(int(s)), "method": "animate", "args": [[str(int(s))], still]}
                    for s in shown_steps
                ],
            }
        ],
    )
    return fig


def _race_loss_figure(race: Any) -> go.Figure:
    """Loss (minus the known minimum value, when there is one) against step, on the log axis of
    :func:`descend.viz.race.plot_loss` (linear where that one is symmetric-log: plotly has none).

    A diverged run is drawn up to its last finite loss and ends in an ``x`` (on the top edge
    when it is beyond the view); the view follows the runs that did not diverge.
    """
    fmin = getattr(race.function, "minimum_value", None)
    axis = loss_axis(race)
    log = axis.kind == "log"
    fig = go.Figure()
    styles = entry_styles(e.optimizer for e in race.entries)
    for e, y, style, label in zip(race.entries, axis.ys, styles, entry_labels(race), strict=True):
        fig.add_trace(
            go.Scatter(
                x=np.arange(len(y)),
                y=np.where(np.isfinite(y), y, np.nan),
                mode="lines",
                name=_esc(label),
                legendgroup=e.optimizer,
                line={"color": style["color"], "width": 2},
                hovertemplate=f"<b>{_esc(label)}</b><br>step %{{x}}<br>loss = %{{y:.5g}}<extra></extra>",
            )
        )
    yaxis: dict[str, Any] = {"title": {"text": _esc(axis.label)}, "type": "log" if log else "linear"}
    ref = axis.ref
    if ref.size:
        lo, hi = float(ref.min()), float(ref.max())
        if log:
            lo, hi = math.log10(lo), math.log10(hi)
        pad = 0.05 * (hi - lo) if hi > lo else 0.5
        yaxis["range"] = [lo - pad, hi + pad]
        top = 10 ** (hi + pad) if log else hi + pad
        for e, end, style in zip(race.entries, axis.ends, styles, strict=True):
            if end is not None:
                fig.add_trace(
                    go.Scatter(
                        x=[end[0]],
                        y=[min(end[1], top)],
                        mode="markers",
                        marker={"symbol": "x", "size": 12, "color": style["color"]},
                        name=_esc(f"{e.optimizer} diverged at step {end[0] + 1}"),
                        legendgroup=e.optimizer,
                        showlegend=False,
                        cliponaxis=False,
                        hovertemplate=f"{_esc(e.optimizer)} diverged after step %{{x}}<extra></extra>",
                    )
                )
    fig.update_layout(
        template=_TEMPLATE,
        title={"text": "loss − f* against step" if fmin is not None else "loss against step", "x": 0.01},
        xaxis={"title": {"text": "step"}, "range": [0, race.steps]},
        yaxis=yaxis,
        height=420,
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
    )
    return fig


def race_section(race: Any) -> Section:
    """The race: animated paths on the surface (2-D objectives), loss against step, results table."""
    f = race.function
    desc = str(getattr(f, "description", "") or "").strip()
    intro = (
        f"{f.name}: {desc}{'' if desc.endswith('.') else '.'} Start {np.round(race.start, 4).tolist()}, "
        f"{race.steps} steps, lr: {race.lr_rule}, gradient: {race.grad_method}"
        + (f", gradient noise σ={race.noise:g}" if race.noise else "")
        + "."
    )
    parts: list[go.Figure | str] = []
    if getattr(f, "dim", 2) == 2:
        parts.append(interactive_race_figure(race))
    parts += [_race_loss_figure(race), render_table(race.table())]
    return Section(f"Race on {f.name}", parts, intro)


# ------------------------------------------------------------------------------------- lr-find


def schedules_section(
    schedules: Sequence[Any], steps: int, *, labels: Sequence[str] | None = None, log: bool = False
) -> Section:
    """Learning rate against step for one or several schedules (``values(steps)`` of each)."""
    labels = list(labels) if labels is not None else [repr(s) for s in schedules]
    fig = go.Figure()
    for i, (sched, label) in enumerate(zip(schedules, labels, strict=True)):
        values = np.asarray(sched.values(steps), dtype=np.float64)
        fig.add_trace(
            go.Scatter(
                x=np.arange(steps),
                y=values,
                mode="lines",
                name=_esc(label),
                line={"color": SERIES_COLORS[i % len(SERIES_COLORS)], "width": 2},
                hovertemplate="step %{x}<br>lr %{y:.4g}<extra></extra>",
            )
        )
    fig.update_layout(
        template=_TEMPLATE,
        xaxis_title="step",
        yaxis_title="learning rate",
        height=450,
        legend={"orientation": "h", "y": -0.2},
    )
    if log:
        fig.update_yaxes(type="log")
    return Section("Learning-rate schedules", [fig])


def lr_find_section(result: Any) -> Section:
    """The LR range test: raw and smoothed loss against lr (log x), the three suggestions marked,
    and a table of the suggestions."""
    lrs = np.asarray(result.lrs, dtype=np.float64)
    sm = np.asarray(result.smoothed, dtype=np.float64)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=lrs,
            y=result.losses,
            mode="lines",
            name="batch loss",
            line={"color": "#1f77b4", "width": 1},
            opacity=0.35,
        )
    )
    fig.add_trace(
        go.Scatter(x=lrs, y=sm, mode="lines", name="smoothed loss", line={"color": "#1f77b4", "width": 3})
    )
    bottom, top = lr_find_ylim(sm) or (0.0, 1.0)
    for i, (name, lr) in enumerate(result.marks().items()):
        style = SUGGESTION_STYLE.get(name, {"color": "black", "linestyle": "--"})
        # a vertical line as a trace (not a shape) so the legend can hide it, like the curves;
        # the labels sit at staggered heights so close suggestions stay readable
        label_y = top - (0.04 + 0.07 * i) * (top - bottom)
        fig.add_trace(
            go.Scatter(
                x=[lr, lr, lr],
                y=[bottom, label_y, top],
                mode="lines+text",
                text=["", f"{_esc(name)} {lr:.2g}", ""],
                textposition="middle right",
                textfont={"color": style["color"]},
                name=f"{_esc(name)}: {lr:.3g}",
                line={"color": style["color"], "dash": PLOTLY_DASHES[style["linestyle"]], "width": 2},
                hovertemplate=f"{_esc(name)}: lr = {lr:.4g}<extra></extra>",
            )
        )
    fig.update_layout(
        template=_TEMPLATE,
        title={"text": _esc(f"LR range test ({result.reason})"), "x": 0.01},
        xaxis={"title": {"text": "learning rate"}, "type": "log"},
        yaxis={"title": {"text": "loss"}, "range": [bottom, top]},
        height=480,
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
    )
    rows = [{"suggestion": k, "lr": v} for k, v in result.marks().items()]
    cfg = getattr(result, "config", {}) or {}
    advice = getattr(result, "advice", "")
    intro = (
        f"{len(lrs)} steps"
        + (f" with {cfg['optimizer']}" if "optimizer" in cfg else "")
        + f"; {result.reason}."
        + (f" Recommended lr {result.lr:.3g}: {advice}." if advice else "")
    )
    return Section("Learning-rate range test", [fig, render_table(rows)], intro)


# ------------------------------------------------------------------------------------ batching


def batching_section(result: Any) -> Section:
    """Full-data loss of each batching strategy against epochs and against wall time (log axes:
    the excess over the optimal loss when it is known), and the summary table."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("against epochs", "against training wall time"))
    opt = float(result.optimal_loss)
    excess = math.isfinite(opt)
    for i, c in enumerate(result.curves):
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        y = np.asarray(c.loss, dtype=np.float64) - (opt if excess else 0.0)
        y = np.where(y > 0, y, np.nan) if excess else y
        t = np.asarray(c.time, dtype=np.float64)
        for col, x, unit in (
            (1, np.asarray(c.epochs, dtype=np.float64), "epochs"),
            (2, np.where(t > 0, t, np.nan), "s"),
        ):
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=y,
                    mode="lines",
                    name=_esc(c.label),
                    legendgroup=f"b{i}",
                    showlegend=col == 1,
                    line={"color": color, "width": 2},
                    hovertemplate=(
                        f"<b>{_esc(c.label)}</b><br>%{{x:.4g}} {unit}<br>loss = %{{y:.5g}}<extra></extra>"
                    ),
                ),
                row=1,
                col=col,
            )
    ylabel = "loss − optimal loss" if excess else "loss"
    ylog = excess or log_worthy(*(c.loss for c in result.curves))
    fig.update_yaxes(title_text=ylabel, type="log" if ylog else "linear")
    fig.update_xaxes(title_text="epochs (samples seen / n)", row=1, col=1)
    fig.update_xaxes(title_text="seconds (log)", type="log", row=1, col=2)
    fig.update_layout(
        template=_TEMPLATE,
        title={"text": _esc(f"{result.dataset}: batch vs stochastic vs mini-batch"), "x": 0.01},
        height=460,
        margin={"l": 60, "r": 20, "t": 70, "b": 40},
    )
    intro = (
        f"{result.dataset}: n = {result.n_samples}, {result.epochs} epochs"
        + (f", optimal loss {opt:.6g}" if excess else "")
        + "."
    )
    return Section("Batch size: full, stochastic, mini-batch", [fig, render_table(result.summary())], intro)


# ------------------------------------------------------------------------------------ training


def training_section(run: Any, title: str = "Training") -> Section:
    """A :func:`~descend.fit` run: batch and epoch losses, lr and gradient norm against step, the
    epoch metrics (validation accuracy/MSE) against epoch, and the epoch table."""
    h = run.history
    steps = np.asarray(h.steps["step"], dtype=np.float64)
    fig = make_subplots(rows=1, cols=3, subplot_titles=("loss", "learning rate", "gradient norm"))
    loss = np.asarray(h.steps["loss"], dtype=np.float64)
    fig.add_trace(
        go.Scatter(
            x=steps,
            y=loss,
            mode="lines",
            name="batch loss",
            line={"color": "#1f77b4", "width": 1},
            opacity=0.4,
        ),
        row=1,
        col=1,
    )
    ep = h.epochs
    curves = [loss]
    if ep.get("samples_seen"):
        at = epoch_end_steps(h)
        for key, label, color in (
            ("train_loss", "train loss (epoch)", "#1f77b4"),
            ("val_loss", "val loss", "#d62728"),
        ):
            if key in ep:
                y = np.asarray(ep[key], dtype=np.float64)
                curves.append(y)
                fig.add_trace(
                    go.Scatter(
                        x=at,
                        y=y,
                        mode="lines+markers",
                        name=label,
                        line={"color": color, "width": 2},
                        customdata=np.asarray(ep["epoch"]),  # counted from 0, as in the table
                        hovertemplate=(
                            f"{label}<br>epoch %{{customdata}} (step %{{x}})<br>%{{y:.5g}}<extra></extra>"
                        ),
                    ),
                    row=1,
                    col=1,
                )
    for col, key, label, color in (
        (2, "lr", "learning rate", "#2ca02c"),
        (3, "grad_norm", "gradient norm", "#ff7f0e"),
    ):
        y = np.asarray(h.steps[key], dtype=np.float64)
        fig.add_trace(
            go.Scatter(x=steps, y=y, mode="lines", name=label, line={"color": color, "width": 1.5}),
            row=1,
            col=col,
        )
        fig.update_yaxes(type="log" if log_worthy(y) else "linear", row=1, col=col)
        finite = y[np.isfinite(y)]
        if finite.size and finite.min() == finite.max() != 0:  # a constant lr: centre it, not 0
            v = float(finite[0])
            fig.update_yaxes(range=sorted([0.5 * v, 1.5 * v]), row=1, col=col)
    fig.update_yaxes(type="log" if log_worthy(np.concatenate(curves)) else "linear", row=1, col=1)
    fig.update_xaxes(title_text="update step")
    fig.update_layout(template=_TEMPLATE, height=420, margin={"l": 60, "r": 20, "t": 50, "b": 40})
    parts: list[go.Figure | str] = [fig]
    metrics = [k for k in ("val_accuracy", "val_mse") if k in ep]
    if metrics and ep.get("epoch"):
        mfig = go.Figure()
        for k in metrics:
            mfig.add_trace(go.Scatter(x=np.asarray(ep["epoch"]), y=ep[k], mode="lines+markers", name=k))
        mfig.update_layout(
            template=_TEMPLATE,
            title={"text": "validation metrics per epoch", "x": 0.01},
            xaxis={"title": {"text": "epoch"}},
            yaxis={
                "title": {"text": ", ".join(metrics)},
                "type": "log"
                if metrics == ["val_mse"] and log_worthy(np.asarray(ep["val_mse"], float))
                else "linear",
            },
            height=340,
            margin={"l": 60, "r": 20, "t": 50, "b": 40},
        )
        parts.append(mfig)
    if ep:
        parts.append(render_table(run.history.epoch_rows()))
    model = type(run.model).__name__
    intro = f"{model} trained by {run.optimizer!r}: {run.stop_reason or 'finished'}."
    return Section(title, parts, intro)


# ---------------------------------------------------------------------------------------- page

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1200px;
       padding: 1rem 1.5rem 3rem; color: #222; }
header { border-bottom: 1px solid #ddd; margin-bottom: 1rem; }
header .meta { color: #666; font-size: 0.9rem; }
nav ol { columns: 2; font-size: 0.95rem; }
section { margin: 2rem 0; }
section > h2 { border-bottom: 1px solid #eee; padding-bottom: 0.3rem; }
.intro { color: #444; }
.figure { margin: 0.5rem 0 1rem; }
.table-wrap { overflow-x: auto; }
table.descend-table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
table.descend-table th, table.descend-table td { border: 1px solid #ddd; padding: 0.25rem 0.6rem;
  text-align: left; }
table.descend-table th { background: #f5f5f5; }
table.descend-table td.num { text-align: right; font-variant-numeric: tabular-nums; }
"""


def _as_section(item: Any) -> Section:
    if isinstance(item, Section):
        return item
    if isinstance(item, go.Figure):
        return Section("", [item])
    raise TypeError(
        f"write_report: sections must be Section objects or plotly figures, got {type(item).__name__}"
    )


def render_report(
    *,
    title: str,
    sections: Iterable[Section | go.Figure],
    description: str = "",
    created: _dt.datetime | None = None,
) -> str:
    """The report page as one HTML string: plotly.js embedded once in the head, no network use."""
    from .. import __version__

    secs = [_as_section(s) for s in sections]
    created = created or _dt.datetime.now().astimezone()
    when = created.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style>",
        f'<script type="text/javascript">{get_plotlyjs()}</script>',
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if description:
        out.append(f"<p>{html.escape(description)}</p>")
    out.append(f'<p class="meta">Written {html.escape(when)} by descend {html.escape(__version__)}.</p>')
    titled = [(i, s) for i, s in enumerate(secs) if s.title]
    if len(titled) > 1:
        out.append("<nav><ol>")
        out += [f'<li><a href="#section-{i + 1}">{html.escape(s.title)}</a></li>' for i, s in titled]
        out.append("</ol></nav>")
    out.append("</header>")
    n_fig = 0
    for i, s in enumerate(secs):
        out.append(f'<section id="section-{i + 1}">')
        if s.title:
            out.append(f"<h2>{html.escape(s.title)}</h2>")
        if s.intro:
            out.append(f'<p class="intro">{html.escape(s.intro)}</p>')
        for part in s.parts:
            if isinstance(part, go.Figure):
                n_fig += 1
                # plotly.js is in the head already; deterministic ids keep reports diffable
                div = part.to_html(
                    full_html=False,
                    include_plotlyjs=False,
                    div_id=f"descend-figure-{n_fig}",
                    config=_CONFIG,
                    auto_play=False,  # open on the final state; Play replays the race
                )
                out.append(f'<div class="figure">{div}</div>')
            else:
                out.append(str(part))
        out.append("</section>")
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def write_report(
    path: str | os.PathLike[str],
    *,
    title: str,
    sections: Iterable[Section | go.Figure],
    description: str = "",
    created: _dt.datetime | None = None,
) -> Path:
    """Write the sections, in order, as one self-contained HTML page at ``path``; return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = render_report(title=title, sections=sections, description=description, created=created)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    return out


def diagnosis_section(d: Any) -> Section:
    """A :class:`~descend.Diagnosis`: the verdict table (value, threshold, meaning and the notes'
    fix, flagged rows first) and the Hessian spectrum with lambda_max and the stability limit."""
    rows = sorted(d.verdicts(), key=lambda v: v.flag is None)
    table = render_table(
        [
            {
                "": "!" if v.flag else "",
                "measurement": v.measurement,
                "value": f"{v.value:.4g}",
                "threshold": v.threshold,
                "meaning": v.meaning,
                "fix": v.fix,
            }
            for v in rows
        ]
    )
    nodes = np.asarray(d.spectrum.nodes, dtype=np.float64)
    weights = np.asarray(d.spectrum.weights, dtype=np.float64)
    keep = np.isfinite(nodes) & np.isfinite(weights)
    fig = go.Figure()
    fig.add_trace(
        go.Histogram(
            x=nodes[keep],
            y=weights[keep],
            histfunc="sum",
            nbinsx=40,
            name="eigenvalue density",
            marker={"color": "#1f77b4"},
            opacity=0.75,
        )
    )
    lam = float(d.hessian_top[0]) if len(d.hessian_top) else math.nan
    marks = []
    if math.isfinite(lam):
        marks.append((lam, f"λ_max {lam:.3g}", "#d62728", "solid"))
    if d.lr_max is not None and d.lr and math.isfinite(d.lr_max) and d.lr_max > 0 and math.isfinite(lam):
        limit = lam * d.lr_max / d.lr
        marks.append((limit, f"stability limit c/lr {limit:.3g}", "#000000", "dash"))
    for x, label, color, dash in marks:
        fig.add_vline(x=x, line={"color": color, "dash": dash}, annotation_text=_esc(label))
    fig.update_layout(
        xaxis_title="Hessian eigenvalue",
        yaxis_title="weight",
        yaxis_type="log",
        title=f"Hessian spectrum ({_esc(d.spectrum_method)})",
    )
    flags = ", ".join(sorted(d.flags)) if d.flags else "no problem found"
    intro = f"{d.subject}, {d.n_params:,} parameters, loss {d.loss:.4g}: {flags}."
    return Section("Diagnosis", [table, fig], intro=intro)
