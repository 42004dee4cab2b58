"""The race's learning-rate slider: the sweep's runs (descend.lab.sweep), the figure that draws
them (the slider's steps and their data, the momentum buttons), the page's size, and the slider
working in headless Chromium."""

from __future__ import annotations

import base64
import html
import json
import re

import numpy as np
import pytest
from test_report import _instrument, _js_errors, _render, chromium  # noqa: F401 (a fixture)

import descend as ds
from descend.lab.race import CLASSIC_SIX, race
from descend.lab.reload import load_run
from descend.lab.sweep import LR_FACTORS, MOMENTA, race_sweep
from descend.optim import rule
from descend.viz import report as rp
from descend.viz._shared import PLOTLY_SYMBOLS, optimizer_style
from descend.workflows import DEMO_RACES, race_report_section, run_race

#: the demo's report must stay under 10 MB; its races (with plotly.js) get this much of it, the
#: rest (every-optimizer table, batching, LR range test) measured ~0.1 MB
RACES_PAGE_LIMIT = 9_000_000


@pytest.fixture(scope="module")
def raced():
    # noise and a seed that is not the default: the sweep must re-run with both
    r = race("rosenbrock", ["sgd", "momentum", "adam"], steps=80, noise=0.5, seed=3)
    return r, race_sweep(r)


def _minimize(r, name: str, lr: float, momentum: float | None):
    """The run a sweep cell must be: minimize, as race runs it, with the optimizer made here."""
    opt = rule(name).make(lr=lr, **({} if momentum is None else {"momentum": momentum}))
    return ds.minimize(
        r.function,
        r.start,
        optimizer=opt,
        max_steps=r.steps,
        tol=None,
        noise=r.noise,
        seed=r.seed,
        on_divergence="stop",
        record_path=True,
    )


# ------------------------------------------------------------------------------------------ sweep


def test_sweep_grid_spans_the_race_lr_and_the_momenta(raced):
    r, s = raced
    assert s.factors == LR_FACTORS and s.factors[s.lr_index] == 1.0
    assert [e.optimizer for e in s.entries] == [e.optimizer for e in r.entries]
    for e, se in zip(r.entries, s.entries, strict=True):
        assert se.lrs == tuple(e.lr * 2.0**k for k in range(-4, 5))
        # the race's own run is the grid's start, not a second copy of it
        assert se.run(s.lr_index) is e
    sgd, mom, adam = s.entries
    assert sgd.momenta == adam.momenta == () and len(sgd.runs) == len(adam.runs) == 1
    assert mom.momenta == MOMENTA and mom.momenta[mom.momentum_index] == 0.9
    assert s.runs == 9 + 27 + 9
    # the grid reaches from a crawl to an overshoot: SGD diverges at 16x, nothing at 1/16x
    assert sgd.runs[0][-1].diverged
    assert not any(row[0].diverged for se in s.entries for row in se.runs)


def test_sweep_runs_are_minimize_at_their_lr_and_momentum(raced):
    r, s = raced
    for se in s.entries:
        for j, row in enumerate(se.runs):
            mu = se.momenta[j] if se.momenta else None
            for i, run in enumerate(row):
                ref = _minimize(r, se.optimizer, se.lrs[i], mu)
                where = (se.optimizer, i, mu)
                np.testing.assert_array_equal(run.path, ref.history.path, err_msg=str(where))
                np.testing.assert_array_equal(run.losses, ref.history.loss, err_msg=str(where))
                assert run.diverged == ref.diverged and run.lr == se.lrs[i]
                if mu is not None:
                    assert run.hyperparameters["momentum"] == mu


