"""When fit() stops on its own (``epochs=None``): the training loss has stopped improving.

The rule, checked every ``period`` updates (about :data:`CHECK_SAMPLES` samples, or one epoch
when that is shorter, so SGD may stop in the middle of an epoch):

- ``m`` is the mean batch loss of the last period (each batch's loss is computed anyway, before
  its update, so the check costs nothing extra);
- a period *improves* when ``m < best - tol * max(|best|, 1)``, where ``best`` is the lowest
  ``m`` so far (scikit-learn's ``tol`` rule, relative to the loss's size);
- training stops after ``n_iter_no_change`` periods in a row without improvement, or at
  ``max_epochs``.

The mean over thousands of samples averages out most of the batch-to-batch noise; ``best`` is
the minimum of noisy means, so once the loss flattens later means rarely beat it by ``tol``.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["CHECK_SAMPLES", "PlateauStop"]

#: samples between two checks of the rule (or one epoch, whichever is shorter)
CHECK_SAMPLES = 50_000


class PlateauStop:
    """The ``epochs=None`` stopping rule (see the module docstring); its state is checkpointed."""

    def __init__(self, *, tol: float, n_iter_no_change: int, period: int):
        self.tol, self.patience, self.period = tol, n_iter_no_change, period
        self.sum, self.count = 0.0, 0
        self.best = math.inf
        self.bad = 0
        self.checks = 0

    @staticmethod
    def period_for(n_samples: int, batch_rows: int) -> int:
        rows = min(n_samples, CHECK_SAMPLES)
        return max(1, -(-rows // max(batch_rows, 1)))

    def update(self, loss: float) -> bool:
        """Feed one batch loss; True when the rule says stop."""
        self.sum += loss
        self.count += 1
        if self.count < self.period:
            return False
        m = self.sum / self.count
        self.sum, self.count = 0.0, 0
        self.checks += 1
        if m < self.best - self.tol * max(abs(self.best), 1.0) or not math.isfinite(self.best):
            self.best, self.bad = m, 0
        else:
            self.bad += 1
        return self.bad >= self.patience

    def reason(self, step: int, epoch: int, samples: int) -> str:
        per = self.period
        return (
            f"converged at step {step} (epoch {epoch}): the mean training loss over {per} steps did not "
            f"improve by more than tol={self.tol:g} for {self.patience} checks in a row "
            f"(best {self.best:.6g}, {samples:,} samples seen)"
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "sum": self.sum,
            "count": self.count,
            "best": self.best,
            "bad": self.bad,
            "checks": self.checks,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sum, self.count = float(state["sum"]), int(state["count"])
        self.best, self.bad, self.checks = float(state["best"]), int(state["bad"]), int(state["checks"])
