"""Matplotlib drawings of races and schedules: what is drawn, image files, GIF frames, MP4 hand-off."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from matplotlib.colors import LogNorm, to_hex
from matplotlib.figure import Figure
from PIL import Image

import descend as ds
from descend.lab.race import race
from descend.schedules import Constant, Cosine, StepDecay, Warmup
from descend.viz import (
    optimizer_style,
    plot_contour,
    plot_loss,
    plot_schedules,
    plot_surface,
    race_animation,
    race_figure,
    race_mp4,
    save_race_pngs,
    save_schedule_png,
)
from descend.viz._style import entry_styles, new_figure
from descend.viz.race import _clip_path

RES = 40  # grid resolution: small keeps the file fast, the drawing logic is the same


@pytest.fixture(scope="module")
def races():
    return {
        "rosenbrock": race("rosenbrock", steps=60),
        "saddle": race("saddle", steps=40),
        "diverged": race("rosenbrock", ["sgd", "adam"], lrs={"sgd": 1.0, "adam": 0.05}, steps=40),
        "custom": race("x**2 + 3*y**2", start=(1, 1), steps=50),
        "noisy": race("himmelblau", ["sgd", "momentum", "adam"], noise=2.0, steps=40),
        "two_well": race("two_well", ["sgd", "momentum"], lrs=0.05, steps=40),
    }


ALL = ["rosenbrock", "saddle", "diverged", "custom", "noisy", "two_well"]


def _labels(r):
    return [e.label + (" (diverged)" if e.diverged else "") for e in r.entries]


def _in_domain(f, p):
    (xlo, xhi), (ylo, yhi) = f.domain
    return xlo <= p[0] <= xhi and ylo <= p[1] <= yhi


# -- colours ------------------------------------------------------------------------------------------
def test_every_optimizer_has_its_own_fixed_colour_and_marker():
    from matplotlib.markers import MarkerStyle

    styles = {name: optimizer_style(name) for name in ds.optim.names()}
    assert len({to_hex(s["color"]) for s in styles.values()}) == len(styles)
    for name, style in styles.items():
        entry = ds.optim.rule(name)
        assert style == {"color": entry.color, "marker": entry.marker}
        MarkerStyle(style["marker"])  # a marker matplotlib draws
    assert optimizer_style("ADAM") == optimizer_style("adam") == {"color": "#ff7f0e", "marker": "P"}
    # a name outside the registry has no style to fall back on
    with pytest.raises(ValueError, match="unknown optimizer 'my_rule'"):
        optimizer_style("my_rule")
    # the same optimizer twice in one drawing: the second one gets a free colour
    styles = entry_styles(["adam", "adam", "sgd"])
    assert styles[0]["color"] == ds.optim.rule("adam").color
    assert len({s["color"] for s in styles}) == 3


def test_the_same_optimizer_has_the_same_colour_in_every_drawing(races):
    r = races["rosenbrock"]
    drawings = [plot_contour(r, resolution=RES), plot_surface(r, resolution=8), plot_loss(r)]
    for d in drawings:
        got = [to_hex(line.get_color()) for line in d.paths]
        assert got == [ds.optim.rule(e.optimizer).color for e in r.entries]


# -- contour ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
def test_contour_draws_every_path_start_end_and_legend(races, name):
    r = races[name]
    d = plot_contour(r, resolution=RES)
    n = len(r.entries)
    assert len(d.paths) == len(d.ends) == n
    assert d.legend is not None
    assert [t.get_text() for t in d.legend.get_texts()][:n] == _labels(r)
    np.testing.assert_array_equal(d.start.get_xydata()[0], r.start)
    for line, end, e in zip(d.paths, d.ends, r.entries, strict=True):
        drawn = line.get_xydata()
        np.testing.assert_array_equal(end.get_xydata()[0], drawn[-1])
        np.testing.assert_allclose(drawn[:-1], e.path[: len(drawn) - 1])  # a prefix of the path,
        if len(drawn) < len(e.path):  # then the cut where it runs a domain width past the view
            assert not e.diverged or name == "diverged"
            (xlo, xhi), (ylo, yhi) = r.function.domain
            x, y = drawn[-1]
            on_edge = np.isclose([x, x, y, y], [2 * xlo - xhi, 2 * xhi - xlo, 2 * ylo - yhi, 2 * yhi - ylo])
            assert on_edge.any()
        else:
            np.testing.assert_allclose(drawn, e.path)
    assert d.ax.get_xlim() == pytest.approx(r.function.domain[0])
    assert d.ax.get_ylim() == pytest.approx(r.function.domain[1])
    assert d.ax.figure.get_axes()[-1] is d.colorbar.ax
    assert r.function.name in d.ax.get_title()


def test_contour_marks_global_and_local_minima(races):
    r = races["two_well"]
    d = plot_contour(r, resolution=RES)
    glob, local = d.minima
    np.testing.assert_allclose(glob.get_xydata(), np.stack(r.function.global_minima))
    assert len(local.get_xydata()) == len(r.function.minima) - len(r.function.global_minima) == 1
    assert glob.get_markerfacecolor() != local.get_markerfacecolor()
    assert glob.get_marker() == local.get_marker() == "*"
    assert {"global minimum", "local minimum"} <= {t.get_text() for t in d.legend.get_texts()}


def test_functions_without_known_minima_draw_no_stars(races):
    for name in ("saddle", "custom"):
        d = plot_contour(races[name], resolution=RES)
        assert d.minima == []
        assert "global minimum" not in [t.get_text() for t in d.legend.get_texts()]


def test_colour_scale_is_log_linear_or_symmetric_as_the_function_needs(races):
    rosen = plot_contour(races["rosenbrock"], resolution=RES).background
    assert isinstance(rosen.norm, LogNorm)
    assert rosen.levels[0] > 0
    saddle = plot_contour(races["saddle"], resolution=RES).background
    assert not isinstance(saddle.norm, LogNorm)
    assert saddle.norm.vmin == pytest.approx(-saddle.norm.vmax)
    custom = plot_contour(races["custom"], resolution=RES).background
    assert not isinstance(custom.norm, LogNorm)
    assert custom.norm.vmin == pytest.approx(0.0, abs=0.05)  # min of x^2 + 3y^2 on the grid


def test_a_diverged_path_leaves_the_view_without_moving_the_limits(races):
    r = races["diverged"]
    sgd = r.entries[0]
    assert sgd.diverged and np.abs(sgd.path).max() > 1e6
    d = plot_contour(r, resolution=RES)
    assert d.ax.get_xlim() == pytest.approx(r.function.domain[0])
    assert d.ax.get_ylim() == pytest.approx(r.function.domain[1])
    drawn = d.paths[0].get_xydata()
    assert np.isfinite(drawn).all() and np.abs(drawn).max() <= 10.0  # cut at 1 domain width out
    assert not _in_domain(r.function, drawn[-1])
    assert d.legend.get_texts()[0].get_text().endswith("(diverged)")
    Figure.savefig(d.ax.figure, io.BytesIO(), format="png")  # the renderer copes with it too


def test_clip_path_cuts_the_leaving_segment_at_the_widened_box():
    box = ((-1.0, 1.0), (-1.0, 1.0))
    inside = np.array([[0.0, 0.0], [0.5, -0.5], [2.5, 0.0]])
    np.testing.assert_array_equal(_clip_path(inside, box), inside)
    away = np.array([[0.0, 0.0], [1.0, 0.0], [1e30, 0.0], [np.inf, np.nan]])
    np.testing.assert_allclose(_clip_path(away, box), [[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
    diagonal = np.array([[0.0, 0.0], [6.0, 12.0]])  # leaves through y = 3 first, at x = 1.5
    np.testing.assert_allclose(_clip_path(diagonal, box)[-1], [1.5, 3.0])
    np.testing.assert_allclose(_clip_path(np.array([[0.0, 0.0], [np.nan, 1.0]]), box), [[0.0, 0.0]])


def test_contour_draws_into_a_given_axes_without_legend_or_colorbar(races):
    fig = new_figure((400, 300))
    ax = fig.add_subplot()
    d = plot_contour(races["custom"], ax, resolution=RES, legend=False, colorbar=False, title="mine")
    assert d.ax is ax and d.legend is None and d.colorbar is None
    assert ax.get_title() == "mine"
    assert fig.get_axes() == [ax]


# -- surface --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["rosenbrock", "saddle", "diverged", "custom"])
def test_surface_lifts_every_path_onto_the_surface(races, name):
    r = races[name]
    d = plot_surface(r, resolution=10)
    assert d.ax.name == "3d"
    assert len(d.paths) == len(d.ends) == len(r.entries)
    assert [t.get_text() for t in d.legend.get_texts()][: len(r.entries)] == _labels(r)
    f = r.function
    for line, e in zip(d.paths, r.entries, strict=True):
        x, y, z = line.get_data_3d()
        assert len(x) >= 1 and np.isfinite(z).all()
        assert all(_in_domain(f, p) for p in zip(x, y, strict=True))
        if not e.diverged:
            np.testing.assert_allclose(x[0], e.path[0, 0])
    # heights follow f: the start is higher than where a converging run ends
    adam = [line for line, e in zip(d.paths, r.entries, strict=True) if e.optimizer == "adam"]
    if adam and name in ("rosenbrock", "custom"):
        z = adam[0].get_data_3d()[2]
        assert z[-1] < z[0]


def test_surface_refuses_a_2d_axes(races):
    ax = new_figure((300, 300)).add_subplot()
    with pytest.raises(ValueError, match="3-D Axes"):
        plot_surface(races["custom"], ax)


# -- loss -----------------------------------------------------------------------------------------------
def test_loss_is_gap_to_the_minimum_on_a_log_axis(races):
    r = races["rosenbrock"]
    d = plot_loss(r)
    assert d.ax.get_yscale() == "log"
    assert len(d.paths) == len(r.entries) and d.diverged == []
    for line, e in zip(d.paths, r.entries, strict=True):
        np.testing.assert_allclose(line.get_ydata(), np.maximum(e.losses - r.function.minimum_value, 1e-16))
    assert [t.get_text() for t in d.legend.get_texts()] == _labels(r)


def test_loss_of_unbounded_and_unknown_functions(races):
    assert plot_loss(races["saddle"]).ax.get_yscale() == "symlog"  # losses go below 0
    d = plot_loss(races["custom"])  # no known minimum, positive losses
    assert d.ax.get_yscale() == "log"
    np.testing.assert_allclose(d.paths[0].get_ydata(), races["custom"].entries[0].losses)


def test_loss_marks_a_diverged_run_and_keeps_the_limits_on_the_others(races):
    r = races["diverged"]
    d = plot_loss(r)
    assert len(d.diverged) == 1
    assert to_hex(d.diverged[0].get_color()) == ds.optim.rule("sgd").color
    hi = d.ax.get_ylim()[1]
    assert hi < 1e4 < r.entries[0].losses.max()
    assert d.diverged[0].get_ydata()[0] <= hi
    assert d.ax.get_xlim() == (0, r.steps)


# -- figures and files ------------------------------------------------------------------------------------
def _check_png(path, size):
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size == size
        lo_hi = im.convert("L").getextrema()
        assert lo_hi[0] < lo_hi[1]  # not a blank image


@pytest.mark.parametrize("size", [(320, 240), (333, 251)])
def test_pngs_have_exactly_the_stated_size(races, tmp_path, size):
    written = save_race_pngs(races["rosenbrock"], tmp_path / "out", size=size, dpi=80, resolution=RES)
    assert sorted(written) == ["contour", "loss", "surface"]
    assert {p.name for p in written.values()} == {"race_contour.png", "race_surface.png", "race_loss.png"}
    for p in written.values():
        _check_png(p, size)


@pytest.mark.parametrize("name", ["saddle", "diverged", "custom", "noisy"])
def test_pngs_for_every_kind_of_race(races, tmp_path, name):
    for p in save_race_pngs(races[name], tmp_path, size=(300, 240), resolution=RES).values():
        _check_png(p, (300, 240))


def test_race_figure_puts_contour_and_loss_side_by_side(races):
    fig = race_figure(races["noisy"], size=(900, 400), resolution=RES)
    assert isinstance(fig, Figure)
    assert fig.canvas.get_width_height() == (900, 400)
    assert len(fig.legends) == 1
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts[:3] == _labels(races["noisy"])
    fig3 = race_figure(races["noisy"], surface=True, size=(1200, 400), resolution=RES)
    assert [ax.name for ax in fig3.axes].count("3d") == 1
    buf = io.BytesIO()
    fig3.savefig(buf, format="png")
    assert Image.open(buf).size == (1200, 400)


def test_bad_sizes_are_refused(races, tmp_path):
    with pytest.raises(TypeError, match="size"):
        save_race_pngs(races["custom"], tmp_path, size=800)
    with pytest.raises(ValueError, match=r"size\[1\] must satisfy"):
        save_race_pngs(races["custom"], tmp_path, size=(800, 10))
    with pytest.raises(ValueError, match="frames"):
        race_animation(races["custom"], tmp_path / "a.gif", frames=0)


# -- animation -------------------------------------------------------------------------------------------
def test_gif_has_the_frames_and_size_asked_for_and_moves(races, tmp_path):
    out = race_animation(
        races["rosenbrock"], tmp_path / "race.gif", frames=8, size=(320, 240), resolution=RES
    )
    with Image.open(out) as im:
        assert im.format == "GIF"
        assert im.n_frames == 8
        assert im.size == (320, 240)
        first = np.asarray(im.convert("RGB"))
        im.seek(im.n_frames - 1)
        last = np.asarray(im.convert("RGB"))
    assert (first != last).any(axis=2).mean() > 0.001  # the paths grew


def test_gif_of_a_short_run_has_one_frame_per_step(races, tmp_path):
    r = race("sphere", ["adam"], steps=4)
    out = race_animation(r, tmp_path / "short.gif", frames=30, size=(200, 160), resolution=RES)
    with Image.open(out) as im:
        assert im.n_frames == 5
    # a diverged run is shorter than the others: the GIF still spans the whole race
    out = race_animation(races["diverged"], tmp_path / "d.gif", frames=5, size=(200, 160), resolution=RES)
    with Image.open(out) as im:
        assert im.n_frames == 5


def test_mp4_without_ffmpeg_says_how_to_get_it(races, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="MP4 needs ffmpeg on PATH") as info:
        race_mp4(races["custom"], tmp_path / "race.mp4")
    # it speaks to command-line users too: no Python function to call, and the GIF still comes
    assert "apt install ffmpeg" in str(info.value) and "GIF" in str(info.value)
    assert "()" not in str(info.value)
    assert not (tmp_path / "race.mp4").exists()


def _fake_ffmpeg(tmp_path, exit_status=0):
    """A stand-in for ffmpeg that records the size of its input and the frame size it was told."""
    script = tmp_path / "ffmpeg"
    script.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(
            f"""
            import sys
            data = sys.stdin.buffer.read()
            args = sys.argv[1:]
            with open(args[-1], "w") as out:
                out.write(f"{{len(data)}} {{args[args.index('-s') + 1]}}")
            sys.stderr.write("fake ffmpeg says no")
            sys.exit({exit_status})
            """
        )
    )
    script.chmod(0o755)
    return str(script)


def test_mp4_streams_raw_frames_to_ffmpeg(races, tmp_path, monkeypatch):
    fake = _fake_ffmpeg(tmp_path)
    monkeypatch.setattr(shutil, "which", lambda name: fake)
    out = race_mp4(races["custom"], tmp_path / "race.mp4", frames=6, fps=10, hold=0.5, size=(200, 160))
    n_bytes, frame_size = out.read_text().split()
    assert frame_size == "200x160"
    assert int(n_bytes) == (6 + 5) * 200 * 160 * 3  # frames plus the held last one, rgb24


def test_mp4_reports_an_ffmpeg_failure(races, tmp_path, monkeypatch):
    fake = _fake_ffmpeg(tmp_path, exit_status=1)
    monkeypatch.setattr(shutil, "which", lambda name: fake)
    with pytest.raises(RuntimeError, match=r"ffmpeg failed with exit status 1.*fake ffmpeg says no"):
        race_mp4(races["custom"], tmp_path / "race.mp4", frames=2, size=(200, 160))


# -- schedules --------------------------------------------------------------------------------------------
def test_plot_schedules_draws_one_line_per_schedule():
    cos, warm = Cosine(0.1, 50), Warmup(Cosine(0.1, 40), 10)
    ax = plot_schedules(cos, 50)
    assert len(ax.lines) == 1
    np.testing.assert_allclose(ax.lines[0].get_ydata(), cos.values(50))
    ax = plot_schedules([cos, warm, lambda k: 0.05], 50, labels=["cosine", "warm-up", "flat"])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["cosine", "warm-up", "flat"]
    np.testing.assert_allclose(ax.lines[1].get_ydata(), warm.values(50))
    np.testing.assert_allclose(ax.lines[2].get_ydata(), np.full(50, 0.05))
    assert len({line.get_color() for line in ax.lines}) == 3
    assert ax.get_legend().get_texts()[0].get_text() == "cosine"
    assert (
        plot_schedules(StepDecay(1.0, 5), 20).get_legend().get_texts()[0].get_text().startswith("StepDecay(")
    )


def test_plot_schedules_on_a_log_axis_leaves_out_zero_rates():
    ax = plot_schedules([Cosine(1.0, 20), Warmup(1.0, 5)], 30, log=True)  # both reach/start at 0
    assert ax.get_yscale() == "log"
    y = ax.lines[0].get_ydata()
    assert np.isnan(y[-1]) and y[0] == 1.0  # cosine is exactly 0 after its 20 steps
    assert np.isnan(ax.lines[1].get_ydata()[0])  # warm-up from 0
    with pytest.raises(ValueError, match="positive"):
        plot_schedules(Constant(0.0), 10, log=True)
    with pytest.raises(ValueError, match="labels"):
        plot_schedules([Cosine(1.0, 30)], 30, labels=["a", "b"])
    with pytest.raises(TypeError, match="schedules"):
        plot_schedules([], 30)


def test_schedule_png_has_the_stated_size(tmp_path):
    out = save_schedule_png(
        [Cosine(0.1, 100), StepDecay(0.1, 30, 0.5)], 100, tmp_path / "s.png", size=(410, 290)
    )
    _check_png(out, (410, 290))


# -- lazy import ----------------------------------------------------------------------------------------
def test_matplotlib_is_imported_only_when_a_drawing_is_asked_for():
    code = (
        "import sys, descend, descend.lab.race, descend.viz\n"
        "assert 'matplotlib' not in sys.modules, 'too early'\n"
        "descend.viz.plot_contour\n"
        "assert 'matplotlib' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_start_outside_the_domain_widens_the_view_to_show_it():
    r = race("x**2 + 3*y**2", ["adam"], start=(5.0, -4.0), steps=20)
    d = plot_contour(r, resolution=RES)
    (xlo, xhi), (ylo, yhi) = d.ax.get_xlim(), d.ax.get_ylim()
    assert xlo <= -3.0 and xhi > 5.0 and ylo < -4.0 and yhi >= 3.0
    np.testing.assert_allclose(d.paths[0].get_xydata(), r.entries[0].path)
