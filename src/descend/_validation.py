"""One validation mechanism and one message format for every public parameter.

Every message reads ``Owner: name must ..., got value``: it names the class or function,
the parameter, what is allowed, and the value that was given. Every error is a
:class:`~descend.errors.ParameterError` (a ``ValueError``) or
:class:`~descend.errors.ParameterTypeError` (a ``TypeError``) that also carries ``owner``,
``param`` and ``value``, so a caller (the command line) can tell which parameter was wrong
without reading the message.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

from .errors import ParameterError, ParameterTypeError

__all__ = [
    "ParameterError",
    "ParameterTypeError",
    "check_bool",
    "check_choice",
    "check_int",
    "check_real",
    "describe",
    "invalid",
    "wrong_type",
]


def describe(value: Any) -> str:
    """``repr`` of a value plus its type where the repr alone could mislead."""
    if isinstance(value, (bool, np.bool_)):
        return f"{value!r} (bool)"
    if isinstance(value, (float, int)):
        return repr(value)
    if isinstance(value, np.generic):
        return f"{value.item()!r} ({type(value).__name__})"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def invalid(owner: str, name: str, value: Any, must: str) -> ParameterError:
    """The error for a bad ``value`` of ``name``: ``Owner: name must <must>, got <value>``.

    For checks the ``check_*`` helpers do not cover; raise what it returns.

    >>> raise invalid("fit", "validation", 1.5, "be a fraction in [0, 1)")
    Traceback (most recent call last):
    ...
    descend.errors.ParameterError: fit: validation must be a fraction in [0, 1), got 1.5
    """
    return ParameterError(
        f"{owner}: {name} must {must}, got {describe(value)}", owner=owner, param=name, value=value
    )


def wrong_type(owner: str, name: str, value: Any, expected: str) -> ParameterTypeError:
    """The error for a ``value`` of the wrong type: ``Owner: name must be <expected>, got <value>``."""
    return ParameterTypeError(
        f"{owner}: {name} must be {expected}, got {describe(value)}", owner=owner, param=name, value=value
    )


def _bound_text(name: str, low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    lo_op = "<" if low_open else "<="
    hi_op = "<" if high_open else "<="
    if low is not None and high is not None:
        return f"{_num(low)} {lo_op} {name} {hi_op} {_num(high)}"
    if low is not None:
        return f"{name} {'>' if low_open else '>='} {_num(low)} (finite)"
    if high is not None:
        return f"{name} {hi_op} {_num(high)} (finite)"
    return f"{name} finite"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def check_real(
    owner: str,
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a Python float after checking type, finiteness and range.

    Booleans are refused (``True`` is not a learning rate), as are NaN and infinities.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise wrong_type(owner, name, value, "a real number")
    x = float(value)
    cond = _bound_text(name, low, high, low_open, high_open)
    bad = not math.isfinite(x)
    if low is not None:
        bad = bad or (x <= low if low_open else x < low)
    if high is not None:
        bad = bad or (x >= high if high_open else x > high)
    if bad:
        raise invalid(owner, name, value, f"satisfy {cond}")
    return x


def check_int(
    owner: str,
    name: str,
    value: Any,
    *,
    low: int | None = None,
    high: int | None = None,
) -> int:
    """Return ``value`` as a Python int after checking type and range (bools refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise wrong_type(owner, name, value, "an integer")
    n = int(value)
    if (low is not None and n < low) or (high is not None and n > high):
        if low is not None and high is not None:
            cond = f"{low} <= {name} <= {high}"
        elif low is not None:
            cond = f"{name} >= {low}"
        else:
            cond = f"{name} <= {high}"
        raise ParameterError(
            f"{owner}: {name} must satisfy {cond}, got {n!r}", owner=owner, param=name, value=n
        )
    return n


def check_bool(owner: str, name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool; refuse 0/1 and other truthy stand-ins."""
    if not isinstance(value, (bool, np.bool_)):
        raise wrong_type(owner, name, value, "True or False")
    return bool(value)


def check_choice(owner: str, name: str, value: Any, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices`` (strings, compared exactly)."""
    options = list(choices)
    if not isinstance(value, str) or value not in options:
        allowed = ", ".join(repr(c) for c in options)
        raise invalid(owner, name, value, f"be one of {allowed}")
    return value
