"""The lab: experiments on optimizers that return plain result objects (no plotting here)."""

from .diagnose import Diagnosis, diagnose
from .lr_find import LRFindResult, lr_find
from .monitor import Monitor
from .suite import SuiteResult, SuiteRow, run_suite
from .sweep import RaceSweep, race_sweep
from .tune import LR_GRID, TuneResult, tune_lr

__all__ = [
    "LR_GRID",
    "Diagnosis",
    "LRFindResult",
    "Monitor",
    "RaceSweep",
    "SuiteResult",
    "SuiteRow",
    "TuneResult",
    "diagnose",
    "lr_find",
    "race_sweep",
    "run_suite",
    "tune_lr",
]
