"""Exceptions raised by descend: bad parameters (which carry their name) and divergence."""

from __future__ import annotations

from typing import Any

__all__ = [
    "DivergenceError",
    "InvalidParameter",
    "ParameterError",
    "ParameterTypeError",
    "UnknownNameError",
]

_MISSING: Any = object()


class InvalidParameter(Exception):
    """Base of the errors raised for a bad value of a named parameter (as sklearn's
    ``InvalidParameterError``): ``owner`` is the class or function that refused it, ``param`` the
    parameter's name and ``value`` the value given. The command line maps ``param`` to the flag
    that set it, so its one-line messages blame the right flag.

    Catch :class:`ParameterError` (a ``ValueError``) or :class:`ParameterTypeError` (a
    ``TypeError``), or this class for both.
    """

    def __init__(self, message: str, *, owner: str, param: str, value: Any = _MISSING):
        super().__init__(message)
        self.owner = owner
        self.param = param
        self.value = None if value is _MISSING else value


class ParameterError(InvalidParameter, ValueError):
    """A parameter's value is out of range or not one of the allowed choices.

    >>> from descend import Adam
    >>> try:
    ...     Adam(lr=1e-3, betas=(0.9, 1.0))
    ... except ParameterError as exc:
    ...     print(exc.owner, exc.param, exc.value, "|", exc)
    Adam beta2 1.0 | Adam: beta2 must satisfy 0 <= beta2 < 1, got 1.0
    """


class ParameterTypeError(InvalidParameter, TypeError):
    """A parameter's value has the wrong type (a string where a number belongs, a bool for an int)."""


class UnknownNameError(ParameterError):
    """A name looked up in one of descend's registries (optimizers, schedules, functions, models,
    datasets) is not there. ``kind`` says which registry, ``known`` lists its names and
    ``suggestion`` is the closest one (or ``None``)."""

    def __init__(
        self,
        message: str,
        *,
        owner: str,
        kind: str,
        value: Any,
        known: list[str],
        suggestion: str | None,
        param: str = "name",
    ):
        super().__init__(message, owner=owner, param=param, value=value)
        self.kind = kind
        self.known = list(known)
        self.suggestion = suggestion


class DivergenceError(FloatingPointError):
    """A loss or gradient became NaN or infinite during optimisation.

    The parameters (and optimizer state) are left at the last step whose loss and gradient
    were finite. ``step`` is the step at which the non-finite value appeared, ``epoch`` the
    epoch where one applies, ``quantity`` says what was non-finite, ``lr`` is the learning rate
    of that step where known, and ``run`` (from :func:`descend.fit`) is the partial run: its
    history up to the divergence and the last finite parameters.
    """

    def __init__(
        self,
        message: str,
        *,
        step: int,
        quantity: str,
        epoch: int | None = None,
        lr: float | None = None,
        run: Any = None,
    ):
        super().__init__(message)
        self.step = step
        self.epoch = epoch
        self.quantity = quantity
        self.lr = lr
        self.run = run
