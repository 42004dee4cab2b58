"""The lab: experiments on optimizers that return plain result objects (no plotting here)."""

from .suite import SuiteResult, SuiteRow, run_suite
from .tune import LR_GRID, TuneResult, tune_lr

__all__ = ["LR_GRID", "SuiteResult", "SuiteRow", "TuneResult", "run_suite", "tune_lr"]
