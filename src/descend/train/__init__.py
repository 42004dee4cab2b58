"""Training loops: minimize() for functions of an array (fit() for models comes with models)."""

from .minimize import History, MinimizeResult, central_difference_grad, minimize, safe_norm

__all__ = ["History", "MinimizeResult", "central_difference_grad", "minimize", "safe_norm"]
