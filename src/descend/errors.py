"""Exceptions and warnings raised by descend: bad parameters (which carry their name), divergence,
and checkpoints or saved runs that cannot be used."""

from __future__ import annotations

from typing import Any

__all__ = [
    "CheckpointError",
    "CheckpointWarning",
    "DivergenceError",
    "InvalidParameter",
    "ParameterError",
    "ParameterTypeError",
    "RunFileError",
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
    """Optimisation diverged: a loss, gradient or optimizer state became NaN or infinite, or (in
    :func:`descend.fit`) the loss grew by orders of magnitude from its best.

    The parameters (and optimizer state) are left at the last good state: the last step whose
    loss and gradient were finite, or, for a loss that grew, the last state kept while the loss
    was near its best. ``step`` is the step at which the divergence was recognised, ``epoch`` the
    epoch where one applies, ``quantity`` says what diverged (``"loss"``, ``"gradient"``,
    ``"update"``, ``"optimizer state"``), ``cause`` says how in words (``"loss became
    non-finite"``, ``"loss grew from 2.3 to 5e+12"``), ``lr`` is the learning rate of that step
    where known, and ``run`` (from :func:`descend.fit`) is the partial run: its history up to the
    divergence and the last good parameters.
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
        cause: str | None = None,
    ):
        super().__init__(message)
        self.step = step
        self.epoch = epoch
        self.quantity = quantity
        self.lr = lr
        self.run = run
        self.cause = cause if cause is not None else f"{quantity} became non-finite"


class CheckpointError(ValueError):
    """A checkpoint cannot be used: no copy of it is intact (each damaged file is named with its
    damage), or its folder is in use by another run (a lock names that run's pid and host).
    ``path`` is the file or folder concerned."""

    def __init__(self, message: str, *, path: Any = None):
        super().__init__(message)
        self.path = path


class RunFileError(ValueError):
    """A saved run (``model.npz``, written by :meth:`descend.Run.save`) cannot be loaded: missing,
    damaged (truncated, checksum mismatch), not a descend model file, or of an unknown format.
    ``path`` is the file or folder concerned."""

    def __init__(self, message: str, *, path: Any = None):
        super().__init__(message)
        self.path = path


class CheckpointWarning(UserWarning):
    """Something about a checkpoint that training worked around and the user should know: a
    damaged newest checkpoint (training resumed from the previous one), a stale lock taken over
    from a run that was killed, or ``resume=True`` with no checkpoint (training starts fresh)."""