def test_sweep_rebuilds_options_and_refuses_bad_grids(raced):
    r, _ = raced
    # options other than lr and momentum are kept: amsgrad and a weight decay
    r2 = race("beale", ["adam"], steps=30, options={"adam": {"amsgrad": True, "weight_decay": 0.01}})
    s2 = race_sweep(r2, factors=(0.5, 2.0), momenta=())
    assert s2.factors == (0.5, 1.0, 2.0)  # the race's own lr is always on the grid
    run = s2.entries[0].run(0)
    assert run.hyperparameters["amsgrad"] is True and run.hyperparameters["weight_decay"] == 0.01
    opt = rule("adam").make(lr=r2.entries[0].lr * 0.5, amsgrad=True, weight_decay=0.01)
    ref = ds.minimize(r2.function, r2.start, optimizer=opt, max_steps=30, tol=None, on_divergence="stop")
    np.testing.assert_array_equal(run.losses, ref.history.loss)
    with pytest.raises(ValueError, match=r"race_sweep: every value of factors must be positive and finite"):
        race_sweep(r, factors=(0.0, 2.0))
    with pytest.raises(ValueError, match=r"race_sweep: every value of momenta must be in \(0, 1\), got 1.0"):
        race_sweep(r, momenta=(0.5, 1.0))
    with pytest.raises(TypeError, match="race_sweep: result must be a RaceResult"):
        race_sweep("rosenbrock")


def test_every_rule_of_the_registry_can_be_swept():
    # the sweep rebuilds each optimizer from the one the race ran: every rule, whatever its
    # settings are (a companion optimizer, None, inf), runs at 2x as a fresh one made here does
    r = race("rosenbrock", list(ds.optim.names()), steps=6, noise=0.2, seed=1)
    s = race_sweep(r, factors=(2.0,))
    for e, se in zip(r.entries, s.entries, strict=True):
        ref = _minimize(r, e.optimizer, 2 * e.lr, None)
        np.testing.assert_array_equal(se.run(1).path, ref.history.path, err_msg=e.optimizer)
    with_momentum = {se.optimizer for se in s.entries if se.momenta}
    assert {"momentum", "nesterov"} <= with_momentum and not {"sgd", "adam", "rmsprop"} & with_momentum


# ----------------------------------------------------------------------------------------- figure


def _arr(value) -> np.ndarray:
    """A trace value as plotly.js reads it: a typed-array spec decoded, else the array."""
    if isinstance(value, dict):
        a = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype("<" + value["dtype"]))
        if "shape" in value:
            a = a.reshape([int(n) for n in value["shape"].split(",")])
        return a
    return np.asarray(value, dtype=float)


def _f32(a) -> np.ndarray:
    """As the figure stores numbers: float32, values beyond its range at its edge, NaN for inf."""
    a = np.asarray(a, dtype=float)
    edge = float(np.finfo(np.float32).max)
    return np.where(np.isfinite(a), np.clip(a, -edge, edge), np.nan).astype(np.float32)


def _check_drawn(xy, run, box) -> bool:
    """Check a run's path as drawn (float32 ``(n, 2)``): every point (short runs are not thinned),
    or, when it ends outside the view, every point until it left and one on the view's edge;
    return whether it was cut."""
    (xlo, xhi), (ylo, yhi) = box
    P = run.path
    inside = (P[:, 0] >= xlo) & (P[:, 0] <= xhi) & (P[:, 1] >= ylo) & (P[:, 1] <= yhi)
    xy = np.asarray(xy, dtype=float)
    if inside[-1]:  # every point, a visit outside the view too
        np.testing.assert_array_equal(xy, _f32(P))
        return False
    m = int(np.flatnonzero(inside)[-1]) + 1
    assert len(xy) == m + 1
    np.testing.assert_array_equal(xy[:m], _f32(P[:m]))
    (x, y) = xy[-1]
    assert np.isclose([x, x, y, y], [xlo, xhi, ylo, yhi], rtol=1e-6).any()
    assert xlo <= x <= xhi and ylo <= y <= yhi
    return True


def _roles(fig) -> dict[tuple[str, str], int]:
    """``(legendgroup, kind) -> trace index`` of the traces that draw runs."""
    out = {}
    for i, t in enumerate(fig.data):
        if not t.legendgroup:
            continue
        on_loss = t.xaxis == "x2"
        lines = t.mode in ("lines", "lines+markers")
        kind = {(False, True): "path", (False, False): "head", (True, True): "loss", (True, False): "end"}
        out[t.legendgroup, kind[on_loss, lines]] = i
    return out


