"""One set of drawing rules for both backends: the plotly report and the matplotlib pictures of a race
draw the same box, colour scale, loss axis, frames and palette, and the report needs no matplotlib."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
from matplotlib.colors import LogNorm, to_hex

import descend as ds
from descend.lab.race import race
from descend.viz import _shared, lab_plots, report
from descend.viz import race as race_plots
from descend.viz._style import new_figure

SRC = str(Path(ds.__file__).resolve().parents[1])
RES = 30  # grid points per axis: small keeps the file fast, the rules are the same


@pytest.fixture(scope="module")
def races():
    return {
        "log": race("rosenbrock", ["sgd", "momentum", "adam"], steps=40),
        "symmetric": race("saddle", ["sgd", "adam"], steps=30),
        "linear": race("x**2 + 3*y**2", ["sgd", "adagrad"], start=(1, 1), steps=30),
        # every run diverged at step 3 of 40: the frames must still span the race
        "all_diverged": race("rosenbrock", ["sgd"], lrs={"sgd": 1.0}, steps=40),
        # the loss reaches f* exactly: f - f* is 0 from step 1 on
        "exact": race("sphere", ["sgd"], lrs=1.0, steps=5),
        # the start outside the domain widens the view
        "outside": race("himmelblau", ["adam"], start=(7.0, 1.0), steps=20),
    }


def run_python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, check=False
    )


def test_the_report_and_the_palette_load_no_matplotlib(tmp_path):
    out = tmp_path / "report.html"
    code = f"""
        import sys
        import descend.viz.report as rp
        assert "matplotlib" not in sys.modules, "import descend.viz.report loaded matplotlib"
        import descend.viz as viz
        assert viz.optimizer_style("adam")["color"]
        from descend.lab.race import race
        r = race("rosenbrock", ["sgd", "adam"], steps=20)
        rp.write_report({str(out)!r}, title="t", sections=[rp.race_section(r)])
        assert "matplotlib" not in sys.modules, "writing a report loaded matplotlib"
        print("ok")
    """
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    text = out.read_text(encoding="utf-8")
    assert "Race on rosenbrock" in text and 'id="descend-figure-1"' in text


def test_both_backends_use_the_shared_rules_not_copies():
    assert race_plots.entry_styles is _shared.entry_styles is report.entry_styles
    assert race_plots._style.entry_styles is _shared.entry_styles
    assert lab_plots.log_worthy is _shared.log_worthy is report.log_worthy
    assert lab_plots.epoch_end_steps is _shared.epoch_end_steps is report.epoch_end_steps
    assert lab_plots.SUGGESTION_STYLE is _shared.SUGGESTION_STYLE
    assert race_plots.frame_steps is report.frame_steps is _shared.frame_steps
    assert race_plots.mesh is report.mesh and race_plots.z_scale is report.z_scale


@pytest.mark.parametrize(
    ("kind", "scale"), [("log", "log"), ("symmetric", "symmetric"), ("linear", "linear"), ("outside", "log")]
)
def test_report_and_png_colour_the_same_box_on_the_same_scale(races, kind, scale):
    r = races[kind]
    drawn = race_plots.plot_contour(r)  # the default grid: the report's
    fig = report.interactive_race_figure(r)
    contour = fig.data[0]
    norm = drawn.background.norm
    # the same box: the PNG's axes limits are the report's axis ranges and its grid's edges
    assert drawn.ax.get_xlim() == tuple(fig.layout.xaxis.range) == (contour.x[0], contour.x[-1])
    assert drawn.ax.get_ylim() == tuple(fig.layout.yaxis.range) == (contour.y[0], contour.y[-1])
    assert len(contour.x) == len(contour.y) == _shared.CONTOUR_RESOLUTION
    if kind == "outside":
        xhi = r.function.domain[0][1]
        assert contour.x[-1] > 7.0 > xhi  # the start is in view in both pictures
    # the same scale kind and range (the report's colours are log10 of the PNG's on a log scale)
    log = isinstance(norm, LogNorm)
    assert log == (scale == "log")
    assert contour.colorbar.title.text.startswith("log10") == log
    zmin, zmax = (10**contour.zmin, 10**contour.zmax) if log else (contour.zmin, contour.zmax)
    np.testing.assert_allclose([zmin, zmax], [norm.vmin, norm.vmax], rtol=1e-12)
    if scale == "symmetric":
        assert contour.zmin == -contour.zmax and norm.vmin == -norm.vmax
    # the same colour map: diverging about 0 on a symmetric scale, viridis otherwise
    name = "RdBu_r" if scale == "symmetric" else "viridis"
    assert drawn.background.cmap.name == f"{name}_light"
    assert contour.colorscale == go.Contour(colorscale=name).colorscale


def test_scale_rule_is_one_function_of_the_mesh(races):
    r = races["log"]
    *_, Z = _shared.mesh(r.function, _shared.view_box(r), RES)
    scale = _shared.z_scale(r.function, Z)
    assert scale.kind == "log" and scale.fmin == r.function.minimum_value
    assert scale.vmin == pytest.approx(scale.vmax * 1e-6, rel=1e-5)  # six decades under the top
    np.testing.assert_allclose(scale.heights(Z), np.log10(np.maximum(Z - scale.fmin, 0) + scale.offset))
    # no known f*: no log scale, even where the function asks for one (a grid minimum is no floor)
    unknown = type("F", (), {"name": "g", "log_scale": True, "minimum_value": None})()
    assert _shared.z_scale(unknown, Z).kind == "linear"


@pytest.mark.parametrize("kind", ["log", "symmetric", "linear", "all_diverged", "exact"])
def test_report_and_png_draw_the_same_loss_axis(races, kind):
    r = races[kind]
    drawn = race_plots.plot_loss(r)
    fig = report._race_loss_figure(r)
    png_scale = drawn.ax.get_yscale()
    # plotly has no symmetric-log axis: the report draws that one linear
    assert fig.layout.yaxis.type == {"log": "log", "symlog": "linear"}[png_scale]
    if kind == "exact":
        assert png_scale == "log"  # f - f* = 0 is floored onto the log axis in both pictures
    curves = [t for t in fig.data if t.mode == "lines"]
    for line, trace in zip(drawn.paths, curves, strict=True):
        np.testing.assert_array_equal(np.asarray(trace.y, dtype=float), line.get_ydata())
    marks = [t for t in fig.data if t.mode == "markers"]
    assert len(marks) == len(drawn.diverged) == sum(e.diverged for e in r.entries)
    for mark, trace in zip(drawn.diverged, marks, strict=True):
        assert mark.get_xdata()[0] == trace.x[0]


@pytest.mark.parametrize(("kind", "frames"), [("log", 7), ("all_diverged", 5), ("log", 1), ("exact", 30)])
def test_gif_and_report_show_the_same_frame_steps(races, kind, frames, tmp_path, monkeypatch):
    r = races[kind]
    shown: list[int] = []
    render = race_plots._Animator.render

    def recording(self, k):
        shown.append(int(k))
        return render(self, k)

    monkeypatch.setattr(race_plots._Animator, "render", recording)
    race_plots.race_animation(r, tmp_path / "a.gif", frames=frames, size=(160, 120), resolution=12)
    gif_steps = shown[1:]  # the first render is the last frame, to fit the GIF's palette
    fig = report.interactive_race_figure(r, max_frames=frames)
    report_steps = [int(f.name) for f in fig.frames]
    assert gif_steps == report_steps == _shared.frame_steps(r.steps, frames).tolist()
    assert report_steps[-1] == r.steps  # every animation ends on the whole race
    if frames > 1:
        assert report_steps[0] == 0


def test_frame_steps_edge_cases():
    assert _shared.frame_steps(40, 1).tolist() == [40]  # one frame shows the whole run
    assert _shared.frame_steps(3, 30).tolist() == [0, 1, 2, 3]  # a short run: one frame per step
    assert _shared.frame_steps(0, 10).tolist() == [0]
    steps = _shared.frame_steps(3000, 60)
    assert len(steps) == 60 and steps[0] == 0 and steps[-1] == 3000


def test_report_and_png_use_the_same_palette(races):
    r = races["log"]
    drawn = race_plots.plot_contour(r, resolution=RES)
    fig = report.interactive_race_figure(r)
    paths = [t for t in fig.data if t.legendgroup and t.showlegend is not False]
    heads = [t for t in fig.data if t.legendgroup and t.showlegend is False]
    assert [t.name for t in paths] == drawn.labels[: len(r.entries)]
    for line, end, path, head in zip(drawn.paths, drawn.ends, paths, heads, strict=True):
        assert to_hex(line.get_color()) == path.line.color == head.marker.color
        assert _shared.PLOTLY_SYMBOLS[end.get_marker()] == head.marker.symbol
        assert to_hex(end.get_markeredgecolor()) == to_hex(head.marker.line.color)


def test_every_registry_marker_has_a_plotly_symbol_and_a_visible_edge():
    for name in ds.optim.names():
        style = _shared.optimizer_style(name)
        assert style["marker"] in _shared.PLOTLY_SYMBOLS, (name, style["marker"])
        if style["marker"] in _shared.LINE_MARKERS:
            assert _shared.edge_color(style) == style["color"]  # a black "x" would hide the run
        else:
            assert _shared.edge_color(style) == "black"
    assert {"+", "x", "1"} <= _shared.LINE_MARKERS and "o" not in _shared.LINE_MARKERS


def test_lr_find_view_and_series_colours_are_shared():
    sm = np.array([2.0, 1.5, 1.0, 0.5, 40.0, np.inf])
    bottom, top = _shared.lr_find_ylim(sm)
    assert bottom < 0.5 < 2.0 < top < 40.0  # the blow-up is left out of the view
    assert _shared.lr_find_ylim([np.nan]) is None

    class Result:
        lrs = np.geomspace(1e-4, 1.0, 6)
        losses = sm
        smoothed = sm
        reason = "diverged"
        lr = 1e-2
        config = None
        advice = ""

        def marks(self):
            return {"recommended": 1e-2, "valley": 3e-3}

    drawn = lab_plots.plot_lr_find(Result(), new_figure((400, 300)).add_subplot())
    assert drawn.ax.get_ylim() == pytest.approx((bottom, top))
    section = report.lr_find_section(Result())
    assert tuple(section.figures[0].layout.yaxis.range) == pytest.approx((bottom, top))
    for name, line in drawn.markers.items():
        trace = next(t for t in section.figures[0].data if t.name.startswith(name))
        assert to_hex(line.get_color()) == to_hex(trace.line.color)
        assert _shared.PLOTLY_DASHES[line.get_linestyle()] == trace.line.dash
