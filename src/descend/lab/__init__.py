"""The lab: experiments on optimizers that return plain result objects (no plotting here)."""

from .lr_find import LRFindResult, lr_find
from .suite import SuiteResult, SuiteRow, run_suite
from .tune import LR_GRID, TuneResult, tune_lr

__all__ = [
    "LR_GRID",
    "LRFindResult",
    "SuiteResult",
    "SuiteRow",
    "TuneResult",
    "lr_find",
    "run_suite",
    "tune_lr",
]