def _group(k: int, j: int, own: int) -> str:
    return f"opt{k + 1}" if j == own else f"opt{k + 1}-{j}"


def test_slider_steps_draw_each_run_at_each_lr(raced):
    r, s = raced
    fig = rp.interactive_race_figure(r, sweep=s)
    step_slider, lr_slider = fig.layout.sliders
    assert [st.label for st in lr_slider.steps] == ["1/16", "1/8", "1/4", "1/2", "1", "2", "4", "8", "16"]
    assert lr_slider.active == s.lr_index and lr_slider.currentvalue.prefix == "lr × "
    roles = _roles(fig)
    box = rp.view_box(r)
    top = 10 ** fig.layout.yaxis2.range[1]
    for i, st in enumerate(lr_slider.steps):
        data, relayout, idx = st.args
        assert st.method == "update" and len(idx) == len(roles)
        # Play and the step slider replay the race's own runs: shown only at lr x 1
        at_race = i == s.lr_index
        assert relayout["sliders[0].visible"] is at_race and relayout["updatemenus[0].visible"] is at_race
        value = {(a, t): data[a][n] for n, t in enumerate(idx) for a in data}
        for k, se in enumerate(s.entries):
            for j, row in enumerate(se.runs):
                run, g = row[i], _group(k, j, se.momentum_index)
                path, head, loss, end = (roles[g, kind] for kind in ("path", "head", "loss", "end"))
                n = len(run.path)
                label = run.label + (" (diverged)" if run.diverged else "")
                assert value["name", path] == value["name", loss] == label
                x, y = _arr(value["x", path]), _arr(value["y", path])
                cd = _arr(value["customdata", path])
                # hover: the step and loss of each point (at the edge: of the first step outside)
                m = len(x) - 1 if _check_drawn(np.column_stack([x, y]), run, box) else len(x)
                np.testing.assert_array_equal(cd[:, 0], np.arange(len(x)))
                np.testing.assert_array_equal(cd[:, 1], _f32(run.losses[: len(x)]))
                if m < len(x):
                    assert value["name", head].endswith("(diverged)" if run.diverged else "(left the view)")
                own_symbol = PLOTLY_SYMBOLS[optimizer_style(se.optimizer)["marker"]]
                assert value["marker.symbol", head] == ("x" if run.diverged else own_symbol)
                assert [value["x", head][0], value["y", head][0]] == pytest.approx([x[-1], y[-1]], rel=1e-6)
                # the loss panel: f - f* (f* = 0 here) against step, every step of an 81-step run
                np.testing.assert_array_equal(_arr(value["x", loss]), np.arange(n))
                expect = np.where(np.isfinite(run.losses), np.maximum(run.losses, 1e-16), np.nan)
                np.testing.assert_array_equal(_arr(value["y", loss]), _f32(expect))
                if run.diverged:
                    last = int(np.flatnonzero(np.isfinite(run.losses))[-1])
                    assert value["x", end] == [last]
                    assert value["y", end] == [pytest.approx(min(run.losses[last], top))]
                else:
                    assert value["x", end] == [] and value["y", end] == []
    # the figure opens on the race's own runs, as the slider's step at 1 draws them
    data, _, idx = lr_slider.steps[s.lr_index].args
    for n, t in enumerate(idx):
        at_one = _arr(data["x"][n])  # float32, or float64 for a head's single point
        np.testing.assert_array_equal(at_one, np.asarray(fig.data[t].x, dtype=float).astype(at_one.dtype))
    assert (
        len(step_slider.steps) == len(fig.frames) and fig.layout.updatemenus[0].buttons[0].label == "▶ Play"
    )


