"""Drawings of descend's results (matplotlib, imported on first use of a drawing function).

>>> import descend.viz as viz
>>> viz.optimizer_style("sgd")["color"]
'#d62728'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._shared import optimizer_style
    from .lab_plots import (
        batching_figure,
        plot_batching,
        plot_lr_find,
        plot_training,
        save_png,
        training_figure,
    )
    from .race import (
        RacePlot,
        plot_contour,
        plot_loss,
        plot_surface,
        race_animation,
        race_figure,
        race_mp4,
        save_race_pngs,
    )
    from .schedules import plot_schedules, save_schedule_png

# public name -> submodule; a submodule (and matplotlib) is imported when one of its names is used
_EXPORTS = {
    "optimizer_style": "_shared",
    "RacePlot": "race",
    "plot_contour": "race",
    "plot_loss": "race",
    "plot_surface": "race",
    "race_animation": "race",
    "race_figure": "race",
    "race_mp4": "race",
    "save_race_pngs": "race",
    "plot_schedules": "schedules",
    "save_schedule_png": "schedules",
    "plot_lr_find": "lab_plots",
    "plot_batching": "lab_plots",
    "batching_figure": "lab_plots",
    "plot_training": "lab_plots",
    "training_figure": "lab_plots",
    "save_png": "lab_plots",
}

__all__ = [
    "RacePlot",
    "batching_figure",
    "optimizer_style",
    "plot_batching",
    "plot_contour",
    "plot_loss",
    "plot_lr_find",
    "plot_schedules",
    "plot_surface",
    "plot_training",
    "race_animation",
    "race_figure",
    "race_mp4",
    "save_png",
    "save_race_pngs",
    "save_schedule_png",
    "training_figure",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
