"""Training loops."""

from .minimize import MinimizeResult, minimize

__all__ = ["MinimizeResult", "minimize"]
