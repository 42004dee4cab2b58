"""Training loops: minimize() for functions of an array, fit() for models on data."""

from . import callbacks
from .callbacks import Callback, Convergence, EarlyStopping, GradientClipping, LambdaCallback
from .fit import DEFAULT_LR, Run, TrainHistory, fit
from .minimize import History, MinimizeResult, central_difference_grad, global_norm, minimize, safe_norm

__all__ = [
    "DEFAULT_LR",
    "Callback",
    "Convergence",
    "EarlyStopping",
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
    "minimize",
    "safe_norm",
]
