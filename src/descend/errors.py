"""Exceptions raised by descend."""

from __future__ import annotations

__all__ = ["DivergenceError"]


class DivergenceError(FloatingPointError):
    """A loss or gradient became NaN or infinite during optimisation.

    The parameters (and optimizer state) are left at the last step whose loss and gradient
    were finite. ``step`` is the step at which the non-finite value appeared, ``epoch`` the
    epoch where one applies, and ``quantity`` says what was non-finite.
    """

    def __init__(self, message: str, *, step: int, quantity: str, epoch: int | None = None):
        super().__init__(message)
        self.step = step
        self.epoch = epoch
        self.quantity = quantity
