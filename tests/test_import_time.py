"""Import cost: ``import descend`` <= 0.3 s and ``descend --help`` <= 0.6 s in a fresh interpreter,
with numba (and the compiled kernels) loaded only by the first fused step."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import descend as ds

SRC = str(Path(ds.__file__).resolve().parents[1])
IMPORT_BUDGET = 0.3
HELP_BUDGET = 0.6
# ``import numpy`` on the machine the budgets were set on (2 cores, idle): the yardstick that
# scales the budgets on a slower or busier machine, so that only descend's own growth fails.
NUMPY_IMPORT = 0.10
TIMED_IMPORT = "import time; t = time.perf_counter(); import {}; print(time.perf_counter() - t)"


def python(*args: str) -> subprocess.CompletedProcess:
    # the import a user gets: with its bytecode cached (an environment that turns the cache off,
    # PYTHONDONTWRITEBYTECODE, would time the compiling of every module instead)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = SRC
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, check=True)


def wall(*args: str) -> float:
    start = time.perf_counter()
    python(*args)
    return time.perf_counter() - start


def best_of(measures: dict, repeats: int) -> dict:
    """Each measure's shortest time over ``repeats`` alternating rounds (the least disturbed)."""
    got: dict = {name: [] for name in measures}
    for _ in range(repeats):
        for name, measure in measures.items():
            got[name].append(measure())
    return {name: min(times) for name, times in got.items()}


def slowness(numpy_import: float) -> float:
    return max(1.0, numpy_import / NUMPY_IMPORT)


def test_import_descend_within_budget():
    best = best_of(
        {
            "numpy": lambda: float(python("-c", TIMED_IMPORT.format("numpy")).stdout),
            "descend": lambda: float(python("-c", TIMED_IMPORT.format("descend")).stdout),
        },
        repeats=7,
    )
    budget = IMPORT_BUDGET * slowness(best["numpy"])
    assert best["descend"] <= budget, f"import descend took {best['descend']:.3f} s (budget {budget:.2f} s)"


def test_descend_help_within_budget():
    best = best_of(
        {
            "numpy": lambda: float(python("-c", TIMED_IMPORT.format("numpy")).stdout),
            "startup": lambda: wall("-c", "pass"),  # the interpreter itself is not descend's cost
            "help": lambda: wall("-m", "descend", "--help"),
        },
        repeats=5,
    )
    spent, budget = best["help"] - best["startup"], HELP_BUDGET * slowness(best["numpy"])
    assert spent <= budget, f"descend --help took {spent:.3f} s beyond startup (budget {budget:.2f} s)"


def test_numba_is_imported_by_the_first_fused_step_not_before():
    code = """
import sys, numpy as np, descend as ds
opt = ds.optimizer("adam", lr=0.1)
ds.Nadam(lr=0.1).init(np.zeros(3))
seen = ["numba" in sys.modules]
x = np.ones(3)
opt.step(x, x.copy(), opt.init(x))  # too small for the kernels: NumPy, and no numba
seen.append("numba" in sys.modules)
x = np.ones(4096)
opt.step(x, x.copy(), opt.init(x))
seen.append("numba" in sys.modules)
print(*seen)
"""
    assert python("-c", code).stdout.split() == ["False", "False", "True"]