def test_momentum_buttons_show_one_row_of_the_grid(raced):
    r, s = raced
    fig = rp.interactive_race_figure(r, sweep=s)
    roles = _roles(fig)
    _play, menu = fig.layout.updatemenus  # sgd and adam have no momentum coefficient: one menu
    assert [b.label for b in menu.buttons] == ["0.5", "0.9", "0.99"] and menu.active == 1
    mom = s.entries[1]
    for j, button in enumerate(menu.buttons):
        change, idx = button.args
        visible = change["visible"]
        shown = {t for t, v in zip(idx, visible, strict=True) if v}
        rows = {
            jj: {roles[_group(1, jj, 1), kind] for kind in ("path", "head", "loss", "end")} for jj in range(3)
        }
        assert shown == rows[j] and set(idx) == set().union(*rows.values())
        assert fig.data[roles[_group(1, j, 1), "path"]].name.startswith(
            f"momentum (lr=0.001, momentum={mom.momenta[j]:g})"
        )
    # only the race's own row is visible at first, and only its path and head are animated
    assert [fig.data[roles[_group(1, j, 1), "path"]].visible for j in range(3)] == [False, True, False]
    animated = set(fig.frames[0].traces)
    assert animated == {roles[f"opt{k + 1}", kind] for k in range(3) for kind in ("path", "head")}


def test_diverged_run_is_cut_at_the_view_and_marked():
    r = race("rosenbrock", ["sgd"], lrs=0.004, steps=200)
    s = race_sweep(r, factors=(1.0, 8.0), momenta=())
    hot = s.entries[0].run(1)
    assert hot.diverged and np.abs(hot.path).max() > 1e6
    fig = rp.interactive_race_figure(r, sweep=s)
    data, _, idx = fig.layout.sliders[1].steps[1].args
    roles = _roles(fig)
    value = {(a, t): data[a][n] for n, t in enumerate(idx) for a in data}
    x = _arr(value["x", roles["opt1", "path"]])
    (xlo, xhi), (ylo, yhi) = rp.view_box(r)
    assert xlo <= x.min() and x.max() <= xhi  # nothing drawn out to 1e6: the axes stay the view
    assert value["marker.symbol", roles["opt1", "head"]] == "x"
    assert value["name", roles["opt1", "path"]] == "sgd (lr=0.032) (diverged)"
    assert len(value["x", roles["opt1", "end"]]) == 1  # and an x on the loss panel
    assert list(fig.layout.xaxis.range) == [xlo, xhi] and list(fig.layout.yaxis.range) == [ylo, yhi]


def test_loss_figure_gets_the_slider_without_a_surface():
    r = race(ds.functions.get("rastrigin", dim=3), ["adam", "nesterov"], steps=30)
    section = rp.race_section(r, race_sweep(r, factors=(0.5, 2.0)))
    (fig,) = section.figures
    (lr_slider,) = fig.layout.sliders
    assert [st.label for st in lr_slider.steps] == ["1/2", "1", "2"]
    data, relayout, _ = lr_slider.steps[0].args
    assert relayout == {} and set(data) == {"x", "y", "customdata", "name", "marker.symbol"}
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["0.5", "0.9", "0.99"]
    assert "learning-rate slider" in section.intro and "momentum coefficient" in section.intro


def test_descend_report_recomputes_the_slider_from_the_folder(tmp_path):
    r, _ = run_race(
        "beale", ["momentum", "adam"], steps=40, noise=0.1, seed=2, out=tmp_path / "run", gif=False
    )
    written = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert (
        written.count("each optimizer's race lr times this") == 1
    )  # the report the run wrote has the slider
    ((_, loaded),) = load_run(tmp_path / "run")[1]
    fresh, again = race_report_section(r).figures[0], race_report_section(loaded).figures[0]
    a, b = fresh.layout.sliders[1].steps, again.layout.sliders[1].steps
    assert len(a) == len(b) == len(LR_FACTORS)
    for sa, sb in zip(a, b, strict=True):
        assert sa.args[0]["name"] == sb.args[0]["name"]
        for xa, xb in zip(sa.args[0]["x"], sb.args[0]["x"], strict=True):
            np.testing.assert_array_equal(_arr(xa), _arr(xb))
    ds.workflows.rebuild_report([tmp_path / "run"], out=tmp_path / "again.html")
    assert (tmp_path / "again.html").read_text(encoding="utf-8").count(
        "each optimizer's race lr times this"
    ) == 1


# ------------------------------------------------------------------------------------------- size


