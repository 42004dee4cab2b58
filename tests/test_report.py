"""The HTML report: structure of its plotly figures, offline self-containment, and a real render in
headless Chromium (plots drawn, no JavaScript errors, the race animation's frames playable)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

import descend as ds
from descend.lab.batching import compare_batching
from descend.lab.datasets import load
from descend.lab.lr_find import lr_find
from descend.lab.race import race
from descend.viz import report as rp

PLOTLY_BANNER = "* plotly.js v"  # first lines of the plotly.js bundle


@pytest.fixture(scope="module")
def results():
    d = load("linear", seed=0)
    X, y = d.X, d.y
    return {
        "race": race("rosenbrock", steps=60),
        "lr_find": lr_find(ds.models.LinearRegression(), (X, y), "sgd", steps=40),
        "batching": compare_batching("linear", batch_sizes=(None, 1, 32), epochs=2, evals_per_epoch=10),
        "run": ds.fit(
            ds.models.LinearRegression(),
            (X[:600], y[:600]),
            optimizer="adam",
            lr=0.05,
            batch_size=50,
            epochs=4,
            validation=(X[600:800], y[600:800]),
            progress=False,
        ),
    }


@pytest.fixture(scope="module")
def sections(results):
    return [
        rp.race_section(results["race"]),
        rp.lr_find_section(results["lr_find"]),
        rp.batching_section(results["batching"]),
        rp.training_section(results["run"]),
        rp.table_section([{"name": "<b>bold?</b>", "value": 1.0}], "Notes & <odd> title"),
        rp.text_section("<p>closing words</p>"),
    ]


@pytest.fixture(scope="module")
def report(tmp_path_factory, sections) -> Path:
    path = tmp_path_factory.mktemp("report") / "out" / "report.html"
    written = rp.write_report(
        path, title="descend demo </script><script>alert(1)</script>", sections=sections, description="a & b"
    )
    assert written == path
    return path


def _n_figures(sections) -> int:
    return sum(len(s.figures) for s in sections)


# ------------------------------------------------------------------------------ page structure


def _without_plotly_js(text: str) -> str:
    start = text.index('<script type="text/javascript">/**')
    assert text[start:].index(PLOTLY_BANNER) < 60
    return text[:start] + text[text.index("</script>", start) + len("</script>") :]


def test_report_is_self_contained_and_embeds_plotly_js_once(report, sections):
    text = report.read_text(encoding="utf-8")
    assert text.count(PLOTLY_BANNER) == 1
    assert len(text) - len(_without_plotly_js(text)) > 1_000_000  # the whole library, inline
    # nothing is fetched: no script or stylesheet by address (the bundle itself names a CDN for
    # map data that these figures never ask for, so look outside it)
    rest = _without_plotly_js(text)
    assert not re.search(r"<script[^>]+src=", text)
    assert "<link" not in rest and "@import" not in rest and "url(" not in rest
    assert "cdn." not in rest
    assert text.count("Plotly.newPlot(") == _n_figures(sections) == 6
    ids = re.findall(r'<div id="(descend-figure-\d+)"', text)
    assert ids == [f"descend-figure-{i}" for i in range(1, 7)]


def test_report_escapes_text_and_keeps_sections_in_order(report):
    text = report.read_text(encoding="utf-8")
    assert "<script>alert(1)" not in text
    assert "<title>descend demo &lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;</title>" in text
    assert "&lt;b&gt;bold?&lt;/b&gt;" in text and "<b>bold?</b>" not in text
    assert "<h2>Notes &amp; &lt;odd&gt; title</h2>" in text
    assert "<p>a &amp; b</p>" in text
    heads = re.findall(r"<h2>(.*?)</h2>", text)
    assert heads == [
        "Race on rosenbrock",
        "Learning-rate range test",
        "Batch size: full, stochastic, mini-batch",
        "Training",
        "Notes &amp; &lt;odd&gt; title",
    ]
    assert "<p>closing words</p>" in text  # trusted fragments go in as they are
    assert f"by descend {ds.__version__}" in text
    assert re.search(r"Written \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", text)


def test_user_text_inside_figures_cannot_close_the_script(tmp_path, results):
    r = results["race"]
    r.entries[0].label, old = "</script><script>alert(2)</script>", r.entries[0].label
    try:
        text = rp.render_report(title="t", sections=[rp.race_section(r)])
    finally:
        r.entries[0].label = old
    assert "alert(2)" in text and "<script>alert(2)" not in text


def test_render_table_formats_and_escapes():
    out = rp.render_table([{"a": 1.23456789, "b": None, "c": True}, {"a": float("nan"), "d": "<x>"}])
    assert re.findall(r"<th>(.*?)</th>", out) == ["a", "b", "c", "d"]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", out)
    # missing values and NaN read "-", as in the terminal's tables
    assert cells == ["1.235", "-", "yes", "-", "-", "-", "-", "&lt;x&gt;"]


def test_write_report_rejects_other_section_types(tmp_path):
    with pytest.raises(
        TypeError, match="write_report: sections must be Section objects or plotly figures, got int"
    ):
        rp.write_report(tmp_path / "r.html", title="t", sections=[3])
    assert not (tmp_path / "r.html").exists()


# --------------------------------------------------------------------------------- race figure


def _race_fig(sections) -> go.Figure:
    return sections[0].figures[0]


def test_race_figure_has_bounded_frames_slider_and_play_pause(sections, results):
    fig = _race_fig(sections)
    r = results["race"]
    frames = fig.frames
    assert 2 <= len(frames) <= rp.MAX_FRAMES
    names = [f.name for f in frames]
    assert names[0] == "0" and names[-1] == str(r.steps)
    slider = fig.layout.sliders[0]
    assert [s.args[0][0] for s in slider.steps] == names
    assert slider.active == len(frames) - 1  # opens on the final state
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label.split()[-1] for b in buttons] == ["Play", "Pause"]
    assert buttons[0].args[0] is None and list(buttons[1].args[0]) == [None]  # play all / pause
    for args in (buttons[0].args[1], slider.steps[0].args[1]):
        assert args["frame"]["redraw"] is True  # without it plotly.js drops the contour mid-animation


def test_race_frames_grow_each_path_to_its_end(sections, results):
    fig = _race_fig(sections)
    r = results["race"]
    paths = [t for t in fig.data if t.legendgroup and t.showlegend is not False]
    assert [t.name for t in paths] == [e.label for e in r.entries]
    first, last = fig.frames[0], fig.frames[-1]
    traces = list(first.traces)
    assert len(traces) == 2 * len(r.entries)  # a path and a head per optimizer
    for k, e in enumerate(r.entries):
        # frames hold float32 (they repeat every earlier part of every path); the traces, float64
        np.testing.assert_array_equal(first.data[2 * k].x, np.float32([e.path[0, 0]]))
        np.testing.assert_array_equal(last.data[2 * k].x, e.path[:, 0].astype(np.float32))
        np.testing.assert_array_equal(last.data[2 * k + 1].y, e.path[-1:, 1])
        # hover data: step and loss beside each drawn point
        trace = fig.data[traces[2 * k]]
        np.testing.assert_array_equal(np.asarray(trace.customdata)[:, 0], np.arange(r.steps + 1))
        np.testing.assert_allclose(np.asarray(trace.customdata)[:, 1], e.losses)
        assert all(s in trace.hovertemplate for s in ("step", "x =", "y =", "loss"))
        assert fig.data[traces[2 * k + 1]].legendgroup == trace.legendgroup  # legend hides both
    sizes = [len(fr.data[0].x) for fr in fig.frames]
    assert sizes == sorted(sizes) and sizes[-1] == r.steps + 1


def test_race_figure_marks_start_and_minima_on_a_log_coloured_contour(sections, results):
    fig = _race_fig(sections)
    r = results["race"]
    contour = fig.data[0]
    assert isinstance(contour, go.Contour)
    assert "log10" in contour.colorbar.title.text  # rosenbrock has log_scale
    z = np.asarray(contour.z, dtype=float)
    assert np.nanmin(z) < 0 < np.nanmax(z)  # log10 of f - f*: below and above 1
    names = [t.name for t in fig.data]
    assert "start" in names and "global minimum" in names
    start = fig.data[names.index("start")]
    assert (start.x[0], start.y[0]) == tuple(r.start)
    gm = fig.data[names.index("global minimum")]
    assert (gm.x[0], gm.y[0]) == (1.0, 1.0)


def test_long_race_stays_small(tmp_path):
    r = race("himmelblau", ["sgd", "adam"], steps=3000)
    fig = rp.interactive_race_figure(r)
    assert len(fig.frames) == rp.MAX_FRAMES
    assert all(len(t.x) <= rp.MAX_PATH_POINTS + rp.MAX_FRAMES for t in fig.data[1:])
    assert fig.frames[-1].name == "3000"
    # the last frame ends exactly at the final point (in float32), even though the path was thinned
    assert fig.frames[-1].data[0].x[-1] == np.float32(r.entries[0].path[-1, 0])
    assert fig.frames[-1].data[1].x[0] == r.entries[0].path[-1, 0]  # the head: float64


def test_race_loss_chart_uses_log_axis(sections, results):
    loss_fig = sections[0].figures[1]
    assert loss_fig.layout.yaxis.type == "log"
    assert len(loss_fig.data) == len(results["race"].entries)


def test_other_sections_log_axes_and_tables(sections, results):
    lrs = sections[1].figures[0]
    assert lrs.layout.xaxis.type == "log"
    assert sorted(t.name.split(":")[0] for t in lrs.data[2:]) == ["min", "recommended", "steep", "valley"]
    batch = sections[2].figures[0]
    assert batch.layout.yaxis.type == "log" and batch.layout.yaxis2.type == "log"
    assert batch.layout.xaxis2.type == "log"  # wall time spans orders of magnitude
    assert "<table" in sections[2].parts[1] and "mini-batch (B=32)" in sections[2].parts[1]
    training = sections[3]
    assert [t.name for t in training.figures[0].data][:3] == ["batch loss", "train loss (epoch)", "val loss"]
    assert any("val_mse" in str(p) for p in training.parts if isinstance(p, str))


# ---------------------------------------------------------------------------- headless Chromium

_RECORDER = """<script>
(function () {
  var root = document.documentElement;
  function record(message) {
    root.setAttribute("data-js-errors", (root.getAttribute("data-js-errors") || "") + message + "\\n");
  }
  window.addEventListener("error", function (e) { record("error: " + e.message); });
  window.addEventListener("unhandledrejection", function (e) {
    record("rejection: " + (e.reason && e.reason.message ? e.reason.message : e.reason));
  });
  var consoleError = console.error;
  console.error = function () {
    record("console.error: " + Array.prototype.join.call(arguments, " "));
    consoleError.apply(console, arguments);
  };
})();
</script>"""

# after load, move the race's slider to its first step, with the slider's own animate arguments,
# in the page's own plotly.js, and write down how many points each trace then holds and whether
# the surface is still drawn: proves the frames work in the real library
_FRAME_PROBE = """<script>
window.addEventListener("load", function () {
  var gd = document.getElementById("descend-figure-1");
  var step = gd.layout.sliders[0].steps[0];
  Plotly.animate(gd, step.args[0], step.args[1]).then(function () {  // as a drag of the slider
    var points = gd.calcdata.map(function (cd) { return cd.length; });
    gd.setAttribute("data-frame0-points", JSON.stringify(points));
    gd.setAttribute("data-frame0-surface", gd.querySelectorAll(".contourfill path").length);
  });
});
</script>"""


def _chromium() -> str | None:
    found = shutil.which("chromium")
    if found is None and os.access("/usr/bin/chromium", os.X_OK):
        found = "/usr/bin/chromium"
    return found


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = _chromium()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("headless Chromium is required in CI (.ci/run installs Debian's chromium): not found")
        pytest.skip("chromium not installed (apt-get install chromium); CI runs this test")
    return exe


def _render(exe: str, page: Path, profile: Path, *flags: str, budget_ms: int = 10000) -> tuple[str, str]:
    """Load ``page`` in headless Chromium; return the DOM after scripts ran, and Chromium's log.
    ``flags``: more of Chromium's switches; ``budget_ms``: the virtual time the page gets (it
    passes in a jump while nothing is pending, so a longer one costs no waiting)."""
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # no network at all: the page must work offline
        f"--user-data-dir={profile}",
        f"--virtual-time-budget={budget_ms}",
        "--enable-logging=stderr",
        "--v=0",
        *flags,
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, proc.stderr


def _instrument(text: str, *, probe: bool) -> str:
    text = text.replace("<head>", "<head>\n" + _RECORDER, 1)
    return text.replace("</body>", (_FRAME_PROBE if probe else "") + "</body>", 1)


def _js_errors(dom: str, log: str) -> list[str]:
    m = re.search(r'<html[^>]*data-js-errors="([^"]*)"', dom)
    errors = [e for e in html.unescape(m.group(1)).splitlines() if e] if m else []
    errors += [
        line for line in log.splitlines() if "Uncaught" in line or (":CONSOLE" in line and "Error" in line)
    ]
    return errors


def test_report_renders_in_headless_chromium(chromium, report, sections, results, tmp_path):
    page = report.with_name("instrumented.html")
    page.write_text(_instrument(report.read_text(encoding="utf-8"), probe=True), encoding="utf-8")
    dom, log = _render(chromium, page, tmp_path / "profile")
    assert _js_errors(dom, log) == []
    n = _n_figures(sections)
    # plotly replaces each empty div by a rendered plot: a .js-plotly-plot with its main svgs
    assert dom.count('class="plotly-graph-div js-plotly-plot"') == n
    assert dom.count('class="plot-container plotly"') == n
    assert dom.count('class="main-svg"') >= 2 * n
    assert 'class="contourfill"' in dom  # the race surface
    assert dom.count('class="slider-container"') == 1
    assert dom.count('class="updatemenu-button"') == 2  # Play, Pause
    assert dom.count('class="slider-tick-rect"') == len(_race_fig(sections).frames)
    # legend entries: one per optimizer in the race figure and in its loss chart, among others
    assert dom.count('class="legendtoggle"') >= 2 * len(results["race"].entries)
    m = re.search(r'data-frame0-points="([^"]*)"', dom)
    assert m, "the frame probe did not finish: Plotly.animate failed or never resolved"
    points = json.loads(html.unescape(m.group(1)))
    fig = _race_fig(sections)
    animated = list(fig.frames[0].traces)
    assert [points[i] for i in animated] == [1] * len(animated)  # frame 0: every path at its start
    assert points[animated[0] - 1] == 1  # the start marker stays
    m = re.search(r'data-frame0-surface="(\d+)"', dom)
    assert m and int(m.group(1)) > 0, "the contour surface vanished when the animation moved"


def test_browser_check_catches_a_broken_page(chromium, report, tmp_path):
    """The render check must be able to fail: the same page without plotly.js renders nothing and
    throws, and the check sees both."""
    stripped = _without_plotly_js(report.read_text(encoding="utf-8"))
    assert PLOTLY_BANNER not in stripped
    page = tmp_path / "broken.html"
    page.write_text(_instrument(stripped, probe=False), encoding="utf-8")
    dom, log = _render(chromium, page, tmp_path / "profile")
    errors = _js_errors(dom, log)
    assert any("Plotly is not defined" in e for e in errors), errors
    assert 'class="main-svg"' not in dom


def test_diverged_run_and_higher_dimensional_race():
    r = race("rosenbrock", ["sgd", "adam"], lrs={"sgd": 0.5, "adam": 0.05}, steps=100)
    sgd = r.entries[0]
    assert sgd.diverged and len(sgd.path) < r.steps + 1
    fig = rp.interactive_race_figure(r)
    assert fig.data[3].name.endswith("(diverged)")
    # the diverged path is cut where it leaves the view (not drawn out to 1e27), its head an x on
    # the view's edge, the hover's step the first outside; it stays so in every later frame
    (_, xhi), (_, yhi) = rp.view_box(r)
    left = int(np.flatnonzero((sgd.path[:, 0] > xhi) | (sgd.path[:, 1] > yhi))[0])
    path, head = fig.frames[-1].data[0], fig.frames[-1].data[1]
    assert len(path.x) == left + 1 and head.customdata[0][0] == left
    assert head.x[0] == xhi or head.y[0] == yhi
    assert head.marker.symbol == "x" and fig.data[4].marker.symbol == "x"
    assert fig.frames[0].data[1].marker.symbol != "x"  # it had not diverged yet
    assert len(fig.frames[-1].data[2].x) == r.steps + 1
    # an objective in 3-D has no surface to draw on: loss chart and table only
    r3 = race(ds.functions.get("rastrigin", dim=3), ["adam"], steps=20)
    section = rp.race_section(r3)
    assert len(section.figures) == 1 and section.figures[0].layout.yaxis.type == "log"
    with pytest.raises(
        ValueError, match="interactive_race_figure: needs a 2-D objective, rastrigin has dim=3"
    ):
        rp.interactive_race_figure(r3)
