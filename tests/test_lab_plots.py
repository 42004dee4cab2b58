"""Matplotlib drawings of the LR range test, the batching comparison and training runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

import descend as ds
from descend.lab.batching import compare_batching
from descend.lab.datasets import load
from descend.lab.lr_find import lr_find
from descend.viz import lab_plots as lp


@pytest.fixture(scope="module")
def data():
    d = load("linear", seed=0)
    return d.X, d.y


@pytest.fixture(scope="module")
def lrf(data):
    return lr_find(ds.models.LinearRegression(), data, "sgd", steps=50)


@pytest.fixture(scope="module")
def batching():
    return compare_batching("linear", batch_sizes=(None, 1, 32), epochs=2, evals_per_epoch=10)


@pytest.fixture(scope="module")
def run(data):
    X, y = data
    return ds.fit(
        ds.models.LinearRegression(),
        (X[:600], y[:600]),
        optimizer="sgd",
        lr=0.05,
        batch_size=50,
        epochs=4,
        validation=(X[600:800], y[600:800]),
        progress=False,
    )


def _pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


# ------------------------------------------------------------------------------------- lr-find


def test_plot_lr_find_draws_both_curves_and_the_recommended_and_three_other_markers(lrf):
    drawn = lp.plot_lr_find(lrf)
    assert isinstance(drawn.figure, Figure)
    assert drawn.ax.get_xscale() == "log"
    np.testing.assert_array_equal(drawn.lines["smoothed"].get_xdata(), lrf.lrs)
    np.testing.assert_array_equal(drawn.lines["smoothed"].get_ydata(), lrf.smoothed)
    np.testing.assert_array_equal(drawn.lines["loss"].get_ydata(), lrf.losses)
    assert drawn.lines["loss"].get_alpha() < 1  # raw loss faint behind the smoothed curve
    assert set(drawn.markers) == {"recommended", "valley", "steep", "min"} == set(drawn.texts)
    for name, line in drawn.markers.items():
        assert list(line.get_xdata()) == [lrf.marks()[name]] * 2
        assert name in drawn.texts[name].get_text()
    # the legend names each suggestion with its value
    legend = [t.get_text() for t in drawn.ax.get_legend().get_texts()]
    assert any(t.startswith("valley: ") for t in legend)


def test_plot_lr_find_draws_into_a_given_axes(lrf):
    fig = Figure()
    ax = fig.add_subplot()
    drawn = lp.plot_lr_find(lrf, ax=ax)
    assert drawn.ax is ax and drawn.figure is fig
    assert len(ax.get_lines()) == 2 + 4


# ------------------------------------------------------------------------------------ batching


@pytest.mark.parametrize("x", ["epochs", "time", "updates"])
def test_plot_batching_one_line_per_strategy_with_excess_loss_on_log_axis(batching, x):
    drawn = lp.plot_batching(batching, x=x)
    assert list(drawn.lines) == [c.label for c in batching.curves]
    assert drawn.ax.get_yscale() == "log"
    assert drawn.ax.get_xscale() == ("linear" if x == "epochs" else "log")
    assert math.isfinite(batching.optimal_loss)
    for c in batching.curves:
        y = np.asarray(drawn.lines[c.label].get_ydata(), dtype=float)
        expected = c.loss - batching.optimal_loss
        ok = expected > 0
        np.testing.assert_allclose(y[ok], expected[ok])
        assert np.isnan(y[~ok]).all()  # non-positive excess is a gap, not a clipped spike
        xs = np.asarray(drawn.lines[c.label].get_xdata(), dtype=float)
        np.testing.assert_allclose(xs[xs > 0], getattr(c, x)[getattr(c, x) > 0])


def test_plot_batching_rejects_unknown_axis(batching):
    with pytest.raises(ValueError, match=r"plot_batching: x must be one of .*got 'loss'"):
        lp.plot_batching(batching, x="loss")


def test_batching_figure_has_epochs_and_time_panels(batching):
    fig = lp.batching_figure(batching)
    axes = fig.get_axes()
    assert len(axes) == 2
    assert axes[0].get_xlabel().startswith("epochs") and "time" in axes[1].get_xlabel()
    assert all(len(ax.get_lines()) == len(batching.curves) for ax in axes)


# ------------------------------------------------------------------------------------ training


def test_plot_training_draws_steps_and_epoch_curves(run):
    drawn = lp.plot_training(run)
    h = run.history
    assert set(drawn.lines) == {"batch loss", "train loss (epoch)", "val loss"}
    np.testing.assert_array_equal(drawn.lines["batch loss"].get_ydata(), h.steps["loss"])
    np.testing.assert_array_equal(drawn.lines["val loss"].get_ydata(), h.epochs["val_loss"])
    # epoch points sit at the update that ended the epoch: 600 / 50 = 12 updates per epoch
    np.testing.assert_array_equal(drawn.lines["train loss (epoch)"].get_xdata(), [12, 24, 36, 48])


def test_plot_training_without_validation_has_no_val_curve(data):
    X, y = data
    run = ds.fit(ds.models.LinearRegression(), (X[:200], y[:200]), batch_size=None, epochs=3, progress=False)
    drawn = lp.plot_training(run)
    assert "val loss" not in drawn.lines and "train loss (epoch)" in drawn.lines


def test_training_figure_has_loss_lr_and_grad_norm_panels(run):
    fig = lp.training_figure(run)
    titles = [ax.get_title() for ax in fig.get_axes()]
    assert titles == ["training loss", "learning rate", "gradient norm"]
    lr_line = fig.get_axes()[1].get_lines()[0]
    np.testing.assert_array_equal(lr_line.get_ydata(), run.history.steps["lr"])


# -------------------------------------------------------------------------------------- output


@pytest.mark.parametrize(
    ("size", "dpi"), [((900, 600), 100), ((901, 577), 100), ((333, 257), 96), ((640, 480), 72)]
)
def test_save_png_writes_exactly_the_requested_pixels(lrf, tmp_path, size, dpi):
    path = lp.save_png(lp.plot_lr_find(lrf).figure, tmp_path / "sub" / "lr.png", size=size, dpi=dpi)
    with Image.open(path) as im:
        assert im.size == size


def test_saved_pngs_are_not_blank(lrf, batching, run, tmp_path):
    figures = {
        "lr": lp.plot_lr_find(lrf).figure,
        "batching": lp.batching_figure(batching),
        "training": lp.training_figure(run),
    }
    for name, fig in figures.items():
        px = _pixels(lp.save_png(fig, tmp_path / f"{name}.png", size=(800, 400)))
        assert px.shape == (400, 800, 3)
        not_white = np.any(px < 200, axis=2).mean()
        assert 0.01 < not_white < 0.6, (name, not_white)  # drawn on, but not a solid block
        colours = {tuple(c) for c in px[::7, ::7].reshape(-1, 3)}
        assert len(colours) > 20, name  # curves in several colours, text, grid


def test_save_png_tiny_size_works_without_warnings(lrf, tmp_path):
    # constrained layout gives up at thumbnail sizes; pytest turns its warning into an error
    path = lp.save_png(lp.plot_lr_find(lrf).figure, tmp_path / "tiny.png", size=(64, 64))
    with Image.open(path) as im:
        assert im.size == (64, 64)


def test_save_png_rejects_bad_size(lrf, tmp_path):
    fig = lp.plot_lr_find(lrf).figure
    with pytest.raises(TypeError, match="save_png: size must be"):
        lp.save_png(fig, tmp_path / "x.png", size=800)
    with pytest.raises(ValueError, match="save_png"):
        lp.save_png(fig, tmp_path / "x.png", size=(10, 600))


def test_log_worthy():
    assert lp.log_worthy([1.0, 100.0])
    assert not lp.log_worthy([1.0, 2.0])  # a narrow range reads better on a linear axis
    assert not lp.log_worthy([0.0, 100.0])
    assert lp.log_worthy([np.nan, 1.0, 50.0])
    assert not lp.log_worthy([])