@pytest.mark.slow
def test_demo_races_with_their_sliders_stay_small(tmp_path):
    sections = []
    for name, steps in DEMO_RACES.items():
        r = race(name, CLASSIC_SIX, steps=steps)
        sections.append(rp.race_section(r, race_sweep(r)))
    page = rp.write_report(tmp_path / "races.html", title="races", sections=sections)
    size = page.stat().st_size
    assert size < RACES_PAGE_LIMIT, f"three demo races with their sliders: {size / 1e6:.2f} MB"
    for section in sections:
        fig = section.figures[0]
        assert len(fig.layout.sliders[1].steps) == len(LR_FACTORS)
        assert len(fig.frames) == rp.MAX_FRAMES  # the animation kept all its frames


# ---------------------------------------------------------------------------- headless Chromium

# after load: click the lr slider's last tick (x16) as a mouse would (mousedown and mouseup on
# the slider, where its tick is drawn), then the momentum button 0.99, then the tick at x1;
# after each, write down what plotly drew (its calcdata) for the watched traces and which
# controls are on the page
_SLIDER_PROBE = """<script>
window.addEventListener("load", function () {
  var gd = document.getElementById("descend-figure-1");
  var watch = %(watch)s;
  var log = [];
  function note(text) {  // how far the probe got, and when (virtual ms): the message if it stops
    gd.setAttribute("data-slider-trace", (gd.getAttribute("data-slider-trace") || "") + text + "@" +
                    Math.round(performance.now()) + " ");
  }
  ["plotly_sliderchange", "plotly_update", "plotly_restyle"].forEach(function (name) {
    gd.on(name, function () { note(name); });
  });
  function state(label) {
    note(label);
    var drawn = {};
    Object.keys(watch).forEach(function (key) {
      var t = watch[key];
      drawn[key] = {
        visible: gd._fullData[t].visible,
        xy: (gd.calcdata[t] || []).map(function (p) { return [p.x, p.y]; }),
        symbol: gd._fullData[t].marker ? gd._fullData[t].marker.symbol : null
      };
    });
    var lines = Array.prototype.map.call(gd.querySelectorAll(".scatterlayer .js-line"), function (p) {
      return p.getAttribute("d");
    });
    log.push({
      label: label,
      lr_active: gd._fullLayout.sliders[1].active,
      step_slider_shown: gd._fullLayout.sliders[0].visible,
      slider_groups: gd.querySelectorAll("g.slider-group").length,
      lines: lines.join("|"),
      drawn: drawn
    });
  }
  function sliderGroup(i) {
    return Array.prototype.find.call(gd.querySelectorAll("g.slider-group"), function (g) {
      return g.__data__ && g.__data__._index === i;
    });
  }
  function clickTick(k) {
    var g = sliderGroup(1);
    var tick = g.querySelectorAll("rect.slider-tick-rect")[k].getBoundingClientRect();
    var rail = g.querySelector("rect.slider-rail-touch-rect");
    var box = rail.getBoundingClientRect();
    var at = {bubbles: true, cancelable: true, view: window,
              clientX: tick.left + tick.width / 2, clientY: box.top + box.height / 2};
    rail.dispatchEvent(new MouseEvent("mousedown", at));
    rail.dispatchEvent(new MouseEvent("mouseup", at));
  }
  function clickButton(label) {
    var b = Array.prototype.find.call(gd.querySelectorAll("g.updatemenu-button"), function (b) {
      return b.textContent === label;
    });
    b.dispatchEvent(new MouseEvent("click", {bubbles: true, cancelable: true, view: window}));
  }
  // a slider runs its step's method on the next animation frame (plotly_sliderchange comes
  // before): wait for the update it makes, and for the restyle of a button
  // and keep a timer ticking meanwhile: with none pending, headless Chromium's virtual time jumps to
  // the end of its budget, and the frame never comes
  var heartbeat = setInterval(function () {}, 20);
  function after(event, then) {
    var done = false;
    gd.on(event, function () { if (!done) { done = true; Promise.resolve().then(then); } });
  }
  setTimeout(function () {
    state("start");
    after("plotly_update", function () {
      state("x16");
      after("plotly_restyle", function () {
        state("momentum 0.99");
        after("plotly_update", function () {
          state("x1");
          clearInterval(heartbeat);
          gd.setAttribute("data-slider-probe", JSON.stringify(log));
        });
        clickTick(%(own)d);
      });
      clickButton("0.99");
    });
    clickTick(%(last)d);
  }, 300);
});
</script>"""


