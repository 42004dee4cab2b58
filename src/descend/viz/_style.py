"""Shared look of descend's matplotlib drawings: markers, colour maps, figures, PNG output (the
optimizer palette is ``_shared``'s, re-exported here)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Colormap, ListedColormap
from matplotlib.figure import Figure

from .._validation import check_int, describe
from ._shared import entry_styles, optimizer_style  # the palette, shared with the plotly report

__all__ = [
    "check_size",
    "entry_styles",
    "fit_legend",
    "light_cmap",
    "new_figure",
    "optimizer_style",
    "quiet_layout",
    "render_rgb",
    "save_png",
]

#: start of every path in every drawing
START_STYLE: dict[str, Any] = {
    "marker": "o",
    "markersize": 9,
    "markerfacecolor": "white",
    "markeredgecolor": "black",
    "markeredgewidth": 1.5,
}
#: known minima: global ones as big gold stars, local ones as smaller white stars
GLOBAL_MIN_STYLE: dict[str, Any] = {
    "marker": "*",
    "markersize": 16,
    "markerfacecolor": "gold",
    "markeredgecolor": "black",
    "markeredgewidth": 1.0,
}
LOCAL_MIN_STYLE: dict[str, Any] = {
    "marker": "*",
    "markersize": 11,
    "markerfacecolor": "white",
    "markeredgecolor": "black",
    "markeredgewidth": 1.0,
}


def light_cmap(name: str, amount: float = 0.45) -> Colormap:
    """Colormap ``name`` blended towards white by ``amount``, so coloured paths read on top of it."""
    from matplotlib import colormaps

    rgba = colormaps[name](np.linspace(0.0, 1.0, 256))
    rgba[:, :3] = rgba[:, :3] * (1.0 - amount) + amount
    return ListedColormap(rgba, name=f"{name}_light")


def check_size(owner: str, size: Any) -> tuple[int, int]:
    """A ``(width, height)`` in pixels, each at least 64."""
    if isinstance(size, (str, bytes)) or not isinstance(size, Sequence) or len(size) != 2:
        raise TypeError(f"{owner}: size must be (width, height) in pixels, got {describe(size)}")
    return check_int(owner, "size[0]", size[0], low=64), check_int(owner, "size[1]", size[1], low=64)


def new_figure(size: tuple[int, int] = (800, 600), dpi: int = 100) -> Figure:
    """A figure of exactly ``size`` pixels at ``dpi``, with constrained layout and no pyplot state."""
    w, h = size
    fig = Figure(figsize=(w / dpi, h / dpi), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)  # a raster canvas of its own: drawable and readable without any backend
    return fig


def fit_legend(
    owner: Any,
    handles: list[Any],
    labels: list[str],
    *,
    max_cols: int = 2,
    max_height: float = 0.3,
    **kwargs: Any,
) -> Any:
    """``owner.legend(..., **kwargs)`` (an Axes or a Figure) in the first layout that fits the figure.

    Tries ``max_cols`` columns down to one, each in ``"small"`` then ``"x-small"`` type, and
    keeps the first legend that fits the figure's width and ``max_height`` of its height. When
    none fits (a small picture with long labels), an Axes gets its legend inside, on a
    translucent frame, so the plot keeps its room; a Figure the last try.
    """
    box = owner.figure.bbox  # the (sub)figure the legend must fit in
    cols = range(max(1, min(max_cols, len(labels))), 0, -1)
    for ncols in cols:
        for fontsize in ("small", "x-small"):
            legend = owner.legend(handles, labels, ncols=ncols, fontsize=fontsize, **kwargs)
            ext = legend.get_window_extent()
            # 0.85: a legend wider than its axes pushes the axes and colour bar apart
            if ext.width <= 0.85 * box.width and ext.height <= max_height * box.height:
                return legend
            legend.remove()
    if isinstance(owner, Axes):
        # "best" would test every polygon of a 3-D surface (seconds); a 3-D box has empty corners
        loc = "upper left" if getattr(owner, "name", "") == "3d" else "best"
        return owner.legend(handles, labels, loc=loc, fontsize="x-small", framealpha=0.7)
    return owner.legend(handles, labels, ncols=1, fontsize="x-small", **kwargs)


@contextmanager
def quiet_layout() -> Iterator[None]:
    """Draw without the warning constrained layout gives when a figure is too small for its labels.

    At such sizes the figure keeps its previous (or default) margins and is still drawn at the
    size asked for; the warning would only say what the picture shows.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="constrained_layout not applied", category=UserWarning)
        yield


def save_png(fig: Figure, path: str | os.PathLike[str], dpi: int) -> Path:
    """Write ``fig`` as a PNG of exactly its pixel size (no tight bounding box, which would resize it)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with quiet_layout():
        fig.savefig(out, format="png", dpi=dpi)
    return out


def render_rgb(fig: Figure) -> np.ndarray:
    """The figure's current Agg canvas as an ``(h, w, 3)`` uint8 array (a copy)."""
    buf = np.asarray(fig.canvas.buffer_rgba())
    return np.ascontiguousarray(buf[:, :, :3])
