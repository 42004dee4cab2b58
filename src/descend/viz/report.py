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

import base64
import datetime as _dt
import html
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
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
    Track,
    draw_indices,
    edge_color,
    entry_labels,
    entry_styles,
    envelope_indices,
    epoch_end_steps,
    frame_steps,
    in_box,
    log_worthy,
    loss_axis,
    lr_find_ylim,
    mesh,
    minima,
    path_track,
    view_box,
    z_scale,
)

__all__ = [
    "FRAME_PATH_POINTS",
    "MAX_FRAMES",
    "MAX_PATH_POINTS",
    "SWEEP_LOSS_BUCKETS",
    "SWEEP_PATH_POINTS",
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
#: most points of a path in an animation frame before the last (which draws the whole path)
FRAME_PATH_POINTS = 30
#: most points per path of a run on the learning-rate slider (a race has ~90: 9 lrs, 3 momenta)
SWEEP_PATH_POINTS = 120
#: a loss curve on the slider keeps its lowest and highest value in each of this many runs of steps
SWEEP_LOSS_BUCKETS = 80


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


def _f4(values: Any) -> dict[str, str]:
    """``values`` as a float32 typed-array spec, which plotly.js decodes: slider arguments are
    written as decimal text otherwise (plotly.py encodes only a trace's own arrays), at about
    three times the size."""
    v = _f32(values).astype("<f4")
    spec = {"dtype": "f4", "bdata": base64.b64encode(v.tobytes()).decode("ascii")}
    if v.ndim == 2:
        spec["shape"] = f"{v.shape[0]}, {v.shape[1]}"
    return spec


_F4_MAX = float(np.finfo(np.float32).max)

# hover texts name the trace through plotly, so that a slider renaming a run keeps them right
_PATH_HOVER = (
    "<b>%{fullData.name}</b><br>step %{customdata[0]}<br>x = %{x:.5g}<br>y = %{y:.5g}"
    "<br>loss = %{customdata[1]:.5g}<extra></extra>"
)
_LOSS_HOVER = "<b>%{fullData.name}</b><br>step %{x}<br>loss = %{y:.5g}<extra></extra>"
_END_HOVER = "%{fullData.name}: diverged after step %{x}<extra></extra>"


def _head_symbol(track: Track, style: dict[str, str], *, ended: bool = True) -> str:
    """The head's marker: an ``x`` once a diverged run has stopped, else the rule's own."""
    return "x" if ended and track.end == "diverged" else PLOTLY_SYMBOLS.get(style["marker"], "circle")


def _head_name(label: str, track: Track) -> str:
    return _esc(label + (f" ({track.end})" if track.end else ""))


def _loss_yaxis(kind: str, label: str, ref: np.ndarray) -> tuple[dict[str, Any], float]:
    """The loss axis as plotly takes it, and its top (where a diverged run's ``x`` sits): the
    view follows ``ref``, the runs that did not diverge (no range when there are none)."""
    log = kind == "log"
    yaxis: dict[str, Any] = {"title": {"text": _esc(label)}, "type": "log" if log else "linear"}
    top = math.inf
    if ref.size:
        lo, hi = float(ref.min()), float(ref.max())
        if log:
            lo, hi = math.log10(lo), math.log10(hi)
        pad = 0.05 * (hi - lo) if hi > lo else 0.5
        yaxis["range"] = [lo - pad, hi + pad]
        top = 10 ** (hi + pad) if log else hi + pad
    return yaxis, top


class _Slider:
    """The learning-rate slider and momentum buttons of a figure that draws a race's sweep.

    Each run on the grid is drawn by a fixed set of traces (path, head, loss, end mark, as the
    figure has them); the slider's step ``i`` restyles every such trace to its run at the ``i``-th
    lr, and a rule's momentum buttons show the traces of one row of its grid and hide the others.
    Plain plotly: the figure works the same outside the report (``fig.show()``).
    """

    def __init__(self, sweep: Any) -> None:
        self.sweep = sweep
        self.traces: list[tuple[int, str, int, int]] = []  # (trace index, kind, entry, row)
        self.values: dict[tuple[int, int, int], dict[str, Any]] = {}  # (entry, row, lr) -> per kind

    def add(self, index: int, kind: str, k: int, j: int) -> None:
        self.traces.append((index, kind, k, j))

    def steps(self, relayout: dict[int, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """The slider's steps; ``relayout[i]``: layout changes at step ``i`` (``-1``: at the others)."""
        sw = self.sweep
        relayout = relayout or {}
        idx = [t[0] for t in self.traces]
        out = []
        for i, c in enumerate(sw.factors):
            data: dict[str, list[Any]] = {a: [] for a in ("x", "y", "customdata", "name", "marker.symbol")}
            for _, kind, k, j in self.traces:
                for a, v in self.values[k, j, i][kind].items():
                    data[a].append(_f4(v) if isinstance(v, np.ndarray) else v)
            out.append(
                {
                    "label": _factor(c),
                    "method": "update",
                    "args": [data, relayout.get(i, relayout.get(-1, {})), idx],
                }
            )
        return out

    def momentum_menus(self, y: float, dy: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """One row of buttons per rule with a momentum grid, from paper height ``y`` down in steps
        of ``dy``, and the labels beside them."""
        menus, notes = [], []
        for k, e in enumerate(self.sweep.entries):
            if not e.momenta:
                continue
            mine = [t for t in self.traces if t[2] == k]
            menus.append(
                {
                    "type": "buttons",
                    "direction": "right",
                    "x": 0.16,
                    "y": y,
                    "xanchor": "left",
                    "yanchor": "top",
                    "pad": {"t": 0, "r": 4},
                    "showactive": True,
                    "active": e.momentum_index,
                    "buttons": [
                        {
                            "label": f"{mu:g}",
                            "method": "restyle",
                            "args": [{"visible": [t[3] == j for t in mine]}, [t[0] for t in mine]],
                        }
                        for j, mu in enumerate(e.momenta)
                    ],
                }
            )
            notes.append(_note(f"{e.optimizer}: momentum =", y))
            y -= dy
        return menus, notes


_LR_SUFFIX = "  (each optimizer's race lr times this)"


def _note(text: str, y: float, *, shift: int = -4) -> dict[str, Any]:
    """A label left of a control row at paper height ``y``."""
    return {
        "text": _esc(text),
        "x": 0.15,
        "y": y,
        "xref": "paper",
        "yref": "paper",
        "xanchor": "right",
        "yanchor": "top",
        "yshift": shift,
        "showarrow": False,
    }


# the Play button and the step slider replay the race's own runs: hidden at every other lr
_HIDE_STEPS = {"sliders[0].visible": False, "updatemenus[0].visible": False}


def _factor(c: float) -> str:
    """``"1/4"``, ``"1"``, ``"8"``: a power of two as a fraction; other factors as they are."""
    if c < 1 and math.isclose(1 / c, round(1 / c)):
        return f"1/{round(1 / c)}"
    return f"{c:g}"


def _f32(values: Any) -> np.ndarray:
    """float32 for drawing: non-finite values become NaN (a gap), values beyond its range its edge."""
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(v), np.clip(v, -_F4_MAX, _F4_MAX), np.nan).astype(np.float32)


def _run_drawing(
    run: Any, style: dict[str, str], ys: np.ndarray, top: float, box: Any, track: Track | None
) -> dict[str, dict[str, Any]]:
    """What a lr slider step sets on the traces of one run: path and head (with a ``box``: a
    2-D race), loss curve, end mark. ``track``: the path as already drawn (the race's own)."""
    keep = envelope_indices(ys, SWEEP_LOSS_BUCKETS)
    finite = np.flatnonzero(np.isfinite(ys))
    end_x: list[float] = []
    end_y: list[float] = []
    if run.diverged and finite.size:
        end_x, end_y = [int(finite[-1])], [min(float(ys[finite[-1]]), top)]
    name = _esc(run.label + (" (diverged)" if run.diverged else ""))
    out: dict[str, dict[str, Any]] = {
        "loss": {
            "x": _f32(keep),
            "y": _f32(ys[keep]),
            "customdata": [],
            "name": name,
            "marker.symbol": "circle",
        },
        "end": {"x": end_x, "y": end_y, "customdata": [], "name": name, "marker.symbol": "x"},
    }
    if box is not None:
        if track is None:
            track = path_track(
                run.path, run.losses, max_points=SWEEP_PATH_POINTS, box=box, diverged=run.diverged
            )
        out["path"] = {
            "x": _f32(track.xy[:, 0]),
            "y": _f32(track.xy[:, 1]),
            "customdata": _f32(np.column_stack([track.steps, track.loss])),
            "name": name,
            "marker.symbol": "circle",
        }
        out["head"] = {
            "x": [float(track.xy[-1, 0])],
            "y": [float(track.xy[-1, 1])],
            "customdata": [[int(track.steps[-1]), _plain(track.loss[-1])]],
            "name": _head_name(run.label, track),
            "marker.symbol": _head_symbol(track, style),
        }
    return out


def _plain(v: float) -> float | None:
    """A float for JSON: None for a non-finite value (JSON has no inf)."""
    return float(v) if math.isfinite(v) else None


def _sweep_axis(race: Any, sweep: Any) -> tuple[list[list[list[np.ndarray]]], str, str, np.ndarray]:
    """Every run's loss curve as drawn (``ys[k][j][i]``), the axis kind and label over all runs
    (fixed while the slider moves), and the values the view follows: the race's own runs."""
    runs = [run for e in sweep.entries for row in e.runs for run in row]
    every = loss_axis(SimpleNamespace(function=race.function, entries=runs))
    it = iter(every.ys)
    ys = [[[next(it) for _ in row] for row in e.runs] for e in sweep.entries]
    return ys, every.kind, every.label, loss_axis(race).ref


def _add_loss_traces(fig: go.Figure, slider: _Slider, styles: list, *, legend: bool, **where: Any) -> None:
    """The loss curve and diverged mark of every row of the sweep's grid (the race's own shown);
    ``legend``: the curves carry the legend (no paths to carry it)."""
    sw = slider.sweep
    for k, (se, style) in enumerate(zip(sw.entries, styles, strict=True)):
        for j in range(len(se.runs)):
            own = j == se.momentum_index
            v = slider.values[k, j, sw.lr_index]
            group = f"opt{k + 1}" if own else f"opt{k + 1}-{j}"
            fig.add_trace(
                go.Scatter(
                    x=v["loss"]["x"],
                    y=v["loss"]["y"],
                    mode="lines",
                    name=v["loss"]["name"],
                    legendgroup=group,
                    showlegend=legend,
                    visible=own,
                    line={"color": style["color"], "width": 2},
                    hovertemplate=_LOSS_HOVER,
                ),
                **where,
            )
            slider.add(len(fig.data) - 1, "loss", k, j)
            fig.add_trace(
                go.Scatter(
                    x=v["end"]["x"],
                    y=v["end"]["y"],
                    mode="markers",
                    name=v["end"]["name"],
                    legendgroup=group,
                    showlegend=False,
                    visible=own,
                    marker={"symbol": "x", "size": 12, "color": style["color"]},
                    cliponaxis=False,
                    hovertemplate=_END_HOVER,
                ),
                **where,
            )
            slider.add(len(fig.data) - 1, "end", k, j)


def _fill_values(slider: _Slider, styles: list, box: Any, ys: Any, top: float, own: dict[int, Track]) -> None:
    """Compute what every slider step sets, once per run (``own``: the race's paths as drawn)."""
    sw = slider.sweep
    for k, (se, style) in enumerate(zip(sw.entries, styles, strict=True)):
        for j, row in enumerate(se.runs):
            for i, run in enumerate(row):
                mine = own.get(k) if (i == sw.lr_index and j == se.momentum_index) else None
                slider.values[k, j, i] = _run_drawing(run, style, ys[k][j][i], top, box, mine)


def _check_sweep(owner: str, race: Any, sweep: Any) -> None:
    if sweep is None:
        return
    if sweep.race is not race:
        raise ValueError(f"{owner}: sweep was computed for another race; pass race_sweep(race) of this race")


def interactive_race_figure(
    race: Any, *, max_frames: int = MAX_FRAMES, max_points: int = MAX_PATH_POINTS, sweep: Any = None
) -> go.Figure:
    """The race on its surface, animated: each optimizer's path grows frame by frame (Play/Pause
    and a step slider), with the start and known minima marked and step, x, y and loss on hover.

    The figure opens on the final step; Play replays from step 0. Clicking a legend entry hides
    that optimizer (its path and its head together). A path that leaves the view for good (it
    ran away or diverged) ends on the view's edge, its head an ``x`` when it diverged.

    With a ``sweep`` (:func:`~descend.lab.sweep.race_sweep` of this race) the loss curves sit
    beside the surface, and a learning-rate slider (each optimizer's race lr times the sweep's
    factors) redraws every path and loss curve at once; a rule with a momentum coefficient gets a
    row of buttons, one per coefficient. Play and the step slider replay the race's own lrs: they
    show while the lr slider is at 1.
    """
    f = race.function
    if getattr(f, "dim", 2) != 2:
        raise ValueError(f"interactive_race_figure: needs a 2-D objective, {f.name} has dim={f.dim}")
    _check_sweep("interactive_race_figure", race, sweep)
    box = view_box(race)
    X, Y, Z = mesh(f, box, CONTOUR_RESOLUTION)
    scale = z_scale(f, Z)  # the PNG's colour scale; plotly has no log colour axis, so log10 heights
    H = scale.heights(Z)
    zlabel = scale.height_label
    zmin, zmax = scale.height_range
    if sweep is None:
        fig = go.Figure()
        surface: dict[str, Any] = {}
        colorbar: dict[str, Any] = {}
    else:
        fig = make_subplots(rows=1, cols=2, column_widths=[0.56, 0.44], horizontal_spacing=0.13)
        surface = {"row": 1, "col": 1}
        colorbar = {"x": 0.56 * 0.87 + 0.005, "xanchor": "left", "thickness": 14}
    fig.add_trace(
        go.Contour(
            x=X[0],
            y=Y[:, 0],
            # float32: colours need no more, and it halves the page's largest array
            z=np.where(np.isfinite(H), np.clip(H, -_F4_MAX, _F4_MAX), np.nan).astype(np.float32),
            zmin=zmin,
            zmax=zmax,
            colorscale=scale.colormap,
            opacity=0.75,
            ncontours=30,
            contours={"coloring": "fill", "showlines": True},
            line={"width": 0.5},
            colorbar={"title": {"text": _esc(zlabel), "side": "right"}, **colorbar},
            hovertemplate="x = %{x:.4g}<br>y = %{y:.4g}<br>" + _esc(zlabel) + " = %{z:.4g}<extra></extra>",
            name="surface",
            showlegend=False,
        ),
        **surface,
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
                ),
                **surface,
            )
    fig.add_trace(
        go.Scatter(
            x=[race.start[0]],
            y=[race.start[1]],
            mode="markers",
            name="start",
            marker={"symbol": "circle", "size": 12, "color": "white", "line": {"width": 2, "color": "black"}},
            hovertemplate="start<br>x = %{x:.5g}<br>y = %{y:.5g}<extra></extra>",
        ),
        **surface,
    )
    shown_steps = frame_steps(race.steps, max_frames)
    styles = entry_styles(e.optimizer for e in race.entries)
    own: dict[int, Track] = {}
    for k, e in enumerate(race.entries):
        own[k] = path_track(
            e.path, e.losses, max_points=max_points, box=box, diverged=e.diverged, also=shown_steps
        )
    slider = _Slider(sweep) if sweep is not None else None
    if slider is not None:
        ys, kind, ylabel, ref = _sweep_axis(race, sweep)
        yaxis2, top = _loss_yaxis(kind, ylabel, ref)
        _fill_values(slider, styles, box, ys, top, own)
    animated: list[int] = []
    tracks: list[Track] = []
    for k, (e, style, label) in enumerate(zip(race.entries, styles, entry_labels(race), strict=True)):
        rows = [None] if slider is None else range(len(sweep.entries[k].runs))
        for j in rows:
            is_own = slider is None or j == sweep.entries[k].momentum_index
            group = f"opt{k + 1}" if is_own else f"opt{k + 1}-{j}"
            edge = edge_color(style)  # a marker of lines only is drawn in the run's colour
            line = {"color": style["color"], "width": 2}
            head_marker = {
                "size": 12,
                "color": style["color"],
                "line": {"width": 1 if edge == "black" else 2, "color": edge},
            }
            if is_own:
                t = own[k]
                path_xy: dict[str, Any] = {
                    "x": t.xy[:, 0],
                    "y": t.xy[:, 1],
                    "customdata": np.column_stack([t.steps, t.loss]),
                    "name": _esc(label),
                }
                head: dict[str, Any] = {
                    "x": t.xy[-1:, 0],
                    "y": t.xy[-1:, 1],
                    "customdata": [[int(t.steps[-1]), _plain(t.loss[-1])]],
                    "name": _head_name(e.label, t),
                }
                symbol = _head_symbol(t, style)
            else:
                v = slider.values[k, j, sweep.lr_index]
                path_xy = {a: v["path"][a] for a in ("x", "y", "customdata", "name")}
                head = {a: v["head"][a] for a in ("x", "y", "customdata", "name")}
                symbol = v["head"]["marker.symbol"]
            fig.add_trace(
                go.Scatter(
                    **path_xy,
                    mode="lines+markers",
                    legendgroup=group,
                    visible=is_own,
                    line=line,
                    marker={"size": 4, "color": style["color"]},
                    hovertemplate=_PATH_HOVER,
                ),
                **surface,
            )
            fig.add_trace(
                go.Scatter(
                    **head,
                    mode="markers",
                    legendgroup=group,
                    showlegend=False,
                    visible=is_own,
                    marker={**head_marker, "symbol": symbol},
                    hovertemplate=_PATH_HOVER,
                ),
                **surface,
            )
            if slider is not None:
                slider.add(len(fig.data) - 2, "path", k, j)
                slider.add(len(fig.data) - 1, "head", k, j)
            if is_own:
                animated += [len(fig.data) - 2, len(fig.data) - 1]
                tracks.append(own[k])
    if slider is not None:
        _add_loss_traces(fig, slider, styles, legend=False, row=1, col=2)
    frames = _frames(tracks, styles, shown_steps, box)
    for fr in frames:
        fr["traces"] = animated
    fig.frames = frames
    # redraw: plotly.js drops the contour from the plot when frames animate without a full redraw
    # (plotly.js#4491, plotly.py#2151); a redraw of this figure takes ~0.1 s in headless Chromium
    still = {"mode": "immediate", "frame": {"duration": 0, "redraw": True}, "transition": {"duration": 0}}
    (x0, x1), (y0, y1) = box
    title = f"{f.name}: {len(race.entries)} optimizers, {race.steps} steps"
    step_slider = {
        "active": len(shown_steps) - 1,
        "x": 0.16,
        "len": 0.84,
        "y": -0.06,
        "yanchor": "top",
        "currentvalue": {"prefix": "step ", "font": {"size": 12}},
        "pad": {"t": 0, "b": 0},
        "steps": [
            {"label": str(int(s)), "method": "animate", "args": [[str(int(s))], still]} for s in shown_steps
        ],
    }
    play = {
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
    layout: dict[str, Any] = {
        "template": _TEMPLATE,
        "title": {"text": _esc(title), "x": 0.01},
        "xaxis": {"title": {"text": "x"}, "range": [x0, x1], "constrain": "domain"},
        "yaxis": {"title": {"text": "y"}, "range": [y0, y1]},
        "height": 680,
        "margin": {"l": 60, "r": 20, "t": 60, "b": 40},
        "legend": {"orientation": "h", "y": -0.32, "x": 0.0, "font": {"size": 11}},
        "hovermode": "closest",
        "updatemenus": [play],
        "sliders": [step_slider],
    }
    if slider is not None:
        _sweep_layout(layout, slider, race, yaxis2, len(shown_steps) - 1)
    fig.update_layout(**layout)
    return fig


def _sweep_layout(
    layout: dict[str, Any], slider: _Slider, race: Any, yaxis2: dict[str, Any], last: int
) -> None:
    """Add the loss panel's axes, the lr slider and the momentum buttons to a race figure's layout."""
    sw = slider.sweep
    # plot area 560 px high; the controls sit below it, one row each (paper units of the plot)
    unit = 1 / 560
    race_step = {"sliders[0].visible": True, "updatemenus[0].visible": True, "sliders[0].active": last}
    lr_slider = {
        "active": sw.lr_index,
        "x": 0.16,
        "len": 0.84,
        "y": -95 * unit,
        "yanchor": "top",
        "currentvalue": {"prefix": "lr × ", "suffix": _LR_SUFFIX, "font": {"size": 12}},
        "pad": {"t": 0, "b": 0},
        "steps": slider.steps({sw.lr_index: race_step, -1: _HIDE_STEPS}),
    }
    menus, notes = slider.momentum_menus(-185 * unit, 32 * unit)
    rows = len(menus)
    layout["xaxis2"] = {"title": {"text": "step"}, "range": [0, race.steps]}
    layout["yaxis2"] = yaxis2
    layout["sliders"] = [*layout["sliders"], lr_slider]
    layout["updatemenus"] = [*layout["updatemenus"], *menus]
    layout["annotations"] = [_note("learning rate", -95 * unit, shift=-22), *notes]
    layout["sliders"][0]["y"] = -20 * unit
    layout["updatemenus"][0]["y"] = -30 * unit
    layout["legend"]["y"] = (-190 - 32 * rows) * unit
    bottom = 200 + 32 * rows + 60
    layout["height"] = 560 + 60 + bottom
    layout["margin"] = {"l": 60, "r": 20, "t": 60, "b": bottom}


def _frames(tracks: list[Track], styles: list, shown_steps: np.ndarray, box: Any) -> list[dict[str, Any]]:
    """Animation frames: each run's path up to the frame's step, its head on the step's point.

    The frames hold every earlier part of every path again and would be most of a page's size:
    before the last frame a path is drawn by at most FRAME_PATH_POINTS of its points, ending on
    the frame's step, in float32 (with each point's step and loss for the hover, since a thinned
    prefix is not the trace's). The last frame draws the paths whole.
    """
    (xlo, xhi), (ylo, yhi) = box
    eps = 1e-3 * float(np.hypot(xhi - xlo, yhi - ylo))
    coarse = [draw_indices(t.xy, FRAME_PATH_POINTS, eps) for t in tracks]
    frames = []
    for n, s in enumerate(shown_steps):
        data: list[dict[str, Any]] = []
        final = n == len(shown_steps) - 1
        for t, keep, style in zip(tracks, coarse, styles, strict=True):
            # the point of the frame's step; a run cut at the edge or stopped by divergence stays
            # where it stopped
            head = int(np.searchsorted(t.steps, s, side="right")) - 1
            shown = np.arange(head + 1) if final else np.append(keep[keep < head], head)
            cd = np.column_stack([t.steps[shown], t.loss[shown]])
            data.append(
                {
                    "type": "scatter",
                    "x": _f32(t.xy[shown, 0]),
                    "y": _f32(t.xy[shown, 1]),
                    "customdata": _f32(cd),
                }
            )
            data.append(
                {
                    "type": "scatter",
                    "x": t.xy[head : head + 1, 0],
                    "y": t.xy[head : head + 1, 1],
                    "customdata": [[int(t.steps[head]), _plain(t.loss[head])]],
                    "marker": {"symbol": _head_symbol(t, style, ended=head == len(t.steps) - 1)},
                }
            )
        # plain dicts: validated once on assignment (go.Frame objects would be validated twice, ~3x slower)
        frames.append({"data": data, "name": str(int(s))})
    return frames


def _race_loss_figure(race: Any, sweep: Any = None) -> go.Figure:
    """Loss (minus the known minimum value, when there is one) against step, on the log axis of
    :func:`descend.viz.race.plot_loss` (linear where that one is symmetric-log: plotly has none).

    A diverged run is drawn up to its last finite loss and ends in an ``x`` (on the top edge
    when it is beyond the view); the view follows the runs that did not diverge. With a
    ``sweep``, a learning-rate slider and momentum buttons redraw the curves (as in
    :func:`interactive_race_figure`), each thinned to its band of lowest and highest values.
    """
    _check_sweep("race loss figure", race, sweep)
    fmin = getattr(race.function, "minimum_value", None)
    fig = go.Figure()
    styles = entry_styles(e.optimizer for e in race.entries)
    layout: dict[str, Any] = {}
    if sweep is None:
        axis = loss_axis(race)
        yaxis, top = _loss_yaxis(axis.kind, axis.label, axis.ref)
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
        if axis.ref.size:
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
    else:
        slider = _Slider(sweep)
        ys, kind, ylabel, ref = _sweep_axis(race, sweep)
        yaxis, top = _loss_yaxis(kind, ylabel, ref)
        _fill_values(slider, styles, None, ys, top, {})
        _add_loss_traces(fig, slider, styles, legend=True)
        unit = 1 / 300  # the plot area's height in px
        menus, notes = slider.momentum_menus(-150 * unit, 32 * unit)
        layout = {
            "sliders": [
                {
                    "active": sweep.lr_index,
                    "x": 0.16,
                    "len": 0.84,
                    "y": -60 * unit,
                    "yanchor": "top",
                    "currentvalue": {"prefix": "lr × ", "suffix": _LR_SUFFIX, "font": {"size": 12}},
                    "pad": {"t": 0, "b": 0},
                    "steps": slider.steps(),
                }
            ],
            "updatemenus": menus,
            "annotations": [_note("learning rate", -60 * unit, shift=-22), *notes],
            "legend": {"orientation": "h", "y": (-160 - 32 * len(menus)) * unit, "x": 0.0},
            "height": 300 + 50 + 190 + 32 * len(menus) + 40,
            "margin": {"l": 60, "r": 20, "t": 50, "b": 190 + 32 * len(menus) + 40},
        }
    fig.update_layout(
        template=_TEMPLATE,
        title={"text": "loss − f* against step" if fmin is not None else "loss against step", "x": 0.01},
        xaxis={"title": {"text": "step"}, "range": [0, race.steps]},
        yaxis=yaxis,
        height=420,
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
    )
    if layout:
        fig.update_layout(**layout)
    return fig


def race_section(race: Any, sweep: Any = None) -> Section:
    """The race: animated paths on the surface (2-D objectives), loss against step, results table.

    With a ``sweep`` (:func:`~descend.lab.sweep.race_sweep`), the loss curves sit beside the
    paths in one figure, and a learning-rate slider and momentum buttons redraw both.
    """
    f = race.function
    desc = str(getattr(f, "description", "") or "").strip()
    intro = (
        f"{f.name}: {desc}{'' if desc.endswith('.') else '.'} Start {np.round(race.start, 4).tolist()}, "
        f"{race.steps} steps, lr: {race.lr_rule}, gradient: {race.grad_method}"
        + (f", gradient noise σ={race.noise:g}" if race.noise else "")
        + "."
    )
    if sweep is not None:
        factors = ", ".join(_factor(c) for c in sweep.factors)
        intro += (
            f" The learning-rate slider re-runs each optimizer at its lr times {factors} (same start, "
            "steps, noise and seed); Play and the step slider replay the race itself (at 1)."
        )
        if any(e.momenta for e in sweep.entries):
            intro += " Buttons set the momentum coefficient of the rules that have one."
    parts: list[go.Figure | str] = []
    if getattr(f, "dim", 2) == 2:
        parts.append(interactive_race_figure(race, sweep=sweep))
        if sweep is None:
            parts.append(_race_loss_figure(race))
    else:
        parts.append(_race_loss_figure(race, sweep))
    parts.append(render_table(race.table()))
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