def test_slider_redraws_paths_and_losses_in_headless_chromium(chromium, raced, tmp_path):  # noqa: F811
    r, s = raced
    section = rp.race_section(r, s)
    fig = section.figures[0]
    roles = _roles(fig)
    watch = {
        "sgd path": roles["opt1", "path"],
        "sgd loss": roles["opt1", "loss"],
        "sgd head": roles["opt1", "head"],
        "momentum 0.9 path": roles["opt2", "path"],
        "momentum 0.99 path": roles["opt2-2", "path"],
    }
    page = rp.write_report(tmp_path / "report.html", title="slider", sections=[section])
    probe = _SLIDER_PROBE % {"watch": json.dumps(watch), "last": len(s.factors) - 1, "own": s.lr_index}
    text = _instrument(page.read_text(encoding="utf-8"), probe=False).replace("</body>", probe + "</body>", 1)
    page.write_text(text, encoding="utf-8")
    # a slider step runs on an animation frame, which headless Chromium under a virtual time
    # budget draws only when asked to run every compositor stage
    # the three slider/button changes each wait for a frame: on a loaded machine one arrived ~10 s
    # of virtual time after its click (CI), so the page gets more than the default 10 s
    dom, log = _render(
        chromium, page, tmp_path / "profile", "--run-all-compositor-stages-before-draw", budget_ms=60000
    )
    assert _js_errors(dom, log) == []
    m = re.search(r'data-slider-probe="([^"]*)"', dom)
    trace = re.search(r'data-slider-trace="([^"]*)"', dom)
    assert m, f"the slider probe did not finish: {trace.group(1) if trace else 'it never started'}"
    start, hot, mom99, back = json.loads(html.unescape(m.group(1)))

    def xy(state, key):
        return np.asarray(state["drawn"][key]["xy"], dtype=float)

    sgd, mom = s.entries[0], s.entries[1]
    # at first: the race itself, with Play and the step slider
    assert start["lr_active"] == s.lr_index and start["slider_groups"] == 2 and start["step_slider_shown"]
    np.testing.assert_array_equal(xy(start, "sgd path"), r.entries[0].path)
    # the click moved the slider to 16x: the paths and the loss curves were redrawn from its data
    assert hot["lr_active"] == len(s.factors) - 1 and hot["lines"] != start["lines"]
    fast = sgd.run(len(s.factors) - 1)
    assert fast.diverged
    box = rp.view_box(r)
    assert _check_drawn(xy(hot, "sgd path"), fast, box)  # cut at the view's edge
    assert hot["drawn"]["sgd head"]["symbol"] == "x"
    loss = xy(hot, "sgd loss")
    np.testing.assert_array_equal(loss[:, 0], np.arange(len(fast.losses)))
    np.testing.assert_array_equal(loss[:, 1], _f32(np.maximum(fast.losses, 1e-16)))
    _check_drawn(xy(hot, "momentum 0.9 path"), mom.run(len(s.factors) - 1), box)
    # away from the race's own lr the step controls are hidden (they replay the race)
    assert hot["slider_groups"] == 1 and not hot["step_slider_shown"]
    # the momentum button shows the 0.99 row instead of the 0.9 one, at the slider's lr
    assert mom99["drawn"]["momentum 0.99 path"]["visible"] is True
    assert mom99["drawn"]["momentum 0.9 path"]["visible"] is False
    # back at 1: the race's runs again, and the step controls
    assert back["lr_active"] == s.lr_index and back["slider_groups"] == 2 and back["step_slider_shown"]
    _check_drawn(xy(back, "sgd path"), r.entries[0], box)
    _check_drawn(xy(back, "momentum 0.99 path"), mom.run(s.lr_index, 2), box)
