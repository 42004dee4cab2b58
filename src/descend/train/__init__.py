"""Training loops: minimize() for functions of an array, fit() for models on data."""

from . import callbacks
from .callbacks import Callback, Convergence, EarlyStopping, GradientClipping, LambdaCallback
from .fit import FitQuality, Run, TrainHistory, fit
from .minimize import History, MinimizeResult, central_difference_grad, global_norm, minimize, safe_norm
from .saved import iter_predictions, load_run, predict_file

__all__ = [
    "Callback",
    "Convergence",
    "EarlyStopping",
    "FitQuality",
    "GradientClipping",
    "History",
    "LambdaCallback",
    "MinimizeResult",
    "Run",
    "TrainHistory",
    "callbacks",
    "central_difference_grad",
    "fit",
    "global_norm",
    "iter_predictions",
    "load_run",
    "minimize",
    "predict_file",
    "safe_norm",
]
